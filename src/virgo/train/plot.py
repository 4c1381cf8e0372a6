"""The curves of a run, from its JSONL training log: training (and dev) loss above, learning rate below."""

from __future__ import annotations

from pathlib import Path

from virgo.train.callbacks import read_log


def plot_loss(log_path: str | Path, png_path: str | Path, title: str | None = None) -> Path | None:
    """Write a PNG of loss and learning rate against the optimizer step; None when the log has no loss.

    Two panels sharing the step axis rather than two y-axes on one panel: the learning rate and the loss have
    unrelated scales, and a second axis without a legend reads as one more loss curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    train = [r for r in records if "loss" in r]
    dev = [r for r in records if "eval_loss" in r]
    if not train:
        return None
    lrs = [r for r in train if "learning_rate" in r]
    fig, axes = plt.subplots(2 if lrs else 1, 1, figsize=(7, 5.5 if lrs else 3.5), dpi=100, sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": [3, 1.3]} if lrs else None)
    ax = axes[0][0]
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", label="training loss")
    if dev:
        ax.plot([r["step"] for r in dev], [r["eval_loss"] for r in dev], "o-", color="tab:red", label="dev loss")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or Path(log_path).parent.name)
    if lrs:
        lx = axes[1][0]
        lx.plot([r["step"] for r in lrs], [r["learning_rate"] for r in lrs], color="tab:orange",
                label="learning rate")
        lx.set_ylabel("learning rate")
        lx.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        lx.grid(alpha=0.3)
        lx.legend(fontsize=8)
    axes[-1][0].set_xlabel("optimizer step")
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return Path(png_path)
