"""Waveform augmentation of real clips: length, finiteness and peak kept, each step does what it
says (speed and pitch move a tone, shelves and peaks have their gains, compression narrows the
dynamics, clipping limits), reproducible per seed, and bad settings named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.signal import sosfreqz

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.clip_augment import ClipAugmentConfig, augment_clip, biquad_sos


def _every_step(probability: float) -> dict[str, float]:
    """Each step's ``*_probability`` field of ClipAugmentConfig set to ``probability``: a step added
    to the config is switched with the others here without naming it."""
    return {
        f.name: probability for f in dataclasses.fields(ClipAugmentConfig) if f.name.endswith("_probability")
    }


OFF = ClipAugmentConfig(**_every_step(0.0), gain_db_range=(0.0, 0.0))
ALL_ON = ClipAugmentConfig(**_every_step(1.0))


def _tone(freq_hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.sin(2 * np.pi * freq_hz * t).astype(np.float32)


def _clip(seed: int) -> np.ndarray:
    """A peak-1 clip with a tone, noise bursts and a loud and a quiet half, as bank clips are."""
    rng = np.random.default_rng(seed)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    x = np.sin(2 * np.pi * rng.uniform(200, 900) * t) + 0.5 * rng.standard_normal(t.size) * (t % 0.3 < 0.05)
    x *= np.where(t < 0.5, 1.0, 0.1)
    return (x / np.abs(x).max()).astype(np.float32)


def _dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE)[np.argmax(spectrum)])


@pytest.mark.parametrize("seed", range(8))
def test_augmented_clip_keeps_length_finite_and_peak_bounds_and_changes(seed):
    clip = _clip(seed)
    calls = []

    def partner() -> np.ndarray:
        calls.append(1)
        return _clip(seed + 100)

    out = augment_clip(clip, SAMPLE_RATE, np.random.default_rng(seed), ALL_ON, partner)
    assert out.shape == clip.shape and out.dtype == np.float32 and np.isfinite(out).all()
    low_db, high_db = ALL_ON.gain_db_range
    assert 10 ** (low_db / 20) - 1e-6 <= np.abs(out).max() <= 10 ** (high_db / 20) + 1e-6
    assert calls == [1]
    scaled = out / np.abs(out).max()
    assert np.sqrt(np.mean((scaled - clip) ** 2)) > 0.05  # not the clip again
    again = augment_clip(clip, SAMPLE_RATE, np.random.default_rng(seed), ALL_ON, partner)
    np.testing.assert_array_equal(out, again)


def test_all_steps_off_only_normalises():
    clip = 0.5 * _clip(0)
    out = augment_clip(clip, SAMPLE_RATE, np.random.default_rng(0), OFF, lambda: pytest.fail("mixed"))
    np.testing.assert_allclose(out, clip / np.abs(clip).max(), atol=1e-6)


def test_speed_moves_pitch_by_the_factor():
    cfg = dataclasses.replace(OFF, speed_probability=1.0, speed_range=(1.2, 1.2))
    out = augment_clip(_tone(500.0), SAMPLE_RATE, np.random.default_rng(0), cfg)
    assert _dominant_hz(out) == pytest.approx(600.0, abs=2.0)


def test_pitch_shift_moves_pitch_by_the_semitones():
    cfg = dataclasses.replace(OFF, pitch_probability=1.0, pitch_semitones_range=(3.0, 3.0))
    out = augment_clip(_tone(440.0), SAMPLE_RATE, np.random.default_rng(0), cfg)
    assert _dominant_hz(out) == pytest.approx(440.0 * 2 ** (3 / 12), abs=4.0)
    assert out.shape == (SAMPLE_RATE,)


@pytest.mark.parametrize(
    ("kind", "gain_db", "low_gain_db", "high_gain_db"),
    [("low_shelf", 6.0, 6.0, 0.0), ("high_shelf", -9.0, 0.0, -9.0), ("low_shelf", -4.0, -4.0, 0.0)],
)
def test_shelves_reach_their_gain_on_their_side(kind, gain_db, low_gain_db, high_gain_db):
    sos = biquad_sos(kind, 1000.0, gain_db, 1.0, SAMPLE_RATE)
    _, response = sosfreqz(sos, worN=[20.0, 11000.0], fs=SAMPLE_RATE)
    db = 20 * np.log10(np.abs(response))
    assert db[0] == pytest.approx(low_gain_db, abs=0.3) and db[1] == pytest.approx(high_gain_db, abs=0.6)


def test_peak_filter_has_its_gain_at_its_centre_and_none_far_away():
    sos = biquad_sos("peak", 2000.0, 8.0, 2.0, SAMPLE_RATE)
    _, response = sosfreqz(sos, worN=[2000.0, 50.0, 11500.0], fs=SAMPLE_RATE)
    db = 20 * np.log10(np.abs(response))
    assert db[0] == pytest.approx(8.0, abs=0.05) and abs(db[1]) < 0.2 and abs(db[2]) < 0.5
    with pytest.raises(ValueError, match="biquad kind"):
        biquad_sos("notch", 2000.0, 8.0, 2.0, SAMPLE_RATE)


def test_compression_narrows_the_loud_to_quiet_ratio():
    clip = _tone(300.0) * np.where(np.arange(SAMPLE_RATE) < SAMPLE_RATE // 2, 1.0, 0.05).astype(np.float32)
    cfg = dataclasses.replace(
        OFF,
        compression_probability=1.0,
        compression_threshold_db_range=(-30.0, -30.0),
        compression_ratio_range=(8.0, 8.0),
    )
    out = augment_clip(clip, SAMPLE_RATE, np.random.default_rng(0), cfg)

    def loud_to_quiet_db(x: np.ndarray) -> float:
        loud, quiet = x[2_000:10_000], x[16_000:22_000]
        return 20 * np.log10(np.sqrt(np.mean(loud**2)) / np.sqrt(np.mean(quiet**2)))

    assert loud_to_quiet_db(clip) == pytest.approx(26.0, abs=0.5)
    assert loud_to_quiet_db(out) < 10.0


def test_hard_clipping_flattens_the_peaks_and_soft_clipping_rounds_them():
    hard = dataclasses.replace(
        OFF, clipping_probability=1.0, clipping_drive_db_range=(12.0, 12.0), hard_clipping_share=1.0
    )
    out = augment_clip(_tone(200.0), SAMPLE_RATE, np.random.default_rng(0), hard)
    assert np.mean(np.abs(out) >= 0.999) > 0.5  # a 4x driven sine sits at the limit most of the time
    soft = dataclasses.replace(hard, hard_clipping_share=0.0)
    rounded = augment_clip(_tone(200.0), SAMPLE_RATE, np.random.default_rng(0), soft)
    assert np.mean(np.abs(rounded) >= 0.999) < np.mean(np.abs(out) >= 0.999)
    assert not np.allclose(rounded, _tone(200.0), atol=0.05)


def test_mix_adds_a_quieter_clip_of_the_same_class():
    cfg = dataclasses.replace(OFF, mix_probability=1.0, mix_gain_db_range=(-6.0, -6.0))
    out = augment_clip(_tone(300.0), SAMPLE_RATE, np.random.default_rng(0), cfg, lambda: _tone(1000.0))
    spectrum = np.abs(np.fft.rfft(out))
    freqs = np.fft.rfftfreq(out.size, 1.0 / SAMPLE_RATE)
    ratio = spectrum[np.argmin(np.abs(freqs - 1000))] / spectrum[np.argmin(np.abs(freqs - 300))]
    assert 20 * np.log10(ratio) == pytest.approx(-6.0, abs=0.1)


def test_a_silent_clip_stays_silent_and_bad_input_is_named():
    out = augment_clip(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, np.random.default_rng(0), ALL_ON)
    assert out.shape == (SAMPLE_RATE,) and not out.any()
    with pytest.raises(ValueError, match="mono"):
        augment_clip(np.zeros((2, 10), np.float32), SAMPLE_RATE, np.random.default_rng(0), OFF)
    with pytest.raises(ValueError, match="same-class clip"):
        augment_clip(_tone(300.0), SAMPLE_RATE, np.random.default_rng(0), ALL_ON, lambda: np.zeros(10))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("speed_probability", 1.5, "speed_probability must be in"),
        ("speed_range", (1.2, 0.8), "speed_range: lower bound"),
        ("speed_range", (0.0, 1.0), "speed_range: expected positive"),
        ("gain_db_range", (-3.0, 3.0), "gain_db_range: expected gains <= 0"),
        ("compression_ratio_range", (0.5, 2.0), "compression_ratio_range: expected ratios"),
        ("eq_max_bands", 0, "eq_max_bands: expected at least 1"),
    ],
)
def test_bad_settings_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        ClipAugmentConfig(**{field: value})
