"""The loss curve of a run, from its JSONL training log."""

from __future__ import annotations

from pathlib import Path

from virgo.train.callbacks import read_log


def plot_loss(log_path: str | Path, png_path: str | Path, title: str | None = None) -> Path | None:
    """Write a loss-vs-step PNG (learning rate on a second axis); returns None when the log has no loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in read_log(log_path) if "loss" in r]
    if not records:
        return None
    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(steps, [r["loss"] for r in records], color="tab:blue", label="loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    if all("learning_rate" in r for r in records):
        ax2 = ax.twinx()
        ax2.plot(steps, [r["learning_rate"] for r in records], color="tab:orange", alpha=0.6, label="lr")
        ax2.set_ylabel("learning rate")
    ax.set_title(title or Path(log_path).parent.name)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return Path(png_path)
