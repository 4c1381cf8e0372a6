"""The ``virgo`` command line: one subcommand per pipeline stage, each generated from the stage's config dataclass
(``virgo.config``).

Subcommands are imported only when run (or when their own ``--help`` is asked for): stage modules import torch,
transformers and TRL, and ``virgo --help`` should not wait for them.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from virgo.config.cli import CONTEXT

# name -> (module:attribute of the click command, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("virgo.demo.cli:demo", "Run the toy reproduction of Virgo's central experiment on a CPU."),
    "data": ("virgo.data.cli:data", "Long-thought data: convert, stats, select, validate, decontaminate."),
    "distill": ("virgo.distill.cli:distill", "Distil visual long thoughts from a teacher (or the model itself)."),
    "train": ("virgo.train.cli:train", "Fine-tune a Qwen VL model on long-thought data (SFT)."),
    "rl": ("virgo.rl.cli:rl", "GRPO after SFT, with the grader as a verifiable reward."),
    "generate": ("virgo.infer.cli:generate", "Batched, resumable long generation: Problem -> Generation records."),
    "chat": ("virgo.infer.cli:chat", "Chat with a model; the thought streams dimmed, then the answer."),
    "serve": ("virgo.infer.cli:serve", "OpenAI-compatible server; the thought comes back as reasoning_content."),
    "grade": ("virgo.grade.cli:grade", "Grade generations against gold answers."),
    "eval": ("virgo.eval.cli:eval_", "Evaluate a model on a benchmark: generate -> grade -> metrics -> report."),
    "report": ("virgo.eval.cli:report", "Markdown, JSON and plots for one or more eval runs, side by side."),
    "view": ("virgo.view.cli:view", "Browse long thoughts of one or two runs in an offline web page."),
    "make-tiny-model": ("virgo.modeling.cli:make_tiny_model", "A tiny random Qwen VL checkpoint for tests."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; their one-line help comes from ``COMMANDS``."""

    def __init__(self, *args, table: dict[str, tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.table = table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in self.table if self._available(name)] + sorted(self.commands)

    def _available(self, name: str) -> bool:
        module = self.table[name][0].partition(":")[0]
        try:  # a stage still to come (or an optional one) is simply not listed
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            return False

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in self.table or not self._available(name):
            return None
        module, _, attr = self.table[name][0].partition(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.table[name][1]) for name in self.list_commands(ctx) if name in self.table]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _version() -> str:
    from virgo import __version__

    return __version__


@click.group(cls=LazyGroup, table=COMMANDS, context_settings=CONTEXT, no_args_is_help=True)
@click.version_option(_version(), "--version", "-V", prog_name="virgo", message="%(prog)s %(version)s")
def app() -> None:
    """Virgo: turn a multimodal LLM into a slow-thinking visual reasoner (after arXiv 2501.01904).

    Pipeline: data -> (distill) -> train -> generate -> grade -> eval -> report. `virgo demo` runs the paper's
    central experiment in miniature on a CPU. Every command takes --config FILE.yaml, KEY=VALUE overrides and
    --print-config; `virgo COMMAND --help` lists its options.
    """


def main() -> None:
    app()


if __name__ == "__main__":
    main()
