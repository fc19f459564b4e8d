"""Make a trained checkpoint the model that ships with the package (``avi_ros/models/shipped``).

    python training/ship.py --checkpoint runs/hazard_set/checkpoints/best \\
        --test-metrics runs/hazard_set_test/metrics.json \\
        --test-data runs/cache/hazard_set/scenes-seed23-n600-* \\
        --direction docs/results/direction_shipped.json

Writes into ``--out`` (default: the shipped-model directory of ``avi_ros.shipped_model``):
- ``model.safetensors``: the weights in float16 (half the bytes, so the model fits in git; the
  feature statistics stay float32, where the checkpoint check compares them exactly), loaded back
  into a float32 model by ``avi_ros.checkpoint.load_checkpoint``;
- ``metadata.json``: the checkpoint's metadata, with the provenance under ``extra.shipped``;
- ``metrics/``: the run's validation metrics (as training wrote them, or ``--val-metrics``: those
  of ``training/evaluate.py``), its held-out test-split results (from a study,
  ``--study``: the run of the same name; or from ``training/evaluate.py --data``, ``--test-metrics``)
  and the direction sweep (``--direction``), as JSON;
- ``MODEL_CARD.md``: what the model is, the command, config, seed, data, wall time, machine and the
  figures of those files.

Before anything is written, the float16 weights are loaded back and run on a random input; the
outputs must match the float32 model's to 1e-2 (directions, probabilities), so a model that loses
accuracy in half precision is never shipped. Exit 0, or 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import yaml
from safetensors.torch import save_file

from avi_ros.checkpoint import (
    FORMAT_NAME,
    METADATA_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    atomic_write,
    load_checkpoint,
    read_json_object,
)
from avi_ros.models.intensity_direction import MODE_STEPS
from avi_ros.shipped_model import shipped_model_path
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD
from training.tables import portable_path

MAX_SHIPPED_BYTES = 30 * 1024 * 1024  # what git can carry comfortably
HALF_PRECISION_TOLERANCE = 1e-2
KEEP_FLOAT32 = ("feature_norm.",)  # compared exactly against metadata.json on load


def half_precision_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with floating tensors in float16, except ``KEEP_FLOAT32`` prefixes."""
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if value.is_floating_point() and not key.startswith(KEEP_FLOAT32):
            value = value.half()
        state[key] = value
    return state


def _probe_inputs(model: torch.nn.Module, metadata: Any) -> tuple[torch.Tensor | None, ...]:
    config = metadata.model_config
    generator = torch.Generator().manual_seed(0)
    channels, frames, bins = metadata.feature_config.shape
    features = torch.randn(2, channels, frames, bins, generator=generator)
    size = config.visual.image_size
    visual = torch.rand(2, 5, size, size, generator=generator) if config.uses_visual else None
    if config.hazard_slots > 0:
        view = torch.rand(2, config.view_grid**2, 6, generator=generator)
        view[..., :3] = torch.nn.functional.normalize(view[..., :3] + torch.tensor([1.0, 0.0, 0.0]), dim=-1)
        return features, visual, view
    return features, visual, torch.zeros(2)


def check_half_precision(checkpoint: Path, half_dir: Path) -> float:
    """Largest difference of directions and class probabilities between the float32 checkpoint
    and its float16 copy on one random input; raises CheckpointError above the tolerance."""
    full, metadata = load_checkpoint(checkpoint, "cpu")
    half, _ = load_checkpoint(half_dir, "cpu")
    inputs = _probe_inputs(full, metadata)
    with torch.inference_mode():
        a, b = full(*inputs), half(*inputs)
    difference = max(
        float((a.direction - b.direction).abs().max()),
        float((a.class_logits.softmax(-1) - b.class_logits.softmax(-1)).abs().max()),
    )
    if difference > HALF_PRECISION_TOLERANCE:
        raise CheckpointError(
            f"{checkpoint}: float16 weights change the outputs by {difference:.3g} "
            f"(> {HALF_PRECISION_TOLERANCE})"
        )
    return difference


def _run_dir(checkpoint: Path) -> Path:
    return checkpoint.resolve().parent.parent


def _study_run(study: Path | None, run_name: str) -> dict[str, Any] | None:
    """The study's entry of the run called ``run_name`` (variant_s<seed>), with the test split."""
    if study is None:
        return None
    data = json.loads(study.read_text(encoding="utf-8"))
    for variant, runs in data["runs"].items():
        for run in runs:
            if f"{variant}_s{run['seed']}" == run_name:
                return {"test": data["test"], "seed": run["seed"], "metrics": run["metrics"]}
    raise CheckpointError(f"{study}: no run named {run_name}")


def _widening(scene: dict[str, Any]) -> str:
    """What widened the training split's thin real classes (procedural sounds, clip augmentation)."""
    parts = []
    if scene.get("procedural_probability"):
        parts.append(f"{scene['procedural_probability']:.0%} of hazards from the wide procedural families")
    if scene.get("clip_augmentation") is not None:
        parts.append("waveform augmentation of the real clips")
    return f"; training split only: {', '.join(parts)}" if parts else ""


def _single_model_metrics(metrics_file: Path) -> dict[str, Any]:
    """The metrics of the one model of a ``training/evaluate.py`` metrics.json."""
    results = json.loads(metrics_file.read_text(encoding="utf-8"))
    if len(results) != 1:
        raise ValueError(f"{metrics_file}: expected the metrics of one model, found {len(results)}")
    return next(iter(results.values()))


def _evaluated_run(metrics_file: Path, data: Path | None, seed: int | None) -> dict[str, Any]:
    """The test-split entry (as ``_study_run`` gives it) from ``training/evaluate.py --data DIR``'s
    metrics.json of this one checkpoint, with the split's size, seed and sounds from ``DIR``."""
    if data is None:
        raise CheckpointError("--test-metrics needs --test-data: the held-out split it was computed on")
    metrics = _single_model_metrics(metrics_file)
    index = json.loads((data / "index.json").read_text(encoding="utf-8"))
    sounds = index["config"].get("sound_dir")
    return {
        "test": {
            "scenes": index["count"],
            "sounds": f"real test recordings of {sounds}" if sounds else "procedural sounds",
            "seed": index["seed"],
        },
        "seed": seed,
        "metrics": metrics,
    }


def _wall_time_s(run_dir: Path) -> float | None:
    """Training wall time [s] from the run's step log: ``elapsed_s`` restarts at each resume, so the
    last value of every segment is summed."""
    log = run_dir / "metrics" / "train.jsonl"
    if not log.is_file():
        return None
    total = last = 0.0
    for line in log.read_text(encoding="utf-8").splitlines():
        elapsed = float(json.loads(line).get("elapsed_s", 0.0))
        if elapsed < last:
            total += last
        last = elapsed
    return total + last


def _fmt(value: Any, scale: float = 1.0, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}"


def model_card(
    provenance: dict[str, Any],
    val: dict[str, Any],
    test: dict[str, Any] | None,
    direction: dict[str, Any] | None,
) -> str:
    """The shipped model's card (Markdown) from its provenance and metrics files."""
    lines = [
        "# The shipped avi_ros model",
        "",
        "The model the node, the launch file, `avi-ros replay` and `avi-ros predict` load when no",
        "model path is given. Every figure below is read from the files in `metrics/`.",
        "",
        "## What it is",
        "",
        f"- **Task**: hazard set, {provenance['hazard_slots']} slots; variant `{provenance['variant']}`;"
        f" directions from `{provenance['direction']}`{_direction_reading(provenance['direction'])}.",
        f"- **Inputs**: {provenance['features']}; RGB-D {provenance['image_size']} px with the occlusion"
        f" mask and {provenance['view_grid']} x {provenance['view_grid']} view tokens.",
        f"- **Weights**: float16 safetensors, {provenance['bytes'] / 1e6:.1f} MB; float16 changes the"
        f" outputs by at most {provenance['half_precision_difference']:.1e} on a probe input.",
        "",
        "## How it was made",
        "",
        f"- **Command**: `{provenance['command']}`",
        f"- **Config**: `{provenance['config']}` (resolved copy in the run directory),"
        f" seed {provenance['seed']}",
        f"- **Data**: {provenance['data']}",
        *_lineage_lines(provenance),
        f"- **Machine**: {provenance['machine']}",
        f"- **Git commit**: {provenance['git_commit']}",
        "",
        "## How well it does",
        "",
    ]
    raw = "; the raw head, before the calibration below" if provenance.get("calibration") else ""
    sections = [(f"validation split (synthetic scenes, bank's validation recordings{raw})", val)]
    if test is not None:
        sections.append(
            (
                f"held-out test split ({test['test']['scenes']} scenes, {test['test']['sounds']}; "
                f"calibrated, confidence threshold {test.get('confidence_threshold', 0.5):g})",
                test["metrics"],
            )
        )
    for title, metrics in sections:
        f20 = [
            _fmt(metrics.get(group, {}).get("f20"), 100)
            for group in ("set", "visibility_visible", "visibility_occluded", "visibility_out_of_view")
        ]
        le = _fmt(metrics.get("set", {}).get("le_deg"))
        accuracy = _fmt(metrics.get("single_hazard", {}).get("accuracy"), 100)
        lines += [
            f"**{title}**",
            "",
            "| F20 set [%] | visible | occluded | out of view | LE set [deg] | 1-hazard class acc. [%] |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {' | '.join(f20)} | {le} | {accuracy} |",
            "",
        ]
        if "direction" in metrics:
            lines += [
                "Median azimuth error on one-hazard frames [deg], model against the physics baseline:",
                "",
                "| sector | frames | model | physics |",
                "|---|---:|---:|---:|",
            ]
            for sector in ("all", "front", "left", "right", "behind"):
                row = metrics["direction"][sector]
                lines.append(
                    f"| {sector} | {row['frames']} | {_fmt(row['model_azimuth_error_median_deg'])} "
                    f"| {_fmt(row['physics_azimuth_error_median_deg'])} |"
                )
            lines.append("")
    if direction is not None:
        lines += [
            "Direction sweep of plane waves and rooms: `metrics/direction.json` (bench/bench_direction.py).",
            "",
        ]
    lines += [
        "## Limits",
        "",
        "- Trained on synthetic rooms rendered from 2-8 real recordings per hazard class (Debian packages);",
        "  recognition of real sounds it never heard is the weak point (see the test split above).",
        f"- Calibration: {_calibration_note(provenance.get('calibration'))}",
        "",
    ]
    return "\n".join(lines)


def _direction_reading(direction: str) -> str:
    """How the model reads its intensity directions at inference (``seek_mode``), for the card."""
    if direction != "intensity":
        return ""
    return (
        f", read at the nearest mode of each slot's bins ({MODE_STEPS} mean-shift steps at inference,"
        " `avi_ros.models.intensity_direction.seek_mode`)"
    )


def _lineage_lines(provenance: dict[str, Any]) -> list[str]:
    """The model card's lines on where the weights started: a pre-trained SELD encoder, or a whole
    earlier checkpoint (``pretrained.model_checkpoint``, staged transfer), whose own stages the
    command lists; the wall time is the last stage's."""
    wall = f"{_fmt(provenance['wall_time_s'], 1 / 60)} min"
    started_from = provenance.get("started_from")
    if started_from:
        return [
            f"- **Started from**: `{started_from}` (`pretrained.model_checkpoint`, staged transfer: "
            "every weight, its calibration undone); the command lists the stages before it",
            f"- **Wall time**: {wall} of this last stage (the earlier stages and the SELD pre-training "
            "not included)",
        ]
    return [
        f"- **SELD encoder**: pre-trained with `{provenance['seld_config']}`, {provenance['seld_training']}",
        f"- **Wall time**: {wall} of the set model's training (SELD pre-training not included)",
    ]


def _seld_training(stages: list[dict[str, Any]]) -> str:
    """How the set stages treated the pre-trained SELD encoder (for the model card)."""
    tuned = [stage for stage in stages if stage.get("seld_trainable_fraction", 0.0) > 0]
    if not tuned:
        return "frozen"
    parts = [
        f"{stage['seld_trainable_fraction']:.0%} of it fine-tuned with the set loss in stage"
        f" `{stage.get('name')}` (lr {stage.get('lr', {}).get('audio_encoder')})"
        for stage in tuned
    ]
    return "; ".join(parts)


def _calibration_note(calibration: dict[str, Any] | None) -> str:
    """The stored calibration in words (for the model card)."""
    if not calibration:
        return "none stored; the confidence (probability that a hazard is there) is the model's own."
    return (
        f"temperature {calibration['temperature']:.3g} on the class logits, Platt scaling"
        f" ({calibration['scale']:.3g}, {calibration['offset']:.3g}) on the confidence logit, fitted on"
        f" {calibration['fitted_on']}; the confidence is the probability that a hazard is there."
    )


def ship(args: argparse.Namespace) -> Path:
    checkpoint: Path = args.checkpoint
    run_dir = _run_dir(checkpoint)
    model, metadata = load_checkpoint(checkpoint, "cpu")
    state = half_precision_state(model)
    metadata_dict = read_json_object(checkpoint / METADATA_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        half_dir = Path(tmp)
        save_file(state, str(half_dir / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        (half_dir / METADATA_FILE).write_text(json.dumps(metadata_dict, indent=2) + "\n", encoding="utf-8")
        difference = check_half_precision(checkpoint, half_dir)
        size = (half_dir / WEIGHTS_FILE).stat().st_size
        if size > MAX_SHIPPED_BYTES:
            raise CheckpointError(
                f"{checkpoint}: {size / 1e6:.1f} MB in float16, over {MAX_SHIPPED_BYTES / 1e6:.0f} MB"
            )
        resolved = yaml.safe_load((run_dir / "config_resolved.yaml").read_text(encoding="utf-8"))
        config = metadata.model_config
        data = resolved.get("data", {})
        train, val_split = data.get("train", {}), data.get("val", {})
        provenance = {
            "source_run": run_dir.name,
            "command": args.command,
            "config": args.config,
            "seld_config": args.seld_config,
            "seed": resolved.get("seed"),
            "data": f"{train.get('scenes')} training / {val_split.get('scenes')} validation scenes, seeds"
            f" {train.get('seed')} / {val_split.get('seed')}, sound bank: real recordings of the bank's"
            " train/val splits, FOA channel swaps "
            f"{data.get('acs_transforms')}, visibility mix {data.get('scene', {}).get('visibility_mix')}"
            + _widening(data.get("scene", {})),
            "hazard_slots": config.hazard_slots,
            "variant": config.variant,
            "direction": config.direction,
            "view_grid": config.view_grid,
            "image_size": config.visual.image_size,
            "features": f"{metadata.feature_config.kind} features,"
            f" {metadata.feature_config.window_seconds} s window",
            "bytes": size,
            "half_precision_difference": difference,
            "wall_time_s": _wall_time_s(run_dir),
            "machine": args.machine
            or f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}",
            "git_commit": resolved.get("git_commit", "unknown"),
            "seld_training": _seld_training(resolved.get("stages", [])),
            "started_from": (resolved.get("pretrained") or {}).get("model_checkpoint"),
            "calibration": metadata.extra.get("calibration"),
        }
        metadata_dict.setdefault("extra", {})["shipped"] = provenance
        val = (
            _single_model_metrics(args.val_metrics)
            if args.val_metrics is not None
            else json.loads((run_dir / "export" / "metrics.json").read_text(encoding="utf-8"))
        )
        test = (
            _evaluated_run(args.test_metrics, args.test_data, resolved.get("seed"))
            if args.test_metrics is not None
            else _study_run(args.study, run_dir.name)
        )
        if test is not None:  # no machine path in committed files
            test["confidence_threshold"] = DEFAULT_CONFIDENCE_THRESHOLD  # what evaluate.py scores at
            test["test"] = {k: v for k, v in test["test"].items() if k != "directory"}
            test["test"]["sounds"] = portable_path(test["test"]["sounds"])
        direction = json.loads(args.direction.read_text(encoding="utf-8")) if args.direction else None
        out: Path = args.out
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(half_dir / WEIGHTS_FILE, out / (WEIGHTS_FILE + ".tmp"))
        (out / (WEIGHTS_FILE + ".tmp")).replace(out / WEIGHTS_FILE)
    text = json.dumps(metadata_dict, indent=2) + "\n"
    atomic_write(out / METADATA_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    metrics_dir = out / "metrics"
    metrics_dir.mkdir(exist_ok=True)
    (metrics_dir / "validation.json").write_text(json.dumps(val, indent=2) + "\n", encoding="utf-8")
    if test is not None:
        (metrics_dir / "test_split.json").write_text(json.dumps(test, indent=2) + "\n", encoding="utf-8")
    if direction is not None:
        (metrics_dir / "direction.json").write_text(json.dumps(direction, indent=2) + "\n", encoding="utf-8")
    (out / "MODEL_CARD.md").write_text(model_card(provenance, val, test, direction), encoding="utf-8")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python training/ship.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="RUN/checkpoints/best of the model to ship"
    )
    parser.add_argument(
        "--study", type=Path, help="study.json holding this run's held-out test-split results"
    )
    parser.add_argument(
        "--test-metrics",
        type=Path,
        help="instead of --study: metrics.json of training/evaluate.py --data DIR on this checkpoint",
    )
    parser.add_argument("--test-data", type=Path, help="the held-out scene split of --test-metrics")
    parser.add_argument(
        "--val-metrics",
        type=Path,
        help="instead of the validation metrics training wrote (RUN/export/metrics.json): metrics.json"
        " of training/evaluate.py on the validation split, when the model is read another way since",
    )
    parser.add_argument("--direction", type=Path, help="direction sweep JSON of bench/bench_direction.py")
    parser.add_argument("--out", type=Path, default=shipped_model_path())
    parser.add_argument(
        "--command",
        default="python training/study.py --config training/configs/hazard_set.yaml --variants"
        " full --seeds 0 1 2 --test-scenes 600 --out runs/study_intensity model.direction=intensity",
        help="the command that trained the run (for the model card)",
    )
    parser.add_argument("--config", default="training/configs/hazard_set.yaml")
    parser.add_argument("--seld-config", default="training/configs/hazard_set_seld.yaml")
    parser.add_argument("--machine", default="", help="the machine it trained on (for the model card)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = ship(args)
    except (OSError, ValueError, KeyError, CheckpointError) as exc:
        print(f"ship: {exc}", file=sys.stderr)
        return 2
    print(f"shipped {args.checkpoint} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
