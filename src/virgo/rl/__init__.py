"""`virgo rl`: GRPO after Virgo's SFT, with `virgo.grade` as the verifiable reward, on TRL's ``GRPOTrainer``.

* `virgo.rl.config`: ``RLConfig`` (TRL's ``GRPOConfig`` + Virgo's fields, a ``reward`` and a ``grade`` section)
* `virgo.rl.data`: Problem records -> the prompt dataset (text-only and visual mixed)
* `virgo.rl.rewards`: accuracy (the grader, in worker processes with a time limit), format, thinking budget
* `virgo.rl.trainer`: ``GRPOTrainer`` with mixed image / text-only batches fixed
* `virgo.rl.grpo`: ``train(cfg)``, each rank's entry point; `virgo.rl.cli`: the command
* `virgo.rl.fixture`: a trivially learnable task for tests and smoke runs

See ``README.md`` in this directory.
"""
