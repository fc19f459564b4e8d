"""The perception node's standard interfaces over real rclpy pub/sub: where vision_msgs, tf2_ros
or audio_common_msgs is missing, each feature says so once and the node goes on answering on its
own messages; where vision_msgs is installed, the hazards also come as Detection3DArray."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from node_harness import MIC_FRAME, TARGET_CLASS, Harness, make_node, wait_for

from avi_ros.ros import conversions
from avi_ros.ros.perception_node import PerceptionNode

pytestmark = pytest.mark.ros

OPTIONAL_PACKAGES = ("vision_msgs", "tf2_ros", "audio_common_msgs")


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@pytest.mark.skipif(
    any(installed(p) for p in OPTIONAL_PACKAGES), reason="a standard interface package is installed"
)
def test_missing_packages_are_said_once_each_and_the_node_goes_on(
    ros_context, beeper_checkpoint, node_scene, monkeypatch
):
    said: list[tuple[str, str]] = []
    original = PerceptionNode._info_once

    def recording(self: PerceptionNode, key: str, message: str) -> None:
        if key not in self._info_logged:  # what the node actually logs: once per key
            said.append((key, message))
        original(self, key, message)

    monkeypatch.setattr(PerceptionNode, "_info_once", recording)
    torch.set_num_threads(2)
    overrides = {"audio.input_type": "audio_common", "target_frame": "odom", "publish_detections": True}
    node = make_node(ros_context, beeper_checkpoint, **overrides)
    assert node.start(), node.configure_error
    harness = Harness(ros_context, node, node_scene, record_optional=False)
    try:
        harness.assert_answers(harness.send_frame())  # FoaAudio in, hazards out
        # Activating again asks for audio_common again: still said only once.
        node.trigger_deactivate()
        node.trigger_activate()
        harness.wait_until_connected()
        answer = harness.assert_answers(harness.send_frame())
        assert answer.header.frame_id == MIC_FRAME and answer.hazards[0].class_id == TARGET_CLASS
    finally:
        harness.close()
    keys = [key for key, _ in said if key.startswith("interop.")]
    assert sorted(keys) == ["interop.audio_common_msgs", "interop.tf2", "interop.vision_msgs"]
    messages = dict(said)
    assert "vision_msgs is not installed" in messages["interop.vision_msgs"]
    assert "'odom'" in messages["interop.tf2"] and MIC_FRAME in messages["interop.tf2"]
    assert "reading avi_ros/FoaAudio instead" in messages["interop.audio_common_msgs"]


def test_detections_are_published_beside_the_hazards_where_vision_msgs_is_installed(
    ros_context, beeper_checkpoint, node_scene
):
    vision = pytest.importorskip("vision_msgs.msg")
    node = make_node(ros_context, beeper_checkpoint, namespace="vision")
    assert node.start(), node.configure_error
    harness = Harness(ros_context, node, node_scene, namespace="vision", record_optional=False)
    received: list = []
    harness.client.create_subscription(vision.Detection3DArray, "hazards/detections", received.append, 10)
    try:
        stamp = harness.send_frame()
        answer = harness.assert_answers(stamp)
        assert wait_for(lambda: any(conversions.stamp_to_ns(m.header.stamp) == stamp for m in received))
        detections = next(m for m in received if conversions.stamp_to_ns(m.header.stamp) == stamp)
        assert detections.header.frame_id == MIC_FRAME
        assert len(detections.detections) == len(answer.hazards) == 1
        assert detections.detections[0].results[0].hypothesis.class_id == "test_beeper"
    finally:
        harness.close()
