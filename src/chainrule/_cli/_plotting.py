"""Training curves for `chainrule train --plot` (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path

from chainrule._figures import save_png


def plot_history(history, path) -> Path:
    """Save loss (and accuracy, when there is one) per epoch to ``path``, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_acc = bool(history.accuracy)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 4))
    axes = list(axes) if has_acc else [axes]
    axes[0].plot(history.epoch, history.loss, marker=".", label="train")
    if history.val_loss:
        axes[0].plot(history.epoch, history.val_loss, marker=".", label="validation")
    axes[0].set(xlabel="epoch", ylabel="loss", title="Loss")
    axes[0].legend()
    if has_acc:
        axes[1].plot(history.epoch, history.accuracy, marker=".", label="train")
        if history.val_accuracy:
            axes[1].plot(history.epoch, history.val_accuracy, marker=".", label="validation")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
        axes[1].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return save_png(fig, path)
    finally:
        plt.close(fig)
