"""Report figures of the hazard-set model: per-hazard audio weight against the hazard's occlusion,
and the README tables of detection metrics (mean ± std over training seeds) per model variant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

from avi_ros.taxonomy import Visibility
from training.plots import _save
from training.set_metrics import OVERALL_GROUP, polyphony_group, visibility_group

WEIGHT_BINS = 5  # equal-width occlusion bins over [0, 1] for the binned mean
TABLE_GROUPS: tuple[str, ...] = (
    OVERALL_GROUP,
    *(visibility_group(v) for v in Visibility),
    *(polyphony_group(n) for n in (1, 2, 3)),
)
# metric -> (heading, scale of the printed value, decimals)
TABLE_METRICS: dict[str, tuple[str, float, int]] = {
    "f20": ("F20 [%]", 100.0, 1),
    "le_deg": ("LE [deg]", 1.0, 1),
    "rde": ("RDE", 1.0, 2),
}


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
    path.parent.mkdir(parents=True, exist_ok=True)
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


def _cell(summary: Any, scale: float, decimals: int) -> str:
    if not isinstance(summary, Mapping) or summary.get("mean") is None:
        return "—"
    return f"{summary['mean'] * scale:.{decimals}f} ± {summary['std'] * scale:.{decimals}f}"


def metric_table(
    summary_by_variant: Mapping[str, Mapping[str, Any]], metric: str, groups: Sequence[str] = TABLE_GROUPS
) -> str:
    """Markdown table of one metric (a key of TABLE_METRICS): a row per variant, a column per
    group, each cell mean ± std over the variant's seeds. ``summary_by_variant``: variant ->
    ``training.metrics.mean_and_std`` of the seeds' ``SetEvaluation.flat`` dicts, i.e.
    'group/metric' -> {"mean", "std", "n"}; "—" where no seed has the value."""
    heading, scale, decimals = TABLE_METRICS[metric]
    names = [group.removeprefix("visibility_").replace("_", " ") for group in groups]
    lines = [f"| {heading} | " + " | ".join(names) + " |", "|---|" + "---|" * len(groups)]
    for variant, summary in summary_by_variant.items():
        cells = [_cell(summary.get(f"{group}/{metric}"), scale, decimals) for group in groups]
        seeds = max((s["n"] for s in summary.values() if isinstance(s, Mapping) and "n" in s), default=0)
        lines.append(f"| {variant} (n={seeds}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def study_table(
    summary_by_variant: Mapping[str, Mapping[str, Any]], groups: Sequence[str] = TABLE_GROUPS
) -> str:
    """The F20, LE and RDE tables of ``metric_table``, one after the other, for the README."""
    return "\n\n".join(metric_table(summary_by_variant, metric, groups) for metric in TABLE_METRICS)
