"""Evaluation metrics of the hazard model: DCASE2024-style set metrics, overall, by visibility and
by polyphony, with the single-hazard figures as a view of them; and the scoring helpers they share
with calibration and the decision stage (F1, ECE, confidence AUROC, false alarms, mean ± std).

Everything works on numpy arrays gathered over a whole split, so the same numbers come out of
the training loop, ``evaluate.py``, the study and the tests. Written from the DCASE2024 Task 3
definitions (shared/REFERENCE.md), with one frame = one model window here (the model answers
once per window):

- a prediction is a slot whose class is not ``none`` (0) and whose confidence is at or above
  the threshold (the node's ``confidence_threshold``);
- per frame and class, predictions and ground-truth hazards are matched with the Hungarian
  algorithm (scipy ``linear_sum_assignment``) on the great-circle angle;
- a matched pair is a true positive when its angle is <= 20 deg AND its relative distance error
  |d̂ − d| / d is <= 1; a pair failing either is one false positive and one false negative (as
  the DCASE2024 code counts it); unmatched predictions are false positives, unmatched hazards
  false negatives;
- F20 = TP / (TP + 0.5 (FP + FN)); ``f20`` is its macro average over the classes with any
  hazard or prediction in the group (DCASE averages per class), ``f20_micro`` pools the counts;
- ``per_class_hazards`` counts each class's true hazards (TP + FN), so a class scored only
  through false alarms shows 0 there;
- LE [deg] and RDE are the mean angle and relative distance error of the matched same-class
  pairs, whatever their error (DCASE's class-dependent LE), macro over the classes with a pair
  (``le_deg``, ``rde``) and pooled (``le_deg_micro``, ``rde_micro``);
- by visibility, a true positive or false negative belongs to the ground-truth hazard's
  visibility and a false positive to the prediction's *predicted* visibility (there is no true
  one); by polyphony, a frame with n hazards gives all its counts to ``polyphony_n``;
- the single-hazard figures (``single_hazard`` group) view the frames with at most one hazard
  through the model's top slot, as the node's ``PipelineResult.top`` reads it: the most confident
  slot whose class is not ``none``, else the most confident slot (then its answer is ``none``).
  On those frames: class accuracy and macro-F1 (``none`` right on an empty frame), ECE and
  confidence AUROC of the top slot's confidence against "the frame holds a hazard" (the
  confidence is the probability that a hazard is there, ``training.losses``), the false-alarm
  rate over the frames without a hazard (the top slot is published: not ``none``, confidence at
  or above the threshold), and the median azimuth / angular error [deg] of the top slot on the
  frames where both a hazard and an occupied slot exist (``located_frames``). With K = 1 these
  are the figures of a model with one answer per frame;
- the direction figures (``direction`` group, when the physics direction of each frame is given),
  on frames with exactly one hazard: the median azimuth error [deg] of the model's top slot and
  of the physics baseline (the broadband FOA intensity vector of the window, ``avi_ros.doa``)
  side by side, over all such frames, by sector of the true azimuth (front |az| <= 45 deg, left,
  right, behind |az| > 135 deg) and by visibility; a frame where the model reports no hazard has
  no model error (``model_located`` counts those that have one), and physics is also given on
  the located frames alone (``direction_by_sector``, shared with ``training/track_eval.py``);
- a metric with nothing to be computed on is None (JSON null), never NaN.

Helpers: macro-F1 averages the per-class F1 over the classes present in the truth or the
prediction (scikit-learn's convention); ECE uses equal-width confidence bins over [0, 1]; the
confidence AUROC is the Mann-Whitney U statistic of the confidence over positive and negative
outcomes (ties count half; Hanley & McNeil 1982): 0.5 means confidence says nothing, 1 that every
positive is more confident than every negative; azimuth errors are wrapped to [0, 180] deg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from avi_ros.geometry import unit_to_direction
from avi_ros.scoring import accuracy, angular_errors_deg
from avi_ros.taxonomy import RiskLevel, Visibility
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD
from training.seld_metrics import SPATIAL_THRESHOLD_DEG

BACKGROUND_CLASS = 0
ECE_BINS = 15
RELATIVE_DISTANCE_THRESHOLD = 1.0  # DCASE2024: a hit needs |d̂ − d| / d <= 1
OVERALL_GROUP = "set"
SINGLE_HAZARD_GROUP = "single_hazard"
DIRECTION_GROUP = "direction"
# Sectors of the true azimuth [deg]: (name, lower bound, upper bound), "behind" wraps around +-180.
SECTORS = (("front", -45.0, 45.0), ("left", 45.0, 135.0), ("right", -135.0, -45.0))
BEHIND = "behind"
_TP, _FP, _FN = 0, 1, 2


# --- scoring helpers ------------------------------------------------------------------------


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
    class_pred: np.ndarray, confidence: np.ndarray, threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
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


# --- set metrics ----------------------------------------------------------------------------


def visibility_group(visibility: Visibility) -> str:
    return f"visibility_{visibility.name.lower()}"


def polyphony_group(hazards: int) -> str:
    return f"polyphony_{hazards}"


@dataclass
class SetPredictions:
    """Hazard-set outputs and targets of one split, numpy, first axis = frame (window).

    Model side, K slots: class_pred [F, K] (0 = none), confidence [F, K] in [0, 1],
    direction_pred [F, K, 3] (any length), distance_pred [F, K] m, visibility_pred [F, K]
    (Visibility values), audio_weight [F, K] (optional). Target side, Kt slots: class_true
    [F, Kt] (0 = empty slot), direction_true [F, Kt, 3], distance_true [F, Kt] m,
    visibility_true [F, Kt], occlusion_true [F, Kt] in [0, 1] (NaN out of view; optional).
    """

    class_pred: np.ndarray
    confidence: np.ndarray
    direction_pred: np.ndarray
    distance_pred: np.ndarray
    visibility_pred: np.ndarray
    class_true: np.ndarray
    direction_true: np.ndarray
    distance_true: np.ndarray
    visibility_true: np.ndarray
    occlusion_true: np.ndarray | None = None
    audio_weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("class_pred", "class_true"):
            if np.ndim(getattr(self, name)) != 2:
                raise ValueError(
                    f"set predictions: '{name}' must be [frames, slots], got {np.shape(getattr(self, name))}"
                )
        frames, slots = np.shape(self.class_pred)
        targets = np.shape(self.class_true)[1]
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            width = targets if f.name.endswith("_true") else slots
            expected = (frames, width, 3) if f.name.startswith("direction") else (frames, width)
            if np.shape(value) != expected:
                raise ValueError(
                    f"set predictions: '{f.name}' has shape {np.shape(value)}, expected {expected}"
                )

    @classmethod
    def from_outputs(cls, outputs: Any, labels: Mapping[str, np.ndarray]) -> SetPredictions:
        """From the model's outputs (``HazardSetArrays``: class_id, confidence, direction,
        distance, visibility, audio_weight, all [F, K, ...]) and the prepared labels
        ``hazard_class``, ``hazard_direction``, ``hazard_distance``, ``hazard_visibility`` and,
        optionally, ``hazard_occlusion`` ([F, Kt, ...], training/data.py)."""
        occlusion = labels.get("hazard_occlusion")
        return cls(
            class_pred=np.asarray(outputs.class_id),
            confidence=np.asarray(outputs.confidence),
            direction_pred=np.asarray(outputs.direction),
            distance_pred=np.asarray(outputs.distance),
            visibility_pred=np.asarray(outputs.visibility),
            class_true=np.asarray(labels["hazard_class"]),
            direction_true=np.asarray(labels["hazard_direction"]),
            distance_true=np.asarray(labels["hazard_distance"]),
            visibility_true=np.asarray(labels["hazard_visibility"]),
            occlusion_true=None if occlusion is None else np.asarray(occlusion),
            audio_weight=np.asarray(outputs.audio_weight),
        )

    @property
    def polyphony(self) -> np.ndarray:
        """Number of hazards of each frame [F]."""
        return np.sum(np.asarray(self.class_true) != BACKGROUND_CLASS, axis=1)


class SetEvaluation(NamedTuple):
    """``metrics``: group -> metric -> value (JSON-ready); ``flat``: 'group/metric' -> float for
    logging (None values left out); ``weight_pairs`` [P, 2]: (true occlusion, audio weight) of
    every matched pair whose hazard is in view, for the per-hazard weight plot (empty without
    occlusion labels). A tuple, so ``metrics, flat, pairs = evaluate_hazard_sets(...)`` works."""

    metrics: dict[str, dict[str, Any]]
    flat: dict[str, float]
    weight_pairs: np.ndarray


@dataclass
class _Records:
    """Every count (frame, class, kind, visibility) and matched pair of a split."""

    counts: np.ndarray  # [n, 4] int64: frame, class, kind (_TP/_FP/_FN), visibility it belongs to
    pair_frame: np.ndarray  # [p]
    pair_class: np.ndarray  # [p]
    pair_angle_deg: np.ndarray  # [p]
    pair_rde: np.ndarray  # [p]
    pair_visibility: np.ndarray  # [p] ground-truth visibility
    pair_slot: np.ndarray  # [p, 2] (frame, model slot)
    pair_target: np.ndarray  # [p, 2] (frame, target slot)


def _collect(p: SetPredictions, threshold: float) -> _Records:
    reported = (np.asarray(p.class_pred) != BACKGROUND_CLASS) & (np.asarray(p.confidence) >= threshold)
    counts: list[tuple[int, int, int, int]] = []
    pairs: list[tuple[int, int, float, float, int, int, int]] = []
    for frame in range(len(p.class_pred)):
        truth_classes = set(np.asarray(p.class_true[frame])[p.class_true[frame] != BACKGROUND_CLASS].tolist())
        predicted_classes = set(np.asarray(p.class_pred[frame])[reported[frame]].tolist())
        for c in sorted(truth_classes | predicted_classes):
            truth = np.flatnonzero(p.class_true[frame] == c)
            predicted = np.flatnonzero(reported[frame] & (p.class_pred[frame] == c))
            hit_truth: set[int] = set()
            hit_predicted: set[int] = set()
            if len(truth) and len(predicted):
                angle = angular_errors_deg(
                    p.direction_pred[frame, predicted][None, :, :], p.direction_true[frame, truth][:, None, :]
                )  # [truth, predicted]
                for r, s in zip(*linear_sum_assignment(angle), strict=True):
                    t, k = int(truth[r]), int(predicted[s])
                    d_true = float(p.distance_true[frame, t])
                    rde = abs(float(p.distance_pred[frame, k]) - d_true) / max(d_true, 1e-9)
                    vis_true = int(p.visibility_true[frame, t])
                    pairs.append((frame, int(c), float(angle[r, s]), rde, vis_true, k, t))
                    if angle[r, s] <= SPATIAL_THRESHOLD_DEG and rde <= RELATIVE_DISTANCE_THRESHOLD:
                        counts.append((frame, int(c), _TP, vis_true))
                        hit_truth.add(t)
                        hit_predicted.add(k)
            counts += [
                (frame, int(c), _FN, int(p.visibility_true[frame, t])) for t in truth if t not in hit_truth
            ]
            counts += [
                (frame, int(c), _FP, int(p.visibility_pred[frame, k]))
                for k in predicted
                if k not in hit_predicted
            ]
    table = np.array(pairs, dtype=np.float64).reshape(-1, 7)
    frame_index = table[:, 0].astype(np.int64)
    return _Records(
        counts=np.array(counts, dtype=np.int64).reshape(-1, 4),
        pair_frame=frame_index,
        pair_class=table[:, 1].astype(np.int64),
        pair_angle_deg=table[:, 2],
        pair_rde=table[:, 3],
        pair_visibility=table[:, 4].astype(np.int64),
        pair_slot=np.stack([frame_index, table[:, 5].astype(np.int64)], axis=1),
        pair_target=np.stack([frame_index, table[:, 6].astype(np.int64)], axis=1),
    )


def _f_score(tp: float, fp: float, fn: float) -> float | None:
    denominator = tp + 0.5 * (fp + fn)
    return float(tp / denominator) if denominator > 0 else None


def _group_scores(
    records: _Records, count_mask: np.ndarray, pair_mask: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """The detection metrics of the counts and pairs selected by the two masks."""
    num_classes = len(class_names)
    counts = records.counts[count_mask]
    tp, fp, fn = (
        np.bincount(counts[counts[:, 2] == kind, 1], minlength=num_classes) for kind in (_TP, _FP, _FN)
    )
    per_class_f = [_f_score(tp[c], fp[c], fn[c]) for c in range(num_classes)]
    scored = [f for f in per_class_f if f is not None]
    angle, rde, pair_class = (
        records.pair_angle_deg[pair_mask],
        records.pair_rde[pair_mask],
        records.pair_class[pair_mask],
    )
    paired_classes = np.unique(pair_class)
    total_tp, total_fp, total_fn = int(tp.sum()), int(fp.sum()), int(fn.sum())
    return {
        "true_positives": total_tp,
        "false_positives": total_fp,
        "false_negatives": total_fn,
        "hazards": total_tp + total_fn,
        "f20": float(np.mean(scored)) if scored else None,
        "f20_micro": _f_score(total_tp, total_fp, total_fn),
        "precision": total_tp / (total_tp + total_fp) if total_tp + total_fp else None,
        "recall": total_tp / (total_tp + total_fn) if total_tp + total_fn else None,
        "le_deg": _mean(np.array([angle[pair_class == c].mean() for c in paired_classes])),
        "le_deg_micro": _mean(angle),
        "rde": _mean(np.array([rde[pair_class == c].mean() for c in paired_classes])),
        "rde_micro": _mean(rde),
        "per_class_f20": {class_names[c]: per_class_f[c] for c in range(1, num_classes)},
        "per_class_hazards": {class_names[c]: int(tp[c] + fn[c]) for c in range(1, num_classes)},
    }


def top_slot(class_pred: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The node's single best guess of each frame, from class ids and confidences [F, K]: (slot
    index [F], whether that slot is occupied [F]). The top slot is the most confident slot whose
    class is not ``none``, else the most confident slot (``PipelineResult.top``)."""
    class_pred = np.asarray(class_pred)
    confidence = np.asarray(confidence, np.float64)
    occupied = class_pred != BACKGROUND_CLASS
    top = np.where(
        occupied.any(axis=1),
        np.argmax(np.where(occupied, confidence, -np.inf), axis=1),
        np.argmax(confidence, axis=1),
    )
    return top, occupied[np.arange(len(top)), top]


@dataclass
class SingleHazardView:
    """The frames with at most one hazard, each read through the model's top slot (module doc):
    class_true [n] (0 = no hazard), class_pred [n] (0 when no slot is occupied), confidence [n]
    of the top slot; direction_true / direction_pred [m, 3] of the m ``located`` frames (a
    hazard and an occupied top slot)."""

    class_true: np.ndarray
    class_pred: np.ndarray
    confidence: np.ndarray
    direction_true: np.ndarray
    direction_pred: np.ndarray

    @classmethod
    def of(cls, p: SetPredictions) -> SingleHazardView:
        frames = np.flatnonzero(p.polyphony <= 1)
        rows = np.arange(len(frames))
        top, has_top = top_slot(np.asarray(p.class_pred)[frames], np.asarray(p.confidence)[frames])
        class_true = np.asarray(p.class_true)[frames]
        target = np.argmax(class_true != BACKGROUND_CLASS, axis=1)  # the hazard's slot (0 when none)
        true_class = class_true[rows, target]
        located = (true_class != BACKGROUND_CLASS) & has_top
        return cls(
            class_true=true_class,
            class_pred=np.where(has_top, np.asarray(p.class_pred)[frames, top], BACKGROUND_CLASS),
            confidence=np.asarray(p.confidence, np.float64)[frames, top],
            direction_true=np.asarray(p.direction_true)[frames[located], target[located]],
            direction_pred=np.asarray(p.direction_pred)[frames[located], top[located]],
        )

    def scores(self, threshold: float, num_classes: int) -> dict[str, Any]:
        """The ``single_hazard`` group's figures (module doc)."""
        background = self.class_true == BACKGROUND_CLASS
        frames = len(self.class_true)
        return {
            "frames": frames,
            "accuracy": accuracy(self.class_true, self.class_pred),
            "macro_f1": macro_f1(self.class_true, self.class_pred, num_classes) if frames else None,
            "ece": expected_calibration_error(self.confidence, ~background),
            "confidence_auroc": confidence_auroc(self.confidence, ~background),
            "false_alarm_rate": false_alarm_rate(
                self.class_pred[background], self.confidence[background], threshold
            ),
            "located_frames": len(self.direction_true),
            "azimuth_error_median_deg": _median(azimuth_errors_deg(self.direction_pred, self.direction_true)),
            "angular_error_median_deg": _median(angular_errors_deg(self.direction_pred, self.direction_true)),
        }


def sector_of(azimuth_deg: np.ndarray) -> np.ndarray:
    """The sector name (SECTORS or BEHIND) of each azimuth [deg, REP-103]."""
    azimuth = np.asarray(azimuth_deg, dtype=np.float64)
    names = np.full(azimuth.shape, BEHIND, dtype=object)
    for name, low, high in SECTORS:
        names[(azimuth >= low) & (azimuth <= high)] = name
    return names


def direction_cell(model_error_deg: np.ndarray, physics_error_deg: np.ndarray) -> dict[str, Any]:
    """One row of the direction figures from per-frame azimuth errors [deg] of the model (NaN
    where it reported no hazard) and of physics on the same frames: frames, frames the model
    located, and the medians of the model, of physics, and of physics on the located frames."""
    model = np.asarray(model_error_deg, np.float64)
    physics = np.asarray(physics_error_deg, np.float64)
    located = np.isfinite(model)
    return {
        "frames": len(model),
        "model_located": int(located.sum()),
        "model_azimuth_error_median_deg": _median(model[located]),
        "physics_azimuth_error_median_deg": _median(physics),
        "physics_azimuth_error_located_median_deg": _median(physics[located]),
    }


def direction_by_sector(
    true_azimuth_deg: np.ndarray, model_error_deg: np.ndarray, physics_error_deg: np.ndarray
) -> dict[str, dict[str, Any]]:
    """``direction_cell`` over all frames (``all``) and by sector of the true azimuth [deg]
    (``SECTORS``, then ``BEHIND``); the arrays are per frame."""
    model = np.asarray(model_error_deg, np.float64)
    physics = np.asarray(physics_error_deg, np.float64)
    sectors = sector_of(true_azimuth_deg)
    out = {"all": direction_cell(model, physics)}
    for name in (*(s[0] for s in SECTORS), BEHIND):
        selected = sectors == name
        out[name] = direction_cell(model[selected], physics[selected])
    return out


def _direction_scores(p: SetPredictions, physics_direction: np.ndarray) -> dict[str, Any]:
    """Model top slot against the physics baseline on frames with exactly one hazard (module doc)."""
    frames = np.flatnonzero(p.polyphony == 1)
    class_true = np.asarray(p.class_true)[frames]
    target = np.argmax(class_true != BACKGROUND_CLASS, axis=1)
    direction_true = np.asarray(p.direction_true)[frames, target]
    top, located = top_slot(np.asarray(p.class_pred)[frames], np.asarray(p.confidence)[frames])
    model_error = np.full(len(frames), np.nan)
    model_error[located] = azimuth_errors_deg(
        np.asarray(p.direction_pred)[frames[located], top[located]], direction_true[located]
    )
    physics_error = azimuth_errors_deg(np.asarray(physics_direction, np.float64)[frames], direction_true)
    true_azimuth = np.degrees(np.arctan2(direction_true[:, 1], direction_true[:, 0]))
    visibility = np.asarray(p.visibility_true)[frames, target]
    out = direction_by_sector(true_azimuth, model_error, physics_error)
    for vis in Visibility:
        selected = visibility == int(vis)
        out[visibility_group(vis)] = direction_cell(model_error[selected], physics_error[selected])
    return out


def evaluate_hazard_sets(
    outputs: Any,
    labels: Mapping[str, np.ndarray],
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    class_names: Sequence[str] | None = None,
    physics_direction: np.ndarray | None = None,
) -> SetEvaluation:
    """Detection metrics for ``set`` (all), each visibility, each polyphony 0..Kt and the
    single-hazard figures of a split's set outputs (``HazardSetArrays``) against its labels
    (see ``SetPredictions.from_outputs``). ``class_names[0]`` is ``none``; without names the
    per-class figures are keyed by class id. ``physics_direction`` [F, 3] (any length): each
    frame's physics direction, for the ``direction`` group (left out when None)."""
    predictions = SetPredictions.from_outputs(outputs, labels)
    class_true, class_pred = np.asarray(predictions.class_true), np.asarray(predictions.class_pred)
    if class_names is None:
        class_names = [
            str(c) for c in range(int(max(class_true.max(initial=0), class_pred.max(initial=0))) + 1)
        ]
    for name, ids in (("hazard_class", class_true), ("class_id", class_pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= len(class_names)):
            raise ValueError(f"set predictions: {name} outside [0, {len(class_names)})")
    records = _collect(predictions, confidence_threshold)
    every_count = np.ones(len(records.counts), dtype=bool)
    every_pair = np.ones(len(records.pair_angle_deg), dtype=bool)
    metrics = {
        OVERALL_GROUP: {
            "frames": len(class_true),
            **_group_scores(records, every_count, every_pair, class_names),
        }
    }
    for visibility in Visibility:
        metrics[visibility_group(visibility)] = _group_scores(
            records,
            records.counts[:, 3] == int(visibility),
            records.pair_visibility == int(visibility),
            class_names,
        )
    polyphony = predictions.polyphony
    for hazards in range(class_true.shape[1] + 1):
        in_group = polyphony == hazards
        metrics[polyphony_group(hazards)] = {
            "frames": int(in_group.sum()),
            **_group_scores(
                records, in_group[records.counts[:, 0]], in_group[records.pair_frame], class_names
            ),
        }
    single = SingleHazardView.of(predictions)
    metrics[SINGLE_HAZARD_GROUP] = single.scores(confidence_threshold, len(class_names))
    flat = flatten_metrics(metrics)
    if physics_direction is not None:
        metrics[DIRECTION_GROUP] = _direction_scores(predictions, physics_direction)
        for subgroup, values in metrics[DIRECTION_GROUP].items():
            flat.update(flatten_metrics({f"{DIRECTION_GROUP}/{subgroup}": values}))
    return SetEvaluation(metrics, flat, _weight_pairs(predictions, records))


def _weight_pairs(p: SetPredictions, records: _Records) -> np.ndarray:
    """(true occlusion, audio weight) [P, 2] of the matched pairs whose hazard is in view."""
    if p.occlusion_true is None or p.audio_weight is None:
        return np.zeros((0, 2))
    occlusion = np.asarray(p.occlusion_true, np.float64)[records.pair_target[:, 0], records.pair_target[:, 1]]
    weight = np.asarray(p.audio_weight, np.float64)[records.pair_slot[:, 0], records.pair_slot[:, 1]]
    in_view = np.isfinite(occlusion)
    return np.stack([occlusion[in_view], weight[in_view]], axis=1)
