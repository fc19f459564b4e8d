"""The decision stage in a node: its parameters, its telemetry, and one HazardAssessment per frame.

``NodeDecision`` is what the perception node holds when ``decision.model_path`` is set; its
methods pair with the node's lifecycle (configure -> ``configure``, deactivate and a clock jump
-> ``reset``), and ``assess`` turns a frame's ``PipelineResult`` into the message to publish on
``OutputTopics.assessment``. The telemetry input is the node's (the tracker reads its odometry too):
the node subscribes, unsubscribes and resets it. The work itself lives
in the core (``avi_ros.decision``): this module only binds it to rclpy.
"""

from __future__ import annotations

from typing import Any

from rclpy.node import Node

from avi_ros.decision.checkpoint import HOW_TO_MAKE_ONE
from avi_ros.decision.inference import Assessment, DecisionStage, driving_hazards
from avi_ros.message_builders import assessment_message
from avi_ros.msg import HazardAssessment
from avi_ros.ros.conversions import ROS_MESSAGES
from avi_ros.ros.params import ParamSpec, declare_parameters
from avi_ros.ros.telemetry import TELEMETRY_PARAMETERS, TelemetryInput, declare_telemetry_parameters
from avi_ros.taxonomy import Taxonomy
from avi_ros.topics import OutputTopics
from avi_ros.types import PipelineResult

DECISION_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "decision.model_path",
        "",
        "Checkpoint directory of a trained decision stage (risk, reason, action from the last frames "
        f"and the robot's telemetry); produce one with: {HOW_TO_MAKE_ONE}. Empty: no decision stage, "
        f"no '{OutputTopics().assessment}' output and no IMU subscription (odometry is still read while "
        "tracking.enabled).",
    ),
)


# Every parameter ``declare_decision_parameters`` declares (for config/perception.yaml and its test).
NODE_DECISION_PARAMETERS: tuple[ParamSpec, ...] = (*DECISION_PARAMETERS, *TELEMETRY_PARAMETERS)


def declare_decision_parameters(node: Node) -> None:
    """Declare the decision stage's parameters and those of its telemetry."""
    declare_parameters(node, DECISION_PARAMETERS)
    declare_telemetry_parameters(node)


def assessment_to_msg(assessment: Assessment, header: Any, hazard_indices: list[int]) -> HazardAssessment:
    """Assessment -> HazardAssessment (``avi_ros.message_builders``) with rclpy's classes."""
    return assessment_message(ROS_MESSAGES, header, assessment, hazard_indices)


class NodeDecision:
    """A loaded decision stage and its telemetry input (module docstring)."""

    def __init__(self, stage: DecisionStage, telemetry: TelemetryInput) -> None:
        self.stage = stage
        self.telemetry = telemetry

    @classmethod
    def configure(cls, node: Node, telemetry: TelemetryInput, taxonomy: Taxonomy) -> NodeDecision | None:
        """Load the stage named by ``decision.model_path`` (None when empty); it reads ``telemetry``.

        Raises ValueError / FileNotFoundError / CheckpointError with the reason when the
        parameters are bad, the checkpoint cannot be loaded, or it was trained on another
        taxonomy than the hazard model's ``taxonomy``.
        """
        path = str(node.get_parameter("decision.model_path").value)
        if not path:
            return None
        stage = DecisionStage.from_checkpoint(path)
        if stage.metadata.taxonomy.names != taxonomy.names:
            raise ValueError(
                f"decision.model_path '{path}' was trained on the classes {stage.metadata.taxonomy.names}, "
                f"but the hazard model has {taxonomy.names}"
            )
        return cls(stage, telemetry)

    def reset(self) -> None:
        """Deactivated, or the clock jumped back: forget the frame window."""
        self.stage.reset()

    def assess(self, result: PipelineResult, stamp_ns: int, header: Any) -> HazardAssessment:
        """Push the frame's best estimate, assess with the telemetry at ``stamp_ns`` and build the message."""
        assessment = self.stage.step(result.top, self.telemetry.reading(stamp_ns), stamp_ns)
        return assessment_to_msg(assessment, header, driving_hazards(result.hazards, assessment))
