"""The one model against the retired single-hazard demo model, on that model's own measures.

    python training/demo_comparison.py --inputs docs/results/demo_comparison \
        --out docs/results/demo_comparison

Issue 20's last measure: the hazard model with K = 3 slots, trained on the demo's data and budget,
must be at least as good as the retired single-hazard demo model on that model's own measures
(class accuracy and median azimuth error on frames with at most one hazard), over 3 training
seeds (mean ± std, Bessel). The K = 3 model enters twice: with the retired demo's data size and
budget (``one_model_eval.json``), and as today's `make demo` trains it (``demo_now_eval.json``).

The inputs are evaluation files of the same held-out test split (one frame per scene, real test
recordings no model heard):
- ``retired_eval.json``: the retired demo model's seeds, scored by the code that still had it
  (commit b70f479, the last with that model; ``training/single_hazard_baseline.py`` there, whose text is in
  ``docs/results/single_hazard_baseline.md``) with ``training.set_metrics._single_hazard_scores``:
  {run: {"one_hazard_frames": {"accuracy", "azimuth_error_median_deg", "located_frames", ...}}};
- ``one_model_eval.json`` and ``demo_now_eval.json``: ``training/evaluate.py``'s ``metrics.json``
  of K = 3 seeds, whose ``single_hazard`` group is the same top-slot reading of the same frames;
- ``provenance.json``: the test split, the seeds and how each model was trained (``notes``).

Writes ``comparison.json`` and ``comparison.md`` in ``--out``. Exit 0, or 2 with one line on
stderr when an input is missing or malformed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.evaluate import AGGREGATE
from training.metrics import BEHIND, SECTORS, mean_and_std

MEASURES = (  # (key, label, better): the figures each model is compared on
    ("accuracy_pct", "one-hazard class accuracy [%]", "higher"),
    ("azimuth_error_median_deg", "one-hazard median azimuth error [°]", "lower"),
    ("set_f20_pct", "set F20 [%]", "higher"),
)
MODELS = (  # (input file, label)
    ("retired_eval.json", "retired single-hazard demo model (2841fae^ demo.yaml)"),
    ("one_model_eval.json", "K = 3 at the retired demo's data size and budget (today's recipe)"),
    ("demo_now_eval.json", "K = 3 as today's `make demo` trains it (demo.yaml)"),
)
RETIRED = MODELS[0][0]
DIRECTION_SECTORS = ("all", *(name for name, _, _ in SECTORS), BEHIND)


def figures(single: Mapping[str, Any], set_f20: float | None) -> dict[str, float | None]:
    """One seed's figures: ``single`` is the top-slot reading of the frames with at most one hazard
    (the retired code's ``one_hazard_frames``, ``training/evaluate.py``'s ``single_hazard`` group:
    the same function of the same frames), ``set_f20`` the set F20 (None for the one-slot model)."""
    return {
        "accuracy_pct": 100.0 * single["accuracy"],
        "azimuth_error_median_deg": single["azimuth_error_median_deg"],
        "located_frames": single["located_frames"],
        "frames": single["frames"],
        "set_f20_pct": None if set_f20 is None else 100.0 * set_f20,
    }


def compare(seeds: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Per model the seeds' summary; per K = 3 model and measure whether it is at least as good as
    the retired model (its mean no worse)."""
    summary = {model: mean_and_std(list(runs.values())) for model, runs in seeds.items()}
    verdicts = []
    for model, _ in MODELS[1:]:
        for key, label, better in MEASURES:
            ours, theirs = summary[model][key]["mean"], summary[RETIRED][key]["mean"]
            if ours is None or theirs is None:
                continue
            as_good = ours >= theirs if better == "higher" else ours <= theirs
            verdicts.append(
                {
                    "model": model,
                    "measure": key,
                    "label": label,
                    "one_model": ours,
                    "retired": theirs,
                    "seeds": summary[model][key]["n"],
                    "at_least_as_good": bool(as_good),
                }
            )
    return {"summary": summary, "verdicts": verdicts}


def cell(stats: Mapping[str, Any]) -> str:
    """mean ± std, the mean alone for one seed (one seed has no spread), "—" for none."""
    if stats["mean"] is None:
        return "—"
    return f"{stats['mean']:.1f}" if stats["n"] < 2 else f"{stats['mean']:.1f} ± {stats['std']:.1f}"


def seed_text(seeds: Mapping[str, Sequence[int]] | Sequence[int]) -> str:
    """The training seeds, per model where they differ ({model: [seeds]}) or for all ([seeds])."""
    if isinstance(seeds, Mapping):
        return "; ".join(f"{model} {', '.join(map(str, runs))}" for model, runs in seeds.items())
    return ", ".join(map(str, seeds))


def markdown(result: Mapping[str, Any]) -> str:
    labels = dict(MODELS)
    lines = [
        "# The one model against the retired single-hazard demo model, on its own measures",
        "",
        f"Written by `python training/demo_comparison.py` from `{result['inputs']}`. Test split: "
        f"{result['test']}. Training seeds: {seed_text(result['seeds'])}; mean ± std where there are"
        " several.",
        "",
        "| model | " + " | ".join(label for _, label, _ in MEASURES) + " | located frames |",
        "|---|" + "---:|" * (len(MEASURES) + 1),
    ]
    for model, stats in result["summary"].items():
        cells = [cell(stats[key]) for key, _, _ in MEASURES] + [cell(stats["located_frames"])]
        lines.append(f"| {labels[model]} | " + " | ".join(cells) + " |")
    lines += ["", "Issue 20's measure (a K = 3 mean no worse than the retired model's):", ""]
    for verdict in result["verdicts"]:
        word = "yes" if verdict["at_least_as_good"] else "**no**"
        lines.append(
            f"- {labels[verdict['model']]}, {verdict['label']}: {verdict['one_model']:.1f} "
            f"({verdict['seeds']} seed{'s' if verdict['seeds'] != 1 else ''}) against "
            f"{verdict['retired']:.1f}: {word}"
        )
    lines += _table_head(
        "Per seed:", ("model", "run", "class accuracy [%]", "median azimuth error [°]", "set F20 [%]"), 2
    )
    for model, runs in result["seeds_figures"].items():
        for run, figures in runs.items():
            f20 = "—" if figures["set_f20_pct"] is None else f"{figures['set_f20_pct']:.1f}"
            lines.append(
                f"| {labels[model]} | {run} | {figures['accuracy_pct']:.1f} | "
                f"{figures['azimuth_error_median_deg']:.1f} | {f20} |"
            )
    lines += _table_head(
        "Direction on the frames with exactly one hazard, by sector of the true azimuth: the K = 3 "
        "models' top slot beside the physics baseline (the broadband FOA intensity vector of the same "
        "window; `training/evaluate.py`'s `direction` group). The retired model's evaluation has no "
        "sectors.",
        ("model", "run", "sector", "frames", "model [°]", "physics [°]"),
        3,
    )
    for model, runs in result["directions"].items():
        for run, groups in runs.items():
            for sector in DIRECTION_SECTORS:
                row = groups[sector]
                lines.append(
                    f"| {labels[model]} | {run} | {sector} | {row['frames']} | "
                    f"{_number(row['model_azimuth_error_median_deg'])} | "
                    f"{_number(row['physics_azimuth_error_median_deg'])} |"
                )
    return "\n".join([*lines, "", result["notes"], ""])


def _table_head(intro: str, columns: Sequence[str], text_columns: int) -> list[str]:
    """A paragraph, then a table's two head lines (the first ``text_columns`` columns text, the rest
    numbers, right-aligned)."""
    align = "|" + "---|" * text_columns + "---:|" * (len(columns) - text_columns)
    return ["", intro, "", "| " + " | ".join(columns) + " |", align]


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def load_runs(inputs: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Per input file (``MODELS``), per training run, its evaluation entry."""
    runs = {}
    for name, _ in MODELS:
        data = json.loads((inputs / name).read_text(encoding="utf-8"))
        runs[name] = {run: entry for run, entry in sorted(data.items()) if run != AGGREGATE}
    return runs


def seed_figures(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per model, per run, the compared figures (``figures``)."""
    return {
        name: {
            run: figures(entry["one_hazard_frames"], None)
            if name == RETIRED
            else figures(entry["single_hazard"], entry["set"]["f20"])
            for run, entry in entries.items()
        }
        for name, entries in runs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python training/demo_comparison.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--inputs", type=Path, required=True, help="folder of the three evaluation files")
    parser.add_argument("--out", type=Path, required=True, help="folder of comparison.json / .md")
    args = parser.parse_args(argv)
    try:
        runs = load_runs(args.inputs)
        seeds = seed_figures(runs)
        directions = {
            name: {run: entry["direction"] for run, entry in entries.items()}
            for name, entries in runs.items()
            if name != RETIRED
        }
        meta = json.loads((args.inputs / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"demo_comparison: {exc}", file=sys.stderr)
        return 2
    result = {
        **meta,
        "inputs": str(args.inputs),
        **compare(seeds),
        "seeds_figures": seeds,
        "directions": directions,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "comparison.md").write_text(markdown(result), encoding="utf-8")
    for verdict in result["verdicts"]:
        print(
            f"{verdict['model']}: {verdict['measure']} {verdict['one_model']:.1f} vs "
            f"{verdict['retired']:.1f} -> {'ok' if verdict['at_least_as_good'] else 'worse'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
