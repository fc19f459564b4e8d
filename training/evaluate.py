"""Evaluate any checkpoint of the hazard model on synthetic or real held-out scenes; compare models,
or aggregate training seeds.

    python training/evaluate.py --checkpoint runs/demo/checkpoints/best --data DIR --out runs/eval
    python training/evaluate.py --checkpoint A B --config training/configs/demo.yaml --scenes 1000 --seed 3
    python training/evaluate.py --checkpoint SEED0 SEED1 SEED2 --aggregate \\
        --sound-dir ~/.cache/avi_ros/sounds/bank/test --scenes 400 --out runs/eval_real

Every checkpoint gets its scenes prepared as it needs them (its own preprocessing, plus the view
tokens of the scenes' own camera, ``training.collect_outputs``) and is scored with the metrics
of ``training.metrics``: F20 / LE / RDE overall, by visibility and by polyphony; the single-hazard
figures of its top slot (accuracy, ECE, confidence AUROC, false alarms, azimuth error); the
``direction`` group, its top slot beside the physics baseline by sector and visibility. Models
with different numbers of hazard slots are scored alike and compared side by side. To train
variants over seeds and compare them, see ``training/study.py``.

Synthetic scenes: ``--data DIR`` is a scene-shard directory (``python -m avi_ros.data.synthesize``);
with ``--scenes N --seed S`` the held-out scenes are generated (and cached) with the scene settings
of ``--config`` (else of the first checkpoint's run) and the sound bank's test recordings
(``training.real_scenes.held_out_scenes``, the study's own test split).

Real recordings: ``--sound-dir BANK/test`` renders scenes from the bank's test recordings, which
no model heard in training (``training.real_scenes``), in each ``--conditions`` (``default`` rooms,
and ``reverberant_noisy``: RT60 > 1.5 s, SNR < 5 dB), plus as many ``background_only`` scenes per
condition (``--background-scenes``) for the false-alarm rate: the fraction of frames without a
hazard where the node would publish one (the top slot is not ``none`` and reaches
``--confidence-threshold``). Tables by condition, and per class next to the number of real test
recordings of each class (from the bank's manifest).

``--operating-points T ...`` (synthetic scenes) reports, per model, what each confidence threshold
gives: F20, precision, recall (out of view too) and false alarms, from one pass of the model
(``operating_points.json`` and a table in ``metrics.md``), to choose a node's threshold on a
validation split.

``--aggregate`` treats the checkpoints as training seeds of one model and reports every metric
as mean ± std over them (Bessel-corrected std). ``--direction-mode-steps 0`` reads each slot's
physics direction as its mask's weighted mean instead of the nearest mode (the ablation of
``avi_ros.models.intensity_direction.seek_mode``). Writes ``metrics.json`` and ``metrics.md`` into
``--out``. Exit status 0, or 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from avi_ros.checkpoint import CheckpointMetadata, load_checkpoint, read_checkpoint_metadata
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_labels import SceneContent
from avi_ros.data.shards import ShardReader
from avi_ros.device import resolve_device
from avi_ros.models.hazard_set import HazardSetModel
from avi_ros.models.intensity_direction import MODE_STEPS, set_mode_steps
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD
from training import real_scenes, set_report
from training.collect_outputs import collect_outputs, shard_prepare_config
from training.config import ExperimentConfig, SplitConfig, load_config, read_resolved_config
from training.data import InputStore, PrepareConfig
from training.metrics import OVERALL_GROUP, SINGLE_HAZARD_GROUP, mean_and_std
from training.script_errors import script_main
from training.splits import prepared_split
from training.tables import portable_path
from training.typed_config import ConfigError

CONDITION_TITLES = {
    "default": "rooms like the generator's defaults",
    "reverberant_noisy": f"RT60 > {real_scenes.RT60_MIN_S:g} s and SNR < {real_scenes.SNR_MAX_DB:g} dB",
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
    parser.add_argument("--config", type=Path, help="training config whose scene settings to use")
    parser.add_argument(
        "--aggregate", action="store_true", help="the checkpoints are training seeds: report mean ± std"
    )
    parser.add_argument("--sound-dir", type=Path, help="test split of the real sound bank (BANK/test)")
    parser.add_argument(
        "--conditions",
        nargs="+",
        choices=real_scenes.CONDITIONS,
        default=list(real_scenes.CONDITIONS),
        help="with --sound-dir",
    )
    parser.add_argument(
        "--background-scenes", type=int, help="background-only scenes per condition (default: --scenes)"
    )
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        default=DEFAULT_CONFIDENCE_THRESHOLD,
        help="a hazard is reported at or above this confidence (the node's confidence_threshold)",
    )
    parser.add_argument(
        "--operating-points",
        type=float,
        nargs="+",
        default=[],
        metavar="T",
        help="synthetic data: also report F20, recall and false alarms at each of these thresholds",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("runs/cache/real"), help="cache of the real-recording scenes"
    )
    parser.add_argument("--workers", type=int, default=1, help="scene generation processes (--sound-dir)")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"), help="output directory")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    steps_help = f"mode-seeking steps of the physics directions (0: the mask's mean; default {MODE_STEPS})"
    parser.add_argument("--direction-mode-steps", type=int, metavar="N", help=steps_help)
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
    directory, _ = real_scenes.held_out_scenes(config, args.scenes, args.seed)
    return directory


def checkpoint_name(checkpoint: Path, model: HazardSetModel, metadata_extra: dict, taken: set[str]) -> str:
    """The run name stored in the checkpoint, made unique (seeds of one config share their name)."""
    name = metadata_extra.get("training", {}).get("run") or f"{model.config.variant}:{checkpoint}"
    return name if name not in taken else f"{name} ({checkpoint})"


def evaluate_checkpoint_store(
    model: HazardSetModel,
    store: InputStore,
    device: torch.device,
    threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Every metric (by group, ``training.metrics``) of a checkpoint's model on a split prepared for it."""
    return collect_outputs(model, store, device, batch_size).evaluation(threshold).metrics


def background_figures(
    model: HazardSetModel, store: InputStore, device: torch.device, threshold: float
) -> dict[str, Any]:
    """What frames without a hazard measure: their count and the false-alarm rate, the share of
    them where the node would publish the top slot (``single_hazard`` group)."""
    single = evaluate_checkpoint_store(model, store, device, threshold)[SINGLE_HAZARD_GROUP]
    return {"count": len(store), "false_alarm_rate": single["false_alarm_rate"]}


def load_evaluated(
    checkpoint: Path, device: torch.device, mode_steps: int | None = None
) -> tuple[HazardSetModel, CheckpointMetadata]:
    """A checkpoint's model and metadata, its physics directions read with ``mode_steps``
    mode-seeking steps (None: the model's default, ``MODE_STEPS``)."""
    model, metadata = load_checkpoint(checkpoint, device)
    if mode_steps is not None and not set_mode_steps(model, mode_steps):
        raise ConfigError(
            f"--direction-mode-steps: {checkpoint} learns its directions (model.direction "
            f"'{model.config.direction}'); only physics directions have a mode to read"
        )
    return model, metadata


def evaluate_checkpoint(
    checkpoint: Path,
    data: Path,
    device: torch.device,
    batch_size: int = 64,
    threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    taken: set[str] | None = None,
    operating_points: Sequence[float] = (),
    mode_steps: int | None = None,
) -> tuple[str, dict, list[dict]]:
    """(name, metrics by group at ``threshold``, the figures at each of ``operating_points``) of
    one checkpoint on a shard directory; the model runs once for all thresholds. ``mode_steps``:
    see ``load_evaluated``."""
    model, metadata = load_evaluated(checkpoint, device, mode_steps)
    store = prepared_split(data, shard_prepare_config(metadata, data), device, progress=True)
    outputs = collect_outputs(model, store, device, batch_size)
    points = [set_report.operating_point(t, outputs.evaluation(t).metrics) for t in operating_points]
    name = checkpoint_name(checkpoint, model, metadata.extra, taken or set())
    return name, outputs.evaluation(threshold).metrics, points


def write_synthetic_report(
    results: dict[str, dict], out: Path, data: Path, points: dict[str, list[dict]] | None = None
) -> None:
    """``metrics.json`` / ``metrics.md``, and with ``points`` (per model, ``--operating-points``)
    ``operating_points.json`` and a table per model in ``metrics.md``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Evaluation on `{data}`", "", *set_report.set_comparison_markdown(results)]
    for name, metrics in results.items():
        lines += set_report.set_metrics_markdown(metrics, f"## {name}")
        if points and points.get(name):
            lines += ["Operating points (the confidence threshold a node would use):", ""]
            lines += [set_report.operating_points_markdown(points[name]), ""]
    if points:
        payload = {"data": portable_path(data), "models": points}
        (out / "operating_points.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (out / "metrics.md").write_text("\n".join(lines), encoding="utf-8")


# --- real recordings ------------------------------------------------------------------------


def evaluate_real(
    args: argparse.Namespace,
    checkpoints: list[Path],
    base: SceneConfig,
    device: torch.device,
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
    counts, unit = real_scenes.bank_counts(args.sound_dir)
    results: dict[str, Any] = {
        "bank": {"sound_dir": str(args.sound_dir.resolve()), "counts": counts, "unit": unit},
        "confidence_threshold": args.confidence_threshold,
        "conditions": {},
    }
    sets = {}
    for condition in args.conditions:
        for background_only, count in ((False, scenes), (True, background)):
            sets[condition, background_only] = real_scenes.real_scene_directory(
                args.sound_dir, condition, SplitConfig(count, seed), base, args.cache_dir, args.workers,
                True, background_only,
            )  # fmt: skip
            results["conditions"].setdefault(
                condition, {"models": {}, "background": {"models": {}}, "non_hazard": {"models": {}}}
            )
    taken: set[str] = set()
    for checkpoint in checkpoints:
        model, metadata = load_evaluated(checkpoint, device, args.direction_mode_steps)
        name = checkpoint_name(checkpoint, model, metadata.extra, taken)
        taken.add(name)
        for (condition, background_only), directory in sets.items():
            entry = results["conditions"][condition]
            prepare = shard_prepare_config(metadata, directory)
            parts = _evaluate_scenes(model, prepare, directory, condition, background_only, args, device)
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
    model: HazardSetModel,
    prepare: PrepareConfig,
    directory: Path,
    condition: str,
    background_only: bool,
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, tuple[int, Any]]:
    """{part: (scenes, metrics)} of one model on one scene set: ``background`` (``background_figures``)
    for a background-only set; else ``hazard`` (every metric) and, when recorded, ``non_hazard``
    (``background_figures`` of its scenes with a real non-hazard sound)."""
    threshold = args.confidence_threshold
    store = real_scenes.real_store(directory, condition, prepare, device, progress=True)
    if background_only:
        return {"background": (len(store), background_figures(model, store, device, threshold))}
    parts = {"hazard": (len(store), evaluate_checkpoint_store(model, store, device, threshold))}
    sounds = real_scenes.content_store(
        directory, condition, prepare, device, content=SceneContent.NON_HAZARD_SOUND
    )
    if sounds is not None:
        parts["non_hazard"] = (len(sounds), background_figures(model, sounds, device, threshold))
    return parts


# The headline columns, then the false alarms on the scenes without a hazard.
REAL_COLUMNS = (
    *set_report.HEADLINE_COLUMNS,
    (("background", "false_alarm_rate"), "false alarms: background only", "{:.1%}"),
    (("non_hazard", "false_alarm_rate"), "false alarms: non-hazard sounds", "{:.1%}"),
)


def real_summary_table(results: dict[str, Any], model: str) -> str:
    """One row per condition: a model's detection, false alarms and direction beside physics."""
    header = "| condition | scenes | " + " | ".join(title for _, title, _ in REAL_COLUMNS) + " |"
    lines = [header, "|---|" + "---:|" * (len(REAL_COLUMNS) + 1)]
    for condition, entry in results["conditions"].items():
        values = {
            **entry["models"][model],
            "background": entry["background"]["models"][model],
            "non_hazard": entry["non_hazard"]["models"].get(model, {}),
        }
        cells = [
            set_report.format_value(set_report.metric_at(values, path), fmt) for path, _, fmt in REAL_COLUMNS
        ]
        scenes = f"{entry['scenes']} + {entry['background']['scenes']}"
        lines.append(f"| {CONDITION_TITLES[condition]} | {scenes} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_f20_table(metrics: dict[str, Any], recordings: dict[str, int], unit: str) -> str:
    """Markdown table: per class, the real recordings it rests on and its F20 over every frame."""
    lines = [f"| class | real {unit} | F20 |", "|---|---:|---:|"]
    for name, f20 in metrics[OVERALL_GROUP]["per_class_f20"].items():
        lines.append(f"| {name} | {recordings.get(name, 0)} | {set_report.format_value(f20, '{:.1%}')} |")
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
        lines += [f"## {model}", "", real_summary_table(results, model), ""]
        for condition, entry in results["conditions"].items():
            result = entry["models"][model]
            lines += set_report.set_metrics_markdown(result, f"### {model}: {CONDITION_TITLES[condition]}")
            lines += [per_class_f20_table(result, bank["counts"], bank["unit"]), ""]
    (out / "metrics.md").write_text("\n".join(lines), encoding="utf-8")


# --- command line ---------------------------------------------------------------------------


def resolve_config(args: argparse.Namespace) -> ExperimentConfig | None:
    if args.config is not None:
        return load_config(args.config, args.overrides)
    if args.checkpoint and run_config_of(args.checkpoint[0]) is not None:
        return read_resolved_config(run_config_of(args.checkpoint[0]))
    return None


def check_arguments(args: argparse.Namespace) -> None:
    if not args.checkpoint:
        raise ConfigError("nothing to evaluate: give --checkpoint DIR ...")
    if args.sound_dir is not None and args.data is not None:
        raise ConfigError("give either --data (synthetic shards) or --sound-dir (real recordings), not both")
    if args.direction_mode_steps is not None and args.direction_mode_steps < 0:
        raise ConfigError(f"--direction-mode-steps must be >= 0, got {args.direction_mode_steps}")
    if not 0.0 <= args.confidence_threshold <= 1.0:
        raise ConfigError(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")
    for name in ("scenes", "background_scenes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def evaluate(args: argparse.Namespace) -> int:
    """Evaluate the checkpoints of the command line (see the module doc) and print the report."""
    check_arguments(args)
    config = resolve_config(args)
    device = resolve_device(args.device)
    checkpoints = list(args.checkpoint)
    for checkpoint in checkpoints:  # before any scene is rendered: a checkpoint it cannot take
        read_checkpoint_metadata(checkpoint)
    if args.sound_dir is not None:
        if args.seed is not None:
            real_scenes.check_held_out_seed(config, args.seed)
        base = config.data.scene_config() if config is not None else SceneConfig()
        write_real_report(evaluate_real(args, checkpoints, base, device), args.out)
    else:
        data = evaluation_data(args, config)
        results: dict[str, Any] = {}
        points: dict[str, list[dict]] = {}
        for checkpoint in checkpoints:
            name, metrics, points[name] = evaluate_checkpoint(
                checkpoint,
                data,
                device,
                threshold=args.confidence_threshold,
                taken=set(results),
                operating_points=args.operating_points,
                mode_steps=args.direction_mode_steps,
            )
            results[name] = metrics
        if args.aggregate:
            results[AGGREGATE] = mean_and_std(list(results.values()))
        write_synthetic_report(results, args.out, data, points if args.operating_points else None)
    print((args.out / "metrics.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out / 'metrics.md'} and {args.out / 'metrics.json'}")
    return 0


main = script_main(build_parser, evaluate)


if __name__ == "__main__":
    sys.exit(main())
