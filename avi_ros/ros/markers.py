"""RViz markers for hazards: an arrow from the microphone origin and a text label per hazard.

The arrow points along the estimated direction. Its length is the estimated distance
(clamped, so a far hazard still fits the view) or, in ``confidence`` mode, proportional to
the confidence. Its colour is the risk level. Each marker has a lifetime, so arrows of a
hazard that is gone disappear even when the node stops publishing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from avi_ros.taxonomy import RiskLevel
from avi_ros.types import HazardEstimateData

# Risk -> RGBA: grey, green, amber, red.
RISK_COLORS: dict[RiskLevel, tuple[float, float, float, float]] = {
    RiskLevel.NONE: (0.6, 0.6, 0.6, 0.8),
    RiskLevel.LOW: (0.1, 0.8, 0.2, 0.9),
    RiskLevel.MEDIUM: (1.0, 0.65, 0.0, 0.95),
    RiskLevel.HIGH: (0.95, 0.1, 0.1, 1.0),
}
LENGTH_MODES = ("distance", "confidence")


@dataclass(frozen=True)
class MarkerStyle:
    """How hazards are drawn.

    length_mode: ``distance`` (arrow length = distance [m], clamped to [min_length_m,
        max_length_m]) or ``confidence`` (length = confidence * max_length_m).
    lifetime_s: how long RViz keeps a marker without a refresh [s].
    shaft_diameter_m, head_diameter_m, text_height_m: sizes [m].
    """

    length_mode: str = "distance"
    min_length_m: float = 0.3
    max_length_m: float = 5.0
    lifetime_s: float = 0.5
    shaft_diameter_m: float = 0.05
    head_diameter_m: float = 0.12
    text_height_m: float = 0.2

    def __post_init__(self) -> None:
        if self.length_mode not in LENGTH_MODES:
            raise ValueError(f"marker length_mode must be one of {LENGTH_MODES}, got '{self.length_mode}'")
        if not 0.0 < self.min_length_m <= self.max_length_m:
            raise ValueError("marker lengths need 0 < min_length_m <= max_length_m")

    def arrow_length(self, hazard: HazardEstimateData) -> float:
        if self.length_mode == "confidence":
            return max(float(hazard.confidence), 0.0) * self.max_length_m
        distance = float(hazard.distance)
        if not np.isfinite(distance) or distance <= 0.0:
            distance = self.min_length_m
        return float(np.clip(distance, self.min_length_m, self.max_length_m))


def _duration(seconds: float) -> Duration:
    whole = int(seconds)
    return Duration(sec=whole, nanosec=round((seconds - whole) * 1e9))


def hazard_markers(hazards: list[HazardEstimateData], header: Header, style: MarkerStyle) -> MarkerArray:
    """DELETEALL, then per hazard an ARROW (namespace ``hazards``) and a TEXT label (``labels``).

    The DELETEALL first clears markers of hazards that were in the previous array but not in
    this one, so a shrinking list never leaves stale arrows behind.
    """
    clear = Marker(header=header, action=Marker.DELETEALL)
    markers = [clear]
    lifetime = _duration(style.lifetime_s)
    for index, hazard in enumerate(hazards):
        direction = np.asarray(hazard.direction, dtype=np.float64)
        norm = float(np.linalg.norm(direction))
        unit = direction / norm if norm > 0 else np.array([1.0, 0.0, 0.0])
        tip = unit * style.arrow_length(hazard)
        r, g, b, a = RISK_COLORS[RiskLevel(int(hazard.risk_level))]
        color = ColorRGBA(r=r, g=g, b=b, a=a)
        arrow = Marker(header=header, ns="hazards", id=index, type=Marker.ARROW, action=Marker.ADD)
        arrow.points = [Point(x=0.0, y=0.0, z=0.0), Point(x=float(tip[0]), y=float(tip[1]), z=float(tip[2]))]
        arrow.scale.x = style.shaft_diameter_m
        arrow.scale.y = style.head_diameter_m
        arrow.scale.z = 0.0  # RViz picks the head length
        arrow.pose.orientation.w = 1.0
        arrow.color = color
        arrow.lifetime = lifetime
        label = Marker(header=header, ns="labels", id=index, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        label.pose.position = Point(x=float(tip[0]), y=float(tip[1]), z=float(tip[2]) + style.text_height_m)
        label.pose.orientation.w = 1.0
        label.scale.z = style.text_height_m
        label.color = color
        label.text = f"{hazard.class_name} {hazard.confidence:.2f}"
        label.lifetime = lifetime
        markers += [arrow, label]
    return MarkerArray(markers=markers)
