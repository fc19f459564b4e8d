"""The hazard tracker: stable ids, rates from its filters, ego-rotation, time jumps, the NN baseline."""

from __future__ import annotations

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
    TrackerConfig,
)
from avi_ros.tracking.tracker import NON_FINITE_ESTIMATE


def ids_of(outputs: list[list], slot: int) -> list[int]:
    """The track id of the ``slot``-th estimate of every frame."""
    return [frame[slot].track_id for frame in outputs]


def run(tracker, frames: list[list], yaw_rate_rps: float | None = None, first: int = 0) -> list[list]:
    return [tracker.update(f, stamp(first + k), yaw_rate_rps) for k, f in enumerate(frames)]


def test_two_static_sources_keep_two_ids_through_noise():
    rng = np.random.default_rng(0)
    frames = [[noisy(rng, 0.5, 3.0), noisy(rng, -1.2, 8.0, class_id=2)] for _ in range(50)]
    out = run(HazardTracker(), frames)
    # min_hits = 3: the first two frames are tentative, hence untracked (id 0)
    assert ids_of(out, 0)[:2] == [0, 0] and ids_of(out, 1)[:2] == [0, 0]
    assert set(ids_of(out, 0)[2:]) == {1} and set(ids_of(out, 1)[2:]) == {2}
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
    assert len(set(ids_of(out, 0)[2:])) == 1


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
    out = run(tracker, frames, yaw_rate_rps=yaw_rate)
    assert set(ids_of(out, 0)[2:]) == {1}
    compensated = np.array([f[0].angular_velocity for f in out[10:]])
    assert abs(np.median(compensated)) < 0.05 and np.abs(compensated).max() < 0.3
    # The trail is expressed in the latest robot frame: a static source's trail stays in one place.
    (view,) = tracker.tracks()
    trail_az = np.array([p.azimuth for p in view.trail])
    assert len(trail_az) > 20
    assert np.abs(np.angle(np.exp(1j * (trail_az - view.azimuth)))).max() < math.radians(8.0)
    # Without odometry the same frames show the apparent rotation, still under one id.
    apparent = run(HazardTracker(), frames)
    assert set(ids_of(apparent, 0)[2:]) == {1}
    assert np.median([f[0].angular_velocity for f in apparent[10:]]) == pytest.approx(-yaw_rate, abs=0.1)


def test_time_jump_clears_tracks_and_ids_keep_increasing():
    events = EventCounter()
    tracker = HazardTracker(events=events)
    source = [[estimate(0.2, 3.0)] for _ in range(10)]
    assert ids_of(run(tracker, source, first=50), 0)[-1] == 1
    back = run(tracker, source, first=0)  # the stamps go backwards: a bag looped
    assert tracker.resets == 1 and events[TRACKS_TIME_BACKWARDS] == 1
    assert ids_of(back, 0)[:2] == [0, 0] and set(ids_of(back, 0)[2:]) == {2}
    assert back[2][0].first_seen_ns == stamp(0)
    gap = run(tracker, source, first=10 + round(3.0 / DT_S))  # a 3 s gap > reset_gap_s (2 s)
    assert tracker.resets == 2 and events[TRACKS_GAP] == 1
    assert set(ids_of(gap, 0)[2:]) == {3}


def test_missed_frames_coast_and_a_long_absence_ends_the_track():
    tracker = HazardTracker(TrackerConfig(max_missed_s=0.5))
    frames = [[estimate(0.2 + 0.02 * k, 3.0)] for k in range(30)]
    for k in (10, 11):  # two missed frames (0.2 s)
        frames[k] = []
    for k in range(18, 25):  # seven missed frames (0.7 s): longer than max_missed_s
        frames[k] = []
    out = run(tracker, frames)
    ids = [f[0].track_id for f in out if f]
    assert ids[2:16] == [1] * 14  # through the short gap, still 1
    assert ids[16:18] == [0, 0] and ids[18:] == [2] * (len(ids) - 18)  # a new track after the long one


def test_single_frame_clutter_is_never_published_and_burns_no_id():
    tracker = HazardTracker()
    frames = [[estimate(0.0, 3.0)] for _ in range(20)]
    frames[5] = [*frames[5], estimate(2.5, 6.0, class_id=3)]
    frames[12] = [*frames[12], estimate(-2.5, 6.0, class_id=3)]
    out = run(tracker, frames)
    assert out[5][1].track_id == 0 and out[12][1].track_id == 0
    late = run(tracker, [[estimate(0.0, 3.0), estimate(1.5, 2.0, class_id=2)] for _ in range(5)], first=20)
    assert late[-1][1].track_id == 2


def test_non_finite_estimates_are_left_untracked_and_counted():
    events = EventCounter()
    tracker = HazardTracker(events=events)
    frames = [[estimate(0.1, 3.0), estimate(float("nan"), 3.0)] for _ in range(5)]
    out = run(tracker, frames)
    assert out[-1][0].track_id == 1 and out[-1][1].track_id == 0
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


def test_untracked_outputs_are_the_inputs_unchanged():
    frame = [estimate(0.4, 2.0)]
    out = HazardTracker().update(frame, stamp(0))
    assert out[0] is frame[0] and out[0].track_id == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [("gate_deg", 0.0), ("min_hits", 0), ("max_missed_s", math.nan), ("distance_weight", -1)],
)
def test_bad_config_names_the_key(key, value):
    with pytest.raises(ValueError, match=f"tracking.{key}"):
        TrackerConfig(**{key: value})
