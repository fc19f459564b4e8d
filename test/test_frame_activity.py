"""Labels follow what can be heard: per-frame activity of real clips, crops that hold the sound."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from avi_ros.data.scene_labels import frame_activity
from avi_ros.data.shards import FORMAT_VERSION
from avi_ros.data.sound_bank import SoundBank
from training.config import SplitConfig
from training.data import accdoa_target_of_scene
from training.splits import ensure_scenes

FS = 24000


def _burst_clip(seconds: float, burst_at_s: float, burst_s: float = 0.2) -> np.ndarray:
    clip = np.zeros(round(seconds * FS), dtype=np.float32)
    start = round(burst_at_s * FS)
    clip[start : start + round(burst_s * FS)] = np.sin(np.arange(round(burst_s * FS)) * 0.3)
    return clip


def test_frame_activity_marks_only_the_frames_where_the_source_sounds():
    activity = frame_activity(_burst_clip(1.0, 0.5), FS)
    assert activity.tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0]
    assert frame_activity(np.zeros(FS), FS).sum() == 0


def test_accdoa_target_is_active_only_where_the_source_sounds():
    fields = {
        "class_id": 2,
        "azimuth": 0.5,
        "elevation": 0.0,
        "second_class_id": -1,
        "second_azimuth": 0.0,
        "second_elevation": 0.0,
        "activity": np.array([0, 0, 1, 1, 1, 0, 0, 0, 0, 0], dtype=np.float32),
    }
    target = accdoa_target_of_scene(fields, frames=10, tracks=3, classes=9)
    active = np.linalg.norm(target[:, 0, :, 1], axis=-1) > 0.5
    assert active.tolist() == [False, False, True, True, True, False, False, False, False, False]
    # A coarser model resolution resamples the activity to its own frames.
    coarse = accdoa_target_of_scene(fields, frames=5, tracks=3, classes=9)
    assert (np.linalg.norm(coarse[:, 0, :, 1], axis=-1) > 0.5).tolist() == [False, True, True, False, False]


def test_a_crop_of_a_long_recording_always_holds_the_sound(tmp_path):
    folder = tmp_path / "dog_bark"
    folder.mkdir()
    sf.write(folder / "long.flac", _burst_clip(20.0, 12.3), FS)  # 20 s, one 0.2 s bark
    bank = SoundBank.from_folder(tmp_path, ["dog_bark"])
    rng = np.random.default_rng(0)
    for _ in range(30):
        crop = bank.draw("dog_bark", rng, FS)
        # Peak-normalised; with the bark inside, the crop is mostly silence around a loud burst.
        assert np.abs(crop).max() == 1.0 and frame_activity(crop, FS).sum() >= 1
        assert np.mean(np.abs(crop) > 0.1) > 0.05


def test_scenes_of_an_older_shard_format_are_generated_again(tmp_path):
    from avi_ros.data.scene_config import SceneConfig

    scene = SceneConfig().with_image_size(32, 24)
    split = SplitConfig(2, 5)
    ensure_scenes(tmp_path, split, scene, workers=1, progress=False)
    index = tmp_path / "index.json"
    meta = json.loads(index.read_text())
    meta["version"] = FORMAT_VERSION - 1
    index.write_text(json.dumps(meta))
    ensure_scenes(tmp_path, split, scene, workers=1, progress=False)
    assert json.loads(index.read_text())["version"] == FORMAT_VERSION
