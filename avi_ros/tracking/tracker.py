"""Hazards over time: a multi-hazard tracker that gives each hazard an id, an age and its rates.

Each frame's hazard estimates (``PipelineResult.hazards``) are associated with the tracks
alive so far (``association.optimal_pairs`` on ``association.likelihood_cost``: −2 ln of the
likelihood of the detection's azimuth and distance under the track's Kalman prediction, of its
class, and of the track's hazard still being reported, gated on that cost and on the angle).
Every track predicts its hazard with a constant-velocity Kalman filter of its position and
velocity in the horizontal plane, measured by azimuth and log distance (``kalman``): a hazard
that walks or drives straight past the robot keeps being predicted where it goes, where a filter
on the azimuth itself falls behind it near the robot, loses it and starts a new id. The robot's
motion between frames, from odometry, moves each prediction as it moves a standing point
(``ego_motion``: turning and driving), so the filters' rates are those of the hazard's own
motion. The published rates come from two one-coordinate filters beside it, which follow a
turning path without lag: the **angular velocity** [rad/s] of its azimuth, 0 for a standing
hazard while the robot drives past it, and the **range rate** [m/s, negative: approaching], the
rate of the distance between hazard and robot: the log-distance filter's rate times the
distance, plus the part the robot's driving adds (what time-to-contact needs).

Life of a track:

- **born tentative** from a detection that no track took, on that first frame: it gets the next
  id at once (ids only increase, also across resets, so an id is never reused) and is
  published with ``track_state`` TENTATIVE, so a hazard shows from its first confident frame
  (every estimate the pipeline publishes passed its confidence threshold);
- **confirmed** after ``min_hits`` matched frames: the same id, ``track_state`` CONFIRMED;
- a track that misses frames **coasts**: it is predicted but not published, and it keeps its
  id if a detection comes back within ``max_missed_s``; after that it **dies**, so a track ends
  at most ``max_missed_s`` after the model stops reporting its hazard. A tentative track that
  dies leaves its id unused: clutter shows for a frame or two as a tentative track.

``update`` returns the frame's estimates in their order, each a copy with the track fields
filled (``track_id``, ``track_state``, ``first_seen_ns``, ``track_age_s``, the rates). Estimates
with non-finite numbers are returned unchanged, untracked (``track_id`` 0, ``track_state``
NONE): nothing the model reported is hidden. A consumer that wants confirmed tracks only keeps
``track_state == CONFIRMED``.

``tracks()`` gives every confirmed track (coasting ones too) with its filtered state and its
recent trail of positions, moved into the current robot frame, for RViz trails.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import numpy as np

from avi_ros.events import TRACKS_NON_FINITE as NON_FINITE_ESTIMATE  # the tracker's name for it
from avi_ros.events import EventCounter
from avi_ros.geometry import direction_to_unit
from avi_ros.tracking.association import Candidate, Prediction, is_finite, likelihood_cost, optimal_pairs
from avi_ros.tracking.ego_motion import FrameClock, FrameStep, RobotMotion
from avi_ros.tracking.kalman import ConstantVelocityFilter, PlanarConstantVelocityFilter, wrap_angle
from avi_ros.types import HazardEstimateData, TrackState
from avi_ros.units import NS_PER_S


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds and noise levels of ``HazardTracker`` (units beside each)."""

    gate_deg: float = 25.0  # widest angle between a track's predicted region and its detection [deg]
    gate_mahalanobis: float = 5.0  # widest likelihood cost of a pair, as a Mahalanobis distance [sigma]
    class_mismatch_cost: float = 6.0  # added to -2 ln(likelihood) for a detection of another class
    detection_probability: float = 0.9  # chance that the model reports a present hazard in a frame
    min_hits: int = 3  # matched frames before a tentative track is confirmed
    max_missed_s: float = 0.3  # a track dies after this long without a detection [s]
    reset_gap_s: float = 2.0  # a longer gap between two frames resets the tracker [s]
    azimuth_std_deg: float = 6.0  # noise of one azimuth measurement [deg]
    log_distance_std: float = 0.3  # noise of one ln(distance) measurement (0.3: about ±35 %)
    acceleration_psd: float = 4.0  # white-noise acceleration of a hazard, per axis [m²/s³]
    initial_speed_std_mps: float = 6.0  # prior spread of a new track's velocity, per axis [m/s]
    angular_acceleration_psd: float = 0.5  # white-noise angular acceleration [rad²/s³]
    initial_angular_rate_std: float = 1.0  # prior spread of a new track's angular velocity [rad/s]
    log_range_acceleration_psd: float = 1.0  # white-noise acceleration of ln(distance) [1/s³]
    initial_log_range_rate_std: float = 1.0  # prior spread of a new track's d ln(distance)/dt [1/s]
    elevation_smoothing: float = 0.5  # weight of a new elevation in the track's running mean [0..1]
    min_distance_m: float = 0.1  # distances are clipped here before the logarithm [m]
    trail_s: float = 3.0  # how much of each track's past ``tracks()`` returns [s]
    publish_filtered: bool = False  # True: published direction and distance are the track's filtered ones

    def __post_init__(self) -> None:
        positive = (
            "gate_deg",
            "gate_mahalanobis",
            "max_missed_s",
            "reset_gap_s",
            "azimuth_std_deg",
            "log_distance_std",
            "acceleration_psd",
            "initial_speed_std_mps",
            "angular_acceleration_psd",
            "initial_angular_rate_std",
            "log_range_acceleration_psd",
            "initial_log_range_rate_std",
            "min_distance_m",
            "trail_s",
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"tracking.{name}: expected a finite number > 0, got {value}")
        if not (math.isfinite(self.class_mismatch_cost) and self.class_mismatch_cost >= 0.0):
            raise ValueError(
                f"tracking.class_mismatch_cost: expected a finite number >= 0, got {self.class_mismatch_cost}"
            )
        if not 0.0 < self.detection_probability < 1.0:
            raise ValueError(
                f"tracking.detection_probability: expected in (0, 1), got {self.detection_probability}"
            )
        if self.min_hits < 1:
            raise ValueError(f"tracking.min_hits: expected >= 1 frame, got {self.min_hits}")
        if not 0.0 < self.elevation_smoothing <= 1.0:
            raise ValueError(
                f"tracking.elevation_smoothing: expected in (0, 1], got {self.elevation_smoothing}"
            )

    def log_distance(self, distance_m: float, elevation_rad: float) -> float:
        """ln of the horizontal distance [log m] of a hazard at ``distance_m`` [m] and elevation
        [rad], clipped at ``min_distance_m``: what the track's filter measures."""
        return math.log(max(distance_m * math.cos(elevation_rad), self.min_distance_m))


@dataclass(frozen=True)
class TrailPoint:
    """One past position of a track, in the robot frame of the latest frame (rad, rad, m)."""

    stamp_ns: int
    azimuth: float
    elevation: float
    distance: float


@dataclass(frozen=True)
class TrackView:
    """A confirmed track as ``HazardTracker.tracks()`` shows it (filtered state, SI units)."""

    track_id: int
    class_id: int
    first_seen_ns: int
    last_seen_ns: int  # stamp of the track's latest detection [ns]
    missed_s: float  # time since then, at the latest frame [s]; > 0 while coasting
    azimuth: float  # [rad], robot frame of the latest frame
    elevation: float  # [rad]
    distance: float  # [m]
    angular_velocity: float  # [rad/s], the hazard's own motion (robot's turning and driving removed)
    range_rate: float  # [m/s], negative: approaching (the robot's driving included)
    trail: tuple[TrailPoint, ...]  # oldest first, within ``trail_s``

    @property
    def age_s(self) -> float:
        """Time from the first frame to the latest detection [s]."""
        return (self.last_seen_ns - self.first_seen_ns) / NS_PER_S


class _Track:
    """One hazard followed over frames (module docstring): tentative until ``min_hits`` hits."""

    def __init__(
        self, track_id: int, estimate: HazardEstimateData, stamp_ns: int, config: TrackerConfig
    ) -> None:
        self.track_id = track_id
        self.hits = 1
        self.misses = 0  # frames missed since the latest detection
        self.confirmed = config.min_hits <= 1
        self.first_seen_ns = self.last_seen_ns = stamp_ns
        self.filter = PlanarConstantVelocityFilter(
            estimate.azimuth,
            config.log_distance(estimate.distance, estimate.elevation),
            (math.radians(config.azimuth_std_deg), config.log_distance_std),
            config.initial_speed_std_mps,
            config.acceleration_psd,
            config.min_distance_m,
        )
        self.bearing = ConstantVelocityFilter(
            estimate.azimuth,
            math.radians(config.azimuth_std_deg),
            config.initial_angular_rate_std,
            config.angular_acceleration_psd,
            wrap=wrap_angle,
        )
        self.log_range = ConstantVelocityFilter(
            config.log_distance(estimate.distance, estimate.elevation),
            config.log_distance_std,
            config.initial_log_range_rate_std,
            config.log_range_acceleration_psd,
        )
        self.elevation = float(estimate.elevation)
        self.classes: Counter[int] = Counter({int(estimate.class_id): 1})
        self.trail: deque[TrailPoint] = deque([self._trail_point(stamp_ns)])

    @property
    def state(self) -> TrackState:
        return TrackState.CONFIRMED if self.confirmed else TrackState.TENTATIVE

    @property
    def class_id(self) -> int:
        """The class most of its detections had (the latest wins a tie)."""
        return self.classes.most_common(1)[0][0]

    @property
    def azimuth(self) -> float:
        return self.filter.azimuth

    @property
    def distance(self) -> float:
        """Distance [m] along the track's elevation to its horizontal position."""
        return self.filter.distance / math.cos(self.elevation)

    def range_rate(self, step: FrameStep) -> float:
        """d distance / dt between hazard and robot [m/s]: the hazard's own part (its distance
        filter's rate times its distance) and the part the robot's driving over ``step`` adds."""
        own = self.distance * self.log_range.rate
        return own + step.ego_range_rate(self.azimuth, self.elevation)

    def prediction(self, detections: list[Candidate], config: TrackerConfig) -> Prediction:
        """The track's prediction against each detection, for ``association.likelihood_cost``."""
        log_distances = [config.log_distance(d.distance, d.elevation) for d in detections]
        residuals, covariance = self.filter.innovations(
            np.array([d.azimuth for d in detections]), np.array(log_distances)
        )
        candidate = Candidate(self.azimuth, self.elevation, self.distance, self.class_id)
        # Each frame missed while the hazard was there has chance 1 - P_D: -2 ln of that per miss.
        existence_cost = -2.0 * self.misses * math.log(1.0 - config.detection_probability)
        return Prediction(candidate, residuals, covariance, self.filter.noise, existence_cost)

    def predict(self, step: FrameStep) -> None:
        """Advance the filter by the hazard's own motion, then move the prediction and the
        trail as the robot's motion over ``step`` moves a standing point."""
        self.filter.predict(step.dt_s)
        self.bearing.predict(step.dt_s)
        self.log_range.predict(step.dt_s)
        if not step.moves:
            return
        self.elevation = step.move(self.azimuth, self.elevation, self.distance)[1]
        azimuth, log_distance = self.azimuth, math.log(self.filter.distance)
        self.filter.move(step.dx_m, step.dy_m, step.turn_rad)
        self.bearing.shift(wrap_angle(self.azimuth - azimuth))
        self.log_range.shift(math.log(self.filter.distance) - log_distance)
        self.trail = deque(
            TrailPoint(p.stamp_ns, *step.move(p.azimuth, p.elevation, p.distance)) for p in self.trail
        )

    def update(self, estimate: HazardEstimateData, stamp_ns: int, config: TrackerConfig) -> None:
        log_distance = config.log_distance(estimate.distance, estimate.elevation)
        self.filter.update(estimate.azimuth, log_distance)
        self.bearing.update(estimate.azimuth, math.radians(config.azimuth_std_deg))
        self.log_range.update(log_distance, config.log_distance_std)
        alpha = config.elevation_smoothing
        self.elevation = (1.0 - alpha) * self.elevation + alpha * float(estimate.elevation)
        self.classes[int(estimate.class_id)] += 1
        self.hits += 1
        self.misses = 0
        self.confirmed = self.confirmed or self.hits >= config.min_hits
        self.last_seen_ns = stamp_ns
        self.trail.append(self._trail_point(stamp_ns))
        oldest = stamp_ns - int(config.trail_s * NS_PER_S)
        while self.trail[0].stamp_ns < oldest:
            self.trail.popleft()

    def _trail_point(self, stamp_ns: int) -> TrailPoint:
        return TrailPoint(stamp_ns, self.azimuth, self.elevation, self.distance)


TrackT = TypeVar("TrackT")


class TrackerBase(Generic[TrackT]):
    """What ``HazardTracker`` and its baseline (``NearestNeighbourTracker``) share, so that they
    compare like with like: the config, the frame clock and its events, the tracks, the next id,
    and the reset by a call or by a time jump or gap between frames."""

    def __init__(self, config: TrackerConfig | None = None, events: EventCounter | None = None) -> None:
        self.config = config or TrackerConfig()
        self.events = events if events is not None else EventCounter()
        self._clock = FrameClock(self.config.reset_gap_s, self.events)
        self._tracks: list[TrackT] = []
        self._next_id = 1
        self.resets = 0  # how many times a time jump or a gap cleared the tracks

    def reset(self) -> None:
        """Forget every track and the last stamp; ids keep increasing from where they were."""
        self._tracks = []
        self._clock.reset()

    def _step(self, stamp_ns: int, motion: RobotMotion | None) -> FrameStep:
        """The step to the frame at ``stamp_ns`` [ns] with the robot's odometry (None: none);
        a time jump or a gap clears the tracks first."""
        step = self._clock.step(stamp_ns, motion)
        if step.reset:
            self.resets += 1
            self._tracks = []
        return step


class HazardTracker(TrackerBase[_Track]):
    """Tracks of the hazards of successive frames (module docstring). Not thread-safe: one
    caller (the node's inference worker, or the replay loop) calls ``update`` in stamp order."""

    def __init__(self, config: TrackerConfig | None = None, events: EventCounter | None = None) -> None:
        super().__init__(config, events)
        self._stamp_ns = 0
        self._last_step = FrameStep(0.0, reset=False)

    def update(
        self, estimates: list[HazardEstimateData], stamp_ns: int, motion: RobotMotion | None = None
    ) -> list[HazardEstimateData]:
        """Track one frame: its estimates, its stamp [ns] and the robot's odometry (None: no
        odometry). Returns the estimates in order, with the track fields of their tracks."""
        step = self._last_step = self._step(stamp_ns, motion)
        self._stamp_ns = int(stamp_ns)
        for track in self._tracks:
            track.predict(step)
        usable = [i for i, e in enumerate(estimates) if is_finite(e)]
        if len(usable) < len(estimates):
            self.events.record(NON_FINITE_ESTIMATE, "hazard estimate with NaN or inf left untracked")
        owners = self._associate([estimates[i] for i in usable])
        matched: dict[int, _Track] = {}
        for slot, track in owners.items():
            index = usable[slot]
            track.update(estimates[index], self._stamp_ns, self.config)
            matched[index] = track
        self._retire(set(map(id, matched.values())))
        for slot, index in enumerate(usable):
            if slot not in owners:
                track = _Track(self._next_id, estimates[index], self._stamp_ns, self.config)
                self._next_id += 1
                self._tracks.append(track)
                matched[index] = track
        return [self._annotate(e, matched[i]) if i in matched else e for i, e in enumerate(estimates)]

    def tracks(self) -> list[TrackView]:
        """Every confirmed track (coasting ones too), by id, at the latest frame."""
        return [
            TrackView(
                track_id=t.track_id,
                class_id=t.class_id,
                first_seen_ns=t.first_seen_ns,
                last_seen_ns=t.last_seen_ns,
                missed_s=(self._stamp_ns - t.last_seen_ns) / NS_PER_S,
                azimuth=t.azimuth,
                elevation=t.elevation,
                distance=t.distance,
                angular_velocity=t.bearing.rate,
                range_rate=t.range_rate(self._last_step),
                trail=tuple(t.trail),
            )
            for t in sorted(self._tracks, key=lambda t: t.track_id)
            if t.confirmed
        ]

    def _associate(self, detections: list[HazardEstimateData]) -> dict[int, _Track]:
        """Detection slot -> track: confirmed tracks choose first, then tentative tracks take the
        rest, each within the gate (``association.likelihood_cost``), so that a clutter detection's
        new track never takes a confirmed hazard's detection."""
        candidates = [Candidate.of(e) for e in detections]
        owners: dict[int, _Track] = {}
        gate_rad, gate_d2 = math.radians(self.config.gate_deg), self.config.gate_mahalanobis**2
        for confirmed in (True, False):
            tracks = [t for t in self._tracks if t.confirmed == confirmed]
            free = [j for j in range(len(candidates)) if j not in owners]
            free_candidates = [candidates[j] for j in free]
            cost = likelihood_cost(
                [t.prediction(free_candidates, self.config) for t in tracks],
                free_candidates,
                gate_rad,
                gate_d2,
                self.config.class_mismatch_cost,
            )
            for row, col in optimal_pairs(cost):
                owners[free[col]] = tracks[row]
        return owners

    def _retire(self, matched: set[int]) -> None:
        """Count a miss on each track without a detection this frame, and drop the tracks missed
        for longer than ``max_missed_s``."""
        for track in self._tracks:
            if id(track) not in matched:
                track.misses += 1
        max_missed_ns = self.config.max_missed_s * NS_PER_S
        self._tracks = [
            t for t in self._tracks if id(t) in matched or self._stamp_ns - t.last_seen_ns <= max_missed_ns
        ]

    def _annotate(self, estimate: HazardEstimateData, track: _Track) -> HazardEstimateData:
        fields = {
            "track_id": track.track_id,
            "track_state": track.state,
            "first_seen_ns": track.first_seen_ns,
            "track_age_s": (self._stamp_ns - track.first_seen_ns) / NS_PER_S,
            "angular_velocity": track.bearing.rate,
            "range_rate": track.range_rate(self._last_step),
        }
        if self.config.publish_filtered:
            azimuth, distance = track.azimuth, track.distance
            fields.update(
                azimuth=azimuth,
                elevation=track.elevation,
                distance=distance,
                direction=direction_to_unit(azimuth, track.elevation),
            )
        return replace(estimate, **fields)
