"""Occlusion from depth: which pixels are blocked, how much of the view, and whether a direction is seen.

One implementation serves the node, the bag replay and the training data, so the mask the
model was trained with is the mask it sees at run time. A pixel is *blocked* when a near
obstacle stands in front of the camera (depth closer than ``near_range_m``) or when the
sensor gave no reading there (0, NaN, inf): both hide whatever lies behind. Small specks
are removed because single noisy pixels are sensor artefacts, not obstacles.

Depth is the optical-axis distance z in metres (the ROS 32FC1 convention); millimetre
16UC1 images are converted at the edge before they get here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.taxonomy import Visibility


@dataclass(frozen=True)
class OcclusionConfig:
    """How a depth image becomes an occlusion mask.

    near_range_m: pixels with a valid depth below this [m] are near obstacles.
    min_blob_px: blocked regions (8-connected) smaller than this many pixels are dropped as specks;
        0 or 1 keeps every pixel.
    invalid_is_blocked: pixels without a reading count as blocked (the camera cannot see through them).
    """

    near_range_m: float = 1.0
    min_blob_px: int = 20
    invalid_is_blocked: bool = True

    def __post_init__(self) -> None:
        if not self.near_range_m > 0.0:
            raise ValueError(f"OcclusionConfig.near_range_m must be > 0 m, got {self.near_range_m}")
        if self.min_blob_px < 0:
            raise ValueError(f"OcclusionConfig.min_blob_px must be >= 0, got {self.min_blob_px}")


@dataclass
class OcclusionResult:
    """mask: bool [H, W], True where the view is blocked or invalid. level: mask fraction in [0, 1]."""

    mask: np.ndarray
    level: float

    def as_uint8(self) -> np.ndarray:
        """The mask as a mono8 image: 255 blocked, 0 clear (for the occlusion mask topic)."""
        return self.mask.astype(np.uint8) * np.uint8(255)


def valid_depth(depth_m: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels with a usable reading (finite and > 0 m)."""
    return np.isfinite(depth_m) & (depth_m > 0.0)


def _check_depth(depth_m: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D [H, W] image, got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise TypeError(
            f"depth must be floating point metres, got dtype {depth.dtype}; convert 16UC1 millimetres first"
        )
    return depth


def remove_small_blobs(mask: np.ndarray, min_blob_px: int) -> np.ndarray:
    """Drop 8-connected True regions with fewer than ``min_blob_px`` pixels (speck cleanup).

    Area filtering rather than a morphological opening keeps the outline of real obstacles
    exact, so thin but large obstacles (poles, table legs) survive.
    """
    if min_blob_px <= 1 or not mask.any():
        return mask
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_blob_px
    keep[0] = False  # label 0 is the background (False pixels)
    return keep[labels]


def compute_occlusion(depth_m: np.ndarray, config: OcclusionConfig = OcclusionConfig()) -> OcclusionResult:
    """Occlusion mask and level of a depth image [H, W] in metres (0, NaN, inf = no reading)."""
    depth = _check_depth(depth_m)
    valid = valid_depth(depth)
    with np.errstate(invalid="ignore"):
        blocked = valid & (depth < config.near_range_m)
    if config.invalid_is_blocked:
        blocked |= ~valid
    blocked = remove_small_blobs(blocked, config.min_blob_px)
    level = float(blocked.mean()) if blocked.size else 0.0
    return OcclusionResult(mask=blocked, level=level)


def robust_depth_at(depth_m: np.ndarray, u: float, v: float, radius_px: int = 2) -> float:
    """Median of the valid depth readings [m] in a (2r+1)^2 window around pixel (u, v); NaN if none.

    The median ignores single wrong pixels and, on an obstacle's edge, follows the majority.
    """
    depth = _check_depth(depth_m)
    col, row = round(float(u)), round(float(v))
    r0, r1 = max(row - radius_px, 0), min(row + radius_px + 1, depth.shape[0])
    c0, c1 = max(col - radius_px, 0), min(col + radius_px + 1, depth.shape[1])
    window = depth[r0:r1, c0:c1]
    readings = window[valid_depth(window)]
    return float(np.median(readings)) if readings.size else float("nan")


def direction_visibility(
    direction_mic: np.ndarray,
    distance_m: float,
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    extrinsic: MicToCamera,
    margin_m: float = 0.7,
    radius_px: int = 2,
    invalid_is_occluded: bool = True,
) -> Visibility:
    """Whether the camera sees the point ``direction_mic * distance_m`` (microphone frame, metres).

    OUT_OF_VIEW: the point is behind the camera or projects outside the image.
    OCCLUDED: the depth there (robust median, see ``robust_depth_at``) is closer than the point's
    own depth minus ``margin_m``, i.e. something stands in front of it; also when there is no
    reading at all and ``invalid_is_occluded`` (as in ``OcclusionConfig.invalid_is_blocked``).
    VISIBLE otherwise. The margin absorbs the size of the object (labels give its centre, the
    camera sees its front face: up to ~0.6 m for a vehicle) and depth noise [m].
    """
    if depth_m.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(
            f"depth shape {depth_m.shape} does not match the intrinsics "
            f"{intrinsics.height}x{intrinsics.width}"
        )
    unit = np.asarray(direction_mic, dtype=np.float64)
    norm = float(np.linalg.norm(unit))
    if norm <= 0.0 or not np.isfinite(norm):
        raise ValueError(f"direction must be a non-zero finite 3-vector, got {direction_mic}")
    point_optical = extrinsic.mic_to_optical(unit / norm * float(distance_m))
    (u, v), inside = intrinsics.project(point_optical)
    if not bool(inside):
        return Visibility.OUT_OF_VIEW
    seen = robust_depth_at(depth_m, u, v, radius_px)
    if np.isnan(seen):
        return Visibility.OCCLUDED if invalid_is_occluded else Visibility.VISIBLE
    return Visibility.OCCLUDED if seen < point_optical[2] - margin_m else Visibility.VISIBLE
