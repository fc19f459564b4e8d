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

SAMPLE_RATE = 24_000  # Hz, the DCASE2023 SELD rate.
FOA_CHANNELS = 4

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
    ``non_finite``) instead of guessing, so the caller can count and drop the chunk.
    """
    dtype = PCM_DTYPES.get(sample_format)
    if dtype is None:
        raise AudioFormatError(
            "bad_format", f"unsupported sample format '{sample_format}'; expected one of {list(PCM_DTYPES)}"
        )
    if channel_count <= 0:
        raise AudioFormatError("bad_format", f"channel_count must be positive, got {channel_count}")
    if len(data) == 0:
        raise AudioFormatError("empty", "audio chunk has no data")
    frame_bytes = dtype.itemsize * channel_count
    if len(data) % frame_bytes:
        raise AudioFormatError(
            "truncated",
            f"{len(data)} bytes is not a whole number of {channel_count}-channel {sample_format} frames",
        )
    samples = np.frombuffer(data, dtype=dtype).reshape(-1, channel_count).T
    audio = samples.astype(np.float32) / np.float32(_PCM_SCALE[sample_format])
    if not np.isfinite(audio).all():
        raise AudioFormatError("non_finite", "audio chunk contains NaN or inf samples")
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
            "bad_format", f"unknown channel order '{channel_order}'; expected {CHANNEL_ORDERS}"
        )
    if normalization not in NORMALIZATIONS:
        raise AudioFormatError(
            "bad_format", f"unknown normalization '{normalization}'; expected {NORMALIZATIONS}"
        )
    if audio.shape[0] != FOA_CHANNELS:
        raise AudioFormatError("bad_channels", f"FOA needs {FOA_CHANNELS} channels, got {audio.shape[0]}")
    out = audio[[0, 2, 3, 1]] if channel_order == "FuMa" else audio.copy()
    if normalization == "FuMa":
        out[0] *= math.sqrt(2.0)
    elif normalization == "N3D":
        out[1:] /= math.sqrt(3.0)
    return out.astype(np.float32, copy=False)


def resample(audio: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of [channels, samples] from rate_in to rate_out [Hz]."""
    if rate_in == rate_out:
        return audio
    if rate_in <= 0:
        raise AudioFormatError("bad_rate", f"sample rate must be positive, got {rate_in}")
    ratio = Fraction(rate_out, rate_in).limit_denominator(1000)
    return resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)
