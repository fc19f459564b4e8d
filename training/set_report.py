"""Markdown tables of a hazard-model evaluation (``training.metrics`` groups), one model or several.

A value is a number or, for training seeds aggregated by ``training.metrics.mean_and_std``, a
``{"mean", "std", "n"}`` dict shown as mean ± std (``format_value``). Three tables:
detection (F20 / LE / RDE, DCASE-style) overall, by visibility and by polyphony; the single-hazard
figures (top slot on frames with at most one hazard); and the direction group, the model's top
slot beside the physics baseline (FOA intensity vector) by sector and visibility. And the study's
tables (``study_table``): F20, LE and RDE per variant, mean ± std over training seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from avi_ros.taxonomy import Visibility
from training.metrics import (
    BEHIND,
    DIRECTION_GROUP,
    OVERALL_GROUP,
    SECTORS,
    SINGLE_HAZARD_GROUP,
    polyphony_group,
    visibility_group,
)

Columns = Sequence[tuple[str, str, str]]  # (metric key, header, format)

# How each metric of a group is shown: key -> (column header, format), one table for every report.
SHOWN: dict[str, tuple[str, str]] = {
    "frames": ("frames", "{:d}"),
    "hazards": ("hazards", "{:d}"),
    "f20": ("F20", "{:.1%}"),
    "f20_micro": ("F20 micro", "{:.1%}"),
    "precision": ("precision", "{:.1%}"),
    "recall": ("recall", "{:.1%}"),
    "le_deg": ("LE [deg]", "{:.1f}"),
    "rde": ("RDE", "{:.2f}"),
    "accuracy": ("accuracy", "{:.1%}"),
    "macro_f1": ("macro-F1", "{:.3f}"),
    "ece": ("ECE", "{:.3f}"),
    "confidence_auroc": ("conf. AUROC", "{:.3f}"),
    "false_alarm_rate": ("false alarms", "{:.1%}"),
    "located_frames": ("located", "{:d}"),
    "azimuth_error_median_deg": ("median az. err [deg]", "{:.1f}"),
    "angular_error_median_deg": ("median ang. err [deg]", "{:.1f}"),
    "model_located": ("model located", "{:d}"),
    "model_azimuth_error_median_deg": ("model median az. err [deg]", "{:.1f}"),
    "physics_azimuth_error_median_deg": ("physics median az. err [deg]", "{:.1f}"),
}


def shown(*keys: str) -> Columns:
    """The columns of these metric keys, as ``SHOWN`` shows them."""
    return [(key, *SHOWN[key]) for key in keys]


DETECTION_COLUMNS = shown("frames", "hazards", "f20", "f20_micro", "precision", "recall", "le_deg", "rde")
SINGLE_HAZARD_COLUMNS = shown(
    "frames", "accuracy", "macro_f1", "ece", "confidence_auroc", "false_alarm_rate"
) + shown("located_frames", "azimuth_error_median_deg", "angular_error_median_deg")
DIRECTION_COLUMNS = shown(
    "frames", "model_located", "model_azimuth_error_median_deg", "physics_azimuth_error_median_deg"
)
DIRECTION_ROWS = (
    "all",
    *(name for name, _, _ in SECTORS),
    BEHIND,
    *(visibility_group(v) for v in Visibility),
)
COMPARED_SET_METRICS = ("f20", "le_deg", "rde")
# One row per model, condition or fold: (path in its metrics, header, format); the direction figures
# put the model's top slot beside the physics baseline.
HEADLINE_COLUMNS = (
    ((OVERALL_GROUP, "f20"), "F20", "{:.1%}"),
    ((OVERALL_GROUP, "le_deg"), "LE [deg]", "{:.1f}"),
    ((OVERALL_GROUP, "rde"), "RDE", "{:.2f}"),
    ((SINGLE_HAZARD_GROUP, "accuracy"), "single-hazard accuracy", "{:.1%}"),
    ((SINGLE_HAZARD_GROUP, "ece"), "ECE", "{:.3f}"),
    ((SINGLE_HAZARD_GROUP, "confidence_auroc"), "conf. AUROC", "{:.3f}"),
    ((DIRECTION_GROUP, "all", "model_azimuth_error_median_deg"), "model median az. err [deg]", "{:.1f}"),
    ((DIRECTION_GROUP, "all", "physics_azimuth_error_median_deg"), "physics median az. err [deg]", "{:.1f}"),
)
TABLE_GROUPS: tuple[str, ...] = (
    OVERALL_GROUP,
    *(visibility_group(v) for v in Visibility),
    *(polyphony_group(n) for n in (1, 2, 3)),
)
# metric -> (heading, scale of the printed value, decimals), for the README's study tables
TABLE_METRICS: dict[str, tuple[str, float, int]] = {
    "f20": ("F20 [%]", 100.0, 1),
    "le_deg": ("LE [deg]", 1.0, 1),
    "rde": ("RDE", 1.0, 2),
}


def format_value(value: Any, fmt: str) -> str:
    """A value, or a mean ± std dict; None (no sample) as a dash. Counts of aggregates show their mean."""
    if isinstance(value, Mapping):
        mean, std = value.get("mean"), value.get("std")
        if mean is None:
            return "–"
        if fmt == "{:d}":
            return f"{mean:.0f}"
        return f"{fmt.format(mean)} ± {fmt.format(std)}" if value.get("n", 1) > 1 else fmt.format(mean)
    if value is None:
        return "–"
    return fmt.format(value)


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


OPERATING_POINT_COLUMNS = [
    ("threshold", "confidence threshold", "{:.2f}"),
    ("f20", "F20 set", "{:.1%}"),
    ("f20_visible", "F20 visible", "{:.1%}"),
    ("f20_out_of_view", "F20 out of view", "{:.1%}"),
    ("precision", "precision", "{:.1%}"),
    ("recall", "recall", "{:.1%}"),
    ("out_of_view_recall", "out-of-view recall", "{:.1%}"),
    ("false_alarm_rate", "false alarms", "{:.1%}"),
]


def operating_point(threshold: float, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What one confidence threshold gives (the set metrics of ``training.metrics`` at it): the
    detection figures the thresholds trade against the false alarms on frames without a hazard."""
    return {
        "threshold": threshold,
        "f20": metrics["set"]["f20"],
        "f20_visible": metric_at(metrics, ("visibility_visible", "f20")),
        "f20_out_of_view": metric_at(metrics, ("visibility_out_of_view", "f20")),
        "precision": metrics["set"]["precision"],
        "recall": metrics["set"]["recall"],
        "out_of_view_recall": metric_at(metrics, ("visibility_out_of_view", "recall")),
        "false_alarm_rate": metric_at(metrics, (SINGLE_HAZARD_GROUP, "false_alarm_rate")),
    }


def operating_points_markdown(points: Sequence[Mapping[str, Any]]) -> str:
    """One row per threshold of ``operating_point``."""
    return rows_table({f"{p['threshold']:.2f}": p for p in points}, OPERATING_POINT_COLUMNS[1:], "threshold")


def set_comparison_markdown(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """F20, LE and RDE of several models side by side (a row per model, a column per group)."""
    groups = detection_groups(next(iter(results.values())))
    lines = []
    for metric in COMPARED_SET_METRICS:
        rows = {name: {g: values.get(g, {}).get(metric) for g in groups} for name, values in results.items()}
        table = rows_table(rows, [(g, g, SHOWN[metric][1]) for g in groups], "model")
        lines += [f"## {metric}", "", table, ""]
    return lines


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
