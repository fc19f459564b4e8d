"""The one model against the two models it replaced, each on its own measures.

    python training/demo_comparison.py --inputs docs/results/demo_comparison \
        --out docs/results/demo_comparison

Issue 20's last measure: the hazard model with K = 3 slots, trained on the demo's data and budget,
must be at least as good as both models it replaces on their own measures, over 3 training seeds
(mean ± std, Bessel): the retired single-hazard demo model on class accuracy and median azimuth
error of the frames with at most one hazard, the retired hazard-set model on set F20.

The inputs are evaluation files of the held-out test split (one frame per scene, real test
recordings no model heard), one file per model, {run: evaluation}:
- the retired demo model's seeds, scored by the code that still had it (commit b70f479, the last
  with that model; ``training/single_hazard_baseline.py`` there, whose text is in
  ``docs/results/single_hazard_baseline.md``): {run: {"one_hazard_frames": {"accuracy", ...}}};
- every other model: ``training/evaluate.py``'s ``metrics.json`` (the retired set model's from the
  study of that commit), whose ``single_hazard`` group is the same top-slot reading of the same
  frames and whose ``set`` group holds the set F20;
- ``provenance.json``: the test split, the seeds, how each model was trained (``notes``), and the
  roles: ``references`` {file: {"label", "measures": [MEASURES keys it is the reference for]}} and
  ``candidates`` {file: label}, the K = 3 models compared with each reference on its measures.

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
DIRECTION_SECTORS = ("all", *(name for name, _, _ in SECTORS), BEHIND)


def figures(entry: Mapping[str, Any]) -> dict[str, float | None]:
    """One seed's figures from its evaluation: the top-slot reading of the frames with at most one
    hazard (the retired code's ``one_hazard_frames``, ``training/evaluate.py``'s ``single_hazard``
    group: the same function of the same frames) and the set F20 (None for the one-slot model)."""
    if "one_hazard_frames" in entry:
        single, set_f20 = entry["one_hazard_frames"], None
    else:
        single, set_f20 = entry["single_hazard"], entry["set"]["f20"]
    return {
        "accuracy_pct": 100.0 * single["accuracy"],
        "azimuth_error_median_deg": single["azimuth_error_median_deg"],
        "located_frames": single["located_frames"],
        "frames": single["frames"],
        "set_f20_pct": None if set_f20 is None else 100.0 * set_f20,
    }


def compare(
    seeds: Mapping[str, Mapping[str, Mapping[str, Any]]],
    references: Mapping[str, Mapping[str, Any]],
    candidates: Mapping[str, str],
) -> dict[str, Any]:
    """Per model the seeds' summary; per candidate, reference and measure of that reference whether
    the candidate is at least as good (its mean no worse)."""
    summary = {model: mean_and_std(list(runs.values())) for model, runs in seeds.items()}
    verdicts = []
    for model in candidates:
        for reference, role in references.items():
            for key, label, better in MEASURES:
                if key not in role["measures"]:
                    continue
                ours, theirs = summary[model][key]["mean"], summary[reference][key]["mean"]
                as_good = ours >= theirs if better == "higher" else ours <= theirs
                verdicts.append(
                    {
                        "model": model,
                        "reference": reference,
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


def labels_of(result: Mapping[str, Any]) -> dict[str, str]:
    """Each input file's label, references first."""
    return {
        **{name: role["label"] for name, role in result["references"].items()},
        **result["candidates"],
    }


def markdown(result: Mapping[str, Any]) -> str:
    labels = labels_of(result)
    lines = [
        "# The one model against the two models it replaced, each on its own measures",
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
    lines += ["", "Issue 20's measure (a K = 3 mean no worse than the replaced model's on its measure):", ""]
    for verdict in result["verdicts"]:
        word = "yes" if verdict["at_least_as_good"] else "**no**"
        lines.append(
            f"- {labels[verdict['model']]}, {verdict['label']}: {verdict['one_model']:.1f} "
            f"({verdict['seeds']} seed{'s' if verdict['seeds'] != 1 else ''}) against "
            f"{verdict['retired']:.1f} ({labels[verdict['reference']]}): {word}"
        )
    lines += _table_head(
        "Per seed:", ("model", "run", "class accuracy [%]", "median azimuth error [°]", "set F20 [%]"), 2
    )
    for model, runs in result["seeds_figures"].items():
        for run, figures in runs.items():
            lines.append(
                f"| {labels[model]} | {run} | {figures['accuracy_pct']:.1f} | "
                f"{figures['azimuth_error_median_deg']:.1f} | {_number(figures['set_f20_pct'])} |"
            )
    lines += _table_head(
        "Direction on the frames with exactly one hazard, by sector of the true azimuth: each "
        "K = 3 model's top slot beside the physics baseline (the broadband FOA intensity vector of "
        "the same window; `training/evaluate.py`'s `direction` group). The retired demo model's "
        "evaluation has no sectors.",
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


def load_runs(inputs: Path, names: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per input file, per training run, its evaluation entry."""
    runs = {}
    for name in names:
        data = json.loads((inputs / name).read_text(encoding="utf-8"))
        runs[name] = {run: entry for run, entry in sorted(data.items()) if run != AGGREGATE}
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python training/demo_comparison.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--inputs", type=Path, required=True, help="folder of the evaluation files")
    parser.add_argument("--out", type=Path, required=True, help="folder of comparison.json / .md")
    args = parser.parse_args(argv)
    try:
        meta = json.loads((args.inputs / "provenance.json").read_text(encoding="utf-8"))
        references, candidates = meta["references"], meta["candidates"]
        runs = load_runs(args.inputs, [*references, *candidates])
        seeds = {
            name: {run: figures(entry) for run, entry in entries.items()} for name, entries in runs.items()
        }
        directions = {
            name: {run: entry["direction"] for run, entry in entries.items() if "direction" in entry}
            for name, entries in runs.items()
        }
        result = {
            **meta,
            "inputs": str(args.inputs),
            **compare(seeds, references, candidates),
            "seeds_figures": seeds,
            "directions": {name: runs for name, runs in directions.items() if runs},
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"demo_comparison: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "comparison.md").write_text(markdown(result), encoding="utf-8")
    for verdict in result["verdicts"]:
        print(
            f"{verdict['model']}: {verdict['measure']} {verdict['one_model']:.1f} vs "
            f"{verdict['retired']:.1f} ({verdict['reference']}) -> "
            f"{'ok' if verdict['at_least_as_good'] else 'worse'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
