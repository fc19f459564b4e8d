"""View tokens: where each part of the image looks and what blocks it, for per-hazard fusion.

The image is cut into a ``grid`` x ``grid`` lattice of cells (row-major, the plain resize of
``avi_ros.vision.visual_input``, so each cell is a fixed fraction of the image). Each cell
becomes one token of ``VIEW_TOKEN_CHANNELS`` numbers:

- 0-2: unit ray through the cell centre in the MICROPHONE frame (REP-103: x forward, y left,
  z up), from the intrinsics and the extrinsic's rotation (a direction, so the camera's offset
  from the microphones is ignored: hazards are metres away, the offset centimetres);
- 3: blocked fraction of the cell's pixels in [0, 1];
- 4: mean depth of the blocked pixels that have a reading, divided by ``near_range_m`` and
  clipped to [0, 1] (0 where nothing in the cell is blocked or no blocked pixel has a reading);
- 5: fraction of the cell where a hazard is visible (only the exact tokens the oracle is fed
  carry it; 0 otherwise).

The model matches each hazard slot's heard direction against the rays to read how blocked
the view is in that direction. Cell averages are area resizes (cv2 INTER_AREA): cheap enough
to run per frame in the node.
"""

from __future__ import annotations

import cv2
import numpy as np

from avi_ros.geometry import CameraIntrinsics, MicToCamera

VIEW_TOKEN_CHANNELS = 6  # ray x, y, z (mic frame), blocked fraction, near depth, hazard visible


def cell_rays(intrinsics: CameraIntrinsics, extrinsic: MicToCamera, grid: int) -> np.ndarray:
    """Unit rays [grid * grid, 3] through the cell centres, microphone frame, row-major."""
    width, height = intrinsics.width, intrinsics.height
    # Pixel k covers [k - 0.5, k + 0.5], so the image spans [-0.5, size - 0.5].
    u = (np.arange(grid) + 0.5) * width / grid - 0.5
    v = (np.arange(grid) + 0.5) * height / grid - 0.5
    uu, vv = np.meshgrid(u, v)  # [grid, grid], rows = v
    optical = np.stack(
        [(uu - intrinsics.cx) / intrinsics.fx, (vv - intrinsics.cy) / intrinsics.fy, np.ones_like(uu)],
        axis=-1,
    ).reshape(-1, 3)
    mic = optical @ extrinsic.optical_to_mic_rotation.T
    return mic / np.linalg.norm(mic, axis=-1, keepdims=True)


def _cell_mean(image: np.ndarray, grid: int) -> np.ndarray:
    """Area average of a float image [H, W] over each cell -> [grid * grid] float32."""
    return cv2.resize(image.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA).reshape(-1)


def view_tokens_of(
    occluder_mask: np.ndarray,
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    extrinsic: MicToCamera,
    grid: int,
    near_range_m: float,
    hazard_mask: np.ndarray | None = None,
) -> np.ndarray:
    """View tokens [grid * grid, 6] float32 of one image (see the module doc for the channels).

    occluder_mask: bool/uint8 [H, W], nonzero = blocked (``compute_occlusion``'s mask, or the
    generator's exact occluders); depth_m: float [H, W] in metres (0, NaN, inf: no reading);
    intrinsics: the camera at this H x W; hazard_mask: optional [H, W], nonzero where a hazard
    is seen. Raises ValueError on mismatched shapes or a non-positive grid or range.
    """
    mask = np.asarray(occluder_mask) != 0
    depth = np.asarray(depth_m, dtype=np.float32)
    if mask.ndim != 2 or depth.shape != mask.shape:
        raise ValueError(f"view tokens: mask {mask.shape} and depth {depth.shape} must be the same [H, W]")
    if (intrinsics.height, intrinsics.width) != mask.shape:
        raise ValueError(
            f"view tokens: the intrinsics describe a {intrinsics.height}x{intrinsics.width} image, "
            f"the mask is {mask.shape[0]}x{mask.shape[1]} (scale the intrinsics to the image)"
        )
    if grid < 1 or not near_range_m > 0.0:
        raise ValueError(f"view tokens: need grid >= 1 and near_range_m > 0, got {grid}, {near_range_m}")
    tokens = np.zeros((grid * grid, VIEW_TOKEN_CHANNELS), dtype=np.float32)
    tokens[:, :3] = cell_rays(intrinsics, extrinsic, grid)
    tokens[:, 3] = np.clip(_cell_mean(mask, grid), 0.0, 1.0)  # area sums round to 1 + 1e-7
    with np.errstate(invalid="ignore"):
        measured = mask & np.isfinite(depth) & (depth > 0.0)
    depth_sum = _cell_mean(np.where(measured, depth, 0.0), grid)
    count = _cell_mean(measured, grid)
    near = np.divide(depth_sum, count, out=np.zeros_like(depth_sum), where=count > 1e-6)
    tokens[:, 4] = np.clip(near / near_range_m, 0.0, 1.0)
    if hazard_mask is not None:
        hazard = np.asarray(hazard_mask) != 0
        if hazard.shape != mask.shape:
            raise ValueError(f"view tokens: hazard mask {hazard.shape} must match the mask {mask.shape}")
        tokens[:, 5] = np.clip(_cell_mean(hazard, grid), 0.0, 1.0)
    return tokens
