"""Tracking metrics on hand-made sequences whose scores can be counted by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from tracking_scenes import DT_S, crossing_truth, estimate, stamp

from avi_ros.tracking import HazardTracker, NearestNeighbourTracker, TrackingAccumulator, TruthPoint


def tracked(truth: TruthPoint, track_id: int, range_rate: float | None = None, az_offset: float = 0.0):
    """The estimate a perfect tracker would publish for ``truth``, under ``track_id``."""
    e = estimate(truth.azimuth + az_offset, truth.distance, truth.class_id)
    rate = truth.range_rate if range_rate is None else range_rate
    return replace(e, track_id=track_id, range_rate=rate)


def walk(track_id: int, frames: int, azimuth: float = 0.5, class_id: int = 1, rate: float = 0.0):
    return [TruthPoint(track_id, class_id, azimuth, 4.0, rate) for _ in range(frames)]


def score(truth: list[list[TruthPoint]], estimates: list[list]):
    acc = TrackingAccumulator()
    for k, (t, e) in enumerate(zip(truth, estimates, strict=True)):
        acc.add_frame(stamp(k), t, e)
    return acc.compute()


def test_perfect_tracks_score_one():
    truth = [[a, b] for a, b in zip(walk(7, 30, 0.5), walk(8, 30, -2.0, class_id=2), strict=True)]
    scores = score(truth, [[tracked(a, 1), tracked(b, 2)] for a, b in truth])
    assert scores.mota == 1.0 and scores.id_switches == 0
    assert scores.false_negatives == scores.false_positives == 0 and scores.truth_count == 60
    assert scores.onset_latency_s == 0.0 and scores.offset_latency_s == 0.0
    assert scores.azimuth_error_deg == pytest.approx(0.0, abs=1e-9)
    assert scores.track_minutes == pytest.approx(60 * DT_S / 60.0)


def test_an_id_switch_is_counted_once_and_per_track_minute():
    truth = [[t] for t in walk(7, 20)]
    estimates = [[tracked(t[0], 1 if k < 10 else 2)] for k, t in enumerate(truth)]
    scores = score(truth, estimates)
    assert scores.id_switches == 1
    assert scores.mota == pytest.approx(1.0 - 1.0 / 20.0)
    assert scores.id_switches_per_track_minute == pytest.approx(1.0 / (20 * DT_S / 60.0))
    # the offset follows the track matched last (id 2), which ends with the truth
    assert scores.offset_latency_s == 0.0


def test_latencies_false_positives_and_misses():
    # The truth spans frames 5..24; the track is published from frame 8 to frame 26.
    truth = [[] for _ in range(30)]
    for k in range(5, 25):
        truth[k] = [TruthPoint(3, 1, 1.0, 4.0)]
    estimates = [[] for _ in range(30)]
    for k in range(8, 27):
        estimates[k] = [tracked(TruthPoint(3, 1, 1.0, 4.0), 9)]
    estimates[15] = [*estimates[15], tracked(TruthPoint(0, 1, -2.0, 4.0), 10)]  # a far track: FP
    estimates[16] = [*estimates[16], replace(estimate(1.0, 4.0), track_id=0)]  # untracked: ignored
    scores = score(truth, estimates)
    assert scores.onset_latency_s == pytest.approx(0.3) and scores.offset_latency_s == pytest.approx(0.2)
    assert scores.false_negatives == 3  # frames 5, 6, 7
    assert scores.false_positives == 2 + 1  # frames 25, 26 after the offset, and the far track
    assert scores.mota == pytest.approx(1.0 - 6.0 / 20.0)


def test_a_track_ending_early_has_a_negative_offset_latency_and_a_wrong_class_is_no_hit():
    truth = [[t] for t in walk(1, 20)]
    estimates = [[tracked(t[0], 4)] if k < 15 else [] for k, t in enumerate(truth)]
    assert score(truth, estimates).offset_latency_s == pytest.approx(-0.5)
    wrong_class = [[replace(tracked(t[0], 4), class_id=2)] for t in truth]
    scores = score(truth, wrong_class)
    assert scores.never_matched == 1 and math.isnan(scores.onset_latency_s)
    assert scores.false_negatives == scores.false_positives == 20


def test_beyond_the_gate_is_a_miss_and_the_azimuth_error_is_in_degrees():
    truth = [[t] for t in walk(1, 10)]
    near = score(truth, [[tracked(t[0], 1, az_offset=math.radians(10.0))] for t in truth])
    assert near.azimuth_error_deg == pytest.approx(10.0) and near.mota == 1.0
    far = score(truth, [[tracked(t[0], 1, az_offset=math.radians(25.0))] for t in truth])
    assert far.false_negatives == 10 and far.mota == pytest.approx(-1.0)


def test_range_rate_sign_is_scored_per_approach_and_leave_phase():
    # A car passes: approaching for 10 frames, leaving for 10; the estimate always says approaching.
    truth = [[TruthPoint(1, 1, 0.0, 5.0, -3.0 if k < 10 else 3.0)] for k in range(20)]
    scores = score(truth, [[tracked(t[0], 1, range_rate=-1.0)] for t in truth])
    assert scores.range_rate_phases == 2 and scores.range_rate_sign_accuracy == 0.5
    assert scores.range_rate_sign_frame_accuracy == 0.5


def test_the_tracker_scores_better_than_nearest_neighbour_on_crossing_sources():
    truth, frames = crossing_truth(np.random.default_rng(11))
    results = {}
    for name, tracker in (("tracker", HazardTracker()), ("nn", NearestNeighbourTracker())):
        acc = TrackingAccumulator()
        for k, (t, f) in enumerate(zip(truth, frames, strict=True)):
            acc.add_frame(stamp(k), t, tracker.update(f, stamp(k)))
        results[name] = acc.compute()
    assert results["tracker"].id_switches == 0 and results["nn"].id_switches >= 2
    assert results["tracker"].range_rate_sign_accuracy == 1.0


def test_a_short_dropout_after_the_offset_does_not_end_the_offset_run():
    # Truth frames 0..9; the track is published to frame 17 with frame 12 missing (0.1 s < 0.5 s),
    # then again at frame 25, after a 0.7 s gap, which no longer counts.
    truth = [[TruthPoint(1, 1, 0.0, 4.0)] if k < 10 else [] for k in range(30)]
    published = {*range(18), 25} - {12}
    estimates = [[tracked(TruthPoint(1, 1, 0.0, 4.0), 5)] if k in published else [] for k in range(30)]
    assert score(truth, estimates).offset_latency_s == pytest.approx(0.8)
