"""training/demo_comparison.py: issue 20's verdicts come from the evaluation files, and bad input
is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import demo_comparison


def set_metrics(accuracy: float, azimuth: float, f20: float) -> dict:
    single = {"frames": 384, "accuracy": accuracy, "located_frames": 200, "azimuth_error_median_deg": azimuth}
    direction = {
        sector: {
            "frames": 10,
            "model_azimuth_error_median_deg": azimuth,
            "physics_azimuth_error_median_deg": 30.0,
        }
        for sector in ("all", "front", "left", "right", "behind")
    }
    return {"single_hazard": single, "set": {"f20": f20}, "direction": direction}


def write_inputs(folder: Path, one_model_accuracy: float) -> None:
    retired = {
        f"demo_s{seed}": {
            "one_hazard_frames": {
                "frames": 384,
                "accuracy": 0.40 + 0.01 * seed,
                "located_frames": 180,
                "azimuth_error_median_deg": 14.0,
            }
        }
        for seed in range(3)
    }
    old_set = {f"set_s{seed}": set_metrics(0.35, 9.0, 0.08 + 0.02 * seed) for seed in range(3)}
    one_model = {f"demo_s{seed}": set_metrics(one_model_accuracy, 8.0, 0.20) for seed in range(3)}
    one_model["mean ± std"] = {"not": "a run"}
    demo_now = {"demo_s0": set_metrics(0.30, 12.0, 0.05)}  # one seed
    provenance = {
        "test": "600 scenes",
        "seeds": [0, 1, 2],
        "notes": "how it was made",
        "references": {
            "retired_eval.json": {
                "label": "retired demo",
                "measures": ["accuracy_pct", "azimuth_error_median_deg"],
            },
            "old_set_eval.json": {"label": "retired set", "measures": ["set_f20_pct"]},
        },
        "candidates": {"one_model_eval.json": "K3 budget", "demo_now_eval.json": "K3 demo"},
    }
    for name, data in (
        ("retired_eval.json", retired),
        ("old_set_eval.json", old_set),
        ("one_model_eval.json", one_model),
        ("demo_now_eval.json", demo_now),
        ("provenance.json", provenance),
    ):
        (folder / name).write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(("one_model_accuracy", "accuracy_verdict"), [(0.45, True), (0.35, False)])
def test_verdicts_follow_the_means_of_the_seeds(
    tmp_path: Path, one_model_accuracy: float, accuracy_verdict: bool
):
    write_inputs(tmp_path, one_model_accuracy)
    assert demo_comparison.main(["--inputs", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "comparison.json").read_text(encoding="utf-8"))
    retired = result["summary"]["retired_eval.json"]["accuracy_pct"]
    assert (
        retired["mean"] == pytest.approx(41.0) and retired["std"] == pytest.approx(1.0) and retired["n"] == 3
    )
    assert set(result["seeds_figures"]["one_model_eval.json"]) == {"demo_s0", "demo_s1", "demo_s2"}
    verdicts = {(v["model"], v["measure"]): v for v in result["verdicts"]}
    assert verdicts[("one_model_eval.json", "accuracy_pct")]["at_least_as_good"] is accuracy_verdict
    assert verdicts[("one_model_eval.json", "azimuth_error_median_deg")]["at_least_as_good"] is True  # 8 < 14
    # each reference on its own measures: set F20 against the retired set model (20 % > 10 %) only
    set_verdict = verdicts[("one_model_eval.json", "set_f20_pct")]
    assert set_verdict["reference"] == "old_set_eval.json" and set_verdict["retired"] == pytest.approx(10.0)
    assert set_verdict["at_least_as_good"] is True
    assert verdicts[("demo_now_eval.json", "set_f20_pct")]["at_least_as_good"] is False  # 5 % < 10 %
    assert len(result["verdicts"]) == 6  # 2 candidates x (2 + 1) measures, none against the wrong model
    assert verdicts[("demo_now_eval.json", "accuracy_pct")]["at_least_as_good"] is False  # 30 % < 41 %
    assert verdicts[("demo_now_eval.json", "accuracy_pct")]["seeds"] == 1
    assert result["summary"]["demo_now_eval.json"]["accuracy_pct"]["n"] == 1
    assert "retired_eval.json" not in result["directions"]  # the one-slot model has no sectors
    text = (tmp_path / "out" / "comparison.md").read_text(encoding="utf-8")
    assert "(1 seed) against 41.0 (retired demo): **no**" in text
    assert "| K3 demo | 30.0 | 12.0 | 5.0 | 200.0 |" in text  # one seed: a mean and no spread
    assert "| retired demo | 41.0 ± 1.0 | 14.0 ± 0.0 | — |" in text
    assert "| retired set | 35.0 ± 0.0 | 9.0 ± 0.0 | 10.0 ± 2.0 |" in text
    assert "| K3 demo | demo_s0 | behind | 10 | 12.0 | 30.0 |" in text  # the model beside physics, by sector
    assert f"(3 seeds) against 41.0 (retired demo): {'yes' if accuracy_verdict else '**no**'}" in text


def test_a_missing_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write_inputs(tmp_path, 0.45)
    (tmp_path / "retired_eval.json").unlink()
    assert demo_comparison.main(["--inputs", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo_comparison:") and "retired_eval.json" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing half written


def test_provenance_without_roles_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write_inputs(tmp_path, 0.45)
    (tmp_path / "provenance.json").write_text(json.dumps({"test": "600 scenes"}), encoding="utf-8")
    assert demo_comparison.main(["--inputs", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo_comparison:") and "references" in err and err.count("\n") == 1
