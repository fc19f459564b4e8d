"""Markdown tables of a hazard-set evaluation (``training.set_metrics`` groups), one model or several.

A value is a number or, for training seeds aggregated by ``training.metrics.mean_and_std``, a
``{"mean", "std", "n"}`` dict shown as mean ± std (``training.export.format_value``). Three tables:
detection (F20 / LE / RDE, DCASE-style) overall, by visibility and by polyphony; the single-hazard
figures (top slot on frames with at most one hazard); and the direction group, the model's top
slot beside the physics baseline (FOA intensity vector) by sector and visibility.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from avi_ros.taxonomy import Visibility
from training.export import comparison_table, format_value
from training.set_metrics import (
    BEHIND,
    DIRECTION_GROUP,
    OVERALL_GROUP,
    SECTORS,
    SINGLE_HAZARD_GROUP,
    visibility_group,
)

Columns = Sequence[tuple[str, str, str]]  # (metric key, header, format)

DETECTION_COLUMNS: Columns = (
    ("frames", "frames", "{:d}"),
    ("hazards", "hazards", "{:d}"),
    ("f20", "F20", "{:.1%}"),
    ("f20_micro", "F20 micro", "{:.1%}"),
    ("precision", "precision", "{:.1%}"),
    ("recall", "recall", "{:.1%}"),
    ("le_deg", "LE [deg]", "{:.1f}"),
    ("rde", "RDE", "{:.2f}"),
)
SINGLE_HAZARD_COLUMNS: Columns = (
    ("frames", "frames", "{:d}"),
    ("accuracy", "accuracy", "{:.1%}"),
    ("located_frames", "located", "{:d}"),
    ("azimuth_error_median_deg", "median az. err [deg]", "{:.1f}"),
    ("angular_error_median_deg", "median ang. err [deg]", "{:.1f}"),
)
DIRECTION_COLUMNS: Columns = (
    ("frames", "frames", "{:d}"),
    ("model_located", "model located", "{:d}"),
    ("model_azimuth_error_median_deg", "model median az. err [deg]", "{:.1f}"),
    ("physics_azimuth_error_median_deg", "physics median az. err [deg]", "{:.1f}"),
)
DIRECTION_ROWS = (
    "all",
    *(name for name, _, _ in SECTORS),
    BEHIND,
    *(visibility_group(v) for v in Visibility),
)
COMPARED_SET_METRICS = ("f20", "le_deg", "rde")


def detection_groups(metrics: Mapping[str, Any]) -> list[str]:
    """The detection groups of one result, in order: overall, each visibility, each polyphony."""
    visibility = [visibility_group(v) for v in Visibility]
    polyphony = sorted((g for g in metrics if g.startswith("polyphony_")), key=lambda g: int(g.split("_")[1]))
    return [g for g in (OVERALL_GROUP, *visibility, *polyphony) if g in metrics]


def metric_at(values: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in nested metric dicts (e.g. ("direction", "all", "frames")); None
    where a key is missing."""
    for key in path:
        values = values.get(key) if isinstance(values, Mapping) else None
    return values


def rows_table(rows: Mapping[str, Mapping[str, Any]], columns: Columns, first: str) -> str:
    """Markdown table: one row per entry of ``rows`` (its key in the first column), one column per metric."""
    header = f"| {first} | " + " | ".join(title for _, title, _ in columns) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    for name, values in rows.items():
        cells = [format_value(values.get(key), fmt) for key, _, fmt in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def set_metrics_markdown(metrics: Mapping[str, Any], heading: str) -> list[str]:
    """The three tables of one model's set metrics under ``heading`` (a Markdown heading line)."""
    lines = [
        heading,
        "",
        rows_table({g: metrics[g] for g in detection_groups(metrics)}, DETECTION_COLUMNS, "group"),
    ]
    if SINGLE_HAZARD_GROUP in metrics:
        lines += ["", "Frames with at most one hazard (top slot):", ""]
        lines += [rows_table({"single hazard": metrics[SINGLE_HAZARD_GROUP]}, SINGLE_HAZARD_COLUMNS, "group")]
    if DIRECTION_GROUP in metrics:
        direction = metrics[DIRECTION_GROUP]
        lines += ["", "Direction on frames with one hazard, model top slot beside the physics baseline:", ""]
        rows = {name: direction[name] for name in DIRECTION_ROWS if name in direction}
        lines += [rows_table(rows, DIRECTION_COLUMNS, "true azimuth / visibility")]
    return [*lines, ""]


def set_comparison_markdown(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """F20, LE and RDE of several models side by side (a row per model, a column per group)."""
    groups = detection_groups(next(iter(results.values())))
    lines = []
    for metric in COMPARED_SET_METRICS:
        lines += [f"## {metric}", "", comparison_table(results, metric, groups), ""]
    return lines
