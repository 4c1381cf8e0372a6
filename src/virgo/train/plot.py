"""The curves of a run, from its JSONL training log: training (and dev) loss above, then the learning rate, then
the throughput (tokens per second between log events, `virgo.train.throughput`) where the log has them."""

from __future__ import annotations

from pathlib import Path

from virgo.train.callbacks import read_log


def plot_loss(log_path: str | Path, png_path: str | Path, title: str | None = None) -> Path | None:
    """Write a PNG of loss, learning rate and tokens/s against the optimizer step; None when the log has no loss.

    Panels sharing the step axis rather than more y-axes on one panel: the learning rate, the throughput and the
    loss have unrelated scales, and a second axis without a legend reads as one more loss curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    train = [r for r in records if "loss" in r]
    dev = [r for r in records if "eval_loss" in r]
    if not train:
        return None
    lower = [(key, label, color) for key, label, color in (("learning_rate", "learning rate", "tab:orange"),
                                                            ("tokens_per_s", "tokens/s", "tab:green"))
             if any(key in r for r in train)]
    fig, axes = plt.subplots(1 + len(lower), 1, figsize=(7, 3.5 + 2 * len(lower)), dpi=100, sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": [3] + [1.3] * len(lower)})
    ax = axes[0][0]
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", label="training loss")
    if dev:
        ax.plot([r["step"] for r in dev], [r["eval_loss"] for r in dev], "o-", color="tab:red", label="dev loss")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or Path(log_path).parent.name)
    for (key, label, color), row in zip(lower, axes[1:]):
        lx = row[0]
        points = [r for r in train if key in r]
        lx.plot([r["step"] for r in points], [r[key] for r in points], color=color, label=label)
        lx.set_ylabel(label)
        if key == "learning_rate":
            lx.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        else:
            lx.set_ylim(bottom=0)  # a stall shows as a dip towards zero, not as a rescaled wiggle
        lx.grid(alpha=0.3)
        lx.legend(fontsize=8, loc="upper right" if key == "learning_rate" else "lower right")
    axes[-1][0].set_xlabel("optimizer step")
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return Path(png_path)
