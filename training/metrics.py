"""Evaluation metrics of the imagination model, overall and per occlusion bin and visibility.

Everything works on numpy arrays gathered over a whole split (``Predictions``), so the same
numbers come out of the training loop, ``evaluate.py`` and the tests. Conventions:

- angular error [deg] and distance RMSE [m] are taken over samples whose *true* class is not
  background (background has no direction);
- macro-F1 averages the per-class F1 over the classes present in the truth or the prediction
  (scikit-learn's convention); per-class F1 is ``None`` for a class absent from both;
- ECE uses equal-width confidence bins over [0, 1] and the model's confidence output against
  "the predicted class is right";
- the confidence AUROC is the area under the ROC curve of that same confidence used to tell
  right answers from wrong ones (the Mann-Whitney U statistic over the two groups, ties counted
  half; Hanley & McNeil 1982): 0.5 means confidence says nothing, 1 that every right answer is
  more confident than every wrong one;
- the false-alarm rate is over background samples (true class ``none``): the fraction the node
  would publish as a hazard, i.e. predicted class not ``none`` with a confidence at or above its
  ``confidence_threshold``;
- azimuth error [deg] is the absolute azimuth difference wrapped to [0, 180], over hazard samples;
- a metric that has no sample to be computed on is ``None`` (JSON null), never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy.stats import rankdata

from avi_ros.geometry import unit_to_direction
from avi_ros.scoring import accuracy, angular_errors_deg
from avi_ros.taxonomy import RiskLevel, Visibility

BACKGROUND_CLASS = 0
# Occlusion-level bins [lo, hi): the last one includes 1.0.
OCCLUSION_BINS: tuple[tuple[float, float], ...] = ((0.0, 0.3), (0.3, 0.7), (0.7, 1.0))
ECE_BINS = 15
NODE_CONFIDENCE_THRESHOLD = 0.5  # the perception node's default confidence_threshold (config/perception.yaml)


@dataclass
class Predictions:
    """Per-sample truth and model outputs of one split, all numpy, first axis = sample.

    class_prob: [N, C] softmax; confidence: [N] in [0, 1]; directions: [N, 3] (any length);
    distances in metres; occlusion_level in [0, 1]; visibility: Visibility values.
    """

    class_true: np.ndarray
    class_prob: np.ndarray
    confidence: np.ndarray
    direction_true: np.ndarray
    direction_pred: np.ndarray
    distance_true: np.ndarray
    distance_pred: np.ndarray
    risk_true: np.ndarray
    risk_pred: np.ndarray
    occlusion_level: np.ndarray
    visibility: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.class_true)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(
                    f"predictions: '{f.name}' has {len(getattr(self, f.name))} rows, expected {n}"
                )

    @property
    def class_pred(self) -> np.ndarray:
        return np.argmax(self.class_prob, axis=-1)

    def __len__(self) -> int:
        return len(self.class_true)

    def subset(self, mask: np.ndarray) -> Predictions:
        return Predictions(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @classmethod
    def concatenate(cls, parts: Sequence[Predictions]) -> Predictions:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true, predicted] as int64 [C, C]."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def f1_per_class(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> list[float | None]:
    """F1 of each class, 2·TP / (2·TP + FP + FN); None for a class in neither labels nor predictions."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(matrix).astype(np.float64)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    denominator = 2 * tp + fp + fn
    return [float(2 * tp[c] / denominator[c]) if denominator[c] > 0 else None for c in range(num_classes)]


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float | None:
    """Mean F1 over the classes present in the labels or the predictions."""
    scores = [s for s in f1_per_class(y_true, y_pred, num_classes) if s is not None]
    return float(np.mean(scores)) if scores else None


def azimuth_errors_deg(direction_pred: np.ndarray, direction_true: np.ndarray) -> np.ndarray:
    """Absolute azimuth differences [deg] in [0, 180] between direction vectors [N, 3] (REP-103)."""
    if len(direction_true) == 0:
        return np.zeros(0)
    predicted, _ = unit_to_direction(direction_pred)
    true, _ = unit_to_direction(direction_true)
    difference = np.angle(np.exp(1j * (predicted - true)))  # wrapped to [-pi, pi]
    return np.degrees(np.abs(difference))


def rmse(predicted: np.ndarray, target: np.ndarray) -> float | None:
    if len(target) == 0:
        return None
    return float(np.sqrt(np.mean((np.asarray(predicted, np.float64) - np.asarray(target, np.float64)) ** 2)))


@dataclass
class ReliabilityBins:
    """Per equal-width confidence bin: mean confidence, accuracy and sample count (empty bins: count 0)."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> ReliabilityBins:
    """Bin samples by confidence into ``n_bins`` equal-width bins over [0, 1] (1.0 goes to the last bin)."""
    confidence = np.clip(np.asarray(confidence, np.float64), 0.0, 1.0)
    correct = np.asarray(correct, np.float64)
    index = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(index, weights=correct, minlength=n_bins)
    safe = np.maximum(count, 1)
    return ReliabilityBins(np.linspace(0.0, 1.0, n_bins + 1), conf_sum / safe, acc_sum / safe, count)


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS
) -> float | None:
    """ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b| over equal-width bins."""
    if len(confidence) == 0:
        return None
    bins = reliability_bins(confidence, correct, n_bins)
    return float(np.sum(bins.count / bins.count.sum() * np.abs(bins.accuracy - bins.confidence)))


def confidence_auroc(confidence: np.ndarray, correct: np.ndarray) -> float | None:
    """AUROC of ``confidence`` [N] as a detector of ``correct`` [N] answers; None without both outcomes."""
    correct = np.asarray(correct, dtype=bool)
    n_right, n_wrong = int(correct.sum()), int((~correct).sum())
    if n_right == 0 or n_wrong == 0:
        return None
    ranks = rankdata(np.asarray(confidence, dtype=np.float64))  # average ranks: ties count half
    u_statistic = ranks[correct].sum() - n_right * (n_right + 1) / 2.0
    return float(u_statistic / (n_right * n_wrong))


def false_alarm_rate(
    class_pred: np.ndarray, confidence: np.ndarray, threshold: float = NODE_CONFIDENCE_THRESHOLD
) -> float | None:
    """Fraction of (background) samples reported as a hazard: class not none and confidence >= threshold."""
    if len(class_pred) == 0:
        return None
    reported = (np.asarray(class_pred) != BACKGROUND_CLASS) & (np.asarray(confidence) >= threshold)
    return float(np.mean(reported))


def high_risk_recall(risk_true: np.ndarray, risk_pred: np.ndarray) -> float | None:
    """Fraction of truly HIGH-risk samples predicted HIGH; None when there is none."""
    high = np.asarray(risk_true) == int(RiskLevel.HIGH)
    if not high.any():
        return None
    return float(np.mean(np.asarray(risk_pred)[high] == int(RiskLevel.HIGH)))


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if len(values) else None


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def group_metrics(
    predictions: Predictions,
    class_names: Sequence[str],
    confidence_threshold: float = NODE_CONFIDENCE_THRESHOLD,
) -> dict[str, Any]:
    """Every metric of one group of samples, as a JSON-ready dict."""
    num_classes = len(class_names)
    y_true, y_pred = predictions.class_true, predictions.class_pred
    source = y_true != BACKGROUND_CLASS
    errors = angular_errors_deg(predictions.direction_pred[source], predictions.direction_true[source])
    azimuth = azimuth_errors_deg(predictions.direction_pred[source], predictions.direction_true[source])
    per_class = f1_per_class(y_true, y_pred, num_classes)
    background = ~source
    return {
        "count": len(predictions),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, num_classes),
        "per_class_f1": dict(zip(class_names, per_class, strict=True)),
        "angular_error_mean_deg": _mean(errors),
        "angular_error_median_deg": _median(errors),
        "distance_rmse_m": rmse(predictions.distance_pred[source], predictions.distance_true[source]),
        "azimuth_error_median_deg": _median(azimuth),
        "ece": expected_calibration_error(predictions.confidence, y_pred == y_true),
        "confidence_auroc": confidence_auroc(predictions.confidence, y_pred == y_true),
        "false_alarm_rate": false_alarm_rate(
            y_pred[background], predictions.confidence[background], confidence_threshold
        ),
        "high_risk_recall": high_risk_recall(predictions.risk_true, predictions.risk_pred),
    }


def per_class_metrics(predictions: Predictions, class_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For each true class: sample count, accuracy (= recall of that class), F1 and the median
    angular and azimuth errors [deg] (None for ``none``, which has no direction)."""
    f1 = f1_per_class(predictions.class_true, predictions.class_pred, len(class_names))
    out = {}
    for class_id, name in enumerate(class_names):
        group = predictions.subset(predictions.class_true == class_id)
        has_direction = class_id != BACKGROUND_CLASS
        out[name] = {
            "count": len(group),
            "accuracy": accuracy(group.class_true, group.class_pred),
            "f1": f1[class_id],
            "angular_error_median_deg": _median(
                angular_errors_deg(group.direction_pred, group.direction_true)
            )
            if has_direction
            else None,
            "azimuth_error_median_deg": _median(
                azimuth_errors_deg(group.direction_pred, group.direction_true)
            )
            if has_direction
            else None,
        }
    return out


def occlusion_bin_name(lo: float, hi: float) -> str:
    return f"occlusion_{lo:.1f}-{hi:.1f}"


def occlusion_bin_mask(level: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Samples with lo <= level < hi; the bin ending at 1.0 also takes level == 1.0."""
    level = np.asarray(level)
    upper = level <= hi if hi >= 1.0 else level < hi
    return (level >= lo) & upper


def evaluate_predictions(
    predictions: Predictions,
    class_names: Sequence[str],
    confidence_threshold: float = NODE_CONFIDENCE_THRESHOLD,
) -> dict[str, dict[str, Any]]:
    """Metrics for ``overall``, each occlusion bin and each visibility (visible, occluded, out_of_view)."""
    groups = {"overall": np.ones(len(predictions), dtype=bool)}
    for lo, hi in OCCLUSION_BINS:
        groups[occlusion_bin_name(lo, hi)] = occlusion_bin_mask(predictions.occlusion_level, lo, hi)
    for visibility in Visibility:
        groups[visibility.name.lower()] = predictions.visibility == int(visibility)
    return {
        name: group_metrics(predictions.subset(mask), class_names, confidence_threshold)
        for name, mask in groups.items()
    }


def flatten_metrics(metrics: dict[str, dict[str, Any]], prefix: str = "") -> dict[str, float]:
    """{'overall/accuracy': 0.9, ...} for scalar logging (TensorBoard, jsonl); skips None and per-class F1."""
    flat: dict[str, float] = {}
    for group, values in metrics.items():
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                flat[f"{prefix}{group}/{name}"] = float(value)
    return flat


def mean_and_std(runs: Sequence[Any]) -> Any:
    """Aggregate the same nested metrics of several runs (e.g. training seeds) leaf by leaf.

    A numeric leaf becomes ``{"mean", "std", "n"}`` over the runs where it is not None (``std``
    with Bessel's correction, 0 for a single run; both None when no run has it); nested dicts
    are aggregated key by key; other leaves (strings, lists) are kept from the first run.
    """
    first = runs[0]
    if isinstance(first, dict):
        return {
            key: mean_and_std([run.get(key) if isinstance(run, dict) else None for run in runs])
            for key in first
        }
    values = [v for v in runs if isinstance(v, int | float) and not isinstance(v, bool)]
    if values or all(v is None for v in runs):
        n = len(values)
        return {
            "mean": float(np.mean(values)) if n else None,
            "std": float(np.std(values, ddof=1)) if n > 1 else (0.0 if n else None),
            "n": n,
        }
    return first
