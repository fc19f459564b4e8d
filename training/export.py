"""What a run hands over besides the checkpoint: labels.json and a model card with its metrics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from avi_ros.taxonomy import Taxonomy
from training.set_report import set_metrics_markdown


def write_labels(taxonomy: Taxonomy, path: Path) -> Path:
    """labels.json: class names by id (0 = none) and the full taxonomy with its risk rules."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"labels": taxonomy.names, "taxonomy": taxonomy.to_dict()}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


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
    metrics_text = "\n".join(set_metrics_markdown(metrics, f"## Metrics ({eval_split})"))
    text = f"""# Model card: {run_name}

Generated {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")} from commit `{git_commit}`.

## What it is

The avi_ros hazard model: a DCASE2023-style SELD encoder over 4-channel FOA audio, a 5-channel
ResNet over RGB + depth + occlusion mask, and K hazard slots, each looking at the view in the
direction it hears and weighing audio against vision by the occlusion it finds there, with a
multi-task head per slot. For one audio window and RGB-D frame it reports up to K hazards, each
with its class, direction (unit vector, microphone frame, REP-103), distance [m], a confidence,
its visibility, the risk level and a recommended action. Load this directory with
`avi_ros.checkpoint.load_checkpoint` or point the node's `model_path` at it.

## Training

{config_lines}

Classes (id: name): {", ".join(f"{i}: {name}" for i, name in enumerate(taxonomy.names))}.

| part | trainable parameters | parameters |
|---|---:|---:|
{params}

Calibration: {calib}

{metrics_text}
## Limits

- Trained on procedurally generated scenes (shoebox rooms, procedural sounds, box-like objects);
  expect a domain gap on real robots until it is fine-tuned on real recordings
  (`data.scene.sound_dir` takes real clips, e.g. UrbanSound8K).
- At most K hazards per frame (the config's `model.hazard_slots`); more simultaneous sources
  than slots go unreported.
- Confidence is calibrated on the data named under Calibration; recalibrate after a domain
  change (`training/calibrate.py --checkpoint DIR --sound-dir BANK/val` refits it on real recordings).
"""
    path.write_text(text, encoding="utf-8")
    return path
