"""Occlusion masks and direction visibility, checked against the generator's exact ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.geometry import CameraIntrinsics, MicToCamera, direction_to_unit
from avi_ros.occlusion import (
    OcclusionConfig,
    compute_occlusion,
    direction_visibility,
    remove_small_blobs,
    robust_depth_at,
)
from avi_ros.taxonomy import Visibility

SMALL = SceneConfig(none_probability=0.0).with_image_size(160, 120)


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(seed, SMALL) for seed in range(24)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def test_mask_matches_generator_occluder_masks(scenes):
    """The near-obstacle mask from noisy depth (with dropouts) recovers the exact occluder pixels."""
    with_occluders = [s for s in scenes if s.occluder_mask.any()]
    assert len(with_occluders) >= 10
    ious = [_iou(compute_occlusion(s.depth_m).mask, s.occluder_mask) for s in with_occluders]
    assert min(ious) > 0.97, ious
    inter = sum(
        np.logical_and(compute_occlusion(s.depth_m).mask, s.occluder_mask).sum() for s in with_occluders
    )
    union = sum(
        np.logical_or(compute_occlusion(s.depth_m).mask, s.occluder_mask).sum() for s in with_occluders
    )
    assert inter / union > 0.99
    for s in with_occluders:
        assert compute_occlusion(s.depth_m).level == pytest.approx(s.occlusion_level, abs=0.01)


def test_speck_cleanup_is_what_makes_the_mask_match(scenes):
    """Without speck removal the sensor dropouts (invalid = blocked) spoil the mask: the cleanup matters."""
    s = scenes[0]
    raw = compute_occlusion(s.depth_m, OcclusionConfig(min_blob_px=0)).mask
    clean = compute_occlusion(s.depth_m).mask
    assert raw.sum() > clean.sum()
    assert _iou(clean, s.occluder_mask) > _iou(raw, s.occluder_mask)


def test_near_invalid_and_far_pixels():
    depth = np.full((40, 50), 3.0, dtype=np.float32)
    depth[5:20, 5:20] = 0.6  # near obstacle, 225 px
    depth[25:35, 30:45] = np.nan  # invalid region, 150 px
    depth[2, 40] = 0.0  # isolated invalid speck
    depth[30, 5] = 0.5  # isolated near speck
    result = compute_occlusion(depth)
    expected = np.zeros_like(result.mask)
    expected[5:20, 5:20] = True
    expected[25:35, 30:45] = True
    np.testing.assert_array_equal(result.mask, expected)
    assert result.level == pytest.approx(375 / depth.size)
    assert result.as_uint8().max() == 255 and result.as_uint8().dtype == np.uint8
    only_near = compute_occlusion(depth, OcclusionConfig(invalid_is_blocked=False)).mask
    assert only_near[5:20, 5:20].all() and not only_near[25:35, 30:45].any()
    farther = compute_occlusion(depth, OcclusionConfig(near_range_m=0.5)).mask
    assert not farther[5:20, 5:20].any()


def test_remove_small_blobs_keeps_large_thin_shapes():
    mask = np.zeros((30, 30), dtype=bool)
    mask[:, 10] = True  # a 1-pixel-wide pole of 30 px survives: area, not width, decides
    mask[3:5, 20:22] = True  # 4 px speck
    cleaned = remove_small_blobs(mask, 20)
    assert cleaned[:, 10].all() and not cleaned[3:5, 20:22].any()


def test_rejects_integer_or_wrong_shape_depth():
    with pytest.raises(TypeError, match="metres"):
        compute_occlusion(np.zeros((4, 4), dtype=np.uint16))
    with pytest.raises(ValueError, match="2-D"):
        compute_occlusion(np.zeros((4, 4, 1), dtype=np.float32))


def test_robust_depth_ignores_single_bad_pixels():
    depth = np.full((20, 20), 2.0, dtype=np.float32)
    depth[10, 10] = 0.3
    depth[10, 11] = 0.0
    assert robust_depth_at(depth, 10, 10, radius_px=2) == pytest.approx(2.0)
    assert math.isnan(robust_depth_at(np.zeros((5, 5), dtype=np.float32), 2, 2))


def test_direction_visibility_basic_cases():
    intr = CameraIntrinsics.from_fov(64, 48, math.radians(70.0))
    extr = MicToCamera((0.1, 0.0, 0.0))
    depth = np.full((48, 64), 5.0, dtype=np.float32)
    ahead = direction_to_unit(0.0, 0.0)
    assert direction_visibility(ahead, 3.0, depth, intr, extr) == Visibility.VISIBLE
    depth[20:28, 28:36] = 0.8  # obstacle right in front
    assert direction_visibility(ahead, 3.0, depth, intr, extr) == Visibility.OCCLUDED
    assert direction_visibility(ahead, 0.9, depth, intr, extr) == Visibility.VISIBLE  # in front of it
    assert (
        direction_visibility(direction_to_unit(math.pi, 0.0), 3.0, depth, intr, extr)
        == Visibility.OUT_OF_VIEW
    )
    left = direction_to_unit(math.radians(60.0), 0.0)  # beyond the 35 degree half field of view
    assert direction_visibility(left, 3.0, depth, intr, extr) == Visibility.OUT_OF_VIEW
    depth[:] = 0.0
    assert direction_visibility(ahead, 3.0, depth, intr, extr) == Visibility.OCCLUDED
    assert (
        direction_visibility(ahead, 3.0, depth, intr, extr, invalid_is_occluded=False) == Visibility.VISIBLE
    )
    with pytest.raises(ValueError, match="does not match"):
        direction_visibility(ahead, 3.0, depth[:10], intr, extr)


def test_direction_visibility_agrees_with_generator_labels(scenes):
    """From depth alone, the label direction's visibility matches the renderer's exact answer.

    The margin must exceed the hazard's own depth extent (objects up to ~0.6 m deep), which
    stays well below the gap between occluders (< 1 m) and hazards (>= 2 m).
    """
    states = [s.visibility for s in scenes]
    assert {Visibility.VISIBLE, Visibility.OCCLUDED, Visibility.OUT_OF_VIEW} <= set(states)
    decided = [
        direction_visibility(s.direction, s.distance, s.depth_m, s.intrinsics, s.extrinsic, margin_m=0.7)
        for s in scenes
    ]
    agree = sum(d == s.visibility for d, s in zip(decided, scenes, strict=True))
    assert agree >= len(scenes) - 1, list(zip(decided, states, strict=True))
