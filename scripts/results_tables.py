"""Regenerate the README's results sections from the committed result files under docs/results/.

    python scripts/results_tables.py            # rewrite the generated sections of README.md
    python scripts/results_tables.py --check    # exit 1 when README.md differs from the files

Results come from files: a benchmark or a study writes a JSON file, the file is committed under
``docs/results/``, and the README shows it between two marker comments, never typed by hand:

    <!-- results:direction_physics -->
    (generated text)
    <!-- /results -->

``SECTIONS`` maps each marker name to its file and the function that renders it, so showing a
new result file is one entry there and one marker pair in the README. A registered file that
exists without its marker, a marker whose file is missing and an unknown marker name are errors:
a result can neither drop out of the README silently nor be shown from nowhere. A mean ± std cell
always shows its ± and the number of runs n (a single run reads "± 0.0" with n=1).

Exit status 0; 1 with ``--check`` when a section differs (one line per section); 2 with one line on
stderr for a missing file, a bad marker or a result file the renderer cannot read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: the study's table layout is imported from training/
    sys.path.insert(0, str(REPO_ROOT))
README = REPO_ROOT / "README.md"
END_MARKER = "<!-- /results -->"
SECTION_PATTERN = re.compile(
    r"<!-- results:(?P<name>[\w.-]+) -->\n(?P<body>.*?)" + re.escape(END_MARKER), re.S
)
OPENING_PATTERN = re.compile(r"<!-- results:([\w.-]+) -->")
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[\w.~-]+/)+[\w.~-]+")
MISSING = "—"


class ResultsError(Exception):
    """A problem with the README's markers or a result file, said in one line."""


# --- cells ---------------------------------------------------------------------------------------


def mean_std(cell: Any, scale: float = 1.0, decimals: int = 1) -> str:
    """``{"mean", "std", "n"}`` (``training.metrics.mean_and_std``) as "m ± s", scaled; "—" when
    no run has the value. The ± is always there, also for one run (std 0.0)."""
    if not isinstance(cell, Mapping) or cell.get("mean") is None:
        return MISSING
    std = cell.get("std") or 0.0
    return f"{cell['mean'] * scale:.{decimals}f} ± {std * scale:.{decimals}f}"


def runs_of(cell: Any) -> int | None:
    """The number of runs behind a mean ± std cell (None when it has no value)."""
    if isinstance(cell, Mapping) and cell.get("mean") is not None:
        return int(cell.get("n", 0))
    return None


def mean_std_row(
    label: str, cells: Sequence[Any], scale: float | Sequence[float] = 1.0, decimals: int = 1
) -> str:
    """One Markdown row of mean ± std cells (``scale``: one for all cells, or one per cell). The
    row's label carries n when every cell has the same number of runs; otherwise each cell
    carries its own n."""
    scales = [scale] * len(cells) if isinstance(scale, int | float) else list(scale)
    counts = {runs_of(cell) for cell in cells} - {None}
    texts = [mean_std(cell, s, decimals) for cell, s in zip(cells, scales, strict=True)]
    if len(counts) > 1:
        texts = [
            t if runs_of(c) is None else f"{t} (n={runs_of(c)})" for t, c in zip(texts, cells, strict=True)
        ]
    elif counts:
        label = f"{label} (n={counts.pop()})"
    return f"| {label} | " + " | ".join(texts) + " |"


def number(value: Any, decimals: int = 1) -> str:
    """A plain figure (a median, a count) or "—" when missing."""
    return MISSING if value is None else f"{value:.{decimals}f}"


def portable(text: str) -> str:
    """``text`` with absolute paths cut to their last two parts: a result file names what it was
    run on, not the home directory of the machine that ran it."""
    return ABSOLUTE_PATH.sub(lambda match: "/".join(match.group(0).split("/")[-2:]), text)


def table(header: Sequence[str], rows: Sequence[str], numeric_from: int = 1) -> str:
    """A Markdown table: ``header`` cells, right-aligned from column ``numeric_from``, then ``rows``."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|", *rows])


# --- renderers: one per kind of result file ------------------------------------------------------

SECTOR_NAMES = {"great_circle": "3-D"}


def render_direction(result: Mapping[str, Any], source: str) -> str:
    """The direction benchmark (``bench/bench_direction.py``): median azimuth error [deg] by sector
    of the true azimuth, per condition and estimator. Medians of one sweep, so no ±; the scene
    count is the n of each row."""
    estimators = result["estimators"]
    first = next(iter(result["summary"].values()))
    columns = list(first[estimators[0]])
    notes = [
        f"Median azimuth error [deg] from `{source}`, written by "
        f"`python bench/bench_direction.py {portable(' '.join(result['argv']))}` "
        f"({result['scenes']} scenes, sounds: {portable(str(result['sounds']))}, "
        f"{result['seconds']:.0f} s on {result['machine']}).",
        "Sectors of the true azimuth: front |az| ≤ 45°, left 45..135°, right −135..−45°, behind ≥ 135°;",
        "`3-D` is the median great-circle error.",
        "`physics`: the FOA intensity vector (`avi_ros.doa.tf_direction`).",
    ]
    if result.get("checkpoint"):
        notes.append(f"`model`: `{portable(str(result['checkpoint']))}`, its most confident hazard.")
    rows = []
    for condition, entry in result["summary"].items():
        for estimator in estimators:
            cells = " | ".join(number(entry[estimator].get(column)) for column in columns)
            rows.append(f"| {condition} | {estimator} | {cells} | {entry['scenes']['all']} |")
    header = ["condition", "estimator", *(SECTOR_NAMES.get(c, c) for c in columns), "scenes"]
    return " ".join(notes) + "\n\n" + table(header, rows, numeric_from=2)


def render_study(study: Mapping[str, Any], source: str) -> str:
    """A study (``training/study.py``): F20, LE and RDE by visibility and
    polyphony, the single-hazard figures and the audio weight by occlusion, per variant, each cell
    mean ± std over the training seeds with n."""
    from training.set_report import TABLE_GROUPS, TABLE_METRICS

    test = study["test"]
    summary: Mapping[str, Mapping[str, Any]] = study["summary"]
    parts = [
        f"From `{source}`, written by `python training/study.py` (several side by side: "
        f"`training/compare_studies.py`). Held out: {test['scenes']} "
        f"scenes from {portable(str(test['sounds']))} (test seed {test['seed']}); mean ± std over the "
        f"training seeds {study['seeds']}, n = runs with the value."
    ]
    names = [group.removeprefix("visibility_").replace("_", " ") for group in TABLE_GROUPS]
    for metric, (heading, scale, decimals) in TABLE_METRICS.items():
        rows = [
            mean_std_row(
                variant, [values.get(f"{group}/{metric}") for group in TABLE_GROUPS], scale, decimals
            )
            for variant, values in summary.items()
        ]
        parts.append(table([heading, *names], rows))
    single = [
        mean_std_row(
            variant,
            [values.get("single_hazard/accuracy"), values.get("single_hazard/azimuth_error_median_deg")],
            scale=(100.0, 1.0),
        )
        for variant, values in summary.items()
    ]
    parts.append(
        table(
            ["frames with ≤ 1 hazard", "top-slot class accuracy [%]", "top-slot median azimuth error [°]"],
            single,
        )
    )
    parts += _study_directions(summary)
    weights = study.get("weight_by_occlusion") or {}
    if weights:
        bins = next(iter(weights.values()))["occlusion"]
        rows = [
            f"| {variant} | "
            + " | ".join(
                MISSING if w is None else f"{w:.2f} (n={n})"
                for w, n in zip(row["audio_weight"], row["hazards"], strict=True)
            )
            + " |"
            for variant, row in weights.items()
        ]
        parts.append(
            "Mean per-hazard audio weight by the hazard's own true occlusion (matched in-view hazards, "
            "all seeds; n = hazards):\n\n" + table(["variant", *(f"occl. {b:.1f}" for b in bins)], rows)
        )
    return "\n\n".join(parts)


STUDY_DIRECTION_GROUPS = ("all", "front", "left", "right", "behind", "visibility_out_of_view")


def _study_directions(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The direction table of a study (its ``direction/<group>/...`` figures), when it has them:
    per variant the model's top slot and the physics baseline on the same one-hazard frames."""
    if not any("direction/all/model_azimuth_error_median_deg" in values for values in summary.values()):
        return []
    rows = []
    for variant, values in summary.items():
        for who in ("model", "physics"):
            cells = [
                values.get(f"direction/{g}/{who}_azimuth_error_median_deg") for g in STUDY_DIRECTION_GROUPS
            ]
            rows.append(mean_std_row(f"{variant}: {who}", cells))
    names = [g.removeprefix("visibility_").replace("_", " ") for g in STUDY_DIRECTION_GROUPS]
    return [
        "Median azimuth error [°] on the frames with one hazard, by sector of the true azimuth: the model's "
        "top slot against the physics baseline (broadband FOA intensity vector of the same audio window):\n\n"
        + table(["", *names], rows)
    ]


def render_scenarios(result: Mapping[str, Any], source: str) -> str:
    """The demo's scenarios replayed with a model (``training/scenario_eval.py``): per hazard its
    detection rate, class accuracy and direction error beside the physics baseline's (the nearest
    intensity-vector direction of each frame, over every sounding frame), and whether it meets the
    target."""
    rows = []
    for scenario, scores in result["scenarios"].items():
        for hazard, row in scores["hazards"].items():
            rows.append(
                f"| {scenario} | {hazard} | {row['frames']} | {number(row['detected_%'])} | "
                f"{number(row['class_accuracy_%'])} | {number(row['median_angular_error_deg'])} | "
                f"{number(row.get('physics_median_angular_error_deg'))} | "
                f"{'yes' if row['meets_target'] else 'no'} |"
            )
        false_alarms = number(scores["false_alarm_%"])
        rows.append(f"| {scenario} | (no hazard: false alarms) | — | {false_alarms} | — | — | — | — |")
    header = [
        "scenario",
        "hazard",
        "frames",
        "detected [%]",
        "class right [%]",
        "median dir. error [°]",
        "physics: median dir. error [°]",
        "met",
    ]
    return (
        f"From `{source}`, written by `python training/scenario_eval.py --out {source}` (model: "
        f"{result['model']}, bag seed {result['seed']}); target: {result['target']}.\n\n"
        + table(header, rows, numeric_from=2)
    )


def render_test_split(result: Mapping[str, Any], source: str) -> str:
    """One model's held-out test split (``metrics/test_split.json`` of ``training/ship.py``): the set
    figures overall and by visibility, and the single-hazard view (top slot, frames with ≤ 1 hazard)."""
    metrics, test = result["metrics"], result["test"]
    single = metrics.get("single_hazard", {})

    def percent(value: Any) -> str:
        return number(None if value is None else 100.0 * value)

    groups = [metrics["set"], *(metrics[f"visibility_{v}"] for v in ("visible", "occluded", "out_of_view"))]
    row = (
        "| "
        + " | ".join(
            [
                *(percent(g.get("f20")) for g in groups),
                percent(metrics["set"].get("precision")),
                percent(metrics["set"].get("recall")),
                percent(metrics["visibility_out_of_view"].get("recall")),
                number(metrics["set"].get("le_deg")),
                percent(single.get("accuracy")),
                number(single.get("confidence_auroc"), 2),
                percent(single.get("false_alarm_rate")),
            ]
        )
        + " |"
    )
    header = [
        "F20 set [%]",
        "visible",
        "occluded",
        "out of view",
        "precision [%]",
        "recall [%]",
        "out-of-view recall [%]",
        "LE [°]",
        "1-hazard class acc. [%]",
        "confidence AUROC",
        "false alarms [%]",
    ]
    return (
        f"From `{source}`: {test['scenes']} held-out scenes from {portable(str(test['sounds']))} "
        f"(test seed {test['seed']}), training seed {result['seed']}; confidence threshold "
        f"{result.get('confidence_threshold', 0.5):g} (the node's default when it was measured).\n\n"
        + table(header, [row], numeric_from=0)
    )


OPERATING_POINT_COLUMNS = (
    ("f20", "F20 set [%]"),
    ("f20_visible", "visible"),
    ("f20_out_of_view", "out of view"),
    ("precision", "precision [%]"),
    ("recall", "recall [%]"),
    ("out_of_view_recall", "out-of-view recall [%]"),
    ("false_alarm_rate", "false alarms [%]"),
)


def render_operating_points(result: Mapping[str, Any], source: str) -> str:
    """``training/evaluate.py --operating-points``: what each confidence threshold gives, one row
    per model and threshold (the same frames for every row)."""
    header = ["model", "threshold", *(title for _, title in OPERATING_POINT_COLUMNS)]
    rows = []
    for model, points in result["models"].items():
        for point in points:
            cells = [
                "n/a" if point[key] is None else f"{100 * point[key]:.1f}"
                for key, _ in OPERATING_POINT_COLUMNS
            ]
            rows.append(f"| {model} | {point['threshold']:.2f} | " + " | ".join(cells) + " |")
    note = (
        f"From `{source}`, written by `python training/evaluate.py --operating-points` on "
        f"`{portable(result['data'])}` (one pass of each model; false alarms: frames without a hazard "
        "where the top slot is published)."
    )
    return note + "\n\n" + table(header, rows, numeric_from=1)


@dataclass(frozen=True)
class Section:
    """A generated README section: the committed result file and how to render it."""

    source: str  # path from the repository root
    render: Callable[[Mapping[str, Any], str], str]


SECTIONS: dict[str, Section] = {
    "direction_physics": Section("docs/results/direction_physics.json", render_direction),
    "direction_shipped": Section("docs/results/direction_shipped.json", render_direction),
    "direction_shipped_full": Section("docs/results/direction_shipped_full.json", render_direction),
    "study": Section("docs/results/study.json", render_study),
    "study_correction": Section("docs/results/study_correction.json", render_study),
    "study_widening": Section("docs/results/study_widening.json", render_study),
    "study_directions": Section("docs/results/study_directions.json", render_study),
    "scenarios": Section("docs/results/scenarios.json", render_scenarios),
    "shipped": Section("avi_ros/models/shipped/metrics/test_split.json", render_test_split),
    "candidate": Section("docs/results/candidate_test_split.json", render_test_split),
    "direction_candidate": Section("docs/results/direction_candidate.json", render_direction),
    "operating_points_val": Section("docs/results/operating_points_val.json", render_operating_points),
    "operating_points_test": Section("docs/results/operating_points_test.json", render_operating_points),
}


# --- the README ----------------------------------------------------------------------------------


def generated_body(name: str, root: Path = REPO_ROOT) -> str:
    """The text between the markers of section ``name``, from its result file."""
    section = SECTIONS[name]
    path = root / section.source
    if not path.is_file():
        raise ResultsError(f"README section '{name}' needs {section.source}, which is missing")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        text = section.render(result, section.source)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, StopIteration) as exc:
        raise ResultsError(f"cannot render {section.source} ({type(exc).__name__}: {exc})") from exc
    note = f"<!-- generated by scripts/results_tables.py from {section.source}; do not edit by hand -->"
    return f"{note}\n\n{text}\n\n"


def regenerate(readme: str, root: Path = REPO_ROOT) -> tuple[str, list[str]]:
    """``readme`` with every results section regenerated, and the names of the sections that changed."""
    opened = OPENING_PATTERN.findall(readme)
    closed = [match.group("name") for match in SECTION_PATTERN.finditer(readme)]
    if opened != closed:
        unclosed = next(name for name in opened if opened.count(name) != closed.count(name))
        raise ResultsError(f"README section '{unclosed}' has no closing {END_MARKER}")
    for name in opened:
        if name not in SECTIONS:
            raise ResultsError(
                f"README marker 'results:{name}' is not a section of scripts/results_tables.py"
            )
        if opened.count(name) > 1:
            raise ResultsError(f"README section '{name}' appears {opened.count(name)} times")
    for name, section in SECTIONS.items():
        if name not in opened and (root / section.source).is_file():
            raise ResultsError(
                f"{section.source} is not shown in the README: add <!-- results:{name} --> {END_MARKER} "
                "where it belongs and run python scripts/results_tables.py"
            )
    changed: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        body = generated_body(name, root)
        if body != match.group("body"):
            changed.append(name)
        return f"<!-- results:{name} -->\n{body}{END_MARKER}"

    return SECTION_PATTERN.sub(replace, readme), changed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python scripts/results_tables.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the README differs")
    parser.add_argument("--readme", type=Path, default=README, help="the README to regenerate")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        text = args.readme.read_text(encoding="utf-8")
        new_text, changed = regenerate(text)
    except (OSError, ResultsError) as exc:
        print(f"results_tables.py: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for name in changed:
            print(
                f"{args.readme}: section '{name}' differs from {SECTIONS[name].source}; "
                "run python scripts/results_tables.py (never edit it by hand)",
                file=sys.stderr,
            )
        return 1 if changed else 0
    if new_text != text:
        args.readme.write_text(new_text, encoding="utf-8")
    print(
        f"{args.readme}: {len(changed)} section(s) regenerated"
        + (f" ({', '.join(changed)})" if changed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
