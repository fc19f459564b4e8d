"""Hazards over time: a multi-hazard tracker that gives each hazard an id, an age and its rates.

Each frame's hazard estimates (``PipelineResult.hazards``) are associated with the tracks
alive so far (``association.optimal_pairs`` on a gated cost of angle, distance and class).
Every track runs two constant-velocity Kalman filters (``kalman``): one on its azimuth in the
robot frame, whose rate is the **angular velocity** [rad/s] with the robot's own turning
removed (``ego_motion``), and one on the log of its distance, whose rate times the distance is
the **range rate** [m/s, negative: approaching]. The log makes the distance noise, which grows
with the distance, about constant.

Life of a track:

- **born** tentative from a detection that no track took (it has no id yet);
- **confirmed** after ``min_hits`` matched frames: it gets the next id (ids only increase,
  also across resets, so an id is never reused) and is published from then on;
- a tentative track that misses one frame dies (clutter rarely repeats);
- a confirmed track that misses frames **coasts**: it is predicted but not published, and it
  keeps its id if a detection comes back within ``max_missed_s``; after that it dies.

``update`` returns the frame's estimates in their order, each a copy with the track fields
filled when it belongs to a confirmed track. Estimates of tentative tracks (the first
``min_hits - 1`` frames of a new hazard) and estimates with non-finite numbers are returned
unchanged, with ``track_id`` 0 (untracked): nothing the model reported is hidden, and a
consumer that wants tracks only keeps ``track_id != 0``. Confirmed tracks get the first frames
back through ``first_seen_ns``, the stamp of the frame the track was born in.

``tracks()`` gives every confirmed track (coasting ones too) with its filtered state and its
recent trail of positions, turned into the current robot frame, for RViz trails.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from avi_ros.events import TRACKS_NON_FINITE as NON_FINITE_ESTIMATE  # the tracker's name for it
from avi_ros.events import EventCounter
from avi_ros.geometry import direction_to_unit
from avi_ros.tracking.association import Candidate, CostWeights, cost_matrix, is_finite, optimal_pairs
from avi_ros.tracking.ego_motion import FrameClock, FrameStep
from avi_ros.tracking.kalman import ConstantVelocityFilter, wrap_angle
from avi_ros.types import HazardEstimateData
from avi_ros.units import NS_PER_S


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds and noise levels of ``HazardTracker`` (units beside each)."""

    gate_deg: float = 25.0  # widest angle between a track's predicted direction and its detection [deg]
    distance_weight: float = 0.3  # cost per unit of |ln(d_detected / d_predicted)| [gate units]
    class_mismatch_cost: float = 0.5  # cost of a detection whose class is not the track's [gate units]
    min_hits: int = 3  # matched frames before a track is confirmed and published
    max_missed_s: float = 0.5  # a confirmed track dies after this long without a detection [s]
    reset_gap_s: float = 2.0  # a longer gap between two frames resets the tracker [s]
    azimuth_std_deg: float = 6.0  # noise of one azimuth measurement [deg]
    log_distance_std: float = 0.3  # noise of one ln(distance) measurement (0.3: about ±35 %)
    angular_acceleration_psd: float = 0.5  # white-noise angular acceleration [rad²/s³]
    log_range_acceleration_psd: float = 1.0  # white-noise acceleration of ln(distance) [1/s³]
    initial_angular_rate_std: float = 1.0  # prior spread of a new track's angular velocity [rad/s]
    initial_log_range_rate_std: float = 1.0  # prior spread of a new track's d ln(distance)/dt [1/s]
    elevation_smoothing: float = 0.5  # weight of a new elevation in the track's running mean [0..1]
    min_distance_m: float = 0.1  # distances are clipped here before the logarithm [m]
    trail_s: float = 3.0  # how much of each track's past ``tracks()`` returns [s]
    publish_filtered: bool = False  # True: published direction and distance are the track's filtered ones

    def __post_init__(self) -> None:
        positive = (
            "gate_deg",
            "max_missed_s",
            "reset_gap_s",
            "azimuth_std_deg",
            "log_distance_std",
            "angular_acceleration_psd",
            "log_range_acceleration_psd",
            "initial_angular_rate_std",
            "initial_log_range_rate_std",
            "min_distance_m",
            "trail_s",
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"tracking.{name}: expected a finite number > 0, got {value}")
        for name in ("distance_weight", "class_mismatch_cost"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"tracking.{name}: expected a finite number >= 0, got {value}")
        if self.min_hits < 1:
            raise ValueError(f"tracking.min_hits: expected >= 1 frame, got {self.min_hits}")
        if not 0.0 < self.elevation_smoothing <= 1.0:
            raise ValueError(
                f"tracking.elevation_smoothing: expected in (0, 1], got {self.elevation_smoothing}"
            )

    @property
    def cost_weights(self) -> CostWeights:
        return CostWeights(
            gate_rad=math.radians(self.gate_deg),
            distance_weight=self.distance_weight,
            class_mismatch_cost=self.class_mismatch_cost,
            min_distance_m=self.min_distance_m,
        )


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
    angular_velocity: float  # [rad/s], the robot's turning removed when odometry was given
    range_rate: float  # [m/s], negative: approaching
    trail: tuple[TrailPoint, ...]  # oldest first, within ``trail_s``

    @property
    def age_s(self) -> float:
        """Time from the first frame to the latest detection [s]."""
        return (self.last_seen_ns - self.first_seen_ns) / NS_PER_S


class _Track:
    """One hazard followed over frames (module docstring); ``track_id`` 0 while tentative."""

    def __init__(self, estimate: HazardEstimateData, stamp_ns: int, config: TrackerConfig) -> None:
        self.track_id = 0
        self.hits = 1
        self.first_seen_ns = self.last_seen_ns = stamp_ns
        self.azimuth = ConstantVelocityFilter(
            estimate.azimuth,
            math.radians(config.azimuth_std_deg),
            config.initial_angular_rate_std,
            config.angular_acceleration_psd,
            wrap=wrap_angle,
        )
        self.log_distance = ConstantVelocityFilter(
            math.log(max(estimate.distance, config.min_distance_m)),
            config.log_distance_std,
            config.initial_log_range_rate_std,
            config.log_range_acceleration_psd,
        )
        self.elevation = float(estimate.elevation)
        self.classes: Counter[int] = Counter({int(estimate.class_id): 1})
        self.trail: deque[TrailPoint] = deque([self._trail_point(stamp_ns)])

    @property
    def confirmed(self) -> bool:
        return self.track_id != 0

    @property
    def class_id(self) -> int:
        """The class most of its detections had (the latest wins a tie)."""
        return self.classes.most_common(1)[0][0]

    @property
    def distance(self) -> float:
        return math.exp(self.log_distance.position)

    @property
    def range_rate(self) -> float:
        return self.distance * self.log_distance.rate

    def candidate(self) -> Candidate:
        return Candidate(self.azimuth.position, self.elevation, self.distance, self.class_id)

    def predict(self, step: FrameStep) -> None:
        self.azimuth.predict(step.dt_s, step.azimuth_shift_rad)
        self.log_distance.predict(step.dt_s)
        if step.azimuth_shift_rad:
            self.trail = deque(
                replace(p, azimuth=wrap_angle(p.azimuth + step.azimuth_shift_rad)) for p in self.trail
            )

    def update(self, estimate: HazardEstimateData, stamp_ns: int, config: TrackerConfig) -> None:
        self.azimuth.update(estimate.azimuth, math.radians(config.azimuth_std_deg))
        log_distance = math.log(max(estimate.distance, config.min_distance_m))
        self.log_distance.update(log_distance, config.log_distance_std)
        alpha = config.elevation_smoothing
        self.elevation = (1.0 - alpha) * self.elevation + alpha * float(estimate.elevation)
        self.classes[int(estimate.class_id)] += 1
        self.hits += 1
        self.last_seen_ns = stamp_ns
        self.trail.append(self._trail_point(stamp_ns))
        oldest = stamp_ns - int(config.trail_s * NS_PER_S)
        while self.trail[0].stamp_ns < oldest:
            self.trail.popleft()

    def _trail_point(self, stamp_ns: int) -> TrailPoint:
        return TrailPoint(stamp_ns, self.azimuth.position, self.elevation, self.distance)


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

    def _step(self, stamp_ns: int, yaw_rate_rps: float | None) -> FrameStep:
        """The step to the frame at ``stamp_ns`` [ns] with the yaw rate [rad/s, None: no odometry];
        a time jump or a gap clears the tracks first."""
        step = self._clock.step(stamp_ns, yaw_rate_rps)
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

    def update(
        self, estimates: list[HazardEstimateData], stamp_ns: int, yaw_rate_rps: float | None = None
    ) -> list[HazardEstimateData]:
        """Track one frame: its estimates, its stamp [ns] and the robot's yaw rate [rad/s, None:
        no odometry]. Returns the estimates in order, with the track fields of confirmed tracks."""
        step = self._step(stamp_ns, yaw_rate_rps)
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
                track = _Track(estimates[index], self._stamp_ns, self.config)
                self._tracks.append(track)
                matched[index] = track
        for track in matched.values():
            if not track.confirmed and track.hits >= self.config.min_hits:
                track.track_id = self._next_id
                self._next_id += 1
        return [
            self._annotate(e, matched[i]) if i in matched and matched[i].confirmed else e
            for i, e in enumerate(estimates)
        ]

    def tracks(self) -> list[TrackView]:
        """Every confirmed track (coasting ones too), by id, at the latest frame."""
        return [
            TrackView(
                track_id=t.track_id,
                class_id=t.class_id,
                first_seen_ns=t.first_seen_ns,
                last_seen_ns=t.last_seen_ns,
                missed_s=(self._stamp_ns - t.last_seen_ns) / NS_PER_S,
                azimuth=t.azimuth.position,
                elevation=t.elevation,
                distance=t.distance,
                angular_velocity=t.azimuth.rate,
                range_rate=t.range_rate,
                trail=tuple(t.trail),
            )
            for t in sorted(self._tracks, key=lambda t: t.track_id)
            if t.confirmed
        ]

    def _associate(self, detections: list[HazardEstimateData]) -> dict[int, _Track]:
        """Detection slot -> track: confirmed tracks choose first, tentative ones take the rest."""
        candidates = [Candidate.of(e) for e in detections]
        owners: dict[int, _Track] = {}
        for tier in (True, False):
            tracks = [t for t in self._tracks if t.confirmed == tier]
            free = [j for j in range(len(candidates)) if j not in owners]
            cost = cost_matrix(
                [t.candidate() for t in tracks], [candidates[j] for j in free], self.config.cost_weights
            )
            for row, col in optimal_pairs(cost):
                owners[free[col]] = tracks[row]
        return owners

    def _retire(self, matched: set[int]) -> None:
        """Drop tentative tracks that missed this frame and confirmed ones missed too long."""
        max_missed_ns = self.config.max_missed_s * NS_PER_S

        def alive(track: _Track) -> bool:
            if id(track) in matched:
                return True
            return track.confirmed and self._stamp_ns - track.last_seen_ns <= max_missed_ns

        self._tracks = [t for t in self._tracks if alive(t)]

    def _annotate(self, estimate: HazardEstimateData, track: _Track) -> HazardEstimateData:
        fields = {
            "track_id": track.track_id,
            "first_seen_ns": track.first_seen_ns,
            "track_age_s": (self._stamp_ns - track.first_seen_ns) / NS_PER_S,
            "angular_velocity": track.azimuth.rate,
            "range_rate": track.range_rate,
        }
        if self.config.publish_filtered:
            azimuth, distance = track.azimuth.position, track.distance
            fields.update(
                azimuth=azimuth,
                elevation=track.elevation,
                distance=distance,
                direction=direction_to_unit(azimuth, track.elevation),
            )
        return replace(estimate, **fields)
