"""Pipeline: Frame -> PipelineResult on a tiny checkpoint, on the CPU."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import tiny_model

from avi_ros.checkpoint import load_checkpoint, save_checkpoint
from avi_ros.device import resolve_device
from avi_ros.features import FeatureConfig
from avi_ros.geometry import CameraIntrinsics, MicToCamera, direction_to_unit
from avi_ros.occlusion import OcclusionConfig, compute_occlusion, direction_visibility
from avi_ros.pipeline import Pipeline
from avi_ros.preprocess import audio_window
from avi_ros.taxonomy import Action, RiskLevel, Visibility, default_taxonomy
from avi_ros.types import Frame
from avi_ros.vision import IMAGENET_MEAN, IMAGENET_STD, MAX_DEPTH_M, visual_input

TAXONOMY = default_taxonomy()
HEIGHT, WIDTH = 48, 64
FAVOURED_CLASS = 3  # the tiny model is biased towards this class so it is never "none"


def make_checkpoint(directory: Path, class_bias: float) -> Path:
    """A tiny one-slot model (K = 1: one answer per frame) biased towards ``FAVOURED_CLASS``."""
    model = tiny_model(TAXONOMY.num_classes, {FAVOURED_CLASS: class_bias}, image_size=64)
    return save_checkpoint(
        directory, model, FeatureConfig(), TAXONOMY, extra={"occlusion": {"near_range_m": 0.7}}
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("pipeline") / "ckpt", class_bias=20.0)


@pytest.fixture(scope="module")
def pipeline(checkpoint: Path) -> Pipeline:
    return Pipeline.from_checkpoint(checkpoint, device="cpu", confidence_threshold=0.0)


def make_frame(seed: int = 0, samples: int = 30_000, sample_rate: int = 24_000) -> Frame:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 6.0, (HEIGHT, WIDTH)).astype(np.float32)
    depth[:20, :30] = 0.4  # a near obstacle in the top-left corner
    depth[40:, 50:] = np.nan  # no reading
    return Frame(
        rgb=rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
        depth_m=depth,
        intrinsics=CameraIntrinsics.from_fov(WIDTH, HEIGHT, math.radians(70.0)),
        audio=(rng.standard_normal((4, samples)) * 0.1).astype(np.float32),
        stamp_ns=123,
        sample_rate=sample_rate,
    )


def test_every_field_of_the_estimate_is_filled_and_in_range(pipeline: Pipeline) -> None:
    frame = make_frame()
    result = pipeline.run(frame)
    top = result.top
    assert top.class_id == FAVOURED_CLASS and top.class_name == TAXONOMY.names[FAVOURED_CLASS]
    assert top.class_probabilities.shape == (TAXONOMY.num_classes,)
    assert top.class_probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert int(np.argmax(top.class_probabilities)) == top.class_id
    assert -math.pi <= top.azimuth <= math.pi and -math.pi / 2 <= top.elevation <= math.pi / 2
    assert np.linalg.norm(top.direction) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(direction_to_unit(top.azimuth, top.elevation), top.direction, atol=1e-6)
    assert top.distance > 0.0 and math.isfinite(top.distance)
    assert 0.0 <= top.confidence <= 1.0
    assert 0.0 <= top.audio_weight <= 1.0 and 0.0 <= top.visual_weight <= 1.0
    assert top.audio_weight + top.visual_weight == pytest.approx(1.0, abs=1e-5)
    assert isinstance(top.risk_level, RiskLevel) and isinstance(top.recommended_action, Action)

    occlusion = compute_occlusion(frame.depth_m, OcclusionConfig(near_range_m=0.7))  # from the checkpoint
    assert top.occlusion_level == pytest.approx(occlusion.level) == result.occlusion_level
    assert 0.2 < result.occlusion_level < 0.4
    np.testing.assert_array_equal(result.occlusion_mask, occlusion.mask.astype(np.uint8) * 255)
    assert result.occlusion_mask.dtype == np.uint8 and result.occlusion_mask.shape == (HEIGHT, WIDTH)
    expected_visibility = direction_visibility(
        top.direction, top.distance, frame.depth_m, frame.intrinsics, MicToCamera()
    )
    assert isinstance(top.visibility, Visibility) and top.visibility == expected_visibility
    assert result.hazards == [top]  # threshold 0 and a real class
    assert set(result.timings_ms) == {"prepare", "features", "model", "total"}


def test_threshold_and_background_leave_hazards_empty(checkpoint: Path) -> None:
    strict = Pipeline.from_checkpoint(checkpoint, device="cpu", confidence_threshold=1.0)
    result = strict.run(make_frame())
    assert result.hazards == [] and result.top.class_id == FAVOURED_CLASS
    background = Pipeline.from_checkpoint(checkpoint, device="cpu", confidence_threshold=0.0)
    with torch.no_grad():
        background.model.head.class_logits.bias[0] += 100.0  # make "none" win
    result = background.run(make_frame())
    assert result.top.class_id == 0 and result.top.class_name == "none"
    assert result.hazards == []


def test_batch_equals_single_frames(pipeline: Pipeline) -> None:
    frames = [make_frame(seed) for seed in range(3)]
    batch = pipeline.run_batch(frames)
    for frame, batched in zip(frames, batch, strict=True):
        single = pipeline.run(frame).top
        np.testing.assert_allclose(batched.top.class_probabilities, single.class_probabilities, atol=1e-5)
        np.testing.assert_allclose(batched.top.direction, single.direction, atol=1e-5)
        assert batched.top.distance == pytest.approx(single.distance, rel=1e-5)


def test_short_and_resampled_audio_are_accepted(pipeline: Pipeline) -> None:
    short = pipeline.run(make_frame(samples=5_000)).top
    resampled = pipeline.run(make_frame(samples=48_000, sample_rate=48_000)).top
    for estimate in (short, resampled):
        assert estimate.class_probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_audio_window_keeps_the_newest_samples() -> None:
    config = FeatureConfig(window_seconds=0.5)
    audio = np.arange(4 * 20_000, dtype=np.float32).reshape(4, 20_000)
    window = audio_window(audio, 24_000, config)
    assert window.shape == (4, 12_000)
    np.testing.assert_array_equal(window, audio[:, -12_000:])
    short = audio_window(audio[:, :1_000], 24_000, config)
    assert short.shape == (4, 12_000)
    assert not short[:, :11_000].any()
    np.testing.assert_array_equal(short[:, 11_000:], audio[:, :1_000])
    with pytest.raises(ValueError, match="audio"):
        audio_window(audio[:2], 24_000, config)


def test_pipeline_attributes_and_warmup(pipeline: Pipeline) -> None:
    assert pipeline.window_samples == 24_000
    assert pipeline.taxonomy == TAXONOMY
    assert pipeline.feature_config == FeatureConfig()
    assert pipeline.device == torch.device("cpu") and pipeline.precision == "fp32"
    assert pipeline.occlusion_config == OcclusionConfig(near_range_m=0.7)
    pipeline.warmup(iterations=1)


def test_bad_frames_are_refused_with_a_reason(pipeline: Pipeline) -> None:
    frame = make_frame()
    frame.depth_m = frame.depth_m[:, :-1]
    with pytest.raises(ValueError, match="depth"):
        pipeline.run(frame)
    frame = make_frame()
    frame.rgb = frame.rgb.astype(np.float32)
    with pytest.raises(ValueError, match="uint8"):
        pipeline.run(frame)
    frame = make_frame()
    frame.intrinsics = CameraIntrinsics.from_fov(2 * WIDTH, 2 * HEIGHT, 1.0)
    with pytest.raises(ValueError, match="intrinsics"):
        pipeline.run(frame)


def test_auto_device_and_missing_checkpoint(tmp_path: Path) -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(FileNotFoundError, match=r"train\.py"):
        Pipeline.from_checkpoint(tmp_path / "missing", device="cpu")


def test_visual_input_channels() -> None:
    rgb = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    depth = np.full((HEIGHT, WIDTH), 2.5, dtype=np.float32)
    depth[:, :16] = 0.0  # no reading
    depth[:, 16:32] = np.inf
    depth[:, 32:48] = 50.0  # beyond MAX_DEPTH_M
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[: HEIGHT // 2] = True
    image = visual_input(rgb, depth, mask, 32)
    assert image.shape == (5, 32, 32) and image.dtype == np.float32
    np.testing.assert_allclose(image[:3, 0, 0], (1.0 - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-6)
    assert not image[3, :, :16].any()  # 0 and inf -> 0
    np.testing.assert_allclose(image[3, :, 16:24], 1.0)  # clipped to MAX_DEPTH_M, scaled to 1
    np.testing.assert_allclose(image[3, :, 24:], 2.5 / MAX_DEPTH_M)
    assert set(np.unique(image[4])) == {0.0, 1.0}
    assert image[4, :16].all() and not image[4, 16:].any()
    with pytest.raises(ValueError, match="rgb"):
        visual_input(rgb[..., :2], depth, mask, 32)
    with pytest.raises(ValueError, match="depth"):
        visual_input(rgb, depth[1:], mask, 32)


def test_reduced_precision_stays_close_to_fp32(checkpoint: Path, pipeline: Pipeline) -> None:
    """bf16 autocast (the CUDA default; available on CPU too) changes the estimate only slightly."""
    reduced = Pipeline.from_checkpoint(checkpoint, device="cpu", precision="bf16")
    assert reduced.precision == "bf16"
    frame = make_frame(seed=5)
    full, low = pipeline.run(frame).top, reduced.run(frame).top
    np.testing.assert_allclose(low.class_probabilities, full.class_probabilities, atol=0.02)
    assert math.degrees(math.acos(min(1.0, float(np.dot(low.direction, full.direction))))) < 5.0
    assert low.distance == pytest.approx(full.distance, rel=0.05)


def test_folded_batchnorm_gives_the_same_estimate(checkpoint: Path, pipeline: Pipeline) -> None:
    model, metadata = load_checkpoint(checkpoint)
    unfolded = Pipeline.from_model(
        model,
        metadata.feature_config,
        metadata.taxonomy,
        device="cpu",
        occlusion_config=pipeline.occlusion_config,
    )
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in unfolded.model.visual_encoder.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in pipeline.model.visual_encoder.modules())
    frame = make_frame(seed=7)
    folded_top, unfolded_top = pipeline.run(frame).top, unfolded.run(frame).top
    np.testing.assert_allclose(folded_top.class_probabilities, unfolded_top.class_probabilities, atol=1e-5)
    np.testing.assert_allclose(folded_top.direction, unfolded_top.direction, atol=1e-5)
