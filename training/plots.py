"""PNG plots of an evaluation: confusion matrix and reliability diagram (the single-hazard view and
the calibration's targets), and each hazard's audio weight against its own occlusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

from training.metrics import confusion_matrix, expected_calibration_error, reliability_bins

_DPI = 110
WEIGHT_BINS = 5  # equal-width occlusion bins over [0, 1] for the binned mean


def plot_confusion_matrix(
    class_true: np.ndarray, class_pred: np.ndarray, class_names: Sequence[str], path: Path
) -> Path:
    """Row-normalised confusion matrix (true class per row) with the counts written in each cell."""
    counts = confusion_matrix(class_true, class_pred, len(class_names))
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


def plot_reliability_diagram(confidence: np.ndarray, correct: np.ndarray, path: Path) -> Path:
    """The share of ``correct`` outcomes (e.g. "a hazard is there" for the hazard confidence) per
    confidence bin against the diagonal of perfect calibration, with the ECE in the title."""
    bins = reliability_bins(confidence, correct)
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    width = bins.edges[1] - bins.edges[0]
    filled = bins.count > 0
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=(3, 1), sharex=True)
    ax.bar(centres[filled], bins.accuracy[filled], width=width * 0.9, color="tab:blue", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.plot(bins.confidence[filled], bins.accuracy[filled], "o", color="tab:orange", markersize=3)
    ece = expected_calibration_error(confidence, correct)
    ax.set_title(f"reliability diagram (ECE = {ece:.3f})" if ece is not None else "reliability diagram")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    hist.bar(centres, bins.count, width=width * 0.9, color="tab:gray")
    hist.set_xlabel("confidence")
    hist.set_ylabel("samples")
    hist.set_xlim(0, 1)
    return _save(fig, path)


def binned_weight(pairs: np.ndarray, bins: int = WEIGHT_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin centres [bins], mean audio weight [bins] (NaN in an empty bin) and counts [bins] of
    ``pairs`` [P, 2] = (true occlusion in [0, 1], audio weight); occlusion 1.0 goes to the last bin."""
    pairs = np.asarray(pairs, np.float64).reshape(-1, 2)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip((pairs[:, 0] * bins).astype(np.int64), 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    total = np.bincount(index, weights=pairs[:, 1], minlength=bins)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return (edges[:-1] + edges[1:]) / 2, mean, count


def _stacked(pairs: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """[P, 2] pairs from one array or from a list of them (e.g. one per training seed)."""
    if isinstance(pairs, np.ndarray):
        return np.asarray(pairs, np.float64).reshape(-1, 2)
    return np.concatenate([np.zeros((0, 2)), *(np.asarray(p, np.float64).reshape(-1, 2) for p in pairs)])


def plot_weight_vs_occlusion(
    pairs: np.ndarray | Mapping[str, np.ndarray | Sequence[np.ndarray]], path: Path, bins: int = WEIGHT_BINS
) -> Path:
    """Scatter of each matched hazard's audio weight against its true occlusion (0 clear .. 1
    hidden), with the binned mean as a line, one colour per variant. ``pairs``: [P, 2] from
    ``SetEvaluation.weight_pairs``, or variant -> such an array or a list of them (the seeds of
    the variant, pooled). An occlusion-aware fusion should rise from left to right; a flat line
    means the weight ignores the hazard's own occlusion."""
    by_variant = {"model": pairs} if isinstance(pairs, np.ndarray) else dict(pairs)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for colour, (variant, values) in zip(plt.cm.tab10.colors, by_variant.items(), strict=False):
        values = _stacked(values)
        ax.scatter(values[:, 0], values[:, 1], s=6, alpha=0.25, color=colour, linewidths=0)
        centres, mean, count = binned_weight(values, bins)
        filled = count > 0
        ax.plot(centres[filled], mean[filled], "o-", color=colour, label=f"{variant} (n={len(values)})")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("true occlusion of the hazard (0 clear .. 1 hidden)")
    ax.set_ylabel("audio weight of the matched slot")
    ax.set_title("per-hazard audio weight vs occlusion (dots: hazards, line: binned mean)")
    ax.grid(alpha=0.3)
    if by_variant:
        ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path
