"""Directions, camera intrinsics and the microphone-to-camera extrinsic.

Frames follow REP-103. The microphone frame is a body frame: x forward, y left, z up;
azimuth is counter-clockwise from +x in [-pi, pi] and elevation is positive upward (rad).
The camera's *optical* frame is x right, y down, z forward, as in sensor_msgs/CameraInfo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Rotation taking optical-frame vectors (x right, y down, z forward) to a REP-103 body
# frame (x forward, y left, z up) that looks the same way: columns are the optical axes
# expressed in the body frame.
OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], dtype=np.float64)


def direction_to_unit(azimuth_rad: np.ndarray | float, elevation_rad: np.ndarray | float) -> np.ndarray:
    """Unit vector(s) [..., 3] for azimuth/elevation in radians (REP-103 body frame)."""
    az = np.asarray(azimuth_rad, dtype=np.float64)
    el = np.asarray(elevation_rad, dtype=np.float64)
    return np.stack([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)], axis=-1)


def unit_to_direction(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation [rad] of vector(s) [..., 3]; the length does not matter."""
    v = np.asarray(vector, dtype=np.float64)
    azimuth = np.arctan2(v[..., 1], v[..., 0])
    elevation = np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1]))
    return azimuth, elevation


def angular_error_rad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle angle [rad] between direction vectors a and b [..., 3]."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True).clip(1e-12)
    return np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0))


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_rad: float) -> CameraIntrinsics:
        """Square pixels, principal point at the image centre."""
        f = (width / 2.0) / math.tan(horizontal_fov_rad / 2.0)
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    @classmethod
    def from_matrix(cls, k: np.ndarray, width: int, height: int) -> CameraIntrinsics:
        """From a 3x3 K (CameraInfo.k reshaped)."""
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), width, height)

    @property
    def horizontal_fov_rad(self) -> float:
        """The horizontal field of view [rad] (the inverse of ``from_fov``)."""
        return 2.0 * math.atan(self.width / 2.0 / self.fx)

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """The same camera at another resolution (for resized images)."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(
            self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5, width, height
        )

    def project(self, points_optical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (u, v) [..., 2] of optical-frame points [..., 3] in metres,
        and a mask of points in front of the camera and inside the image."""
        p = np.asarray(points_optical, dtype=np.float64)
        z = p[..., 2]
        safe_z = np.where(z > 1e-9, z, 1.0)
        u = self.fx * p[..., 0] / safe_z + self.cx
        v = self.fy * p[..., 1] / safe_z + self.cy
        inside = (z > 1e-9) & (u >= -0.5) & (u < self.width - 0.5) & (v >= -0.5) & (v < self.height - 0.5)
        return np.stack([u, v], axis=-1), inside

    def pixel_rays(self) -> np.ndarray:
        """Optical-frame ray directions [H, W, 3] with z = 1, one per pixel centre."""
        u, v = np.meshgrid(np.arange(self.width), np.arange(self.height))
        return np.stack(
            [(u - self.cx) / self.fx, (v - self.cy) / self.fy, np.ones_like(u, dtype=np.float64)], axis=-1
        )


def rotation_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """3x3 rotation for fixed-axis roll, pitch, yaw [rad] (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    cr, sr, cp, sp, cy, sy = (
        math.cos(roll),
        math.sin(roll),
        math.cos(pitch),
        math.sin(pitch),
        math.cos(yaw),
        math.sin(yaw),
    )
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


@dataclass(frozen=True)
class MicToCamera:
    """Pose of the camera body frame (REP-103, x forward) in the microphone frame.

    ``translation_m``: camera origin in the microphone frame [m].
    ``rpy_rad``: roll, pitch, yaw of the camera body frame relative to the microphone frame.
    The optical frame follows from the body frame by the fixed REP-103 rotation.
    """

    translation_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _rotation: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Optical -> mic rotation, computed once.
        rot = rotation_from_rpy(*self.rpy_rad) @ OPTICAL_TO_BODY
        object.__setattr__(self, "_rotation", rot)

    @property
    def optical_to_mic_rotation(self) -> np.ndarray:
        return self._rotation

    def mic_to_optical(self, points_mic: np.ndarray) -> np.ndarray:
        """Points [..., 3] in the microphone frame [m] -> camera optical frame [m]."""
        p = np.asarray(points_mic, dtype=np.float64) - np.asarray(self.translation_m)
        return p @ self._rotation

    def optical_to_mic(self, points_optical: np.ndarray) -> np.ndarray:
        """Points [..., 3] in the camera optical frame [m] -> microphone frame [m]."""
        p = np.asarray(points_optical, dtype=np.float64)
        return p @ self._rotation.T + np.asarray(self.translation_m)
