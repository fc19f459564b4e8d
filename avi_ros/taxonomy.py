"""Hazard taxonomy: class names and the rules that turn class + distance into risk and action.

The taxonomy travels inside every checkpoint's metadata, so the node, the replay and the
training code all read the same list from the model and can never drift apart. Class 0 is
always ``none`` (background).

The enums below mirror the constants of ``msg/HazardEstimate.msg``; a test checks that the
two stay equal, since the core layer cannot import the generated messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from avi_ros.config_io import build, to_plain


class Visibility(IntEnum):
    """Whether the camera sees the hazard (HazardEstimate.VISIBLE, ...)."""

    VISIBLE = 0
    OCCLUDED = 1
    OUT_OF_VIEW = 2


class RiskLevel(IntEnum):
    """Risk of a hazard to the robot (HazardEstimate.RISK_*)."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class Action(IntEnum):
    """Recommended robot action (HazardEstimate.CONTINUE, ...)."""

    CONTINUE = 0
    SLOW = 1
    STOP = 2
    REVERSE = 3
    TURN_LEFT = 4
    TURN_RIGHT = 5


NONE_CLASS_NAME = "none"
# Most hazards one scene holds and one frame reports (the DCASE SELD polyphony of 3).
MAX_HAZARDS = 3

# A hazard whose absolute azimuth is below this is "ahead" of the robot [rad].
AHEAD_HALF_ANGLE_RAD = math.radians(60.0)


@dataclass(frozen=True)
class HazardClass:
    """One class and its risk rule.

    The risk is ``severity`` within ``near_m`` metres, one level lower up to ``far_m`` metres,
    and two levels lower beyond (never below NONE). Distances are in metres.
    """

    name: str
    severity: RiskLevel
    near_m: float
    far_m: float


@dataclass(frozen=True)
class Taxonomy:
    """Ordered classes; index = class_id. ``classes[0]`` must be ``none``."""

    classes: tuple[HazardClass, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.classes or self.classes[0].name != NONE_CLASS_NAME:
            raise ValueError(f"taxonomy: class 0 must be '{NONE_CLASS_NAME}'")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"taxonomy: duplicate class names in {names}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_id(self, name: str) -> int:
        """Index of a class by name; raises KeyError naming the known classes."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown class '{name}'; known: {self.names}") from None

    def risk_level(self, class_id: int, distance_m: float) -> RiskLevel:
        """Risk from class and distance [m]; background is always NONE."""
        if class_id == 0:
            return RiskLevel.NONE
        rule = self.classes[class_id]
        if distance_m <= rule.near_m:
            drop = 0
        elif distance_m <= rule.far_m:
            drop = 1
        else:
            drop = 2
        return RiskLevel(max(int(rule.severity) - drop, int(RiskLevel.NONE)))

    @staticmethod
    def recommended_action(risk: RiskLevel, azimuth_rad: float) -> Action:
        """Action from risk and the hazard's azimuth [rad, CCW from +x].

        NONE continues, LOW slows down, MEDIUM turns away from the side the hazard is on,
        HIGH stops, or reverses when the hazard is ahead of the robot.
        """
        if risk == RiskLevel.NONE:
            return Action.CONTINUE
        if risk == RiskLevel.LOW:
            return Action.SLOW
        if risk == RiskLevel.MEDIUM:
            return Action.TURN_RIGHT if azimuth_rad > 0.0 else Action.TURN_LEFT
        return Action.REVERSE if abs(azimuth_rad) <= AHEAD_HALF_ANGLE_RAD else Action.STOP

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for checkpoint metadata."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Taxonomy:
        """Inverse of ``to_dict``; a ConfigError (ValueError) names the first bad key."""
        return build(cls, data, "taxonomy")


def default_taxonomy() -> Taxonomy:
    """The ten classes of the synthetic scenes: background plus nine robot-relevant hazards."""
    h, m, lo = RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW
    return Taxonomy(
        (
            HazardClass(NONE_CLASS_NAME, RiskLevel.NONE, 0.0, 0.0),
            HazardClass("vehicle_engine", h, 3.0, 8.0),
            HazardClass("car_horn", h, 3.0, 8.0),
            HazardClass("siren", h, 5.0, 12.0),
            HazardClass("alarm_bell", m, 3.0, 8.0),
            HazardClass("dog_bark", m, 2.0, 5.0),
            HazardClass("footsteps", lo, 1.5, 4.0),
            HazardClass("glass_break", h, 2.0, 5.0),
            HazardClass("power_tool", m, 2.0, 5.0),
            HazardClass("speech", lo, 1.5, 4.0),
        )
    )
