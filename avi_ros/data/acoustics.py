"""Shoebox room acoustics rendered straight into first-order ambisonics (FOA, ACN/SN3D).

pyroomacoustics' image-source model gives the position and wall-reflection gain of every
image source of a shoebox room. Each arrival is then encoded with the FOA gains of *its own*
direction, so the early reflections come from where the walls put them, which is what a
SELD model must learn to tell from the direct path. The late part, which a bounded image
order cannot reach, is a diffuse (direction-less) exponentially decaying noise tail with the
Sabine reverberation time of the same room.

The FOA room impulse response (RIR) is sparse: one windowed-sinc fractional delay per
image, accumulated with ``np.bincount``, then one FFT convolution per channel. This keeps a
1 s scene at a few milliseconds.

Units: metres, seconds, Hz; ``sample_rate`` samples per second. World frame: the room spans
[0, size] on each axis, z up. The microphone frame is REP-103 (x forward, y left, z up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra
from scipy.signal import oaconvolve

from avi_ros.audio import SAMPLE_RATE, foa_encoding_gains
from avi_ros.geometry import unit_to_direction

SPEED_OF_SOUND_M_S = 343.0
# pyroomacoustics' wall names of a 3-D shoebox, in the order of ShoeboxRoom.absorption.
WALL_NAMES = ("west", "east", "south", "north", "floor", "ceiling")
# Variance of each first-order SN3D channel relative to W in a diffuse (isotropic) field.
DIFFUSE_FIRST_ORDER_VARIANCE = 1.0 / 3.0


@dataclass(frozen=True)
class ShoeboxRoom:
    """A rectangular room [0, size_m] in world coordinates.

    ``absorption``: energy absorption coefficient of each wall in ``WALL_NAMES`` order (0..1).
    """

    size_m: tuple[float, float, float]
    absorption: tuple[float, float, float, float, float, float]

    def __post_init__(self) -> None:
        if len(self.size_m) != 3 or min(self.size_m) <= 0:
            raise ValueError(f"room size must be three positive lengths [m], got {self.size_m}")
        if len(self.absorption) != len(WALL_NAMES) or not all(0.0 < a < 1.0 for a in self.absorption):
            raise ValueError(f"room absorption must be 6 coefficients in (0, 1), got {self.absorption}")

    def contains(self, point: np.ndarray, margin_m: float = 0.0) -> bool:
        p = np.asarray(point, dtype=np.float64)
        return bool(np.all(p >= margin_m) and np.all(p <= np.asarray(self.size_m) - margin_m))

    def rt60_s(self) -> float:
        """Sabine reverberation time [s]: 0.161 V / sum(S_i a_i)."""
        lx, ly, lz = self.size_m
        areas = (ly * lz, ly * lz, lx * lz, lx * lz, lx * ly, lx * ly)
        sabins = sum(s * a for s, a in zip(areas, self.absorption, strict=True))
        return 0.161 * lx * ly * lz / sabins


@dataclass(frozen=True)
class AcousticsConfig:
    """How FOA room responses are built.

    max_order: image-source reflection order (higher = denser early part, slower).
    late_tail: add the diffuse decaying tail after the last complete image order.
    max_rir_s: RIRs are cut at this length [s]; it bounds the convolution cost.
    fractional_delay_taps: length of the windowed-sinc interpolator per arrival (even).
    direct_path_only: only the direct sound (for tests of the encoding direction).
    """

    sample_rate: int = SAMPLE_RATE
    max_order: int = 8
    late_tail: bool = True
    max_rir_s: float = 0.5
    fractional_delay_taps: int = 8
    direct_path_only: bool = False


@dataclass
class ImageSources:
    """positions [K, 3] world [m]; gains [K] wall-reflection amplitude products; orders [K]."""

    positions: np.ndarray
    gains: np.ndarray
    orders: np.ndarray


def image_sources(room: ShoeboxRoom, source_m: np.ndarray, mic_m: np.ndarray, max_order: int) -> ImageSources:
    """Image sources of ``source_m`` via pyroomacoustics' image-source model (order <= max_order)."""
    source_m = np.asarray(source_m, dtype=np.float64)
    mic_m = np.asarray(mic_m, dtype=np.float64)
    for name, point in (("source", source_m), ("microphone", mic_m)):
        if not room.contains(point):
            raise ValueError(f"{name} {point.tolist()} lies outside the room {room.size_m}")
    materials = {name: pra.Material(a) for name, a in zip(WALL_NAMES, room.absorption, strict=True)}
    sim = pra.ShoeBox(
        list(room.size_m),
        fs=SAMPLE_RATE,
        materials=materials,
        max_order=max_order,
        air_absorption=False,
        use_rand_ism=False,
    )
    sim.add_source(source_m.tolist())
    sim.add_microphone(mic_m.tolist())
    sim.image_source_model()
    src = sim.sources[0]
    visible = sim.visibility[0][0].astype(bool)
    return ImageSources(
        positions=src.images.T[visible].copy(),
        gains=src.damping[0][visible].astype(np.float64),
        orders=src.orders[visible].astype(int),
    )


def _fractional_delay_kernel(delays: np.ndarray, taps: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices [K, taps] and Hann-windowed sinc weights [K, taps] for delays [K] in samples."""
    base = np.floor(delays).astype(np.int64)
    offsets = np.arange(-taps // 2 + 1, taps // 2 + 1)
    idx = base[:, None] + offsets[None, :]
    frac = idx - delays[:, None]
    window = 0.5 + 0.5 * np.cos(np.pi * frac / (taps / 2 + 1))
    return idx, np.sinc(frac) * window


def foa_rir(
    room: ShoeboxRoom,
    source_m: np.ndarray,
    mic_m: np.ndarray,
    mic_rotation: np.ndarray,
    config: AcousticsConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """FOA room impulse response float64 [4, L] (ACN/SN3D) from a source to a microphone.

    ``mic_rotation``: 3x3 rotation taking microphone-frame vectors to the world frame.
    Amplitudes fall as 1/r, normalised so the direct path at 1 m has gain 1. ``rng`` draws
    the late-tail noise.
    """
    order = 0 if config.direct_path_only else config.max_order
    images = image_sources(room, source_m, mic_m, order)
    rel_world = images.positions - np.asarray(mic_m, dtype=np.float64)
    dist = np.linalg.norm(rel_world, axis=1).clip(1e-3)
    rel_mic = rel_world @ np.asarray(mic_rotation, dtype=np.float64)  # R^T v for each row
    az, el = unit_to_direction(rel_mic)
    encode = foa_encoding_gains(az, el) * (images.gains / dist)[:, None]  # [K, 4]
    fs = config.sample_rate
    delays = dist / SPEED_OF_SOUND_M_S * fs
    taps = config.fractional_delay_taps
    max_len = int(config.max_rir_s * fs)
    keep = delays < max_len - taps
    delays, encode = delays[keep], encode[keep]
    rt60 = room.rt60_s()
    length = int(min(max_len, max(delays.max() + taps + 1, 0.0)))
    tail_start_s = None
    if config.late_tail and not config.direct_path_only:
        highest = images.orders[keep] == order
        tail_start_s = (
            float(dist[keep][highest].min()) if highest.any() else float(dist.max())
        ) / SPEED_OF_SOUND_M_S
        length = int(min(max_len, max(length, (tail_start_s + rt60) * fs)))
    idx, weights = _fractional_delay_kernel(delays, taps)
    idx = idx.ravel().clip(0, length - 1)
    rir = np.stack([np.bincount(idx, (encode[:, c : c + 1] * weights).ravel(), length) for c in range(4)])
    if tail_start_s is not None:
        rir += _late_tail(rir[0], tail_start_s, rt60, fs, rng)
    return rir


def _late_tail(w: np.ndarray, start_s: float, rt60_s: float, fs: int, rng: np.random.Generator) -> np.ndarray:
    """Diffuse FOA noise [4, len(w)] decaying 60 dB per rt60_s from start_s.

    Its level at ``start_s`` matches the image-source energy in the 50 ms before it (or since
    the start, if earlier), so the tail continues the decay that the bounded image order cut off.
    """
    n = w.size
    start = int(start_s * fs)
    window = min(int(0.05 * fs), start)
    if start >= n or window <= 0:
        return np.zeros((4, n))
    level = math.sqrt(float(np.mean(w[start - window : start] ** 2)))
    t = np.arange(n - start) / fs
    envelope = level * 10.0 ** (-3.0 * t / rt60_s)
    noise = rng.standard_normal((4, n - start))
    noise[1:] *= math.sqrt(DIFFUSE_FIRST_ORDER_VARIANCE)
    tail = np.zeros((4, n))
    tail[:, start:] = noise * envelope
    return tail


def convolve_foa(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Mono signal [N] through an FOA RIR [4, L] -> float64 [4, N] (the tail past N is cut)."""
    n = signal.shape[-1]
    return oaconvolve(np.asarray(signal, dtype=np.float64)[None, :], rir, axes=-1)[:, :n]


def convolve_foa_time_varying(signal: np.ndarray, rirs: list[np.ndarray], hop_samples: int) -> np.ndarray:
    """Mono signal [N] through RIRs that change over time -> [4, N].

    ``rirs[i]`` is the response at sample ``i * hop_samples`` (a moving source or robot).
    Between two knots the output cross-fades linearly from one response to the next, which
    avoids the clicks of switching responses abruptly.
    """
    if not rirs:
        raise ValueError("need at least one RIR")
    if hop_samples <= 0:
        raise ValueError(f"hop_samples must be positive, got {hop_samples}")
    n = signal.shape[-1]
    t = np.arange(n)
    knots = np.arange(len(rirs)) * hop_samples
    out = np.zeros((4, n))
    for i, rir in enumerate(rirs):
        lo = 0 if i == 0 else knots[i - 1]
        hi = n if i == len(rirs) - 1 else min(knots[i + 1], n)
        if lo >= n:
            break
        onehot = np.zeros(len(rirs))
        onehot[i] = 1.0
        weight = np.interp(t[lo:hi], knots, onehot)
        part = oaconvolve((signal[lo:hi] * weight)[None, :], rir, axes=-1)
        stop = min(lo + part.shape[1], n)
        out[:, lo:stop] += part[:, : stop - lo]
    return out


def diffuse_noise(rng: np.random.Generator, n: int, sample_rate: int, spectral_slope: float) -> np.ndarray:
    """Diffuse background noise [4, n] (ACN/SN3D), W variance 1.

    The spectrum falls as f^-spectral_slope in power (0 white, 1 pink, 2 brown); the four
    channels are independent with first-order variance 1/3 of W, as in an isotropic field.
    """
    spectrum = np.fft.rfft(rng.standard_normal((4, n)), axis=-1)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate).clip(20.0)
    noise = np.fft.irfft(spectrum * freqs ** (-spectral_slope / 2.0), n=n, axis=-1)
    noise /= noise[0].std().clip(1e-12)
    noise[1:] *= math.sqrt(DIFFUSE_FIRST_ORDER_VARIANCE) / noise[1:].std(axis=1, keepdims=True).clip(1e-12)
    return noise


def event_power(w: np.ndarray, sample_rate: int, frame_s: float = 0.02, range_db: float = 20.0) -> float:
    """Mean power of the frames of ``w`` within ``range_db`` of its loudest frame.

    SNRs are measured against this, so a short bark and a steady engine at the same SNR
    stand out of the noise equally while they sound.
    """
    frame = max(int(frame_s * sample_rate), 1)
    usable = (w.size // frame) * frame
    if usable == 0:
        return float(np.mean(w**2))
    energy = np.mean(w[:usable].reshape(-1, frame) ** 2, axis=1)
    active = energy >= energy.max() * 10.0 ** (-range_db / 10.0)
    return float(energy[active].mean())


def scale_to_snr(
    foreground_w: np.ndarray, background: np.ndarray, snr_db: float, sample_rate: int
) -> np.ndarray:
    """``background`` [C, N] scaled so the foreground stands ``snr_db`` above it.

    The foreground is measured on its W channel while it sounds (``event_power``), the
    background by the variance (mean power without the DC offset) of its W channel over the
    whole scene, so a steady drone and a gusty wind at the same SNR have the same average level.
    """
    power = float(np.var(np.asarray(background[0], dtype=np.float64)))
    target = event_power(np.asarray(foreground_w, dtype=np.float64), sample_rate) / 10.0 ** (snr_db / 10.0)
    return background * math.sqrt(target / max(power, 1e-20))
