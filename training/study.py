"""The study: train variants of the hazard model over several seeds and compare them on held-out scenes.

    python training/study.py --config training/configs/hazard_set.yaml \\
        --seeds 0 1 2 --test-scenes 600 --out runs/study

For each variant (``--variants``: full, concat, audio_only, visual_only, oracle) and seed, the
config is trained as ``<out>/<variant>_s<seed>``, as far as ``training.run_status`` says it has
to be (``complete_run``): a complete run is reused, so a second call only evaluates; an
interrupted one resumes exactly where it stopped; a run dir started with another config is
refused. Other differences than the variant (K, the direction source, a budget) are config
overrides, one study each; ``training/compare_studies.py`` puts studies side by side. Every best
checkpoint is then evaluated on one held-out split
(``training.real_scenes.held_out_scenes``): scenes of the config's kind rendered from the sound
bank's **test** recordings (``<bank>/test``, which no model heard in
training or validation), with their own seed (``--test-seed``). Without a bank the test scenes
use the procedural sounds, and the report says so.

Writes into ``--out``: ``study.json`` (every run's metrics and mean ± std per variant),
``study.md`` (the table by visibility and by polyphony), and ``weight_vs_occlusion.png`` (each
hazard's audio weight against its own true occlusion, per variant). Exit status 0, or 2 with one
line on stderr for bad input.
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

from avi_ros.checkpoint import load_checkpoint
from avi_ros.device import resolve_device
from avi_ros.models.config import VARIANTS
from training.collect_outputs import collect_outputs
from training.config import ExperimentConfig, load_config
from training.hazard_set_task import set_prepare_config
from training.metrics import mean_and_std
from training.plots import binned_weight, plot_weight_vs_occlusion
from training.real_scenes import held_out_scenes
from training.run_status import complete_run
from training.script_errors import script_main
from training.set_report import study_table
from training.splits import prepared_split
from training.typed_config import ConfigError

DEFAULT_TEST_SEED = 23


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python training/study.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="a hazard model config (task: hazard_set)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--test-scenes", type=int, default=600, help="held-out scenes to evaluate on")
    parser.add_argument("--test-seed", type=int, default=DEFAULT_TEST_SEED)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    return parser


def run_config(config: ExperimentConfig, variant: str, seed: int, out: Path) -> ExperimentConfig:
    """``config`` as the run of one variant and seed, inside ``out``."""
    name = f"{variant}_s{seed}"
    return dataclasses.replace(
        config,
        name=name,
        seed=seed,
        model=dataclasses.replace(config.model, variant=variant),
        output_dir=str(out.resolve() / name),
    )


class UnfinishedRunError(Exception):
    """A run that stopped before completing: a signal (``signal_number``), or
    ``runtime.stop_after_steps``; rerunning the study continues it."""

    def __init__(self, name: str, status: str, signal_number: int | None) -> None:
        super().__init__(f"{name} {status}; rerun the same command to continue it")
        self.signal_number = signal_number


def train_run(config: ExperimentConfig) -> Path:
    """Bring the run of ``config`` to completion (``complete_run``); its best checkpoint."""
    run_dir = config.resolved_output_dir()
    print(f"{config.name} -> {run_dir}", file=sys.stderr)
    status, signal_number = complete_run(config, run_dir)
    if status not in ("complete", "completed"):
        raise UnfinishedRunError(config.name, status, signal_number)
    return run_dir / "checkpoints" / "best"


def run_study(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config, args.overrides)
    if config.task != "hazard_set":
        raise ConfigError(
            f"{args.config}: expected a hazard model config (task hazard_set), got {config.task}"
        )
    device = resolve_device(config.runtime.device)
    test_dir, note = held_out_scenes(config, args.test_scenes, args.test_seed, "--test-seed")
    store = prepared_split(test_dir, set_prepare_config(config), device, progress=True)
    runs: dict[str, list[dict]] = {}
    plots: dict[str, list] = {}
    for seed in args.seeds:  # seed by seed: an interrupted study has every variant of the first seeds
        for variant in args.variants:
            best = train_run(run_config(config, variant, seed, args.out))
            model, _ = load_checkpoint(best, device)
            outputs = collect_outputs(model, store, device, config.optim.eval_batch_size)
            metrics, scalars, plot_data = outputs.evaluation()
            runs.setdefault(variant, []).append({"seed": seed, "metrics": metrics, "scalars": scalars})
            plots.setdefault(variant, []).append(plot_data)
    summary = {
        variant: mean_and_std([r["scalars"] for r in variant_runs]) for variant, variant_runs in runs.items()
    }
    return {
        "test": {"directory": str(test_dir), "scenes": len(store), "sounds": note, "seed": args.test_seed},
        "seeds": args.seeds,
        "runs": runs,
        "summary": summary,
        "plots": plots,
    }


def weight_by_occlusion(pairs_by_variant: dict[str, list[np.ndarray]]) -> dict[str, dict[str, list]]:
    """Per variant, the mean per-hazard audio weight in occlusion bins, over all seeds' matched
    in-view hazards: what the weight plot shows, as numbers (NaN bins as None)."""
    table = {}
    for variant, pairs in pairs_by_variant.items():
        centres, mean, count = binned_weight(np.concatenate([np.reshape(p, (-1, 2)) for p in pairs]))
        table[variant] = {
            "occlusion": [round(float(c), 3) for c in centres],
            "audio_weight": [None if np.isnan(m) else round(float(m), 4) for m in mean],
            "hazards": [int(n) for n in count],
        }
    return table


def write_study(study: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plots = study.pop("plots")
    study["weight_by_occlusion"] = weight_by_occlusion(plots)
    (out / "study.json").write_text(
        json.dumps(study, indent=2, default=_json_default) + "\n", encoding="utf-8"
    )
    header = (
        f"Held-out: {study['test']['scenes']} scenes from {study['test']['sounds']} "
        f"(seed {study['test']['seed']}); mean ± std over seeds {study['seeds']}.\n\n"
    )
    weights = "\n".join(
        f"- {variant}: "
        + ", ".join(
            f"{o:.1f}: {'—' if w is None else f'{w:.2f}'} (n={n})"
            for o, w, n in zip(row["occlusion"], row["audio_weight"], row["hazards"], strict=True)
        )
        for variant, row in study["weight_by_occlusion"].items()
    )
    text = (
        header
        + study_table(study["summary"])
        + "\n\nMean per-hazard audio weight by the hazard's true occlusion (bin centre: weight):\n\n"
        + weights
        + "\n"
    )
    (out / "study.md").write_text(text, encoding="utf-8")
    plot_weight_vs_occlusion(plots, out / "weight_vs_occlusion.png")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def study_and_report(args: argparse.Namespace) -> int:
    """Run the study and write its files; a run that stopped before completing ends it (exit 0,
    or 128 + N after signal N), and the same command continues it."""
    try:
        study = run_study(args)
    except UnfinishedRunError as exc:
        print(f"study.py: {exc}", file=sys.stderr)
        return 0 if exc.signal_number is None else 128 + exc.signal_number
    write_study(study, args.out)
    print(f"done: {args.out / 'study.md'}")
    return 0


main = script_main(build_parser, study_and_report)


if __name__ == "__main__":
    sys.exit(main())
