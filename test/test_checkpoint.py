"""Checkpoint directories (safetensors + JSON) and the DCASE2023 baseline key mapping."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from model_helpers import dcase_baseline_state_dict, tiny_config
from safetensors.torch import save_file

from avi_ros.checkpoint import (
    METADATA_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    load_checkpoint,
    model_fingerprint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from avi_ros.features import FeatureConfig
from avi_ros.models import ModelConfig, SeldEncoder, SeldEncoderConfig, build_model, load_dcase_checkpoint
from avi_ros.taxonomy import default_taxonomy
from avi_ros.view_tokens import VIEW_TOKEN_CHANNELS

TAXONOMY = default_taxonomy()
IMAGE = 64


def trained_looking_model(config: ModelConfig) -> torch.nn.Module:
    """A model whose buffers are not at their initial values (BN statistics, feature stats)."""
    torch.manual_seed(0)
    model = build_model(config)
    model.set_normalization(torch.randn(7, 64), torch.rand(7, 64) + 0.5)
    model.train()
    with torch.no_grad():
        model(
            torch.randn(2, 7, 50, 64), torch.randn(2, 5, IMAGE, IMAGE), torch.rand(2, 16, VIEW_TOKEN_CHANNELS)
        )
    return model.eval()


def sample_inputs() -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    return (
        torch.randn(2, 7, 50, 64, generator=generator),
        torch.randn(2, 5, IMAGE, IMAGE, generator=generator),
        torch.rand(2, 16, VIEW_TOKEN_CHANNELS, generator=generator),
    )


@pytest.fixture(scope="module")
def saved_once(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    model = trained_looking_model(tiny_config(TAXONOMY.num_classes, IMAGE))
    directory = save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "ckpt",
        model,
        FeatureConfig(),
        TAXONOMY,
        extra={"occlusion": {"near_range_m": 0.8}},
    )
    return directory, model


@pytest.fixture
def saved(saved_once, tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    """A fresh copy of the saved checkpoint that a test may edit."""
    directory, model = saved_once
    return Path(shutil.copytree(directory, tmp_path / "ckpt")), model


def test_round_trip_gives_bit_identical_outputs(saved) -> None:
    directory, model = saved
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [WEIGHTS_FILE, METADATA_FILE]
    )  # no temp files
    loaded, metadata = load_checkpoint(directory)
    assert not loaded.training
    with torch.no_grad():
        before, after = model(*sample_inputs()), loaded(*sample_inputs())
    for name in ("class_logits", "direction", "distance", "confidence_logit", "audio_weight", "risk_logits"):
        assert torch.equal(getattr(before, name), getattr(after, name)), name
    assert metadata.model_config == model.config
    assert metadata.feature_config == FeatureConfig()
    assert metadata.taxonomy == TAXONOMY
    assert metadata.extra == {"occlusion": {"near_range_m": 0.8}}
    assert torch.equal(torch.tensor(metadata.normalization["std"]), model.feature_norm.std)


def test_metadata_is_plain_json_with_the_documented_keys(saved) -> None:
    directory, _ = saved
    data = json.loads((directory / METADATA_FILE).read_text())
    assert {
        "format",
        "version",
        "model_config",
        "feature_config",
        "normalization",
        "taxonomy",
        "extra",
    } <= set(data)
    assert data["model_config"]["visual"]["arch"] == "resnet18"
    assert len(data["normalization"]["mean"]) == 7 and len(data["normalization"]["mean"][0]) == 64


def edit_metadata(directory: Path, edit) -> None:
    path = directory / METADATA_FILE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_weights_that_do_not_fit_the_config_are_refused(saved) -> None:
    directory, _ = saved
    edit_metadata(directory, lambda d: d["model_config"]["visual"].update(arch="resnet34"))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*layer1\.2\.conv1\.weight"):
        load_checkpoint(directory)


def test_class_count_must_match_the_taxonomy(saved) -> None:
    directory, _ = saved
    edit_metadata(directory, lambda d: d["model_config"].update(num_classes=4))
    with pytest.raises(CheckpointError, match="num_classes = 4 but the taxonomy has 10"):
        read_checkpoint_metadata(directory)


def test_features_must_fit_the_audio_encoder(saved) -> None:
    directory, _ = saved
    edit_metadata(directory, lambda d: d["feature_config"].update(n_bins=32))
    with pytest.raises(CheckpointError, match="7 x 32"):
        load_checkpoint(directory)


def test_normalisation_in_metadata_must_match_the_weights(saved) -> None:
    directory, _ = saved
    edit_metadata(directory, lambda d: d["normalization"]["mean"][0].__setitem__(0, 123.0))
    with pytest.raises(CheckpointError, match=r"normalization\.mean"):
        load_checkpoint(directory)


def test_unknown_config_key_and_version_are_refused(saved) -> None:
    directory, _ = saved
    edit_metadata(directory, lambda d: d["model_config"]["adapter"].update(layers=3))
    with pytest.raises(CheckpointError, match="layers"):
        load_checkpoint(directory)
    edit_metadata(directory, lambda d: d.update(version=99))
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(directory)


def test_missing_directory_says_how_to_make_one(tmp_path: Path) -> None:
    """The hint trains the package's model: the hazard-set config, after its SELD pre-training."""
    with pytest.raises(FileNotFoundError) as error:
        load_checkpoint(tmp_path / "nowhere")
    message = str(error.value)
    seld = message.index("python training/train.py --config training/configs/hazard_set_seld.yaml")
    assert message.index("python training/train.py --config training/configs/hazard_set.yaml") > seld


def test_a_checkpoint_of_the_retired_single_hazard_model_says_how_to_retrain(saved) -> None:
    directory, _ = saved
    edit_metadata(directory, lambda d: d["model_config"].update(hazard_slots=0))
    with pytest.raises(CheckpointError, match="retired single-hazard model") as zero:
        read_checkpoint_metadata(directory)
    edit_metadata(directory, lambda d: d["model_config"].pop("hazard_slots"))  # from before the slots
    with pytest.raises(CheckpointError, match="retired single-hazard model") as absent:
        load_checkpoint(directory)
    for error in (zero, absent):
        assert "\n" not in str(error.value) and "training/configs/hazard_set.yaml" in str(error.value)


def test_variant_change_is_refused(saved) -> None:
    directory, _ = saved
    edit_metadata(directory, lambda d: d["model_config"].update(variant="audio_only"))
    with pytest.raises(CheckpointError, match="unexpected keys"):
        load_checkpoint(directory)


# --- DCASE2023 baseline state_dict ---------------------------------------------------------


def test_dcase_torch_file_maps_onto_every_encoder_tensor(tmp_path: Path) -> None:
    state = dcase_baseline_state_dict()
    path = tmp_path / "3_1_dev_split0_multiaccdoa_foa_model.h5"  # the baseline saves torch files as .h5
    torch.save(state, path)
    encoder = SeldEncoder(SeldEncoderConfig(accdoa_classes=13))
    assert load_dcase_checkpoint(encoder, path) == []
    own = encoder.state_dict()
    assert set(own) == set(state)
    for key, value in state.items():
        assert torch.equal(own[key], value), key


def test_dcase_safetensors_without_head_skips_the_head(tmp_path: Path) -> None:
    state = dcase_baseline_state_dict()
    path = tmp_path / "baseline.safetensors"
    save_file(state, str(path))
    encoder = SeldEncoder()  # no ACCDOA head
    skipped = load_dcase_checkpoint(encoder, path)
    assert sorted(skipped) == ["fnn_list.0.bias", "fnn_list.0.weight", "fnn_list.1.bias", "fnn_list.1.weight"]
    assert torch.equal(encoder.gru.weight_hh_l1_reverse, state["gru.weight_hh_l1_reverse"])


def test_dcase_data_parallel_prefix_is_stripped() -> None:
    state = {f"module.{key}": value for key, value in dcase_baseline_state_dict().items()}
    encoder = SeldEncoder(SeldEncoderConfig(accdoa_classes=13))
    load_dcase_checkpoint(encoder, state)
    assert torch.equal(encoder.fnn_list[1].bias, state["module.fnn_list.1.bias"])


def test_dcase_shape_mismatch_names_the_first_key() -> None:
    state = dcase_baseline_state_dict()
    state["conv_block_list.3.conv.weight"] = torch.zeros(64, 64, 5, 5)
    state["gru.weight_ih_l0"] = torch.zeros(384, 256)  # a later mismatch
    encoder = SeldEncoder(SeldEncoderConfig(accdoa_classes=13))
    before = encoder.conv_block_list[0].conv.weight.clone()
    with pytest.raises(ValueError, match=re.escape("'conv_block_list.3.conv.weight'")) as info:
        load_dcase_checkpoint(encoder, state)
    assert "(64, 64, 5, 5)" in str(info.value) and "(64, 64, 3, 3)" in str(info.value)
    assert torch.equal(encoder.conv_block_list[0].conv.weight, before)  # nothing half-loaded


def test_dcase_head_of_another_class_count_is_reinitialised() -> None:
    encoder = SeldEncoder(SeldEncoderConfig(accdoa_classes=10))
    with pytest.warns(UserWarning, match=r"\(117, 128\).*re-initialised fnn_list\.1"):
        skipped = load_dcase_checkpoint(encoder, dcase_baseline_state_dict())
    assert skipped == ["fnn_list.1.weight", "fnn_list.1.bias"]


def test_dcase_missing_and_unexpected_keys() -> None:
    state = dcase_baseline_state_dict()
    del state["layer_norm_list.1.bias"]
    with pytest.raises(ValueError, match=re.escape("missing key 'layer_norm_list.1.bias'")):
        load_dcase_checkpoint(SeldEncoder(), state)
    state = {**dcase_baseline_state_dict(), "pos_embedding.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match=re.escape("unexpected key 'pos_embedding.weight'")):
        load_dcase_checkpoint(SeldEncoder(), state)


def test_the_fingerprint_changes_with_weights_metadata_and_direction_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caches of a model's outputs (decision data, the demo's steps 4-5) key on the fingerprint: a
    recalibration (metadata) or a new direction reading must make them stale, not only new weights."""
    (tmp_path / WEIGHTS_FILE).write_bytes(b"weights")
    (tmp_path / METADATA_FILE).write_text('{"calibration": 1}', encoding="utf-8")
    first = model_fingerprint(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{16}", first) and model_fingerprint(tmp_path) == first
    (tmp_path / METADATA_FILE).write_text('{"calibration": 2}', encoding="utf-8")
    recalibrated = model_fingerprint(tmp_path)
    assert recalibrated != first
    monkeypatch.setattr("avi_ros.checkpoint.MODE_STEPS", 0)
    assert model_fingerprint(tmp_path) not in (first, recalibrated)
    monkeypatch.undo()
    (tmp_path / WEIGHTS_FILE).write_bytes(b"other weights")
    assert model_fingerprint(tmp_path) not in (first, recalibrated)
