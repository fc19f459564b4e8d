"""The generated messages travel intact through real rclpy pub/sub, and their constants
agree with the core enums (the core cannot import messages, so it keeps mirrors)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from avi_ros.msg import FoaAudio, HazardEstimate, HazardEstimateArray
from geometry_msgs.msg import Vector3
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from avi_ros.audio import encode_pcm
from avi_ros.taxonomy import Action, RiskLevel, Visibility
from avi_ros.types import TrackState

pytestmark = pytest.mark.ros


@pytest.fixture
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def _round_trip(context, msg_type, topic: str, message):
    """Publish `message` until it arrives on a subscription of another node; return it."""
    sender = rclpy.create_node("sender", context=context)
    receiver = rclpy.create_node("receiver", context=context)
    received = []
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    receiver.create_subscription(msg_type, topic, received.append, qos)
    publisher = sender.create_publisher(msg_type, topic, qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(receiver)
    deadline = time.monotonic() + 10.0
    try:
        while not received and time.monotonic() < deadline:
            publisher.publish(message)
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        sender.destroy_node()
        receiver.destroy_node()
    assert received, f"nothing arrived on {topic} within 10 s"
    return received[0]


def test_foa_audio_round_trip(ros_context):
    audio = (np.random.default_rng(0).standard_normal((4, 480)) * 0.1).astype(np.float32)
    msg = FoaAudio()
    msg.header.stamp.sec = 12
    msg.header.stamp.nanosec = 345_000_000
    msg.header.frame_id = "foa_mic"
    msg.format = FoaAudio.FORMAT_FLOAT32
    msg.sample_rate = 24000
    msg.channel_count = 4
    msg.frame_sample_count = 480
    msg.channel_order = FoaAudio.ORDER_ACN
    msg.normalization = FoaAudio.NORM_SN3D
    msg.data = encode_pcm(audio, "float32")

    got = _round_trip(ros_context, FoaAudio, "foa_round_trip", msg)

    assert (got.header.stamp.sec, got.header.stamp.nanosec) == (12, 345_000_000)
    assert got.header.frame_id == "foa_mic"
    assert got.format == "float32"
    assert (got.sample_rate, got.channel_count, got.frame_sample_count) == (24000, 4, 480)
    assert (got.channel_order, got.normalization) == ("ACN", "SN3D")
    decoded = np.frombuffer(bytes(got.data), dtype="<f4").reshape(480, 4).T
    np.testing.assert_array_equal(decoded, audio)


def _hazard(class_id: int, name: str) -> HazardEstimate:
    h = HazardEstimate()
    h.class_id = class_id
    h.class_name = name
    h.class_probabilities = [0.1, 0.7, 0.2]
    h.azimuth = 1.25
    h.elevation = -0.1
    h.distance = 3.5
    h.direction = Vector3(x=0.31, y=0.94, z=-0.1)
    h.confidence = 0.8
    h.occlusion_level = 0.6
    h.visibility = HazardEstimate.OCCLUDED
    h.audio_weight = 0.7
    h.visual_weight = 0.3
    h.risk_level = HazardEstimate.RISK_HIGH
    h.recommended_action = HazardEstimate.TURN_RIGHT
    return h


def test_hazard_estimate_array_round_trip(ros_context):
    msg = HazardEstimateArray()
    msg.header.stamp.sec = 7
    msg.header.frame_id = "foa_mic"
    msg.hazards = [_hazard(1, "siren"), _hazard(2, "dog_bark")]

    got = _round_trip(ros_context, HazardEstimateArray, "hazard_round_trip", msg)

    assert got.header.stamp.sec == 7 and got.header.frame_id == "foa_mic"
    assert [h.class_name for h in got.hazards] == ["siren", "dog_bark"]
    for sent, h in zip(msg.hazards, got.hazards, strict=True):
        assert h.class_id == sent.class_id
        np.testing.assert_allclose(h.class_probabilities, [0.1, 0.7, 0.2], rtol=1e-6)
        for name in ("azimuth", "elevation", "distance", "confidence", "occlusion_level"):
            assert getattr(h, name) == pytest.approx(getattr(sent, name), rel=1e-6), name
        assert (h.audio_weight, h.visual_weight) == pytest.approx((0.7, 0.3), rel=1e-6)
        assert (h.direction.x, h.direction.y, h.direction.z) == pytest.approx((0.31, 0.94, -0.1))
        assert h.visibility == HazardEstimate.OCCLUDED
        assert h.risk_level == HazardEstimate.RISK_HIGH
        assert h.recommended_action == HazardEstimate.TURN_RIGHT


@pytest.mark.parametrize(
    ("enum", "prefix"),
    [(Visibility, ""), (RiskLevel, "RISK_"), (Action, ""), (TrackState, "TRACK_")],
)
def test_message_constants_match_core_enums(enum, prefix):
    for member in enum:
        assert getattr(HazardEstimate, prefix + member.name) == member.value, member
