"""What the RViz hazard markers look like, as plain data: style, risk colours and geometry.

Per hazard an arrow from the microphone origin along the estimated direction and a text label
above its tip. The arrow's length is the estimated distance (clamped, so a far hazard still fits
the view) or, in ``confidence`` mode, proportional to the confidence; its colour is the risk
level. Every marker has a lifetime, so the arrow of a hazard that is gone disappears even when
nothing is published any more. The list starts with a DELETEALL, which clears markers of hazards
that were in the previous array but not in this one.

The node (rclpy) and the bag replay (rosbags) both translate these ``MarkerSpec`` values into
``visualization_msgs/Marker`` messages with ``avi_ros.message_builders.marker_array_message``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avi_ros.taxonomy import RiskLevel
from avi_ros.types import HazardEstimateData

# visualization_msgs/Marker constants: part of the message contract, the same in every ROS 2 release.
MARKER_ARROW = 0
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

Vector = tuple[float, float, float]


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
        if self.lifetime_s < 0.0:
            raise ValueError(f"marker lifetime_s must be >= 0 s, got {self.lifetime_s}")

    def arrow_length(self, hazard: HazardEstimateData) -> float:
        """Arrow length [m] for ``hazard`` under ``length_mode``."""
        if self.length_mode == "confidence":
            return max(float(hazard.confidence), 0.0) * self.max_length_m
        distance = float(hazard.distance)
        if not np.isfinite(distance) or distance <= 0.0:
            distance = self.min_length_m
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

    marker_type, action: the Marker constants above. points: arrow start and tip [m].
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


def hazard_marker_specs(hazards: list[HazardEstimateData], style: MarkerStyle) -> list[MarkerSpec]:
    """DELETEALL, then per hazard an ARROW (namespace ``hazards``) and a TEXT label (``labels``),
    both with the hazard's index as id and coloured by its risk level."""
    specs = [MarkerSpec(action=MARKER_DELETEALL)]
    for index, hazard in enumerate(hazards):
        tip = style.arrow_tip(hazard)
        color = RISK_COLORS[RiskLevel(int(hazard.risk_level))]
        specs.append(
            MarkerSpec(
                action=MARKER_ADD,
                marker_type=MARKER_ARROW,
                namespace=ARROW_NAMESPACE,
                marker_id=index,
                points=((0.0, 0.0, 0.0), tip),
                scale=(style.shaft_diameter_m, style.head_diameter_m, 0.0),
                color=color,
                lifetime_s=style.lifetime_s,
            )
        )
        specs.append(
            MarkerSpec(
                action=MARKER_ADD,
                marker_type=MARKER_TEXT_VIEW_FACING,
                namespace=LABEL_NAMESPACE,
                marker_id=index,
                position=(tip[0], tip[1], tip[2] + style.text_height_m),
                scale=(0.0, 0.0, style.text_height_m),
                color=color,
                text=f"{hazard.class_name} {hazard.confidence:.2f}",
                lifetime_s=style.lifetime_s,
            )
        )
    return specs
