"""UrbanSound8K cross-validation: the dataset's own folds, train on the others, test on one, each in turn.

    python training/crossval.py --config training/configs/us8k_cv.yaml --root /data/UrbanSound8K
    python training/crossval.py --config training/configs/us8k_cv.yaml --root /data/UrbanSound8K --folds 1 2

Rerunning the same command continues where it stopped: a finished fold (``foldK/test_metrics.json``)
is reused, an interrupted one resumes from ``foldK/checkpoints/last`` exactly as
``train.py --resume`` does (same batches, same loss curve), and later folds start afresh.

For test fold k, the hazard model of ``--config`` is trained by the usual trainer on scenes
whose real sounds come from every other fold of the tree (``data.scene.sound_dir`` = the tree,
``sound_folds`` = those folds; the validation split, which picks ``checkpoints/best``, is drawn
from the same training folds with its own seed). It is then tested on ``--test-scenes`` scenes
whose every hazard of a class UrbanSound8K has is a clip of fold k alone; hazard scenes of the
taxonomy classes UrbanSound8K lacks (their sounds would be procedural) are left out. The folds
are the metadata's own, never reshuffled; slices of one Freesound recording never cross a fold
(``urbansound8k.fold_split`` refuses metadata where they would). The test scenes are scored as
``training/evaluate.py`` scores any checkpoint (``training.metrics``: F20 / LE / RDE, the
single-hazard figures of the top slot, the direction group beside the physics baseline).

The figures are those of the hazard model on scenes built from UrbanSound8K clips: the classes
that map onto the taxonomy (car_horn, dog_bark, drilling + jackhammer as power_tool,
engine_idling as vehicle_engine, siren) and background-only scenes. They are not comparable with
published 10-class clip-classification accuracies.

Outputs under ``--out`` (default: the config's output_dir): ``foldK/`` (a training run directory:
``checkpoints/best/model.safetensors`` holds that fold's best weights) with ``test_metrics.json``,
and ``summary.json`` / ``summary.md`` with each fold and the mean ± std over folds. Exit status 0
when the requested folds are done (or ``runtime.stop_after_steps`` stopped one), 2 for bad input,
128 + N after signal N.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avi_ros.checkpoint import load_checkpoint
from avi_ros.data.urbansound8k import fold_split, read_urbansound8k_clips
from avi_ros.device import resolve_device
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD
from training.collect_outputs import shard_prepare_config
from training.config import ExperimentConfig, SplitConfig, load_config
from training.evaluate import evaluate_checkpoint_store
from training.metrics import mean_and_std
from training.real_scenes import real_store
from training.resume_state import resolve_checkpoint
from training.run_status import complete_run
from training.script_errors import script_main
from training.set_report import HEADLINE_COLUMNS, format_value, metric_at
from training.splits import ensure_scenes, split_directory
from training.typed_config import ConfigError

TEST_METRICS = "test_metrics.json"
DEFAULT_TEST_SCENES = 500
DEFAULT_TEST_SEED = 4242  # scene geometry seed of every fold's test scenes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python training/crossval.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", type=Path, required=True, help="training config (training/configs/us8k_cv.yaml)"
    )
    parser.add_argument(
        "--root", type=Path, required=True, help="UrbanSound8K folder (metadata/, audio/foldN/)"
    )
    parser.add_argument(
        "--folds", type=int, nargs="+", help="test folds to run (default: every fold of the tree)"
    )
    parser.add_argument("--out", type=Path, help="output directory (default: the config's output_dir)")
    parser.add_argument("--test-scenes", type=int, default=DEFAULT_TEST_SCENES, help="test scenes per fold")
    parser.add_argument(
        "--test-seed", type=int, default=DEFAULT_TEST_SEED, help="base seed of the test scenes"
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of --config")
    return parser


def tree_folds(root: Path, requested: list[int] | None) -> tuple[list[int], list[int]]:
    """(every fold of the tree, the test folds to run); checks that no recording crosses folds."""
    clips = read_urbansound8k_clips(root)
    folds = sorted({clip.fold for clip in clips})
    if len(folds) < 2:
        raise ValueError(f"{root}: cross-validation needs at least 2 folds, the metadata has {folds}")
    for fold in folds:
        fold_split(clips, [fold])  # raises when one fsID has slices in two folds
    chosen = sorted(set(requested)) if requested else folds
    missing = [fold for fold in chosen if fold not in folds]
    if missing:
        raise ValueError(f"--folds {missing}: not in the metadata of {root} (it has {folds})")
    return folds, chosen


def fold_config(
    config: ExperimentConfig, root: Path, fold: int, folds: list[int], out: Path
) -> ExperimentConfig:
    """``config`` trained on the sounds of every fold but ``fold``, writing into ``out/fold<fold>``."""
    scene = replace(
        config.data.scene, sound_dir=str(root.resolve()), sound_folds=tuple(f for f in folds if f != fold)
    )
    return replace(
        config,
        name=f"{config.name}_fold{fold}",
        output_dir=str((out / f"fold{fold}").resolve()),
        data=replace(config.data, scene=scene),
    )


def evaluate_fold(
    config: ExperimentConfig, run_dir: Path, root: Path, fold: int, split: SplitConfig
) -> dict[str, Any]:
    """Metrics of the fold's best checkpoint on scenes whose real sounds all come from ``fold``."""
    scene = replace(
        config.data.scene_config(),
        sound_dir=str(root.resolve()),
        sound_folds=(fold,),
        real_sound_probability=1.0,
    )
    directory = split_directory(config.data.cache_dir, split, scene)
    ensure_scenes(directory, split, scene, config.data.generation_workers, config.runtime.progress)
    device = resolve_device(config.runtime.device)
    model, metadata = load_checkpoint(resolve_checkpoint(run_dir / "checkpoints" / "best"), device)
    prepare = shard_prepare_config(metadata, directory)
    store = real_store(directory, "default", prepare, device, config.runtime.progress)
    result = evaluate_checkpoint_store(model, store, device, DEFAULT_CONFIDENCE_THRESHOLD)
    return {
        "fold": fold,
        "train_folds": list(config.data.scene.sound_folds or ()),
        "test_scenes": len(store),
        "rendered_scenes": split.scenes,
        "metrics": result,
    }


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-fold results plus their mean ± std (over folds) of every metric."""
    aggregate = mean_and_std([r["metrics"] for r in results])
    return {"folds": results, "mean_std": aggregate}


def summary_markdown(summary: dict[str, Any], root: Path) -> str:
    header = "| test fold | scenes | " + " | ".join(title for _, title, _ in HEADLINE_COLUMNS) + " |"
    lines = [
        f"# UrbanSound8K cross-validation (`{root}`)",
        "",
        "The hazard model trained on scenes from the other folds' clips, tested on scenes from the "
        "test fold's clips (mapped classes and background only); see training/crossval.py.",
        "",
        header,
        "|---|" + "---:|" * (len(HEADLINE_COLUMNS) + 1),
    ]
    rows = [(f"{r['fold']}", str(r["test_scenes"]), r["metrics"]) for r in summary["folds"]]
    rows.append(("mean ± std", "", summary["mean_std"]))
    for label, scenes, metrics in rows:
        cells = [format_value(metric_at(metrics, path), fmt) for path, _, fmt in HEADLINE_COLUMNS]
        lines.append(f"| {label} | {scenes} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])


def run(args: argparse.Namespace) -> int:
    """Run every requested fold in turn (see module doc); returns the exit status."""
    config = load_config(args.config, args.overrides)
    if args.test_scenes < 1:
        raise ConfigError(f"--test-scenes must be >= 1, got {args.test_scenes}")
    folds, chosen = tree_folds(args.root, args.folds)
    out = (args.out or config.resolved_output_dir()).resolve()
    split = SplitConfig(args.test_scenes, args.test_seed)
    results = []
    for fold in chosen:
        cfg = fold_config(config, args.root, fold, folds, out)
        run_dir = out / f"fold{fold}"
        marker = run_dir / TEST_METRICS
        if marker.is_file():
            print(f"fold {fold}: done earlier ({marker})", file=sys.stderr)
            results.append(json.loads(marker.read_text(encoding="utf-8")))
            continue
        print(
            f"fold {fold}: training on folds {list(cfg.data.scene.sound_folds)} -> {run_dir}", file=sys.stderr
        )
        status, signal_number = complete_run(cfg, run_dir)
        if status == "interrupted":
            print(f"fold {fold} interrupted; rerun the same command to continue", file=sys.stderr)
            return 128 + (signal_number or 2)
        if status == "stopped":
            print(f"fold {fold} stopped (runtime.stop_after_steps); rerun to continue", file=sys.stderr)
            return 0
        result = evaluate_fold(cfg, run_dir, args.root, fold, split)
        _write_json_atomic(marker, result)
        results.append(result)
    summary = summarize(results)
    _write_json_atomic(out / "summary.json", summary)
    (out / "summary.md").write_text(summary_markdown(summary, args.root), encoding="utf-8")
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"wrote {out / 'summary.md'} and {out / 'summary.json'}")
    return 0


main = script_main(build_parser, run)


if __name__ == "__main__":
    sys.exit(main())
