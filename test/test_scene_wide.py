"""The wide scene profile: its ranges, sensor imperfections, far occluders with exact visibility,
and the scene metadata (RT60, SNR, content) that evaluation groups by."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.acoustics import AcousticsConfig, ShoeboxRoom, convolve_foa, foa_rir
from avi_ros.data.domain import WideProfile, absorption_for_rt60, rt60_bounds_s
from avi_ros.data.layout import camera_pose
from avi_ros.data.render import first_hit_distance
from avi_ros.data.scene import generate_scene, generate_scene_and_geometry
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_geometry import sample_geometry
from avi_ros.data.sensors import capsule_mismatch, limit_depth_range, reduce_resolution
from avi_ros.data.shards import ShardReader, scene_config_from_dict, scene_config_to_dict, write_shards
from avi_ros.data.synthesize import main as synthesize_main
from avi_ros.geometry import angular_error_rad, direction_to_unit
from avi_ros.taxonomy import Visibility, default_taxonomy
from training.config import config_from_dict as experiment_from_dict

WIDE = SceneConfig.wide_profile().with_image_size(64, 48)
NAMES = default_taxonomy().names


def _intensity_direction(foa: np.ndarray) -> np.ndarray:
    w, y, z, x = foa
    return np.array([np.sum(w * x), np.sum(w * y), np.sum(w * z)])


def test_wide_geometry_stays_in_its_ranges_and_covers_them():
    """Many geometries (no rendering or audio): room kinds, RT60, microphone heights, distances."""
    wide = WIDE.wide
    rng = np.random.default_rng(0)
    rt60s, longest, distances, heights = [], [], [], []
    for k in range(150):
        geometry = sample_geometry(rng, WIDE, NAMES[1 + k % 9])
        room = geometry.layout.room
        size = np.asarray(room.size_m)
        lo, hi = rt60_bounds_s(room.size_m)
        if lo <= wide.rt60_range_s[1] and hi >= wide.rt60_range_s[0]:
            assert wide.rt60_range_s[0] * 0.9 <= room.rt60_s() <= wide.rt60_range_s[1] * 1.1
        assert size.min() >= 1.5 and size.max() <= 40.0
        mic_z = geometry.mic.position_m[2]
        assert wide.mic_height_range_m[0] <= mic_z <= min(wide.mic_height_range_m[1], size[2] - 0.5) + 1e-9
        distance = geometry.layout.label(geometry.mic, geometry.hazard.centre_m).distance
        # Placement distances (0.5-15 m) count from the camera, labels from the microphone.
        offset = float(np.linalg.norm(WIDE.extrinsic.translation_m))
        lo, hi = wide.source_distance_range_m
        assert lo - offset <= distance <= 1.4 * hi + offset  # in view, hi bounds the optical depth
        rt60s.append(room.rt60_s())
        longest.append(size.max())
        distances.append(distance)
        heights.append(mic_z)
    assert min(rt60s) < 0.4 and max(rt60s) > 2.5  # from dry offices to reverberant halls
    assert min(longest) < 5.0 and max(longest) > 25.0
    assert min(heights) < 0.5 and max(heights) > 1.6
    assert min(distances) < 1.0 and max(distances) > 6.0


def test_absorption_meets_the_drawn_rt60():
    size = (12.0, 9.0, 4.0)
    for target in (0.5, 1.5, 3.0):
        absorption = absorption_for_rt60(size, target, 0.5, np.random.default_rng(2))
        assert len(set(absorption)) > 1  # walls differ
        assert ShoeboxRoom(size, absorption).rt60_s() == pytest.approx(target, rel=1e-6)


def test_wide_scene_levels_camera_and_metadata():
    wide = WIDE.wide
    for seed in range(6):
        s = generate_scene(seed, WIDE)
        level_dbfs = 20 * math.log10(float(s.audio[0].std()))
        assert wide.level_dbfs_range[0] - 1.5 <= level_dbfs <= wide.level_dbfs_range[1] + 0.5
        roll, pitch, _ = s.extrinsic.rpy_rad
        assert wide.camera_pitch_range_rad[0] <= pitch <= wide.camera_pitch_range_rad[1]
        assert wide.camera_roll_range_rad[0] <= roll <= wide.camera_roll_range_rad[1]
        assert s.depth_m.max() <= wide.max_depth_range_m[1]
        assert math.isfinite(s.rt60_s) and s.rt60_s > 0
        assert s.class_id == 0 or wide.snr_db_range[0] <= s.snr_db <= wide.snr_db_range[1]
        assert np.isfinite(s.audio).all() and np.abs(s.audio).max() <= 1.0


def test_default_scenes_record_the_rt60_of_their_room():
    s, geometry = generate_scene_and_geometry(4, SceneConfig().with_image_size(32, 24))
    assert s.rt60_s == geometry.layout.room.rt60_s() and 0.05 < s.rt60_s < 5.0


def test_capsule_mismatch_changes_channels_but_keeps_the_direction():
    room = ShoeboxRoom((8.0, 6.0, 3.0), (0.3,) * 6)
    rng = np.random.default_rng(3)
    mic, source = np.array([3.0, 3.0, 1.2]), np.array([6.0, 4.5, 1.8])
    rir = foa_rir(room, source, mic, np.eye(3), AcousticsConfig(direct_path_only=True), rng)
    foa = convolve_foa(rng.standard_normal(SAMPLE_RATE), rir)
    foa *= 0.05 / foa[0].std()  # -26 dBFS
    truth = source - mic
    untouched = capsule_mismatch(foa, np.random.default_rng(4), SAMPLE_RATE, 0.0, 0.0, None)
    np.testing.assert_allclose(untouched, foa, atol=1e-12)
    errors = []
    for seed in range(8):
        heard = capsule_mismatch(foa, np.random.default_rng(seed), SAMPLE_RATE, 1.0, 10e-6, -80.0)
        assert np.abs(heard - foa).max() > 1e-3 * np.abs(foa).max()  # the channels do change
        errors.append(math.degrees(float(angular_error_rad(_intensity_direction(heard), truth))))
    # +-1 dB capsules bias the intensity vector by a few degrees, as uncalibrated arrays do.
    assert max(errors) < 10.0 and np.median(errors) < 6.0 and max(errors) > 0.1, errors


def test_sensor_resolution_and_depth_range():
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 20.0, (48, 64)).astype(np.float32)
    low_rgb, low_depth = reduce_resolution(rgb, depth, 0.25)
    assert low_rgb.shape == rgb.shape and low_depth.shape == depth.shape
    assert len(np.unique(low_depth)) <= 16 * 12  # only the values of a 16 x 12 sensor remain
    assert set(np.unique(low_depth)) <= set(np.unique(depth))  # no invented in-between depths
    assert low_rgb.std() < rgb.std()  # detail is lost
    limited = limit_depth_range(depth, 6.0)
    assert (limited[depth > 6.0] == 0).all() and (limited[depth <= 6.0] == depth[depth <= 6.0]).all()


def _first_object_on_pixel(geometry, sample, row: int, col: int) -> str:
    """Independent ray cast through a pixel centre: 'hazard', 'occluder', 'scenery' or 'room'."""
    intr = sample.intrinsics
    cam, rot = camera_pose(geometry.mic, sample.extrinsic)
    ray = rot @ np.array([(col - intr.cx) / intr.fx, (row - intr.cy) / intr.fy, 1.0])
    hits = {
        "hazard": first_hit_distance([geometry.hazard.shape], cam, ray),
        "occluder": first_hit_distance(list(geometry.layout.occluders), cam, ray),
        "scenery": first_hit_distance(list(geometry.layout.scenery), cam, ray),
    }
    name, t = min(hits.items(), key=lambda item: item[1])
    return name if math.isfinite(t) else "room"


def test_far_occluders_keep_the_visibility_label_exact():
    wide = replace(WideProfile(), far_cover_probability=1.0)
    cfg = replace(WIDE, none_probability=0.0, visibility_mix=(0.3, 0.7, 0.0), wide=wide)
    checked, hidden_by_scenery, with_scenery = 0, 0, 0
    for seed in range(40):
        s, geometry = generate_scene_and_geometry(seed, cfg)
        with_scenery += bool(geometry.layout.scenery)
        point = s.extrinsic.mic_to_optical(direction_to_unit(s.azimuth, s.elevation) * s.distance)
        (u, v), inside = s.intrinsics.project(point)
        assert inside
        first = _first_object_on_pixel(geometry, s, round(float(v)), round(float(u)))
        assert (first == "hazard") == (s.visibility == Visibility.VISIBLE), (seed, first, s.visibility)
        hidden_by_scenery += first == "scenery"
        checked += 1
    assert checked == 40 and with_scenery >= 10 and hidden_by_scenery >= 3


def test_far_scenery_is_not_in_the_near_occluder_mask():
    for seed in range(20):
        s, geometry = generate_scene_and_geometry(seed, WIDE)
        view = geometry.layout.render(
            geometry.mic, s.intrinsics, s.extrinsic, np.random.default_rng(0), WIDE.render
        )
        assert not (view.scenery_mask & view.occluder_mask).any()
        np.testing.assert_array_equal(view.occluder_mask, s.occluder_mask)
        if view.scenery_mask.any():
            return
    pytest.fail("no far occluder in view in 20 wide scenes")


def test_wide_config_round_trips_and_is_selectable_from_yaml(tmp_path):
    assert scene_config_from_dict(scene_config_to_dict(WIDE)) == WIDE
    tuned = replace(WIDE, wide=replace(WideProfile(), rt60_range_s=(0.3, 2.0)))
    assert scene_config_from_dict(scene_config_to_dict(tuned)) == tuned
    experiment = experiment_from_dict({"data": {"scene": {"wide": {"rt60_range_s": [0.3, 2.0]}}}})
    assert experiment.data.scene.wide == WideProfile(rt60_range_s=(0.3, 2.0))
    assert experiment_from_dict({}).data.scene.wide is None  # the default profile stays the default
    with pytest.raises(ValueError, match="rt60_range_s"):
        WideProfile(rt60_range_s=(3.0, 1.0))
    write_shards(tmp_path, 3, seed=1, config=WIDE, workers=1)
    reader = ShardReader(tmp_path)
    assert reader.config == WIDE
    for i in range(3):
        item = reader[i]
        assert float(item["rt60_s"]) > 0 and int(item["content"]) in (0, 1, 2)


def test_synthesize_cli_wide_profile(tmp_path, capsys):
    out = tmp_path / "wide"
    args = ["--out", str(out), "--n", "2", "--image-size", "32", "24", "--no-progress", "--wide"]
    assert synthesize_main(args) == 0
    assert ShardReader(out).config.wide == WideProfile()
    assert synthesize_main([*args, "--real-sound-probability", "2"]) == 2
    assert "--real-sound-probability" in capsys.readouterr().err


def test_out_of_view_hazards_stay_out_of_the_tilted_camera():
    cfg = replace(WIDE, none_probability=0.0, visibility_mix=(0.0, 0.0, 1.0))
    for seed in range(12):
        s = generate_scene(seed, cfg)
        assert s.visibility == Visibility.OUT_OF_VIEW and not s.hazard_mask.any(), seed
