"""A tiny run of the three-slot model end to end: train.py, its metrics, plots, calibration and
checkpoint, the pipeline on the trained checkpoint, the study CLI over two variants (stopped and
continued), and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avi_ros.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from avi_ros.data.scene import generate_scene
from avi_ros.models.builder import build_model
from avi_ros.models.hazard_set import HazardSetModel
from avi_ros.pipeline import Pipeline
from avi_ros.types import Frame
from training.config import load_config
from training.distributed import DistInfo
from training.hazard_set_task import HazardSetTask
from training.run_status import run_status
from training.study import main as study_main
from training.train import main as train_main
from training.typed_config import ConfigError

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "hazard_set_tiny.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hazard_set")
    out = root / "run"
    argv = ["--config", str(TINY), f"output_dir={out}", f"data.cache_dir={root / 'cache'}"]
    assert train_main([*argv, "calibration.enabled=true"]) == 0
    return out


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_tiny_run_logs_set_losses_and_frame_wise_metrics(run: Path):
    train = _jsonl(run / "metrics" / "train.jsonl")
    assert {"loss", "class", "direction", "distance", "steering", "matched"} <= set(train[0])
    assert all(np.isfinite(r["loss"]) for r in train)
    val = _jsonl(run / "metrics" / "val.jsonl")
    assert [r["epoch"] for r in val] == [1, 2]
    assert all(0.0 <= r["set/f20"] <= 1.0 for r in val)
    metrics = json.loads((run / "export" / "metrics.json").read_text())
    assert {"set", "single_hazard"} <= set(metrics)
    assert any(name.startswith("polyphony_") for name in metrics)
    for plot in ("confusion_matrix", "reliability_diagram", "weight_vs_occlusion"):
        assert (run / "plots" / f"{plot}.png").stat().st_size > 0


def test_finalize_calibrates_best_on_the_validation_split_once(run: Path):
    calibration = read_checkpoint_metadata(run / "checkpoints" / "best").extra["calibration"]
    assert calibration["fitted_on"] == "the synthetic validation split"
    assert calibration["temperature"] != 1.0  # fitted on the matched slots' class logits
    card = (run / "export" / "model_card.md").read_text()
    assert f"Temperature {calibration['temperature']:.3f} on the class logits" in card
    assert "| single hazard |" in card and "| set |" in card  # the card's metrics are the set metrics


def test_the_pipeline_reports_a_set_models_hazards(run: Path):
    model, metadata = load_checkpoint(run / "checkpoints" / "best", "cpu")
    assert isinstance(model, HazardSetModel) and metadata.model_config.hazard_slots == 3
    pipeline = Pipeline.from_checkpoint(run / "checkpoints" / "best", device="cpu", confidence_threshold=0.0)
    config = load_config(TINY)
    scene = generate_scene(5, config.data.scene_config())
    frame = Frame(scene.rgb, scene.depth_m, scene.intrinsics, scene.audio, sample_rate=scene.sample_rate)
    head = pipeline.model.head
    with torch.no_grad():
        # Every slot a hazard (never class none) with confidence ~1: each slot is published once.
        head.class_logits.bias[0] = -50.0
        head.confidence.bias.fill_(50.0)
        every_slot = pipeline.run(frame)
        # Every slot class none: nothing is published, whatever the confidence.
        head.class_logits.bias[0] = 50.0
        no_slot = pipeline.run(frame)
    assert len(every_slot.hazards) == 3 and no_slot.hazards == []
    names = metadata.taxonomy.names
    for hazard in every_slot.hazards:
        assert hazard.class_id != 0 and hazard.class_name == names[hazard.class_id]
        assert hazard.confidence > 0.99
    confidences = [h.confidence for h in every_slot.hazards]
    assert confidences == sorted(confidences, reverse=True)
    assert every_slot.top.confidence == pytest.approx(confidences[0])


def test_the_study_trains_each_variant_and_seed_and_writes_the_table(tmp_path: Path, run: Path, capsys):
    out = tmp_path / "study"
    args = ["--config", str(TINY), "--variants", "full", "concat", "--seeds", "0", "1", "--test-scenes", "8"]
    args += ["--out", str(out), f"data.cache_dir={tmp_path / 'cache'}"]
    # Stopped inside the first run, then continued by the same command from where it stopped.
    assert study_main([*args, "runtime.stop_after_steps=2"]) == 0
    assert "full_s0 stopped" in capsys.readouterr().err and run_status(out / "full_s0") == "resumable"
    assert study_main(args) == 0
    steps = [r["step"] for r in _jsonl(out / "full_s0" / "metrics" / "train.jsonl")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > 2
    study = json.loads((out / "study.json").read_text())
    assert set(study["summary"]) == {"full", "concat"}
    assert [r["seed"] for r in study["runs"]["full"]] == [0, 1]
    assert "set/f20" in study["summary"]["full"]
    table = (out / "study.md").read_text()
    assert "full" in table and "concat" in table and "±" in table
    assert (out / "weight_vs_occlusion.png").stat().st_size > 0
    weights = study["weight_by_occlusion"]["full"]
    assert len(weights["occlusion"]) == len(weights["audio_weight"]) == len(weights["hazards"])
    assert all(w is None or 0.0 <= w <= 1.0 for w in weights["audio_weight"])
    assert set(study["weight_by_occlusion"]["concat"]["audio_weight"]) <= {0.5, None}  # fixed weights
    assert "audio weight by the hazard's true occlusion" in table
    # A second call reuses the finished runs (their directories are not trained again).
    stamp = (out / "full_s0" / "export" / "metrics.json").stat().st_mtime_ns
    assert study_main(args) == 0
    assert (out / "full_s0" / "export" / "metrics.json").stat().st_mtime_ns == stamp


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="hazard_slots"):
        load_config(TINY, ["model.hazard_slots=0"])
    with pytest.raises(ConfigError, match="acs_transforms"):
        load_config(TINY, ["data.acs_transforms=5"])
    with pytest.raises(ConfigError, match="'imagination'"):  # the retired single-hazard task
        load_config(REPO / "training" / "configs" / "tiny.yaml", ["task=imagination"])


def test_the_study_refuses_a_test_seed_used_for_training(tmp_path: Path, capsys):
    assert study_main(["--config", str(TINY), "--test-seed", "31", "--out", str(tmp_path)]) == 2
    assert "--test-seed 31" in capsys.readouterr().err


def test_a_run_can_start_from_a_calibrated_checkpoint_with_its_raw_head(run: Path, tmp_path: Path):
    """pretrained.model_checkpoint (staged transfer): the run starts from the checkpoint's weights
    with its calibration undone, may leave a layer out, and refuses weights of another shape."""
    best = run / "checkpoints" / "best"
    calibration = read_checkpoint_metadata(best).extra["calibration"]
    stored, _ = load_checkpoint(best)
    config = load_config(TINY, [f"pretrained.model_checkpoint={best}"])
    task = HazardSetTask(config, torch.device("cpu"), DistInfo())
    model = task.initial_model(None)
    assert model.training
    started, saved = model.state_dict(), stored.state_dict()
    assert started.keys() == saved.keys()
    assert all(torch.equal(started[key], saved[key]) for key in saved if not key.startswith("head."))
    folded = stored.head.confidence.bias.item()
    raw = model.head.confidence.bias.item()
    assert folded == pytest.approx(calibration["scale"] * raw + calibration["offset"], abs=1e-5)
    other = load_config(
        TINY,
        [f"pretrained.model_checkpoint={best}", "model.hazard_slots=2"],
    )
    with pytest.raises(ConfigError, match=r"model_checkpoint: this run's model needs '.*' \(2, "):
        HazardSetTask(other, torch.device("cpu"), DistInfo()).initial_model(None)
    intensity = ["features.kind=dcase", "model.direction=intensity"]
    corrected = load_config(TINY, intensity)
    source = save_checkpoint(
        tmp_path, build_model(corrected.model), corrected.features, HazardSetTask.taxonomy
    )
    physics_only = load_config(
        TINY, [*intensity, f"pretrained.model_checkpoint={source}", "model.direction_correction=false"]
    )
    lean = HazardSetTask(physics_only, torch.device("cpu"), DistInfo()).initial_model(None)
    assert lean.head.direction is None and "head.direction.weight" in load_checkpoint(source)[0].state_dict()
    with pytest.raises(ConfigError, match="model_checkpoint starts the whole model"):
        load_config(TINY, [f"pretrained.model_checkpoint={best}", "pretrained.seld_checkpoint=x"])


def test_train_py_refuses_a_model_checkpoint_of_other_features_in_one_line(run: Path, tmp_path: Path, capsys):
    best = run / "checkpoints" / "best"
    argv = ["--config", str(TINY), f"output_dir={tmp_path / 'run'}", f"data.cache_dir={tmp_path / 'cache'}"]
    assert train_main([*argv, f"pretrained.model_checkpoint={best}", "features.window_seconds=1.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("train.py: error: pretrained.model_checkpoint:") and "trained with features" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
