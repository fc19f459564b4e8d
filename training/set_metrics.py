"""DCASE2024-style detection metrics of the hazard-set model, overall, by visibility and by polyphony.

Written from the DCASE2024 Task 3 definitions (shared/REFERENCE.md), with one frame = one
model window here (the set model answers once per window):

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
- LE [deg] and RDE are the mean angle and relative distance error of the matched same-class
  pairs, whatever their error (DCASE's class-dependent LE), macro over the classes with a pair
  (``le_deg``, ``rde``) and pooled (``le_deg_micro``, ``rde_micro``);
- by visibility, a true positive or false negative belongs to the ground-truth hazard's
  visibility and a false positive to the prediction's *predicted* visibility (there is no true
  one); by polyphony, a frame with n hazards gives all its counts to ``polyphony_n``;
- the single-hazard figures, on frames with at most one hazard, read the top slot (highest
  confidence among the slots whose class is not ``none``; none when there is no such slot), as
  the single-hazard model is read: class accuracy (``none`` right on an empty frame) and the
  median azimuth / angular error [deg] of the top slot on frames with a hazard;
- the direction figures (``direction`` group, when the physics direction of each frame is given),
  on frames with exactly one hazard: the median azimuth error [deg] of the model's top slot and
  of the physics baseline (the broadband FOA intensity vector of the window, ``avi_ros.doa``)
  side by side, over all such frames, by sector of the true azimuth (front |az| <= 45 deg, left,
  right, behind |az| > 135 deg) and by visibility; a frame where the model reports no hazard has
  no model error (``model_located`` counts those that have one);
- a metric with nothing to be computed on is None (JSON null), never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from avi_ros.scoring import accuracy, angular_errors_deg
from avi_ros.taxonomy import Visibility
from training.metrics import (
    BACKGROUND_CLASS,
    NODE_CONFIDENCE_THRESHOLD,
    _mean,
    _median,
    azimuth_errors_deg,
    flatten_metrics,
)
from training.seld_metrics import SPATIAL_THRESHOLD_DEG

RELATIVE_DISTANCE_THRESHOLD = 1.0  # DCASE2024: a hit needs |d̂ − d| / d <= 1
OVERALL_GROUP = "set"
SINGLE_HAZARD_GROUP = "single_hazard"
DIRECTION_GROUP = "direction"
# Sectors of the true azimuth [deg]: (name, lower bound, upper bound), "behind" wraps around +-180.
SECTORS = (("front", -45.0, 45.0), ("left", 45.0, 135.0), ("right", -135.0, -45.0))
BEHIND = "behind"
_TP, _FP, _FN = 0, 1, 2


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
        """From the set model's outputs (``HazardSetArrays``: class_id, confidence, direction,
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
    }


def _single_hazard_scores(p: SetPredictions) -> dict[str, Any]:
    """Top-slot figures on the frames with at most one hazard (the single-hazard model's view)."""
    frames = np.flatnonzero(p.polyphony <= 1)
    class_pred = np.asarray(p.class_pred)[frames]
    ranked = np.where(class_pred != BACKGROUND_CLASS, np.asarray(p.confidence, np.float64)[frames], -np.inf)
    top = np.argmax(ranked, axis=1)
    has_top = np.isfinite(ranked[np.arange(len(frames)), top])
    top_class = np.where(has_top, class_pred[np.arange(len(frames)), top], BACKGROUND_CLASS)
    class_true = np.asarray(p.class_true)[frames]
    target = np.argmax(class_true != BACKGROUND_CLASS, axis=1)  # the hazard's slot (0 when none)
    true_class = class_true[np.arange(len(frames)), target]
    located = (true_class != BACKGROUND_CLASS) & has_top
    direction_pred = np.asarray(p.direction_pred)[frames[located], top[located]]
    direction_true = np.asarray(p.direction_true)[frames[located], target[located]]
    return {
        "frames": len(frames),
        "accuracy": accuracy(true_class, top_class),
        "located_frames": int(located.sum()),
        "azimuth_error_median_deg": _median(azimuth_errors_deg(direction_pred, direction_true)),
        "angular_error_median_deg": _median(angular_errors_deg(direction_pred, direction_true)),
    }


def sector_of(azimuth_deg: np.ndarray) -> np.ndarray:
    """The sector name (SECTORS or BEHIND) of each azimuth [deg, REP-103]."""
    azimuth = np.asarray(azimuth_deg, dtype=np.float64)
    names = np.full(azimuth.shape, BEHIND, dtype=object)
    for name, low, high in SECTORS:
        names[(azimuth >= low) & (azimuth <= high)] = name
    return names


def _direction_scores(p: SetPredictions, physics_direction: np.ndarray) -> dict[str, Any]:
    """Model top slot against the physics baseline on frames with exactly one hazard (module doc)."""
    frames = np.flatnonzero(p.polyphony == 1)
    class_true = np.asarray(p.class_true)[frames]
    target = np.argmax(class_true != BACKGROUND_CLASS, axis=1)
    direction_true = np.asarray(p.direction_true)[frames, target]
    class_pred = np.asarray(p.class_pred)[frames]
    ranked = np.where(class_pred != BACKGROUND_CLASS, np.asarray(p.confidence, np.float64)[frames], -np.inf)
    top = np.argmax(ranked, axis=1)
    located = np.isfinite(ranked[np.arange(len(frames)), top])
    model_error = np.full(len(frames), np.nan)
    model_error[located] = azimuth_errors_deg(
        np.asarray(p.direction_pred)[frames[located], top[located]], direction_true[located]
    )
    physics_error = azimuth_errors_deg(np.asarray(physics_direction, np.float64)[frames], direction_true)
    true_azimuth = np.degrees(np.arctan2(direction_true[:, 1], direction_true[:, 0]))
    visibility = np.asarray(p.visibility_true)[frames, target]

    def scores(selected: np.ndarray) -> dict[str, Any]:
        model = model_error[selected]
        return {
            "frames": int(selected.sum()),
            "model_located": int(np.isfinite(model).sum()),
            "model_azimuth_error_median_deg": _median(model[np.isfinite(model)]),
            "physics_azimuth_error_median_deg": _median(physics_error[selected]),
        }

    sectors = sector_of(true_azimuth)
    out: dict[str, Any] = {"all": scores(np.ones(len(frames), dtype=bool))}
    for name in (*(s[0] for s in SECTORS), BEHIND):
        out[name] = scores(sectors == name)
    for vis in Visibility:
        out[visibility_group(vis)] = scores(visibility == int(vis))
    return out


def evaluate_hazard_sets(
    outputs: Any,
    labels: Mapping[str, np.ndarray],
    confidence_threshold: float = NODE_CONFIDENCE_THRESHOLD,
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
    metrics[SINGLE_HAZARD_GROUP] = _single_hazard_scores(predictions)
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
