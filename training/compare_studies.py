"""Put several studies on the same held-out split side by side, in one result file.

    python training/compare_studies.py --study "intensity directions=runs/study_intensity/study.json" \\
        --study "learned directions=runs/study_learned/study.json" --out docs/results/study.json

Each study (``training/study.py``, one config override per study, e.g.
``model.direction=learned``) keeps its runs and its mean ± std per variant; a variant is renamed
``<variant>, <label>``. The studies must share their held-out split (same scenes, same test
seed): comparing models on different test scenes is refused. The output has the study's schema
(``test``, ``seeds``, ``runs``, ``summary``, ``weight_by_occlusion``), so the README renders it as
it renders one study (``scripts/results_tables.py``). Exit 0, or 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.tables import portable_path


def _labelled(argument: str) -> tuple[str, Path]:
    label, separator, path = argument.partition("=")
    if not separator or not label.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected LABEL=STUDY.json, got '{argument}'")
    return label.strip(), Path(path.strip())


def combine(studies: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One study dict from labelled ones; ValueError when their held-out splits differ."""
    first_label, first = studies[0]
    held_out = {key: first["test"][key] for key in ("scenes", "seed", "sounds")}
    test = {key: value for key, value in first["test"].items() if key != "directory"}  # a machine path
    test["sounds"] = portable_path(test["sounds"])
    combined: dict[str, Any] = {"test": test, "seeds": [], "runs": {}, "summary": {}}
    combined["weight_by_occlusion"] = {}
    for label, study in studies:
        other = {key: study["test"][key] for key in held_out}
        if other != held_out:
            raise ValueError(
                f"'{label}' was tested on {other}, '{first_label}' on {held_out}: not comparable"
            )
        combined["seeds"] = sorted(set(combined["seeds"]) | set(study["seeds"]))
        for part in ("runs", "summary", "weight_by_occlusion"):
            for variant, value in (study.get(part) or {}).items():
                combined[part][f"{variant}, {label}"] = value
    return combined


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python training/compare_studies.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--study", type=_labelled, action="append", required=True, help="LABEL=STUDY.json")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        studies = [(label, json.loads(path.read_text(encoding="utf-8"))) for label, path in args.study]
        combined = combine(studies)
    except (OSError, ValueError, KeyError) as exc:
        print(f"compare_studies: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(combined, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({', '.join(combined['summary'])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
