"""PNG plots of an evaluation: confusion matrix, reliability diagram, angular error vs occlusion level."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

from training.metrics import (
    BACKGROUND_CLASS,
    Predictions,
    angular_errors_deg,
    confusion_matrix,
    expected_calibration_error,
    reliability_bins,
)

_DPI = 110


def plot_confusion_matrix(predictions: Predictions, class_names: Sequence[str], path: Path) -> Path:
    """Row-normalised confusion matrix (true class per row) with the counts written in each cell."""
    counts = confusion_matrix(predictions.class_true, predictions.class_pred, len(class_names))
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(
                j,
                i,
                str(n),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix (row-normalised; numbers are counts)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_reliability_diagram(predictions: Predictions, path: Path) -> Path:
    """Accuracy per confidence bin against the diagonal of perfect calibration, with the ECE in the title."""
    correct = predictions.class_pred == predictions.class_true
    bins = reliability_bins(predictions.confidence, correct)
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    width = bins.edges[1] - bins.edges[0]
    filled = bins.count > 0
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=(3, 1), sharex=True)
    ax.bar(centres[filled], bins.accuracy[filled], width=width * 0.9, color="tab:blue", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.plot(bins.confidence[filled], bins.accuracy[filled], "o", color="tab:orange", markersize=3)
    ece = expected_calibration_error(predictions.confidence, correct)
    ax.set_title(f"reliability diagram (ECE = {ece:.3f})" if ece is not None else "reliability diagram")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    hist.bar(centres, bins.count, width=width * 0.9, color="tab:gray")
    hist.set_xlabel("confidence")
    hist.set_ylabel("samples")
    hist.set_xlim(0, 1)
    return _save(fig, path)


def plot_angular_error_vs_occlusion(predictions: Predictions, path: Path, n_bins: int = 10) -> Path:
    """Angular error [deg] of non-background samples against occlusion level: scatter plus binned median."""
    source = predictions.class_true != BACKGROUND_CLASS
    level = predictions.occlusion_level[source]
    errors = angular_errors_deg(predictions.direction_pred[source], predictions.direction_true[source])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(level, errors, s=4, alpha=0.3, color="tab:blue", label="sample")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.minimum((level * n_bins).astype(int), n_bins - 1) if len(level) else np.zeros(0, int)
    medians = [np.median(errors[index == b]) if np.any(index == b) else np.nan for b in range(n_bins)]
    ax.plot((edges[:-1] + edges[1:]) / 2, medians, "o-", color="tab:red", label="median per bin")
    ax.set_xlabel("occlusion level (fraction of the view blocked)")
    ax.set_ylabel("angular error [deg]")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(30.0, float(np.percentile(errors, 98)) if len(errors) else 30.0))
    ax.set_title("direction error vs occlusion")
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_all_plots(predictions: Predictions, class_names: Sequence[str], directory: Path) -> list[Path]:
    """The three evaluation plots as PNGs in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        plot_confusion_matrix(predictions, class_names, directory / "confusion_matrix.png"),
        plot_reliability_diagram(predictions, directory / "reliability_diagram.png"),
        plot_angular_error_vs_occlusion(predictions, directory / "angular_error_vs_occlusion.png"),
    ]


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path
