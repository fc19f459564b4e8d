"""Which detection of a frame continues which track: a gated cost, then an assignment.

The cost of pairing a track's predicted hazard with a detection is, in units of the gate,

    angle / gate + distance_weight · |ln(d_detection / d_prediction)| + class_mismatch_cost · [classes differ]

and a pair whose angle exceeds the gate is not allowed at all. ``optimal_pairs`` solves the
assignment (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``): the tracker's
association. ``greedy_pairs`` takes the cheapest free pair first, frame by frame: the
nearest-neighbour baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from avi_ros.geometry import angular_error_rad, direction_to_unit
from avi_ros.types import HazardEstimateData

_FORBIDDEN = 1e9  # stands for "not allowed" inside linear_sum_assignment, which needs finite costs


@dataclass(frozen=True)
class Candidate:
    """A hazard as association sees it: direction [rad], distance [m] and class."""

    azimuth: float
    elevation: float
    distance: float
    class_id: int

    @classmethod
    def of(cls, estimate: HazardEstimateData) -> Candidate:
        return cls(estimate.azimuth, estimate.elevation, estimate.distance, int(estimate.class_id))


def is_finite(estimate: HazardEstimateData) -> bool:
    """Whether an estimate's direction and distance are numbers that association can use."""
    return all(map(math.isfinite, (estimate.azimuth, estimate.elevation, estimate.distance)))


@dataclass(frozen=True)
class CostWeights:
    """The terms of the cost (module docstring); ``gate_rad`` is the widest angle allowed [rad]."""

    gate_rad: float
    distance_weight: float = 0.0
    class_mismatch_cost: float = 0.0
    min_distance_m: float = 0.1  # distances are clipped here before the logarithm [m]


def cost_matrix(
    tracks: Sequence[Candidate], detections: Sequence[Candidate], weights: CostWeights
) -> np.ndarray:
    """Cost [tracks × detections]; ``inf`` where the angle is beyond the gate."""
    if not tracks or not detections:
        return np.zeros((len(tracks), len(detections)))
    track_dirs = direction_to_unit([t.azimuth for t in tracks], [t.elevation for t in tracks])
    detection_dirs = direction_to_unit([d.azimuth for d in detections], [d.elevation for d in detections])
    angle = angular_error_rad(track_dirs[:, None, :], detection_dirs[None, :, :])
    cost = angle / weights.gate_rad
    if weights.distance_weight:
        log_t = np.log(np.maximum([t.distance for t in tracks], weights.min_distance_m))
        log_d = np.log(np.maximum([d.distance for d in detections], weights.min_distance_m))
        cost = cost + weights.distance_weight * np.abs(log_t[:, None] - log_d[None, :])
    if weights.class_mismatch_cost:
        classes_t = np.array([t.class_id for t in tracks])
        classes_d = np.array([d.class_id for d in detections])
        cost = cost + weights.class_mismatch_cost * (classes_t[:, None] != classes_d[None, :])
    return np.where(angle <= weights.gate_rad, cost, math.inf)


def optimal_pairs(cost: np.ndarray) -> list[tuple[int, int]]:
    """(track, detection) pairs of least total cost; pairs beyond the gate are never returned."""
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, _FORBIDDEN))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if np.isfinite(cost[r, c])]


def greedy_pairs(cost: np.ndarray) -> list[tuple[int, int]]:
    """(track, detection) pairs taken cheapest first, each track and detection at most once."""
    pairs: list[tuple[int, int]] = []
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for flat in np.argsort(cost, axis=None, kind="stable"):
        row, col = divmod(int(flat), cost.shape[1])
        if not np.isfinite(cost[row, col]):
            break
        if row not in used_rows and col not in used_cols:
            pairs.append((row, col))
            used_rows.add(row)
            used_cols.add(col)
    return pairs
