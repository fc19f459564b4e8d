"""SELD pre-training: trains on multi-source scenes; its encoder initialises the hazard model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import tiny_seld_overrides
from safetensors.torch import load_file

from avi_ros.models.builder import build_model
from avi_ros.models.seld_encoder import SeldEncoder, SeldEncoderConfig, load_dcase_checkpoint
from training.config import load_config
from training.data import InputStore, accdoa_target_of_scene
from training.distributed import DistInfo
from training.seld_task import SeldPretrainTask, frame_labels_from_target, load_seld_encoder
from training.trainer import Trainer

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


def test_scene_target_holds_both_sources_on_their_classes():
    fields = {
        "class_id": 3,
        "azimuth": np.pi / 2,
        "elevation": 0.0,
        "second_class_id": 5,
        "second_azimuth": 0.0,
        "second_elevation": np.pi / 2,
    }
    target = accdoa_target_of_scene(fields, frames=4, tracks=3, classes=9)
    labels = frame_labels_from_target(target)
    assert sorted(labels) == [0, 1, 2, 3]
    (c0, d0), (c1, d1) = labels[2]
    assert (c0, c1) == (2, 4)  # accdoa class = class id - 1
    assert d0 == pytest.approx([0, 1, 0], abs=1e-6) and d1 == pytest.approx([0, 0, 1], abs=1e-6)
    no_second = {**fields, "second_class_id": -1}
    assert len(frame_labels_from_target(accdoa_target_of_scene(no_second, 4, 3, 9))[0]) == 1


@pytest.mark.slow
def test_tiny_seld_pretraining_runs_and_transfers(tmp_path):
    run_dir = f"{tmp_path}/{{name}}"
    overrides = tiny_seld_overrides(run_dir, tmp_path / "cache", (16, 8), max_order=2, batch_size=8)
    overrides.append("runtime.log_every_steps=1")
    config = load_config(CONFIGS / "seld_pretrain.yaml", overrides)
    result = Trainer(config, config.resolved_output_dir()).fit()
    assert result.status == "completed"
    run = config.resolved_output_dir()
    scores = json.loads((run / "export" / "metrics.json").read_text())["seld"]
    assert set(scores) == {"er20", "f20", "le_cd_deg", "lr_cd", "seld_score"}
    assert scores["seld_score"] >= 0.0
    losses = [
        json.loads(line)["adpit"] for line in (run / "metrics" / "train.jsonl").read_text().splitlines()
    ]
    assert len(losses) == 4 and all(np.isfinite(losses))

    # The pre-trained encoder (without its ACCDOA head) loads into the hazard model.
    audio = dataclasses.replace(config.model.audio, accdoa_classes=0)
    model = build_model(dataclasses.replace(config.model, audio=audio))
    mean, std = load_seld_encoder(model.audio_encoder, run / "checkpoints" / "best")
    assert mean.shape == (7, 64) and torch.all(std > 0)
    saved = load_file(str(run / "checkpoints" / "best" / "seld_encoder.safetensors"))
    for name, value in model.audio_encoder.state_dict().items():
        assert torch.equal(value, saved[name]), name


def _dcase2023_foa_state_dict() -> dict[str, torch.Tensor]:
    """Random weights with the names and shapes of the DCASE2023 FOA baseline (13 classes:
    fnn_list.1 is 117 x 128); test_checkpoint.py checks these names against the baseline's."""
    torch.manual_seed(7)
    baseline = SeldEncoder(SeldEncoderConfig(accdoa_classes=13))
    return {key: torch.randn_like(v.float()).to(v.dtype) for key, v in baseline.state_dict().items()}


def test_dcase_weights_load_into_a_nine_class_encoder_with_a_new_output_layer():
    state = _dcase2023_foa_state_dict()
    encoder = SeldEncoder(SeldEncoderConfig(accdoa_classes=9))  # as seld_pretrain.yaml and demo_seld.yaml
    with pytest.warns(UserWarning, match=r"\(117, 128\).*\(81, 128\).*re-initialised fnn_list\.1"):
        not_loaded = load_dcase_checkpoint(encoder, state)
    assert not_loaded == ["fnn_list.1.weight", "fnn_list.1.bias"]
    own = encoder.state_dict()
    for key, value in state.items():
        if key.startswith("fnn_list.1."):
            assert own[key].shape[0] == 81 and torch.isfinite(own[key]).all()
            assert not torch.equal(own[key], value[:81]), key
        else:
            assert torch.equal(own[key], value), key  # the trunk and the hidden head layer load
    # A mismatch anywhere else is still an error, and nothing is loaded then.
    broken = {**state, "gru.weight_hh_l0": torch.zeros(3 * 128, 64)}
    fresh = SeldEncoder(SeldEncoderConfig(accdoa_classes=9))
    before = fresh.gru.weight_ih_l0.clone()
    with pytest.raises(ValueError, match=r"'gru\.weight_hh_l0'"):
        load_dcase_checkpoint(fresh, broken)
    assert torch.equal(fresh.gru.weight_ih_l0, before)


def test_seld_pretraining_on_nine_classes_starts_from_a_dcase_checkpoint(tmp_path):
    path = tmp_path / "3_1_dev_split0_multiaccdoa_foa_model.h5"
    state = _dcase2023_foa_state_dict()
    torch.save(state, path)
    config = load_config(
        CONFIGS / "demo_seld.yaml", [f"pretrained.dcase_checkpoint={path}", "runtime.device=cpu"]
    )
    task = SeldPretrainTask(config, torch.device("cpu"), DistInfo())
    train = InputStore({"features": torch.randn(4, 7, 50, 64)})
    with pytest.warns(UserWarning, match="re-initialised"):
        model = task.initial_model(train)
    assert torch.equal(model.audio_encoder.gru.weight_ih_l0, state["gru.weight_ih_l0"])
    assert model(torch.randn(2, 7, 50, 64)).shape == (2, 10, 3, 3, 9)
