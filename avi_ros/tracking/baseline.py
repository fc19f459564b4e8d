"""The baseline the tracker is measured against: per-frame estimates, nearest-neighbour ids.

Each frame, every detection goes to the track whose latest detection is nearest in angle
(greedy, cheapest pair first, within the same gate as the tracker; ``association.greedy_pairs``),
and a detection that no track takes starts a new id at once. There is no filter and no
prediction: a track stands where its latest detection was, moved with the robot when odometry
is given (as the tracker moves its predictions), and its rates are finite differences between
that place and its new detection (the range rate with the robot's driving added back, as the
tracker publishes it). Every track is published as confirmed. Tracks die after ``max_missed_s``
without a detection; a time jump resets them. Same interface and outputs as
``HazardTracker.update``, so the metrics compare like with like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from avi_ros.tracking.association import Candidate, CostWeights, cost_matrix, greedy_pairs, is_finite
from avi_ros.tracking.ego_motion import RobotMotion
from avi_ros.tracking.kalman import wrap_angle
from avi_ros.tracking.tracker import TrackerBase
from avi_ros.types import HazardEstimateData, TrackState
from avi_ros.units import NS_PER_S


@dataclass
class _Last:
    """A baseline track: where and when its latest detection was."""

    track_id: int
    first_seen_ns: int
    seen_ns: int
    azimuth: float
    elevation: float
    distance: float


class NearestNeighbourTracker(TrackerBase[_Last]):
    """Per-frame nearest-neighbour association (module docstring); uses the gate, ``max_missed_s``
    and ``reset_gap_s`` of a ``TrackerConfig`` and nothing else of it."""

    def update(
        self, estimates: list[HazardEstimateData], stamp_ns: int, motion: RobotMotion | None = None
    ) -> list[HazardEstimateData]:
        """Same contract as ``HazardTracker.update``; every finite estimate gets an id."""
        step = self._step(stamp_ns, motion)
        if step.moves:
            for track in self._tracks:
                track.azimuth, track.elevation, track.distance = step.move(
                    track.azimuth, track.elevation, track.distance
                )
        max_missed_ns = self.config.max_missed_s * NS_PER_S
        self._tracks = [t for t in self._tracks if stamp_ns - t.seen_ns <= max_missed_ns]
        usable = [i for i, e in enumerate(estimates) if is_finite(e)]
        cost = cost_matrix(  # angle only: CostWeights' other terms default to 0
            [Candidate(t.azimuth, t.elevation, t.distance, 0) for t in self._tracks],
            [Candidate.of(estimates[i]) for i in usable],
            CostWeights(gate_rad=math.radians(self.config.gate_deg)),
        )
        owner = {usable[col]: self._tracks[row] for row, col in greedy_pairs(cost)}
        out = list(estimates)
        for index in usable:
            estimate = estimates[index]
            track = owner.get(index)
            if track is None:
                track = _Last(self._next_id, stamp_ns, stamp_ns, 0.0, 0.0, 0.0)
                self._next_id += 1
                self._tracks.append(track)
                rates = (0.0, 0.0)
            else:
                dt_s = max((stamp_ns - track.seen_ns) / NS_PER_S, 1e-9)
                rates = (
                    wrap_angle(estimate.azimuth - track.azimuth) / dt_s,
                    (estimate.distance - track.distance) / dt_s
                    + step.ego_range_rate(estimate.azimuth, estimate.elevation),
                )
            track.seen_ns = stamp_ns
            track.azimuth, track.elevation = estimate.azimuth, estimate.elevation
            track.distance = estimate.distance
            out[index] = replace(
                estimate,
                track_id=track.track_id,
                track_state=TrackState.CONFIRMED,
                first_seen_ns=track.first_seen_ns,
                track_age_s=(stamp_ns - track.first_seen_ns) / NS_PER_S,
                angular_velocity=rates[0],
                range_rate=rates[1],
            )
        return out
