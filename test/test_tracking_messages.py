"""The track fields travel through HazardEstimate, rclpy and rosbags alike (one core builder)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tracking_scenes import estimate

from avi_ros.bag.messages import MessageFactory
from avi_ros.message_builders import hazard_from_message
from avi_ros.ros import conversions
from avi_ros.types import TrackState

pytestmark = pytest.mark.ros


def tracked_hazard():
    return replace(
        estimate(0.7, 5.0),
        track_id=42,
        track_state=TrackState.TENTATIVE,
        first_seen_ns=1_700_000_001_250_000_000,
        track_age_s=3.5,
        angular_velocity=-0.25,
        range_rate=-1.5,
    )


def test_track_fields_round_trip_through_the_rclpy_message():
    original = tracked_hazard()
    msg = conversions.hazards_to_msg([original], conversions.make_header(0, "mic")).hazards[0]
    assert (msg.track_id, msg.first_seen.sec, msg.first_seen.nanosec) == (42, 1_700_000_001, 250_000_000)
    assert msg.track_state == msg.TRACK_TENTATIVE
    back = hazard_from_message(msg)
    assert (back.track_id, back.track_state, back.first_seen_ns) == (
        42,
        TrackState.TENTATIVE,
        original.first_seen_ns,
    )
    for name in ("track_age_s", "angular_velocity", "range_rate"):
        assert getattr(back, name) == pytest.approx(getattr(original, name)), name


def test_track_fields_round_trip_through_the_bag_message():
    original = tracked_hazard()
    msg = MessageFactory().hazard_array(7, "mic", [original]).hazards[0]
    back = hazard_from_message(msg)
    assert (back.track_id, back.track_state, back.first_seen_ns, back.range_rate) == (
        42,
        TrackState.TENTATIVE,
        original.first_seen_ns,
        -1.5,
    )


def test_untracked_estimates_carry_zero_track_fields():
    msg = conversions.hazards_to_msg([estimate(0.1, 2.0)], conversions.make_header(0, "mic")).hazards[0]
    assert (msg.track_id, msg.first_seen.sec, msg.first_seen.nanosec, msg.range_rate) == (0, 0, 0, 0.0)
    assert msg.track_state == msg.TRACK_NONE
