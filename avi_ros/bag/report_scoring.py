"""The replay report's scoring: frames against the truth, the tracking rows, and the true hazards
of successive frames joined into tracks.

Metrics pair every true hazard with one estimate of the same stamp (``score_frame``): with one
hazard at a time that is the model's best guess (``PipelineResult.top``) against the truth;
"detected" means its estimate was published. A second table counts the hazards published per
frame against the true ones. When the truth carries track ids, ``tracking_scores`` scores the
published tracks and the ``NearestNeighbourTracker`` baseline (run on the same untracked hazards
with the same odometry) with ``avi_ros.tracking.metrics.score_trackers``. Beside the model's
direction error stands the physics baseline's (``physics_median_angular_error_deg``): every true
hazard against the nearest direction the FOA intensity vectors of its frame's audio point at.

The timeline draws azimuth unwrapped (``timeline_azimuths``): each true hazard is one continuous
line, and each estimate sits at the turn nearest a truth, so an estimate at +178 and a truth at
-174 deg lie 8 deg apart, not at opposite edges. Angles here are in degrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avi_ros.bag.results import FrameRecord
from avi_ros.scoring import accuracy, angular_errors_deg
from avi_ros.taxonomy import Visibility
from avi_ros.tracking import NearestNeighbourTracker, RobotMotion, TrackerConfig, TruthPoint
from avi_ros.tracking.metrics import Associator, TrackerFrame, score_trackers
from avi_ros.types import HazardEstimateData

LINK_DEG = 45.0  # a true hazard continues its class's track when its azimuth moved at most this [deg]
CLASS_MISMATCH_COST = 1000.0  # [deg]: pairing prefers an estimate of the true class at any angle
TRACKER_ROW = "tracker (published)"
BASELINE_ROW = "nearest neighbour (baseline)"


# --- frames against the truth ----------------------------------------------------------------


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100.0 * fraction, 1)


def _pct(values: list[bool]) -> float | None:
    return _percent(float(np.mean(values))) if values else None


def _stat(values: list[float], kind: str) -> float | None:
    if not values:
        return None
    return round(float(np.median(values) if kind == "median" else np.mean(values)), 2)


@dataclass(frozen=True)
class ScoredHazard:
    """One true hazard of a frame and the estimate it is scored against.

    estimate: the frame's published hazard paired with it (or, when nothing is published, the
    best guess ``top``); None when the frame's estimates were all paired with other true hazards.
    published: the paired estimate was published (class not none, confidence above threshold).
    physics_error_deg: the angle [deg] from the truth to the nearest of the frame's physics
    directions (``FrameRecord.physics_directions``); None when physics found no source. Nearest
    means the physics baseline is told which of its directions is which hazard: a generous baseline.
    """

    truth: HazardEstimateData
    estimate: HazardEstimateData | None
    published: bool
    physics_error_deg: float | None = None


def score_frame(record: FrameRecord, truths: list[HazardEstimateData]) -> list[ScoredHazard]:
    """Pair each true hazard of a frame with one estimate, in the order of ``truths``.

    Candidates are the published hazards, or ``[record.top]`` when none is published. Pairs are
    taken greedily by cost: the angle between the directions [deg], plus 1000 when the classes
    differ, so a same-class estimate always wins. With one true hazard and a single-hazard model
    this is exactly "the best guess against the truth".
    """
    candidates = record.hazards or [record.top]
    published = bool(record.hazards)
    if not truths:
        return []
    errors = _angles_deg(truths, [c.direction for c in candidates])
    classes = np.array([[t.class_id != c.class_id for c in candidates] for t in truths])
    cost = errors + CLASS_MISMATCH_COST * classes
    paired: dict[int, int] = {}
    for flat in np.argsort(cost, axis=None, kind="stable"):
        truth_index, candidate_index = divmod(int(flat), len(candidates))
        if truth_index not in paired and candidate_index not in paired.values():
            paired[truth_index] = candidate_index
    physics = _nearest_physics_errors_deg(record.physics_directions, truths)
    return [
        ScoredHazard(t, candidates[paired[i]] if i in paired else None, published and i in paired, physics[i])
        for i, t in enumerate(truths)
    ]


def _angles_deg(truths: list[HazardEstimateData], directions: Sequence[np.ndarray]) -> np.ndarray:
    """The angle [deg] between every true hazard and every direction: [len(truths), len(directions)]."""
    truth = np.array([np.asarray(t.direction, dtype=np.float64) for t in truths]).reshape(-1, 3)
    other = np.array([np.asarray(d, dtype=np.float64) for d in directions]).reshape(-1, 3)
    return angular_errors_deg(np.repeat(truth, len(other), axis=0), np.tile(other, (len(truth), 1))).reshape(
        len(truth), len(other)
    )


def _nearest_physics_errors_deg(
    physics_directions: np.ndarray, truths: list[HazardEstimateData]
) -> list[float | None]:
    """Per true hazard, the angle [deg] to the nearest physics direction (None: physics found none)."""
    if not len(physics_directions):
        return [None] * len(truths)
    return [float(e) for e in _angles_deg(truths, list(physics_directions)).min(axis=1)]


def _hazard_row(scored: list[ScoredHazard]) -> dict[str, Any]:
    """Figures of a group of true hazards against their paired estimates; an unpaired true hazard
    counts as class ``none``, risk NONE and action CONTINUE (nothing was said about it)."""
    paired = [s for s in scored if s.estimate is not None]
    sources = [(s.estimate.direction, s.truth.direction) for s in paired if s.estimate.class_id]
    errors = angular_errors_deg(
        np.array([p for p, _ in sources]).reshape(-1, 3), np.array([t for _, t in sources]).reshape(-1, 3)
    ).tolist()

    def percent_equal(field: str) -> float | None:
        return _percent(
            accuracy(
                [int(getattr(s.truth, field)) for s in scored],
                [int(getattr(s.estimate, field)) if s.estimate is not None else 0 for s in scored],
            )
        )

    return {
        "frames": len(scored),
        "detected_%": _pct([s.published for s in scored]),
        "class_accuracy_%": percent_equal("class_id"),
        "median_angular_error_deg": _stat(errors, "median"),
        "mean_angular_error_deg": _stat(errors, "mean"),
        "physics_median_angular_error_deg": _stat(
            [s.physics_error_deg for s in scored if s.physics_error_deg is not None], "median"
        ),
        "median_distance_error_m": _stat(
            [abs(s.estimate.distance - s.truth.distance) for s in paired], "median"
        ),
        "risk_accuracy_%": percent_equal("risk_level"),
        "action_accuracy_%": percent_equal("recommended_action"),
    }


def _count_rows(judged: list[tuple[FrameRecord, list[HazardEstimateData]]]) -> dict[str, Any]:
    """Published against true hazard counts, per number of true hazards in the frame."""
    rows: dict[str, Any] = {}
    for true_count in sorted({len(t) for _, t in judged}):
        published = np.array([len(r.hazards) for r, t in judged if len(t) == true_count])
        rows[str(true_count)] = {
            "frames": int(published.size),
            "published_mean": round(float(published.mean()), 2),
            "count_right_%": _pct((published == true_count).tolist()),
            "too_many_%": _pct((published > true_count).tolist()),
            "too_few_%": _pct((published < true_count).tolist()),
        }
    return rows


def compute_metrics(
    records: list[FrameRecord], truth: dict[int, list[HazardEstimateData]], window_ns: int = 0
) -> dict[str, Any]:
    """Per-group figures of the frames that have ground truth (see module docstring).

    Groups: every true hazard (each scored against the estimate ``score_frame`` pairs it with;
    ``frames`` counts true hazards, which is the frame count when one hazard sounds at a time),
    then by the true hazard's visibility, then the frames without a hazard (``false_alarm_%``:
    the share with a published hazard). ``hazards_by_class``: the same figures per true hazard
    class, so each hazard of a scenario (one per class) has its own detection rate. A frame
    without a hazard whose audio window
    (``window_ns`` long, ending at its stamp) still holds the end of one is counted apart, as
    "hazard just ended": the model hears it there, so it is no false alarm. ``hazard_counts``:
    per number of true hazards in a frame, how many were published.
    """
    judged = [(r, truth[r.stamp_ns]) for r in records if r.stamp_ns in truth]
    scored = [s for r, t in judged for s in score_frame(r, t)]
    sounding = np.array(sorted(stamp for stamp, hazards in truth.items() if hazards), dtype=np.int64)

    def heard_recently(stamp: int) -> bool:
        earlier = sounding[(sounding < stamp) & (sounding >= stamp - window_ns)]
        return earlier.size > 0

    background = [r for r, t in judged if not t and not heard_recently(r.stamp_ns)]
    just_ended = [r for r, t in judged if not t and heard_recently(r.stamp_ns)]
    rows: dict[str, Any] = {"all hazards": _hazard_row(scored)}
    for visibility in Visibility:
        rows[visibility.name.lower().replace("_", " ")] = _hazard_row(
            [s for s in scored if s.truth.visibility == visibility]
        )
    for name, group in (("no hazard", background), ("hazard just ended", just_ended)):
        rows[name] = {
            "frames": len(group),
            "false_alarm_%": _pct([bool(r.hazards) for r in group]),
            "class_accuracy_%": _percent(accuracy([r.top.class_id for r in group], [0] * len(group))),
        }
    by_class = {
        name: _hazard_row([s for s in scored if s.truth.class_name == name])
        for name in sorted({s.truth.class_name for s in scored})
    }
    return {
        "frames_replayed": len(records),
        "frames_with_truth": len(judged),
        "groups": rows,
        "hazard_counts": _count_rows(judged),
        "hazards_by_class": by_class,
    }


# --- tracks against the truth ----------------------------------------------------------------


def truth_points(truths: list[HazardEstimateData]) -> list[TruthPoint]:
    """The true hazards that carry a track id, as the tracking metrics take them."""
    return [
        TruthPoint(h.track_id, h.class_id, h.azimuth, h.distance, h.range_rate, h.elevation)
        for h in truths
        if h.track_id
    ]


def _rounded(value: Any) -> Any:
    """A JSON-safe, table-friendly number: NaN -> None, floats to 3 decimals."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value


class _Published:
    """The tracks a replay published, handed to ``score_trackers`` as a tracker's output (the
    tracker already ran during the replay; the estimates it is given are ignored)."""

    def __init__(self, records: list[FrameRecord]) -> None:
        self._by_stamp = {r.stamp_ns: r.hazards for r in records}

    def update(
        self, estimates: list[HazardEstimateData], stamp_ns: int, motion: RobotMotion | None = None
    ) -> list[HazardEstimateData]:
        return list(self._by_stamp[stamp_ns])

    def reset(self) -> None:
        """Nothing to forget: the published tracks are fixed."""


def tracking_scores(
    records: list[FrameRecord],
    truth: dict[int, list[HazardEstimateData]],
    config: TrackerConfig | None,
) -> dict[str, dict[str, Any]]:
    """Rows of the tracking table (``report_html.TRACKING_COLUMNS``, and the rest of
    ``TrackingScores``): the published tracks (when tracking ran: ``config`` is not None) and the
    nearest-neighbour baseline, which sees every frame's untracked hazards in order with the
    tracker's odometry. Scored on the frames with truth; empty when no true hazard carries a
    track id."""
    if not any(h.track_id for hazards in truth.values() for h in hazards):
        return {}
    trackers: dict[str, Associator] = {}
    if config is not None:
        trackers[TRACKER_ROW] = _Published(records)
    trackers[BASELINE_ROW] = NearestNeighbourTracker(config or TrackerConfig())
    frames = (
        TrackerFrame(
            r.stamp_ns,
            r.untracked if config is not None else r.hazards,
            truth_points(truth[r.stamp_ns]) if r.stamp_ns in truth else None,
            r.motion,
        )
        for r in records
    )
    return {name: _table_row(scores.as_dict()) for name, scores in score_trackers(frames, trackers).items()}


def _table_row(scores: dict[str, Any]) -> dict[str, Any]:
    """``TrackingScores.as_dict()`` made JSON-safe (``_rounded``; per-track dicts keyed by str)."""
    return {
        key: {str(k): _rounded(v) for k, v in value.items()} if isinstance(value, dict) else _rounded(value)
        for key, value in scores.items()
    }


# --- angles and true tracks ------------------------------------------------------------------


def wrap_deg(angle_deg: np.ndarray | float) -> np.ndarray:
    """Angles [deg] wrapped to [-180, 180)."""
    return (np.asarray(angle_deg, dtype=np.float64) + 180.0) % 360.0 - 180.0


def unwrap_deg(angles_deg: np.ndarray) -> np.ndarray:
    """A series of angles [deg] made continuous (no 360-degree jumps); NaNs (no value) stay NaN
    and the series continues across them from the last value."""
    angles = np.asarray(angles_deg, dtype=np.float64)
    out = np.full_like(angles, np.nan)
    previous = None
    for index, angle in enumerate(angles):
        if np.isnan(angle):
            continue
        previous = angle if previous is None else previous + float(wrap_deg(angle - previous))
        out[index] = previous
    return out


def nearest_turn_deg(angles_deg: np.ndarray, reference_deg: np.ndarray) -> np.ndarray:
    """Each angle [deg] moved by whole turns to lie within 180 deg of its reference (NaN reference:
    the angle is only wrapped)."""
    angles, reference = np.asarray(angles_deg, dtype=np.float64), np.asarray(reference_deg, dtype=np.float64)
    near = reference + wrap_deg(angles - reference)
    return np.where(np.isnan(reference), wrap_deg(angles), near)


@dataclass(frozen=True)
class TimelineAzimuths:
    """What the timeline's azimuth and class panels draw, per record (frame) of a replay.

    truth: [tracks, frames] unwrapped azimuth [deg] of each true hazard track, NaN where that
    track is silent; truth_class: [tracks] its class id. One marker per estimate: frame [E] the
    record index, azimuth [E] [deg] (moved by whole turns next to the truth), class_id [E],
    published [E] (False: nothing was published and it is the best guess ``top``).
    """

    truth: np.ndarray
    truth_class: np.ndarray
    frame: np.ndarray
    azimuth: np.ndarray
    class_id: np.ndarray
    published: np.ndarray


def link_tracks(
    records: list[FrameRecord], truth: dict[int, list[HazardEstimateData]]
) -> tuple[list[list[float]], list[int]]:
    """The true hazards of successive frames joined into tracks: (wrapped azimuths [deg] per
    track and frame, NaN where silent; class id per track).

    A hazard continues the track of its class whose last azimuth is nearest, when within
    ``LINK_DEG`` and not yet taken in this frame (nearest pairs first); else it starts a track.
    """
    rows: list[list[float]] = []
    classes: list[int] = []
    last: list[float] = []
    for index, record in enumerate(records):
        hazards = truth.get(record.stamp_ns) or []
        azimuths = [math.degrees(h.azimuth) for h in hazards]
        options = sorted(
            (abs(float(wrap_deg(azimuth - last[k]))), j, k)
            for j, (hazard, azimuth) in enumerate(zip(hazards, azimuths, strict=True))
            for k in range(len(rows))
            if classes[k] == hazard.class_id
        )
        track_of: dict[int, int] = {}
        for difference, j, k in options:
            if difference <= LINK_DEG and j not in track_of and k not in track_of.values():
                track_of[j] = k
        for j, hazard in enumerate(hazards):
            k = track_of.get(j)
            if k is None:
                rows.append([math.nan] * len(records))
                classes.append(hazard.class_id)
                last.append(azimuths[j])
                k = len(rows) - 1
            rows[k][index] = azimuths[j]
            last[k] = azimuths[j]
    return rows, classes


def timeline_azimuths(
    records: list[FrameRecord], truth: dict[int, list[HazardEstimateData]]
) -> TimelineAzimuths:
    """Truth tracks and estimate markers [deg] as the timeline draws them.

    Each true hazard track is unwrapped into one continuous line. Every published hazard of a
    frame is one marker (the best guess ``top`` where nothing is published), moved by whole turns
    to within 180 deg of the nearest true hazard of that frame, or of the last frame with truth
    before it (the first after it) where the frame has none, so the vertical distance is the error.
    """
    rows, classes = link_tracks(records, truth)
    tracks = np.array([unwrap_deg(np.array(row)) for row in rows]).reshape(len(rows), len(records))
    present = ~np.isnan(tracks)
    with_truth = present.any(axis=0)
    known = np.flatnonzero(with_truth)
    # Each frame's reference frame: the last with truth up to it; the first with truth before that.
    last = np.maximum.accumulate(np.where(with_truth, np.arange(len(records)), -1))
    reference_frame = np.where(last >= 0, last, known[0] if known.size else -1)
    frame, azimuth, class_id, published = [], [], [], []
    for index, record in enumerate(records):
        shown = record.hazards or [record.top]
        references = tracks[present[:, reference_frame[index]], reference_frame[index]] if known.size else []
        for hazard in shown:
            estimate = math.degrees(hazard.azimuth)
            nearest = min(references, key=lambda ref: abs(float(wrap_deg(estimate - ref))), default=np.nan)
            frame.append(index)
            azimuth.append(float(nearest_turn_deg(estimate, nearest)))
            class_id.append(hazard.class_id)
            published.append(bool(record.hazards))
    return TimelineAzimuths(
        tracks,
        np.array(classes, dtype=np.int64),
        np.array(frame, dtype=np.int64),
        np.array(azimuth, dtype=np.float64),
        np.array(class_id, dtype=np.int64),
        np.array(published, dtype=bool),
    )
