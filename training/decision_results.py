"""The decision stage end to end on held-out scenario runs through the pipeline: docs/results/decision.*

    python training/decision_results.py                       # train what is missing, score, write
    python training/decision_results.py --seeds 0 1 2 --runs-dir runs/decision_results \
        --out docs/results/decision

For each seed it trains (or reuses, when its ``export/metrics.json`` names the current hazard
model's weights hash) the decision stage on the pipeline's outputs (``decision.yaml``) and the
ablation on simulated estimates (``decision_sim.yaml``), then scores both (the pipeline runs'
``best`` and, beside it, ``last`` checkpoint), and the taxonomy rules
with time to contact (``rules.rules_from_feature``: the newest frame's estimate and the odometry's
speed), on the same held-out windows: ``decision.yaml``'s test runs (``decision.test_seed``)
through the pipeline with the hazard model, replayed with the skip patterns of a busy node
(``training/decision_data.py``). Writes ``OUT.json`` (every figure, per seed and mean ± std) and
``OUT.md`` (the tables). Exit status 0, or 2 with one line on stderr for a bad config.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from avi_ros.decision.checkpoint import load_decision_checkpoint
from avi_ros.decision.inference import DecisionArrays, concatenate_decisions, read_decision_output
from avi_ros.taxonomy import default_taxonomy
from training.config import load_config
from training.decision_data import KINDS, PipelineRuns, replay_windows
from training.decision_metrics import DecisionAccumulator, rules_arrays
from training.tables import metric_row, metric_table_head
from training.train import main as train_main
from training.typed_config import ConfigError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "pipeline": REPO / "training" / "configs" / "decision.yaml",
    "simulated": REPO / "training" / "configs" / "decision_sim.yaml",
}
METHODS = ("pipeline", "pipeline_argmax", "pipeline_last", "simulated", "rules")
METHOD_NAMES = {
    "pipeline": "decision stage trained on the pipeline's outputs (checkpoints/best: highest validation "
    "high-risk recall, the contract's choice), at its HIGH-risk operating point: HIGH where P(HIGH) "
    "reaches the largest threshold that calls `decision.high_risk_recall` of the validation split's "
    "HIGH windows HIGH (what the node runs)",
    "pipeline_argmax": "the same checkpoints read by the argmax of the risk head, beside it: what the "
    "operating point changes",
    "pipeline_last": "the same runs' last epoch (checkpoints/last, at its own operating point), beside it: "
    "what selection by a small validation split's recall costs",
    "simulated": "decision stage trained on simulated estimates (ablation), at its operating point chosen "
    "on its own (simulated) validation split",
    "rules": "taxonomy rules with time to contact (newest estimate + odometry speed)",
}
SCALARS = (
    "risk_high_recall",
    "risk_high_fn_rate",
    "risk_high_precision",
    "action_accuracy",
    "action_macro_f1",
    "risk_accuracy",
    "reason_accuracy",
)
TARGETS = {
    "risk_high_recall": (0.95, "min"),
    "risk_high_fn_rate": (0.05, "max"),
    "action_accuracy": (0.85, "min"),
}
SUBSETS = ("all", "startup", "skipped", "telemetry_missing")


def test_windows(config_path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The held-out windows of ``config_path`` (a ``source: pipeline`` config) and what made them."""
    config = load_config(config_path, [])
    decision = config.decision
    source = PipelineRuns(decision.pipeline, config.data.cache_dir)
    runs = source.runs(decision.pipeline.test_scenes, decision.test_seed, held_out=True)
    model = decision.model
    windows = replay_windows(
        runs,
        decision.pipeline.eval_replays,
        decision.test_seed,
        decision.pipeline,
        model.frames,
        model.frame_period_s,
    )
    about = {
        "hazard_model": _shown(source.model_dir),
        "hazard_model_fingerprint_16": source.model_hash,
        "test_runs": decision.pipeline.test_scenes,
        "test_seed": decision.test_seed,
        "replays_per_run": decision.pipeline.eval_replays,
        "windows": len(windows["risk"]),
        "run_frames": int(sum(len(r["stamps_ns"]) for r in runs)),
        "sounds": source.key(decision.test_seed, True).sounds,
        "cache": str(source.directory(decision.test_seed, True)),
        "high_risk_windows": int(np.sum(windows["risk"] == 3)),
        "startup_windows": int(windows["startup"].sum()),
        "windows_with_skipped_frames": int(np.sum(windows["skipped"] > 0)),
        "skipped_frame_share": float(
            1.0
            - len(windows["risk"]) / (decision.pipeline.eval_replays * sum(len(r["stamps_ns"]) for r in runs))
        ),
    }
    return windows, about


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when inside it (the results file names no machine's paths)."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _subset_masks(windows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "all": np.ones(len(windows["risk"]), dtype=bool),
        "startup": windows["startup"] == 1,
        "skipped": windows["skipped"] > 0,
        "telemetry_missing": windows["telemetry_missing"] == 1,
    }


def score(arrays: DecisionArrays, windows: dict[str, np.ndarray]) -> dict[str, Any]:
    """Metrics of predictions ``arrays`` (``DecisionArrays``) on ``windows``: all, per subset, per kind."""
    labels = {key: windows[key] for key in ("risk", "reason", "action")}
    out: dict[str, Any] = {}
    for name, mask in _subset_masks(windows).items():
        if not mask.any():
            continue
        accumulator = DecisionAccumulator()
        accumulator.update(
            arrays.rows(mask),
            {key: value[mask] for key, value in labels.items()},
        )
        result = accumulator.compute(windows["scenario"][mask], KINDS)
        out[name] = {"samples": result["samples"], **result["scalars"]}
        if name == "all":
            out["confusion"] = result["confusion"]
            out["kinds"] = result["groups"]
    return out


def predict(
    checkpoint: Path, windows: dict[str, np.ndarray], operating_point: bool = True, batch: int = 1024
) -> DecisionArrays:
    """``DecisionArrays`` of a decision checkpoint on ``windows`` (CPU), at its HIGH-risk operating
    point (``operating_point=False``: the argmax of the risk head)."""
    model, metadata = load_decision_checkpoint(checkpoint, "cpu")
    parts = []
    with torch.inference_mode():
        for start in range(0, len(windows["risk"]), batch):
            output = model(
                torch.from_numpy(windows["features"][start : start + batch]),
                torch.from_numpy(windows["telemetry"][start : start + batch]),
            )
            parts.append(read_decision_output(output))
    return concatenate_decisions(parts, metadata.high_risk_threshold if operating_point else None)


def train_or_reuse(method: str, seed: int, runs_dir: Path, model_hash: str, retrain: bool) -> Path:
    """The run directory of ``method`` (pipeline | simulated) and ``seed``, trained when missing or stale."""
    run = runs_dir / f"{method}_s{seed}"
    metrics = run / "export" / "metrics.json"
    if metrics.is_file() and not retrain:
        done = json.loads(metrics.read_text(encoding="utf-8"))
        stale = method == "pipeline" and done.get("hazard_model", {}).get("fingerprint_16") != model_hash
        if not stale:
            return run
    overrides = [
        f"seed={seed}",
        f"name=decision_{method}_s{seed}",
        f"output_dir={run}",
        "runtime.progress=false",
    ]
    code = train_main(["--config", str(CONFIGS[method]), "--overwrite", *overrides])
    if code != 0:
        raise RuntimeError(f"training {method} seed {seed} failed with exit status {code}")
    return run


def mean_std(values: list[float | None]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(present)), "std": float(np.std(present))}


def build_results(seeds: list[int], runs_dir: Path, retrain: bool) -> dict[str, Any]:
    windows, about = test_windows(CONFIGS["pipeline"])
    about["subsets"] = {
        name: {"windows": int(mask.sum()), "high_risk_windows": int(np.sum(windows["risk"][mask] == 3))}
        for name, mask in _subset_masks(windows).items()
    }
    results: dict[str, Any] = {
        "about": {
            **about,
            "seeds": seeds,
            "methods": METHOD_NAMES,
            "targets": {k: {"bound": b, "kind": kind} for k, (b, kind) in TARGETS.items()},
            "configs": {m: str(p.relative_to(REPO)) for m, p in CONFIGS.items()},
        },
        "methods": {},
    }
    rules = score(rules_arrays(windows["features"], windows["telemetry"], default_taxonomy()), windows)
    results["methods"]["rules"] = {"per_seed": {}, "scores": rules}
    for method in ("pipeline", "pipeline_argmax", "pipeline_last", "simulated"):
        trained = "simulated" if method == "simulated" else "pipeline"
        checkpoint = "last" if method == "pipeline_last" else "best"
        per_seed = {}
        for seed in seeds:
            run = train_or_reuse(trained, seed, runs_dir, about["hazard_model_fingerprint_16"], retrain)
            arrays = predict(run / "checkpoints" / checkpoint, windows, method != "pipeline_argmax")
            per_seed[str(seed)] = {
                "high_risk_threshold": arrays.high_risk_threshold,
                **score(arrays, windows),
            }
        summary = {
            subset: {
                key: mean_std([per_seed[str(s)].get(subset, {}).get(key) for s in seeds]) for key in SCALARS
            }
            for subset in SUBSETS
        }
        results["methods"][method] = {"per_seed": per_seed, "summary": summary}
    return results


def _fmt(value: float | None, std: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if std is None else f"{value:.3f} ± {std:.3f}"


def _cell(results: dict[str, Any], method: str, subset: str, key: str) -> str:
    entry = results["methods"][method]
    if method == "rules":
        return _fmt(entry["scores"].get(subset, {}).get(key))
    stats = entry["summary"][subset][key]
    return _fmt(stats["mean"], stats["std"])


def markdown(results: dict[str, Any]) -> str:
    about = results["about"]
    lines = [
        "# Decision stage end to end: held-out scenario runs through the pipeline",
        "",
        "Generated by `python training/decision_results.py`; do not edit by hand.",
        "",
        f"Hazard model `{about['hazard_model_fingerprint_16']}` (sha256 of its weights, metadata and "
        f"direction reading, first 16 hex digits; `{Path(about['hazard_model']).name}`). "
        f"{about['test_runs']} held-out runs (seed {about['test_seed']}, sounds: {about['sounds']}), "
        f"{about['run_frames']} frames through the "
        f"pipeline, replayed {about['replays_per_run']} times with the skip patterns of a busy node: "
        f"{about['windows']} windows ({about['skipped_frame_share']:.0%} of frames skipped; "
        f"{about['windows_with_skipped_frames']} windows hold a skipped frame, {about['startup_windows']} "
        f"are start-up windows), {about['high_risk_windows']} of them truly HIGH risk. Trained stages: "
        f"seeds {', '.join(map(str, about['seeds']))}, mean ± std over seeds.",
        "",
        *metric_table_head(METHODS),
    ]
    for key in SCALARS:
        lines.append(metric_row(key, TARGETS.get(key), (_cell(results, m, "all", key) for m in METHODS)))
    for subset, title in (
        ("startup", "start-up windows (zero-padded before the first processed frame)"),
        ("skipped", "windows holding a frame the node skipped"),
    ):
        counts = about["subsets"][subset]
        title += f": {counts['windows']} windows, {counts['high_risk_windows']} truly HIGH"
        lines += [
            "",
            f"**{title}**",
            "",
            "| metric | " + " | ".join(METHODS) + " |",
            "|---|" + "---|" * len(METHODS),
        ]
        for key in ("risk_high_recall", "action_accuracy"):
            lines.append(f"| {key} | " + " | ".join(_cell(results, m, subset, key) for m in METHODS) + " |")
    lines += ["", "Methods:"] + [f"- `{m}`: {about['methods'][m]}" for m in METHODS]
    lines += ["", "HIGH-risk thresholds on P(HIGH) chosen on validation, per seed:"]
    for method in ("pipeline", "pipeline_last", "simulated"):
        per_seed = results["methods"][method]["per_seed"]
        shown = ", ".join(f"{_fmt(per_seed[str(s)]['high_risk_threshold'])}" for s in about["seeds"])
        lines.append(f"- `{method}`: {shown}")
    verdict = []
    for key, (bound, kind) in TARGETS.items():
        stats = results["methods"]["pipeline"]["summary"]["all"][key]
        value = stats["mean"]
        met = value is not None and (value >= bound if kind == "min" else value <= bound)
        verdict.append(f"- {key}: {_fmt(value)} — target {'met' if met else 'not met'}")
    lines += ["", "Targets (decision stage trained on the pipeline's outputs, mean over seeds):", *verdict]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python training/decision_results.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/decision_results"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/decision"))
    parser.add_argument("--retrain", action="store_true", help="train every run afresh")
    args = parser.parse_args(argv)
    try:
        results = build_results(args.seeds, args.runs_dir, args.retrain)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"decision_results.py: error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = markdown(results)
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
