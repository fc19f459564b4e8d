"""Tracks in the live node: published hazards carry track fields (tentative from the first frame,
confirmed after ``min_hits`` under the same id), RViz trails, the odometry's speed and yaw rate
reach the tracker, a reset (clock jump, deactivation, stamps going back) starts new tracks,
diagnostics count confirmed tracks, and ``tracking.enabled: false`` publishes untracked.

Over real rclpy pub/sub with the tiny checkpoint of ``test_perception_node`` (one hazard per
frame, whatever the input). ``tracking.gate_deg`` 180 makes association independent of where
the untrained model points, so the expected ids follow from ``min_hits`` alone.
"""

from __future__ import annotations

import math

import pytest
from avi_ros.msg import HazardEstimate
from nav_msgs.msg import Odometry
from node_harness import NS, Harness, make_node, started_harness, wait_for
from rclpy.lifecycle import TransitionCallbackReturn

from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.hazard_markers import MARKER_LINE_STRIP, TRACK_NAMESPACE
from avi_ros.ros import conversions
from avi_ros.ros.diagnostics import diagnostic_values
from avi_ros.ros.perception_node import TRACKS_CONFIRMED
from avi_ros.tracking import RobotMotion

pytestmark = pytest.mark.ros

MIN_HITS = 3
STEP_S = 0.2  # between frames
# After the audio buffer is cleared, the next frame needs a whole audio window of new audio; the
# gap this makes stays inside MAX_MISSED_S, so only a reset can end a track there.
REFILL_S = 1.0
MAX_MISSED_S = 1.9


@pytest.fixture(scope="module")
def harness(ros_context, beeper_checkpoint, node_scene):
    h = started_harness(
        ros_context,
        beeper_checkpoint,
        node_scene,
        **{
            "tracking.gate_deg": 180.0,
            "tracking.min_hits": MIN_HITS,
            "tracking.max_missed_s": MAX_MISSED_S,
            "tracking.reset_gap_s": 5.0,
            "telemetry.odom_topic": "odom",
        },
    )
    h.odom = h.client.create_publisher(Odometry, "odom", 50)
    yield h
    h.close()


def track_ids(harness, count: int, first_step_s: float = STEP_S) -> list[tuple[int, int]]:
    """Send ``count`` frames ``STEP_S`` apart (the first ``first_step_s`` after the previous one),
    each answered before the next; their (track id, track state)."""
    ids = []
    for k in range(count):
        msg = harness.assert_answers(harness.send_frame(harness.advance(first_step_s if k == 0 else STEP_S)))
        assert len(msg.hazards) == 1
        ids.append((msg.hazards[0].track_id, msg.hazards[0].track_state))
    return ids


def markers_for(harness, stamp_ns: int):
    return next(
        (
            m
            for m in harness.markers
            if m.markers and conversions.stamp_to_ns(m.markers[-1].header.stamp) == stamp_ns
        ),
        None,
    )


def assert_new_track(tracks: list[tuple[int, int]], before: int) -> int:
    """``tracks`` carry one id newer than ``before`` from the first frame: tentative for
    min_hits - 1 frames, confirmed after."""
    ids = {track_id for track_id, _ in tracks}
    assert len(ids) == 1 and min(ids) > before, tracks
    states = [state for _, state in tracks]
    assert states[: MIN_HITS - 1] == [HazardEstimate.TRACK_TENTATIVE] * (MIN_HITS - 1), tracks
    assert set(states[MIN_HITS - 1 :]) == {HazardEstimate.TRACK_CONFIRMED}, tracks
    return min(ids)


def test_hazards_carry_a_track_after_min_hits_frames_with_trails_and_diagnostics(harness):
    first_stamp = harness.now_ns + round(STEP_S * NS)
    ids = track_ids(harness, MIN_HITS + 1)
    track = assert_new_track(ids, 0)
    last = harness.answer_for(harness.now_ns).hazards[0]
    assert conversions.stamp_to_ns(last.first_seen) == first_stamp
    assert last.track_age == pytest.approx(MIN_HITS * STEP_S, abs=1e-3)
    assert math.isfinite(last.angular_velocity) and math.isfinite(last.range_rate)
    # The markers of the last frame: its arrow keeps the track id, and the track's trail is drawn.
    assert wait_for(lambda: markers_for(harness, harness.now_ns) is not None)
    markers = markers_for(harness, harness.now_ns)
    arrows = [m for m in markers.markers if m.ns == "hazards"]
    trails = [m for m in markers.markers if m.ns == TRACK_NAMESPACE]
    assert [a.id for a in arrows] == [track]
    assert [(t.id, t.type) for t in trails] == [(track, MARKER_LINE_STRIP)]
    assert len(trails[0].points) == MIN_HITS + 1
    assert wait_for(lambda: harness.diagnostic(TRACKS_CONFIRMED) == "1")


def test_the_odometry_speed_and_yaw_rate_reach_the_tracker(harness, monkeypatch):
    seen: list[RobotMotion | None] = []
    update = harness.node.tracker.update

    def recording(estimates, stamp_ns, motion=None):
        seen.append(motion)
        return update(estimates, stamp_ns, motion)

    monkeypatch.setattr(harness.node.tracker, "update", recording)
    stamp = harness.advance(STEP_S)
    odom = Odometry()
    odom.header = conversions.make_header(stamp - 20_000_000, "odom")
    odom.twist.twist.linear.x = 0.4
    odom.twist.twist.angular.z = 0.7
    harness.odom.publish(odom)
    assert wait_for(lambda: not harness.node.telemetry.reading(stamp).odom_missing)
    harness.assert_answers(harness.send_frame(stamp))
    assert (seen[-1].speed_mps, seen[-1].yaw_rate_rps) == pytest.approx((0.4, 0.7))


def test_the_reset_a_clock_jump_makes_on_the_executor_thread_starts_new_tracks(harness):
    before = track_ids(harness, 1)[-1][0]
    harness.node._reset_buffers()  # what the clock-jump callback does, while the worker runs
    assert_new_track(track_ids(harness, MIN_HITS, first_step_s=REFILL_S), before)


def test_deactivation_ends_the_tracks(harness):
    before = track_ids(harness, 1)[-1][0]
    assert harness.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert harness.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    harness.wait_until_connected()
    assert_new_track(track_ids(harness, MIN_HITS, first_step_s=REFILL_S), before)


def test_tracking_disabled_publishes_untracked_and_reads_no_telemetry(ros_context, beeper_checkpoint):
    node = make_node(ros_context, beeper_checkpoint, **{"tracking.enabled": False, "namespace": "untracked"})
    assert node.start(), node.configure_error
    scene = generate_scene(6, SceneConfig(duration_s=1.0).with_image_size(64, 48))
    h = Harness(ros_context, node, scene, namespace="untracked")
    try:
        assert node.tracker is None and node.telemetry is None
        assert track_ids(h, MIN_HITS + 1) == [(0, HazardEstimate.TRACK_NONE)] * (MIN_HITS + 1)
        # /diagnostics is shared with the other node of the module: read this node's status.
        name = node.get_fully_qualified_name()

        def own_values() -> dict[str, str] | None:
            own = [d for d in h.diagnostics if d.status and d.status[0].hardware_id == name]
            return diagnostic_values(own[-1]) if own else None

        assert wait_for(lambda: (own_values() or {}).get("frames_processed", "0") != "0")
        assert TRACKS_CONFIRMED not in own_values()
    finally:
        h.close()
