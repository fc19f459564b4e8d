"""Procedural families and clip augmentation in scene generation: off by default (nothing drawn,
scenes unchanged), in the training split only, next to the real bank and never instead of it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from fake_bank import make_bank

import avi_ros.data.scene_audio as scene_module
from avi_ros.data.clip_augment import ClipAugmentConfig
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.shards import scene_config_from_dict, scene_config_to_dict
from avi_ros.data.sound_bank import SoundBank
from avi_ros.data.synthesize import build_parser, config_from_args
from avi_ros.data.synthesize import main as synthesize_main
from training.config import DataConfig, config_from_dict

SCENES = range(6)
KNOBS = {"procedural_probability": 0.4, "clip_augmentation": ClipAugmentConfig()}


@pytest.fixture(scope="module")
def bank_root(tmp_path_factory):
    return make_bank(tmp_path_factory.mktemp("bank"), splits=("train", "val"))


@pytest.fixture
def counted(monkeypatch):
    """Counts of procedural clips, augmented clips and real bank draws while scenes are made."""
    counts = {"procedural": 0, "augmented": 0, "real": 0}

    def wrap(name, function):
        def counting(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)

        return counting

    monkeypatch.setattr(
        scene_module, "synthesize_procedural", wrap("procedural", scene_module.synthesize_procedural)
    )
    monkeypatch.setattr(scene_module, "augment_clip", wrap("augmented", scene_module.augment_clip))
    monkeypatch.setattr(SoundBank, "draw", wrap("real", SoundBank.draw))
    return counts


def _data_config(bank_root, **scene) -> DataConfig:
    base = SceneConfig(real_sound_probability=1.0, hazard_count_weights=(0.0, 0.0, 0.0, 1.0), **scene)
    return DataConfig(sound_bank=str(bank_root), camera_width=32, camera_height=24, scene=base)


def test_defaults_are_off_and_draw_nothing(bank_root, counted):
    cfg = _data_config(bank_root).scene_config("train")
    assert cfg.procedural_probability == 0.0 and cfg.clip_augmentation is None
    samples = [generate_scene(seed, cfg) for seed in SCENES]
    assert counted["procedural"] == 0 and counted["augmented"] == 0 and counted["real"] > 0
    # The same scenes as a config that never heard of the knobs (the explicit defaults).
    explicit = dataclasses.replace(cfg, procedural_probability=0.0, clip_augmentation=None)
    for seed, sample in zip(SCENES, samples, strict=True):
        np.testing.assert_array_equal(generate_scene(seed, explicit).audio, sample.audio)


def test_train_split_mixes_procedural_and_augmented_real_clips_and_val_stays_real(bank_root, counted):
    data = _data_config(bank_root, **KNOBS)
    train, val = data.scene_config("train"), data.scene_config("val")
    assert train.sound_dir.endswith("train") and val.sound_dir.endswith("val")
    assert train.procedural_probability == 0.4 and train.clip_augmentation == ClipAugmentConfig()

    for seed in SCENES:
        generate_scene(seed, train)
    assert counted["procedural"] > 0 and counted["augmented"] > 0
    assert counted["real"] > counted["augmented"]  # the bank is still drawn (plus mix partners)

    counted.update(procedural=0, augmented=0, real=0)
    for seed in SCENES:
        generate_scene(seed, val)
    assert counted["procedural"] == 0 and counted["augmented"] == 0 and counted["real"] > 0


def test_held_out_uses_never_get_the_knobs(bank_root):
    data = _data_config(bank_root, **KNOBS)
    for split in (None, "val", "test"):
        held_out = data.scene_config(split)
        assert held_out.procedural_probability == 0.0 and held_out.clip_augmentation is None


def test_knobs_change_the_training_scenes(bank_root):
    train_off = _data_config(bank_root).scene_config("train")
    train_on = _data_config(bank_root, **KNOBS).scene_config("train")
    differ = [
        not np.array_equal(generate_scene(seed, train_off).audio, generate_scene(seed, train_on).audio)
        for seed in SCENES
    ]
    assert any(differ)


def test_knobs_round_trip_through_shards_and_yaml():
    cfg = SceneConfig(
        procedural_probability=0.3,
        clip_augmentation=ClipAugmentConfig(speed_range=(0.9, 1.1), eq_max_bands=2),
    )
    assert scene_config_from_dict(scene_config_to_dict(cfg)) == cfg
    assert scene_config_from_dict(scene_config_to_dict(SceneConfig())).clip_augmentation is None
    # The lines the README gives, under data.scene of a training config.
    text = """
    data:
      scene:
        procedural_probability: 0.3
        clip_augmentation: {}
    """
    experiment = config_from_dict(yaml.safe_load(text))
    assert experiment.data.scene.procedural_probability == 0.3
    assert experiment.data.scene.clip_augmentation == ClipAugmentConfig()


def test_bad_procedural_probability_is_named():
    with pytest.raises(ValueError, match="procedural_probability"):
        SceneConfig(procedural_probability=1.5)


def test_synthesize_command_line_sets_the_knobs_and_names_a_bad_value(capsys):
    args = build_parser().parse_args(
        ["--out", "x", "--n", "1", "--procedural-probability", "0.25", "--augment-clips"]
    )
    cfg = config_from_args(args)
    assert cfg.procedural_probability == 0.25 and cfg.clip_augmentation == ClipAugmentConfig()
    plain = config_from_args(build_parser().parse_args(["--out", "x", "--n", "1"]))
    assert plain.procedural_probability == 0.0 and plain.clip_augmentation is None
    assert synthesize_main(["--out", "x", "--n", "1", "--procedural-probability", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--procedural-probability" in err[0]
