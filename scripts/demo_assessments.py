"""Demo step 6: the decision stage's live assessments, as a table, a timeline and a report section.

    python scripts/demo_assessments.py ASSESSMENTS.jsonl LIVE_HAZARDS.jsonl BAG OUT_DIR

Reads what ``avi-ros echo --kind assessments`` recorded from the live node, counts the camera
frames of the bag, and writes ``OUT_DIR/assessments.md`` and ``OUT_DIR/assessments.png``
(risk and recommended action over the bag's time), then adds a "Decision stage" section to
``OUT_DIR/index.html`` (replaced, not duplicated, on a second run). Prints the summary lines.
Exit status 1 with one line when an input is missing.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from avi_ros.bag.io import read_bag
from avi_ros.decision.labels import ACTION_NAMES, RISK_NAMES
from avi_ros.units import NS_PER_S

SECTION_START = "<!-- decision-stage -->"
SECTION_END = "<!-- /decision-stage -->"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def camera_frames(bag: Path) -> int:
    """Number of RGB images in the bag: the rate the node is asked to answer at."""
    return sum(1 for _ in read_bag(bag, topics=["/rgb/image_raw"]))


def summary_lines(assessments: list[dict], live_frames: int, frames: int) -> list[str]:
    actions = Counter(a["action"] for a in assessments)
    risks = Counter(a["risk"] for a in assessments)
    missing = sum(a["telemetry_missing"] for a in assessments)
    return [
        f"decision stage: {len(assessments)} assessments for {frames} camera frames "
        f"({len(assessments) / max(frames, 1):.0%}; the node answered {live_frames} frames with hazards)",
        "risk: " + ", ".join(f"{name} {risks[name]}" for name in RISK_NAMES),
        "action: " + ", ".join(f"{name} {actions[name]}" for name in ACTION_NAMES),
        f"telemetry missing in {missing} of {len(assessments)} "
        "(the decision stage reads the scenario bag's IMU and odometry)",
    ]


def plot_timeline(assessments: list[dict], path: Path) -> None:
    start = min(a["stamp_ns"] for a in assessments)
    t = [(a["stamp_ns"] - start) / NS_PER_S for a in assessments]
    fig, (risk_ax, action_ax) = plt.subplots(2, 1, figsize=(9, 4), sharex=True)
    risk_ax.step(t, [RISK_NAMES.index(a["risk"]) for a in assessments], where="post")
    risk_ax.set_yticks(range(len(RISK_NAMES)), RISK_NAMES)
    risk_ax.set_ylabel("risk")
    action_ax.plot(t, [ACTION_NAMES.index(a["action"]) for a in assessments], ".", markersize=4)
    action_ax.set_yticks(range(len(ACTION_NAMES)), ACTION_NAMES)
    action_ax.set_ylabel("action")
    action_ax.set_xlabel("time in the bag [s]")
    fig.suptitle("Decision stage, live node: risk and recommended action per camera frame")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_report_section(index: Path, lines: list[str], image_name: str) -> None:
    items = "".join(f"<li>{line}</li>" for line in lines)
    section = (
        f"{SECTION_START}<h2>Decision stage (live node)</h2><ul>{items}</ul>"
        f'<img src="{image_name}" alt="risk and action over time">{SECTION_END}'
    )
    html = index.read_text(encoding="utf-8")
    html = re.sub(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END), "", html, flags=re.S)
    html = html.replace("</body>", section + "</body>") if "</body>" in html else html + section
    index.write_text(html, encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    assessments_path, live_path, bag, out = (Path(a) for a in argv)
    for path in (assessments_path, live_path, bag):
        if not path.exists():
            print(f"demo_assessments: {path} does not exist", file=sys.stderr)
            return 1
    assessments = read_jsonl(assessments_path)
    if not assessments:
        print("decision stage: the live node published no assessment", file=sys.stderr)
        return 1
    lines = summary_lines(assessments, len(read_jsonl(live_path)), camera_frames(bag))
    (out / "assessments.md").write_text("\n".join(f"- {line}" for line in lines) + "\n", encoding="utf-8")
    plot_timeline(assessments, out / "assessments.png")
    if (out / "index.html").is_file():
        add_report_section(out / "index.html", lines, "assessments.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
