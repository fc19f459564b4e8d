"""Training and the pipeline feed the model identical inputs for the same scene."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_helpers import tiny_model

from avi_ros.checkpoint import save_checkpoint
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.features import FeatureConfig
from avi_ros.occlusion import OcclusionConfig
from avi_ros.pipeline import Pipeline
from avi_ros.preprocess import Preprocessor
from avi_ros.taxonomy import default_taxonomy
from avi_ros.types import Frame
from training.collect_outputs import prepare_config_of
from training.data import compute_features, prepare_sample

# A non-default occlusion setting saved in the checkpoint: both sides must pick it up from there.
TRAINED_OCCLUSION = OcclusionConfig(near_range_m=1.5, min_blob_px=4)
SCENES = SceneConfig().with_image_size(48, 36)  # the camera the node is given is the scenes' camera


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    taxonomy = default_taxonomy()
    directory = save_checkpoint(
        tmp_path_factory.mktemp("ckpt"),
        tiny_model(taxonomy.num_classes),
        FeatureConfig(window_seconds=0.5),
        taxonomy,
        extra={"occlusion": dataclasses.asdict(TRAINED_OCCLUSION)},
    )
    return Pipeline.from_checkpoint(directory, device="cpu", extrinsic=SCENES.extrinsic)


def test_the_preprocessor_is_bound_to_the_checkpoint(pipeline: Pipeline) -> None:
    features = FeatureConfig(window_seconds=0.5)
    assert pipeline.preprocess == Preprocessor(32, features, TRAINED_OCCLUSION, view_grid=4)
    prepare = prepare_config_of(pipeline.metadata, SCENES)
    assert prepare.preprocess == pipeline.preprocess
    assert prepare.camera == (SCENES.intrinsics, SCENES.extrinsic)


@pytest.mark.parametrize("seed", [3, 11])
def test_training_and_the_pipeline_give_identical_model_inputs(pipeline: Pipeline, seed: int) -> None:
    """Training prepares a generated scene with ``prepare_sample``; the pipeline runs the same scene
    as a Frame: the features, the image and the view tokens reaching the model are equal."""
    scene = generate_scene(seed, SCENES)
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    model = pipeline.model
    pipeline.model = lambda features, visual, view_tokens: (
        seen.append((features, visual, view_tokens)) or model(features, visual, view_tokens)
    )
    try:
        pipeline.run(Frame(scene.rgb, scene.depth_m, scene.intrinsics, scene.audio, 0, scene.sample_rate))
    finally:
        pipeline.model = model

    prepared = prepare_sample(scene, prepare_config_of(pipeline.metadata, SCENES))
    features = compute_features(prepared["audio"][None], pipeline.feature_config, torch.device("cpu"))
    ((live_features, live_visual, live_view_tokens),) = seen
    assert prepared["occlusion_input"] > 0.0  # the scene is not trivially clear
    assert prepared["view_tokens"][:, 3].max() > 0.0  # some direction is blocked
    np.testing.assert_array_equal(live_features.numpy(), features.numpy())
    np.testing.assert_array_equal(live_visual.contiguous().numpy()[0], prepared["visual"])
    np.testing.assert_array_equal(live_view_tokens.numpy()[0], prepared["view_tokens"])
