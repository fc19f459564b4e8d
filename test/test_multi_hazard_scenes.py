"""Scenes with a set of 0-3 hazards (SceneConfig.hazard_count_weights): counts, per-hazard labels
against the geometry and the render, onsets / offsets, distractors, and the unchanged legacy scenes."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import numpy as np
import pytest
from fake_bank import make_bank

from avi_ros.data.layout import camera_pose
from avi_ros.data.render import first_hit_distance
from avi_ros.data.scene import MIN_SOUNDING_S, _onset_offset, generate_scene, generate_scene_and_geometry
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_labels import SceneContent, hazard_footprint
from avi_ros.taxonomy import MAX_HAZARDS, Visibility, default_taxonomy

# sha256 of generate_scene(5).audio / .rgb on the default config, recorded before multi-hazard
# scenes existed: the single-hazard path must draw the same numbers in the same order.
LEGACY_SEED5_AUDIO = "908e7a9d7ee65735c2489aaa2dbd725186a9da932494f71b69ffec2cae152ae9"
LEGACY_SEED5_RGB = "c90f1dfda6ea9400ae080060655e19bafe9e581be5b97acab6b54203893ad17c"

MULTI = replace(SceneConfig().with_image_size(48, 36), hazard_count_weights=(1.0, 1.0, 1.0, 1.0))
SEEDS = range(32)


@pytest.fixture(scope="module")
def multi_scenes():
    return [generate_scene_and_geometry(seed, MULTI) for seed in SEEDS]


def test_legacy_scenes_are_unchanged_for_a_seed():
    sample = generate_scene(5)
    assert hashlib.sha256(sample.audio.tobytes()).hexdigest() == LEGACY_SEED5_AUDIO
    assert hashlib.sha256(sample.rgb.tobytes()).hexdigest() == LEGACY_SEED5_RGB
    assert len(sample.hazards) == 1
    first = sample.hazards[0]
    assert (first.class_id, first.azimuth, first.distance) == (
        sample.class_id,
        sample.azimuth,
        sample.distance,
    )
    assert (first.visibility, first.risk, first.action) == (sample.visibility, sample.risk, sample.action)


def test_legacy_class_zero_scene_has_no_hazards():
    sample = generate_scene(0, replace(SceneConfig().with_image_size(32, 24), none_probability=1.0))
    assert sample.class_id == 0 and sample.hazards == []


def test_every_hazard_count_occurs_and_single_fields_are_the_first_hazard(multi_scenes):
    counts = {len(sample.hazards) for sample, _ in multi_scenes}
    assert counts == set(range(MAX_HAZARDS + 1))
    names = default_taxonomy().names
    for sample, geometry in multi_scenes:
        assert len(geometry.layout.hazards) == len(sample.hazards)
        assert sample.second is None  # no unlabelled hazard-class source in multi-hazard scenes
        if not sample.hazards:
            assert sample.class_id == 0 and sample.content != SceneContent.HAZARD
            assert sample.visibility == Visibility.OUT_OF_VIEW
            continue
        first = sample.hazards[0]
        assert sample.content == SceneContent.HAZARD
        assert (sample.class_id, sample.azimuth, sample.elevation) == (
            first.class_id,
            first.azimuth,
            first.elevation,
        )
        for hazard, obj in zip(sample.hazards, geometry.layout.hazards, strict=True):
            assert names[hazard.class_id] == obj.class_name
            assert hazard.risk == default_taxonomy().risk_level(hazard.class_id, hazard.distance)


def _line_of_sight_blocked(sample, geometry, k: int) -> bool:
    """Whether an occluder, far scenery or another hazard stands between the camera and the
    centre of hazard ``k`` (the geometry, not the labels)."""
    cam, _ = camera_pose(geometry.mic, sample.extrinsic)
    hazards = geometry.layout.hazards
    others = [h.shape for j, h in enumerate(hazards) if j != k]
    blockers = [*geometry.layout.occluders, *geometry.layout.scenery, *others]
    return first_hit_distance(blockers, cam, hazards[k].centre_m - cam) < 1.0


def _centre_pixel(sample, geometry, k: int) -> tuple[int, int]:
    """(row, column) of hazard ``k``'s centre in the image."""
    (u, v), _ = sample.intrinsics.project(
        sample.extrinsic.mic_to_optical(geometry.mic.to_mic(geometry.layout.hazards[k].centre_m))
    )
    return round(float(v)), round(float(u))


def test_a_visible_and_a_hidden_hazard_share_some_scenes(multi_scenes):
    """In one render, a visible hazard stays in clear sight (the cover panel of its occluded
    neighbour does not hide it too) while the occluded one is hidden."""
    mixed = [
        (sample, geometry)
        for sample, geometry in multi_scenes
        if {Visibility.VISIBLE, Visibility.OCCLUDED} <= {h.visibility for h in sample.hazards}
    ]
    assert len(mixed) >= 2
    for sample, geometry in mixed:
        for k, label in enumerate(sample.hazards):
            if label.visibility == Visibility.VISIBLE:
                assert not _line_of_sight_blocked(sample, geometry, k)
                row, col = _centre_pixel(sample, geometry, k)
                assert sample.hazard_mask[row, col] and not sample.occluder_mask[row, col]
            elif label.visibility == Visibility.OCCLUDED:
                assert _line_of_sight_blocked(sample, geometry, k)


def test_per_hazard_labels_agree_with_the_geometry_and_the_render(multi_scenes):
    seen = set()
    for sample, geometry in multi_scenes:
        for k, (label, obj) in enumerate(zip(sample.hazards, geometry.layout.hazards, strict=True)):
            seen.add(label.visibility)
            blocked = _line_of_sight_blocked(sample, geometry, k)
            _, inside = sample.intrinsics.project(
                sample.extrinsic.mic_to_optical(geometry.mic.to_mic(obj.centre_m))
            )
            footprint = hazard_footprint(obj, geometry.mic, sample.intrinsics, sample.extrinsic)
            if label.visibility == Visibility.OUT_OF_VIEW:
                assert not inside and not footprint.any()  # wholly outside the frustum
                assert math.isnan(label.occlusion)
                continue
            assert inside
            row, col = _centre_pixel(sample, geometry, k)
            if label.visibility == Visibility.VISIBLE:
                assert not blocked
                assert sample.hazard_mask[row, col]  # the hazard mask covers every hazard
                assert 0.0 <= label.occlusion < 1.0
            else:
                assert blocked
                assert 0.0 < label.occlusion <= 1.0
    assert seen == set(Visibility)


def test_occlusion_is_the_occluder_share_of_the_footprint():
    """Default rooms have no far scenery: with one hazard, what hides it is the near occluders."""
    config = replace(MULTI, hazard_count_weights=(0.0, 1.0), visibility_mix=(0.0, 1.0, 0.0))
    for seed in range(6):
        sample, geometry = generate_scene_and_geometry(seed, config)
        (label,) = sample.hazards
        footprint = hazard_footprint(
            geometry.layout.hazards[0], geometry.mic, sample.intrinsics, sample.extrinsic
        )
        expected = (sample.occluder_mask & footprint).sum() / footprint.sum()
        assert label.visibility == Visibility.OCCLUDED
        assert label.occlusion == pytest.approx(expected)
        assert label.occlusion > 0.0


def test_onset_and_offset_show_in_the_activity():
    config = replace(MULTI, hazard_count_weights=(0.0, 0.0, 1.0), onset_offset_probability=1.0)
    for seed in range(4):
        for hazard in generate_scene(seed, config).hazards:
            active = hazard.activity > 0.5
            assert (~active).sum() >= 1  # it starts or stops inside the scene
            assert active.sum() >= 2  # still heard (a horn may sound for only 0.2 s)


def test_a_gate_never_silences_a_short_sound():
    """A 0.2 s burst early in the scene: a gate that cut it out would label a silent hazard."""
    config = replace(MULTI, onset_offset_probability=1.0)
    fs = config.sample_rate
    dry = np.zeros(config.n_samples)
    dry[round(0.1 * fs) : round(0.3 * fs)] = 1.0
    for seed in range(20):
        gated = _onset_offset(np.random.default_rng(seed), config, dry)
        assert gated.sum() >= 0.15 * fs


def test_onset_offset_gate_sounds_long_enough_and_fades_in_and_out():
    config = replace(MULTI, onset_offset_probability=1.0)
    fs = config.sample_rate
    kinds = set()
    for seed in range(30):
        gated = _onset_offset(np.random.default_rng(seed), config, np.ones(config.n_samples))
        on = np.flatnonzero(gated > 0)
        assert on.size >= MIN_SOUNDING_S * fs - 2 and on[-1] - on[0] + 1 == on.size  # one run
        assert np.abs(np.diff(gated)).max() < 0.01  # 10 ms fades: no click
        kinds.add((on[0] > 0, on[-1] < gated.size - 1))
    assert kinds == {(True, False), (False, True), (True, True)}


def test_probability_zero_keeps_the_signal():
    dry = np.random.default_rng(0).standard_normal(MULTI.n_samples)
    assert np.array_equal(_onset_offset(np.random.default_rng(1), MULTI, dry), dry)


def test_non_hazard_sounds_also_play_with_hazards(tmp_path):
    bank = make_bank(tmp_path, splits=("train",)) / "train"
    config = replace(
        MULTI, sound_dir=str(bank), none_sound_probability=1.0, hazard_count_weights=(1.0, 1.0, 1.0)
    )
    contents = set()
    for seed in range(6):
        sample, geometry = generate_scene_and_geometry(seed, config)
        assert geometry.none_source_m is not None
        contents.add(sample.content)
    assert contents == {SceneContent.HAZARD, SceneContent.NON_HAZARD_SOUND}


def test_wide_profile_scenes_keep_their_labels():
    config = replace(
        SceneConfig.wide_profile().with_image_size(32, 24), hazard_count_weights=(0.0, 0.0, 0.0, 1.0)
    )
    sample, geometry = generate_scene_and_geometry(3, config)
    assert len(sample.hazards) == 3 == len(geometry.layout.hazards)
    assert all(h.activity.size == sample.activity.size for h in sample.hazards)


@pytest.mark.parametrize(
    "settings",
    [
        {"hazard_count_weights": (1.0,) * (MAX_HAZARDS + 2)},
        {"hazard_count_weights": (1.0, -1.0)},
        {"hazard_count_weights": (0.0, 0.0)},
        {"hazard_count_weights": (1.0, 1.0), "onset_offset_probability": 1.5},
        {"onset_offset_probability": 0.5},  # needs hazard_count_weights
    ],
)
def test_config_rejects_bad_hazard_settings(settings):
    with pytest.raises(ValueError, match=r"hazard_count_weights|onset_offset_probability"):
        SceneConfig(**settings)
