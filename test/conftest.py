"""Shared pytest fixtures and paths."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Factory: save a tiny untrained model (ResNet-18 at 32 px, d_model 32) as a checkpoint.

    ``class_bias`` sets those entries of the class-logit bias (class id -> value) and
    ``confidence_bias`` fills the confidence bias, so a test can make the model's answer known
    (e.g. never class ``none``, confidence ~1) whatever the input.
    """

    def make(taxonomy, window_s: float = 0.5, class_bias=None, confidence_bias: float | None = None) -> Path:
        from model_helpers import tiny_model

        from avi_ros.checkpoint import save_checkpoint
        from avi_ros.features import FeatureConfig

        model = tiny_model(taxonomy.num_classes, class_bias, confidence_bias)
        return save_checkpoint(
            tmp_path_factory.mktemp("ckpt"), model, FeatureConfig(window_seconds=window_s), taxonomy
        )

    return make


@pytest.fixture(scope="module")
def beeper_checkpoint(tiny_checkpoint) -> Path:
    """The node tests' tiny untrained model over ``node_harness.TAXONOMY``, whose class and
    confidence biases make its answer known: class ``test_beeper`` with confidence ~1, whatever
    the input."""
    from node_harness import TARGET_CLASS, TAXONOMY  # rclpy: only the node tests ask for this

    class_bias = {c: 50.0 if c == TARGET_CLASS else 0.0 for c in range(TAXONOMY.num_classes)}
    return tiny_checkpoint(TAXONOMY, 0.5, class_bias, confidence_bias=50.0)


@pytest.fixture(scope="module")
def node_scene():
    """The scene the node tests stream: 1 s, seed 5, a 64 x 48 px camera."""
    from avi_ros.data.scene import generate_scene
    from avi_ros.data.scene_config import SceneConfig

    return generate_scene(5, SceneConfig(duration_s=1.0).with_image_size(64, 48))


@pytest.fixture(scope="module")
def ros_context(request):
    """An rclpy context of the test module's own, on a DDS domain picked from the process id and
    the module's name, so that modules and parallel runs on one machine do not hear each other."""
    from node_harness import isolated_context  # rclpy: only the ROS tests ask for this

    module_offset = zlib.crc32(request.module.__name__.encode())
    with isolated_context(100 + (os.getpid() + module_offset) % 130) as context:
        yield context
