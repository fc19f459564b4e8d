"""How well tracks follow the true hazards: MOTA, identity switches, onset and offset latency.

The CLEAR MOT metrics (Bernardin & Stiefelhagen, "Evaluating multiple object tracking
performance: the CLEAR MOT metrics", EURASIP JIVP 2008), with the angular gate of DCASE SELD
(a hit is within 20°; Politis et al., "A dataset of dynamic reverberant sound scenes with
directional interferers for sound event localization and detection", DCASE 2021), and the
onset and offset latencies of each hazard. Accumulate frame by frame, then compute.

Each frame, the true hazards are matched to the published estimates that carry a track id,
tentative or confirmed (``track_id`` 0, untracked, is ignored): a true hazard keeps the track it
had in the previous frame while that track is still within the gate (and of the same class),
and the others are matched by least total angle (Hungarian). Then:

- **MOTA** = 1 − (FN + FP + IDSW) / GT, over all frames; GT counts true hazard-frames, FN the
  unmatched ones, FP the unmatched tracked estimates, IDSW the frames where a true hazard is
  matched to another track id than at its previous match.
- **ID switches per track-minute**: IDSW over the total time the true hazards exist.
- **Onset latency** of a true hazard: its first matched frame minus its first true frame [s].
- **Offset latency**: how long the track it was last matched to stays published after the
  hazard's last true frame [s]: the last frame of the run of frames that publish that id
  (gaps up to ``offset_gap_s`` do not end it; being matched to another true hazard does),
  minus the true last frame; negative when the track ended early. A true hazard is taken to
  exist over one span.
- **Azimuth error**: median |Δ azimuth| on matched frames [deg].
- **Range-rate sign**: each true hazard is split into phases where it approaches or leaves
  (|true range rate| ≥ ``min_range_rate_mps``); a phase is right when the median estimated range
  rate over its matched frames has its sign. Per-frame sign agreement is given too.

``score_trackers`` runs several trackers over the same frames and scores each this way: the
replay report, ``training/track_eval.py`` and ``bench/bench_tracker.py`` compare the tracker
with its baseline through it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from avi_ros.geometry import angular_error_rad, direction_to_unit
from avi_ros.taxonomy import Action, RiskLevel, Visibility
from avi_ros.tracking.ego_motion import RobotMotion
from avi_ros.tracking.kalman import wrap_angle
from avi_ros.types import HazardEstimateData
from avi_ros.units import NS_PER_S


@dataclass(frozen=True)
class TruthPoint:
    """One true hazard in one frame: its track id, class, direction [rad], distance [m] and
    range rate [m/s, negative: approaching], in the microphone frame."""

    track_id: int
    class_id: int
    azimuth: float
    distance: float
    range_rate: float = 0.0
    elevation: float = 0.0


def simulated_detection(
    azimuth: float, distance: float, class_id: int, num_classes: int, elevation: float = 0.0
) -> HazardEstimateData:
    """A detection for scoring trackers on simulated estimates (``bench/bench_tracker.py``, the
    tracking tests): the class, the direction [rad, azimuth wrapped to [-π, π]] and the distance
    [m] that association and scoring read; the other fields are fixed (confidence 0.9, visible,
    low risk, probability 1 on the class of ``num_classes``)."""
    return HazardEstimateData(
        class_id=class_id,
        class_name=f"class{class_id}",
        class_probabilities=np.eye(num_classes, dtype=np.float32)[class_id],
        azimuth=math.remainder(azimuth, 2.0 * math.pi),
        elevation=elevation,
        distance=distance,
        direction=direction_to_unit(azimuth, elevation),
        confidence=0.9,
        occlusion_level=0.0,
        visibility=Visibility.VISIBLE,
        audio_weight=0.5,
        visual_weight=0.5,
        risk_level=RiskLevel.LOW,
        recommended_action=Action.CONTINUE,
    )


@dataclass(frozen=True)
class TrackingScores:
    """The metrics of the module docstring; latencies and errors are NaN when nothing was matched."""

    mota: float
    truth_count: int  # true hazard-frames (GT)
    false_negatives: int
    false_positives: int
    id_switches: int
    track_minutes: float  # total time the true hazards exist [min]
    id_switches_per_track_minute: float
    onset_latency_s: float  # median over the true hazards ever matched [s]
    offset_latency_s: float  # median over the same [s]
    never_matched: int  # true hazards never matched to a track
    azimuth_error_deg: float  # median over matched frames [deg]
    range_rate_sign_accuracy: float  # fraction of approach/leave phases with the right sign
    range_rate_phases: int
    range_rate_sign_frame_accuracy: float  # fraction of matched approach/leave frames
    onset_latencies_s: dict[int, float] = field(default_factory=dict)  # per true track id [s]
    offset_latencies_s: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class _TruthTrack:
    first_ns: int
    last_ns: int
    frames: int = 0
    first_match_ns: int | None = None
    last_match_ns: int | None = None
    last_track_id: int = 0


class TrackingAccumulator:
    """Accumulates frames (``add_frame``), then ``compute()`` (module docstring).

    gate_deg: widest angle of a hit [deg]; require_class: a hit needs the same class;
    min_range_rate_mps: slower true hazards are neither approaching nor leaving [m/s];
    frame_period_s: duration of one frame [s] for track-minutes (None: the median stamp step);
    offset_gap_s: a track still counts as published across gaps up to this long [s].
    """

    def __init__(
        self,
        gate_deg: float = 20.0,
        require_class: bool = True,
        min_range_rate_mps: float = 0.5,
        frame_period_s: float | None = None,
        offset_gap_s: float = 0.5,
    ) -> None:
        self.gate_rad = math.radians(gate_deg)
        self.require_class = require_class
        self.min_range_rate_mps = min_range_rate_mps
        self.frame_period_s = frame_period_s
        self.offset_gap_s = offset_gap_s
        self._truth: dict[int, _TruthTrack] = {}
        self._mapping: dict[int, int] = {}  # true id -> track id at its latest match
        self._frames: list[tuple[int, dict[int, int | None]]] = []  # stamp, track id -> true id or None
        self._fn = self._fp = self._idsw = self._gt = 0
        self._azimuth_errors: list[float] = []
        self._range_rates: dict[tuple[int, int], list[float]] = defaultdict(list)  # (true id, sign)

    def add_frame(
        self, stamp_ns: int, truths: Sequence[TruthPoint], estimates: Sequence[HazardEstimateData]
    ) -> None:
        """One frame: the true hazards and the published estimates (those with track_id 0 ignored)."""
        tracked = [e for e in estimates if e.track_id != 0]
        allowed = self._allowed(truths, tracked)
        pairs = self._keep_previous(truths, tracked, allowed)
        pairs += self._match_rest(truths, tracked, allowed, pairs)
        self._gt += len(truths)
        self._fn += len(truths) - len(pairs)
        self._fp += len(tracked) - len(pairs)
        owner: dict[int, int | None] = {e.track_id: None for e in tracked}
        for t_index, e_index in pairs:
            truth, estimate = truths[t_index], tracked[e_index]
            owner[estimate.track_id] = truth.track_id
            self._score_pair(stamp_ns, truth, estimate)
        for truth in truths:
            record = self._truth.setdefault(truth.track_id, _TruthTrack(stamp_ns, stamp_ns))
            record.last_ns = max(record.last_ns, stamp_ns)
            record.frames += 1
        self._frames.append((int(stamp_ns), owner))

    def _allowed(self, truths: Sequence[TruthPoint], tracked: Sequence[HazardEstimateData]) -> np.ndarray:
        """Angle [truths × estimates] [rad], inf where the pair cannot be a hit."""
        if not truths or not tracked:
            return np.zeros((len(truths), len(tracked)))
        t_dirs = direction_to_unit([t.azimuth for t in truths], [t.elevation for t in truths])
        e_dirs = direction_to_unit([e.azimuth for e in tracked], [e.elevation for e in tracked])
        angle = angular_error_rad(t_dirs[:, None, :], e_dirs[None, :, :])
        ok = angle <= self.gate_rad
        if self.require_class:
            ok &= np.array([t.class_id for t in truths])[:, None] == np.array([e.class_id for e in tracked])
        return np.where(ok, angle, math.inf)

    def _keep_previous(
        self, truths: Sequence[TruthPoint], tracked: Sequence[HazardEstimateData], allowed: np.ndarray
    ) -> list[tuple[int, int]]:
        by_id = {e.track_id: j for j, e in enumerate(tracked)}
        pairs = []
        for i, truth in enumerate(truths):
            j = by_id.get(self._mapping.get(truth.track_id, 0))
            if j is not None and np.isfinite(allowed[i, j]) and all(j != b for _, b in pairs):
                pairs.append((i, j))
        return pairs

    @staticmethod
    def _match_rest(
        truths: Sequence[TruthPoint],
        tracked: Sequence[HazardEstimateData],
        allowed: np.ndarray,
        taken: list[tuple[int, int]],
    ) -> list[tuple[int, int]]:
        rows = [i for i in range(len(truths)) if all(i != a for a, _ in taken)]
        cols = [j for j in range(len(tracked)) if all(j != b for _, b in taken)]
        if not rows or not cols:
            return []
        cost = allowed[np.ix_(rows, cols)]
        r, c = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
        return [(rows[a], cols[b]) for a, b in zip(r, c, strict=True) if np.isfinite(cost[a, b])]

    def _score_pair(self, stamp_ns: int, truth: TruthPoint, estimate: HazardEstimateData) -> None:
        previous = self._mapping.get(truth.track_id)
        if previous is not None and previous != estimate.track_id:
            self._idsw += 1
        self._mapping[truth.track_id] = estimate.track_id
        record = self._truth.setdefault(truth.track_id, _TruthTrack(stamp_ns, stamp_ns))
        if record.first_match_ns is None:
            record.first_match_ns = stamp_ns
        record.last_match_ns = stamp_ns
        record.last_track_id = estimate.track_id
        self._azimuth_errors.append(abs(math.degrees(wrap_angle(estimate.azimuth - truth.azimuth))))
        if abs(truth.range_rate) >= self.min_range_rate_mps:
            sign = 1 if truth.range_rate > 0 else -1
            self._range_rates[(truth.track_id, sign)].append(float(estimate.range_rate))

    def _offset_ns(self, truth_id: int, record: _TruthTrack) -> int:
        """Stamp of the last frame of the run publishing the truth's last track id (gaps up to
        ``offset_gap_s`` do not end the run)."""
        assert record.last_match_ns is not None
        end = record.last_match_ns
        gap_ns = self.offset_gap_s * NS_PER_S
        for stamp, owner in self._frames:
            if stamp < record.last_match_ns:
                continue
            if record.last_track_id not in owner:
                if stamp - end > gap_ns:
                    break
                continue
            if owner[record.last_track_id] not in (None, truth_id):
                break
            end = stamp
        return end

    def _frame_period_s(self) -> float:
        if self.frame_period_s is not None:
            return self.frame_period_s
        stamps = np.unique([s for s, _ in self._frames])
        return float(np.median(np.diff(stamps))) / NS_PER_S if len(stamps) > 1 else 0.0

    def compute(self) -> TrackingScores:
        """The scores of every frame added so far."""
        onsets, offsets = {}, {}
        for truth_id, record in self._truth.items():
            if record.first_match_ns is None:
                continue
            onsets[truth_id] = (record.first_match_ns - record.first_ns) / NS_PER_S
            offsets[truth_id] = (self._offset_ns(truth_id, record) - record.last_ns) / NS_PER_S
        minutes = sum(r.frames for r in self._truth.values()) * self._frame_period_s() / 60.0
        phases = [np.sign(np.median(v)) == sign for (_, sign), v in self._range_rates.items()]
        frame_signs = [np.sign(x) == sign for (_, sign), v in self._range_rates.items() for x in v]
        return TrackingScores(
            mota=1.0 - (self._fn + self._fp + self._idsw) / self._gt if self._gt else math.nan,
            truth_count=self._gt,
            false_negatives=self._fn,
            false_positives=self._fp,
            id_switches=self._idsw,
            track_minutes=minutes,
            id_switches_per_track_minute=self._idsw / minutes if minutes > 0 else math.nan,
            onset_latency_s=_median(onsets.values()),
            offset_latency_s=_median(offsets.values()),
            never_matched=len(self._truth) - len(onsets),
            azimuth_error_deg=_median(self._azimuth_errors),
            range_rate_sign_accuracy=float(np.mean(phases)) if phases else math.nan,
            range_rate_phases=len(phases),
            range_rate_sign_frame_accuracy=float(np.mean(frame_signs)) if frame_signs else math.nan,
            onset_latencies_s=onsets,
            offset_latencies_s=offsets,
        )


def _median(values: Iterable[float]) -> float:
    array = np.fromiter(values, dtype=np.float64)
    return float(np.median(array)) if array.size else math.nan


class Associator(Protocol):
    """What ``score_trackers`` runs: ``HazardTracker``, ``NearestNeighbourTracker`` or a wrapper of
    one. ``reset`` forgets the tracks but keeps counting ids up, so the tracks of two scenes never
    share an id in one score."""

    def update(
        self, estimates: list[HazardEstimateData], stamp_ns: int, motion: RobotMotion | None = None
    ) -> list[HazardEstimateData]: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class TrackerFrame:
    """One frame as every compared tracker sees it.

    estimates: the frame's untracked estimates; truths: its true hazards (None: no truth, the
    frame is tracked but not scored; an empty list makes every tracked estimate a false
    positive); motion: the robot's odometry (None: none); scene: a frame of another scene than
    the one before resets every tracker first.
    """

    stamp_ns: int
    estimates: list[HazardEstimateData]
    truths: list[TruthPoint] | None
    motion: RobotMotion | None = None
    scene: int = 0


FrameT = TypeVar("FrameT", bound=TrackerFrame)


def score_trackers(
    frames: Iterable[FrameT],
    trackers: Mapping[str, Associator],
    make_accumulator: Callable[[], TrackingAccumulator] = TrackingAccumulator,
    observe: Callable[[str, FrameT, list[HazardEstimateData]], None] | None = None,
) -> dict[str, TrackingScores]:
    """Every tracker run over the same frames, in order, and scored against their truth.

    ``make_accumulator`` builds each tracker's ``TrackingAccumulator`` (its gate and frame
    period); ``observe(name, frame, published)``, when given, sees what each tracker published on
    each frame, for a caller's own scores. Returns the scores by tracker name, in the order of
    ``trackers``.
    """
    accumulators = {name: make_accumulator() for name in trackers}
    scene: int | None = None
    for frame in frames:
        if frame.scene != scene:
            for tracker in trackers.values():
                tracker.reset()
            scene = frame.scene
        for name, tracker in trackers.items():
            published = tracker.update(frame.estimates, frame.stamp_ns, frame.motion)
            if frame.truths is not None:
                accumulators[name].add_frame(frame.stamp_ns, frame.truths, published)
            if observe is not None:
                observe(name, frame, published)
    return {name: accumulator.compute() for name, accumulator in accumulators.items()}
