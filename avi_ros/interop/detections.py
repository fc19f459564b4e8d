"""Hazard estimates -> ``vision_msgs/Detection3DArray``, built once for rclpy and rosbags alike.

Each hazard becomes one ``Detection3D`` (vision_msgs 4.x, the ROS 2 layout since Humble):

- ``results``: one ``ObjectHypothesisWithPose`` per class of the taxonomy except class 0
  (``none``, the background: a published hazard is not background), ``class_id`` = the class
  name, ``score`` = the model's class probability, best first, at most ``max_hypotheses`` and
  none below ``min_score``. A hazard without class probabilities (ground truth) has one
  hypothesis: its class with its confidence.
- every hypothesis carries the same pose: the position ``distance * direction`` [m] in the
  header's frame, identity orientation, and a 6x6 row-major covariance (x, y, z, roll, pitch,
  yaw). Its position block is ``range_std^2 u u^T + (distance * angular_std)^2 (I - u u^T)``
  (``u`` the unit direction): the range uncertainty along the line of sight, the direction
  uncertainty across it. A hazard has no orientation, so the rotation block is
  ``ORIENTATION_VARIANCE`` (unknown) on its diagonal.
- ``bbox``: centred on the position, ``BBOX_SIZE_M`` on each side (a point-like hazard, drawn
  small in RViz); ``id``: the track id as a string, empty when untracked (track id 0).

The standard deviations come from ``PositionUncertainty``, a documented constant per visibility
(``DEFAULT_UNCERTAINTY``), because the model outputs no per-hazard spread: a hazard heard but
not seen gets a much wider spread along the range than one the depth camera sees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from avi_ros.message_builders import MessageConstructors
from avi_ros.taxonomy import Visibility
from avi_ros.types import HazardEstimateData

BBOX_SIZE_M = 0.2  # side of the box around a hazard's position [m]
ORIENTATION_VARIANCE = 1.0e6  # [rad^2] on the rotation diagonal: a hazard has no orientation
MIN_RANGE_M = 0.1  # the tangential spread uses at least this distance [m]: no zero-size spread
MAX_HYPOTHESES = 5
MIN_SCORE = 0.01


@dataclass(frozen=True)
class SpreadModel:
    """The spread of one visibility: ``angular_std_deg`` across the line of sight [deg], and the
    range standard deviation ``max(range_floor_m, range_fraction * distance)`` along it [m]."""

    angular_std_deg: float
    range_fraction: float
    range_floor_m: float

    def range_std_m(self, distance_m: float) -> float:
        return max(self.range_floor_m, self.range_fraction * max(distance_m, 0.0))


@dataclass(frozen=True)
class PositionUncertainty:
    """The spread per visibility. The defaults: angular sigmas from the demo model's median angle
    errors on held-out scenes (3.5 deg visible, 8.5 deg occluded, 19.8 deg out of view for the
    procedural-sound model; README), divided by 0.6745 (a Gaussian's median absolute deviation
    in sigmas) and rounded up; range sigmas from its
    distance RMSE (0.5-0.9 m) for a visible hazard, whose distance the depth image confirms, and
    half the distance (at least 1 m) for one that is only heard."""

    visible: SpreadModel = field(default_factory=lambda: SpreadModel(5.0, 0.1, 0.5))
    occluded: SpreadModel = field(default_factory=lambda: SpreadModel(13.0, 0.5, 1.0))
    out_of_view: SpreadModel = field(default_factory=lambda: SpreadModel(30.0, 0.5, 1.0))

    def spread(self, visibility: Visibility) -> SpreadModel:
        return {
            Visibility.VISIBLE: self.visible,
            Visibility.OCCLUDED: self.occluded,
            Visibility.OUT_OF_VIEW: self.out_of_view,
        }[Visibility(visibility)]


DEFAULT_UNCERTAINTY = PositionUncertainty()


@dataclass(frozen=True)
class Hypothesis:
    """``vision_msgs/ObjectHypothesis``: a class name and its score in [0, 1]."""

    class_id: str
    score: float


@dataclass(frozen=True)
class Detection:
    """One ``vision_msgs/Detection3D`` in plain values (the header is the array's).

    ``position_m``: [3] in the header's frame [m]; ``covariance``: [6, 6] (x, y, z [m], roll,
    pitch, yaw [rad]); ``hypotheses``: best first; ``id``: the track id, "" when untracked.
    """

    id: str
    hypotheses: tuple[Hypothesis, ...]
    position_m: np.ndarray
    covariance: np.ndarray
    size_m: tuple[float, float, float] = (BBOX_SIZE_M, BBOX_SIZE_M, BBOX_SIZE_M)


def position_covariance(direction: np.ndarray, distance_m: float, spread: SpreadModel) -> np.ndarray:
    """[3, 3] covariance [m^2] of a position ``distance_m * direction``: ``spread``'s range
    variance along the unit direction, its angular spread times the distance across it."""
    u = np.asarray(direction, dtype=np.float64)
    u = u / max(float(np.linalg.norm(u)), 1e-12)
    along = np.outer(u, u)
    tangential_std = max(distance_m, MIN_RANGE_M) * math.radians(spread.angular_std_deg)
    return spread.range_std_m(distance_m) ** 2 * along + tangential_std**2 * (np.eye(3) - along)


def pose_covariance(position: np.ndarray) -> np.ndarray:
    """The [6, 6] pose covariance of a [3, 3] position covariance and an unknown orientation."""
    covariance = np.zeros((6, 6))
    covariance[:3, :3] = position
    covariance[3:, 3:] = np.eye(3) * ORIENTATION_VARIANCE
    return covariance


def hypotheses(
    hazard: HazardEstimateData,
    class_names: Sequence[str],
    max_hypotheses: int = MAX_HYPOTHESES,
    min_score: float = MIN_SCORE,
) -> tuple[Hypothesis, ...]:
    """The hazard's class hypotheses, best first (see the module docstring)."""
    probabilities = np.asarray(hazard.class_probabilities, dtype=np.float64).reshape(-1)
    if probabilities.size != len(class_names):
        return (Hypothesis(hazard.class_name, float(hazard.confidence)),)
    ranked = sorted(range(1, len(class_names)), key=lambda i: (-probabilities[i], i))
    kept = [i for i in ranked if probabilities[i] >= min_score][:max_hypotheses]
    return tuple(Hypothesis(class_names[i], float(probabilities[i])) for i in kept)


def hazard_detection(
    hazard: HazardEstimateData,
    class_names: Sequence[str],
    uncertainty: PositionUncertainty = DEFAULT_UNCERTAINTY,
) -> Detection:
    """One hazard (in the microphone frame) -> its ``Detection``."""
    direction = np.asarray(hazard.direction, dtype=np.float64)
    direction = direction / max(float(np.linalg.norm(direction)), 1e-12)
    distance = float(hazard.distance)
    spread = uncertainty.spread(hazard.visibility)
    return Detection(
        id=str(hazard.track_id) if hazard.track_id else "",
        hypotheses=hypotheses(hazard, class_names),
        position_m=direction * distance,
        covariance=pose_covariance(position_covariance(direction, distance, spread)),
    )


def hazard_detections(
    hazards: Sequence[HazardEstimateData],
    class_names: Sequence[str],
    uncertainty: PositionUncertainty = DEFAULT_UNCERTAINTY,
) -> list[Detection]:
    return [hazard_detection(h, class_names, uncertainty) for h in hazards]


@dataclass(frozen=True)
class RigidTransform:
    """``p_target = rotation @ p_source + translation_m``: a tf2 transform target <- source."""

    rotation: np.ndarray  # [3, 3]
    translation_m: np.ndarray  # [3]

    @classmethod
    def from_message(cls, transform: Any) -> RigidTransform:
        """A ``geometry_msgs/Transform`` (translation, rotation quaternion x, y, z, w)."""
        t, q = transform.translation, transform.rotation
        rotation = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()  # normalises q
        return cls(rotation, np.array([t.x, t.y, t.z], dtype=np.float64))


def transform_detection(detection: Detection, transform: RigidTransform) -> Detection:
    """``detection`` in the transform's target frame: the position moved, the covariance rotated
    (``R C R^T`` for both blocks); the orientation stays unknown."""
    block = np.zeros((6, 6))
    block[:3, :3] = block[3:, 3:] = transform.rotation
    return Detection(
        id=detection.id,
        hypotheses=detection.hypotheses,
        position_m=transform.rotation @ detection.position_m + transform.translation_m,
        covariance=block @ detection.covariance @ block.T,
        size_m=detection.size_m,
    )


def detection_array_message(new: MessageConstructors, header: Any, detections: Sequence[Detection]) -> Any:
    """``vision_msgs/Detection3DArray`` of ``detections``; each detection repeats ``header``."""

    def point(xyz: np.ndarray) -> Any:
        return new["geometry_msgs/msg/Point"](x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))

    def pose(position: np.ndarray) -> Any:
        identity = new["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)
        return new["geometry_msgs/msg/Pose"](position=point(position), orientation=identity)

    def detection_message(detection: Detection) -> Any:
        covariance = [float(v) for v in np.asarray(detection.covariance, dtype=np.float64).reshape(36)]
        results = [
            new["vision_msgs/msg/ObjectHypothesisWithPose"](
                hypothesis=new["vision_msgs/msg/ObjectHypothesis"](class_id=h.class_id, score=float(h.score)),
                pose=new["geometry_msgs/msg/PoseWithCovariance"](
                    pose=pose(detection.position_m), covariance=covariance
                ),
            )
            for h in detection.hypotheses
        ]
        size = detection.size_m
        bbox = new["vision_msgs/msg/BoundingBox3D"](
            center=pose(detection.position_m),
            size=new["geometry_msgs/msg/Vector3"](x=float(size[0]), y=float(size[1]), z=float(size[2])),
        )
        return new["vision_msgs/msg/Detection3D"](header=header, results=results, bbox=bbox, id=detection.id)

    return new["vision_msgs/msg/Detection3DArray"](
        header=header, detections=[detection_message(d) for d in detections]
    )
