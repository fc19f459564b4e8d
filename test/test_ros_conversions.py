"""The ROS edge without a running graph: message conversions, markers, diagnostics, QoS hints, tf math.

The rclpy messages and the rosbags messages of a bag come from the same core builders, so they
are compared field by field here."""

from __future__ import annotations

import array
import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import QoSPolicyKind, ReliabilityPolicy
from visualization_msgs.msg import Marker

from avi_ros import hazard_markers as marker_contract
from avi_ros.bag.messages import MessageFactory
from avi_ros.geometry import CameraIntrinsics, direction_to_unit, rotation_from_rpy
from avi_ros.hazard_markers import RISK_COLORS, MarkerStyle
from avi_ros.message_builders import hazard_from_message
from avi_ros.ros import conversions
from avi_ros.ros.conversions import hazard_markers
from avi_ros.ros.diagnostics import NodeStats, diagnostic_array, diagnostic_values
from avi_ros.ros.extrinsic import rpy_from_quaternion
from avi_ros.ros.qos import qos_mismatch_hint, sensor_qos
from avi_ros.sensor_decoding import (
    decode_camera_info_message,
    decode_color_message,
    decode_depth_message,
    decode_foa_message,
)
from avi_ros.taxonomy import Action, RiskLevel, Visibility
from avi_ros.types import HazardEstimateData

pytestmark = pytest.mark.ros


def hazard(
    distance=3.0, confidence=0.8, risk=RiskLevel.HIGH, azimuth=0.5, elevation=0.1
) -> HazardEstimateData:
    return HazardEstimateData(
        class_id=2,
        class_name="car_horn",
        class_probabilities=np.array([0.1, 0.1, 0.8], np.float32),
        azimuth=azimuth,
        elevation=elevation,
        distance=distance,
        direction=direction_to_unit(azimuth, elevation),
        confidence=confidence,
        occlusion_level=0.3,
        visibility=Visibility.OCCLUDED,
        audio_weight=0.7,
        visual_weight=0.3,
        risk_level=risk,
        recommended_action=Action.STOP,
    )


def test_stamps_round_trip():
    stamp = 1_700_000_123_456_789_012
    assert conversions.stamp_to_ns(conversions.ns_to_stamp(stamp)) == stamp


def test_hazard_message_carries_every_field():
    h = hazard()
    msg = conversions.hazards_to_msg([h], conversions.make_header(5, "mic")).hazards[0]
    assert (msg.class_id, msg.class_name, msg.visibility, msg.risk_level, msg.recommended_action) == (
        2,
        "car_horn",
        Visibility.OCCLUDED,
        RiskLevel.HIGH,
        Action.STOP,
    )
    np.testing.assert_allclose(msg.class_probabilities, h.class_probabilities)
    np.testing.assert_allclose([msg.direction.x, msg.direction.y, msg.direction.z], h.direction)
    assert msg.azimuth == pytest.approx(0.5) and msg.distance == pytest.approx(3.0)
    assert msg.audio_weight == pytest.approx(0.7) and msg.occlusion_level == pytest.approx(0.3)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_images_and_audio_round_trip_through_messages(encoding):
    header = conversions.make_header(0, "cam")
    depth = np.array([[0.0, 1.234], [2.5, np.nan]], np.float32)
    back = decode_depth_message(conversions.depth_to_msg(depth, header, encoding))
    expected = np.nan_to_num(depth, nan=0.0) if encoding == "16UC1" else depth
    np.testing.assert_allclose(back, expected, atol=1e-3)
    rgb = np.random.default_rng(0).integers(0, 255, (3, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_color_message(conversions.image_to_msg(rgb, "rgb8", header)), rgb)
    k = CameraIntrinsics.from_fov(4, 3, 1.0)
    assert decode_camera_info_message(conversions.camera_info_to_msg(k, header), rgb.shape) == k
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (4, 480)).astype(np.float32)
    np.testing.assert_allclose(decode_foa_message(conversions.foa_to_msg(audio, 0, "mic")).audio, audio)


def test_markers_arrow_per_hazard_with_length_colour_label_and_lifetime():
    header = conversions.make_header(7, "mic")
    near, far = hazard(distance=0.1, risk=RiskLevel.LOW), hazard(distance=50.0, risk=RiskLevel.HIGH)
    markers = hazard_markers(
        [near, far], header, MarkerStyle(min_length_m=0.3, max_length_m=5.0, lifetime_s=0.75)
    ).markers
    assert markers[0].action == Marker.DELETEALL
    arrows = [m for m in markers if m.action == Marker.ADD and m.type == Marker.ARROW]
    labels = [m for m in markers if m.type == Marker.TEXT_VIEW_FACING]
    assert len(arrows) == len(labels) == 2
    lengths = [
        math.dist(
            (a.points[0].x, a.points[0].y, a.points[0].z), (a.points[1].x, a.points[1].y, a.points[1].z)
        )
        for a in arrows
    ]
    assert lengths == pytest.approx([0.3, 5.0])
    tip = np.array([arrows[1].points[1].x, arrows[1].points[1].y, arrows[1].points[1].z])
    np.testing.assert_allclose(tip / 5.0, far.direction, atol=1e-6)
    assert (arrows[0].color.r, arrows[0].color.g, arrows[0].color.b) == pytest.approx(
        RISK_COLORS[RiskLevel.LOW][:3]
    )
    assert (arrows[1].color.r, arrows[1].color.g) == pytest.approx(RISK_COLORS[RiskLevel.HIGH][:2])
    assert labels[0].text == "car_horn 0.80"
    assert all(m.lifetime.sec == 0 and m.lifetime.nanosec == 750_000_000 for m in arrows + labels)
    assert all(m.header.frame_id == "mic" for m in markers)

    by_confidence = hazard_markers(
        [hazard(confidence=0.5)], header, MarkerStyle(length_mode="confidence")
    ).markers[1]
    assert math.dist(
        (0, 0, 0), (by_confidence.points[1].x, by_confidence.points[1].y, by_confidence.points[1].z)
    ) == (pytest.approx(2.5))
    with pytest.raises(ValueError, match="length_mode"):
        MarkerStyle(length_mode="size")


def assert_same_fields(ros_msg, bag_msg, where: str = "msg") -> None:
    """Every field of an rclpy message equals the field of the same name of a rosbags message."""
    for name in ros_msg.get_fields_and_field_types():
        ours, theirs, path = getattr(ros_msg, name), getattr(bag_msg, name), f"{where}.{name}"
        if hasattr(ours, "get_fields_and_field_types"):
            assert_same_fields(ours, theirs, path)
        elif isinstance(ours, list) and ours and hasattr(ours[0], "get_fields_and_field_types"):
            assert len(ours) == len(theirs), path
            for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
                assert_same_fields(a, b, f"{path}[{index}]")
        elif isinstance(ours, array.array | bytes | np.ndarray | list):
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=path)
        else:
            assert ours == theirs, path


def test_node_and_bag_messages_are_built_alike():
    header, factory = conversions.make_header(7_000_000_123, "mic"), MessageFactory()
    style = MarkerStyle(length_mode="confidence", lifetime_s=1.25)
    hazards = [hazard(distance=0.1, risk=RiskLevel.LOW), hazard(distance=50.0, azimuth=-2.0)]
    assert_same_fields(
        conversions.hazards_to_msg(hazards, header), factory.hazard_array(7_000_000_123, "mic", hazards)
    )
    assert_same_fields(
        hazard_markers(hazards, header, style), factory.hazard_markers(7_000_000_123, "mic", hazards, style)
    )
    depth = np.array([[0.0, 1.2344], [-1.0, np.nan], [70.0, 65.5]], np.float32)
    for encoding in ("16UC1", "32FC1"):
        ros_depth = conversions.depth_to_msg(depth, header, encoding)
        assert_same_fields(ros_depth, factory.depth_image(7_000_000_123, "mic", depth, encoding))
    np.testing.assert_array_equal(
        decode_depth_message(conversions.depth_to_msg(depth, header, "16UC1")),
        np.array([[0.0, 1.234], [0.0, 0.0], [0.0, 65.5]], np.float32),  # 0 = no reading, 70 m is out of range
    )
    rgb = np.random.default_rng(2).integers(0, 255, (3, 4, 3), dtype=np.uint8)
    assert_same_fields(
        conversions.image_to_msg(rgb, "rgb8", header), factory.rgb_image(7_000_000_123, "mic", rgb)
    )
    k = CameraIntrinsics.from_fov(4, 3, 1.0)
    assert_same_fields(
        conversions.camera_info_to_msg(k, header), factory.camera_info(7_000_000_123, "mic", k)
    )
    audio = np.random.default_rng(3).uniform(-0.5, 0.5, (4, 480)).astype(np.float32)
    for sample_format in ("float32", "int16"):
        assert_same_fields(
            conversions.foa_to_msg(audio, 7_000_000_123, "mic", sample_format),
            factory.foa_audio(7_000_000_123, "mic", audio, sample_format),
        )


def test_hazard_message_round_trips_to_the_same_estimate():
    original = hazard(distance=4.5, azimuth=-1.0)
    back = hazard_from_message(
        conversions.hazards_to_msg([original], conversions.make_header(0, "")).hazards[0]
    )
    for name in ("class_id", "class_name", "visibility", "risk_level", "recommended_action"):
        assert getattr(back, name) == getattr(original, name), name
    for name in ("azimuth", "elevation", "distance", "confidence", "occlusion_level", "audio_weight"):
        assert getattr(back, name) == pytest.approx(getattr(original, name), rel=1e-6), name
    np.testing.assert_allclose(back.direction, original.direction, atol=1e-12)
    np.testing.assert_array_equal(back.class_probabilities, original.class_probabilities)


def test_core_marker_constants_are_the_message_contracts():
    assert (marker_contract.MARKER_ARROW, marker_contract.MARKER_TEXT_VIEW_FACING) == (
        Marker.ARROW,
        Marker.TEXT_VIEW_FACING,
    )
    assert (marker_contract.MARKER_ADD, marker_contract.MARKER_DELETEALL) == (Marker.ADD, Marker.DELETEALL)


def test_diagnostics_group_counts_and_warn_on_new_events():
    stats = NodeStats()
    stats.message_in("audio")
    stats.message_in("audio")
    stats.rgbd_received(7)
    stats.frame_done(7, inference_ms=12.0, stamp_age_ms=30.0, inference_thread_cpu_s=0.5, model_ms=8.0)
    events = {"audio.bad_channels": 2, "frame.audio_timeout": 1, "audio.gap": 3, "rgbd.unmatched": 4}
    header = conversions.make_header(0, "")
    array = diagnostic_array(stats.snapshot(events), header, "perception", "hw")
    values = diagnostic_values(array)
    assert array.status[0].level == DiagnosticStatus.WARN
    assert values["bad.audio.bad_channels"] == "2" and values["bad_messages"] == "2"
    assert values["dropped.frame.audio_timeout"] == "1" and values["dropped.rgbd.unmatched"] == "4"
    assert values["frames_dropped"] == "5" and values["audio_gaps"] == "3" and values["errors"] == "0"
    assert values["messages_in.audio"] == "2"
    assert float(values["inference_ms.p50"]) == pytest.approx(12.0)
    assert float(values["stamp_age_ms.p95"]) == pytest.approx(30.0)
    assert 0.0 <= float(values["end_to_end_ms.p95"]) < 60_000.0  # set received -> published
    assert float(values["cpu_percent.inference_thread"]) > 0.0
    assert float(values["cpu_percent.model_forward"]) > 0.0
    # Nothing new since the last snapshot and inputs alive: OK.
    again = diagnostic_array(stats.snapshot(events), header, "perception", "hw")
    assert again.status[0].level == DiagnosticStatus.OK


def test_diagnostics_report_node_errors_as_errors():
    stats = NodeStats()
    stats.message_in("rgb")
    events = {"internal_error.KeyError": 1, "inference.error": 2, "rgb.truncated": 1}
    array = diagnostic_array(stats.snapshot(events), conversions.make_header(0, ""), "perception", "hw")
    values = diagnostic_values(array)
    assert array.status[0].level == DiagnosticStatus.ERROR
    assert "internal_error.KeyError" in array.status[0].message
    assert values["error.internal_error.KeyError"] == "1" and values["error.inference.error"] == "2"
    assert values["errors"] == "3" and values["bad_messages"] == "1"


def test_sensor_qos_and_mismatch_hint():
    assert sensor_qos("best_effort", 5).reliability == ReliabilityPolicy.BEST_EFFORT
    assert sensor_qos("reliable", 50).depth == 50
    with pytest.raises(ValueError, match="qos_reliability"):
        sensor_qos("sometimes", 5)

    class Info:
        total_count = 1
        last_policy_kind = QoSPolicyKind.RELIABILITY.value

    hint = qos_mismatch_hint("/ns/rgb/image_raw", "reliable", Info())
    assert "/ns/rgb/image_raw" in hint and "RELIABILITY" in hint and "qos_reliability:=best_effort" in hint


@pytest.mark.parametrize("rpy", [(0.0, 0.0, 0.0), (0.3, -0.2, 1.1), (-1.0, 0.5, -2.5)])
def test_quaternion_to_rpy_matches_the_geometry_convention(rpy):
    r = rotation_from_rpy(*rpy)
    w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2.0
    x = (r[2, 1] - r[1, 2]) / (4 * w)
    y = (r[0, 2] - r[2, 0]) / (4 * w)
    z = (r[1, 0] - r[0, 1]) / (4 * w)
    np.testing.assert_allclose(rotation_from_rpy(*rpy_from_quaternion(x, y, z, w)), r, atol=1e-9)
