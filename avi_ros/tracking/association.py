"""Which detection of a frame continues which track: a gated cost, then an assignment.

The tracker's cost of pairing a track with a detection is −2 ln of the likelihood that the
detection is the track's hazard, relative to a track that was just seen, knows where its hazard
is (its innovation covariance is the measurement noise ``R``) and has the detection's class (the
units of a squared Mahalanobis distance):

    d² + ln(det S / det R) + class_mismatch_cost · [classes differ] + existence_cost

with ``S`` the Kalman innovation covariance of (azimuth, ln distance), ``d²`` the squared
Mahalanobis distance of the detection from the prediction, and ``existence_cost`` −2 ln of the
probability that the track's hazard is still reported at all (it grows with each frame the track
missed). A pair is allowed only when its whole cost is within ``gate_d2``, so a track that
coasts, or is new and spreads wide, or has another class, needs a closer detection than a sure
track: a confirmed track that missed its own hazard does not take a new hazard's detection
beside it, and a clutter track does not take a new hazard's first detection. Its angle must also
be within ``gate_rad`` of the region where the track predicts its hazard: ``sqrt(gate_d2)``
standard deviations of the predicted azimuth (without the measurement noise) on either side of
the predicted direction, because a hazard passing close to the robot, or that of a new track
whose velocity is not known yet, may sweep far more than ``gate_rad`` between two frames.

The same terms make a track that was just seen win a detection over one that coasts: when one
of two nearby hazards stops, its track stops taking the other's detections and dies within
``max_missed_s``, instead of the two tracks taking turns on the one hazard and its id flipping
between them. ``optimal_pairs`` solves the assignment (Hungarian algorithm,
``scipy.optimize.linear_sum_assignment``): the tracker's association.

``cost_matrix`` is the angle alone (in units of the gate), and ``greedy_pairs`` takes the
cheapest free pair first, frame by frame: the nearest-neighbour baseline.
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


@dataclass(frozen=True)
class Prediction:
    """A track as the tracker's association sees it: where it expects its hazard (``candidate``)
    and, for each detection, the innovation (azimuth [rad], ln distance [log m]) and its
    covariance ``S`` [2 × 2], from the track's Kalman filter."""

    candidate: Candidate
    residuals: np.ndarray  # [detections × 2]
    covariance: np.ndarray  # [2 × 2], the same for every detection (one linearisation point)
    noise: np.ndarray  # [2 × 2], the measurement noise alone: S of a track sure of its hazard
    existence_cost: float = 0.0  # -2 ln P(the track's hazard is still reported)


def is_finite(estimate: HazardEstimateData) -> bool:
    """Whether an estimate's direction and distance are numbers that association can use."""
    return all(map(math.isfinite, (estimate.azimuth, estimate.elevation, estimate.distance)))


@dataclass(frozen=True)
class CostWeights:
    """The baseline's gate: the widest angle allowed [rad]."""

    gate_rad: float


def _angles(tracks: Sequence[Candidate], detections: Sequence[Candidate]) -> np.ndarray:
    """Angle between each track's and each detection's direction [tracks × detections] [rad]."""
    track_dirs = direction_to_unit([t.azimuth for t in tracks], [t.elevation for t in tracks])
    detection_dirs = direction_to_unit([d.azimuth for d in detections], [d.elevation for d in detections])
    return angular_error_rad(track_dirs[:, None, :], detection_dirs[None, :, :])


def cost_matrix(
    tracks: Sequence[Candidate], detections: Sequence[Candidate], weights: CostWeights
) -> np.ndarray:
    """Angle in units of the gate [tracks × detections]; ``inf`` beyond the gate."""
    if not tracks or not detections:
        return np.zeros((len(tracks), len(detections)))
    angle = _angles(tracks, detections)
    return np.where(angle <= weights.gate_rad, angle / weights.gate_rad, math.inf)


def likelihood_cost(
    tracks: Sequence[Prediction],
    detections: Sequence[Candidate],
    gate_rad: float,
    gate_d2: float,
    class_mismatch_cost: float,
) -> np.ndarray:
    """−2 ln likelihood of each detection under each track's prediction (module docstring)
    [tracks × detections]; ``inf`` where the cost exceeds ``gate_d2`` or the angle exceeds
    ``gate_rad`` [rad] plus ``sqrt(gate_d2)`` standard deviations of the predicted azimuth."""
    if not tracks or not detections:
        return np.zeros((len(tracks), len(detections)))
    angle = _angles([t.candidate for t in tracks], detections)
    # The angle is measured from the region the track predicts its hazard in, not its centre.
    spread = np.sqrt(np.maximum([t.covariance[0, 0] - t.noise[0, 0] for t in tracks], 0.0))
    within_angle = angle <= gate_rad + math.sqrt(gate_d2) * spread[:, None]
    cost = np.empty_like(angle)
    classes = np.array([d.class_id for d in detections])
    for row, track in enumerate(tracks):
        inverse = np.linalg.inv(track.covariance)
        d2 = np.einsum("ni,ij,nj->n", track.residuals, inverse, track.residuals)
        spread = math.log(np.linalg.det(track.covariance) / np.linalg.det(track.noise))
        mismatch = class_mismatch_cost * (classes != track.candidate.class_id)
        cost[row] = d2 + spread + mismatch + track.existence_cost
    return np.where(within_angle & (cost <= gate_d2), cost, math.inf)


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
