"""Waveform augmentation of real clips: more recordings out of the few a thin class has.

A class with two real recordings gives the model two sources to learn, whatever the crop. Each
step below makes a clip sound like another device, another microphone or another take of the
same kind of source, while it stays a clip of its class:

1. mix in a second clip of the same class (two dogs, two horns) at a lower level;
2. speed: resample, so pitch and tempo change together (a bigger engine, a slower siren);
3. pitch shift without a tempo change (``librosa.effects.pitch_shift``, phase vocoder);
4. EQ: 1..``eq_max_bands`` random biquads (low shelf, high shelf, peak; RBJ cookbook) with
   ``scipy.signal.sosfilt`` (another microphone, loudspeaker or wall colour);
5. dynamic range compression (a feed-forward RMS compressor, as phone and camera audio has);
6. soft (tanh) or hard clipping (an overdriven recorder);
7. peak normalisation to 1 and a gain drawn from ``gain_db_range`` (<= 0 dB keeps |x| <= 1).

Each step applies with its own probability, in that order. ``augment_clip`` returns float32 of
the input's length. Only the training split uses it (see ``SceneConfig.clip_augmentation``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from fractions import Fraction

import librosa
import numpy as np
from scipy.signal import lfilter, resample_poly, sosfilt

_MIN_PITCH_SHIFT_SAMPLES = 2048  # the phase vocoder's frame; shorter clips skip the pitch shift
_COMPRESSOR_RMS_S = 0.01  # level detector time constant [s]
_COMPRESSOR_RELEASE_S = 0.08  # gain smoothing time constant [s]


@dataclass(frozen=True)
class ClipAugmentConfig:
    """Probabilities (0..1) and ranges of the augmentation steps (module docstring, in order).

    Levels in dB, frequencies in Hz; ``speed_range`` is a rate factor (1.2 plays 20 % faster and
    higher); ``compression_threshold_db_range`` is relative to the clip's peak.
    """

    mix_probability: float = 0.25  # mix in a second clip of the same class
    mix_gain_db_range: tuple[float, float] = (-12.0, -3.0)  # the second clip against the first
    speed_probability: float = 0.5
    speed_range: tuple[float, float] = (0.85, 1.15)
    pitch_probability: float = 0.3
    pitch_semitones_range: tuple[float, float] = (-2.0, 2.0)
    eq_probability: float = 0.6
    eq_max_bands: int = 3
    eq_gain_db_range: tuple[float, float] = (-9.0, 9.0)
    eq_frequency_range_hz: tuple[float, float] = (80.0, 8000.0)
    eq_q_range: tuple[float, float] = (0.5, 3.0)  # peak filters; shelves use slope 1
    compression_probability: float = 0.3
    compression_threshold_db_range: tuple[float, float] = (-30.0, -10.0)
    compression_ratio_range: tuple[float, float] = (2.0, 10.0)
    clipping_probability: float = 0.2
    clipping_drive_db_range: tuple[float, float] = (3.0, 15.0)
    hard_clipping_share: float = 0.3  # of the clipped clips; the others clip softly (tanh)
    gain_db_range: tuple[float, float] = (-6.0, 0.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("probability") or f.name == "hard_clipping_share":
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"ClipAugmentConfig.{f.name} must be in [0, 1], got {value}")
            elif isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(
                    f"ClipAugmentConfig.{f.name}: lower bound {value[0]} exceeds upper bound {value[1]}"
                )
        checks = (
            ("speed_range", self.speed_range[0] > 0, "positive rate factors"),
            ("eq_max_bands", self.eq_max_bands >= 1, "at least 1"),
            ("eq_frequency_range_hz", self.eq_frequency_range_hz[0] > 0, "positive frequencies"),
            ("eq_q_range", self.eq_q_range[0] > 0, "positive Q"),
            ("compression_ratio_range", self.compression_ratio_range[0] >= 1, "ratios >= 1"),
            ("gain_db_range", self.gain_db_range[1] <= 0, "gains <= 0 dB (the output peak stays <= 1)"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"ClipAugmentConfig.{name}: expected {expected}, got {getattr(self, name)}")


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _fit_length(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random n-sample crop of a longer x, or x zero-padded at a random offset when shorter."""
    if x.size >= n:
        start = int(rng.integers(x.size - n + 1))
        return x[start : start + n]
    out = np.zeros(n)
    start = int(rng.integers(n - x.size + 1))
    out[start : start + x.size] = x
    return out


def change_speed(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """x played ``factor`` times faster (pitch up by the same factor), back at len(x) samples."""
    ratio = Fraction(factor).limit_denominator(200)
    return _fit_length(resample_poly(x, ratio.denominator, ratio.numerator), x.size, rng)


def biquad_sos(kind: str, freq_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One second-order section [1, 6] of the RBJ Audio EQ Cookbook: ``low_shelf``,
    ``high_shelf`` (slope 1) or ``peak`` (quality ``q``) at freq_hz with gain_db."""
    a_gain = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * min(freq_hz, 0.45 * sample_rate) / sample_rate
    cos_w, sin_w = math.cos(w0), math.sin(w0)
    if kind == "peak":
        alpha = sin_w / (2.0 * q)
        b = [1 + alpha * a_gain, -2 * cos_w, 1 - alpha * a_gain]
        a = [1 + alpha / a_gain, -2 * cos_w, 1 - alpha / a_gain]
    elif kind in ("low_shelf", "high_shelf"):
        alpha = sin_w / 2.0 * math.sqrt(2.0)  # shelf slope S = 1
        root = 2.0 * math.sqrt(a_gain) * alpha
        sign = 1.0 if kind == "low_shelf" else -1.0
        b = [
            a_gain * ((a_gain + 1) - sign * (a_gain - 1) * cos_w + root),
            sign * 2 * a_gain * ((a_gain - 1) - sign * (a_gain + 1) * cos_w),
            a_gain * ((a_gain + 1) - sign * (a_gain - 1) * cos_w - root),
        ]
        a = [
            (a_gain + 1) + sign * (a_gain - 1) * cos_w + root,
            -sign * 2 * ((a_gain - 1) + sign * (a_gain + 1) * cos_w),
            (a_gain + 1) + sign * (a_gain - 1) * cos_w - root,
        ]
    else:
        raise ValueError(f"biquad kind must be low_shelf, high_shelf or peak, got {kind!r}")
    return (np.concatenate([b, a]) / a[0])[None]


def random_eq(
    x: np.ndarray, sample_rate: int, rng: np.random.Generator, cfg: ClipAugmentConfig
) -> np.ndarray:
    """x through 1..eq_max_bands random shelves and peaks (log-uniform centre frequencies)."""
    lo, hi = cfg.eq_frequency_range_hz
    sections = []
    for _ in range(int(rng.integers(1, cfg.eq_max_bands + 1))):
        kind = ("low_shelf", "high_shelf", "peak")[int(rng.integers(3))]
        freq = math.exp(_uniform(rng, (math.log(lo), math.log(hi))))
        sections.append(
            biquad_sos(
                kind, freq, _uniform(rng, cfg.eq_gain_db_range), _uniform(rng, cfg.eq_q_range), sample_rate
            )
        )
    return sosfilt(np.concatenate(sections), x)


def compress(x: np.ndarray, sample_rate: int, threshold_db: float, ratio: float) -> np.ndarray:
    """Feed-forward compressor: above ``threshold_db`` (relative to the peak) the RMS level
    (``_COMPRESSOR_RMS_S`` detector) rises only 1/ratio dB per dB; the gain is smoothed over
    ``_COMPRESSOR_RELEASE_S``."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        return x
    pole = math.exp(-1.0 / (_COMPRESSOR_RMS_S * sample_rate))
    rms = np.sqrt(np.maximum(lfilter([1.0 - pole], [1.0, -pole], (x / peak) ** 2), 1e-12))
    over_db = np.maximum(20.0 * np.log10(rms) - threshold_db, 0.0)
    gain_db = -over_db * (1.0 - 1.0 / ratio)
    smooth = math.exp(-1.0 / (_COMPRESSOR_RELEASE_S * sample_rate))
    gain_db = lfilter([1.0 - smooth], [1.0, -smooth], gain_db)
    return x * 10.0 ** (gain_db / 20.0)


def clip_waveform(x: np.ndarray, drive_db: float, hard: bool) -> np.ndarray:
    """x (peak-normalised) driven by ``drive_db`` into a hard limit at 1 or a tanh curve."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        return x
    driven = x / peak * 10.0 ** (drive_db / 20.0)
    return np.clip(driven, -1.0, 1.0) if hard else np.tanh(driven)


def augment_clip(
    clip: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    config: ClipAugmentConfig,
    same_class: Callable[[], np.ndarray] | None = None,
) -> np.ndarray:
    """An augmented copy of ``clip`` (float32 [n], the input's length) with peak 10**(g/20) for a
    gain g drawn from ``gain_db_range`` (0 for a silent clip).

    ``same_class`` returns another clip of the class with the same length (called only when the
    mix step is drawn); without it the mix step is skipped. Each step draws from ``rng`` in a
    fixed order, so a seed gives the same result.
    """
    x = np.asarray(clip, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"augment_clip: expected a mono clip [n], got shape {x.shape}")
    if sample_rate <= 0:
        raise ValueError(f"augment_clip: sample_rate must be positive, got {sample_rate}")
    cfg = config
    if rng.uniform() < cfg.mix_probability and same_class is not None:
        other = np.asarray(same_class(), dtype=np.float64)
        if other.shape != x.shape:
            raise ValueError(f"augment_clip: the same-class clip has shape {other.shape}, expected {x.shape}")
        x = x + 10.0 ** (_uniform(rng, cfg.mix_gain_db_range) / 20.0) * other
    if rng.uniform() < cfg.speed_probability:
        x = change_speed(x, _uniform(rng, cfg.speed_range), rng)
    if rng.uniform() < cfg.pitch_probability and x.size >= _MIN_PITCH_SHIFT_SAMPLES:
        x = librosa.effects.pitch_shift(x, sr=sample_rate, n_steps=_uniform(rng, cfg.pitch_semitones_range))
    if rng.uniform() < cfg.eq_probability:
        x = random_eq(x, sample_rate, rng, cfg)
    if rng.uniform() < cfg.compression_probability:
        threshold = _uniform(rng, cfg.compression_threshold_db_range)
        x = compress(x, sample_rate, threshold, _uniform(rng, cfg.compression_ratio_range))
    if rng.uniform() < cfg.clipping_probability:
        drive = _uniform(rng, cfg.clipping_drive_db_range)
        x = clip_waveform(x, drive, rng.uniform() < cfg.hard_clipping_share)
    gain = 10.0 ** (_uniform(rng, cfg.gain_db_range) / 20.0)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    out = x * (gain / peak) if peak > 0 and np.isfinite(peak) else np.zeros_like(x)
    return out.astype(np.float32)
