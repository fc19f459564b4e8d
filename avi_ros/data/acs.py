"""FOA audio channel swapping (ACS): rotations and reflections of a first-order sound field.

Mazzon, Koizumi, Yasuda and Harada (DCASE 2019, "First order ambisonics domain spatial
augmentation for DNN-based direction of arrival estimation") showed that swapping and negating
the first-order channels of an FOA recording is an exact rotation or reflection of its sound
field, so one labelled clip yields 16 with known directions; DCASE SELD systems have used it
since. The first-order channels (ACN order W, Y, Z, X; SN3D) are the source direction's
components times the signal, so a transform M of directions acts on them as

    (X', Y', Z') = M (X, Y, Z),   W' = W,

for the 16 signed permutations that keep the vertical axis vertical: the rotations about z by a
multiple of 90 degrees, each optionally after the left-right mirror (azimuth -> -azimuth), and
each with or without the up-down flip (elevation -> -elevation). The first 8 keep the elevation.
Labels transform the same way: azimuth' = k * 90 deg +- azimuth, elevation' = +-elevation.

The same permutation applies to features computed from the four channels (``avi_ros.features``):
the log spectra of Y, Z, X are permuted (a sign does not change a spectrum), the intensity
vectors are permuted and negated like the directions, and the phase differences W -> Y, Z, X
are permuted and shifted by pi where negated. So a precomputed feature tensor can be augmented
without recomputing it (``transform_features``). Works on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# ACN channel of each Cartesian axis (x, y, z) in W, Y, Z, X order.
_ACN_OF_AXIS = (3, 1, 2)
FEATURE_KINDS = ("dcase", "amp_phasediff")


@dataclass(frozen=True)
class AcsTransform:
    """One of the 16 transforms: ``quarter_turns`` x 90 deg about z (CCW), after an optional
    left-right ``mirror`` (y -> -y); ``flip_z`` negates the elevation."""

    quarter_turns: int
    mirror: bool
    flip_z: bool

    @property
    def matrix(self) -> np.ndarray:
        """3x3 signed permutation acting on (x, y, z) direction vectors."""
        angle = self.quarter_turns * math.pi / 2
        c, s = round(math.cos(angle)), round(math.sin(angle))
        rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)
        mirror = np.diag([1.0, -1.0 if self.mirror else 1.0, 1.0])
        flip = np.diag([1.0, 1.0, -1.0 if self.flip_z else 1.0])
        return flip @ rotation @ mirror

    @property
    def is_identity(self) -> bool:
        return self.quarter_turns == 0 and not self.mirror and not self.flip_z

    def direction(
        self, azimuth_rad: np.ndarray | float, elevation_rad: np.ndarray | float
    ) -> tuple[Any, Any]:
        """Transformed (azimuth, elevation) [rad], azimuth wrapped to [-pi, pi)."""
        az = -np.asarray(azimuth_rad) if self.mirror else np.asarray(azimuth_rad)
        az = np.mod(az + self.quarter_turns * math.pi / 2 + math.pi, 2 * math.pi) - math.pi
        el = -np.asarray(elevation_rad) if self.flip_z else np.asarray(elevation_rad)
        return az, el

    def _channel_map(self) -> tuple[list[int], list[float]]:
        """For each first-order output axis (x, y, z): the input axis it reads and its sign."""
        m = self.matrix
        source = [int(np.flatnonzero(m[i])[0]) for i in range(3)]
        return source, [float(m[i, source[i]]) for i in range(3)]


ACS_TRANSFORMS: tuple[AcsTransform, ...] = tuple(
    AcsTransform(k, mirror, flip) for flip in (False, True) for mirror in (False, True) for k in range(4)
)
"""All 16; the first 8 keep the elevation (``ACS_TRANSFORMS[:8]``); ``ACS_TRANSFORMS[0]`` is the identity."""


def transform_foa(audio: Any, transform: AcsTransform) -> Any:
    """FOA audio [..., 4, N] (ACN/SN3D) with its sound field rotated/reflected by ``transform``."""
    source, signs = transform._channel_map()
    out = audio * 1.0  # a copy, in the input's own array type
    for axis in range(3):
        out[..., _ACN_OF_AXIS[axis], :] = audio[..., _ACN_OF_AXIS[source[axis]], :] * signs[axis]
    return out


def transform_vectors(vectors: Any, transform: AcsTransform, axis: int = -1) -> Any:
    """Direction vectors with their (x, y, z) components on ``axis`` (e.g. multi-ACCDOA targets
    [..., 3, C] with ``axis=-2``), transformed."""
    source, signs = transform._channel_map()
    out = vectors * 1.0
    index = [slice(None)] * vectors.ndim
    for component in range(3):
        target, src = list(index), list(index)
        target[axis], src[axis] = component, source[component]
        out[tuple(target)] = vectors[tuple(src)] * signs[component]
    return out


def transform_features(features: Any, transform: AcsTransform, kind: str) -> Any:
    """Features [..., 7, T, F] of ``avi_ros.features`` (4 spectra of W, Y, Z, X, then 3 directional
    channels for Y, Z, X) as they would be computed from the transformed audio.

    ``kind`` ``dcase``: the intensity vectors are permuted and negated exactly like directions.
    ``amp_phasediff``: the phase differences are permuted, and shifted by pi (wrapped to
    (-pi, pi]) where the channel is negated.
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"ACS: unknown feature kind '{kind}'; expected one of {FEATURE_KINDS}")
    source, signs = transform._channel_map()
    out = features * 1.0
    for axis in range(3):
        dst, src = _ACN_OF_AXIS[axis], _ACN_OF_AXIS[source[axis]]
        out[..., dst, :, :] = features[..., src, :, :]  # spectra: the sign does not matter
        directional = features[..., 3 + src, :, :]
        if kind == "dcase":
            out[..., 3 + dst, :, :] = directional * signs[axis]
        elif signs[axis] < 0:  # angle(-c) = angle(c) + pi, back into (-pi, pi]
            out[..., 3 + dst, :, :] = directional + math.pi - 2 * math.pi * (directional > 0)
        else:
            out[..., 3 + dst, :, :] = directional
    return out
