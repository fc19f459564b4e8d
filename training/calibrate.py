"""Refit a checkpoint's calibration on scenes made from real recordings, and rewrite it in place.

    python training/calibrate.py --checkpoint runs/demo/checkpoints/best \\
        --sound-dir ~/.cache/avi_ros/sounds/bank/val [--scenes 300 --seed 1001]

Training calibrates ``best`` on its synthetic validation split (``calibration.enabled``). Out of
that domain its confidence can say little (a median of 0.95 when right and 0.94 when wrong, seen
on real recordings), so this fits the temperature (class logits) and Platt scaling (confidence
logit) again, on scenes rendered from the bank's validation recordings (``training.real_scenes``,
condition ``default``). The fit starts
from the raw head: an earlier calibration stored in the checkpoint is undone first, so running
this twice gives the result of running it once. The checkpoint directory is replaced atomically
(other files in it, e.g. ``progress.json``, are kept) and its ``extra["calibration"]`` records the
fitted values and the data they were fitted on.

One set of parameters is shared by the model's K slots (their shared head folds it;
``training.calibration`` says why): the temperature on the class logits of the slots matched to a
true hazard (Hungarian matching of the loss), Platt scaling on every slot's confidence logit
against "matched to a true hazard" (a hazard is there). Printed before and after: accuracy and
class NLL over the matched slots, ECE and confidence AUROC over every slot (accuracy does not
change: the argmax is kept).

The scene settings (camera, occluders, rooms) are those of ``--config``, else of the run the
checkpoint belongs to (``RUN/config_resolved.yaml``), else the generator's defaults. A resumable
checkpoint (``checkpoints/last``) is refused: resuming would train on the calibrated head.
Exit status 0, or 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avi_ros import checkpoint
from avi_ros.data.scene_config import SceneConfig
from avi_ros.device import resolve_device
from avi_ros.models.hazard_set import HazardSetModel
from training.calibration import Calibration, fit_calibration, fold_into_head, load_uncalibrated
from training.collect_outputs import collect_outputs, shard_prepare_config
from training.config import SplitConfig, load_config, read_resolved_config
from training.evaluate import run_config_of
from training.real_scenes import bank_counts, real_scene_directory, real_store
from training.resume_state import TRAINER_STATE_FILE, save_training_checkpoint
from training.script_errors import script_main
from training.tables import portable_path
from training.typed_config import ConfigError

DEFAULT_SCENES = 300
DEFAULT_SEED = 1001  # scene geometry seed of the real validation scenes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python training/calibrate.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory to recalibrate")
    parser.add_argument(
        "--sound-dir", type=Path, required=True, help="validation split of the sound bank (BANK/val)"
    )
    parser.add_argument("--scenes", type=int, default=DEFAULT_SCENES, help="scenes to fit on")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="base seed of those scenes")
    parser.add_argument("--config", type=Path, help="training config whose scene settings to use")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("runs/cache/real"), help="where the rendered scenes are cached"
    )
    parser.add_argument("--workers", type=int, default=1, help="scene generation processes")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--dry-run", action="store_true", help="fit and report, but leave the checkpoint")
    return parser


def base_scene(checkpoint: Path, config: Path | None) -> SceneConfig:
    """The scene settings of ``config``, else of the checkpoint's run, else the defaults."""
    if config is not None:
        return load_config(config).data.scene_config()
    run_config = run_config_of(checkpoint)
    if run_config is not None:
        return read_resolved_config(run_config).data.scene_config()
    return SceneConfig()


def rewrite_checkpoint(
    directory: Path,
    model: HazardSetModel,
    metadata: checkpoint.CheckpointMetadata,
    calibration: Calibration,
) -> None:
    """Replace ``directory`` atomically by ``model`` with ``calibration`` in its metadata; other
    files of the directory are carried over."""
    extra = {**metadata.extra, "calibration": asdict(calibration)}

    def write(target: Path) -> None:
        for item in directory.iterdir():
            if item.is_file() and item.name not in (checkpoint.WEIGHTS_FILE, checkpoint.METADATA_FILE):
                shutil.copy2(item, target / item.name)
        checkpoint.save_checkpoint(target, model, metadata.feature_config, metadata.taxonomy, extra)

    save_training_checkpoint(directory, write)


def calibrate(args: argparse.Namespace) -> dict:
    """Fit (and unless ``dry_run`` store) the calibration; returns the report printed by ``main``."""
    if (args.checkpoint / TRAINER_STATE_FILE).is_file():
        raise ConfigError(
            f"{args.checkpoint} is a resumable training checkpoint; calibrate checkpoints/best instead "
            "(a resumed run would train on the calibrated head)"
        )
    device = resolve_device(args.device)
    model, metadata, previous = load_uncalibrated(args.checkpoint, device)
    split = SplitConfig(args.scenes, args.seed)
    scene = base_scene(args.checkpoint, args.config)
    directory = real_scene_directory(
        args.sound_dir, "default", split, scene, args.cache_dir, args.workers, True
    )
    store = real_store(directory, "default", shard_prepare_config(metadata, directory), device, progress=True)
    targets = collect_outputs(model, store, device, batch_size=64).calibration_targets()
    counts, unit = bank_counts(args.sound_dir)
    fitted_on = (
        f"real validation scenes: {len(store)} of {args.scenes} rendered (seed {args.seed}; the others "
        f"had no real recording of their class) from {portable_path(args.sound_dir.resolve())}, "
        f"{sum(counts.values())} {unit}; K = {metadata.model_config.hazard_slots} slots share it: "
        f"temperature on the {len(targets.labels)} matched slots, Platt on all {len(targets.present)} slots"
    )
    calibration = fit_calibration(targets, fitted_on)
    report = {
        "checkpoint": str(args.checkpoint),
        "hazard_slots": metadata.model_config.hazard_slots,
        "calibration": asdict(calibration),
        "previous": asdict(previous) if previous is not None else None,
        "before": targets.figures(previous),
        "after": targets.figures(calibration),
        "written": not args.dry_run,
    }
    if not args.dry_run:
        fold_into_head(model.head, calibration)
        rewrite_checkpoint(args.checkpoint, model.cpu(), metadata, calibration)
    return report


def format_report(report: dict) -> str:
    rows = [("ECE", "ece", "{:.3f}"), ("confidence AUROC", "confidence_auroc", "{:.3f}")]
    rows += [("class NLL", "nll", "{:.3f}"), ("accuracy", "accuracy", "{:.1%}")]
    lines = ["| metric | before | after |", "|---|---:|---:|"]
    for title, key, fmt in rows:
        cells = [report[when][key] for when in ("before", "after")]
        lines.append(f"| {title} | " + " | ".join("–" if v is None else fmt.format(v) for v in cells) + " |")
    c = report["calibration"]
    lines.append(
        f"\ntemperature {c['temperature']:.3f}, confidence scale {c['scale']:.3f}, offset {c['offset']:.3f}; "
        f"fitted on {c['fitted_on']}"
    )
    return "\n".join(lines)


def calibrate_and_report(args: argparse.Namespace) -> int:
    """Calibrate as the command line says and print the before/after table."""
    report = calibrate(args)
    print(format_report(report))
    action = "rewrote" if report["written"] else "dry run: left"
    print(f"{action} {args.checkpoint}")
    return 0


main = script_main(build_parser, calibrate_and_report)


if __name__ == "__main__":
    sys.exit(main())
