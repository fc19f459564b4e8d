"""The replay report: annotated frames, a top-down polar view, a timeline and metrics tables.

Written to one folder that a browser opens without a server:

- ``index.html``: the summary, the metrics tables, the timeline, the polar view, the frames;
- ``frames/frame_NNN.png``: the RGB image with the occlusion mask tinted, an arrow and a
  label per published hazard (class, confidence, distance, visibility, action), every true
  hazard as a ring, and beside it a top-down polar view of the same instant;
- ``timeline.png``: azimuth and class of every published hazard (one marker each), confidence
  and the hazard count over time, estimates against truth, with the truth's visibility shaded.
  Several simultaneous true hazards are joined into one line per hazard (``LINK_DEG``).
  Azimuth is unwrapped: each true hazard is drawn as one continuous line, and each estimate at
  the turn nearest a truth, so an estimate at +178 and a truth at -174 deg lie 8 deg apart, not
  at opposite edges (tick labels are wrapped);
- ``polar.png``: every published hazard and every true hazard's path seen from above;
- ``tracks.png``: azimuth over time of every published hazard, one colour per track id (the
  colour RViz draws its trail in), untracked hazards in grey, the true hazards as lines;
- ``metrics.json`` and ``metrics.md``: the tables; when the truth carries track ids, the
  tracking scores (``avi_ros.tracking.TrackingAccumulator``: MOTA, ID switches per
  track-minute, onset and offset latency, azimuth error, range-rate sign) of the published
  tracks and of the ``NearestNeighbourTracker`` baseline run on the same untracked hazards
  with the same yaw rates.

Angles are shown in degrees, azimuth counter-clockwise from the robot's forward axis
(REP-103: +90 is left). On a frame, a hazard the camera cannot see gets a compass arrow from the
image centre: up is ahead, left is left, down is behind. Metrics pair every true hazard with one
estimate of the same stamp (``score_frame``): with one hazard at a time that is the model's best
guess (``PipelineResult.top``) against the truth; "detected" means its estimate was published.
A second table counts the hazards published per frame against the true ones.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MultipleLocator
from tqdm import tqdm

from avi_ros.bag.results import FrameRecord, ReplayResult, Snapshot
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.hazard_markers import track_color
from avi_ros.scoring import accuracy, angular_errors_deg
from avi_ros.taxonomy import RiskLevel, Visibility
from avi_ros.tracking import NearestNeighbourTracker, TrackerConfig, TrackingAccumulator, TruthPoint
from avi_ros.types import HazardEstimateData
from avi_ros.units import NS_PER_S

# Risk -> RGB (0-255) for drawing, matching the RViz marker colours.
RISK_RGB = {
    RiskLevel.NONE: (150, 150, 150),
    RiskLevel.LOW: (30, 200, 50),
    RiskLevel.MEDIUM: (255, 165, 0),
    RiskLevel.HIGH: (240, 25, 25),
}
RISK_LEGEND = {
    RiskLevel.NONE: "estimate, no risk",
    RiskLevel.LOW: "estimate, low risk",
    RiskLevel.MEDIUM: "estimate, medium risk",
    RiskLevel.HIGH: "estimate, high risk",
}
TRUTH_RGB = (255, 255, 255)
MASK_RGB = np.array([255, 40, 200], dtype=np.float32)
VISIBILITY_SHADE = {
    Visibility.VISIBLE: "#b7e4c7",
    Visibility.OCCLUDED: "#ffd6a5",
    Visibility.OUT_OF_VIEW: "#d9d9d9",
}
MIXED_SHADE = "#d7c9f0"  # a frame whose true hazards differ in visibility
LINK_DEG = 45.0  # a true hazard continues its class's track when its azimuth moved at most this [deg]
CLASS_MISMATCH_COST = 1000.0  # [deg]: pairing prefers an estimate of the true class at any angle
DRAW_SCALE = 2  # frames are enlarged so the labels stay legible
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.5


# --- metrics ---------------------------------------------------------------------------------


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
    """

    truth: HazardEstimateData
    estimate: HazardEstimateData | None
    published: bool


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
    errors = angular_errors_deg(
        np.repeat([np.asarray(t.direction, dtype=np.float64) for t in truths], len(candidates), axis=0),
        np.tile([np.asarray(c.direction, dtype=np.float64) for c in candidates], (len(truths), 1)),
    ).reshape(len(truths), len(candidates))
    classes = np.array([[t.class_id != c.class_id for c in candidates] for t in truths])
    cost = errors + CLASS_MISMATCH_COST * classes
    paired: dict[int, int] = {}
    for flat in np.argsort(cost, axis=None, kind="stable"):
        truth_index, candidate_index = divmod(int(flat), len(candidates))
        if truth_index not in paired and candidate_index not in paired.values():
            paired[truth_index] = candidate_index
    return [
        ScoredHazard(t, candidates[paired[i]] if i in paired else None, published and i in paired)
        for i, t in enumerate(truths)
    ]


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
    the share with a published hazard). A frame without a hazard whose audio window
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
    return {
        "frames_replayed": len(records),
        "frames_with_truth": len(judged),
        "groups": rows,
        "hazard_counts": _count_rows(judged),
    }


METRIC_COLUMNS = (
    ("frames", "hazards / frames"),
    ("detected_%", "detected %"),
    ("false_alarm_%", "false alarms %"),
    ("class_accuracy_%", "class acc. %"),
    ("median_angular_error_deg", "median ang. err. °"),
    ("mean_angular_error_deg", "mean ang. err. °"),
    ("median_distance_error_m", "median dist. err. m"),
    ("risk_accuracy_%", "risk acc. %"),
    ("action_accuracy_%", "action acc. %"),
)


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


COUNT_COLUMNS = (
    ("frames", "frames"),
    ("published_mean", "published per frame"),
    ("count_right_%", "count right %"),
    ("too_many_%", "too many %"),
    ("too_few_%", "too few %"),
)


def _markdown_table(first: str, columns: tuple[tuple[str, str], ...], rows: dict[str, Any]) -> list[str]:
    head = f"| {first} | " + " | ".join(title for _, title in columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    body = [
        f"| {name} | " + " | ".join(_cell(row.get(key)) for key, _ in columns) + " |"
        for name, row in rows.items()
    ]
    return [head, rule, *body]


def metrics_markdown(metrics: dict[str, Any]) -> str:
    lines = _markdown_table("group", METRIC_COLUMNS, metrics["groups"])
    lines += ["", *_markdown_table("true hazards in the frame", COUNT_COLUMNS, metrics["hazard_counts"])]
    if metrics.get("tracking"):
        lines += ["", *_markdown_table("tracks", TRACKING_COLUMNS, metrics["tracking"])]
    return "\n".join(lines) + "\n"


def _html_table(first: str, columns: tuple[tuple[str, str], ...], rows: dict[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{_cell(row.get(key))}</td>" for key, _ in columns)
        + "</tr>"
        for name, row in rows.items()
    )
    return f"<table><tr><th>{html.escape(first)}</th>{head}</tr>{body}</table>"


def metrics_html(metrics: dict[str, Any]) -> str:
    tracking = (
        "<p>Tracks against the true hazards' ids (CLEAR MOT; a hit is within 20&deg; and of the true "
        "class):</p>" + _html_table("tracks", TRACKING_COLUMNS, metrics["tracking"])
        if metrics.get("tracking")
        else ""
    )
    return (
        _html_table("group", METRIC_COLUMNS, metrics["groups"])
        + "<p>Hazards published per frame, by the number of true hazards in it:</p>"
        + _html_table("true hazards", COUNT_COLUMNS, metrics["hazard_counts"])
        + tracking
    )


# --- tracks ----------------------------------------------------------------------------------

TRACKER_ROW = "tracker (published)"
BASELINE_ROW = "nearest neighbour (baseline)"
TRACKING_COLUMNS = (
    ("mota", "MOTA"),
    ("id_switches_per_track_minute", "ID switches / track-min"),
    ("onset_latency_s", "onset latency s (median)"),
    ("offset_latency_s", "offset latency s (median)"),
    ("azimuth_error_deg", "az. err. ° (median)"),
    ("range_rate_sign_accuracy", "range-rate sign right"),
    ("false_negatives", "FN"),
    ("false_positives", "FP"),
    ("id_switches", "ID switches"),
    ("truth_count", "true hazard-frames"),
)


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


def tracking_scores(
    records: list[FrameRecord],
    truth: dict[int, list[HazardEstimateData]],
    config: TrackerConfig | None,
) -> dict[str, dict[str, Any]]:
    """Rows of ``TRACKING_COLUMNS`` (and the rest of ``TrackingScores``): the published tracks
    (when tracking ran: ``config`` is not None) and the nearest-neighbour baseline, which sees
    every frame's untracked hazards in order with the tracker's yaw rate. Scored on the frames
    with truth; empty when no true hazard carries a track id."""
    if not any(h.track_id for hazards in truth.values() for h in hazards):
        return {}
    baseline = NearestNeighbourTracker(config or TrackerConfig())
    accumulators = {BASELINE_ROW: TrackingAccumulator()}
    if config is not None:
        accumulators[TRACKER_ROW] = TrackingAccumulator()
    for record in records:
        untracked = record.untracked if config is not None else record.hazards
        baseline_hazards = baseline.update(untracked, record.stamp_ns, record.yaw_rate_rps)
        if record.stamp_ns not in truth:
            continue
        points = truth_points(truth[record.stamp_ns])
        accumulators[BASELINE_ROW].add_frame(record.stamp_ns, points, baseline_hazards)
        if config is not None:
            accumulators[TRACKER_ROW].add_frame(record.stamp_ns, points, record.hazards)
    rows = {}
    for name in (TRACKER_ROW, BASELINE_ROW):
        if name in accumulators:
            scores = accumulators[name].compute().as_dict()
            rows[name] = {
                key: {str(k): _rounded(v) for k, v in value.items()}
                if isinstance(value, dict)
                else _rounded(value)
                for key, value in scores.items()
            }
    return rows


# --- angles ----------------------------------------------------------------------------------


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


def side_of(azimuth_rad: float) -> str:
    """Where an azimuth (REP-103: counter-clockwise from ahead, positive = left) points, in words."""
    degrees = float(wrap_deg(math.degrees(azimuth_rad)))
    if abs(degrees) < 1.0:
        return "ahead"
    if abs(degrees) > 179.0:
        return "behind"
    side = "left" if degrees > 0 else "right"
    return f"behind-{side}" if abs(degrees) > 90.0 else side


def compass_tip(azimuth_rad: float, centre: tuple[int, int], length_px: float) -> tuple[int, int]:
    """Image point of a compass arrow from ``centre``: ahead is up, left is left, behind is down."""
    u = centre[0] - length_px * math.sin(azimuth_rad)
    v = centre[1] - length_px * math.cos(azimuth_rad)
    return round(u), round(v)


# --- annotated frames ------------------------------------------------------------------------


def hazard_pixel(
    hazard: HazardEstimateData, intrinsics: CameraIntrinsics, extrinsic: MicToCamera
) -> tuple[float, float] | None:
    """The pixel (u, v) where the hazard's point falls, or None when it is out of view."""
    point = np.asarray(hazard.direction, dtype=np.float64) * max(float(hazard.distance), 0.1)
    (u, v), inside = intrinsics.project(extrinsic.mic_to_optical(point))
    return (float(u), float(v)) if bool(inside) else None


def _label(hazard: HazardEstimateData) -> str:
    return (
        f"{hazard.class_name} {hazard.confidence:.2f} | {hazard.distance:.1f} m | "
        f"{hazard.visibility.name.lower().replace('_', ' ')} | {hazard.recommended_action.name.lower()}"
    )


def _text(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """Text on a dark translucent band, readable on any background; ``origin`` is its baseline start."""
    (width, height), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    x, y = origin
    x0, y0 = max(x - 3, 0), max(y - height - 4, 0)
    x1, y1 = min(x + width + 3, image.shape[1]), min(y + baseline + 2, image.shape[0])
    band = image[y0:y1, x0:x1]
    band[:] = (0.35 * band).astype(np.uint8)
    cv2.putText(image, text, (x, y), FONT, FONT_SCALE, colour, 1, cv2.LINE_AA)


def _arrow(
    image: np.ndarray, base: tuple[int, int], tip: tuple[int, int], colour: tuple[int, int, int]
) -> None:
    cv2.arrowedLine(image, base, tip, (0, 0, 0), 6, cv2.LINE_AA, tipLength=0.08)
    cv2.arrowedLine(image, base, tip, colour, 3, cv2.LINE_AA, tipLength=0.08)


def annotate_frame(
    snapshot: Snapshot,
    record: FrameRecord,
    truth: list[HazardEstimateData] | None,
    extrinsic: MicToCamera,
    time_s: float,
) -> np.ndarray:
    """The RGB frame (enlarged) with the mask tinted, estimate arrows + labels and the truth ring.

    A hazard in view gets an arrow from the bottom centre to its pixel; one out of view gets a
    compass arrow from the image centre (``compass_tip``), the truth's a thin white one on top.
    """
    image = snapshot.rgb.astype(np.float32)
    blocked = snapshot.occlusion_mask > 0
    image[blocked] = 0.65 * image[blocked] + 0.35 * MASK_RGB
    scale = DRAW_SCALE
    image = cv2.resize(image.astype(np.uint8), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    height, width = image.shape[:2]
    base, centre = (width // 2, height - 8), (width // 2, height // 2)
    compass_px = 0.3 * min(width, height)
    shown = record.hazards or []
    for row, hazard in enumerate(shown):
        colour = RISK_RGB[RiskLevel(int(hazard.risk_level))]
        pixel = hazard_pixel(hazard, snapshot.intrinsics, extrinsic)
        if pixel is not None:
            _arrow(image, base, (round(pixel[0] * scale), round(pixel[1] * scale)), colour)
            where = ""
        else:
            _arrow(image, centre, compass_tip(hazard.azimuth, centre, compass_px), colour)
            where = f" (out of view, {side_of(hazard.azimuth)}, {math.degrees(hazard.azimuth):+.0f} deg)"
        _text(image, _label(hazard) + where, (8, 44 + 20 * row), colour)
    out_of_view = 0
    for hazard in truth or []:  # after the estimates, so a truth arrow stays visible on top
        pixel = hazard_pixel(hazard, snapshot.intrinsics, extrinsic)
        if pixel is not None:
            ring = (round(pixel[0] * scale), round(pixel[1] * scale))
            cv2.circle(image, ring, 18, TRUTH_RGB, 2, cv2.LINE_AA)
            _text(image, f"truth: {hazard.class_name}", (ring[0] - 40, ring[1] + 34), TRUTH_RGB)
        else:
            cv2.circle(image, centre, 5, TRUTH_RGB, -1, cv2.LINE_AA)
            tip = compass_tip(hazard.azimuth, centre, compass_px)
            cv2.arrowedLine(image, centre, tip, TRUTH_RGB, 1, cv2.LINE_AA, tipLength=0.12)
            _text(
                image,
                f"truth: {hazard.class_name} out of view "
                f"({side_of(hazard.azimuth)}, {math.degrees(hazard.azimuth):+.0f} deg)",
                (8, height - 34 - 20 * out_of_view),
                TRUTH_RGB,
            )
            out_of_view += 1
    if not shown:
        _text(
            image,
            f"no hazard published (best guess: {record.top.class_name} {record.top.confidence:.2f})",
            (8, 44),
            (220, 220, 220),
        )
    _text(
        image,
        f"t = {time_s:5.1f} s | occlusion {100 * record.occlusion_level:.0f}% | "
        f"audio w {record.top.audio_weight:.2f} / visual w {record.top.visual_weight:.2f}",
        (8, 20),
        (255, 255, 255),
    )
    return image


def _polar_axes(ax: Any, max_range_m: float, horizontal_fov_rad: float) -> None:
    """Top-down polar axes: forward (+x) up, left (+90 deg) to the left, range in metres."""
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(1)  # counter-clockwise: REP-103 azimuth
    ax.set_thetagrids(
        [0, 45, 90, 135, 180, 225, 270, 315],
        ["0° ahead", "45°", "+90° left", "135°", "180°", "-135°", "-90° right", "-45°"],
        fontsize=8,
    )
    ax.set_rlim(0, max_range_m)
    half = horizontal_fov_rad / 2.0
    ax.fill_between(np.linspace(-half, half, 30), 0, max_range_m, color="#fff3b0", alpha=0.6, zorder=0)
    ax.plot([0], [0], marker="^", color="black", markersize=9, zorder=5)
    ax.set_title("top-down view (camera field of view shaded)", fontsize=9)


def frame_figure(
    annotated: np.ndarray,
    record: FrameRecord,
    truth: list[HazardEstimateData] | None,
    horizontal_fov_rad: float,
    path: Path,
) -> Figure:
    """The annotated frame and its polar view side by side, written to ``path`` (and returned)."""
    figure = Figure(figsize=(11.5, 4.4), dpi=100)
    ax_image = figure.add_axes((0.0, 0.0, 0.6, 1.0))
    ax_image.imshow(annotated)
    ax_image.axis("off")
    ax_polar = figure.add_axes((0.62, 0.2, 0.33, 0.68), projection="polar")
    distances = [h.distance for h in [*record.hazards, *(truth or [])]]
    _polar_axes(ax_polar, max(6.0, *distances) if distances else 6.0, horizontal_fov_rad)
    for hazard in truth or []:
        ax_polar.plot(hazard.azimuth, hazard.distance, "o", mfc="none", mec="black", ms=14, mew=2)
    for hazard in record.hazards:
        colour = np.array(RISK_RGB[RiskLevel(int(hazard.risk_level))]) / 255.0
        ax_polar.annotate(
            "",
            xy=(hazard.azimuth, hazard.distance),
            xytext=(0, 0),
            arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 2.5},
        )
        ax_polar.text(hazard.azimuth, hazard.distance, f" {hazard.class_name}", fontsize=8)
    handles = [
        Line2D([], [], marker="o", ls="none", mfc="none", mec="black", ms=9, mew=2, label="ground truth")
    ]
    handles += [
        Line2D([], [], color=np.array(RISK_RGB[risk]) / 255.0, lw=2.5, marker=">", label=RISK_LEGEND[risk])
        for risk in RiskLevel
    ]
    figure.legend(
        handles=handles, loc="lower left", bbox_to_anchor=(0.6, 0.0), ncol=3, fontsize=7, frameon=False
    )
    figure.text(0.965, 0.5, "range [m]", rotation=90, va="center", fontsize=8)
    figure.savefig(path)
    return figure


# --- overview plots --------------------------------------------------------------------------


def _times(records: list[FrameRecord], origin_ns: int) -> np.ndarray:
    """Frame times [s] since ``origin_ns``."""
    return np.array([(r.stamp_ns - origin_ns) / NS_PER_S for r in records])


def _azimuth_tick(value_deg: float) -> str:
    """Tick label of an unwrapped azimuth: its wrapped value (both ends of the circle are ±180)."""
    wrapped = float(wrap_deg(value_deg))
    return "±180" if wrapped == -180.0 else f"{wrapped:+.0f}"


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


def _link_tracks(
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
    rows, classes = _link_tracks(records, truth)
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


def _frame_shade(hazards: list[HazardEstimateData]) -> str:
    """Background colour of a frame with true hazards: their visibility, or MIXED_SHADE when they differ."""
    visibilities = {h.visibility for h in hazards}
    return VISIBILITY_SHADE[visibilities.pop()] if len(visibilities) == 1 else MIXED_SHADE


def timeline_figure(
    records: list[FrameRecord],
    truth: dict[int, list[HazardEstimateData]],
    class_names: list[str],
    origin_ns: int,
    path: Path,
) -> Figure:
    """Azimuth and class of every hazard, confidence and hazard counts over time; truth in black,
    its visibility shaded; written to ``path`` (and returned)."""
    times = _times(records, origin_ns)
    figure = Figure(figsize=(11, 9.5), dpi=100)
    ax_az, ax_cls, ax_conf, ax_count = figure.subplots(
        4, 1, sharex=True, gridspec_kw={"height_ratios": (3.0, 2.2, 2.0, 1.2)}
    )
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.1
    for t, record in zip(times, records, strict=True):
        hazards = truth.get(record.stamp_ns)
        if hazards:
            for ax in (ax_az, ax_cls, ax_conf, ax_count):
                ax.axvspan(t - period / 2, t + period / 2, color=_frame_shade(hazards), lw=0)
    lines = timeline_azimuths(records, truth)
    colours = colormaps["tab10"](lines.class_id % 10)
    when = times[lines.frame]
    for track in lines.truth:
        ax_az.plot(times, track, "k-", lw=2.5)
    for ax, values in ((ax_az, lines.azimuth), (ax_cls, lines.class_id)):
        kept, hidden = lines.published, ~lines.published
        ax.scatter(when[kept], values[kept], c=colours[kept], s=14, zorder=3)
        ax.scatter(
            when[hidden], values[hidden], facecolors="none", edgecolors=colours[hidden], s=14, zorder=3
        )
    shown = np.concatenate([lines.truth[~np.isnan(lines.truth)], lines.azimuth])
    low, high = (float(shown.min()), float(shown.max())) if shown.size else (-180.0, 180.0)
    ax_az.set_ylim(min(low, -180.0) - 5.0, max(high, 180.0) + 5.0)
    ax_az.yaxis.set_major_locator(MultipleLocator(90))
    ax_az.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _azimuth_tick(value)))
    ax_az.set_ylabel("azimuth [deg]\n(+90 = left, unwrapped)")
    # Explicit handles: a scatter's own handle is invisible when it drew no point.
    estimate = {"ls": "none", "marker": "o", "ms": 5, "mec": "grey"}
    handles = [
        Line2D([], [], color="black", lw=2.5, label="truth (one line per hazard)"),
        Line2D([], [], mfc="grey", label="published hazard (colour: class)", **estimate),
        Line2D([], [], mfc="none", label="none published: best guess", **estimate),
    ]
    silent = np.array([0.0 if not truth.get(r.stamp_ns) else np.nan for r in records])
    for track, class_id in zip(lines.truth, lines.truth_class, strict=True):
        ax_cls.plot(times, np.where(np.isnan(track), np.nan, class_id), "k-", lw=2.5, drawstyle="steps-mid")
    ax_cls.plot(times, silent, "k-", lw=2.5, drawstyle="steps-mid")
    ax_cls.set_yticks(range(len(class_names)))
    ax_cls.set_yticklabels(class_names, fontsize=8)
    ax_cls.set_ylabel("class")
    ax_conf.plot(times, [r.top.confidence for r in records], "-", color="tab:blue", label="top confidence")
    several = [(t, h) for t, r in zip(times, records, strict=True) if len(r.hazards) > 1 for h in r.hazards]
    if several:
        ax_conf.scatter(
            [t for t, _ in several],
            [h.confidence for _, h in several],
            c=colormaps["tab10"](np.array([h.class_id for _, h in several]) % 10),
            s=8,
            label="confidence of each hazard (several published)",
        )
    ax_conf.plot(
        times, [r.occlusion_level for r in records], "-", color="tab:purple", label="occlusion level"
    )
    ax_conf.plot(
        times, [r.top.audio_weight for r in records], "--", color="tab:green", label="top audio weight"
    )
    ax_conf.set_ylim(-0.05, 1.05)
    ax_conf.legend(loc="upper right", fontsize=8)
    true_count = [len(truth.get(r.stamp_ns) or []) for r in records]
    ax_count.plot(times, true_count, "k-", lw=2.5, drawstyle="steps-mid", label="true")
    ax_count.plot(
        times,
        [len(r.hazards) for r in records],
        "-",
        color="tab:red",
        drawstyle="steps-mid",
        label="published",
    )
    ax_count.set_ylim(-0.3, max([*true_count, *(len(r.hazards) for r in records), 1]) + 0.3)
    ax_count.yaxis.set_major_locator(MultipleLocator(1))
    ax_count.set_ylabel("hazards")
    ax_count.legend(loc="upper right", ncol=2, fontsize=8)
    ax_count.set_xlabel("time since the first camera frame [s]")
    shades = {f"truth {v.name.lower().replace('_', ' ')}": c for v, c in VISIBILITY_SHADE.items()}
    shades["truth: visibilities differ"] = MIXED_SHADE
    # Above the azimuth panel, beside the estimate legend: inside a panel it would hide a line.
    ax_az.add_artist(
        ax_az.legend(
            [Rectangle((0, 0), 1, 1, color=c) for c in shades.values()],
            list(shades),
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncol=2,
            fontsize=8,
            frameon=False,
        )
    )
    ax_az.legend(
        handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, fontsize=8, frameon=False
    )
    figure.suptitle("estimates against ground truth (shading: the truth's visibility)")
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path)
    return figure


def polar_figure(
    records: list[FrameRecord],
    truth: dict[int, list[HazardEstimateData]],
    horizontal_fov_rad: float,
    origin_ns: int,
    path: Path,
) -> Figure:
    """Every published estimate and every true hazard's path, from above, estimates coloured by
    time; written to ``path`` (and returned)."""
    times = _times(records, origin_ns)
    figure = Figure(figsize=(6, 6.6), dpi=100)
    ax = figure.add_subplot(projection="polar")
    distances = [h.distance for r in records for h in r.hazards] + [
        h.distance for hs in truth.values() for h in hs
    ]
    _polar_axes(ax, max(6.0, float(np.percentile(distances, 98))) if distances else 6.0, horizontal_fov_rad)
    truth_points = [(h, t) for r, t in zip(records, times, strict=True) for h in truth.get(r.stamp_ns) or []]
    if truth_points:
        ax.scatter(
            [h.azimuth for h, _ in truth_points],
            [h.distance for h, _ in truth_points],
            c="black",
            s=6,
            label="truth",
        )
    estimates = [(h, t) for r, t in zip(records, times, strict=True) for h in r.hazards]
    if estimates:
        points = ax.scatter(
            [h.azimuth for h, _ in estimates],
            [h.distance for h, _ in estimates],
            c=[t for _, t in estimates],
            cmap="viridis",
            s=12,
            label="estimates",
        )
        # Below the plot: at its right the colour bar would cover the "-90° right" label.
        figure.colorbar(points, ax=ax, orientation="horizontal", shrink=0.6, pad=0.08, label="time [s]")
    figure.legend(loc="lower left", fontsize=8, bbox_to_anchor=(0.02, 0.02))
    figure.savefig(path)
    return figure


def _wrapped_line(times: np.ndarray, azimuth_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A wrapped azimuth line [deg] with NaN inserted where it crosses ±180, so it is not drawn
    across the whole panel."""
    if azimuth_deg.size < 2:
        return times, azimuth_deg
    jumps = np.flatnonzero(np.abs(np.diff(azimuth_deg)) > 180.0) + 1
    return np.insert(times, jumps, np.nan), np.insert(azimuth_deg, jumps, np.nan)


def tracks_figure(
    records: list[FrameRecord], truth: dict[int, list[HazardEstimateData]], origin_ns: int, path: Path
) -> Figure:
    """Azimuth over time of every published hazard, coloured by track id (grey: untracked), with
    the true hazards as lines (one per true track id, or per linked hazard when the truth has no
    ids); written to ``path`` (and returned)."""
    figure = Figure(figsize=(11, 4.5), dpi=100)
    ax = figure.subplots()
    by_id: dict[int, list[tuple[float, float]]] = {}
    for record in records:
        for h in truth.get(record.stamp_ns) or []:
            if h.track_id:
                by_id.setdefault(h.track_id, []).append(
                    ((record.stamp_ns - origin_ns) / NS_PER_S, math.degrees(h.azimuth))
                )
    if by_id:
        truth_lines = [np.array(points).T for points in by_id.values()]
    else:
        times = _times(records, origin_ns)
        truth_lines = [(times, np.array(row)) for row in _link_tracks(records, truth)[0]]
    for times, azimuths in truth_lines:
        ax.plot(
            *_wrapped_line(np.asarray(times), np.asarray(azimuths)), "-", color="black", lw=2.0, alpha=0.6
        )
    points = [
        ((r.stamp_ns - origin_ns) / NS_PER_S, math.degrees(h.azimuth), h.track_id)
        for r in records
        for h in r.hazards
    ]
    untracked = [(t, a) for t, a, i in points if not i]
    if untracked:
        ax.scatter(*zip(*untracked, strict=True), c="lightgrey", edgecolors="grey", s=12, zorder=2)
    tracked = [(t, a, i) for t, a, i in points if i]
    if tracked:
        ax.scatter(
            [t for t, _, _ in tracked],
            [a for _, a, _ in tracked],
            c=[track_color(i)[:3] for _, _, i in tracked],
            s=16,
            zorder=3,
        )
        for track_id in sorted({i for _, _, i in tracked}):
            first = next((t, a) for t, a, i in tracked if i == track_id)
            ax.annotate(f"#{track_id}", first, textcoords="offset points", xytext=(2, 4), fontsize=7)
    ax.set_ylim(-185.0, 185.0)
    ax.yaxis.set_major_locator(MultipleLocator(90))
    ax.set_ylabel("azimuth [deg] (+90 = left)")
    ax.set_xlabel("time since the first camera frame [s]")
    dot = {"ls": "none", "marker": "o", "ms": 5}
    ax.legend(
        handles=[
            Line2D([], [], color="black", lw=2.0, alpha=0.6, label="truth (one line per true hazard)"),
            Line2D(
                [], [], mfc=track_color(1)[:3], mec="none", label="published, colour: track id (#id)", **dot
            ),
            Line2D([], [], mfc="lightgrey", mec="grey", label="published untracked (id 0)", **dot),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    figure.tight_layout()
    figure.savefig(path)
    return figure


# --- the report ------------------------------------------------------------------------------


def write_report(result: ReplayResult, out: Path, progress: bool = False) -> Path:
    """Write the report for ``result`` into ``out``; returns the path of index.html."""
    out = Path(out)
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    records = result.records
    by_stamp = {r.stamp_ns: r for r in records}
    # Times count from the bag's first frame (the truth has every frame), as the scenario does.
    origin = min([records[0].stamp_ns, *result.truth])
    fov = result.snapshots[0].intrinsics.horizontal_fov_rad if result.snapshots else math.radians(70.0)
    window_ns = round(result.window_s * NS_PER_S)
    metrics = compute_metrics(records, result.truth, window_ns) if result.truth else {}
    if metrics:
        metrics["tracking"] = tracking_scores(records, result.truth, result.tracking)
    result.metrics = metrics
    if metrics:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (out / "metrics.md").write_text(metrics_markdown(metrics))
    timeline_figure(records, result.truth, result.class_names, origin, out / "timeline.png")
    polar_figure(records, result.truth, fov, origin, out / "polar.png")
    tracks_figure(records, result.truth, origin, out / "tracks.png")
    snapshots = (
        tqdm(result.snapshots, desc="report frames", unit="frame", disable=None)
        if progress
        else result.snapshots
    )
    frame_files = []
    for index, snapshot in enumerate(snapshots):
        record = by_stamp[snapshot.stamp_ns]
        truth = result.truth.get(snapshot.stamp_ns) if result.truth else None
        time_s = (snapshot.stamp_ns - origin) / NS_PER_S
        annotated = annotate_frame(snapshot, record, truth, result.extrinsic, time_s)
        name = f"frames/frame_{index:03d}.png"
        frame_figure(annotated, record, truth, fov, out / name)
        frame_files.append((name, time_s))
    index_path = out / "index.html"
    index_path.write_text(_index_html(result, metrics, frame_files))
    result.report_index = index_path
    return index_path


def _index_html(result: ReplayResult, metrics: dict[str, Any], frame_files: list[tuple[str, float]]) -> str:
    events = ", ".join(f"{k}: {v}" for k, v in result.events.items()) or "none"
    table = (
        metrics_html(metrics)
        if metrics
        else "<p>The bag has no ground-truth topic, so there is nothing to score against.</p>"
    )
    checked = result.integrity.describe()
    integrity = f"<p>Bag integrity:</p><pre>{html.escape(checked)}</pre>" if checked else ""
    gallery = "".join(
        f'<figure><a href="{name}"><img src="{name}" width="880"></a>'
        f"<figcaption>t = {t:.1f} s</figcaption></figure>"
        for name, t in frame_files
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>avi_ros replay report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #bbb; padding: 4px 8px; text-align: right; }}
figure {{ display: inline-block; margin: 0.5em; }} code {{ background: #eee; }}
</style></head><body>
<h1>avi_ros replay report</h1>
<p>Bag <code>{html.escape(str(result.bag))}</code>: {len(result.records)} frames through the perception node's
frame assembly and pipeline. Output bag: <code>{html.escape(str(result.output_bag))}</code>.<br>
Microphone &rarr; camera extrinsic from {html.escape(result.extrinsic_source)}.
Dropped or bad input (node reason keys): {html.escape(events)}.</p>
{integrity}
<h2>Metrics against ground truth</h2>
<p>Every true hazard against the estimate it is paired with at the same stamp (the published hazard of its
class nearest in direction; the best guess when nothing is published), so with one hazard at a time this is
the model's best guess against the exact scenario truth. "Frames" counts true hazards; "detected" means its
estimate was published (class not <i>none</i>, confidence above the threshold). "Hazard just ended": frames
without a hazard whose {result.window_s:.1f} s audio window still holds the end of one.</p>
{table}
<h2>Timeline</h2>
<p>Black: ground truth, one line per true hazard. Dots: every published hazard, coloured by class
(hollow: nothing published, the best guess below the confidence threshold). Azimuth is unwrapped around the
truth, so the vertical distance between a dot and the nearest line is the error even across &plusmn;180&deg;.
Shading: the truth's visibility (green visible, orange occluded, grey out of view, lilac when simultaneous
hazards differ). Bottom: hazards published against true hazards per frame.</p>
<img src="timeline.png" width="1100">
<h2>Tracks</h2>
<p>Azimuth of every published hazard over time, one colour per track id (the colour of its trail in RViz;
<code>#id</code> at its first frame), grey when untracked (<code>track_id</code> 0: not yet confirmed, or
tracking off). Black lines: the true hazards.</p>
<img src="tracks.png" width="1100">
<h2>Top-down view</h2>
<p>Robot at the centre, forward up, left to the left (REP-103 azimuth);
the camera's field of view is shaded.</p>
<img src="polar.png" width="600">
<h2>Frames</h2>
<p>Arrows: published estimates, coloured by risk (grey none, green low, amber medium, red high); white rings:
the true hazards; magenta tint: the occlusion mask computed from depth. A hazard out of the camera's view
gets a compass arrow from the image centre (up ahead, left left, down behind), the truth's in white.</p>
{gallery}
</body></html>
"""
