"""Wide-range procedural families: well-formed, reproducible, and physically what they claim
(a siren's pitch follows its sweep, an engine's harmonics sit at the firing rate's multiples)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.procedural import (
    PROCEDURAL_FAMILIES,
    SIREN_RANGE_HZ,
    EngineParams,
    draw_engine_params,
    render_engine,
    siren,
    siren_track,
    synthesize_procedural,
)
from avi_ros.data.signals import SIGNAL_MODELS
from avi_ros.taxonomy import default_taxonomy


def test_every_hazard_class_has_a_family():
    assert sorted(PROCEDURAL_FAMILIES) == sorted(default_taxonomy().names[1:])


@pytest.mark.parametrize("name", sorted(PROCEDURAL_FAMILIES))
@pytest.mark.parametrize("seconds", [0.5, 1.0])
def test_family_is_well_formed_reproducible_and_varied(name, seconds):
    n = round(seconds * SAMPLE_RATE)
    for seed in range(4):
        a = synthesize_procedural(name, np.random.default_rng(seed), n, SAMPLE_RATE)
        b = synthesize_procedural(name, np.random.default_rng(seed), n, SAMPLE_RATE)
        assert a.shape == (n,) and a.dtype == np.float32 and np.isfinite(a).all()
        assert np.max(np.abs(a)) == pytest.approx(1.0)
        assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) > 0.005  # something sounds
        np.testing.assert_array_equal(a, b)
    c = synthesize_procedural(name, np.random.default_rng(99), n, SAMPLE_RATE)
    assert not np.allclose(a, c)


def test_unknown_class_and_bad_length_are_refused():
    with pytest.raises(KeyError, match="known"):
        synthesize_procedural("unicorn", np.random.default_rng(0), 100, SAMPLE_RATE)
    with pytest.raises(ValueError, match="n_samples"):
        synthesize_procedural("siren", np.random.default_rng(0), 0, SAMPLE_RATE)


def test_families_are_not_the_fixed_scene_models():
    """The thin classes get new sounds, not their default-scene model again."""
    for name in sorted(set(PROCEDURAL_FAMILIES) - {"footsteps"}):
        wide = synthesize_procedural(name, np.random.default_rng(1), SAMPLE_RATE, SAMPLE_RATE)
        fixed = SIGNAL_MODELS[name](np.random.default_rng(1), SAMPLE_RATE, SAMPLE_RATE)
        assert not np.allclose(wide, fixed), name


def _peak_track_hz(x: np.ndarray, n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (not centred): the frequency [Hz] of the strongest STFT bin (parabolic
    interpolation) and whether the frame sounds (within 30 dB of the loudest)."""
    mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, center=False, window="hann"))
    k = np.clip(np.argmax(mag, axis=0), 1, mag.shape[0] - 2)
    cols = np.arange(mag.shape[1])
    left, mid, right = (np.log(mag[k + d, cols] + 1e-12) for d in (-1, 0, 1))
    offset = 0.5 * (left - right) / np.where(left - 2 * mid + right == 0, 1e-12, left - 2 * mid + right)
    energy = (mag**2).sum(axis=0)
    return (k + offset) * SAMPLE_RATE / n_fft, energy >= energy.max() * 1e-3


@pytest.mark.parametrize("seed", range(10))
def test_siren_pitch_follows_its_sweep_within_the_range(seed):
    n, n_fft, hop = 2 * SAMPLE_RATE, 512, 128
    track = siren_track(np.random.default_rng(seed), n, SAMPLE_RATE)
    x = siren(np.random.default_rng(seed), n, SAMPLE_RATE)
    assert SIREN_RANGE_HZ[0] <= track.min() and track.max() <= SIREN_RANGE_HZ[1]
    measured, sounding = _peak_track_hz(x, n_fft, hop)
    frames = np.lib.stride_tricks.sliding_window_view(track, n_fft)[::hop][: measured.size]
    tolerance = 2.0 * SAMPLE_RATE / n_fft  # two bins
    inside = (measured >= frames.min(axis=1) - tolerance) & (measured <= frames.max(axis=1) + tolerance)
    assert inside[sounding].mean() >= 0.95, (seed, inside[sounding].mean())
    # It sweeps: the measured pitch covers most of the span the track covers in the clip.
    measured_span = np.percentile(measured[sounding], 98) - np.percentile(measured[sounding], 2)
    assert measured_span >= 0.6 * (track.max() - track.min()) - tolerance


def test_sirens_cover_a_wide_pitch_range_over_seeds():
    lows, highs = zip(
        *[
            (t.min(), t.max())
            for t in (siren_track(np.random.default_rng(s), 48_000, SAMPLE_RATE) for s in range(60))
        ],
        strict=True,
    )
    assert min(lows) < 450 and max(highs) > 1700  # the fixed scene model stays within 490..1800


def _amplitude_near(
    spectrum: np.ndarray, freqs: np.ndarray, f_hz: float, width_hz: float
) -> tuple[float, float]:
    band = np.abs(freqs - f_hz) <= width_hz
    k = np.argmax(np.where(band, spectrum, -np.inf))
    return float(spectrum[k]), float(freqs[k])


@pytest.mark.parametrize(("cylinders", "rpm"), [(4, 1800.0), (6, 900.0), (8, 3000.0), (3, 2400.0)])
def test_engine_harmonics_sit_at_multiples_of_the_firing_rate(cylinders, rpm):
    firing_hz = rpm * cylinders / 120.0
    n = 2 * SAMPLE_RATE
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    for seed in range(3):
        x = render_engine(
            EngineParams(cylinders, rpm, rpm, 0.5, 0.5), np.random.default_rng(seed), n, SAMPLE_RATE
        )
        spectrum = np.abs(np.fft.rfft(x * np.hanning(n)))
        floor = np.median(spectrum[(freqs > 10) & (freqs < 1000)])
        for m in range(1, 5):
            # The strongest line within half a firing rate of m x firing is at m x firing.
            amp, at = _amplitude_near(spectrum, freqs, m * firing_hz, 0.45 * firing_hz)
            assert abs(at - m * firing_hz) <= max(1.5, 0.01 * m * firing_hz), (seed, m, at)
            assert amp > 10.0 * floor, (seed, m)


def test_engine_rpm_sweep_moves_the_firing_rate():
    n = 2 * SAMPLE_RATE
    x = render_engine(EngineParams(4, 1200.0, 3600.0, 0.8, 0.8), np.random.default_rng(0), n, SAMPLE_RATE)
    quarter = n // 4
    freqs = np.fft.rfftfreq(quarter, 1.0 / SAMPLE_RATE)

    def fundamental(part: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(part * np.hanning(quarter)))
        return _amplitude_near(spectrum, freqs, 80.0, 60.0)[1]  # firing 40 .. 120 Hz

    start, end = fundamental(x[:quarter]), fundamental(x[-quarter:])
    assert start < 50.0 and end > 110.0, (start, end)


def test_engine_parameters_span_idle_to_high_revs():
    params = [draw_engine_params(np.random.default_rng(s)) for s in range(200)]
    rpms = [p.rpm_start for p in params] + [p.rpm_end for p in params]
    assert min(rpms) < 700 and max(rpms) > 5000
    assert {p.cylinders for p in params} >= {3, 4, 6, 8}
