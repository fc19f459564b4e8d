"""The visual input of the model: one function shared by the pipeline and the training dataset.

``visual_input`` turns an RGB-D frame and its occlusion mask into the 5 x S x S float32 image
that the visual encoder reads:
- channels 0-2: RGB scaled to [0, 1] and standardised with the ImageNet mean and std (what
  pretrained ResNet filters expect);
- channel 3: depth in metres, clipped to ``MAX_DEPTH_M`` and divided by it, so [0, 1]; pixels
  without a reading (0, NaN, inf, negative) are 0;
- channel 4: the occlusion mask, 1 where the view is blocked or depth is invalid, else 0.

The whole frame is resized to S x S (no crop), so every part of the field of view stays in the
image; depth and mask use nearest-neighbour resizing so invalid pixels are never blended.
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MAX_DEPTH_M = 10.0  # depth beyond this [m] is clipped; the scale of the depth channel


def visual_input(
    rgb: np.ndarray, depth_m: np.ndarray, occlusion_mask: np.ndarray, image_size: int
) -> np.ndarray:
    """RGB uint8 [H, W, 3], depth float [H, W] in metres, mask bool/uint8 [H, W] (nonzero =
    blocked) -> float32 [5, image_size, image_size]."""
    rgb = np.asarray(rgb)
    depth = np.asarray(depth_m, dtype=np.float32)
    mask = np.asarray(occlusion_mask)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"visual_input: rgb must be uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    if depth.shape != rgb.shape[:2] or mask.shape != rgb.shape[:2]:
        raise ValueError(
            f"visual_input: depth {depth.shape} and mask {mask.shape} must match the rgb size {rgb.shape[:2]}"
        )
    if image_size <= 0:
        raise ValueError(f"visual_input: image_size must be positive, got {image_size}")
    size = (image_size, image_size)
    colour = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    colour = (colour - IMAGENET_MEAN) / IMAGENET_STD
    valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, np.minimum(depth, MAX_DEPTH_M), 0.0).astype(np.float32) / MAX_DEPTH_M
    depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
    blocked = cv2.resize((mask != 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    out = np.empty((5, image_size, image_size), dtype=np.float32)
    out[:3] = colour.transpose(2, 0, 1)
    out[3] = depth
    out[4] = blocked
    return out
