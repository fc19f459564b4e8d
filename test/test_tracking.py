"""The hazard tracker: tentative tracks from the first frame, stable ids, rates from its filters,
the robot's turning and driving removed, fast ends, time jumps, the NN baseline."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from tracking_scenes import DT_S, crossing_truth, estimate, noisy, stamp

from avi_ros.events import EventCounter
from avi_ros.tracking import (
    TRACKS_GAP,
    TRACKS_TIME_BACKWARDS,
    HazardTracker,
    NearestNeighbourTracker,
    RobotMotion,
    TrackerConfig,
)
from avi_ros.tracking.ego_motion import FrameStep
from avi_ros.tracking.tracker import NON_FINITE_ESTIMATE
from avi_ros.types import TrackState


def ids_of(outputs: list[list], slot: int) -> list[int]:
    """The track id of the ``slot``-th estimate of every frame."""
    return [frame[slot].track_id for frame in outputs]


def states_of(outputs: list[list], slot: int) -> list[TrackState]:
    """The track state of the ``slot``-th estimate of every frame."""
    return [frame[slot].track_state for frame in outputs]


def run(tracker, frames: list[list], motion: RobotMotion | None = None, first: int = 0) -> list[list]:
    return [tracker.update(f, stamp(first + k), motion) for k, f in enumerate(frames)]


def test_two_static_sources_keep_two_ids_through_noise():
    rng = np.random.default_rng(0)
    frames = [[noisy(rng, 0.5, 3.0), noisy(rng, -1.2, 8.0, class_id=2)] for _ in range(50)]
    out = run(HazardTracker(), frames)
    # Each has its id from its first frame on: tentative for min_hits - 1 = 2 frames, then confirmed.
    assert set(ids_of(out, 0)) == {1} and set(ids_of(out, 1)) == {2}
    for slot in (0, 1):
        assert states_of(out, slot)[:2] == [TrackState.TENTATIVE] * 2
        assert set(states_of(out, slot)[2:]) == {TrackState.CONFIRMED}
    last = out[-1][0]
    assert last.first_seen_ns == stamp(0)
    assert last.track_age_s == pytest.approx(49 * DT_S)
    assert abs(last.angular_velocity) < 0.1 and abs(last.range_rate) < 1.0


def test_crossing_sources_keep_their_ids_where_nearest_neighbour_swaps_them():
    truth, frames = crossing_truth(np.random.default_rng(1))
    # Where the two are closer than the noise, which is which cannot be told: judge the other frames.
    clear = [k for k, (a, b) in enumerate(truth) if k >= 2 and abs(a.azimuth - b.azimuth) > math.radians(6.0)]
    tracked = run(HazardTracker(), frames)
    assert {tracked[k][0].track_id for k in clear} == {1} and {tracked[k][1].track_id for k in clear} == {2}
    baseline = run(NearestNeighbourTracker(), frames)
    # Without prediction the two tracks bounce off each other where the sources cross.
    assert len({baseline[k][0].track_id for k in clear}) == 2


def test_angular_velocity_of_a_moving_source_is_its_rate():
    rng = np.random.default_rng(2)
    rate = 0.4  # rad/s, counter-clockwise
    out = run(HazardTracker(), [[noisy(rng, -1.0 + rate * DT_S * k, 5.0)] for k in range(40)])
    rates = np.array([f[0].angular_velocity for f in out[-10:]])
    assert np.median(rates) == pytest.approx(rate, abs=0.05)
    assert np.abs(rates - rate).max() < 0.25
    assert len(set(ids_of(out, 0))) == 1


@pytest.mark.parametrize("speed_mps", [-2.0, 2.0])
def test_range_rate_says_approaching_or_leaving(speed_mps):
    rng = np.random.default_rng(3)
    start = 12.0 if speed_mps < 0 else 4.0
    out = run(HazardTracker(), [[noisy(rng, 0.3, start + speed_mps * DT_S * k)] for k in range(40)])
    rates = np.array([f[0].range_rate for f in out[-10:]])
    assert np.all(np.sign(rates) == np.sign(speed_mps))
    assert np.median(rates) == pytest.approx(speed_mps, rel=0.35)


def test_robot_rotation_is_removed_from_a_static_source():
    yaw_rate = 0.5  # rad/s: over 80 frames the source's azimuth wraps through ±pi
    rng = np.random.default_rng(4)
    frames = [[noisy(rng, 0.3 - yaw_rate * DT_S * k, 5.0)] for k in range(80)]
    tracker = HazardTracker()
    out = run(tracker, frames, motion=RobotMotion(0.0, yaw_rate))
    assert set(ids_of(out, 0)) == {1}
    compensated = np.array([f[0].angular_velocity for f in out[10:]])
    assert abs(np.median(compensated)) < 0.05 and np.abs(compensated).max() < 0.3
    # The trail is expressed in the latest robot frame: a static source's trail stays in one place.
    (view,) = tracker.tracks()
    trail_az = np.array([p.azimuth for p in view.trail])
    assert len(trail_az) > 20
    assert np.abs(np.angle(np.exp(1j * (trail_az - view.azimuth)))).max() < math.radians(8.0)
    # Without odometry the same frames show the apparent rotation, still under one id.
    apparent = run(HazardTracker(), frames)
    assert set(ids_of(apparent, 0)) == {1}
    assert np.median([f[0].angular_velocity for f in apparent[10:]]) == pytest.approx(-yaw_rate, abs=0.1)


def test_time_jump_clears_tracks_and_ids_keep_increasing():
    events = EventCounter()
    tracker = HazardTracker(events=events)
    source = [[estimate(0.2, 3.0)] for _ in range(10)]
    assert ids_of(run(tracker, source, first=50), 0)[-1] == 1
    back = run(tracker, source, first=0)  # the stamps go backwards: a bag looped
    assert tracker.resets == 1 and events[TRACKS_TIME_BACKWARDS] == 1
    assert set(ids_of(back, 0)) == {2} and back[0][0].track_state == TrackState.TENTATIVE
    assert back[2][0].first_seen_ns == stamp(0)
    gap = run(tracker, source, first=10 + round(3.0 / DT_S))  # a 3 s gap > reset_gap_s (2 s)
    assert tracker.resets == 2 and events[TRACKS_GAP] == 1
    assert set(ids_of(gap, 0)) == {3}


def test_a_track_coasts_through_short_gaps_and_ends_within_max_missed_s_of_the_sound_stopping():
    tracker = HazardTracker()  # max_missed_s 0.3 s
    frames = [[estimate(0.2 + 0.02 * k, 3.0)] for k in range(30)]
    for k in (10, 11):  # two missed frames (0.2 s)
        frames[k] = []
    for k in range(18, 30):  # the sound stops after frame 17
        frames[k] = []
    listed = []
    for k, frame in enumerate(frames):
        out = tracker.update(frame, stamp(k))
        if frame:
            assert out[0].track_id == 1  # through the short gap, still 1
        listed.append([view.track_id for view in tracker.tracks()])
    assert all(
        ids == [1] for ids in listed[2:21]
    )  # confirmed, then coasting up to 0.3 s after the last detection
    assert listed[21] == []  # ended 0.4 s after it: the first frame more than 0.3 s later
    again = run(tracker, [[estimate(0.5, 3.0)]], first=30)
    assert again[0][0].track_id == 2 and again[0][0].track_state == TrackState.TENTATIVE


def test_a_new_hazard_is_published_on_its_first_frame_as_tentative_and_confirmed_under_the_same_id():
    tracker = HazardTracker()  # min_hits 3
    out = run(tracker, [[estimate(0.4, 4.0)] for _ in range(4)])
    assert ids_of(out, 0) == [1, 1, 1, 1]
    assert states_of(out, 0) == [TrackState.TENTATIVE] * 2 + [TrackState.CONFIRMED] * 2
    assert out[0][0].first_seen_ns == stamp(0) and out[0][0].track_age_s == 0.0
    # Only confirmed tracks are listed for the trails.
    assert [v.track_id for v in tracker.tracks()] == [1]
    assert HazardTracker().update([estimate(0.4, 4.0)], stamp(0)) and HazardTracker().tracks() == []


def test_single_frame_clutter_shows_once_as_tentative_and_never_confirms():
    tracker = HazardTracker()
    frames = [[estimate(0.0, 3.0)] for _ in range(20)]
    frames[5] = [*frames[5], estimate(2.5, 6.0, class_id=3)]
    frames[12] = [*frames[12], estimate(-2.5, 6.0, class_id=3)]
    out = run(tracker, frames)
    assert (out[5][1].track_id, out[5][1].track_state) == (2, TrackState.TENTATIVE)
    assert (out[12][1].track_id, out[12][1].track_state) == (3, TrackState.TENTATIVE)
    assert [v.track_id for v in tracker.tracks()] == [1]


def test_a_fast_hazard_keeps_its_id_when_it_jumps_past_the_gate():
    tracker = HazardTracker()  # 25 deg beyond the predicted region; the likelihood gate decides
    azimuths = [0.0, 0.05, 0.1, 0.15, 0.2, 0.2 + math.radians(35.0)]  # the last step: 35 deg in 0.1 s
    out = run(tracker, [[estimate(a, 3.0)] for a in azimuths])
    assert ids_of(out, 0) == [1] * len(azimuths)


@pytest.mark.parametrize("seed", range(3))
def test_a_hazard_appearing_close_by_and_passing_fast_keeps_one_id(seed):
    # 10 m/s along y = 1 m past a standing robot, from 2.7 m ahead: its azimuth sweeps up to 54
    # degrees a frame while its track is still tentative. Gated by angle around the predicted
    # azimuth alone, with no velocity known yet, it got a new id every frame or two; the planar
    # filter's prediction and its spread let the one track follow it.
    rng = np.random.default_rng(seed)
    path = [(2.5 - 10.0 * DT_S * k, 1.0) for k in range(6)]
    frames = [[noisy(rng, math.atan2(y, x), math.hypot(x, y))] for x, y in path]
    steps = [math.atan2(b[1], b[0]) - math.atan2(a[1], a[0]) for a, b in itertools.pairwise(path)]
    assert math.degrees(max(steps)) > 50.0
    assert set(ids_of(run(HazardTracker(), frames), 0)) == {1}


def test_when_one_of_two_close_hazards_stops_its_track_does_not_take_the_others_detections():
    # Two dogs 8 degrees apart, tracked; the one at 8 degrees stops after frame 9. The other's
    # detections then fall at 0 or 5 degrees (noise): 5 is nearer the stopped one's track, but that
    # track has missed frames since, so the track that keeps being seen keeps them, and the stopped
    # one ends within max_missed_s instead of the two taking turns on the one dog.
    frames = [[estimate(0.0, 20.0), estimate(math.radians(8.0), 20.0)] for _ in range(10)]
    frames += [[estimate(math.radians(5.0 if k % 2 else 0.0), 20.0)] for k in range(10)]
    out = run(HazardTracker(), frames)
    assert set(ids_of(out[:10], 0)) == {1} and set(ids_of(out[:10], 1)) == {2}
    assert set(ids_of(out[10:], 0)) == {1}


def test_non_finite_estimates_are_left_untracked_and_counted():
    events = EventCounter()
    tracker = HazardTracker(events=events)
    frames = [[estimate(0.1, 3.0), estimate(float("nan"), 3.0)] for _ in range(5)]
    out = run(tracker, frames)
    assert out[-1][0].track_id == 1 and out[-1][1].track_id == 0
    assert out[-1][1].track_state == TrackState.NONE
    assert events[NON_FINITE_ESTIMATE] == 5


def test_published_filtered_positions_are_closer_to_the_truth_than_the_raw_ones():
    rng = np.random.default_rng(5)
    truth = [-1.0 + 0.3 * DT_S * k for k in range(60)]
    frames = [[noisy(rng, az, 5.0, azimuth_std_deg=5.0)] for az in truth]
    raw = run(HazardTracker(), frames)
    smooth = run(HazardTracker(TrackerConfig(publish_filtered=True)), frames)

    def error(out):
        return np.median([abs(f[0].azimuth - t) for f, t in zip(out[10:], truth[10:], strict=True)])

    assert error(smooth) < 0.8 * error(raw)
    np.testing.assert_allclose(
        smooth[-1][0].direction, [math.cos(smooth[-1][0].azimuth), math.sin(smooth[-1][0].azimuth), 0.0]
    )


def test_non_finite_outputs_are_the_inputs_unchanged():
    frame = [estimate(float("nan"), 2.0)]
    out = HazardTracker().update(frame, stamp(0))
    assert out[0] is frame[0] and out[0].track_id == 0


def straight_pass(frames: int, speed_mps: float, source_xy: tuple[float, float]) -> list[tuple[float, float]]:
    """(azimuth [rad], distance [m]) of a world-fixed source at ``source_xy`` [m] from a robot
    that starts at the origin heading +x and drives straight at ``speed_mps``, frame by frame."""
    out = []
    for k in range(frames):
        x, y = source_xy[0] - speed_mps * DT_S * k, source_xy[1]
        out.append((math.atan2(y, x), math.hypot(x, y)))
    return out


def test_the_robots_driving_is_removed_so_a_static_source_stays_still_as_the_robot_passes_it():
    speed = 1.0  # m/s, past a source 1.5 m to the left: its bearing sweeps from ahead to behind
    path = straight_pass(60, speed, (3.0, 1.5))
    rng = np.random.default_rng(7)
    frames = [
        [noisy(rng, azimuth, distance, azimuth_std_deg=2.0, distance_rel_std=0.05)]
        for azimuth, distance in path
    ]
    tracker = HazardTracker()
    out = run(tracker, frames, motion=RobotMotion(speed, 0.0))
    assert set(ids_of(out, 0)) == {1}
    # The hazard's own motion is none: angular velocity about 0 while its bearing sweeps 150 degrees.
    sweep = math.degrees(path[-1][0] - path[0][0])
    assert sweep > 100.0
    own = np.array([f[0].angular_velocity for f in out[5:]])
    assert np.abs(own).max() < 0.15
    # The range rate is the robot's: approaching while the source is ahead, leaving once behind.
    true_rates = [-speed * math.cos(azimuth) for azimuth, _ in path]
    for frame, rate in zip(out[5:], true_rates[5:], strict=True):
        if abs(rate) > 0.4:
            assert np.sign(frame[0].range_rate) == np.sign(rate)
    # The trail stays on the standing source: every trail point is where the source is now.
    (view,) = tracker.tracks()
    last_azimuth, last_distance = path[-1]
    for point in view.trail[-20:]:
        assert abs(math.remainder(point.azimuth - last_azimuth, 2 * math.pi)) < math.radians(6.0)
        assert point.distance == pytest.approx(last_distance, rel=0.15)
    # Given the yaw rate only, the same source seems to move: the sweep shows as angular velocity.
    rotation_only = run(HazardTracker(), frames, motion=RobotMotion(0.0, 0.0))
    assert np.abs([f[0].angular_velocity for f in rotation_only[20:40]]).max() > 0.3


def test_a_step_moves_a_standing_point_as_the_robot_drives_and_turns():
    straight = FrameStep.of(0.5, RobotMotion(2.0, 0.0))  # 1 m forward
    azimuth, elevation, distance = straight.move(0.0, 0.0, 3.0)
    assert (azimuth, elevation, distance) == pytest.approx((0.0, 0.0, 2.0))
    turn = FrameStep.of(1.0, RobotMotion(0.0, math.pi / 2))  # a quarter turn left in place
    assert turn.move(0.0, 0.0, 3.0) == pytest.approx((-math.pi / 2, 0.0, 3.0))
    arc = FrameStep.of(1.0, RobotMotion(math.pi / 2, math.pi / 2))  # a quarter circle of radius 1 m
    assert (arc.dx_m, arc.dy_m, arc.turn_rad) == pytest.approx((1.0, 1.0, math.pi / 2))
    # A point above keeps its height: elevation rises as the robot comes nearer.
    _, up, near = straight.move(0.0, math.atan2(1.0, 3.0), math.hypot(3.0, 1.0))
    assert (up, near) == pytest.approx((math.atan2(1.0, 2.0), math.hypot(2.0, 1.0)))
    assert straight.ego_range_rate(0.0, 0.0) == pytest.approx(-2.0)
    assert FrameStep.of(0.1, None).moves is False


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("gate_deg", 0.0),
        ("min_hits", 0),
        ("max_missed_s", math.nan),
        ("class_mismatch_cost", -1),
        ("gate_mahalanobis", 0.0),
        ("detection_probability", 1.0),
        ("acceleration_psd", math.inf),
    ],
)
def test_bad_config_names_the_key(key, value):
    with pytest.raises(ValueError, match=f"tracking.{key}"):
        TrackerConfig(**{key: value})
