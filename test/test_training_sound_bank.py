"""The training config's real sound bank: per-split recordings, fallback, and the wide-room share."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from avi_ros.data.domain import WideProfile
from avi_ros.data.scene import generate_scene_and_geometry
from avi_ros.data.scene_config import SceneConfig
from training import config as training_config
from training.config import DataConfig, resolve_bank_split


def _bank(root, splits=("train", "val")):
    for split in splits:
        folder = root / split / "siren"
        folder.mkdir(parents=True)
        sf.write(folder / f"rec{split}__clip.flac", np.zeros(2400, dtype=np.float32), 24000)
    return root


def test_each_split_draws_from_its_own_bank_folder(tmp_path):
    bank = _bank(tmp_path / "bank")
    data = DataConfig(sound_bank=str(bank), camera_width=64, camera_height=48)
    assert data.scene_config("train").sound_dir == str((bank / "train").resolve())
    assert data.scene_config("val").sound_dir == str((bank / "val").resolve())
    assert data.scene_config().sound_dir is None  # no split named: the base scene settings


def test_a_missing_bank_falls_back_to_procedural_sounds_with_one_notice(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training_config, "_notified_missing_banks", set())
    missing = tmp_path / "nowhere"
    data = DataConfig(sound_bank=str(missing), camera_width=64, camera_height=48)
    assert data.scene_config("train").sound_dir is None
    assert data.scene_config("val").sound_dir is None
    err = capsys.readouterr().err
    assert err.count("no real sound bank") == 1 and "make sounds" in err and str(missing) in err


def test_auto_means_the_bank_that_make_sounds_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("AVI_ROS_SOUNDS", str(tmp_path))
    _bank(tmp_path / "bank", splits=("train",))
    assert resolve_bank_split("auto", "train") == (tmp_path / "bank" / "train").resolve()


def test_wide_probability_mixes_default_and_wide_rooms():
    base = replace(SceneConfig().with_image_size(32, 24), wide=WideProfile())
    default_heights = SceneConfig().mic_height_range_m

    def heights(probability: float) -> list[float]:
        cfg = replace(base, wide_probability=probability)
        return [generate_scene_and_geometry(seed, cfg)[1].mic.position_m[2] for seed in range(24)]

    outside = [not default_heights[0] <= h <= default_heights[1] for h in heights(0.0)]
    assert not any(outside)  # every scene in the default rooms
    assert any(not default_heights[0] <= h <= default_heights[1] for h in heights(1.0))


def test_wide_probability_is_validated():
    with pytest.raises(ValueError, match="wide_probability"):
        SceneConfig(wide_probability=1.5)
