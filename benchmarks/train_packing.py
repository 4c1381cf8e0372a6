"""Packed SFT throughput on the tiny Qwen2-VL: padded batches, the old block-mask packing and the new packing, side
by side in one run of interleaved repeats, plus time per token against sample length.

    python benchmarks/train_packing.py [--repeats 3] [--steps 30] [--threads 2] [--json OUT.json] [--quick]

Part 1, a Virgo-like mix: 2,000 samples whose responses are long-tailed (log-normal, clipped at 1,999 tokens;
about mean 260, p90 620), half with an image; cutoff 2048 (longer samples truncated, none dropped); fp32;
gradient checkpointing off. Configurations:
- padded: 8 samples per micro-batch, right-padded;
- block_mask: 8 samples packed into one row, SDPA under the row's L x L block-diagonal mask (packing before
  issue 20, and what LLaMA-Factory's neat_packing does);
- segments_8: 8 samples per row, per-sample causal SDPA (the new attention alone);
- packed: the new packing: rows filled to a token budget of 8 x the mean sample length, per-sample SDPA;
- packed_glibc_heap: the same with glibc's default heap (``cpu_heap_keep_mib=0``): every large tensor a fresh
  mmap, faulted in again each step. All the others keep freed memory in the heap (the default; see
  ``virgo.train.runtime.keep_freed_memory``), so "vs block_mask" compares the attention and packing alone.
- packed_all_logits: the same with logits at every position (``logits_at_labels=false``); all the others run the
  LM head and the loss only where a label is (the default; see ``virgo.train.collate``).
- packed_torch_compile (only when named in ``--modes``): the same under ``torch_compile=true``, transformers'
  whole-model ``torch.compile``: every packed row has its own length and its own sample boundaries, so it
  recompiles and breaks its graphs step after step (``virgo train`` warns).
- packed_linear_ce (only when named): the same with the LM head and the loss as one chunked op
  (``linear_cross_entropy=true``, ``virgo.train.headloss``): no logits tensor.
- packed_loader_worker (only when named): the same with the batches made in one loader process
  (``dataloader_num_workers=1``) instead of between the steps.
Each configuration runs the real ``virgo.train.sft.train`` in its own subprocess (so peak RSS is its own), in
interleaved order, ``--repeats`` times. Tokens/s counts real (non-padding) tokens, read from the batches the
training steps receive, over the steps after the first (the first pays for allocation). "% peak" is model
FLOPs (6 x language-model parameters x tokens/s) over the fp32 matmul peak measured while the configuration ran:
after every third training step the child times two square 2048 matmuls at the same thread count (into a
preallocated output) and keeps the faster; the steps are timed without these probes, and the run's peak is their
mean.
This host's matmul speed moves by a third within seconds (best-of-8 measurements 2 s apart: 199-303 GFLOP/s), so
a peak measured minutes apart says little about the host during a 5-second run. "% run peak" is the same FLOPs
over the best peak of the whole run (measured before each repeat), the lower bound. "faults/step" is the minor
page faults per step: pages the kernel mapped and zeroed anew.

Part 2, time per token when samples are S tokens long, two per row, S = 512 ... 8192 (text only), for padded,
block_mask and the new per-segment attention.

"% peak +attn" adds the attention FLOPs of each sample (causal: 6 x layers x heads x head_dim x S^2 per sample,
forward and backward; PaLM's model-FLOPs count), which 6 x parameters leaves out, and "flops x" is the ratio the
FLOP count alone predicts for time per token from the shortest S to the longest at equal efficiency. The sweep
also prints what the 1.3x target asks of attention: the attention FLOPs a token of the longest S adds over the
shortest, at the fastest matmul rate measured anywhere in the run, against the 0.3 x (time at the shortest S) that
1.3x leaves. With the rest of a token's work as it is, a need above 1x the peak means no exact attention meets the
target on this host, whatever the packing.

``--shape 2b-layer`` runs the same parts on one decoder layer of Qwen2-VL-2B's shape (hidden 1536, 12 heads, 2
KV heads, intermediate 8960; the tiny vocabulary and vision tower): at xs's width 128 attention is most of the
FLOPs of a long sample (at S = 8192, 3.6x the FLOPs per token of S = 512), at a real model's width it is not
(1.23x), so only a real layer shape shows whether packing adds cost of its own as rows grow. ``--modes`` and
``--sweep-modes`` pick configurations (the block mask at S = 8192 on the wide layer costs minutes per step).

Numbers are only meaningful on a quiet machine; ``--quick`` (fewer samples, steps and repeats) checks that the
script works and shows rough ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = {  # name -> config overrides (the batch is filled in from --batch)
    "padded": ["packing=false"],
    "block_mask": ["packing=true", "packed_attention=block_mask"],
    "segments_8": ["packing=true", "packed_attention=sdpa_segments"],
    "packed": ["packing=true", "packed_attention=auto"],
    "packed_glibc_heap": ["packing=true", "packed_attention=auto", "cpu_heap_keep_mib=0"],
    "packed_all_logits": ["packing=true", "packed_attention=auto", "logits_at_labels=false"],
    "packed_torch_compile": ["packing=true", "packed_attention=auto", "torch_compile=true"],
    "packed_linear_ce": ["packing=true", "packed_attention=auto", "linear_cross_entropy=true"],
    "packed_loader_worker": ["packing=true", "packed_attention=auto", "dataloader_num_workers=1"],
}
# Named only: minutes of recompiling; the chunked loss matters at a real vocabulary (--shape xs-vocab152k)
DEFAULT_MODES = [m for m in MODES if m not in ("packed_torch_compile", "packed_linear_ce", "packed_loader_worker")]
SWEEP_MODES = ("padded", "block_mask", "packed")
PROBE_N = 2048  # side of the square fp32 matmuls that measure the host's peak ...
PROBE_EVERY = 3  # ... after every third training step (a probe is 0.1 s, a step 0.1-0.2 s)
SWEEP_S = (512, 1024, 2048, 4096, 8192)
# Model shapes (virgo.modeling.tiny.TinySpec fields): the tiny xs, and one decoder layer of Qwen2-VL-2B.
SHAPES = {"xs": {}, "xs-vocab152k": {},
          "2b-layer": {"hidden_size": 1536, "num_hidden_layers": 1, "num_attention_heads": 12,
                       "num_key_value_heads": 2, "intermediate_size": 8960}}
# Shapes whose vocabulary is widened after the tokenizer is trained (its rows, then new rows no token uses):
# "xs-vocab152k" is xs with Qwen2-VL's vocabulary size, so the LM head and the logits have a real model's size.
WIDE_VOCAB = {"xs-vocab152k": 151_936}


def peak_rss_mib() -> float:
    """This process's own peak RSS: the kernel's ``VmHWM``. Not ``getrusage``'s ``ru_maxrss``: Linux carries the
    parent's high-water mark into a child across fork and exec, so a child of a large parent reports at least the
    parent's peak (a child of a parent holding 2 GiB reported 2,061 MiB; its VmHWM was 13 MiB)."""
    with open("/proc/self/status", encoding="ascii") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kib / 1024


# ---------------------------------------------------------------- data
def write_mix(out: Path, tokenizer, n: int, seed: int, image_frac: float = 0.5) -> Path:
    """Virgo-like records: log-normal response lengths (in tokens of the tiny tokenizer), half with an image."""
    import numpy as np

    rng = np.random.default_rng(seed)
    targets = np.clip(np.round(np.exp(rng.normal(4.9, 1.2, n))), 16, 1999).astype(int)
    return _write_records(out, tokenizer, [int(t) for t in targets], rng.random(n) < image_frac, seed)


def write_fixed(out: Path, tokenizer, n: int, length: int, seed: int) -> Path:
    """Text-only records with responses longer than ``length`` tokens (cut to exactly ``length`` by the cutoff)."""
    return _write_records(out, tokenizer, [length + 64] * n, [False] * n, seed)


def _write_records(out: Path, tokenizer, response_tokens: list[int], with_image, seed: int) -> Path:
    import random

    from PIL import Image, ImageDraw

    from virgo.modeling.corpus import builtin_corpus
    from virgo.records import LongThoughtExample, write_records

    rng = random.Random(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    pool: list[int] = []  # token ids of the tiny tokenizer's own corpus, to cut thoughts of exact lengths from
    for line in builtin_corpus(seed=seed):
        pool += tokenizer(line + "\n\n", add_special_tokens=False)["input_ids"]
        if len(pool) > 2 * max(response_tokens) + 64:
            break
    records = []
    for i, (target, image) in enumerate(zip(response_tokens, with_image)):
        start = rng.randrange(0, len(pool) - target)
        # about 16 tokens go to the thought markers and the solution
        thought = tokenizer.decode(pool[start:start + max(target - 16, 1)]).strip() or "Hmm, let me think."
        images = []
        if image:
            img = Image.new("RGB", (56, 56), "white")
            ImageDraw.Draw(img).rectangle([rng.randrange(20), rng.randrange(20), 40, 40], fill=(200, 30, 30))
            img.save(out / "images" / f"{i:05d}.png")
            images = [f"images/{i:05d}.png"]
        records.append(LongThoughtExample(id=f"b{i:05d}", question=f"What is shown? Question {i}.", thought=thought,
                                          solution=f"The answer is \\boxed{{{i % 10}}}.", images=images))
    path = out / "train.jsonl"
    write_records(path, records)
    return path


# ---------------------------------------------------------------- one configuration, in a subprocess
def run_child(spec: dict) -> dict:
    """Train with ``spec['overrides']``; time steps after the first, count real tokens in the collator."""
    import torch
    from transformers import TrainerCallback

    from virgo.train.attention import segment_bounds
    from virgo.train.config import load_config
    from virgo.train.sft import train
    from virgo.train.trainer import SFTTrainer

    torch.set_num_threads(spec["threads"])
    steps: list[dict] = []  # per step: real tokens, sum of squared sample lengths, processed positions, samples
    original = SFTTrainer.training_step

    def counting_step(self, model, inputs, *args, **kw):
        # Counted from the batch the step receives (the collator may run in a loader worker): a padded batch's
        # samples are its mask's rows, a packed row's are where the packed attention splits it.
        if "attention_mask" in inputs:
            lengths = inputs["attention_mask"].sum(dim=1).tolist()
        else:
            lengths = [end - start for start, end in segment_bounds(inputs["position_ids"][0])[0]]
        steps.append({"real": sum(lengths), "square": sum(n * n for n in lengths),
                      "processed": inputs["input_ids"].numel(), "samples": len(lengths)})
        return original(self, model, inputs, *args, **kw)

    SFTTrainer.training_step = counting_step
    ends: list[float] = []  # when each step ended
    resumes: list[float] = []  # when training went on after it (after the matmul probe, when there is one)
    faults: list[int] = []  # minor page faults so far, at each step's end
    rates: list[float] = []  # the host's matmul GFLOP/s, measured between steps
    info: dict = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            lm = model.model.language_model
            head = model.get_output_embeddings()
            tied = head.weight is lm.get_input_embeddings().weight
            info["params"] = sum(p.numel() for p in lm.parameters()) + (0 if tied else head.weight.numel())
            text = lm.config
            info["attn_width"] = text.num_hidden_layers * text.num_attention_heads * (
                getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads)
            if spec.get("probe"):
                info["probe"] = [torch.randn(PROBE_N, PROBE_N) for _ in range(3)]  # a, b, out: allocated once

        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
            if "probe" in info and state.global_step % PROBE_EVERY == 0:
                rates.append(best_matmul_rate(*info["probe"], reps=2))
            resumes.append(time.perf_counter())

    train(load_config(None, spec["overrides"]), callbacks=[Clock()])
    timed = steps[1:len(ends)]
    seconds = sum(end - resume for end, resume in zip(ends[1:], resumes))  # the steps after the first, no probes
    real = sum(s["real"] for s in timed)
    # causal attention, forward + backward, every layer: 6 x width x S^2 per sample (S^2 / 2 query-key pairs, two
    # matmuls of 2 FLOPs per pair and width, backward twice the forward)
    attn_flops = 6 * info["attn_width"] * sum(s["square"] for s in timed)
    return {"seconds": seconds, "attn_flops_per_s": attn_flops / seconds, "attn_width": info["attn_width"],
            "steps": len(ends), "real_tokens": real,
            "all_real_tokens": sum(s["real"] for s in steps),
            "processed_tokens": sum(s["processed"] for s in timed), "tokens_per_s": real / seconds,
            "us_per_token": 1e6 * seconds / real,
            "samples_per_step": statistics.fmean(s["samples"] for s in timed), "peak_rss_mib": peak_rss_mib(),
            "params": info["params"], "faults_per_step": (faults[-1] - faults[0]) / max(len(ends) - 1, 1),
            # measured between steps, through the run: the host's speed while they ran
            "matmul_gflops": statistics.fmean(rates) if rates else None}


def widen_vocabulary(model_dir: Path, size: int) -> None:
    """Give the saved model ``size`` embedding and LM-head rows (rows past the tokenizer's stay unused)."""
    from virgo.modeling.load import load_model_and_processor

    model, _ = load_model_and_processor(model_dir)
    model.resize_token_embeddings(size)
    model.save_pretrained(model_dir, safe_serialization=True)


def best_matmul_rate(a, b, out, reps: int) -> float:
    """The best GFLOP/s of ``reps`` square matmuls ``a @ b`` (into ``out``: no allocation, no page faults)."""
    import torch

    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t)
    return 2 * a.shape[0] ** 3 / best / 1e9


def matmul_peak(threads: int, reps: int = 8) -> dict:
    """The best fp32 GFLOP/s of square matmuls at ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    mats = [torch.randn(PROBE_N, PROBE_N) for _ in range(3)]
    best_matmul_rate(*mats, reps=2)  # warm-up
    return {"gflops": best_matmul_rate(*mats, reps=reps)}


def spawn(spec: dict, script: str = __file__) -> dict:
    """Run ``script --child SPEC`` (this one by default) and return what it prints after ``RESULT ``."""
    proc = subprocess.run([sys.executable, script, "--child", json.dumps(spec)], capture_output=True, text=True,
                          check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"{spec.get('name')} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


# ---------------------------------------------------------------- the run
def _base(a, model: Path, data: Path, out: Path, cutoff: int, steps: int) -> list[str]:
    return [f"model_name_or_path={model}", f"train_files={data}", f"output_dir={out}", f"max_steps={steps}",
            "learning_rate=1e-4", "warmup_ratio=0", "save_strategy=no", "logging_steps=100000",
            "image_max_pixels=3136", f"cutoff_len={cutoff}", "overlong=truncate", "resume_from_checkpoint=none",
            f"torch_threads={a.threads}", "progress=false", "seed=0", "torch_dtype=float32", "bf16=false",
            "gradient_checkpointing=false"]


def mix_specs(a, model: Path, data: Path, tmp: Path, budget: int) -> list[dict]:
    specs = []
    for name in a.modes:
        extra = MODES[name]
        batch = [f"per_device_train_batch_size={a.batch}"] if not name.startswith("packed") else [
            "per_device_train_batch_size=1", f"packing_budget={budget}"]
        specs.append({"name": name, "threads": a.threads, "probe": True,
                      "overrides": _base(a, model, data, tmp / name, 2048, a.steps) + extra + batch})
    return specs


def sweep_specs(a, model: Path, data: dict[int, Path], tmp: Path) -> list[dict]:
    specs = []
    for s in a.sweep:
        for name in a.sweep_modes:
            specs.append({"name": f"{name}@{s}", "mode": name, "S": s, "threads": a.threads, "overrides": _base(
                a, model, data[s], tmp / f"{name}{s}", s, a.sweep_steps) + MODES[name]
                + ["per_device_train_batch_size=2"]})
    return specs


def mix_stats(model: Path, data: Path) -> dict:
    from virgo.modeling.family import resolve_chat_template
    from virgo.modeling.load import load_processor
    from virgo.train.config import load_config
    from virgo.train.data import build_dataset

    cfg = load_config(None, [f"train_files={data}", "output_dir=x", "image_max_pixels=3136", "cutoff_len=2048",
                             "overlong=truncate", f"chat_template={resolve_chat_template('auto', model)}"])
    ds, _ = build_dataset(cfg, load_processor(model), progress=False)
    total = sorted(len(s) for s in ds.samples)
    resp = sorted(len(s) - s.prompt_len for s in ds.samples)
    return {"n": len(total), "with_image": sum(bool(s.images) for s in ds.samples),
            "response_mean": statistics.fmean(resp), "response_p90": resp[int(0.9 * len(resp))],
            "response_max": resp[-1], "sample_mean": statistics.fmean(total), "sample_max": total[-1]}


def _range(values: list[float], fmt: str = ",.0f") -> str:
    return f"{min(values):{fmt}}-{max(values):{fmt}}" if len(values) > 1 else f"{values[0]:{fmt}}"


def report_sweep(a, first: dict, sweep: dict[str, list[dict]], peak: float) -> tuple[dict, dict, float]:
    """Part 2's table: median time per token at each S, and its growth from the shortest S to the longest."""
    if not a.sweep:
        return {}, {}, float("nan")
    modes = [m for m in SWEEP_MODES if m in a.sweep_modes]
    print(f"\ntime per token (us), two samples of S tokens per row, {a.sweep_steps} steps (first excluded)")
    print(f"{'S':>6}" + "".join(f"{m:>20}" for m in modes))
    per_s: dict[str, dict[int, float]] = {m: {} for m in modes}
    for s in a.sweep:
        cells = []
        for m in modes:
            us = [r["us_per_token"] for r in sweep[f"{m}@{s}"]]
            per_s[m][s] = statistics.median(us)
            cells.append(f"{_range(us, '.0f'):>20}")
        print(f"{s:>6}" + "".join(cells))
    lo, hi = min(a.sweep), max(a.sweep)
    growth = {m: per_s[m][hi] / per_s[m][lo] for m in modes}
    print(f"{'S ' + str(hi) + '/' + str(lo):>6}" + "".join(f"{growth[m]:>19.2f}x" for m in modes))
    # FLOPs per token of a sample of S tokens: 6 x params + 6 x attention width x S (see run_child)
    flops = {s: 6 * first["params"] + 6 * first["attn_width"] * s for s in (lo, hi)}
    print(f"flops x {flops[hi] / flops[lo]:.2f}x: the growth the FLOP count alone predicts at equal efficiency")
    # What 1.3x asks of attention: the FLOPs a token of S = hi adds over S = lo (attention's alone: the parameters'
    # share is the same at every S), run at the fastest matmul rate this host showed, against the time 1.3x leaves
    # on top of the measured time at S = lo
    added_us = 1e6 * (flops[hi] - flops[lo]) / (peak * 1e9)
    for m in modes:
        allowed = 0.3 * per_s[m][lo]
        print(f"{m}: the attention S={hi} adds takes {added_us:.1f} us per token at the peak ({peak:,.1f} "
              f"GFLOP/s), the rest unchanged; 1.3x leaves {allowed:.1f} us (needs attention at "
              f"{added_us / allowed:.1f}x the peak)")
    return per_s, growth, flops[hi] / flops[lo]


def report(a, stats: dict, budget: int, mix: dict[str, list[dict]], peaks: list[float],
           sweep: dict[str, list[dict]]) -> dict:
    peak = max(peaks)
    first = next(iter(mix.values()))[0]
    print(f"\nshape {a.shape}; mix: {stats['n']} samples ({stats['with_image']} with an image); response tokens mean "
          f"{stats['response_mean']:.0f}, p90 {stats['response_p90']}, max {stats['response_max']}; sample tokens "
          f"mean {stats['sample_mean']:.0f}, max {stats['sample_max']}; batch {a.batch} or a budget of {budget} "
          f"tokens per row; {a.steps} steps; {a.threads} threads; fp32; {a.repeats} interleaved repeat(s)")
    between = [r["matmul_gflops"] for runs in mix.values() for r in runs]
    print(f"fp32 matmul GFLOP/s between the steps of a configuration (mean per run): {_range(between, ',.1f')}; "
          f"before each repeat: {_range(peaks, ',.1f')} (the run's peak: {peak:,.1f})")
    print(f"language-model params "
          f"{first['params']:,}; attention width (layers x heads x head_dim) {first['attn_width']:,}")
    base = statistics.median(r["tokens_per_s"] for r in mix["block_mask"]) if "block_mask" in mix else None
    print(f"{'configuration':<19}{'tokens/s':>17}{'vs block_mask':>15}{'% peak':>13}{'% peak +attn':>14}"
          f"{'% run peak':>12}{'peak RSS MiB':>15}{'samples/step':>14}{'padding':>9}{'faults/step':>13}")
    summary = {}
    for name, runs in mix.items():
        tps = [r["tokens_per_s"] for r in runs]
        # over the host speed measured between the run's own steps (see the module docstring) ...
        pct = [100 * 6 * r["params"] * r["tokens_per_s"] / (r["matmul_gflops"] * 1e9) for r in runs]
        pct_attn = [p + 100 * r["attn_flops_per_s"] / (r["matmul_gflops"] * 1e9) for p, r in zip(pct, runs)]
        # ... and over the best peak of the whole run, the lower bound
        pct_run = [100 * 6 * r["params"] * r["tokens_per_s"] / (peak * 1e9) for r in runs]
        pad = 1 - sum(r["real_tokens"] for r in runs) / sum(r["processed_tokens"] for r in runs)
        rss = max(r["peak_rss_mib"] for r in runs)
        ratio = statistics.median(tps) / base if base else float("nan")
        print(f"{name:<19}{_range(tps):>17}{ratio:>14.2f}x{_range(pct, '.1f'):>13}{_range(pct_attn, '.1f'):>14}"
              f"{_range(pct_run, '.1f'):>12}{rss:>15,.0f}"
              f"{statistics.fmean(r['samples_per_step'] for r in runs):>14.1f}{pad:>9.1%}"
              f"{statistics.median(r['faults_per_step'] for r in runs):>13,.0f}")
        summary[name] = {"tokens_per_s": tps, "pct_peak": pct, "pct_peak_with_attention": pct_attn,
                         "pct_run_peak": pct_run, "matmul_gflops": [r["matmul_gflops"] for r in runs],
                         "peak_rss_mib": rss, "vs_block_mask": ratio,
                         "faults_per_step": [r["faults_per_step"] for r in runs]}
    # the fastest rate seen anywhere in the run: the most generous bound for attention
    per_s, growth, flops_growth = report_sweep(a, first, sweep, max([peak] + [b for b in between if b]))
    targets = []
    if "packed" in summary and "block_mask" in summary:
        targets.append(("new packing >= 2x the block-mask packing in tokens/s",
                        summary["packed"]["vs_block_mask"] >= 2))
    if "packed" in growth:
        targets.append((f"time per token within 1.3x from S={min(a.sweep)} to S={max(a.sweep)}",
                        growth["packed"] <= 1.3))
    if "packed" in summary:
        targets.append((">= 30% of matmul peak", statistics.median(summary["packed"]["pct_peak"]) >= 30))
    if "packed" in summary and "block_mask" in summary:
        targets.append(("peak RSS no higher than the block-mask packing",
                        summary["packed"]["peak_rss_mib"] <= summary["block_mask"]["peak_rss_mib"]))
    print("\ntargets (medians of this run):")
    for text, ok in targets:
        print(f"  [{'met' if ok else 'NOT met'}] {text}")
    return {"shape": a.shape, "mix_stats": stats, "budget": budget, "matmul_gflops": peaks, "mix": summary,
            "us_per_token": per_s, "growth": growth, "flops_growth": flops_growth,
            "targets": {t: ok for t, ok in targets}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    full = {"repeats": 3, "steps": 30, "n": 2000, "sweep": list(SWEEP_S), "sweep_steps": 6}
    quick = {"repeats": 1, "steps": 6, "n": 400, "sweep": [512, 2048], "sweep_steps": 3}
    ap.add_argument("--repeats", type=int, help=f"interleaved repeats of every configuration ({full['repeats']})")
    ap.add_argument("--steps", type=int, help=f"optimizer steps per mix configuration ({full['steps']})")
    ap.add_argument("--batch", type=int, default=8, help="samples per micro-batch (the budget is batch x mean)")
    ap.add_argument("--n", type=int, help=f"samples in the mix ({full['n']})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="xs",
                    help="the model: tiny xs, xs with Qwen2-VL's 151,936-entry vocabulary, or one decoder layer "
                    "of Qwen2-VL-2B's shape (xs)")
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=DEFAULT_MODES,
                    help="configurations of part 1 (all but packed_torch_compile and packed_linear_ce)")
    ap.add_argument("--sweep-modes", nargs="+", choices=SWEEP_MODES, default=list(SWEEP_MODES),
                    help="configurations of part 2 (all)")
    ap.add_argument("--sweep", type=int, nargs="*", help=f"sample lengths S for part 2 {full['sweep']}")
    ap.add_argument("--sweep-steps", type=int, help=f"steps per length in part 2 ({full['sweep_steps']})")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--quick", action="store_true", help=f"a smoke run; defaults become {quick}")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        spec = json.loads(a.child)
        result = matmul_peak(spec["threads"]) if spec.get("name") == "matmul" else run_child(spec)
        print("RESULT " + json.dumps(result), flush=True)
        return
    for key, value in (quick if a.quick else full).items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    run(a)


def run(a) -> None:
    from virgo.modeling.load import load_processor
    from virgo.modeling.tiny import TinySpec, make_tiny_model

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = make_tiny_model(tmp / "model", size=TinySpec(**SHAPES[a.shape]))  # TinySpec() is xs
        if a.shape in WIDE_VOCAB:
            widen_vocabulary(model, WIDE_VOCAB[a.shape])
        tok = load_processor(model).tokenizer
        data = write_mix(tmp / "mix", tok, a.n, seed=0)
        stats = mix_stats(model, data)
        budget = round(a.batch * stats["sample_mean"])
        fixed = {s: write_fixed(tmp / f"fixed{s}", tok, 2 * a.sweep_steps, s, seed=s) for s in a.sweep}
        specs = mix_specs(a, model, data, tmp, budget)
        sweeps = sweep_specs(a, model, fixed, tmp)
        mix: dict[str, list[dict]] = {s["name"]: [] for s in specs}
        sweep: dict[str, list[dict]] = {s["name"]: [] for s in sweeps}
        peaks: list[float] = []
        for rep in range(a.repeats):
            peaks.append(spawn({"name": "matmul", "threads": a.threads})["gflops"])
            for spec in specs + sweeps:
                print(f"repeat {rep + 1}/{a.repeats}: {spec['name']}", flush=True)
                (mix if spec in specs else sweep)[spec["name"]].append(spawn(spec))
        fixed_batch = [r for name in ("padded", "block_mask", "segments_8") for r in mix.get(name, [])]
        assert len({r["all_real_tokens"] for r in fixed_batch}) <= 1, \
            "padded and packed runs with the same batch must see the same samples"
        results = report(a, stats, budget, mix, peaks, sweep)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
