"""Scenes from a sound bank: real clips mixed with procedural ones, real background at a set SNR,
and real non-hazard sounds that stay class 'none'."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import avi_ros.data.scene_audio as scene_module
from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.acoustics import event_power, scale_to_snr
from avi_ros.data.background import BACKGROUND_LABEL, loop_to_fill, real_ambience
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_labels import SceneContent
from avi_ros.data.sound_bank import SoundBank
from avi_ros.taxonomy import Visibility, default_taxonomy

HAZARD_TONE_HZ = 3000.0
NONE_TONE_HZ = 1500.0


def _tone(freq_hz: float, seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * freq_hz * t)


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory) -> Path:
    """A tiny bank split: a 3 kHz tone per hazard class, a 1.5 kHz 'none' tone, and short
    low-passed noise 'background' clips (shorter than a scene, so they must loop)."""
    root = tmp_path_factory.mktemp("bank") / "train"
    for name in default_taxonomy().names[1:]:
        (root / name).mkdir(parents=True)
        sf.write(root / name / "tone.flac", _tone(HAZARD_TONE_HZ, 1.5), SAMPLE_RATE)
    (root / "none").mkdir()
    sf.write(root / "none" / "music.flac", _tone(NONE_TONE_HZ, 2.0), SAMPLE_RATE)
    (root / BACKGROUND_LABEL).mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        noise = np.cumsum(rng.standard_normal(int(0.4 * SAMPLE_RATE)))  # brown: wind-like rumble
        noise -= noise.mean()
        sf.write(root / BACKGROUND_LABEL / f"wind{k}.flac", 0.5 * noise / np.abs(noise).max(), SAMPLE_RATE)
    return root


def _band_share(audio_w: np.ndarray, freq_hz: float, half_width_hz: float = 30.0) -> float:
    """Share of the W channel's energy within +-half_width_hz of freq_hz."""
    spectrum = np.abs(np.fft.rfft(audio_w.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(audio_w.size, 1.0 / SAMPLE_RATE)
    return float(spectrum[np.abs(freqs - freq_hz) < half_width_hz].sum() / spectrum.sum())


def _config(bank_dir: Path, **overrides) -> SceneConfig:
    settings = {
        "sound_dir": str(bank_dir),
        "none_probability": 0.0,
        "second_source_probability": 0.0,
        "snr_db_range": (30.0, 30.0),
        **overrides,
    }
    return replace(SceneConfig().with_image_size(32, 24), **settings)


def test_bank_loads_hazards_negatives_and_background(bank_dir):
    bank = SoundBank.from_folder(bank_dir, (*default_taxonomy().names, BACKGROUND_LABEL))
    assert bank.has("siren") and bank.has("none") and bank.has(BACKGROUND_LABEL)


def test_real_clips_and_procedural_sounds_are_mixed(bank_dir):
    def real_share(probability: float) -> float:
        cfg = _config(bank_dir, real_sound_probability=probability)
        scenes = [generate_scene(seed, cfg) for seed in range(16)]
        return float(np.mean([_band_share(s.audio[0], HAZARD_TONE_HZ) > 0.5 for s in scenes]))

    assert real_share(1.0) == 1.0
    assert real_share(0.0) == 0.0  # every class keeps its procedural model
    assert 0.2 <= real_share(0.5) <= 0.8


def test_short_background_clips_loop_instead_of_stopping():
    clip = np.zeros(1000, dtype=np.float32)
    clip[300:500] = np.linspace(0.1, 1.0, 200)
    filled = loop_to_fill(clip)
    assert filled.shape == clip.shape and np.count_nonzero(filled) == clip.size
    np.testing.assert_array_equal(filled[:200], clip[300:500])
    full = np.ones(10, dtype=np.float32)
    assert loop_to_fill(full) is full


def test_scale_to_snr_sets_the_ratio_of_event_to_background_power(bank_dir):
    bank = SoundBank.from_folder(bank_dir, (BACKGROUND_LABEL,))
    rng = np.random.default_rng(1)
    background = real_ambience(rng, bank, SAMPLE_RATE)
    assert np.count_nonzero(background[0]) == SAMPLE_RATE  # looped, no silent gap
    bark = np.zeros(SAMPLE_RATE)
    bark[5000:8000] = rng.standard_normal(3000)  # a short event: SNR counts while it sounds
    for snr_db in (-10.0, 0.0, 12.5, 30.0):
        scaled = scale_to_snr(bark, background, snr_db, SAMPLE_RATE)
        measured = 10 * math.log10(event_power(bark, SAMPLE_RATE) / np.var(scaled[0]))
        assert measured == pytest.approx(snr_db, abs=0.01)


def test_scene_mixes_real_background_at_the_drawn_snr(bank_dir, monkeypatch):
    """Spy on the scene's own mixing step: the background it scales is the real ambience, and the
    foreground-to-background ratio it produces is the Sample's snr_db, inside the configured range."""
    mixes, backgrounds = [], []
    real_scale, real_draw = scene_module.scale_to_snr, scene_module.draw_background

    def spy_scale(foreground_w, background, snr_db, rate):
        scaled = real_scale(foreground_w, background, snr_db, rate)
        mixes.append((np.asarray(foreground_w).copy(), scaled.copy()))
        return scaled

    def spy_draw(*args):
        background, is_real = real_draw(*args)
        backgrounds.append(is_real)
        return background, is_real

    monkeypatch.setattr(scene_module, "scale_to_snr", spy_scale)
    monkeypatch.setattr(scene_module, "draw_background", spy_draw)
    cfg = _config(bank_dir, snr_db_range=(-10.0, 30.0), real_background_probability=1.0)
    for seed in range(6):
        sample = generate_scene(seed, cfg)
        foreground_w, background = mixes[-1]
        measured = 10 * math.log10(event_power(foreground_w, SAMPLE_RATE) / np.var(background[0]))
        assert measured == pytest.approx(sample.snr_db, abs=0.01)
        assert -10.0 <= sample.snr_db <= 30.0 and sample.content == SceneContent.HAZARD
    assert all(backgrounds) and len(backgrounds) == 6
    # Without a 'background' label the procedural diffuse noise is used instead.
    backgrounds.clear()
    generate_scene(0, replace(cfg, sound_dir=None))
    assert backgrounds == [False]


def test_a_real_non_hazard_sound_is_labelled_none(bank_dir):
    cfg = _config(bank_dir, none_probability=1.0, none_sound_probability=1.0)
    s = generate_scene(3, cfg)
    assert s.class_id == 0 and s.class_name == "none" and s.content == SceneContent.NON_HAZARD_SOUND
    assert (s.azimuth, s.elevation, s.distance) == (0.0, 0.0, 0.0) and not s.direction.any()
    assert s.visibility == Visibility.OUT_OF_VIEW and not s.hazard_mask.any() and s.second is None
    assert s.snr_db == pytest.approx(30.0)  # as loud over the background as a hazard would be
    assert _band_share(s.audio[0], NONE_TONE_HZ) > 0.5  # the loud sound is the 'none' clip
    assert s.risk == default_taxonomy().risk_level(0, 0.0)
    quiet = generate_scene(3, replace(cfg, none_sound_probability=0.0))
    assert quiet.class_id == 0 and quiet.content == SceneContent.BACKGROUND_ONLY and math.isnan(quiet.snr_db)
    assert _band_share(quiet.audio[0], NONE_TONE_HZ) < 0.05


def test_share_of_non_hazard_sounds_follows_the_config(bank_dir):
    cfg = _config(bank_dir, none_probability=1.0, none_sound_probability=0.5)
    contents = [generate_scene(seed, cfg).content for seed in range(20)]
    assert set(contents) == {SceneContent.NON_HAZARD_SOUND, SceneContent.BACKGROUND_ONLY}


def test_config_rejects_probabilities_outside_zero_one():
    with pytest.raises(ValueError, match="real_sound_probability"):
        SceneConfig(real_sound_probability=1.5)
    with pytest.raises(ValueError, match="none_sound_probability"):
        SceneConfig(none_sound_probability=-0.1)
