"""The demo's decision-stage summary: counts per camera frame and a report section added once."""

from __future__ import annotations

import importlib.util
import json

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    "demo_assessments", REPO_ROOT / "scripts" / "demo_assessments.py"
)
demo_assessments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_assessments)


def _record(stamp_s: float, risk: str, action: str) -> dict:
    return {
        "stamp_ns": int(stamp_s * 1e9),
        "risk": risk,
        "reason": "obstacle",
        "action": action,
        "confidence": 0.8,
        "hazard_indices": [0],
        "telemetry_missing": True,
    }


def test_summary_and_report_section(tmp_path, monkeypatch):
    assessments = [
        _record(0.0, "none", "continue"),
        _record(0.1, "high", "stop"),
        _record(0.2, "high", "stop"),
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(a) for a in assessments) + "\n")
    (tmp_path / "live.jsonl").write_text('{"stamp_ns": 0, "hazards": []}\n' * 3)
    (tmp_path / "bag").mkdir()
    (tmp_path / "index.html").write_text("<html><body><h1>report</h1></body></html>")
    monkeypatch.setattr(demo_assessments, "camera_frames", lambda bag: 4)
    args = [str(tmp_path / "a.jsonl"), str(tmp_path / "live.jsonl"), str(tmp_path / "bag"), str(tmp_path)]
    assert demo_assessments.main(args) == 0
    summary = (tmp_path / "assessments.md").read_text()
    assert "3 assessments for 4 camera frames (75%" in summary
    assert "high 2" in summary and "stop 2" in summary and "continue 1" in summary
    assert (tmp_path / "assessments.png").stat().st_size > 0
    assert demo_assessments.main(args) == 0  # a second run replaces the section
    html = (tmp_path / "index.html").read_text()
    assert html.count("Decision stage (live node)") == 1 and html.endswith("</body></html>")


def test_missing_input_is_one_line_and_exit_1(tmp_path, capsys):
    args = [str(tmp_path / "none.jsonl"), str(tmp_path / "live.jsonl"), str(tmp_path), str(tmp_path)]
    assert demo_assessments.main(args) == 1
    assert "does not exist" in capsys.readouterr().err
