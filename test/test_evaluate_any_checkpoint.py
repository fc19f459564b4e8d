"""One evaluation entry for any checkpoint: a hazard-set checkpoint through training/evaluate.py (synthetic
shards and real recordings), through training/calibrate.py (stored, loaded back, applied by the pipeline),
and the one-line errors for checkpoints that evaluation cannot take."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from fake_bank import make_bank
from model_helpers import tiny_model
from scipy.special import expit, logit

from avi_ros.checkpoint import METADATA_FILE, load_checkpoint, read_checkpoint_metadata, save_checkpoint
from avi_ros.data.scene import generate_scene
from avi_ros.features import FeatureConfig
from avi_ros.models.seld_encoder import SeldEncoderConfig
from avi_ros.pipeline import Pipeline
from avi_ros.taxonomy import default_taxonomy
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD, Frame
from training.calibrate import main as calibrate_main
from training.calibration import Calibration, fold_into_head
from training.collect_outputs import shard_prepare_config
from training.config import load_config
from training.evaluate import AGGREGATE
from training.evaluate import main as evaluate_main
from training.hazard_set_task import set_prepare_config
from training.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
SET_TINY = REPO / "training" / "configs" / "hazard_set_tiny.yaml"
TAXONOMY = default_taxonomy()
ENGINE = TAXONOMY.class_id("vehicle_engine")  # a class the fake bank records
SMALL_AUDIO = SeldEncoderConfig(n_filters=8, rnn_size=16, attn_heads=2)


def set_checkpoint(
    directory: Path, class_bias: dict[int, float], confidence_bias: float | None = None
) -> Path:
    """A tiny untrained K = 3 hazard-set checkpoint whose slots answer as the biases say."""
    model = tiny_model(
        TAXONOMY.num_classes, class_bias, confidence_bias, hazard_slots=3, view_grid=4, audio=SMALL_AUDIO
    )
    return save_checkpoint(directory, model, FeatureConfig(window_seconds=0.5), TAXONOMY)


def set_scene_config(path: Path, none_probability: float) -> Path:
    """hazard_set_tiny.yaml (several hazards per scene) with this share of hazard-free scenes."""
    data = yaml.safe_load(SET_TINY.read_text())
    data["data"]["scene"] = {**data["data"]["scene"], "none_probability": none_probability}
    path.write_text(yaml.safe_dump(data))
    return path


# --- a trained set run, evaluated on its own validation split ------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("set_run")
    assert (
        train_main(
            ["--config", str(SET_TINY), f"output_dir={root / 'run'}", f"data.cache_dir={root / 'cache'}"]
        )
        == 0
    )
    val = next(d for d in (root / "cache").iterdir() if "seed32" in d.name)
    return root / "run", val


def test_evaluate_reproduces_the_runs_own_validation_metrics(trained, tmp_path):
    run, val = trained
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(run / "checkpoints" / "best"), "--data", str(val), "--out", str(out)]
    assert evaluate_main([*argv, "--device", "cpu"]) == 0
    results = json.loads((out / "metrics.json").read_text())
    assert list(results) == ["hazard_set_tiny"]
    metrics = results["hazard_set_tiny"]
    assert {"set", "visibility_visible", "visibility_occluded", "visibility_out_of_view"} <= set(metrics)
    assert {"polyphony_0", "single_hazard", "direction"} <= set(metrics)
    assert metrics["direction"]["all"]["frames"] > 0
    assert metrics["direction"]["all"]["physics_azimuth_error_median_deg"] is not None
    # The same inputs as training: the run's own validation metrics, figure for figure, from one cache.
    assert metrics == json.loads((run / "export" / "metrics.json").read_text())
    assert len(list(val.glob("prepared-*"))) == 1
    metadata = read_checkpoint_metadata(run / "checkpoints" / "best")
    assert (
        shard_prepare_config(metadata, val).fingerprint()
        == set_prepare_config(load_config(SET_TINY)).fingerprint()
    )
    text = (out / "metrics.md").read_text()
    assert "| group | frames | hazards | F20 |" in text and "| polyphony_2 |" in text
    assert "physics median az. err [deg]" in text and "| behind |" in text


def test_operating_points_trade_recall_for_false_alarms(trained, tmp_path):
    """The same outputs at several thresholds: the one at the node's threshold equals the main
    metrics, nothing passes a threshold above 1, and recall never grows with the threshold."""
    run, val = trained
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(run / "checkpoints" / "best"), "--data", str(val), "--out", str(out)]
    node = str(DEFAULT_CONFIDENCE_THRESHOLD)
    assert evaluate_main([*argv, "--device", "cpu", "--operating-points", "0", node, "1.01"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["hazard_set_tiny"]
    points = json.loads((out / "operating_points.json").read_text())["models"]["hazard_set_tiny"]
    assert [p["threshold"] for p in points] == [0.0, DEFAULT_CONFIDENCE_THRESHOLD, 1.01]
    assert points[1]["f20"] == metrics["set"]["f20"] and points[1]["recall"] == metrics["set"]["recall"]
    assert points[1]["false_alarm_rate"] == metrics["single_hazard"]["false_alarm_rate"]
    assert points[2]["recall"] == 0.0 and points[2]["false_alarm_rate"] == 0.0
    assert points[0]["recall"] >= points[1]["recall"] >= points[2]["recall"]
    assert "| threshold | F20 set |" in (out / "metrics.md").read_text()


def test_direction_mode_steps_are_refused_where_they_would_change_nothing(trained, tmp_path, capsys):
    run, val = trained
    argv = ["--checkpoint", str(run / "checkpoints" / "best"), "--data", str(val), "--out", str(tmp_path)]
    assert evaluate_main([*argv, "--device", "cpu", "--direction-mode-steps", "-1"]) == 2
    assert "--direction-mode-steps must be >= 0" in capsys.readouterr().err
    assert evaluate_main([*argv, "--device", "cpu", "--direction-mode-steps", "0"]) == 2
    err = capsys.readouterr().err
    assert "learns its directions (model.direction 'learned')" in err and err.count("\n") == 1


# --- real recordings -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bank_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("set_real")
    make_bank(root / "bank", ("val", "test"))
    return root


def test_real_evaluation_of_set_checkpoints_reports_false_alarms_and_directions(bank_root, tmp_path):
    engine = set_checkpoint(tmp_path / "engine", {0: -30.0, ENGINE: 30.0}, confidence_bias=30.0)
    silent = set_checkpoint(tmp_path / "silent", {0: 30.0}, confidence_bias=30.0)
    config = set_scene_config(tmp_path / "scenes.yaml", none_probability=0.4)
    out = tmp_path / "out"
    argv = [
        "--checkpoint", str(engine), str(silent), "--aggregate",
        "--sound-dir", str(bank_root / "bank" / "test"), "--config", str(config),
        "--scenes", "10", "--background-scenes", "4", "--seed", "9",
        "--cache-dir", str(bank_root / "cache"), "--out", str(out), "--device", "cpu",
    ]  # fmt: skip
    assert evaluate_main(argv) == 0
    results = json.loads((out / "metrics.json").read_text())
    for entry in results["conditions"].values():
        first, second, aggregate = entry["models"]
        assert aggregate == AGGREGATE
        # Every slot a confident engine: every background frame is a false alarm; every slot none: none is.
        background = entry["background"]["models"]
        assert (background[first]["false_alarm_rate"], background[second]["false_alarm_rate"]) == (1.0, 0.0)
        assert background[first]["count"] == entry["background"]["scenes"] > 0
        engine_set = entry["models"][first]
        assert engine_set["set"]["false_positives"] > 0 and engine_set["set"]["per_class_f20"]["siren"] in (
            0.0,
            None,
        )
        assert entry["models"][second]["set"]["true_positives"] == 0
        assert entry["models"][second]["set"]["false_negatives"] == entry["models"][second]["set"]["hazards"]
        assert "direction" in engine_set and "single_hazard" in engine_set
        assert entry["models"][AGGREGATE]["set"]["hazards"]["n"] == 2
    text = (out / "metrics.md").read_text()
    assert "| condition | scenes | F20 | LE [deg] | RDE | single-hazard accuracy |" in text
    assert "| siren | 2 |" in text and "physics median az. err" in text


# --- calibration ---------------------------------------------------------------------------------


def test_calibrate_fits_one_shared_calibration_that_the_pipeline_applies(bank_root, tmp_path, capsys):
    # Every slot an engine: a slot matched to an engine is right, one matched to another class is
    # wrong, an unmatched one is not a hazard: Platt scaling sees both outcomes.
    checkpoint = set_checkpoint(tmp_path / "ckpt", {0: -5.0, ENGINE: 5.0})
    raw = shutil.copytree(checkpoint, tmp_path / "raw")
    config = set_scene_config(tmp_path / "scenes.yaml", none_probability=0.2)
    argv = [
        "--checkpoint", str(checkpoint), "--sound-dir", str(bank_root / "bank" / "val"),
        "--config", str(config),
        "--scenes", "12", "--seed", "5", "--cache-dir", str(bank_root / "cache"), "--device", "cpu",
    ]  # fmt: skip
    assert calibrate_main(argv) == 0
    out = capsys.readouterr().out
    assert "| ECE |" in out and "rewrote" in out
    stored = read_checkpoint_metadata(checkpoint).extra["calibration"]
    assert set(stored) == {"temperature", "scale", "offset", "fitted_on"}
    assert "K = 3 slots share it" in stored["fitted_on"]
    assert "matched slots" in stored["fitted_on"]
    assert stored["scale"] != 1.0 and stored["offset"] != 0.0  # Platt scaling was fitted

    # Loaded back: the raw head with the stored calibration folded in, the rest untouched.
    raw_model, _ = load_checkpoint(raw)
    model, _ = load_checkpoint(checkpoint)
    expected = raw_model.head
    fold_into_head(expected, Calibration(**stored))
    for name, value in model.head.state_dict().items():
        torch.testing.assert_close(value, expected.state_dict()[name])

    # The pipeline publishes every slot (never none) with confidence sigmoid(scale * z + offset).
    scene = generate_scene(5, load_config(SET_TINY).data.scene_config())
    frame = Frame(scene.rgb, scene.depth_m, scene.intrinsics, scene.audio, sample_rate=scene.sample_rate)
    before = Pipeline.from_checkpoint(raw, device="cpu", confidence_threshold=0.0).run(frame).hazards
    after = Pipeline.from_checkpoint(checkpoint, device="cpu", confidence_threshold=0.0).run(frame).hazards
    assert len(before) == len(after) == 3
    raw_logit = logit(np.array([h.confidence for h in before], dtype=np.float64))
    wanted = expit(stored["scale"] * raw_logit + stored["offset"])
    np.testing.assert_allclose(sorted(h.confidence for h in after), sorted(wanted), rtol=1e-4, atol=1e-5)
    assert not np.allclose(sorted(wanted), sorted(h.confidence for h in before), atol=1e-3)


# --- checkpoints evaluation cannot take ----------------------------------------------------------


def _one_line_error(argv: list[str], capsys) -> str:
    assert evaluate_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("evaluate.py: error:") and len(err.strip().splitlines()) == 1
    return err


def test_unsupported_checkpoints_end_with_one_line_naming_what_to_do(tmp_path, capsys):
    data = ["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--device", "cpu"]
    both = set_checkpoint(tmp_path / "set", {})
    retired = shutil.copytree(both, tmp_path / "retired")
    metadata = json.loads((retired / METADATA_FILE).read_text())
    (retired / METADATA_FILE).write_text(json.dumps({**metadata, "model_config": {"hazard_slots": 0}}))
    err = _one_line_error(["--checkpoint", str(retired), *data], capsys)
    assert "retired single-hazard model" in err and "training/configs/hazard_set.yaml" in err

    seld = tmp_path / "seld"
    seld.mkdir()
    (seld / METADATA_FILE).write_text(json.dumps({"format": "avi_ros.seld_encoder", "version": 1}))
    err = _one_line_error(["--checkpoint", str(seld), *data], capsys)
    assert "SELD encoder checkpoint" in err and "pretrained.seld_checkpoint" in err

    old = shutil.copytree(both, tmp_path / "old")
    metadata = json.loads((old / METADATA_FILE).read_text())
    (old / METADATA_FILE).write_text(json.dumps({**metadata, "version": 0, "package_version": "0.1.0"}))
    err = _one_line_error(["--checkpoint", str(old), *data], capsys)
    assert "format version 0 (avi_ros 0.1.0)" in err and "retrain it with" in err

    layout = shutil.copytree(both, tmp_path / "layout")
    metadata["model_config"]["direction"] = "intensity"  # an older layout: the weights lack its parts
    (layout / METADATA_FILE).write_text(json.dumps(metadata))
    assert calibrate_main(["--checkpoint", str(layout), "--sound-dir", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("calibrate.py: error:") and len(err.strip().splitlines()) == 1
    assert "weights lack" in err and "written by avi_ros" in err and "retrain it with" in err
