"""Hazard sets through the data path: shards v4 (hazard_* fields), and the prepared labels, view
tokens and polyphony of ``training.data.prepare_sample`` with the PRESENT rule."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.shards import (
    FORMAT_VERSION,
    INDEX_NAME,
    ShardReader,
    sample_fields,
    sample_seed,
    scene_config_from_dict,
    scene_config_to_dict,
    write_shards,
)
from avi_ros.features import FeatureConfig
from avi_ros.geometry import direction_to_unit
from avi_ros.occlusion import OcclusionConfig
from avi_ros.preprocess import Preprocessor
from avi_ros.taxonomy import MAX_HAZARDS, Visibility
from avi_ros.view_tokens import VIEW_TOKEN_CHANNELS
from training.data import (
    HAZARD_KEYS,
    VIEW_KEYS,
    InputStore,
    PrepareConfig,
    hazard_set_labels,
    prepare_sample,
    sounds_now,
    stack_samples,
)

MULTI = replace(
    SceneConfig().with_image_size(32, 24),
    hazard_count_weights=(0.2, 0.2, 0.3, 0.3),
    onset_offset_probability=0.5,
)
FEATURES = FeatureConfig(window_seconds=0.5)
GRID = 4


def _preprocess(view_grid: int = 0) -> Preprocessor:
    return Preprocessor(32, FEATURES, OcclusionConfig(), view_grid=view_grid)


def _camera(config: SceneConfig = MULTI):
    return config.intrinsics, config.extrinsic


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("multi")
    write_shards(out, 6, seed=3, config=MULTI, shard_size=4)
    return out


def test_shards_round_trip_the_hazard_set(shard_dir):
    reader = ShardReader(shard_dir)
    assert reader.config == MULTI  # the new config fields survive the index (as tuples)
    for i in range(len(reader)):
        stored = reader[i]
        sample = generate_scene(sample_seed(3, i), MULTI)
        n = len(sample.hazards)
        assert stored["hazard_class_id"].shape == (MAX_HAZARDS,)
        assert stored["hazard_activity"].shape == (MAX_HAZARDS, sample.activity.size)
        assert list(stored["hazard_class_id"][:n]) == [h.class_id for h in sample.hazards]
        assert (stored["hazard_class_id"][n:] == -1).all()
        assert (stored["hazard_visibility"][n:] == -1).all() and (stored["hazard_action"][n:] == -1).all()
        assert np.isnan(stored["hazard_occlusion"][n:]).all()
        for k, hazard in enumerate(sample.hazards):
            assert stored["hazard_azimuth"][k] == pytest.approx(hazard.azimuth, abs=1e-6)
            assert stored["hazard_distance"][k] == pytest.approx(hazard.distance, rel=1e-6)
            assert stored["hazard_visibility"][k] == int(hazard.visibility)
            assert stored["hazard_risk"][k] == int(hazard.risk)
            np.testing.assert_array_equal(stored["hazard_activity"][k], hazard.activity)
            np.testing.assert_equal(stored["hazard_occlusion"][k], np.float32(hazard.occlusion))


def test_scene_config_dict_keeps_the_hazard_settings():
    data = json.loads(json.dumps(scene_config_to_dict(MULTI)))
    assert data["hazard_count_weights"] == [0.2, 0.2, 0.3, 0.3]
    assert scene_config_from_dict(data) == MULTI
    assert scene_config_from_dict(scene_config_to_dict(SceneConfig())).hazard_count_weights is None


def test_a_sample_without_hazard_list_fills_slot_zero():
    sample = generate_scene(5, SceneConfig().with_image_size(32, 24))
    legacy = replace(sample, hazards=[])
    fields = sample_fields(legacy)
    assert fields["hazard_class_id"][0] == sample.class_id > 0
    assert (fields["hazard_class_id"][1:] == -1).all()
    assert fields["hazard_visibility"][0] == int(sample.visibility)
    assert math.isnan(fields["hazard_occlusion"][0])  # unknown without the hazard list


def test_too_many_hazards_are_refused():
    sample = generate_scene(1, replace(MULTI, hazard_count_weights=(0, 0, 0, 1)))
    extra = replace(sample, hazards=sample.hazards + sample.hazards[:1])
    with pytest.raises(ValueError, match="at most"):
        sample_fields(extra)


def test_an_older_shard_format_is_refused_clearly(shard_dir, tmp_path):
    index = json.loads((shard_dir / INDEX_NAME).read_text())
    index["version"] = FORMAT_VERSION - 1
    (tmp_path / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"expected format .* v4.*generate the scenes again"):
        ShardReader(tmp_path)


def test_prepare_sample_gives_padded_hazard_arrays_and_view_tokens(shard_dir):
    reader = ShardReader(shard_dir)
    config = PrepareConfig(_preprocess(GRID), camera=_camera(SceneConfig()))  # 640x480 camera, scaled
    polyphonies = set()
    for i in range(len(reader)):
        fields = {**reader[i], "sample_rate": MULTI.sample_rate}
        prepared = prepare_sample(fields, config)
        assert set(HAZARD_KEYS) | set(VIEW_KEYS) <= set(prepared)
        for key in VIEW_KEYS:
            assert prepared[key].shape == (GRID * GRID, VIEW_TOKEN_CHANNELS)
            assert prepared[key].dtype == np.float32
        assert prepared["hazard_class"].shape == (MAX_HAZARDS,)
        assert prepared["hazard_direction"].shape == (MAX_HAZARDS, 3)
        n = int(prepared["polyphony"])
        polyphonies.add(n)
        assert (prepared["hazard_class"][:n] > 0).all() and (prepared["hazard_class"][n:] == 0).all()
        norms = np.linalg.norm(prepared["hazard_direction"], axis=1)
        np.testing.assert_allclose(norms[:n], 1.0, atol=1e-5)
        assert (norms[n:] == 0).all() and (prepared["hazard_distance"][n:] == 0).all()
        assert (prepared["hazard_visibility"][n:] == -1).all()
        assert np.isnan(prepared["hazard_occlusion"][n:]).all()
        out_of_view = prepared["hazard_visibility"][:n] == int(Visibility.OUT_OF_VIEW)
        assert np.isnan(prepared["hazard_occlusion"][:n][out_of_view]).all()
        assert (prepared["hazard_risk"][n:] == 0).all() and (prepared["hazard_action"][n:] == 0).all()
        # the exact tokens mark where a hazard is seen; the run-time ones never do
        assert (prepared["view_tokens"][:, 5] == 0).all()
        if fields["hazard_mask"].any():
            assert prepared["view_tokens_exact"][:, 5].max() > 0
    assert len(polyphonies) > 1


def test_single_hazard_preparation_adds_no_view_tokens_and_stacks():
    samples = [generate_scene(seed, SceneConfig().with_image_size(32, 24)) for seed in range(3)]
    config = PrepareConfig(_preprocess())
    prepared = [prepare_sample(sample, config) for sample in samples]
    assert not set(VIEW_KEYS) & set(prepared[0])
    for sample, p in zip(samples, prepared, strict=True):
        assert int(p["polyphony"]) == (1 if sample.class_id else 0)
        assert int(p["hazard_class"][0]) == sample.class_id
    store = InputStore.from_arrays(stack_samples(prepared), FEATURES, torch.device("cpu"))
    batch = store.batch([0, 2])
    assert batch["hazard_class"].shape == (2, MAX_HAZARDS)
    assert batch["polyphony"].shape == (2,)


def test_view_tokens_need_the_camera():
    sample = generate_scene(0, MULTI)
    with pytest.raises(ValueError, match="camera"):
        prepare_sample(sample, PrepareConfig(_preprocess(GRID)))


def test_fingerprint_changes_with_the_view_settings():
    plain = PrepareConfig(_preprocess()).fingerprint()
    tokens = PrepareConfig(_preprocess(GRID), camera=_camera()).fingerprint()
    other = PrepareConfig(_preprocess(GRID), camera=_camera(SceneConfig())).fingerprint()
    assert len({plain, tokens, other}) == 3


def _fields(activities: list[np.ndarray], class_ids: list[int] | None = None) -> dict[str, np.ndarray]:
    """Hazard_* fields of hazards straight ahead at 3 m with these activities."""
    k = len(activities)
    ids = class_ids or [1 + j for j in range(k)]
    pad = MAX_HAZARDS - k
    return {
        "hazard_class_id": np.array(ids + [-1] * pad),
        "hazard_azimuth": np.zeros(MAX_HAZARDS, np.float32),
        "hazard_elevation": np.zeros(MAX_HAZARDS, np.float32),
        "hazard_distance": np.array([3.0] * k + [0.0] * pad, np.float32),
        "hazard_visibility": np.array([0] * k + [-1] * pad),
        "hazard_occlusion": np.array([0.1] * k + [np.nan] * pad, np.float32),
        "hazard_risk": np.array([2] * k + [-1] * pad),
        "hazard_action": np.array([1] * k + [-1] * pad),
        "hazard_activity": np.stack([*activities, *[np.zeros(10, np.float32)] * pad]),
    }


def test_a_hazard_is_present_while_it_sounds_in_the_last_three_label_frames():
    stopped_early = np.zeros(10, np.float32)
    stopped_early[:7] = 1.0  # stopped 0.3 s before the window's end: no longer reported
    three = np.zeros(10, np.float32)
    three[-3:] = 1.0
    two = np.zeros(10, np.float32)
    two[:8] = 1.0  # stopped 0.2 s before the end: still reported (offset tolerance 0.3 s)
    onset = np.zeros(10, np.float32)
    onset[-1] = 1.0  # started in the last 100 ms: reported at once
    assert not sounds_now(stopped_early)
    assert sounds_now(three) and sounds_now(two) and sounds_now(onset)
    assert sounds_now(None)

    labels = hazard_set_labels(_fields([stopped_early, three, np.ones(10, np.float32)], [4, 5, 6]))
    assert int(labels["polyphony"]) == 2
    assert list(labels["hazard_class"]) == [5, 6, 0]  # the absent hazard leaves no hole
    np.testing.assert_allclose(labels["hazard_direction"][0], direction_to_unit(0.0, 0.0))


def test_legacy_fields_give_the_single_hazard():
    fields = {
        "class_id": 3,
        "azimuth": 0.5,
        "elevation": 0.0,
        "distance": 4.0,
        "visibility": 1,
        "risk": 1,
        "action": 2,
        "activity": np.ones(10, np.float32),
    }
    labels = hazard_set_labels(fields)
    assert int(labels["polyphony"]) == 1 and list(labels["hazard_class"]) == [3, 0, 0]
    assert labels["hazard_visibility"][0] == 1 and math.isnan(labels["hazard_occlusion"][0])
    assert int(hazard_set_labels({**fields, "class_id": 0})["polyphony"]) == 0
