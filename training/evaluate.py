"""Evaluate checkpoints on synthetic or real held-out scenes; compare models, or aggregate training seeds.

    python training/evaluate.py --checkpoint runs/demo/checkpoints/best --data DIR --out runs/eval
    python training/evaluate.py --checkpoint A B --config training/configs/demo.yaml --scenes 1000 --seed 3
    python training/evaluate.py --baselines --config training/configs/demo.yaml \\
        --checkpoint runs/demo/checkpoints/best --scenes 1000 --seed 3 --out runs/demo_eval
    python training/evaluate.py --checkpoint SEED0 SEED1 SEED2 --aggregate \\
        --sound-dir ~/.cache/avi_ros/sounds/bank/test --scenes 400 --out runs/eval_real

Synthetic scenes: ``--data DIR`` is a scene-shard directory (``python -m avi_ros.data.synthesize``);
with ``--scenes N --seed S`` the held-out scenes are generated (and cached) with the scene settings
of ``--config``. ``--baselines`` trains the audio_only, visual_only, concat and oracle variants
of ``--config`` with the same data, stages and epochs as the full model (a finished baseline
run is reused), then evaluates them with the given checkpoints.

Real recordings: ``--sound-dir BANK/test`` renders scenes from the bank's test recordings, which
no model heard in training (``training.real_scenes``), in each ``--conditions`` (``default`` rooms,
and ``reverberant_noisy``: RT60 > 1.5 s, SNR < 5 dB), plus as many ``background_only`` scenes per
condition (``--background-scenes``) for the false-alarm rate: the fraction of frames without a
hazard that the node would publish as one (not ``none``, confidence >= ``--confidence-threshold``).
Tables by class (next to the number of real test recordings of each class, from the bank's
manifest), by visibility, and a summary with accuracy, false alarms, ECE, confidence AUROC and the
median azimuth error.

Any checkpoint: the task comes from the checkpoint (``ModelConfig.hazard_slots``,
``training.checkpoint_task``). A hazard-set checkpoint gets its scenes with the view tokens of the
scenes' own camera and is scored with the set metrics (``training.set_metrics``: F20 / LE / RDE
overall, by visibility and by polyphony; the single-hazard figures of its top slot; the
``direction`` group, its top slot beside the physics baseline by sector and visibility); on real
recordings its false alarms are the frames without a hazard where any slot is published. One call
evaluates checkpoints of one task (and ``--baselines`` of a config of that task).

``--aggregate`` treats the checkpoints as training seeds of one model and reports every metric
as mean ± std over them (Bessel-corrected std). Writes ``metrics.json`` and ``metrics.md`` into
``--out``. Exit status 0, or 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from avi_ros.checkpoint import CheckpointError, CheckpointMetadata, load_checkpoint
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_labels import SceneContent
from avi_ros.data.shards import ShardReader
from avi_ros.device import resolve_device
from avi_ros.models.hazard_set import HazardSetModel
from avi_ros.models.imagination import ImaginationModel
from avi_ros.models.output_arrays import HazardSetArrays
from training.checkpoint_task import HAZARD_SET, SINGLE_HAZARD, common_task, shard_prepare_config, task_of
from training.collect_outputs import collect_outputs
from training.config import ExperimentConfig, SplitConfig, load_config, read_resolved_config
from training.data import InputStore
from training.export import comparison_table, format_value, metrics_table, per_class_table
from training.hazard_set_task import collect_set_outputs, evaluate_set_store
from training.metrics import (
    BACKGROUND_CLASS,
    NODE_CONFIDENCE_THRESHOLD,
    OCCLUSION_BINS,
    evaluate_predictions,
    false_alarm_rate,
    mean_and_std,
    occlusion_bin_name,
    per_class_metrics,
)
from training.real_scenes import (
    CONDITIONS,
    RT60_MIN_S,
    SNR_MAX_DB,
    bank_counts,
    content_store,
    real_scene_directory,
    real_store,
)
from training.set_metrics import DIRECTION_GROUP, OVERALL_GROUP, SINGLE_HAZARD_GROUP
from training.set_report import metric_at, set_comparison_markdown, set_metrics_markdown
from training.splits import ensure_scenes, prepared_split, split_directory
from training.typed_config import ConfigError

BASELINES = ("audio_only", "visual_only", "concat", "oracle")
VISIBILITY_GROUPS = ("visible", "occluded", "out_of_view")
GROUPS = ("overall", *(occlusion_bin_name(lo, hi) for lo, hi in OCCLUSION_BINS), *VISIBILITY_GROUPS)
COMPARED_METRICS = (
    "accuracy",
    "angular_error_median_deg",
    "ece",
    "confidence_auroc",
    "macro_f1",
    "distance_rmse_m",
    "high_risk_recall",
)
CONDITION_TITLES = {
    "default": "rooms like the generator's defaults",
    "reverberant_noisy": f"RT60 > {RT60_MIN_S:g} s and SNR < {SNR_MAX_DB:g} dB",
}
DEFAULT_REAL_SCENES = 400
DEFAULT_REAL_SEED = 2001  # scene geometry seed of the real test scenes
AGGREGATE = "mean ± std"


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
    parser.add_argument(
        "--aggregate", action="store_true", help="the checkpoints are training seeds: report mean ± std"
    )
    parser.add_argument("--sound-dir", type=Path, help="test split of the real sound bank (BANK/test)")
    parser.add_argument(
        "--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), help="with --sound-dir"
    )
    parser.add_argument(
        "--background-scenes", type=int, help="background-only scenes per condition (default: --scenes)"
    )
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        default=NODE_CONFIDENCE_THRESHOLD,
        help="a hazard is reported at or above this confidence (the node's confidence_threshold)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("runs/cache/real"), help="cache of the real-recording scenes"
    )
    parser.add_argument("--workers", type=int, default=1, help="scene generation processes (--sound-dir)")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"), help="output directory")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of --config")
    return parser


def run_config_of(checkpoint: Path) -> Path | None:
    """The config_resolved.yaml of the run a checkpoint (RUN/checkpoints/NAME) belongs to."""
    candidate = checkpoint.resolve().parent.parent / "config_resolved.yaml"
    return candidate if candidate.is_file() else None


def check_seed(seed: int, config: ExperimentConfig | None) -> None:
    if config is not None and seed in (config.data.train.seed, config.data.val.seed):
        raise ConfigError(
            f"--seed {seed} is a training/validation seed of the config; held-out data needs another"
        )


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
    check_seed(args.seed, config)
    scene = config.data.scene_config()
    directory = split_directory(config.data.cache_dir, split, scene)
    return ensure_scenes(directory, split, scene, config.data.generation_workers, progress=True)


def checkpoint_name(
    checkpoint: Path, model: ImaginationModel | HazardSetModel, metadata_extra: dict, taken: set[str]
) -> str:
    """The run name stored in the checkpoint, made unique (seeds of one config share their name)."""
    name = metadata_extra.get("training", {}).get("run") or f"{model.config.variant}:{checkpoint}"
    return name if name not in taken else f"{name} ({checkpoint})"


def evaluate_store(
    model: ImaginationModel,
    class_names: list[str],
    store: InputStore,
    device: torch.device,
    threshold: float,
    batch_size: int = 64,
) -> dict[str, Any]:
    """{"groups": metrics by group, "per_class": metrics by true class} of ``model`` on ``store``."""
    predictions = collect_outputs(model, store, device, batch_size).predictions()
    return {
        "groups": evaluate_predictions(predictions, class_names, threshold),
        "per_class": per_class_metrics(predictions, class_names),
    }


def evaluate_checkpoint_store(
    model: ImaginationModel | HazardSetModel,
    metadata: CheckpointMetadata,
    store: InputStore,
    device: torch.device,
    threshold: float = NODE_CONFIDENCE_THRESHOLD,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Metrics of any checkpoint on a split prepared for it (``training.checkpoint_task``): the
    single-hazard {"groups", "per_class"} of ``evaluate_store``, or the set metrics by group
    (``training.set_metrics``, with the direction group) of a hazard-set checkpoint."""
    if task_of(metadata) == HAZARD_SET:
        return evaluate_set_store(model, store, device, batch_size, threshold).metrics
    return evaluate_store(model, metadata.taxonomy.names, store, device, threshold, batch_size)


def set_false_alarm_rate(outputs: HazardSetArrays, threshold: float) -> float | None:
    """Fraction of (hazard-free) frames where the node would publish any slot: the top slot, the
    most confident whose class is not ``none``, reaches ``threshold`` (``metrics.false_alarm_rate``)."""
    occupied = outputs.class_id != BACKGROUND_CLASS
    ranked = np.where(occupied, outputs.confidence, -np.inf)
    top = np.argmax(ranked, axis=1)
    rows = np.arange(len(outputs))
    top_class = np.where(occupied[rows, top], outputs.class_id[rows, top], BACKGROUND_CLASS)
    return false_alarm_rate(top_class, outputs.confidence[rows, top], threshold)


def background_figures(
    model: ImaginationModel | HazardSetModel,
    metadata: CheckpointMetadata,
    store: InputStore,
    device: torch.device,
    threshold: float,
) -> dict[str, Any]:
    """What scenes without a hazard measure: the overall single-hazard metrics (false alarms among
    them), or, for a set checkpoint, its frame count and false-alarm rate."""
    if task_of(metadata) == HAZARD_SET:
        outputs = collect_set_outputs(model, store, device, batch_size=64)
        return {"count": len(store), "false_alarm_rate": set_false_alarm_rate(outputs, threshold)}
    return evaluate_store(model, metadata.taxonomy.names, store, device, threshold)["groups"]["overall"]


def evaluate_checkpoint(
    checkpoint: Path,
    data: Path,
    device: torch.device,
    batch_size: int = 64,
    threshold: float = NODE_CONFIDENCE_THRESHOLD,
    taken: set[str] | None = None,
) -> tuple[str, dict]:
    """(name, metrics by group) of one checkpoint of either task on a shard directory."""
    model, metadata = load_checkpoint(checkpoint, device)
    store = prepared_split(data, shard_prepare_config(metadata, data), device, progress=True)
    result = evaluate_checkpoint_store(model, metadata, store, device, threshold, batch_size)
    groups = result if task_of(metadata) == HAZARD_SET else result["groups"]
    return checkpoint_name(checkpoint, model, metadata.extra, taken or set()), groups


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


def write_synthetic_report(
    results: dict[str, dict], out: Path, data: Path, task: str = SINGLE_HAZARD
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Evaluation on `{data}`", ""]
    if task == HAZARD_SET:
        lines += set_comparison_markdown(results)
        for name, metrics in results.items():
            lines += set_metrics_markdown(metrics, f"## {name}")
        (out / "metrics.md").write_text("\n".join(lines), encoding="utf-8")
        return
    for metric in COMPARED_METRICS:
        lines += [f"## {metric}", "", comparison_table(results, metric, GROUPS), ""]
    for name, metrics in results.items():
        lines += [f"## {name}", "", metrics_table(metrics, GROUPS), ""]
    (out / "metrics.md").write_text("\n".join(lines), encoding="utf-8")


# --- real recordings ------------------------------------------------------------------------


def evaluate_real(
    args: argparse.Namespace,
    checkpoints: list[Path],
    base: SceneConfig,
    device: torch.device,
    task: str = SINGLE_HAZARD,
) -> dict[str, Any]:
    """Every checkpoint on every condition's scenes and background-only scenes (see module doc).

    Returns {"bank": {...}, "conditions": {condition: {"scenes": n, "models": {name: result},
    "background": {"scenes": n, "models": {name: overall}}, "non_hazard": {...the same...}}}}, plus a
    ``mean ± std`` entry in each ``models`` with ``--aggregate``. ``non_hazard`` holds the hazard
    scenes' class-0 scenes with a real non-hazard sound (music, doors, birds...), when the shards
    record the scene content. A model's result is that of ``evaluate_checkpoint_store`` and its
    background entries those of ``background_figures``.
    """
    scenes = args.scenes or DEFAULT_REAL_SCENES
    seed = DEFAULT_REAL_SEED if args.seed is None else args.seed
    background = args.background_scenes or scenes
    counts, unit = bank_counts(args.sound_dir)
    results: dict[str, Any] = {
        "task": task,
        "bank": {"sound_dir": str(args.sound_dir.resolve()), "counts": counts, "unit": unit},
        "confidence_threshold": args.confidence_threshold,
        "conditions": {},
    }
    sets = {}
    for condition in args.conditions:
        for background_only, count in ((False, scenes), (True, background)):
            sets[condition, background_only] = real_scene_directory(
                args.sound_dir, condition, SplitConfig(count, seed), base, args.cache_dir, args.workers,
                True, background_only,
            )  # fmt: skip
            results["conditions"].setdefault(
                condition, {"models": {}, "background": {"models": {}}, "non_hazard": {"models": {}}}
            )
    taken: set[str] = set()
    for checkpoint in checkpoints:
        model, metadata = load_checkpoint(checkpoint, device)
        name = checkpoint_name(checkpoint, model, metadata.extra, taken)
        taken.add(name)
        for (condition, background_only), directory in sets.items():
            entry = results["conditions"][condition]
            parts = _evaluate_scenes(model, metadata, directory, condition, background_only, args, device)
            for part, (count, metrics) in parts.items():
                target = entry if part == "hazard" else entry[part]
                target["scenes"] = count
                target["models"][name] = metrics
    if args.aggregate:
        for entry in results["conditions"].values():
            for part in (entry, entry["background"], entry["non_hazard"]):
                if part["models"]:
                    part["models"][AGGREGATE] = mean_and_std(list(part["models"].values()))
    return results


def _evaluate_scenes(
    model: ImaginationModel | HazardSetModel,
    metadata: CheckpointMetadata,
    directory: Path,
    condition: str,
    background_only: bool,
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, tuple[int, Any]]:
    """{part: (scenes, metrics)} of one model on one scene set: ``background`` (``background_figures``)
    for a background-only set; else ``hazard`` (every metric) and, when recorded, ``non_hazard``
    (``background_figures`` of its scenes with a real non-hazard sound)."""
    prepare = shard_prepare_config(metadata, directory)
    threshold = args.confidence_threshold
    store = real_store(directory, condition, prepare, device, progress=True)
    if background_only:
        return {"background": (len(store), background_figures(model, metadata, store, device, threshold))}
    parts = {"hazard": (len(store), evaluate_checkpoint_store(model, metadata, store, device, threshold))}
    sounds = content_store(directory, condition, prepare, device, content=SceneContent.NON_HAZARD_SOUND)
    if sounds is not None:
        parts["non_hazard"] = (len(sounds), background_figures(model, metadata, sounds, device, threshold))
    return parts


def real_summary_table(results: dict[str, Any], model: str) -> str:
    """One row per condition: the issue's headline numbers for one model (or the aggregate)."""
    columns = (
        ("accuracy", "{:.1%}"),
        ("false_alarm_rate", "{:.1%}"),
        ("non_hazard_false_alarm_rate", "{:.1%}"),
        ("ece", "{:.3f}"),
        ("confidence_auroc", "{:.3f}"),
        ("azimuth_error_median_deg", "{:.1f}"),
    )
    header = (
        "| condition | scenes | accuracy | false alarms: background only | false alarms: non-hazard sounds "
        "| ECE | confidence AUROC | median azimuth error [deg] |"
    )
    lines = [header, "|---|" + "---:|" * (len(columns) + 1)]
    for condition, entry in results["conditions"].items():
        non_hazard = entry["non_hazard"]["models"].get(model, {})
        values = {
            **entry["models"][model]["groups"]["overall"],
            "false_alarm_rate": entry["background"]["models"][model]["false_alarm_rate"],
            "non_hazard_false_alarm_rate": non_hazard.get("false_alarm_rate"),
        }
        cells = [format_value(values.get(key), fmt) for key, fmt in columns]
        scenes = f"{entry['scenes']} + {entry['background']['scenes']}"
        lines.append(f"| {CONDITION_TITLES[condition]} | {scenes} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


SET_REAL_COLUMNS = (
    ((OVERALL_GROUP, "f20"), "F20", "{:.1%}"),
    ((OVERALL_GROUP, "le_deg"), "LE [deg]", "{:.1f}"),
    ((OVERALL_GROUP, "rde"), "RDE", "{:.2f}"),
    ((SINGLE_HAZARD_GROUP, "accuracy"), "single-hazard accuracy", "{:.1%}"),
    (("background", "false_alarm_rate"), "false alarms: background only", "{:.1%}"),
    (("non_hazard", "false_alarm_rate"), "false alarms: non-hazard sounds", "{:.1%}"),
    ((DIRECTION_GROUP, "all", "model_azimuth_error_median_deg"), "model median az. err [deg]", "{:.1f}"),
    ((DIRECTION_GROUP, "all", "physics_azimuth_error_median_deg"), "physics median az. err [deg]", "{:.1f}"),
)


def real_set_summary_table(results: dict[str, Any], model: str) -> str:
    """One row per condition: a set model's detection, false alarms and direction beside physics."""
    header = "| condition | scenes | " + " | ".join(title for _, title, _ in SET_REAL_COLUMNS) + " |"
    lines = [header, "|---|" + "---:|" * (len(SET_REAL_COLUMNS) + 1)]
    for condition, entry in results["conditions"].items():
        values = {
            **entry["models"][model],
            "background": entry["background"]["models"][model],
            "non_hazard": entry["non_hazard"]["models"].get(model, {}),
        }
        cells = [format_value(metric_at(values, path), fmt) for path, _, fmt in SET_REAL_COLUMNS]
        scenes = f"{entry['scenes']} + {entry['background']['scenes']}"
        lines.append(f"| {CONDITION_TITLES[condition]} | {scenes} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_f20_table(metrics: dict[str, Any], recordings: dict[str, int], unit: str) -> str:
    """Markdown table: per class, the real recordings it rests on and its F20 over every frame."""
    lines = [f"| class | real {unit} | F20 |", "|---|---:|---:|"]
    for name, f20 in metrics[OVERALL_GROUP]["per_class_f20"].items():
        lines.append(f"| {name} | {recordings.get(name, 0)} | {format_value(f20, '{:.1%}')} |")
    return "\n".join(lines)


def write_real_report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    bank = results["bank"]
    first = next(iter(results["conditions"].values()))
    models = list(first["models"])
    lines = [
        f"# Evaluation on real recordings: `{bank['sound_dir']}`",
        "",
        f"Scenes rendered from the bank's held-out recordings ({sum(bank['counts'].values())} "
        f"{bank['unit']}); a hazard is reported at confidence >= {results['confidence_threshold']}. "
        "Scenes: hazard and no-hazard scenes + background-only scenes. False alarms: the share of "
        "scenes without a hazard that the node would report as one (background only; a real "
        "non-hazard sound among the first set's no-hazard scenes).",
        "",
    ]
    for model in ([AGGREGATE] if AGGREGATE in models else []) + [m for m in models if m != AGGREGATE]:
        if results.get("task") == HAZARD_SET:
            lines += [f"## {model}", "", real_set_summary_table(results, model), ""]
            for condition, entry in results["conditions"].items():
                result = entry["models"][model]
                lines += set_metrics_markdown(result, f"### {model}: {CONDITION_TITLES[condition]}")
                lines += [per_class_f20_table(result, bank["counts"], bank["unit"]), ""]
            continue
        lines += [f"## {model}", "", real_summary_table(results, model), ""]
        for condition, entry in results["conditions"].items():
            result = entry["models"][model]
            lines += [f"### {model}: {CONDITION_TITLES[condition]}, by class", ""]
            lines += [per_class_table(result["per_class"], bank["counts"], bank["unit"]), ""]
            lines += [f"### {model}: {CONDITION_TITLES[condition]}, by visibility", ""]
            lines += [metrics_table(result["groups"], ("overall", *VISIBILITY_GROUPS)), ""]
    (out / "metrics.md").write_text("\n".join(lines), encoding="utf-8")


# --- command line ---------------------------------------------------------------------------


def resolve_config(args: argparse.Namespace) -> ExperimentConfig | None:
    if args.config is not None:
        return load_config(args.config, args.overrides)
    if args.checkpoint and run_config_of(args.checkpoint[0]) is not None:
        return read_resolved_config(run_config_of(args.checkpoint[0]))
    return None


def check_arguments(args: argparse.Namespace) -> None:
    if args.baselines and args.config is None:
        raise ConfigError("--baselines needs --config: the baselines are trained from it")
    if not args.checkpoint and not args.baselines:
        raise ConfigError("nothing to evaluate: give --checkpoint DIR ... and/or --baselines")
    if args.sound_dir is not None and args.data is not None:
        raise ConfigError("give either --data (synthetic shards) or --sound-dir (real recordings), not both")
    if args.aggregate and args.baselines:
        raise ConfigError("--aggregate treats the checkpoints as seeds of one model; it excludes --baselines")
    if not 0.0 <= args.confidence_threshold <= 1.0:
        raise ConfigError(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")
    for name in ("scenes", "background_scenes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        config = resolve_config(args)
        device = resolve_device(args.device)
        checkpoints = list(args.checkpoint)
        trained = None
        if args.baselines:
            trained = HAZARD_SET if config.model.hazard_slots > 0 else SINGLE_HAZARD
        task = common_task(checkpoints, trained)
        if args.sound_dir is not None:
            if args.seed is not None:
                check_seed(args.seed, config)
            base = config.data.scene_config() if config is not None else SceneConfig()
            write_real_report(evaluate_real(args, checkpoints, base, device, task), args.out)
        else:
            data = evaluation_data(args, config)
            if args.baselines:
                checkpoints += train_baselines(config, args.out)
            results: dict[str, Any] = {}
            for checkpoint in checkpoints:
                name, metrics = evaluate_checkpoint(
                    checkpoint, data, device, threshold=args.confidence_threshold, taken=set(results)
                )
                results[name] = metrics
            if args.aggregate:
                results[AGGREGATE] = mean_and_std(list(results.values()))
            write_synthetic_report(results, args.out, data, task)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    print((args.out / "metrics.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out / 'metrics.md'} and {args.out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
