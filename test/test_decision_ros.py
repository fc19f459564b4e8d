"""The decision stage at the ROS edge: HazardAssessment's constants and builder, the telemetry
subscriptions over real rclpy pub/sub, bad telemetry counted, and the per-frame assessment."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import rclpy
from avi_ros.msg import HazardAssessment
from estimates import estimate
from nav_msgs.msg import Odometry
from node_harness import isolated_context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu

from avi_ros.decision.checkpoint import save_decision_checkpoint
from avi_ros.decision.features import feature_size
from avi_ros.decision.inference import Assessment
from avi_ros.decision.labels import Reason
from avi_ros.decision.model import DecisionModel, DecisionModelConfig
from avi_ros.events import EventCounter
from avi_ros.ros import conversions
from avi_ros.ros.assessment import NodeDecision, assessment_to_msg, declare_decision_parameters
from avi_ros.ros.telemetry import TelemetryInput, read_telemetry_settings
from avi_ros.taxonomy import Action, HazardClass, RiskLevel, Taxonomy, default_taxonomy
from avi_ros.types import HazardEstimateData, PipelineResult

pytestmark = pytest.mark.ros

NS = 1_000_000_000
TIMEOUT_S = 30.0  # only reached when the awaited message never comes


@pytest.fixture
def context():
    with isolated_context(150 + os.getpid() % 50) as context:
        yield context


def _node(context, **parameters):
    node = rclpy.create_node("decision_test", context=context)
    declare_decision_parameters(node)
    node.set_parameters([Parameter(name, value=value) for name, value in parameters.items()])
    return node


def _imu(stamp_ns: int, frame: str = "base_link", ax: float = 0.5, gz: float = 0.2) -> Imu:
    msg = Imu()
    msg.header = conversions.make_header(stamp_ns, frame)
    msg.linear_acceleration.x, msg.linear_acceleration.z = ax, 9.81
    msg.angular_velocity.z = gz
    return msg


def _odom(stamp_ns: int, child: str = "base_link", v: float = 1.2, w: float = 0.1) -> Odometry:
    msg = Odometry()
    msg.header = conversions.make_header(stamp_ns, "odom")
    msg.child_frame_id = child
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = v, w
    return msg


def test_message_constants_mirror_the_core_enums():
    for level in RiskLevel:
        assert getattr(HazardAssessment, f"RISK_{level.name}") == level
    for reason in Reason:
        assert getattr(HazardAssessment, f"REASON_{reason.name}") == reason
    for action in Action:
        assert getattr(HazardAssessment, action.name) == action


def test_the_builder_sets_every_field():
    assessment = Assessment(
        risk=RiskLevel.HIGH,
        reason=Reason.HUMAN,
        action=Action.STOP,
        confidence=0.75,
        risk_probabilities=np.array([0.1, 0.1, 0.1, 0.7]),
        reason_probabilities=np.array([0.7, 0.1, 0.1, 0.1]),
        action_probabilities=np.array([0.0, 0.1, 0.8, 0.0, 0.05, 0.05]),
        telemetry_missing=True,
    )
    msg = assessment_to_msg(assessment, conversions.make_header(3 * NS, "mic"), [0, 2])
    assert (msg.risk_level, msg.reason, msg.recommended_action) == (3, 0, 2)
    assert msg.confidence == pytest.approx(0.75) and msg.telemetry_missing
    assert list(msg.hazard_indices) == [0, 2]
    np.testing.assert_allclose(msg.action_probabilities, assessment.action_probabilities, atol=1e-7)
    assert msg.header.stamp.sec == 3 and msg.header.frame_id == "mic"


def test_telemetry_arrives_over_sensor_qos_and_aligns_to_the_frame(context):
    node = _node(context, **{"telemetry.imu_topic": "t/imu", "telemetry.odom_topic": "t/odom"})
    sender = rclpy.create_node("decision_sender", context=context)
    telemetry = TelemetryInput(node, read_telemetry_settings(node), EventCounter())
    telemetry.subscribe("best_effort")
    assert telemetry.subscription_count == 2
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # a reliable driver
    imu_pub = sender.create_publisher(Imu, "t/imu", qos)
    odom_pub = sender.create_publisher(Odometry, "t/odom", qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while telemetry.reading(10 * NS).missing and time.monotonic() < deadline:
            imu_pub.publish(_imu(10 * NS - 5_000_000))
            odom_pub.publish(_odom(10 * NS - 20_000_000))
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
    reading = telemetry.reading(10 * NS)
    assert not reading.missing, "no telemetry arrived within the deadline"
    np.testing.assert_allclose(reading.vector, [0.5, 0, 9.81, 0, 0, 0.2, 1.2, 0.1], rtol=1e-5)
    telemetry.unsubscribe()
    assert telemetry.subscription_count == 0 and telemetry.reading(10 * NS).missing
    sender.destroy_node()
    node.destroy_node()


def test_bad_telemetry_is_counted_by_reason_and_ignored(context):
    parameters = {"telemetry.imu_frame": "imu_link", "telemetry.base_frame": "base_footprint"}
    node = _node(context, **parameters)
    events = EventCounter()
    telemetry = TelemetryInput(node, read_telemetry_settings(node), events)
    telemetry.on_imu(_imu(NS, frame="camera_link"))
    telemetry.on_odometry(_odom(NS, child="base_link"))
    nan = _imu(NS, frame="imu_link", ax=float("nan"))
    telemetry.on_imu(nan)
    bad_stamp = _odom(NS, child="base_footprint")
    bad_stamp.header.stamp.nanosec = 2_000_000_000
    telemetry.on_odometry(bad_stamp)
    telemetry.on_odometry(_odom(NS, child="base_footprint"))
    telemetry.reading(NS + 2 * NS)  # the odometry is 2 s old: stale
    assert events.snapshot() == {
        "imu.wrong_frame": 1,
        "odom.wrong_frame": 1,
        "imu.non_finite": 1,
        "odom.bad_stamp": 1,
        "odom.stale": 1,
    }
    reading = telemetry.reading(NS)
    assert reading.imu_missing and not reading.odom_missing
    node.destroy_node()


def _estimate(taxonomy: Taxonomy, class_id: int) -> HazardEstimateData:
    probabilities = np.full(taxonomy.num_classes, 1.0 / taxonomy.num_classes, dtype=np.float32)
    return estimate(
        class_id,
        distance=2.0,
        taxonomy=taxonomy,
        class_probabilities=probabilities,
        occlusion_level=0.1,
        risk_level=RiskLevel.HIGH,
        recommended_action=Action.STOP,
    )


def test_the_node_side_assesses_each_frame_and_refuses_another_taxonomy(context, tmp_path):
    taxonomy = default_taxonomy()
    model = DecisionModel(
        DecisionModelConfig(d_model=16, heads=2, ff_hidden=32), feature_size(taxonomy.num_classes)
    )
    save_decision_checkpoint(tmp_path, model, taxonomy)

    def telemetry(node):  # the node's own input, which the decision stage reads
        return TelemetryInput(node, read_telemetry_settings(node), EventCounter())

    off = _node(context)
    assert NodeDecision.configure(off, telemetry(off), taxonomy) is None  # no model_path: off
    node = _node(context, **{"decision.model_path": str(tmp_path)})
    decision = NodeDecision.configure(node, telemetry(node), taxonomy)
    assert decision is not None
    top = _estimate(taxonomy, taxonomy.class_id("siren"))
    result = PipelineResult(
        hazards=[top], top=top, occlusion_mask=np.zeros((2, 2), np.uint8), occlusion_level=0.1
    )
    msg = decision.assess(result, 5 * NS, conversions.make_header(5 * NS, "mic"))
    assert isinstance(msg, HazardAssessment)
    assert msg.telemetry_missing  # nothing subscribed, nothing received
    assert len(msg.risk_probabilities) == 4 and len(msg.action_probabilities) == 6
    assert msg.header.stamp.sec == 5
    other = Taxonomy((HazardClass("none", RiskLevel.NONE, 0, 0), HazardClass("x", RiskLevel.HIGH, 1, 2)))
    with pytest.raises(ValueError, match="trained on the classes"):
        NodeDecision.configure(node, telemetry(node), other)
    node.destroy_node()
