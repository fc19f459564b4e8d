"""Imperfections of real sensors, applied to a rendered scene: FOA capsules and the RGB-D camera.

Microphone. An FOA microphone is four cardioid capsules on a tetrahedron (A-format) whose
signals a fixed matrix turns into W, Y, Z, X (B-format). Real capsules differ a little in
sensitivity and phase, and each adds its own noise; after the matrix these errors leak the
omnidirectional part into the directional channels and bias the intensity vector. They are
applied where they happen: B -> A, per-capsule gain, fractional delay and self-noise, A -> B.

Camera. A real RGB-D camera often has a lower effective resolution than the image it publishes
(an upscaled depth stream, soft optics) and a maximum depth range beyond which it returns no
reading (0). Both are applied to the rendered images; the exact masks and labels are untouched.

Units: seconds, Hz, dB, dBFS (RMS relative to a full-scale of 1), metres.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from avi_ros.audio import foa_encoding_gains

# Capsule directions (azimuth, elevation) [rad] of a tetrahedral FOA microphone: front-left-up,
# front-right-down, back-left-down, back-right-up.
_TETRA_ELEVATION = math.asin(1.0 / math.sqrt(3.0))
TETRAHEDRON_RAD = (
    (math.pi / 4, _TETRA_ELEVATION),
    (-math.pi / 4, -_TETRA_ELEVATION),
    (3 * math.pi / 4, -_TETRA_ELEVATION),
    (-3 * math.pi / 4, _TETRA_ELEVATION),
)
# Cardioid capsule i picks up 0.5 (W + d_i . (X, Y, Z)) of an ACN/SN3D field: rows are capsules.
A_FROM_B = 0.5 * foa_encoding_gains(*np.asarray(TETRAHEDRON_RAD).T)
B_FROM_A = np.linalg.inv(A_FROM_B)


def capsule_mismatch(
    foa: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int,
    gain_db: float,
    delay_s: float,
    self_noise_dbfs: float | None,
) -> np.ndarray:
    """FOA audio [4, N] as heard through four slightly different capsules -> float64 [4, N].

    Each capsule gets a gain drawn in +-``gain_db``, a delay in +-``delay_s`` (a fractional
    delay applied in the frequency domain) and, unless ``self_noise_dbfs`` is None, white noise
    of that RMS level. With zero errors and no noise the audio comes back unchanged.
    """
    capsules = A_FROM_B @ np.asarray(foa, dtype=np.float64)
    n = capsules.shape[1]
    gains = 10.0 ** (rng.uniform(-gain_db, gain_db, 4) / 20.0)
    delays_s = rng.uniform(-delay_s, delay_s, 4)
    spectrum = np.fft.rfft(capsules, axis=1)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spectrum *= gains[:, None] * np.exp(-2j * np.pi * freqs[None, :] * delays_s[:, None])
    capsules = np.fft.irfft(spectrum, n=n, axis=1)
    if self_noise_dbfs is not None:
        capsules += 10.0 ** (self_noise_dbfs / 20.0) * rng.standard_normal(capsules.shape)
    return B_FROM_A @ capsules


def reduce_resolution(rgb: np.ndarray, depth_m: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB [H, W, 3] and depth [H, W] as seen by sensors of ``scale`` times the resolution.

    RGB is area-averaged down and bilinearly up (soft detail); depth is sampled nearest-neighbour
    both ways (blocky edges, no invented in-between depths). The shapes stay [H, W].
    """
    h, w = depth_m.shape
    small = (max(round(w * scale), 1), max(round(h * scale), 1))
    if small == (w, h):
        return rgb, depth_m
    rgb_out = cv2.resize(
        cv2.resize(rgb, small, interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR
    )
    depth_small = cv2.resize(depth_m, small, interpolation=cv2.INTER_NEAREST)
    return rgb_out, cv2.resize(depth_small, (w, h), interpolation=cv2.INTER_NEAREST)


def limit_depth_range(depth_m: np.ndarray, max_range_m: float) -> np.ndarray:
    """Depth [H, W] with readings beyond ``max_range_m`` set to 0 (no reading), as a sensor reports."""
    out = depth_m.copy()
    out[out > max_range_m] = 0.0
    return out
