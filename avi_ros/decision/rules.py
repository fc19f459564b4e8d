"""The labelling rules of the decision stage: time to contact, hazard class and visibility.

The rules label a situation (the truth at the decision time: the hazard relative to the robot
and the robot's own motion). The decision model learns them from noisy estimates; nothing at
run time applies them. In order:

1. **Closing speed** ``s = v · cos(azimuth)`` [m/s]: the part of the robot's forward speed
   ``v`` (negative when reversing) that points at the hazard, the rate at which the distance to
   a static hazard shrinks. Where the truth knows the hazard's own motion (rendered scenarios),
   ``Situation.closing_speed_mps`` gives the true rate instead (minus the range rate).
2. **Time to contact** ``TTC = distance / s`` [s] when ``s > min_closing_speed_mps``, else
   infinite (standing, turning on the spot, moving away).
3. **Visibility margin**: a hazard the camera does not see (occluded or out of view) gets
   ``hidden_margin`` times the TTC thresholds: the robot cannot confirm its way is clear.
4. **Base risk**: the taxonomy's class + distance rule (``Taxonomy.risk_level``).
5. **Hazard risk**: none without a hazard; HIGH when ``TTC <= ttc_high_s·margin``;
   ``max(MEDIUM, base)`` when ``TTC <= ttc_medium_s·margin``; the base risk when closing more
   slowly; one level below the base (never below NONE) when the robot does not close in.
6. **Tight space**: when the occlusion level (near obstacles in the view) is at least
   ``tight_occlusion`` and the robot moves (``|v| > moving_speed_mps``), the risk is at least
   LOW, with the reason ``tight_space`` when the hazard alone would give less.
7. **Reason**: ``tight_space`` as above, else the hazard class's reason (``labels.reason_of_class``).
8. **Action**: NONE continues. LOW slows down while moving, else continues. MEDIUM while
   closing turns away from the hazard's side when driving forward (a hazard on the left,
   azimuth > 0, turns right) and stops when reversing; MEDIUM while not closing slows down.
   HIGH reverses when the hazard is ahead (``|azimuth| <= ahead_half_angle_rad``) and within
   ``reverse_within_m`` of a robot that is not already reversing, else stops.

So a siren 5 m behind a standing robot is MEDIUM (base HIGH, not closing) and asks to slow
down, while the same siren 5 m ahead of a robot driving at 1.5 m/s (TTC 3.3 s) is HIGH and asks
to stop.

``rules_from_feature`` applies the same rules at run time to what the node knows (one frame's
best estimate and the odometry's speed): the baseline a trained decision stage must beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avi_ros.decision.features import DISTANCE_SCALE_M
from avi_ros.decision.labels import Reason, reason_of_class
from avi_ros.taxonomy import AHEAD_HALF_ANGLE_RAD, Action, RiskLevel, Taxonomy, Visibility
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD


@dataclass(frozen=True)
class LabelRules:
    """The thresholds of the rules (see the module docstring); times in s, speeds in m/s."""

    ttc_high_s: float = 4.0  # TTC at or below this is HIGH risk
    ttc_medium_s: float = 8.0  # TTC at or below this is at least MEDIUM risk
    hidden_margin: float = 1.5  # TTC thresholds x this for a hazard the camera does not see
    min_closing_speed_mps: float = 0.05  # slower closing counts as not closing (TTC infinite)
    moving_speed_mps: float = 0.1  # |forward speed| above this means the robot moves
    tight_occlusion: float = 0.5  # occlusion level (0..1) from which the robot is in a tight space
    ahead_half_angle_rad: float = AHEAD_HALF_ANGLE_RAD  # |azimuth| at or below this is ahead
    reverse_within_m: float = 2.0  # a HIGH-risk hazard ahead within this distance [m] asks to reverse

    def __post_init__(self) -> None:
        if not 0.0 < self.ttc_high_s <= self.ttc_medium_s:
            raise ValueError(
                f"ttc_high_s and ttc_medium_s: expected 0 < high <= medium, got {self.ttc_high_s}, "
                f"{self.ttc_medium_s}"
            )
        if self.hidden_margin < 1.0:
            raise ValueError(f"hidden_margin: expected >= 1, got {self.hidden_margin}")
        if self.min_closing_speed_mps <= 0.0 or self.moving_speed_mps < 0.0:
            raise ValueError("min_closing_speed_mps: expected > 0; moving_speed_mps: expected >= 0")
        if not 0.0 < self.tight_occlusion <= 1.0:
            raise ValueError(f"tight_occlusion: expected a level in (0, 1], got {self.tight_occlusion}")


@dataclass(frozen=True)
class Situation:
    """The truth at the decision time. ``class_id`` 0 means no hazard (its geometry is ignored).

    distance_m [m] and azimuth_rad [rad, CCW from the robot's +x] of the hazard; speed_mps: the
    robot's forward speed [m/s], negative when reversing; occlusion_level: fraction of the view
    blocked by near obstacles, 0..1.
    """

    class_id: int
    distance_m: float
    azimuth_rad: float
    visibility: Visibility
    occlusion_level: float
    speed_mps: float
    closing_speed_mps: float | None = None  # true closing rate [m/s] of a moving hazard; None: v·cos(az)


@dataclass(frozen=True)
class Decision:
    """The labels of a situation, and the time to contact they came from [s] (inf: not closing)."""

    risk: RiskLevel
    reason: Reason
    action: Action
    ttc_s: float


def closing_speed(speed_mps: float, azimuth_rad: float) -> float:
    """The rate [m/s] at which the distance to a static hazard at ``azimuth_rad`` shrinks."""
    return speed_mps * math.cos(azimuth_rad)


def time_to_contact(distance_m: float, closing_mps: float, rules: LabelRules) -> float:
    """Distance over closing speed [s]; infinite when the robot does not close in."""
    if closing_mps <= rules.min_closing_speed_mps:
        return math.inf
    return max(distance_m, 0.0) / closing_mps


def _hazard_risk(situation: Situation, ttc_s: float, taxonomy: Taxonomy, rules: LabelRules) -> RiskLevel:
    if situation.class_id == 0:
        return RiskLevel.NONE
    margin = 1.0 if situation.visibility == Visibility.VISIBLE else rules.hidden_margin
    base = taxonomy.risk_level(situation.class_id, situation.distance_m)
    if ttc_s <= rules.ttc_high_s * margin:
        return RiskLevel.HIGH
    if ttc_s <= rules.ttc_medium_s * margin:
        return max(RiskLevel.MEDIUM, base)
    if math.isfinite(ttc_s):
        return base
    return RiskLevel(max(int(base) - 1, int(RiskLevel.NONE)))


def _action(risk: RiskLevel, situation: Situation, closing: bool, rules: LabelRules) -> Action:
    moving = abs(situation.speed_mps) > rules.moving_speed_mps
    if risk == RiskLevel.NONE:
        return Action.CONTINUE
    if risk == RiskLevel.LOW:
        return Action.SLOW if moving else Action.CONTINUE
    if risk == RiskLevel.MEDIUM:
        if not closing:
            return Action.SLOW
        if situation.speed_mps < 0.0:
            return Action.STOP
        return Action.TURN_RIGHT if situation.azimuth_rad > 0.0 else Action.TURN_LEFT
    ahead = abs(situation.azimuth_rad) <= rules.ahead_half_angle_rad
    if ahead and situation.distance_m <= rules.reverse_within_m and situation.speed_mps >= 0.0:
        return Action.REVERSE
    return Action.STOP


def label_situation(situation: Situation, taxonomy: Taxonomy, rules: LabelRules | None = None) -> Decision:
    """Risk, reason and action of ``situation`` by the rules of the module docstring."""
    rules = rules or LabelRules()
    hazard = situation.class_id != 0
    closing_mps = 0.0
    if hazard:
        closing_mps = situation.closing_speed_mps
        if closing_mps is None:
            closing_mps = closing_speed(situation.speed_mps, situation.azimuth_rad)
    ttc_s = time_to_contact(situation.distance_m, closing_mps, rules) if hazard else math.inf
    risk = _hazard_risk(situation, ttc_s, taxonomy, rules)
    reason = reason_of_class(taxonomy.names[situation.class_id])
    tight = (
        situation.occlusion_level >= rules.tight_occlusion
        and abs(situation.speed_mps) > rules.moving_speed_mps
    )
    if tight and risk < RiskLevel.LOW:
        risk, reason = RiskLevel.LOW, Reason.TIGHT_SPACE
    return Decision(risk, reason, _action(risk, situation, math.isfinite(ttc_s), rules), ttc_s)


def situation_from_feature(
    feature: np.ndarray,
    speed_mps: float,
    num_classes: int,
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
) -> Situation:
    """The situation one frame's feature vector (``features.frame_features``) describes: its most
    probable class when that is not ``none`` and the confidence reaches ``confidence_threshold``
    (the node's publishing rule), else no hazard; the hazard taken as static."""
    feature = np.asarray(feature, dtype=np.float64)
    probabilities = feature[:num_classes]
    x, y, _ = feature[num_classes : num_classes + 3]
    distance = float(feature[num_classes + 3]) * DISTANCE_SCALE_M
    confidence = float(feature[num_classes + 4])
    visibility = Visibility(int(np.argmax(feature[num_classes + 5 : num_classes + 8])))
    class_id = int(np.argmax(probabilities))
    if confidence < confidence_threshold:
        class_id = 0
    return Situation(
        class_id, distance, math.atan2(y, x), visibility, float(feature[num_classes + 8]), float(speed_mps)
    )


def rules_from_feature(
    feature: np.ndarray,
    speed_mps: float,
    taxonomy: Taxonomy,
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    rules: LabelRules | None = None,
) -> Decision:
    """The rules applied to one frame's estimate and the odometry's forward speed [m/s] (the
    run-time baseline of the module docstring)."""
    situation = situation_from_feature(feature, speed_mps, taxonomy.num_classes, confidence_threshold)
    return label_situation(situation, taxonomy, rules)
