"""FOA audio at the edge: PCM decoding, ambisonic conventions and resampling.

Internally every FOA signal is float32, shape [4, samples], ACN channel order (W, Y, Z, X)
with SN3D normalisation (AmbiX), at ``SAMPLE_RATE``. FuMa and N3D inputs and other sample
rates are converted once, here, for the node, the bag replay and the dataset readers alike.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from avi_ros.events import BAD_CHANNELS, BAD_FORMAT, BAD_RATE, EMPTY, NON_FINITE, OUT_OF_RANGE, TRUNCATED

SAMPLE_RATE = 24_000  # Hz, the DCASE2023 SELD rate.
FOA_CHANNELS = 4
# Sample rates a microphone driver can have [Hz]. Outside them a chunk is rejected: resampling
# costs CPU and memory in proportion to 24 kHz / rate (a 480-sample chunk "at 1 Hz" is 8 minutes
# of audio), and above 768 kHz the polyphase ratio no longer fits a bounded filter.
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 768_000
# float32 PCM is nominally in [-1, 1]. Peaks beyond 100 (40 dB over full scale) are not audio but a
# driver writing another format as float32; their power would overflow the features to inf.
MAX_FLOAT_AMPLITUDE = 100.0

PCM_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
}
# Full-scale value of each integer format, so decoded audio lies in [-1, 1).
_PCM_SCALE = {"float32": 1.0, "int16": 32768.0, "int32": 2147483648.0}

CHANNEL_ORDERS = ("ACN", "FuMa")
NORMALIZATIONS = ("SN3D", "N3D", "FuMa")


class AudioFormatError(ValueError):
    """Audio that cannot be decoded; ``reason`` is a short diagnostics key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_pcm(data: bytes, sample_format: str, channel_count: int) -> np.ndarray:
    """Interleaved little-endian PCM bytes -> float32 [channels, samples] in [-1, 1).

    Raises AudioFormatError (reasons: ``bad_format``, ``empty``, ``truncated``,
    ``non_finite``, ``out_of_range``) instead of guessing, so the caller can count and drop
    the chunk. Out of range means float32 peaks above ``MAX_FLOAT_AMPLITUDE``.
    """
    dtype = PCM_DTYPES.get(sample_format)
    if dtype is None:
        raise AudioFormatError(
            BAD_FORMAT, f"unsupported sample format '{sample_format}'; expected one of {list(PCM_DTYPES)}"
        )
    if channel_count <= 0:
        raise AudioFormatError(BAD_FORMAT, f"channel_count must be positive, got {channel_count}")
    if len(data) == 0:
        raise AudioFormatError(EMPTY, "audio chunk has no data")
    frame_bytes = dtype.itemsize * channel_count
    if len(data) % frame_bytes:
        raise AudioFormatError(
            TRUNCATED,
            f"{len(data)} bytes is not a whole number of {channel_count}-channel {sample_format} frames",
        )
    samples = np.frombuffer(data, dtype=dtype).reshape(-1, channel_count).T
    audio = samples.astype(np.float32) / np.float32(_PCM_SCALE[sample_format])
    peak = float(np.max(np.abs(audio)))  # NaN or inf propagate to the peak
    if not math.isfinite(peak):
        raise AudioFormatError(NON_FINITE, "audio chunk contains NaN or inf samples")
    if peak > MAX_FLOAT_AMPLITUDE:
        raise AudioFormatError(
            OUT_OF_RANGE,
            f"audio peak {peak:.3g} is over {MAX_FLOAT_AMPLITUDE:g} x full scale: not {sample_format} "
            "PCM (check the driver's sample format)",
        )
    return audio


def encode_pcm(audio: np.ndarray, sample_format: str) -> bytes:
    """float [channels, samples] -> interleaved little-endian PCM bytes (inverse of decode_pcm)."""
    dtype = PCM_DTYPES[sample_format]
    scaled = np.asarray(audio, dtype=np.float64).T * _PCM_SCALE[sample_format]
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        scaled = np.clip(np.round(scaled), info.min, info.max)
    return np.ascontiguousarray(scaled.astype(dtype)).tobytes()


def foa_encoding_gains(azimuth_rad: np.ndarray | float, elevation_rad: np.ndarray | float) -> np.ndarray:
    """ACN/SN3D gains [..., 4] (W, Y, Z, X) of a plane wave from the given direction [rad]."""
    az = np.asarray(azimuth_rad, dtype=np.float64)
    el = np.asarray(elevation_rad, dtype=np.float64)
    return np.stack([np.ones_like(az), np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], axis=-1)


def to_acn_sn3d(audio: np.ndarray, channel_order: str, normalization: str) -> np.ndarray:
    """Convert first-order audio [4, samples] to ACN/SN3D.

    FuMa order is W, X, Y, Z with W scaled by 1/sqrt(2); N3D scales the first-order
    channels by sqrt(3) relative to SN3D.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise AudioFormatError(
            BAD_FORMAT, f"unknown channel order '{channel_order}'; expected {CHANNEL_ORDERS}"
        )
    if normalization not in NORMALIZATIONS:
        raise AudioFormatError(
            BAD_FORMAT, f"unknown normalization '{normalization}'; expected {NORMALIZATIONS}"
        )
    if audio.shape[0] != FOA_CHANNELS:
        raise AudioFormatError(BAD_CHANNELS, f"FOA needs {FOA_CHANNELS} channels, got {audio.shape[0]}")
    out = audio[[0, 2, 3, 1]] if channel_order == "FuMa" else audio.copy()
    if normalization == "FuMa":
        out[0] *= math.sqrt(2.0)
    elif normalization == "N3D":
        out[1:] /= math.sqrt(3.0)
    return out.astype(np.float32, copy=False)


def check_sample_rate(rate: int) -> None:
    """AudioFormatError ``bad_rate`` unless ``MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE`` [Hz]."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            BAD_RATE,
            f"sample rate {rate} Hz is outside the {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz "
            "a microphone can have",
        )


def resample(audio: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of [channels, samples] from rate_in to rate_out [Hz].

    Both rates must lie in ``MIN_SAMPLE_RATE..MAX_SAMPLE_RATE`` (else AudioFormatError
    ``bad_rate``), which bounds the output to 96 x the input and keeps the polyphase ratio
    (limited to a denominator of 1000) at least 1/96, so it never rounds to zero.
    """
    if rate_in == rate_out:
        return audio
    check_sample_rate(rate_in)
    check_sample_rate(rate_out)
    ratio = Fraction(rate_out, rate_in).limit_denominator(1000)
    return resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)
