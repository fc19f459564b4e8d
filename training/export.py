"""What a run hands over besides the checkpoint: labels.json, a model card and metrics tables.

A metric value in a table is either a number or, for results aggregated over several training
seeds (``training.metrics.mean_and_std``), a ``{"mean", "std", "n"}`` dict shown as mean ± std.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from avi_ros.taxonomy import Taxonomy

# Columns of the summary tables: (metric key, header, format).
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("count", "n", "{:d}"),
    ("accuracy", "accuracy", "{:.1%}"),
    ("macro_f1", "macro-F1", "{:.3f}"),
    ("angular_error_median_deg", "median ang. err [deg]", "{:.1f}"),
    ("angular_error_mean_deg", "mean ang. err [deg]", "{:.1f}"),
    ("distance_rmse_m", "dist. RMSE [m]", "{:.2f}"),
    ("ece", "ECE", "{:.3f}"),
    ("confidence_auroc", "conf. AUROC", "{:.3f}"),
    ("false_alarm_rate", "false alarms", "{:.1%}"),
    ("high_risk_recall", "high-risk recall", "{:.1%}"),
)
# Columns of the per-class table: (metric key, header, format).
CLASS_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("count", "scenes", "{:d}"),
    ("accuracy", "accuracy", "{:.1%}"),
    ("f1", "F1", "{:.3f}"),
    ("azimuth_error_median_deg", "median az. err [deg]", "{:.1f}"),
)


def write_labels(taxonomy: Taxonomy, path: Path) -> Path:
    """labels.json: class names by id (0 = none) and the full taxonomy with its risk rules."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"labels": taxonomy.names, "taxonomy": taxonomy.to_dict()}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


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


def per_class_table(
    per_class: Mapping[str, Mapping[str, Any]], recordings: Mapping[str, int] | None = None, unit: str = ""
) -> str:
    """Markdown table: one row per class with its scene count, accuracy (recall), F1 and median
    azimuth error, and, given ``recordings``, how many real recordings (``unit``) the class rests on."""
    titles = ([f"real {unit}"] if recordings is not None else []) + [title for _, title, _ in CLASS_COLUMNS]
    header = "| class | " + " | ".join(titles) + " |"
    rule = "|---|" + "---:|" * len(titles)
    rows = []
    for name, values in per_class.items():
        cells = [str(recordings.get(name, 0))] if recordings is not None else []
        cells += [format_value(values.get(key), fmt) for key, _, fmt in CLASS_COLUMNS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])


def metrics_table(metrics: Mapping[str, Mapping[str, Any]], groups: Sequence[str] | None = None) -> str:
    """Markdown table: one row per group (overall, occlusion bins, visibility), one column per metric."""
    groups = list(groups or metrics.keys())
    header = "| group | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(TABLE_COLUMNS)
    rows = [
        f"| {group} | "
        + " | ".join(format_value(metrics[group].get(key), fmt) for key, _, fmt in TABLE_COLUMNS)
        + " |"
        for group in groups
        if group in metrics
    ]
    return "\n".join([header, rule, *rows])


def comparison_table(
    results: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str, groups: Sequence[str]
) -> str:
    """Markdown table of one metric: one row per model, one column per group."""
    fmt = next((f for key, _, f in TABLE_COLUMNS if key == metric), "{:.3f}")
    header = "| model | " + " | ".join(groups) + " |"
    rule = "|---|" + "---:|" * len(groups)
    rows = [
        f"| {name} | " + " | ".join(format_value(metrics.get(g, {}).get(metric), fmt) for g in groups) + " |"
        for name, metrics in results.items()
    ]
    return "\n".join([header, rule, *rows])


def write_model_card(
    path: Path,
    *,
    run_name: str,
    config_summary: Mapping[str, Any],
    parameter_counts: Mapping[str, Mapping[str, int]],
    metrics: Mapping[str, Mapping[str, Any]],
    taxonomy: Taxonomy,
    calibration: Mapping[str, float] | None,
    git_commit: str,
    eval_split: str,
) -> Path:
    """A markdown model card: what the model is, what it was trained on, how well it does, limits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config_lines = "\n".join(f"- **{key}**: {value}" for key, value in config_summary.items())
    params = "\n".join(
        f"| {part} | {counts['trainable']:,} | {counts['total']:,} |"
        for part, counts in parameter_counts.items()
    )
    calib = (
        f"Temperature {calibration['temperature']:.3f} on the class logits; Platt scaling "
        f"a = {calibration['scale']:.3f}, b = {calibration['offset']:.3f} on the confidence logit, "
        f"fitted on {calibration.get('fitted_on', 'the validation split')}, folded into the head's weights."
        if calibration
        else "None."
    )
    text = f"""# Model card: {run_name}

Generated {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")} from commit `{git_commit}`.

## What it is

The avi_ros imagination model: a DCASE2023-style SELD encoder over 4-channel FOA audio, a
5-channel ResNet over RGB + depth + occlusion mask, an occlusion-aware adapter that weighs
audio against vision by how much of the view is blocked, and a multi-task head. For one audio
window and RGB-D frame it estimates the hazard class, its direction (unit vector, microphone
frame, REP-103) and distance [m], a calibrated confidence, the risk level and a recommended
action. Load this directory with `avi_ros.checkpoint.load_checkpoint` or point the node's
`model_path` at it.

## Training

{config_lines}

Classes (id: name): {", ".join(f"{i}: {name}" for i, name in enumerate(taxonomy.names))}.

| part | trainable parameters | parameters |
|---|---:|---:|
{params}

Calibration: {calib}

## Metrics ({eval_split})

Angular error and distance RMSE are over samples with a hazard (class != none); occlusion bins
use the exact fraction of the view covered by occluders; "occluded" means the hazard is in the
field of view but hidden.

{metrics_table(metrics)}

## Limits

- Trained on procedurally generated scenes (shoebox rooms, procedural sounds, box-like objects);
  expect a domain gap on real robots until it is fine-tuned on real recordings
  (`data.scene.sound_dir` takes real clips, e.g. UrbanSound8K).
- One hazard per frame: a second simultaneous source is treated as interference.
- Confidence is calibrated on the data named under Calibration; recalibrate after a domain
  change (`training/calibrate.py --checkpoint DIR --sound-dir BANK/val` refits it on real recordings).
"""
    path.write_text(text, encoding="utf-8")
    return path
