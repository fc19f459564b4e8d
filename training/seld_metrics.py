"""DCASE2023 Task 3 SELD metrics: ER20, F20, LE_CD, LR_CD and the SELD score.

Written from the published definitions (shared/REFERENCE.md) and the behaviour of the
DCASE2023 baseline's evaluation, so figures compare with the challenge's:

- labels live on 100 ms frames; metrics are computed per 1 s segment (10 frames); the official
  code's choice of which segments to score is ``coverage="official"`` (``official_num_frames``);
- within a segment and class, reference and predicted DOAs of each frame are matched with the
  Hungarian algorithm (scipy ``linear_sum_assignment``) on the great-circle angle; the angles of
  each reference track are averaged over the segment;
- a matched track is a true positive when that mean angle is <= 20 deg, else a spatial false
  positive; surplus predicted (reference) tracks are false positives (negatives);
- a class present in both but never in the same frame counts the predicted track count as
  false negatives, as the baseline does;
- ER20 = (S + D + I) / N_ref over all classes; F20, LE_CD and LR_CD are macro averages over the
  ``num_classes`` classes (a class with no matched track has LE_CD 180 deg);
- SELD score = mean(ER20, 1 − F20, LE_CD / 180, 1 − LR_CD).

Multi-ACCDOA output becomes events as in the baseline's inference (``frame_labels_from_multi_accdoa``).

A DOA is a unit vector (x, y, z) in the REP-103 frame; STARSS23 rows in degrees are converted
with ``frame_labels_from_rows``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from avi_ros.geometry import angular_error_rad, direction_to_unit

FRAMES_PER_SEGMENT = 10  # 100 ms label frames per 1 s segment
SPATIAL_THRESHOLD_DEG = 20.0
ACTIVITY_THRESHOLD = 0.5  # multi-ACCDOA track is active when its vector norm exceeds this
UNIFY_THRESHOLD_DEG = 15.0  # same-class tracks closer than this are one source (baseline inference)

# frame index -> list of (class index, unit DOA [3]) active in that 100 ms frame.
FrameLabels = dict[int, list[tuple[int, np.ndarray]]]


@dataclass(frozen=True)
class SeldScores:
    """Challenge metrics: fractions in [0, 1] except ``le_cd_deg`` [deg]; per-class arrays [C]."""

    er20: float
    f20: float
    le_cd_deg: float
    lr_cd: float
    seld_score: float
    per_class_f20: np.ndarray
    per_class_le_cd_deg: np.ndarray
    per_class_lr_cd: np.ndarray

    def as_dict(self) -> dict[str, float]:
        return {
            "er20": self.er20,
            "f20": self.f20,
            "le_cd_deg": self.le_cd_deg,
            "lr_cd": self.lr_cd,
            "seld_score": self.seld_score,
        }


def seld_score(er20: float, f20: float, le_cd_deg: float, lr_cd: float) -> float:
    """mean(ER20, 1 − F20, LE_CD / 180, 1 − LR_CD)."""
    return float(np.mean([er20, 1.0 - f20, le_cd_deg / 180.0, 1.0 - lr_cd]))


def _segment(labels: FrameLabels, num_frames: int) -> list[dict[int, dict[int, list[np.ndarray]]]]:
    """Per 1 s segment: class -> {frame within segment -> list of DOAs}."""
    segments: list[dict[int, dict[int, list[np.ndarray]]]] = [
        defaultdict(dict) for _ in range(int(np.ceil(num_frames / FRAMES_PER_SEGMENT)))
    ]
    for frame, events in labels.items():
        if not 0 <= frame < num_frames:
            continue
        per_class = segments[frame // FRAMES_PER_SEGMENT]
        for class_index, doa in events:
            per_class[int(class_index)].setdefault(frame % FRAMES_PER_SEGMENT, []).append(np.asarray(doa))
    return segments


def _match_frame(reference: list[np.ndarray], predicted: list[np.ndarray]) -> list[tuple[int, float]]:
    """Hungarian matching of one frame's DOAs: (reference index, angle [deg]) per matched pair."""
    ref = np.stack(reference)
    pred = np.stack(predicted)
    cost = np.degrees(angular_error_rad(ref[:, None, :], pred[None, :, :]))
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), float(cost[r, c])) for r, c in zip(rows, cols, strict=True)]


class SeldAccumulator:
    """Accumulates the DCASE2023 counts over files; ``compute()`` gives the scores."""

    def __init__(self, num_classes: int, threshold_deg: float = SPATIAL_THRESHOLD_DEG) -> None:
        self.num_classes = num_classes
        self.threshold_deg = threshold_deg
        zeros = lambda: np.zeros(num_classes)  # noqa: E731
        self.tp, self.fp, self.fn, self.fp_spatial = zeros(), zeros(), zeros(), zeros()
        self.n_ref = zeros()
        self.total_de, self.de_tp, self.de_fn = zeros(), zeros(), zeros()
        self.substitutions = self.deletions = self.insertions = 0.0

    def update(self, reference: FrameLabels, prediction: FrameLabels, num_frames: int) -> None:
        """Add one file (or one sequence) of ``num_frames`` 100 ms frames."""
        for ref_seg, pred_seg in zip(
            _segment(reference, num_frames), _segment(prediction, num_frames), strict=True
        ):
            seg_fn = seg_fp = 0.0
            for c in range(self.num_classes):
                ref_frames, pred_frames = ref_seg.get(c), pred_seg.get(c)
                n_ref = max(len(v) for v in ref_frames.values()) if ref_frames else 0
                n_pred = max(len(v) for v in pred_frames.values()) if pred_frames else 0
                self.n_ref[c] += n_ref
                if ref_frames and pred_frames:
                    fn, fp = self._matched_class(c, ref_frames, pred_frames, n_ref, n_pred)
                elif ref_frames:
                    fn, fp = n_ref, 0
                    self.fn[c] += n_ref
                    self.de_fn[c] += n_ref
                elif pred_frames:
                    fn, fp = 0, n_pred
                    self.fp[c] += n_pred
                else:
                    fn = fp = 0
                seg_fn += fn
                seg_fp += fp
            self.substitutions += min(seg_fp, seg_fn)
            self.deletions += max(0.0, seg_fn - seg_fp)
            self.insertions += max(0.0, seg_fp - seg_fn)

    def _matched_class(
        self,
        c: int,
        ref_frames: dict[int, list[np.ndarray]],
        pred_frames: dict[int, list[np.ndarray]],
        n_ref: int,
        n_pred: int,
    ) -> tuple[float, float]:
        """Counts for a class present in both; returns this class's (FN, FP) for the segment's ER."""
        track_angles: dict[int, list[float]] = defaultdict(list)
        for frame, reference in ref_frames.items():
            if frame in pred_frames:
                for track, angle in _match_frame(reference, pred_frames[frame]):
                    track_angles[track].append(angle)
        if not track_angles:
            # Never active in the same frame: the baseline counts the predicted tracks as misses.
            self.fn[c] += n_pred
            self.de_fn[c] += n_pred
            return float(n_pred), 0.0
        fn = fp = 0.0
        for angles in track_angles.values():
            mean_angle = float(np.mean(angles))
            self.total_de[c] += mean_angle
            self.de_tp[c] += 1
            if mean_angle <= self.threshold_deg:
                self.tp[c] += 1
            else:
                self.fp_spatial[c] += 1
                fp += 1
        if n_pred > n_ref:
            self.fp[c] += n_pred - n_ref
            fp += n_pred - n_ref
        elif n_pred < n_ref:
            self.fn[c] += n_ref - n_pred
            self.de_fn[c] += n_ref - n_pred
            fn += n_ref - n_pred
        return fn, fp

    def compute(self) -> SeldScores:
        eps = np.finfo(float).eps
        er = (self.substitutions + self.deletions + self.insertions) / (self.n_ref.sum() + eps)
        f = self.tp / (eps + self.tp + self.fp_spatial + 0.5 * (self.fp + self.fn))
        le = np.where(self.de_tp > 0, self.total_de / np.maximum(self.de_tp, 1), 180.0)
        lr = self.de_tp / (eps + self.de_tp + self.de_fn)
        er, f_mean, le_mean, lr_mean = float(er), float(f.mean()), float(le.mean()), float(lr.mean())
        return SeldScores(er, f_mean, le_mean, lr_mean, seld_score(er, f_mean, le_mean, lr_mean), f, le, lr)


def official_num_frames(reference: FrameLabels) -> int:
    """The 100 ms frames the DCASE2023 evaluation code scores for a file with these labels.

    The official code (cls_compute_seld_results.py) takes M = the last labelled frame index as
    the frame count and scores ceil(M / 10) whole one-second segments, i.e. frames
    [0, 10 * ceil(M / 10)). When M is a multiple of 10, the segment holding frame M itself is
    not scored. No labels: nothing is scored.
    """
    if not reference:
        return 0
    return FRAMES_PER_SEGMENT * math.ceil(max(reference) / FRAMES_PER_SEGMENT)


SEGMENT_COVERAGES = ("full", "official")


def seld_metrics(
    reference: FrameLabels,
    prediction: FrameLabels,
    num_classes: int,
    num_frames: int | None = None,
    coverage: str = "full",
) -> SeldScores:
    """Scores of a single file.

    ``coverage`` "full" scores ``num_frames`` frames (default: one past the last labelled frame,
    reference or prediction). "official" scores exactly the frames the DCASE2023 evaluation code
    does (``official_num_frames``); use it to compare with published DCASE figures. It takes
    the frame count from the reference, so ``num_frames`` must not be given with it.
    """
    if coverage not in SEGMENT_COVERAGES:
        raise ValueError(f"coverage: expected one of {SEGMENT_COVERAGES}, got '{coverage}'")
    if coverage == "official":
        if num_frames is not None:
            raise ValueError("coverage 'official' takes the frame count from the reference; omit num_frames")
        num_frames = official_num_frames(reference)
    elif num_frames is None:
        num_frames = max([*reference, *prediction], default=-1) + 1
    accumulator = SeldAccumulator(num_classes)
    accumulator.update(reference, prediction, num_frames)
    return accumulator.compute()


def frame_labels_from_rows(rows: Iterable[Sequence[float]]) -> FrameLabels:
    """STARSS23 rows (frame, class, source, azimuth_deg, elevation_deg[, distance_cm]) -> FrameLabels."""
    labels: FrameLabels = defaultdict(list)
    for row in rows:
        frame, class_index, azimuth, elevation = int(row[0]), int(row[1]), float(row[3]), float(row[4])
        labels[frame].append((class_index, direction_to_unit(np.radians(azimuth), np.radians(elevation))))
    return dict(labels)


def frame_labels_from_multi_accdoa(
    output: np.ndarray,
    threshold: float = ACTIVITY_THRESHOLD,
    unify_deg: float = UNIFY_THRESHOLD_DEG,
) -> FrameLabels:
    """Multi-ACCDOA output [T, tracks, 3 (xyz), C] -> FrameLabels (one 100 ms frame per row).

    A track is active when its vector norm exceeds ``threshold``. Active tracks of one class
    closer than ``unify_deg``, directly or through a chain of such pairs, are merged into their
    mean, as the baseline's inference does (``_unify``), so one source predicted on several
    tracks is not counted twice.
    """
    output = np.asarray(output, dtype=np.float64)
    if output.ndim != 4 or output.shape[2] != 3:
        raise ValueError(f"multi-ACCDOA output: expected [T, tracks, 3, C], got {output.shape}")
    labels: FrameLabels = {}
    for frame in range(output.shape[0]):
        events: list[tuple[int, np.ndarray]] = []
        for c in range(output.shape[3]):
            vectors = [v for v in output[frame, :, :, c] if np.linalg.norm(v) > threshold]
            for vector in _unify(vectors, unify_deg):
                events.append((c, vector / np.linalg.norm(vector)))
        if events:
            labels[frame] = events
    return labels


def _unify(vectors: list[np.ndarray], unify_deg: float) -> list[np.ndarray]:
    """Merge active tracks that are linked by angles below ``unify_deg`` into their mean.

    Tracks are linked when their angle is below the threshold, and a chain of links joins
    them: with three tracks A-B and B-C close but A-C not, all three become one event. This is
    the DCASE2023 baseline's inference (train_seldnet.py: two or more close pairs of its three
    tracks give the mean of all three, one close pair its mean plus the third track), written
    for any number of tracks as the connected components of the "close" graph.
    """
    groups: list[list[np.ndarray]] = []
    for vector in vectors:
        linked = [g for g in groups if any(_angle_deg(member, vector) < unify_deg for member in g)]
        merged = [member for group in linked for member in group]
        groups = [g for g in groups if not any(g is group for group in linked)]
        groups.append([*merged, vector])
    return [np.mean(group, axis=0) for group in groups]


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(angular_error_rad(a, b)))
