"""View tokens: cell rays in the microphone frame, blocked fraction, near depth; the Preprocessor's use."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avi_ros.checkpoint import CheckpointMetadata
from avi_ros.features import FeatureConfig
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.models import ModelConfig
from avi_ros.occlusion import OcclusionConfig
from avi_ros.preprocess import Preprocessor
from avi_ros.taxonomy import default_taxonomy
from avi_ros.view_tokens import VIEW_TOKEN_CHANNELS, view_tokens_of

WIDTH, HEIGHT = 40, 30
CAMERA = CameraIntrinsics.from_fov(WIDTH, HEIGHT, math.radians(90.0))
CLEAR = np.zeros((HEIGHT, WIDTH), dtype=bool)
FAR = np.full((HEIGHT, WIDTH), 5.0, dtype=np.float32)


def test_the_centre_cell_looks_along_the_camera_axis_in_the_microphone_frame() -> None:
    tokens = view_tokens_of(CLEAR, FAR, CAMERA, MicToCamera(), grid=5, near_range_m=1.0)
    assert tokens.shape == (25, VIEW_TOKEN_CHANNELS) and tokens.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(tokens[:, :3], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(tokens[12, :3], [1.0, 0.0, 0.0], atol=1e-6)  # x forward
    assert tokens[0, 2] > 0.0 and tokens[24, 2] < 0.0  # top row looks up (z up)
    turned_left = MicToCamera(rpy_rad=(0.0, 0.0, math.pi / 2))
    tokens = view_tokens_of(CLEAR, FAR, CAMERA, turned_left, grid=5, near_range_m=1.0)
    np.testing.assert_allclose(tokens[12, :3], [0.0, 1.0, 0.0], atol=1e-6)  # y left


def test_a_blocked_left_half_marks_the_left_cells_whose_rays_point_left() -> None:
    mask = CLEAR.copy()
    mask[:, : WIDTH // 2] = True
    depth = FAR.copy()
    depth[:, : WIDTH // 2] = 0.5
    tokens = view_tokens_of(mask, depth, CAMERA, MicToCamera(), grid=4, near_range_m=1.0).reshape(4, 4, -1)
    np.testing.assert_allclose(tokens[:, :2, 3], 1.0)
    np.testing.assert_allclose(tokens[:, 2:, 3], 0.0)
    assert (tokens[:, :2, 1] > 0.0).all() and (tokens[:, 2:, 1] < 0.0).all()  # mic y > 0 on the left
    np.testing.assert_allclose(tokens[:, :2, 4], 0.5)  # 0.5 m / near range 1 m
    np.testing.assert_allclose(tokens[:, 2:, 4], 0.0)  # nothing blocked there
    np.testing.assert_allclose(tokens[..., 5], 0.0)  # no hazard mask given


def test_partial_cells_far_occluders_and_the_hazard_mask() -> None:
    mask = CLEAR.copy()
    mask[:, :5] = True  # a quarter of the first column of cells (10 px wide)
    depth = FAR.copy()
    depth[:, :5] = np.nan  # no reading: not in the depth mean
    depth[:, 2:5] = 3.0  # beyond the near range: clipped to 1
    hazard = CLEAR.copy()
    hazard[: HEIGHT // 2, WIDTH // 2 :] = True
    tokens = view_tokens_of(mask, depth, CAMERA, MicToCamera(), 2, 1.0, hazard_mask=hazard).reshape(2, 2, -1)
    np.testing.assert_allclose(tokens[:, 0, 3], 0.25, atol=1e-6)
    np.testing.assert_allclose(tokens[:, 0, 4], 1.0)
    np.testing.assert_allclose(tokens[..., 5], [[0.0, 1.0], [0.0, 0.0]])


def test_mismatched_inputs_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="scale the intrinsics"):
        view_tokens_of(CLEAR[:, :20], FAR[:, :20], CAMERA, MicToCamera(), 4, 1.0)
    with pytest.raises(ValueError, match="grid"):
        view_tokens_of(CLEAR, FAR, CAMERA, MicToCamera(), 0, 1.0)


def _view(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth = FAR.copy()
    depth[5:20, 3:15] = 0.6
    audio = rng.standard_normal((4, 12_000)).astype(np.float32)
    return rgb, depth, audio


def test_the_preprocessor_without_a_view_grid_is_unchanged() -> None:
    features, occlusion = FeatureConfig(window_seconds=0.5), OcclusionConfig(min_blob_px=4)
    plain = Preprocessor(32, features, occlusion)
    rgb, depth, audio = _view()
    before = plain(rgb, depth, audio, 24_000)
    after = plain(rgb, depth, audio, 24_000, CAMERA, MicToCamera())
    assert before.view_tokens is None and after.view_tokens is None
    np.testing.assert_array_equal(before.visual, after.visual)
    np.testing.assert_array_equal(before.audio, after.audio)

    with_grid = Preprocessor(32, features, occlusion, view_grid=6)
    inputs = with_grid(rgb, depth, audio, 24_000, CAMERA)
    expected = view_tokens_of(inputs.occlusion.mask, depth, CAMERA, MicToCamera(), 6, occlusion.near_range_m)
    np.testing.assert_array_equal(inputs.view_tokens, expected)
    np.testing.assert_array_equal(inputs.visual, before.visual)
    assert inputs.view_tokens[:, 3].max() > 0.0
    assert with_grid(rgb, depth, audio, 24_000).view_tokens is None  # no camera, no tokens


@pytest.mark.parametrize("slots", [1, 3])
def test_from_metadata_reads_the_models_view_grid(slots: int) -> None:
    taxonomy = default_taxonomy()
    metadata = CheckpointMetadata(
        model_config=ModelConfig(num_classes=taxonomy.num_classes, hazard_slots=slots, view_grid=5),
        feature_config=FeatureConfig(),
        taxonomy=taxonomy,
        normalization={},
    )
    assert Preprocessor.from_metadata(metadata).view_grid == 5
