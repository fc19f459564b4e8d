"""The decision stage's label maps: risk 0-3, reason 0-3, action 0-5, and hazard class -> reason.

Risk and action are the taxonomy's ``RiskLevel`` and ``Action`` (the constants of
``msg/HazardEstimate.msg``), so a decision and a per-hazard estimate speak the same numbers. The
reason keeps the SIM v0 contract's four slots and maps them onto this package's world:

- ``human`` (0): a person, heard as ``speech`` or ``footsteps``;
- ``obstacle`` (1): any other hazard that can be hit or that signals danger: ``vehicle_engine``,
  ``car_horn``, ``siren``, ``alarm_bell``, ``dog_bark`` (an animal), ``glass_break`` (a
  breakage), ``power_tool`` (a machine);
- ``tight_space`` (2): the robot's own surroundings: a near obstacle fills much of the camera's
  view (the occlusion level) while the robot moves, and no hazard asks for more;
- ``unknown`` (3): nothing identified drives the decision (no hazard, or a sound of class ``none``).

A class name the map does not know (a custom taxonomy) is an ``obstacle``: the safe side, since
an obstacle's rules never relax the risk.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from avi_ros.taxonomy import NONE_CLASS_NAME, Action, RiskLevel, Taxonomy


class Reason(IntEnum):
    """Why the decision was taken (HazardAssessment.REASON_*)."""

    HUMAN = 0
    OBSTACLE = 1
    TIGHT_SPACE = 2
    UNKNOWN = 3


RISK_NAMES: tuple[str, ...] = tuple(level.name.lower() for level in RiskLevel)
REASON_NAMES: tuple[str, ...] = tuple(reason.name.lower() for reason in Reason)
ACTION_NAMES: tuple[str, ...] = tuple(action.name.lower() for action in Action)

HUMAN_CLASSES = frozenset({"speech", "footsteps"})


def reason_of_class(class_name: str) -> Reason:
    """The reason a hazard of ``class_name`` gives: human, obstacle, or unknown for ``none``."""
    if class_name == NONE_CLASS_NAME:
        return Reason.UNKNOWN
    return Reason.HUMAN if class_name in HUMAN_CLASSES else Reason.OBSTACLE


def class_reasons(taxonomy: Taxonomy) -> list[int]:
    """``reason_of_class`` of every class of ``taxonomy``, indexed by class id."""
    return [int(reason_of_class(name)) for name in taxonomy.names]


def label_maps(taxonomy: Taxonomy) -> dict[str, Any]:
    """The label maps as JSON (checkpoint metadata and ``export/labels.json``)."""
    return {
        "risk": list(RISK_NAMES),
        "reason": list(REASON_NAMES),
        "action": list(ACTION_NAMES),
        "hazard_classes": taxonomy.names,
        "class_to_reason": {
            name: REASON_NAMES[r] for name, r in zip(taxonomy.names, class_reasons(taxonomy), strict=True)
        },
    }
