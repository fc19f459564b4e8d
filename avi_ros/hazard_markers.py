"""What the RViz hazard markers look like, as plain data: style, risk colours and geometry.

Per hazard an arrow from the microphone origin along the estimated direction and a text label
above its tip; per confirmed track (``avi_ros.tracking``) a line through its recent positions
and a label with its id and range rate. The arrow's length is the estimated distance (clamped,
so a far hazard still fits the view) or, in ``confidence`` mode, proportional to the
confidence; its colour is the risk level. Every marker has a lifetime, so the arrow of a hazard
that is gone disappears even when nothing is published any more. The list starts with a
DELETEALL, which clears markers of hazards that were in the previous array but not in this one.
A tracked hazard's markers have its track id as their id, so RViz sees the same marker move
rather than one marker per list position; an untracked one's is minus (its index + 1), which no
track id (>= 1) can equal.

The node (rclpy) and the bag replay (rosbags) both translate these ``MarkerSpec`` values into
``visualization_msgs/Marker`` messages with ``avi_ros.message_builders.marker_array_message``.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from avi_ros.geometry import direction_to_unit
from avi_ros.taxonomy import RiskLevel
from avi_ros.types import HazardEstimateData

if TYPE_CHECKING:  # the tracker (scipy) is not needed to draw its views
    from avi_ros.tracking import TrackView

# visualization_msgs/Marker constants: part of the message contract, the same in every ROS 2 release.
MARKER_ARROW = 0
MARKER_LINE_STRIP = 4
MARKER_TEXT_VIEW_FACING = 9
MARKER_ADD = 0
MARKER_DELETEALL = 3

# Risk -> RGBA: grey, green, amber, red.
RISK_COLORS: dict[RiskLevel, tuple[float, float, float, float]] = {
    RiskLevel.NONE: (0.6, 0.6, 0.6, 0.8),
    RiskLevel.LOW: (0.1, 0.8, 0.2, 0.9),
    RiskLevel.MEDIUM: (1.0, 0.65, 0.0, 0.95),
    RiskLevel.HIGH: (0.95, 0.1, 0.1, 1.0),
}
LENGTH_MODES = ("distance", "confidence")
ARROW_NAMESPACE = "hazards"
LABEL_NAMESPACE = "labels"
TRACK_NAMESPACE = "tracks"
TRACK_LABEL_NAMESPACE = "track_labels"
GOLDEN_RATIO_CONJUGATE = 0.618033988749895  # hue step between successive track ids: far apart
COASTING_ALPHA = 0.35  # opacity of a track that missed its latest frames (predicted, not detected)

Vector = tuple[float, float, float]


@dataclass(frozen=True)
class MarkerStyle:
    """How hazards are drawn.

    length_mode: ``distance`` (arrow length = distance [m], clamped to [min_length_m,
        max_length_m]) or ``confidence`` (length = confidence * max_length_m).
    lifetime_s: how long RViz keeps a marker without a refresh [s].
    shaft_diameter_m, head_diameter_m, text_height_m, trail_width_m: sizes [m].
    """

    length_mode: str = "distance"
    min_length_m: float = 0.3
    max_length_m: float = 5.0
    lifetime_s: float = 0.5
    shaft_diameter_m: float = 0.05
    head_diameter_m: float = 0.12
    text_height_m: float = 0.2
    trail_width_m: float = 0.03

    def __post_init__(self) -> None:
        if self.length_mode not in LENGTH_MODES:
            raise ValueError(f"marker length_mode must be one of {LENGTH_MODES}, got '{self.length_mode}'")
        if not 0.0 < self.min_length_m <= self.max_length_m:
            raise ValueError("marker lengths need 0 < min_length_m <= max_length_m")
        if self.lifetime_s < 0.0:
            raise ValueError(f"marker lifetime_s must be >= 0 s, got {self.lifetime_s}")

    def arrow_length(self, hazard: HazardEstimateData) -> float:
        """Arrow length [m] for ``hazard`` under ``length_mode``."""
        if self.length_mode == "confidence":
            return max(float(hazard.confidence), 0.0) * self.max_length_m
        return self.clamped_distance(float(hazard.distance))

    def clamped_distance(self, distance: float) -> float:
        """``distance`` [m] clamped as arrows are (a non-finite or non-positive one: the shortest)."""
        if not np.isfinite(distance) or distance <= 0.0:
            return self.min_length_m
        return float(np.clip(distance, self.min_length_m, self.max_length_m))

    def arrow_tip(self, hazard: HazardEstimateData) -> Vector:
        """End of the arrow [m]: the unit direction (+x when it is zero) times ``arrow_length``."""
        direction = np.asarray(hazard.direction, dtype=np.float64)
        norm = float(np.linalg.norm(direction))
        unit = direction / norm if norm > 0 else np.array([1.0, 0.0, 0.0])
        tip = unit * self.arrow_length(hazard)
        return float(tip[0]), float(tip[1]), float(tip[2])


@dataclass(frozen=True)
class MarkerSpec:
    """One visualization_msgs/Marker as plain values (a DELETEALL uses only ``action``).

    marker_type, action: the Marker constants above. points: arrow start and tip, or the line
    strip's points [m].
    position: pose position [m] (the orientation is always the identity). scale: the Marker's
    scale [m] (arrow: shaft diameter, head diameter, 0 = RViz picks the head length; text:
    z = height). color: RGBA in [0, 1]. lifetime_s: seconds RViz keeps it without a refresh.
    """

    action: int
    marker_type: int = MARKER_ARROW
    namespace: str = ""
    marker_id: int = 0
    points: tuple[Vector, ...] = ()
    position: Vector = (0.0, 0.0, 0.0)
    scale: Vector = (0.0, 0.0, 0.0)
    color: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    text: str = ""
    lifetime_s: float = 0.0


def hazard_marker_id(hazard: HazardEstimateData, index: int) -> int:
    """The marker id of the ``index``-th hazard: its track id, else -(index + 1) (module docstring)."""
    return int(hazard.track_id) if hazard.track_id else -(index + 1)


def track_color(track_id: int, coasting: bool = False) -> tuple[float, float, float, float]:
    """RGBA of a track: a hue per id (successive ids far apart), dimmed while coasting."""
    red, green, blue = colorsys.hsv_to_rgb((track_id * GOLDEN_RATIO_CONJUGATE) % 1.0, 0.85, 0.95)
    return red, green, blue, COASTING_ALPHA if coasting else 0.9


def hazard_marker_specs(hazards: list[HazardEstimateData], style: MarkerStyle) -> list[MarkerSpec]:
    """DELETEALL, then per hazard an ARROW (namespace ``hazards``) and a TEXT label (``labels``),
    both with ``hazard_marker_id`` as id and coloured by its risk level."""
    specs = [MarkerSpec(action=MARKER_DELETEALL)]
    for index, hazard in enumerate(hazards):
        tip = style.arrow_tip(hazard)
        color = RISK_COLORS[RiskLevel(int(hazard.risk_level))]
        marker_id = hazard_marker_id(hazard, index)
        specs.append(
            MarkerSpec(
                action=MARKER_ADD,
                marker_type=MARKER_ARROW,
                namespace=ARROW_NAMESPACE,
                marker_id=marker_id,
                points=((0.0, 0.0, 0.0), tip),
                scale=(style.shaft_diameter_m, style.head_diameter_m, 0.0),
                color=color,
                lifetime_s=style.lifetime_s,
            )
        )
        text = f"{hazard.class_name} {hazard.confidence:.2f}"
        above = (tip[0], tip[1], tip[2] + style.text_height_m)
        specs.append(_label_spec(LABEL_NAMESPACE, marker_id, above, text, color, style))
    return specs


def _label_spec(
    namespace: str,
    marker_id: int,
    position: Vector,
    text: str,
    color: tuple[float, float, float, float],
    style: MarkerStyle,
) -> MarkerSpec:
    """A camera-facing TEXT at ``position`` [m]: hazard and track labels read alike in RViz."""
    return MarkerSpec(
        action=MARKER_ADD,
        marker_type=MARKER_TEXT_VIEW_FACING,
        namespace=namespace,
        marker_id=marker_id,
        position=position,
        scale=(0.0, 0.0, style.text_height_m),
        color=color,
        text=text,
        lifetime_s=style.lifetime_s,
    )


def _trail_point(azimuth: float, elevation: float, distance: float) -> Vector:
    """Position [m] of a trail point at ``azimuth``, ``elevation`` [rad] and ``distance`` [m]."""
    x, y, z = direction_to_unit(azimuth, elevation) * distance
    return float(x), float(y), float(z)


def track_marker_specs(tracks: list[TrackView], style: MarkerStyle) -> list[MarkerSpec]:
    """Per confirmed track a LINE_STRIP (namespace ``tracks``, id = track id) through its trail,
    oldest first, at the clamped distances arrows use, and a TEXT (``track_labels``) ``#id
    v=<range rate> m/s`` below its newest point (the hazard's own label is above its arrow);
    a coasting track's are dimmed. A track with a single trail point gets only the label. No
    DELETEALL: these follow ``hazard_marker_specs``."""
    specs: list[MarkerSpec] = []
    for view in tracks:
        color = track_color(view.track_id, coasting=view.missed_s > 0.0)
        points = tuple(
            _trail_point(p.azimuth, p.elevation, style.clamped_distance(p.distance)) for p in view.trail
        )
        if len(points) >= 2:
            specs.append(
                MarkerSpec(
                    action=MARKER_ADD,
                    marker_type=MARKER_LINE_STRIP,
                    namespace=TRACK_NAMESPACE,
                    marker_id=view.track_id,
                    points=points,
                    scale=(style.trail_width_m, 0.0, 0.0),
                    color=color,
                    lifetime_s=style.lifetime_s,
                )
            )
        if points:
            x, y, z = points[-1]
            text = f"#{view.track_id} v={view.range_rate:+.1f} m/s"
            below = (x, y, z - style.text_height_m)
            specs.append(_label_spec(TRACK_LABEL_NAMESPACE, view.track_id, below, text, color, style))
    return specs
