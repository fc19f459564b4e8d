"""Evaluate checkpoints on a dataset and compare them side by side; optionally train the baselines first.

    python training/evaluate.py --checkpoint runs/demo/checkpoints/best --data DIR --out runs/eval
    python training/evaluate.py --checkpoint A B --config training/configs/demo.yaml --scenes 1000 --seed 3
    python training/evaluate.py --baselines --config training/configs/demo.yaml \\
        --checkpoint runs/demo/checkpoints/best --scenes 1000 --seed 3 --out runs/demo_eval

``--data DIR`` is a scene-shard directory (``python -m avi_ros.data.synthesize``); with
``--scenes N --seed S`` the held-out scenes are generated (and cached) with the scene settings
of ``--config``. ``--baselines`` trains the audio_only, visual_only, concat and oracle variants
of ``--config`` with the same data, stages and epochs as the full model (a finished baseline
run is reused), then evaluates them with the given checkpoints. Writes ``metrics.json`` and
``metrics.md`` (one table per model, and one table per key metric with models as rows and
occlusion bins / visibility as columns) into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from avi_ros.checkpoint import CheckpointError, load_checkpoint
from avi_ros.data.shards import ShardReader
from avi_ros.occlusion import OcclusionConfig
from avi_ros.pipeline import resolve_device
from training.config import ExperimentConfig, SplitConfig, load_config, read_resolved_config
from training.data import PrepareConfig
from training.evaluation import collect_outputs
from training.export import comparison_table, metrics_table
from training.metrics import OCCLUSION_BINS, evaluate_predictions, occlusion_bin_name
from training.splits import ensure_scenes, prepared_split, split_directory
from training.typed_config import ConfigError

BASELINES = ("audio_only", "visual_only", "concat", "oracle")
GROUPS = (
    "overall",
    *(occlusion_bin_name(lo, hi) for lo, hi in OCCLUSION_BINS),
    "visible",
    "occluded",
    "out_of_view",
)
COMPARED_METRICS = (
    "accuracy",
    "angular_error_median_deg",
    "ece",
    "macro_f1",
    "distance_rmse_m",
    "high_risk_recall",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python training/evaluate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, nargs="*", default=[], help="checkpoint directories")
    parser.add_argument("--data", type=Path, help="scene-shard directory to evaluate on")
    parser.add_argument("--scenes", type=int, help="generate this many held-out scenes (with --seed)")
    parser.add_argument("--seed", type=int, help="base seed of the generated held-out scenes")
    parser.add_argument(
        "--config", type=Path, help="training config: scene settings, and what --baselines trains"
    )
    parser.add_argument("--baselines", action="store_true", help="train and evaluate the four baselines too")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"), help="output directory")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of --config")
    return parser


def run_config_of(checkpoint: Path) -> Path | None:
    """The config_resolved.yaml of the run a checkpoint (RUN/checkpoints/NAME) belongs to."""
    candidate = checkpoint.resolve().parent.parent / "config_resolved.yaml"
    return candidate if candidate.is_file() else None


def evaluation_data(args: argparse.Namespace, config: ExperimentConfig | None) -> Path:
    """The shard directory to evaluate on: --data, or held-out scenes generated now."""
    if args.data is not None:
        if args.scenes is not None:
            raise ConfigError("give either --data or --scenes/--seed, not both")
        ShardReader(args.data)  # fails early with a clear message when it is not a shard directory
        return args.data
    if args.scenes is None or args.seed is None:
        raise ConfigError("give --data DIR, or --scenes N --seed S to generate held-out scenes")
    if config is None:
        raise ConfigError(
            "--scenes needs --config (or a checkpoint inside a run directory) for the scene settings"
        )
    split = SplitConfig(args.scenes, args.seed)
    if args.seed in (config.data.train.seed, config.data.val.seed):
        raise ConfigError(
            f"--seed {args.seed} is a training/validation seed of the config; held-out data needs another"
        )
    scene = config.data.scene_config()
    directory = split_directory(config.data.cache_dir, split, scene)
    return ensure_scenes(directory, split, scene, config.data.generation_workers, progress=True)


def evaluate_checkpoint(
    checkpoint: Path, data: Path, device: torch.device, batch_size: int = 64
) -> tuple[str, dict]:
    """(name, metrics by group) of one checkpoint on a shard directory."""
    model, metadata = load_checkpoint(checkpoint, device)
    occlusion = OcclusionConfig(**metadata.extra.get("occlusion", {}))
    prepare = PrepareConfig(model.config.visual.image_size, metadata.feature_config, occlusion)
    store = prepared_split(data, prepare, device, progress=True)
    outputs = collect_outputs(model, store, device, batch_size)
    name = metadata.extra.get("training", {}).get("run") or f"{model.config.variant}:{checkpoint}"
    return name, evaluate_predictions(outputs.predictions(), metadata.taxonomy.names)


def train_baselines(config: ExperimentConfig, out: Path) -> list[Path]:
    """Train each baseline variant of ``config`` with the same budget; returns their best checkpoints."""
    from training.trainer import Trainer

    checkpoints = []
    for variant in BASELINES:
        name = f"{config.name}_{variant}"
        model = dataclasses.replace(config.model, variant=variant)
        baseline = dataclasses.replace(
            config, name=name, model=model, output_dir=str(out / "baselines" / name)
        )
        run_dir = baseline.resolved_output_dir()
        best = run_dir / "checkpoints" / "best"
        if not (run_dir / "export" / "metrics.json").is_file():
            print(f"training baseline {variant} -> {run_dir}", file=sys.stderr)
            result = Trainer(baseline, run_dir).fit()
            if result.status != "completed":
                raise RuntimeError(f"baseline {variant} did not complete ({result.status})")
        checkpoints.append(best)
    return checkpoints


def write_report(results: dict[str, dict], out: Path, data: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Evaluation on `{data}`", ""]
    for metric in COMPARED_METRICS:
        lines += [f"## {metric}", "", comparison_table(results, metric, GROUPS), ""]
    for name, metrics in results.items():
        lines += [f"## {name}", "", metrics_table(metrics, GROUPS), ""]
    (out / "metrics.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = None
        if args.config is not None:
            config = load_config(args.config, args.overrides)
        elif args.checkpoint and run_config_of(args.checkpoint[0]) is not None:
            config = read_resolved_config(run_config_of(args.checkpoint[0]))
        if args.baselines and args.config is None:
            raise ConfigError("--baselines needs --config: the baselines are trained from it")
        if not args.checkpoint and not args.baselines:
            raise ConfigError("nothing to evaluate: give --checkpoint DIR ... and/or --baselines")
        data = evaluation_data(args, config)
        device = resolve_device(args.device)
        checkpoints = list(args.checkpoint)
        if args.baselines:
            checkpoints += train_baselines(config, args.out)
        results = {}
        for checkpoint in checkpoints:
            name, metrics = evaluate_checkpoint(checkpoint, data, device)
            results[name] = metrics
        write_report(results, args.out, data)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    print((args.out / "metrics.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out / 'metrics.md'} and {args.out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
