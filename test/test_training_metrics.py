"""Metric values on hand-computed cases, including the DCASE2023 SELD metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avi_ros.geometry import direction_to_unit
from avi_ros.taxonomy import Visibility
from training.metrics import (
    Predictions,
    accuracy,
    angular_errors_deg,
    evaluate_predictions,
    expected_calibration_error,
    f1_per_class,
    high_risk_recall,
    macro_f1,
    occlusion_bin_mask,
    rmse,
)
from training.seld_metrics import (
    frame_labels_from_multi_accdoa,
    frame_labels_from_rows,
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


def test_angular_error_and_rmse_by_hand():
    errors = angular_errors_deg(np.array([[1.0, 0, 0], [0, 0, 2.0]]), np.array([[0, 1.0, 0], [0, 0, 1.0]]))
    assert errors == pytest.approx([90.0, 0.0], abs=1e-6)  # vector length does not matter
    assert rmse(np.array([1.0, 4.0]), np.array([2.0, 2.0])) == pytest.approx(math.sqrt((1 + 4) / 2))


def test_ece_by_hand():
    # Bin of 0.95: accuracy 0.5 -> gap 0.45; bin of 0.25: accuracy 0 -> gap 0.25; each holds half.
    confidence = np.array([0.95, 0.95, 0.25, 0.25])
    correct = np.array([1, 0, 0, 0])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.45 + 0.5 * 0.25)
    assert expected_calibration_error(np.array([0.6] * 5), np.array([1, 1, 1, 0, 0])) == pytest.approx(0.0)


def test_high_risk_recall_by_hand():
    assert high_risk_recall(np.array([3, 3, 3, 1]), np.array([3, 2, 3, 3])) == pytest.approx(2 / 3)
    assert high_risk_recall(np.array([0, 1]), np.array([3, 3])) is None


def test_occlusion_bins_are_half_open_and_close_at_one():
    level = np.array([0.0, 0.3, 0.69, 0.7, 1.0])
    assert occlusion_bin_mask(level, 0.0, 0.3).tolist() == [True, False, False, False, False]
    assert occlusion_bin_mask(level, 0.3, 0.7).tolist() == [False, True, True, False, False]
    assert occlusion_bin_mask(level, 0.7, 1.0).tolist() == [False, False, False, True, True]


def test_evaluate_predictions_groups_and_background_exclusion():
    # Sample 0 is background with a "wrong" direction that must not count; 1 and 2 are sources.
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.1, 0.7, 0.2]])
    predictions = Predictions(
        class_true=np.array([0, 1, 2]),
        class_prob=probs,
        confidence=np.array([0.9, 0.8, 0.7]),
        direction_true=np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]]),
        direction_pred=np.array([[-1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]]),
        distance_true=np.array([0.0, 2.0, 4.0]),
        distance_pred=np.array([99.0, 3.0, 4.0]),
        risk_true=np.array([0, 3, 3]),
        risk_pred=np.array([0, 3, 1]),
        occlusion_level=np.array([0.1, 0.5, 0.9]),
        visibility=np.array([int(Visibility.VISIBLE), int(Visibility.VISIBLE), int(Visibility.OCCLUDED)]),
    )
    metrics = evaluate_predictions(predictions, ["none", "a", "b"])
    overall = metrics["overall"]
    assert overall["accuracy"] == pytest.approx(2 / 3)
    assert overall["angular_error_mean_deg"] == pytest.approx(45.0)  # (0 + 90) / 2, background excluded
    assert overall["angular_error_median_deg"] == pytest.approx(45.0)
    assert overall["distance_rmse_m"] == pytest.approx(math.sqrt(0.5))
    assert overall["high_risk_recall"] == pytest.approx(0.5)
    assert metrics["visible"]["count"] == 2 and metrics["occluded"]["accuracy"] == 0.0
    assert metrics["occlusion_0.7-1.0"]["angular_error_median_deg"] == pytest.approx(90.0)
    assert metrics["out_of_view"]["accuracy"] is None


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
