"""Metric values on hand-computed cases: the scoring helpers and the DCASE2023 SELD metrics (the
hazard model's set metrics: test_set_metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avi_ros.geometry import direction_to_unit
from training.metrics import (
    accuracy,
    angular_errors_deg,
    expected_calibration_error,
    f1_per_class,
    high_risk_recall,
    macro_f1,
)
from training.seld_metrics import (
    frame_labels_from_multi_accdoa,
    frame_labels_from_rows,
    official_num_frames,
    seld_metrics,
)


def _doa(azimuth_deg: float, elevation_deg: float = 0.0) -> np.ndarray:
    return direction_to_unit(math.radians(azimuth_deg), math.radians(elevation_deg))


def _track(class_index: int, azimuth_deg: float, frames: range) -> dict[int, list]:
    return {f: [(class_index, _doa(azimuth_deg))] for f in frames}


# --- classification, geometry, calibration -------------------------------------------------


def test_f1_accuracy_and_macro_f1_by_hand():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    # class 0: TP 1, FP 1, FN 1 -> 0.5; class 1: TP 2, FP 1 -> 0.8; class 2: TP 0, FN 1 -> 0; class 3 absent.
    assert f1_per_class(y_true, y_pred, 4) == pytest.approx([0.5, 0.8, 0.0, None])
    assert macro_f1(y_true, y_pred, 4) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert accuracy(y_true, y_pred) == pytest.approx(0.6)
    assert accuracy(np.array([]), np.array([])) is None


def test_angular_error_by_hand():
    errors = angular_errors_deg(np.array([[1.0, 0, 0], [0, 0, 2.0]]), np.array([[0, 1.0, 0], [0, 0, 1.0]]))
    assert errors == pytest.approx([90.0, 0.0], abs=1e-6)  # vector length does not matter


def test_ece_by_hand():
    # Bin of 0.95: accuracy 0.5 -> gap 0.45; bin of 0.25: accuracy 0 -> gap 0.25; each holds half.
    confidence = np.array([0.95, 0.95, 0.25, 0.25])
    correct = np.array([1, 0, 0, 0])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.45 + 0.5 * 0.25)
    assert expected_calibration_error(np.array([0.6] * 5), np.array([1, 1, 1, 0, 0])) == pytest.approx(0.0)


def test_high_risk_recall_by_hand():
    assert high_risk_recall(np.array([3, 3, 3, 1]), np.array([3, 2, 3, 3])) == pytest.approx(2 / 3)
    assert high_risk_recall(np.array([0, 1]), np.array([3, 3])) is None


# --- DCASE2023 SELD metrics ---------------------------------------------------------------


def test_seld_perfect_prediction_scores_zero():
    reference = {**_track(0, 30.0, range(0, 10)), **_track(1, -60.0, range(10, 20))}
    scores = seld_metrics(reference, reference, num_classes=2, num_frames=20)
    assert scores.er20 == pytest.approx(0.0)
    assert scores.f20 == pytest.approx(1.0)
    assert scores.le_cd_deg == pytest.approx(0.0, abs=1e-5)
    assert scores.lr_cd == pytest.approx(1.0)
    assert scores.seld_score == pytest.approx(0.0, abs=1e-6)


def test_seld_spatial_false_positive_and_miss_by_hand():
    # Segment 0: predicted 30 deg off -> matched but > 20 deg: FP_spatial, an insertion.
    # Segment 1: the reference is not predicted at all: FN, a deletion.
    reference = {**_track(0, 0.0, range(0, 5)), **_track(0, 0.0, range(10, 15))}
    prediction = _track(0, 30.0, range(0, 5))
    scores = seld_metrics(reference, prediction, num_classes=1, num_frames=20)
    assert scores.er20 == pytest.approx((0 + 1 + 1) / 2)  # (S + D + I) / N_ref
    assert scores.f20 == pytest.approx(0.0)  # 0 / (0 + 1 + 0.5 * (0 + 1))
    assert scores.le_cd_deg == pytest.approx(30.0, abs=1e-6)
    assert scores.lr_cd == pytest.approx(0.5)  # 1 matched / (1 + 1 missed)
    assert scores.seld_score == pytest.approx(np.mean([1.0, 1.0, 30.0 / 180.0, 0.5]))


def test_seld_two_sources_one_prediction_by_hand():
    # Two sources of the same class, one predicted 5 deg from the first.
    reference = {f: [(0, _doa(0.0)), (0, _doa(90.0))] for f in range(10)}
    prediction = _track(0, 5.0, range(10))
    scores = seld_metrics(reference, prediction, num_classes=1, num_frames=10)
    assert scores.er20 == pytest.approx(0.5)  # one deletion over two references
    assert scores.f20 == pytest.approx(1.0 / (1.0 + 0.5 * 1.0))
    assert scores.le_cd_deg == pytest.approx(5.0, abs=1e-6)
    assert scores.lr_cd == pytest.approx(0.5)


def test_seld_matching_is_hungarian_not_greedy():
    # Greedy (closest pair first) pairs 14 deg with 30 deg (16 deg) and then 48 with 0 (48 deg);
    # the optimal assignment pairs 14->0 (14 deg) and 48->30 (18 deg): both true positives.
    reference = {f: [(0, _doa(0.0)), (0, _doa(30.0))] for f in range(10)}
    prediction = {f: [(0, _doa(14.0)), (0, _doa(48.0))] for f in range(10)}
    scores = seld_metrics(reference, prediction, num_classes=1, num_frames=10)
    assert scores.f20 == pytest.approx(1.0)
    assert scores.le_cd_deg == pytest.approx(16.0, abs=1e-6)


def test_seld_macro_average_counts_classes_without_events_as_worst_case():
    # As in the baseline's macro mode, a class with no reference and no prediction scores
    # F = 0, LE = 180, LR = 0 and pulls the average down.
    reference = _track(0, 0.0, range(10))
    prediction = _track(0, 10.0, range(10))
    scores = seld_metrics(reference, prediction, num_classes=2, num_frames=10)
    assert scores.f20 == pytest.approx(0.5)
    assert scores.le_cd_deg == pytest.approx((10.0 + 180.0) / 2, abs=1e-6)
    assert scores.lr_cd == pytest.approx(0.5)


def test_seld_class_confusion_is_an_insertion_plus_a_deletion():
    reference = _track(0, 0.0, range(10))
    prediction = _track(1, 0.0, range(10))
    scores = seld_metrics(reference, prediction, num_classes=2, num_frames=10)
    assert scores.er20 == pytest.approx(1.0)  # S = min(FP 1, FN 1) = 1 over N_ref 1
    assert scores.f20 == pytest.approx(0.0)


def test_frame_labels_from_starss23_rows_and_multi_accdoa():
    labels = frame_labels_from_rows([[3, 5, 0, 90.0, 0.0], [3, 2, 1, 0.0, 90.0, 150]])
    assert sorted(labels) == [3]
    (c0, d0), (c1, d1) = labels[3]
    assert (c0, c1) == (5, 2)
    assert d0 == pytest.approx([0.0, 1.0, 0.0], abs=1e-9)  # +90 deg azimuth = left = +y
    assert d1 == pytest.approx([0.0, 0.0, 1.0], abs=1e-9)

    output = np.zeros((2, 3, 3, 4))
    output[0, 0, :, 1] = [0.9, 0.0, 0.0]  # active track 0 of class 1
    output[0, 1, :, 1] = [0.9, 0.1, 0.0]  # ~6 deg away, same class -> merged with track 0
    output[0, 2, :, 3] = [0.0, 0.3, 0.0]  # norm 0.3 < 0.5 -> inactive
    labels = frame_labels_from_multi_accdoa(output)
    assert list(labels) == [0]
    assert len(labels[0]) == 1 and labels[0][0][0] == 1
    assert np.linalg.norm(labels[0][0][1]) == pytest.approx(1.0)


# --- DCASE2023 edges: the official code's segment coverage and multi-ACCDOA unification ----


def test_official_coverage_scores_ceil_of_the_last_labelled_index_over_ten_segments():
    # cls_compute_seld_results.py passes M = max(frame index) (not M + 1) as the frame count
    # and scores ceil(M / 10) whole segments of 10 frames.
    assert official_num_frames({25: [(0, _doa(0.0))]}) == 30  # 3 segments, frames up to 29
    assert official_num_frames({20: [(0, _doa(0.0))]}) == 20  # frame 20's segment is dropped
    assert official_num_frames({0: [(0, _doa(0.0))]}) == 0
    assert official_num_frames({}) == 0


def test_official_coverage_drops_the_last_segment_when_m_is_a_multiple_of_ten():
    # Frames 0-4 found, frame 20 (M = 20, a multiple of 10) missed.
    reference = {**_track(0, 0.0, range(0, 5)), **_track(0, 0.0, range(20, 21))}
    prediction = _track(0, 0.0, range(0, 5))
    official = seld_metrics(reference, prediction, num_classes=1, coverage="official")
    assert official.er20 == pytest.approx(0.0)  # only segments 0 and 1 are scored
    assert official.lr_cd == pytest.approx(1.0)
    full = seld_metrics(reference, prediction, num_classes=1)
    assert full.er20 == pytest.approx(0.5)  # frame 20's segment counts: one deletion of two
    with pytest.raises(ValueError, match="omit num_frames"):
        seld_metrics(reference, prediction, num_classes=1, num_frames=30, coverage="official")
    with pytest.raises(ValueError, match="coverage"):
        seld_metrics(reference, prediction, num_classes=1, coverage="whole")


def test_official_coverage_scores_the_whole_last_segment_past_the_last_label():
    # M = 25: the third segment (frames 20-29) is scored whole, so a prediction at frame 27,
    # after the last reference label, is an insertion.
    reference = _track(0, 0.0, range(20, 26))
    prediction = {**reference, **_track(1, 90.0, range(27, 28))}
    scores = seld_metrics(reference, prediction, num_classes=2, coverage="official")
    assert scores.er20 == pytest.approx(1.0)  # one insertion over one reference


def _baseline_unify(tracks: list[np.ndarray | None], threshold_deg: float) -> list[np.ndarray]:
    """The DCASE2023 baseline's rule for three tracks of one class (train_seldnet.py test_epoch),
    restated: a pair is "close" when both tracks are active and their angle is below the
    threshold. No close pair: every active track is an event. One close pair: the pair's mean,
    and the third track if active. Two or more close pairs: the mean of all three."""

    def close(a: np.ndarray | None, b: np.ndarray | None) -> bool:
        if a is None or b is None:
            return False
        cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
        return bool(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) < threshold_deg)

    pairs = [(0, 1), (1, 2), (2, 0)]
    flags = [close(tracks[i], tracks[j]) for i, j in pairs]
    if sum(flags) == 0:
        return [t for t in tracks if t is not None]
    if sum(flags) == 1:
        i, j = pairs[flags.index(True)]
        (third,) = {0, 1, 2} - {i, j}
        events = [(tracks[i] + tracks[j]) / 2]
        return events + ([tracks[third]] if tracks[third] is not None else [])
    return [(tracks[0] + tracks[1] + tracks[2]) / 3]


def _events_of(output: np.ndarray) -> list[np.ndarray]:
    labels = frame_labels_from_multi_accdoa(output)
    return [doa for _, doa in labels.get(0, [])]


def _same_directions(ours: list[np.ndarray], expected: list[np.ndarray]) -> bool:
    unit = [e / np.linalg.norm(e) for e in expected]
    if len(ours) != len(unit):
        return False
    remaining = list(unit)
    for doa in ours:
        index = int(np.argmax([np.dot(doa, u) for u in remaining]))
        if np.dot(doa, remaining[index]) < 1.0 - 1e-9:
            return False
        remaining.pop(index)
    return True


def test_multi_accdoa_chain_of_close_tracks_is_one_event():
    # Tracks at 0, 10 and 20 deg: 0-10 and 10-20 are within 15 deg, 0-20 is not. The baseline
    # merges all three into one event at their mean; comparing with a group's first member only
    # gave two events.
    output = np.zeros((1, 3, 3, 2))
    for track, azimuth in enumerate((0.0, 10.0, 20.0)):
        output[0, track, :, 1] = 0.9 * _doa(azimuth)
    events = _events_of(output)
    assert len(events) == 1
    assert events[0] == pytest.approx(_doa(10.0), abs=1e-9)
    # The order of the tracks does not matter (the middle one last).
    reordered = output[:, [0, 2, 1]]
    assert _same_directions(_events_of(reordered), events)


def test_multi_accdoa_unification_matches_the_baseline_rule_on_random_tracks():
    rng = np.random.default_rng(0)
    chains = 0
    for _ in range(400):
        base = rng.standard_normal(3)
        tracks: list[np.ndarray | None] = []
        output = np.zeros((1, 3, 3, 1))
        for track in range(3):
            active = rng.random() < 0.85
            vector = base / np.linalg.norm(base) + rng.normal(scale=0.2, size=3)
            vector = vector / np.linalg.norm(vector) * (0.9 if active else 0.3)
            output[0, track, :, 0] = vector
            tracks.append(vector if active else None)
        expected = _baseline_unify(tracks, 15.0)
        chains += all(t is not None for t in tracks) and len(expected) == 1
        assert _same_directions(_events_of(output), expected), tracks
    assert chains > 20  # the random cases include many merged triples
