"""The perception node with a decision stage: one HazardAssessment per processed frame, with the
telemetry flag, and the Imu / Odometry subscriptions feeding it."""

from __future__ import annotations

import os

import pytest
import rclpy
import torch
from avi_ros.msg import HazardAssessment
from nav_msgs.msg import Odometry
from node_harness import TAXONOMY, Harness, make_node, wait_for

from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.decision.checkpoint import save_decision_checkpoint
from avi_ros.decision.features import feature_size
from avi_ros.decision.model import DecisionModel, DecisionModelConfig
from avi_ros.ros import conversions

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def decision_harness(tiny_checkpoint, tmp_path_factory):
    class_bias = {c: 50.0 if c == 2 else 0.0 for c in range(TAXONOMY.num_classes)}
    checkpoint = tiny_checkpoint(TAXONOMY, 0.5, class_bias, confidence_bias=50.0)
    decision_dir = tmp_path_factory.mktemp("decision")
    model = DecisionModel(
        DecisionModelConfig(d_model=16, heads=2, ff_hidden=32), feature_size(TAXONOMY.num_classes)
    )
    save_decision_checkpoint(decision_dir, model, TAXONOMY)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=160 + os.getpid() % 40)
    torch.set_num_threads(2)
    node = make_node(
        context,
        checkpoint,
        **{
            "decision.model_path": str(decision_dir),
            "telemetry.imu_topic": "",
            "telemetry.odom_topic": "odom",
        },
    )
    assert node.start(), node.configure_error
    scene = generate_scene(5, SceneConfig(duration_s=1.0).with_image_size(64, 48))
    harness = Harness(context, node, scene)
    harness.assessments = []
    harness.client.create_subscription(HazardAssessment, "hazard_assessment", harness.assessments.append, 50)
    harness.odom = harness.client.create_publisher(Odometry, "odom", 50)
    yield harness
    harness.close()
    rclpy.shutdown(context=context)


def _assessment_for(harness, stamp_ns):
    return next((m for m in harness.assessments if conversions.stamp_to_ns(m.header.stamp) == stamp_ns), None)


def test_each_frame_gets_an_assessment_flagging_the_missing_telemetry(decision_harness):
    h = decision_harness
    stamp = h.send_frame()
    h.assert_answers(stamp)
    assert wait_for(lambda: _assessment_for(h, stamp) is not None)
    msg = _assessment_for(h, stamp)
    assert msg.telemetry_missing
    assert len(msg.risk_probabilities) == 4 and len(msg.action_probabilities) == 6
    assert h.node.count_subscribers(h.node.resolve_topic_name("hazard_assessment")) >= 1


def test_odometry_reaches_the_assessment_and_nan_is_counted(decision_harness):
    h = decision_harness
    stamp = h.advance()
    good = Odometry()
    good.header = conversions.make_header(stamp - 10_000_000, "odom")
    good.twist.twist.linear.x = 1.0
    bad = Odometry()
    bad.header = conversions.make_header(stamp - 20_000_000, "odom")
    bad.twist.twist.linear.x = float("nan")
    assert wait_for(lambda: h.odom.get_subscription_count() > 0)
    h.odom.publish(bad)
    h.odom.publish(good)
    assert wait_for(lambda: h.node.events["odom.non_finite"] == 1)
    assert wait_for(lambda: not h.node.decision.telemetry.reading(stamp).odom_missing)
    h.send_frame(stamp)
    assert wait_for(lambda: _assessment_for(h, stamp) is not None)
    assert _assessment_for(h, stamp).telemetry_missing  # the IMU part is still missing (no topic)
    assert wait_for(lambda: h.diagnostic("bad.odom.non_finite") == "1")
