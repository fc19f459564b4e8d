"""training/scenario_eval.py: each hazard of a scenario gets the detection rate the replay report
measured for it, and the target is checked per hazard."""

from __future__ import annotations

import json
from pathlib import Path

from avi_ros.taxonomy import default_taxonomy
from training import scenario_eval


def test_scenario_eval_reports_each_hazard_as_the_replay_report_measured_it(
    tmp_path: Path, tiny_checkpoint
) -> None:
    model = tiny_checkpoint(default_taxonomy(), 0.5, {0: -50.0}, confidence_bias=50.0)  # always answers
    out = tmp_path / "scenarios.json"
    args = ["--model", str(model), "--scenarios", "corridor", "--duration", "2", "--work", str(tmp_path)]
    assert scenario_eval.main([*args, "--out", str(out)]) == 0
    corridor = json.loads(out.read_text())["scenarios"]["corridor"]
    report = json.loads((tmp_path / "corridor_seed0_2s_replay" / "metrics.json").read_text())
    assert set(corridor["hazards"]) == set(report["hazards_by_class"]) and corridor["hazards"]
    for name, row in corridor["hazards"].items():
        assert row["detected_%"] == report["hazards_by_class"][name]["detected_%"]
        assert row["meets_target"] == (row["detected_%"] >= scenario_eval.DETECTION_TARGET_PCT)
        # the bag carries truth, so the replay found each frame's physics directions
        physics = report["hazards_by_class"][name]["physics_median_angular_error_deg"]
        assert physics is not None and row["physics_median_angular_error_deg"] == physics
    assert corridor["every_hazard_meets_target"] == all(
        r["meets_target"] for r in corridor["hazards"].values()
    )
    # A second call reuses the rendered bag.
    stamp = (tmp_path / "corridor_seed0_2s" / "metadata.yaml").stat().st_mtime_ns
    assert scenario_eval.main([*args, "--out", str(out)]) == 0
    assert (tmp_path / "corridor_seed0_2s" / "metadata.yaml").stat().st_mtime_ns == stamp


def test_a_cached_bag_that_cannot_be_read_is_named_in_one_line(
    tmp_path: Path, tiny_checkpoint, capsys
) -> None:
    model = tiny_checkpoint(default_taxonomy(), 0.5)
    args = ["--model", str(model), "--scenarios", "corridor", "--duration", "1", "--work", str(tmp_path)]
    assert scenario_eval.main([*args, "--out", str(tmp_path / "o.json")]) == 0
    capsys.readouterr()
    for data in (tmp_path / "corridor_seed0_1s").glob("*.mcap"):  # as a bag of another version would be
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    assert scenario_eval.main([*args, "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"remove {tmp_path}" in err


def test_scenario_eval_refuses_a_missing_model_in_one_line(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "none"
    assert scenario_eval.main(["--model", str(missing), "--out", str(tmp_path / "o.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
