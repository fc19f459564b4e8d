"""The decision model: shapes, segment pooling, telemetry switch, checkpoints, the inference wrapper,
and the frozen hf_local backbone trained through the real trainer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from estimates import estimate
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2Model

from avi_ros.checkpoint import CheckpointError
from avi_ros.decision.checkpoint import (
    METADATA_FILE,
    WEIGHTS_FILE,
    load_decision_checkpoint,
    save_decision_checkpoint,
)
from avi_ros.decision.features import FeatureWindow, feature_size, frame_feature
from avi_ros.decision.inference import DecisionStage, driving_hazards
from avi_ros.decision.labels import Reason
from avi_ros.decision.model import DecisionModel, DecisionModelConfig, check_frozen, segment_pool
from avi_ros.taxonomy import Action, RiskLevel, Visibility, default_taxonomy
from avi_ros.telemetry import TelemetryReading
from avi_ros.types import HazardEstimateData
from training.config import load_config
from training.decision_task import DecisionTask
from training.trainer import Trainer

TINY_CONFIG = Path(__file__).resolve().parents[1] / "training" / "configs" / "decision_tiny.yaml"
TAXONOMY = default_taxonomy()
DV = feature_size(TAXONOMY.num_classes)
TINY = DecisionModelConfig(d_model=16, layers=1, heads=2, ff_hidden=32, telemetry_hidden=16, dropout=0.0)


def _inputs(batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 8, DV, generator=generator), torch.randn(batch, 8, generator=generator)


def _estimate(class_name: str = "siren", azimuth: float = 0.3) -> HazardEstimateData:
    probabilities = np.full(TAXONOMY.num_classes, 0.01, dtype=np.float32)
    probabilities[TAXONOMY.class_id(class_name)] = 1.0 - 0.01 * (TAXONOMY.num_classes - 1)
    return estimate(
        TAXONOMY.class_id(class_name),
        math.degrees(azimuth),
        class_probabilities=probabilities,
        occlusion_level=0.2,
        visibility=Visibility.OCCLUDED,
        risk_level=RiskLevel.HIGH,
        recommended_action=Action.STOP,
    )


def test_segment_pooling_averages_equal_segments_of_frames():
    frames = torch.arange(8, dtype=torch.float32).reshape(1, 8, 1).expand(2, 8, 3)
    pooled = segment_pool(frames, 4)
    assert pooled.shape == (2, 4, 3)
    np.testing.assert_allclose(pooled[0, :, 0].numpy(), [0.5, 2.5, 4.5, 6.5])
    with pytest.raises(ValueError, match="equal segments"):
        segment_pool(frames, 3)


@pytest.mark.parametrize("backbone", ["none", "transformer"])
def test_heads_have_the_contract_shapes(backbone):
    model = DecisionModel(DecisionModelConfig(backbone=backbone, d_model=16, heads=2, ff_hidden=32), DV)
    output = model(*_inputs(batch=5))
    assert output.risk.shape == (5, 4) and output.reason.shape == (5, 4)
    assert output.action.shape == (5, 6) and output.confidence.shape == (5,)
    assert model.projector(*_inputs(batch=5)).shape == (5, 4 + 2, 16)  # [K visual, telemetry, task]


def test_wrong_window_shapes_and_configs_are_refused():
    model = DecisionModel(TINY, DV)
    with pytest.raises(ValueError, match="features: expected"):
        model(torch.zeros(2, 6, DV), torch.zeros(2, 8))
    with pytest.raises(ValueError, match="divisible"):
        DecisionModelConfig(frames=8, tokens=3)
    with pytest.raises(ValueError, match="hf_path"):
        DecisionModelConfig(backbone="hf_local")


def test_telemetry_zero_is_the_same_model_blind_to_the_motion():
    features, telemetry = _inputs()
    torch.manual_seed(0)
    full = DecisionModel(TINY, DV).eval()
    torch.manual_seed(0)
    zero = DecisionModel(DecisionModelConfig(**{**TINY.to_dict(), "telemetry": "zero"}), DV).eval()
    assert full.state_dict().keys() == zero.state_dict().keys()
    with torch.no_grad():
        assert not torch.allclose(full(features, telemetry).risk, full(features, telemetry * 0).risk)
        np.testing.assert_allclose(zero(features, telemetry).risk, zero(features, telemetry * 0).risk)


def test_checkpoint_round_trip_keeps_outputs_and_records_the_contract_metadata(tmp_path):
    model = DecisionModel(TINY, DV).eval()
    save_decision_checkpoint(tmp_path, model, TAXONOMY, {"training": {"run": "t"}})
    loaded, metadata = load_decision_checkpoint(tmp_path)
    features, telemetry = _inputs()
    with torch.no_grad():
        np.testing.assert_allclose(loaded(features, telemetry).action, model(features, telemetry).action)
    data = json.loads((tmp_path / METADATA_FILE).read_text())
    assert (data["dv"], data["d"], data["F"], data["K"]) == (DV, 16, 8, 4)
    assert data["labels"]["reason"] == ["human", "obstacle", "tight_space", "unknown"]
    assert metadata.taxonomy.names == TAXONOMY.names


def test_a_checkpoint_that_does_not_fit_is_refused_with_its_path(tmp_path):
    save_decision_checkpoint(tmp_path, DecisionModel(TINY, DV), TAXONOMY)
    data = json.loads((tmp_path / METADATA_FILE).read_text())
    data["model_config"]["ff_hidden"] = 64  # the weights have 32
    (tmp_path / METADATA_FILE).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=WEIGHTS_FILE):
        load_decision_checkpoint(tmp_path)


def test_a_bad_model_config_value_is_refused_with_its_dotted_key(tmp_path):
    save_decision_checkpoint(tmp_path, DecisionModel(TINY, DV), TAXONOMY)
    data = json.loads((tmp_path / METADATA_FILE).read_text())
    on_disk = "frames tokens d_model backbone layers heads ff_hidden dropout"
    on_disk += " telemetry_hidden hf_path telemetry frame_period_s"
    assert sorted(data["model_config"]) == sorted(on_disk.split())  # the JSON keys stay the fields
    data["model_config"]["layers"] = "2"
    (tmp_path / METADATA_FILE).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"model_config\.layers: expected int"):
        load_decision_checkpoint(tmp_path)


def test_the_window_is_zero_padded_until_f_frames_arrived():
    window = FeatureWindow(8, DV, 1.0 / 15.0)
    feature = frame_feature(_estimate())
    window.push(feature, 0)
    array = window.window()
    assert array.shape == (8, DV) and not array[:7].any()
    np.testing.assert_array_equal(array[7], feature)
    assert feature[TAXONOMY.num_classes + 5 + int(Visibility.OCCLUDED)] == 1.0  # visibility one-hot


def test_the_inference_wrapper_gives_readable_json(tmp_path):
    save_decision_checkpoint(tmp_path, DecisionModel(TINY, DV), TAXONOMY)
    stage = DecisionStage.from_checkpoint(tmp_path)
    reading = TelemetryReading.absent()
    for _ in range(3):
        assessment = stage.step(_estimate(), reading, stamp_ns=42)  # one frame, re-sent: one slot
    report = assessment.to_json()
    assert report["telemetry_missing"] is True and report["stamp_ns"] == 42
    assert set(report["action"]["probabilities"]) == {
        "continue",
        "slow",
        "stop",
        "reverse",
        "turn_left",
        "turn_right",
    }
    assert sum(report["risk"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert report["risk"]["name"] == ["none", "low", "medium", "high"][report["risk"]["id"]]
    assert 0.0 <= report["confidence"] <= 1.0
    with pytest.raises(ValueError, match="class probabilities"):
        stage.push(
            HazardEstimateData(
                **{**_estimate().__dict__, "class_probabilities": np.ones(3, dtype=np.float32)}
            ),
            43,
        )


def test_driving_hazards_are_those_whose_class_gives_the_reason(tmp_path):
    save_decision_checkpoint(tmp_path, DecisionModel(TINY, DV), TAXONOMY)
    stage = DecisionStage.from_checkpoint(tmp_path)
    assessment = stage.step(_estimate(), TelemetryReading.absent(), 0)
    hazards = [_estimate("speech"), _estimate("siren")]
    human = type(assessment)(**{**assessment.__dict__, "risk": RiskLevel.HIGH, "reason": Reason.HUMAN})
    assert driving_hazards(hazards, human) == [0]
    calm = type(assessment)(**{**assessment.__dict__, "risk": RiskLevel.NONE, "reason": Reason.HUMAN})
    assert driving_hazards(hazards, calm) == []


@pytest.fixture
def tiny_gpt2(tmp_path):
    """A tiny decoder-only language model saved like a user's local weights (nothing downloaded)."""
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=1, n_head=2, n_embd=16, n_positions=16, vocab_size=32, bos_token_id=0, eos_token_id=0
    )
    directory = tmp_path / "gpt2_tiny"
    GPT2Model(config).save_pretrained(directory)
    return directory


def test_hf_local_backbone_stays_frozen_while_the_projectors_train(tiny_gpt2, tmp_path, monkeypatch):
    initial: dict[str, torch.Tensor] = {}
    build = DecisionTask.initial_model

    def remember_initial(task, train):
        model = build(task, train)
        initial.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return model

    monkeypatch.setattr(DecisionTask, "initial_model", remember_initial)
    config = load_config(
        TINY_CONFIG,
        [
            "decision.model.backbone=hf_local",
            f"decision.model.hf_path={tiny_gpt2}",
            "runtime.stop_after_steps=4",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.fit().status == "stopped"
    model = trainer.model
    counts = check_frozen(model)
    assert 0 < counts["trainable"] < counts["total"]
    trained = model.state_dict()
    backbone = [k for k in trained if k.startswith("backbone.lm.")]
    projectors = [k for k in trained if k.startswith("projector.")]
    assert backbone and projectors
    for key in backbone:
        torch.testing.assert_close(trained[key], initial[key], rtol=0, atol=0)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert any(not torch.equal(trained[k], initial[k]) for k in projectors)
    assert not model.backbone.lm.training  # no dropout in a frozen backbone, even while training
    # the checkpoint holds the trainable state only; the backbone loads again from hf_path
    last = tmp_path / "run" / "checkpoints" / "last"
    assert not any(k.startswith("backbone.") for k in load_file(str(last / WEIGHTS_FILE)))
    loaded, metadata = load_decision_checkpoint(last)
    assert metadata.width == 16 and metadata.model_config.hf_path == str(tiny_gpt2)
    features, telemetry = _inputs()
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(
            loaded(features, telemetry).risk, model(features, telemetry).risk, atol=1e-6
        )


def test_hf_local_without_a_local_model_fails_clearly(tmp_path):
    config = DecisionModelConfig(backbone="hf_local", hf_path=str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="no local model"):
        DecisionModel(config, DV)
