"""Assessment -> ``HazardAssessment`` message, for rclpy classes (the node) or rosbags dataclasses (bags).

Built from the constructors the caller passes by type name, as ``avi_ros.message_builders``
builds every other message, so the node and a bag writer share one definition. Nothing here
imports ROS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avi_ros.decision.inference import Assessment
from avi_ros.message_builders import MessageConstructors

ASSESSMENT_TYPE = "avi_ros/msg/HazardAssessment"


def assessment_message(
    new: MessageConstructors, header: Any, assessment: Assessment, hazard_indices: Sequence[int] = ()
) -> Any:
    """A HazardAssessment with every field set; ``hazard_indices`` index the frame's HazardEstimateArray."""
    return new[ASSESSMENT_TYPE](
        header=header,
        risk_level=int(assessment.risk),
        reason=int(assessment.reason),
        recommended_action=int(assessment.action),
        confidence=float(assessment.confidence),
        risk_probabilities=np.asarray(assessment.risk_probabilities, dtype=np.float32),
        reason_probabilities=np.asarray(assessment.reason_probabilities, dtype=np.float32),
        action_probabilities=np.asarray(assessment.action_probabilities, dtype=np.float32),
        hazard_indices=np.asarray(hazard_indices, dtype=np.uint32),
        telemetry_missing=bool(assessment.telemetry_missing),
    )
