"""The plots of a model bundle and of a language model: training curves, test evaluation."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from model.bundle import LABELS


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, training vs validation."""
    epochs = [h["epoch"] for h in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    loss_axis.plot(epochs, [h["validation_loss"] for h in history], "o-", label="validation")
    accuracy_axis.plot(epochs, [h["train_accuracy"] for h in history], "o-", label="train")
    accuracy_axis.plot(epochs, [h["validation_accuracy"] for h in history], "o-", label="validation")
    for axis, title in ((loss_axis, "cross-entropy loss"), (accuracy_axis, "accuracy")):
        axis.set(xlabel="epoch", title=title)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_lm_curves(history: list[dict], path: Path) -> None:
    """Language-model perplexity during pretraining: training batch vs held-out reviews."""
    figure, axis = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    axis.plot(epochs, [h["train_perplexity"] for h in history], "o-", label="train (last batch)")
    for name in ("forward", "backward"):
        if f"{name}_perplexity" in history[0]:
            values = [h[f"{name}_perplexity"] for h in history]
            axis.plot(epochs, values, "o-", label=f"held out, {name} direction")
    axis.set(xlabel="epoch", ylabel="perplexity", title="language-model pretraining", yscale="log")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_test(labels: np.ndarray, positive: np.ndarray, confusion: list[list[int]], path: Path) -> None:
    """Confusion matrix and reliability diagram on the test set."""
    figure, (matrix_axis, reliability_axis) = plt.subplots(1, 2, figsize=(10, 4))
    matrix_axis.imshow(confusion, cmap="Blues")
    for row in range(2):
        for column in range(2):
            dark = confusion[row][column] > max(map(max, confusion)) / 2  # white on dark cells
            matrix_axis.text(
                column,
                row,
                f"{confusion[row][column]}",
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
    matrix_axis.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=list(LABELS),
        yticklabels=list(LABELS),
        xlabel="predicted",
        ylabel="true",
        title="test confusion matrix",
    )
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(positive, edges[1:-1]), 0, 9)
    centres = [positive[which == b].mean() for b in range(10) if (which == b).any()]
    observed = [labels[which == b].mean() for b in range(10) if (which == b).any()]
    reliability_axis.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    reliability_axis.plot(centres, observed, "o-", label="model")
    reliability_axis.set(
        xlabel="predicted P(positive)", ylabel="fraction positive", title="test reliability diagram"
    )
    reliability_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
