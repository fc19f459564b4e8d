"""Synthetic scenes: determinism, label geometry, FOA encoding directions, the layout API and shards."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.acoustics import (
    AcousticsConfig,
    ShoeboxRoom,
    convolve_foa,
    convolve_foa_time_varying,
    event_power,
    foa_rir,
    image_sources,
)
from avi_ros.data.dataset import SceneShardDataset
from avi_ros.data.layout import MicPose, SceneLayout
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.shards import (
    ShardReader,
    sample_seed,
    scene_config_from_dict,
    scene_config_to_dict,
    write_shards,
)
from avi_ros.data.synthesize import main as synthesize_main
from avi_ros.geometry import angular_error_rad, direction_to_unit
from avi_ros.taxonomy import Visibility, default_taxonomy

SMALL = SceneConfig().with_image_size(96, 72)


def _intensity_direction(foa: np.ndarray) -> np.ndarray:
    """Mean active intensity (W times X, Y, Z) of ACN/SN3D audio: points at the source."""
    w, y, z, x = foa
    return np.array([np.sum(w * x), np.sum(w * y), np.sum(w * z)])


def _assert_samples_equal(a, b) -> None:
    for name in ("audio", "rgb", "depth_m", "occluder_mask", "hazard_mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in (
        "class_id",
        "azimuth",
        "elevation",
        "distance",
        "visibility",
        "occlusion_level",
        "risk",
        "action",
    ):
        assert getattr(a, name) == getattr(b, name), name
    assert a.second == b.second


def test_same_seed_same_sample_and_other_seed_differs():
    a, b = generate_scene(11, SMALL), generate_scene(11, SMALL)
    _assert_samples_equal(a, b)
    c = generate_scene(12, SMALL)
    assert not np.array_equal(a.audio, c.audio)
    assert not np.array_equal(a.rgb, c.rgb)


def test_sample_contents_and_units():
    tax = default_taxonomy()
    s = generate_scene(5, replace(SMALL, none_probability=0.0))
    assert s.audio.shape == (4, SAMPLE_RATE) and s.audio.dtype == np.float32
    assert s.rgb.shape == (72, 96, 3) and s.rgb.dtype == np.uint8
    assert s.depth_m.dtype == np.float32 and s.occluder_mask.dtype == bool
    assert 1 <= s.class_id < tax.num_classes and s.class_name == tax.names[s.class_id]
    assert SMALL.source_distance_range_m[0] * 0.9 <= s.distance <= 10.0
    assert s.risk == tax.risk_level(s.class_id, s.distance)
    assert s.action == tax.recommended_action(s.risk, s.azimuth)
    assert np.abs(s.audio).max() <= 1.0 and np.isfinite(s.audio).all()


def test_class_zero_is_background_only():
    s = generate_scene(3, replace(SMALL, none_probability=1.0))
    assert s.class_id == 0 and s.class_name == "none"
    assert not s.hazard_mask.any()
    assert (s.azimuth, s.elevation, s.distance) == (0.0, 0.0, 0.0)
    assert s.visibility == Visibility.OUT_OF_VIEW and math.isnan(s.snr_db) and s.second is None
    # Diffuse noise: no direction dominates, unlike a point source.
    w_power = np.mean(s.audio[0].astype(np.float64) ** 2)
    assert np.linalg.norm(_intensity_direction(s.audio.astype(np.float64))) / s.audio.shape[1] < 0.1 * w_power


def test_label_direction_projects_onto_the_rendered_object():
    """Visible: the label point lands on hazard pixels. Occluded: on occluder pixels, hazard behind."""
    cfg = replace(SMALL, none_probability=0.0)
    checked = {Visibility.VISIBLE: 0, Visibility.OCCLUDED: 0}
    for seed in range(30):
        s = generate_scene(seed, cfg)
        if s.visibility == Visibility.OUT_OF_VIEW:
            assert not s.hazard_mask.any(), seed  # placed wholly outside the field of view
            continue
        point = s.extrinsic.mic_to_optical(direction_to_unit(s.azimuth, s.elevation) * s.distance)
        (u, v), inside = s.intrinsics.project(point)
        assert inside
        row, col = round(float(v)), round(float(u))
        if s.visibility == Visibility.VISIBLE:
            assert s.hazard_mask[row, col], seed
            assert s.depth_m[row, col] == 0.0 or s.depth_m[row, col] > 1.0
        else:
            assert s.occluder_mask[row, col], seed
        checked[s.visibility] += 1
    assert checked[Visibility.VISIBLE] >= 5 and checked[Visibility.OCCLUDED] >= 5


def test_visibility_mix_controls_the_states():
    out = [
        generate_scene(s, replace(SMALL, none_probability=0.0, visibility_mix=(0, 0, 1))) for s in range(8)
    ]
    assert all(s.visibility == Visibility.OUT_OF_VIEW for s in out)
    occ = [
        generate_scene(s, replace(SMALL, none_probability=0.0, visibility_mix=(0, 1, 0))) for s in range(8)
    ]
    assert all(s.visibility == Visibility.OCCLUDED for s in occ)
    vis = [
        generate_scene(s, replace(SMALL, none_probability=0.0, visibility_mix=(1, 0, 0))) for s in range(8)
    ]
    assert sum(s.visibility == Visibility.VISIBLE for s in vis) >= 7


def test_direct_path_foa_points_at_the_source_in_the_microphone_frame():
    room = ShoeboxRoom((7.0, 6.0, 3.0), (0.3,) * 6)
    mic = MicPose((3.0, 2.5, 1.2), math.radians(40.0))  # turned: labels must be in the mic frame
    layout = SceneLayout(room)
    source = np.array([5.5, 4.5, 2.0])
    label = layout.label(mic, source)
    rng = np.random.default_rng(0)
    rir = layout.rir(mic, source, AcousticsConfig(direct_path_only=True), rng)
    foa = convolve_foa(rng.standard_normal(SAMPLE_RATE), rir)
    error = angular_error_rad(_intensity_direction(foa), direction_to_unit(label.azimuth, label.elevation))
    assert math.degrees(float(error)) < 1.0
    # Delay of the direct path = distance / speed of sound.
    assert abs(int(np.argmax(np.abs(rir[0]))) - label.distance / 343.0 * SAMPLE_RATE) <= 1.0


def test_each_reflection_is_encoded_from_its_own_direction():
    """The floor image arrives from below: its impulse in the RIR has Z/W = sin(its elevation)."""
    room = ShoeboxRoom((8.0, 7.0, 4.0), (0.2,) * 6)
    mic, source = np.array([3.0, 3.0, 2.0]), np.array([5.0, 4.0, 1.5])
    images = image_sources(room, source, mic, 1)
    assert len(images.positions) == 7
    floor_image = np.array([5.0, 4.0, -1.5])
    assert np.min(np.linalg.norm(images.positions - floor_image, axis=1)) < 1e-9
    cfg = AcousticsConfig(max_order=1, late_tail=False)
    rir = foa_rir(room, source, mic, np.eye(3), cfg, np.random.default_rng(0))
    rel = floor_image - mic
    delay = np.linalg.norm(rel) / 343.0 * SAMPLE_RATE
    k = round(delay)
    ratio = rir[2, k] / rir[0, k]
    assert ratio == pytest.approx(rel[2] / np.linalg.norm(rel), abs=0.02)
    assert ratio < -0.5


def test_late_tail_follows_the_room_reverberation():
    room = ShoeboxRoom((6.0, 5.0, 3.0), (0.15,) * 6)
    rng = np.random.default_rng(1)
    with_tail = foa_rir(room, [2, 2, 1.5], [4, 3, 1.2], np.eye(3), AcousticsConfig(max_order=4), rng)
    without = foa_rir(
        room, [2, 2, 1.5], [4, 3, 1.2], np.eye(3), AcousticsConfig(max_order=4, late_tail=False), rng
    )
    late = slice(int(0.2 * SAMPLE_RATE), int(0.3 * SAMPLE_RATE))
    assert with_tail.shape[1] > without.shape[1]
    assert np.sum(with_tail[0, late] ** 2) > 0.0
    # The energy decays by about 60 dB per RT60.
    rt60 = room.rt60_s()
    e1 = np.mean(with_tail[0, int(0.15 * SAMPLE_RATE) : int(0.2 * SAMPLE_RATE)] ** 2)
    e2 = np.mean(
        with_tail[0, int(0.15 * SAMPLE_RATE + rt60 / 3 * SAMPLE_RATE) :][: int(0.05 * SAMPLE_RATE)] ** 2
    )
    assert 10 * math.log10(e1 / e2) == pytest.approx(20.0, abs=5.0)


def test_time_varying_render_crossfades_between_responses():
    room = ShoeboxRoom((7.0, 6.0, 3.0), (0.3,) * 6)
    layout = SceneLayout(room)
    cfg = AcousticsConfig(direct_path_only=True)
    rng = np.random.default_rng(2)
    signal = rng.standard_normal(SAMPLE_RATE)
    mic = MicPose((3.0, 3.0, 1.2), 0.0)
    left, right = np.array([3.0, 5.5, 1.2]), np.array([3.0, 0.5, 1.2])
    static = layout.render_audio(signal, [mic], left, SAMPLE_RATE, cfg, rng)
    np.testing.assert_allclose(static, convolve_foa(signal, layout.rir(mic, left, cfg, rng)), atol=1e-9)
    moving = layout.render_audio(signal, [mic, mic], np.stack([left, right]), SAMPLE_RATE, cfg, rng)
    start, end = moving[:, : SAMPLE_RATE // 10], moving[:, -SAMPLE_RATE // 10 :]
    assert _intensity_direction(start)[1] > 0 > _intensity_direction(end)[1]  # from the left to the right
    with pytest.raises(ValueError, match="one source position per"):
        layout.render_audio(signal, [mic], np.stack([left, right]), SAMPLE_RATE, cfg, rng)
    with pytest.raises(ValueError, match="hop_samples"):
        convolve_foa_time_varying(signal, [np.zeros((4, 3))], 0)


def test_snr_is_set_on_the_active_part():
    s = generate_scene(
        21, replace(SMALL, none_probability=0.0, snr_db_range=(40.0, 40.0), second_source_probability=0)
    )
    # At 40 dB SNR the noise floor is far below the event: the loudest frames dwarf the quietest.
    assert event_power(s.audio[0].astype(np.float64), SAMPLE_RATE) > 100 * np.min(
        np.mean(s.audio[0].reshape(-1, 480).astype(np.float64) ** 2, axis=1)
    )


def test_second_source_labels():
    cfg = replace(SMALL, none_probability=0.0, second_source_probability=1.0)
    s = generate_scene(8, cfg)
    assert s.second is not None and s.second.class_id not in (0, s.class_id)
    assert s.second.distance >= cfg.source_distance_range_m[0]


def test_config_validation_names_the_key():
    with pytest.raises(ValueError, match="snr_db_range"):
        SceneConfig(snr_db_range=(10.0, 0.0))
    with pytest.raises(ValueError, match="visibility_mix"):
        SceneConfig(visibility_mix=(0.0, 0.0, 0.0))


def test_shards_round_trip(tmp_path):
    cfg = SceneConfig().with_image_size(48, 36)
    index_path = write_shards(tmp_path, 5, seed=7, config=cfg, workers=1, shard_size=2)
    index = json.loads(index_path.read_text())
    assert [s["count"] for s in index["shards"]] == [2, 2, 1]
    assert scene_config_from_dict(scene_config_to_dict(cfg)) == cfg
    reader = ShardReader(tmp_path)
    dataset = SceneShardDataset(tmp_path)
    assert len(reader) == len(dataset) == 5
    assert dataset.intrinsics == cfg.intrinsics and dataset.taxonomy == default_taxonomy()
    for i in (0, 3, 4):
        expected = generate_scene(sample_seed(7, i), cfg)
        item = dataset[i]
        np.testing.assert_array_equal(item["audio"], expected.audio)
        np.testing.assert_array_equal(item["depth_m"], expected.depth_m)
        np.testing.assert_array_equal(item["occluder_mask"], expected.occluder_mask)
        assert int(item["class_id"]) == expected.class_id
        assert float(item["azimuth"]) == pytest.approx(expected.azimuth, abs=1e-6)
        assert int(item["visibility"]) == int(expected.visibility)
    with pytest.raises(IndexError):
        reader[5]
    # A second run reuses the finished shards (same fingerprint) and leaves them unchanged.
    before = (tmp_path / "shard_00001" / "audio.npy").stat().st_mtime_ns
    write_shards(tmp_path, 5, seed=7, config=cfg, workers=1, shard_size=2)
    assert (tmp_path / "shard_00001" / "audio.npy").stat().st_mtime_ns == before


@pytest.mark.slow
def test_parallel_workers_write_the_same_data(tmp_path):
    cfg = SceneConfig().with_image_size(48, 36)
    write_shards(tmp_path / "one", 6, seed=2, config=cfg, workers=1, shard_size=2)
    write_shards(tmp_path / "two", 6, seed=2, config=cfg, workers=2, shard_size=2)
    one, two = ShardReader(tmp_path / "one"), ShardReader(tmp_path / "two")
    for i in range(6):
        np.testing.assert_array_equal(one[i]["audio"], two[i]["audio"])
        np.testing.assert_array_equal(one[i]["rgb"], two[i]["rgb"])


def test_synthesize_cli(tmp_path, capsys):
    out = tmp_path / "ds"
    sheet = tmp_path / "sheet.png"
    args = ["--out", str(out), "--n", "3", "--seed", "1", "--image-size", "64", "48", "--no-progress"]
    assert synthesize_main([*args, "--contact-sheet", str(sheet), "--contact-sheet-count", "2"]) == 0
    assert len(ShardReader(out)) == 3
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert synthesize_main(["--out", str(out), "--n", "0"]) == 2
    assert synthesize_main([*args[:4], "--sound-dir", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
