"""training/ship.py: a trained run becomes the shipped model (float16 weights, provenance, metrics
files and model card), and the shipped model resolves from anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from model_helpers import set_model
from safetensors.torch import load_file

from avi_ros import shipped_model
from avi_ros.checkpoint import load_checkpoint, save_checkpoint
from avi_ros.features import FeatureConfig
from avi_ros.taxonomy import default_taxonomy
from training import ship

SET_METRICS = {
    "set": {"f20": 0.5, "le_deg": 7.0},
    "visibility_visible": {"f20": 0.6},
    "visibility_occluded": {"f20": 0.4},
    "visibility_out_of_view": {"f20": 0.45},
    "single_hazard": {"accuracy": 0.7},
    "direction": {
        sector: {"frames": 10, "model_azimuth_error_median_deg": 3.0, "physics_azimuth_error_median_deg": 9.0}
        for sector in ("all", "front", "left", "right", "behind")
    },
}


def _run(tmp_path: Path, name: str = "full_s1", started_from: str | None = None) -> Path:
    """A finished run directory around a tiny hazard-set checkpoint, resumed once (two log segments);
    ``started_from``: its config's ``pretrained.model_checkpoint``."""
    run = tmp_path / name
    model = set_model(class_bias={3: 2.0})
    save_checkpoint(run / "checkpoints" / "best", model, FeatureConfig(), default_taxonomy())
    config = {
        "seed": 1,
        "git_commit": "abc",
        "data": {"train": {"scenes": 20, "seed": 21}, "val": {"scenes": 8}},
        "stages": [{"name": "heads", "seld_trainable_fraction": 1.0, "lr": {"audio_encoder": 3.0e-4}}],
        "pretrained": {"model_checkpoint": started_from},
    }
    (run / "config_resolved.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (run / "export").mkdir()
    (run / "export" / "metrics.json").write_text(json.dumps(SET_METRICS), encoding="utf-8")
    (run / "metrics").mkdir()
    steps = [10.0, 30.0, 5.0, 12.0]  # 30 s, then a resume that ran 12 s
    (run / "metrics" / "train.jsonl").write_text(
        "".join(json.dumps({"step": i, "elapsed_s": e}) + "\n" for i, e in enumerate(steps)), encoding="utf-8"
    )
    study = {
        "test": {"scenes": 12, "sounds": "real test recordings"},
        "runs": {"full": [{"seed": 0, "metrics": {}}, {"seed": 1, "metrics": SET_METRICS}]},
    }
    (tmp_path / "study.json").write_text(json.dumps(study), encoding="utf-8")
    return run


def test_ship_writes_half_precision_weights_that_load_and_answer_like_the_original(tmp_path: Path) -> None:
    run = _run(tmp_path)
    out = tmp_path / "shipped"
    args = ["--checkpoint", str(run / "checkpoints" / "best"), "--study", str(tmp_path / "study.json")]
    assert ship.main([*args, "--out", str(out), "--machine", "test machine"]) == 0

    weights = load_file(str(out / "model.safetensors"))
    assert weights["head.class_logits.weight"].dtype == torch.float16
    assert weights["feature_norm.mean"].dtype == torch.float32  # compared exactly on load
    half, metadata = load_checkpoint(out)
    full, _ = load_checkpoint(run / "checkpoints" / "best")
    assert next(half.parameters()).dtype == torch.float32
    inputs = ship._probe_inputs(full, metadata)
    with torch.inference_mode():
        assert torch.allclose(half(*inputs).direction, full(*inputs).direction, atol=1e-2)

    provenance = metadata.extra["shipped"]
    assert provenance["seed"] == 1 and provenance["hazard_slots"] == 3
    assert provenance["wall_time_s"] == pytest.approx(42.0)
    assert provenance["machine"] == "test machine"
    assert json.loads((out / "metrics" / "test_split.json").read_text())["seed"] == 1
    card = (out / "MODEL_CARD.md").read_text()
    assert "| 50.0 | 60.0 | 40.0 | 45.0 | 7.0 | 70.0 |" in card
    assert "| behind | 10 | 3.0 | 9.0 |" in card
    assert "100% of it fine-tuned with the set loss in stage `heads` (lr 0.0003)" in card
    assert "Calibration: none stored" in card


def test_the_card_of_a_run_started_from_a_checkpoint_names_it_and_its_last_stage(tmp_path: Path) -> None:
    run = _run(tmp_path, started_from="runs/earlier/checkpoints/best")
    out = tmp_path / "shipped"
    args = ["--checkpoint", str(run / "checkpoints" / "best"), "--study", str(tmp_path / "study.json")]
    assert ship.main([*args, "--out", str(out)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert "- **Started from**: `runs/earlier/checkpoints/best` (`pretrained.model_checkpoint`" in card
    assert "0.7 min of this last stage" in card
    assert "SELD encoder" not in card


def test_ship_refuses_a_run_the_study_does_not_hold_and_too_big_weights(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    run = _run(tmp_path, name="full_s7")
    args = ["--checkpoint", str(run / "checkpoints" / "best"), "--out", str(tmp_path / "out")]
    assert ship.main([*args, "--study", str(tmp_path / "study.json")]) == 2
    assert "no run named full_s7" in capsys.readouterr().err
    monkeypatch.setattr(ship, "MAX_SHIPPED_BYTES", 1000)
    assert ship.main(args) == 2
    assert "over 0 MB" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_resolve_model_path_falls_back_to_the_shipped_model_from_any_directory(
    tmp_path: Path, monkeypatch
) -> None:
    run = _run(tmp_path)
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", run / "checkpoints" / "best")
    monkeypatch.chdir(tmp_path / "full_s1" / "metrics")
    assert shipped_model.resolve_model_path(None) == run / "checkpoints" / "best"
    assert shipped_model.resolve_model_path("  ") == run / "checkpoints" / "best"
    assert shipped_model.resolve_model_path(str(run)) == run
    with pytest.raises(FileNotFoundError, match="not a directory"):
        shipped_model.resolve_model_path(tmp_path / "missing")
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="shipped model is missing"):
        shipped_model.resolve_model_path(None)


def test_ship_takes_the_test_split_from_an_evaluation_of_this_checkpoint(tmp_path: Path, capsys) -> None:
    run = _run(tmp_path)
    split = tmp_path / "scenes-seed23-n12"
    split.mkdir()
    index = {"count": 12, "seed": 23, "config": {"sound_dir": str(Path.home() / "bank" / "test")}}
    (split / "index.json").write_text(json.dumps(index), encoding="utf-8")
    (tmp_path / "eval.json").write_text(json.dumps({"best": SET_METRICS}), encoding="utf-8")
    args = ["--checkpoint", str(run / "checkpoints" / "best"), "--out", str(tmp_path / "out")]
    assert ship.main([*args, "--test-metrics", str(tmp_path / "eval.json")]) == 2
    assert "needs --test-data" in capsys.readouterr().err
    assert ship.main([*args, "--test-metrics", str(tmp_path / "eval.json"), "--test-data", str(split)]) == 0
    test = json.loads((tmp_path / "out" / "metrics" / "test_split.json").read_text())
    assert test["test"] == {"scenes": 12, "seed": 23, "sounds": "real test recordings of ~/bank/test"}
    assert test["seed"] == 1 and test["metrics"] == SET_METRICS
    card = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    assert "| behind | 10 | 3.0 | 9.0 |" in card
    assert "directions from `learned`." in card  # a learned direction has no mode to read
    assert "nearest mode of each slot's bins (3 mean-shift steps" in ship._direction_reading("intensity")


def test_ship_takes_the_validation_metrics_of_an_evaluation_when_given(tmp_path: Path, capsys) -> None:
    run = _run(tmp_path)
    args = ["--checkpoint", str(run / "checkpoints" / "best"), "--study", str(tmp_path / "study.json")]
    reread = {**SET_METRICS, "set": {"f20": 0.55, "le_deg": 6.0}}
    (tmp_path / "val.json").write_text(json.dumps({"best": reread}), encoding="utf-8")
    assert (
        ship.main([*args, "--out", str(tmp_path / "out"), "--val-metrics", str(tmp_path / "val.json")]) == 0
    )
    assert json.loads((tmp_path / "out" / "metrics" / "validation.json").read_text()) == reread
    assert "| 55.0 | 60.0 | 40.0 | 45.0 | 6.0 | 70.0 |" in (tmp_path / "out" / "MODEL_CARD.md").read_text()
    (tmp_path / "two.json").write_text(json.dumps({"a": reread, "b": reread}), encoding="utf-8")
    assert (
        ship.main([*args, "--out", str(tmp_path / "out2"), "--val-metrics", str(tmp_path / "two.json")]) == 2
    )
    assert "expected the metrics of one model, found 2" in capsys.readouterr().err
