"""The two values that cross every boundary of the package: a Frame in, estimates out.

A ``Frame`` is what the node and the bag replay hand to the pipeline, whose
``avi_ros.preprocess.Preprocessor`` turns it into model inputs exactly as training turns its
scenes (``training.data.prepare_sample`` calls the same one). A ``HazardEstimateData``
carries every field of ``msg/HazardEstimate.msg`` without importing ROS, and the ROS layer
copies it into the message at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avi_ros.audio import SAMPLE_RATE
from avi_ros.geometry import CameraIntrinsics
from avi_ros.taxonomy import Action, RiskLevel, Visibility


@dataclass
class Frame:
    """One synchronised RGB-D frame and the audio window that ends at its stamp.

    rgb: uint8 [H, W, 3]. depth_m: float32 [H, W] in metres; 0, NaN and inf mean no reading.
    audio: float32 [4, samples], ACN/SN3D at ``sample_rate`` Hz. stamp_ns: RGB-D stamp [ns].
    """

    rgb: np.ndarray
    depth_m: np.ndarray
    intrinsics: CameraIntrinsics
    audio: np.ndarray
    stamp_ns: int = 0
    sample_rate: int = SAMPLE_RATE


@dataclass
class HazardEstimateData:
    """One hazard in the microphone frame; mirrors HazardEstimate.msg field for field.

    Angles in radians (REP-103), distance in metres, probabilities and weights in [0, 1].
    The track fields stay at their defaults (``track_id`` 0: untracked) until
    ``avi_ros.tracking`` fills them: ``first_seen_ns`` is the stamp [ns] of the track's first
    frame, ``track_age_s`` the time since then [s], ``angular_velocity`` the azimuth rate
    [rad/s, counter-clockwise positive] with the robot's own yaw rate removed when odometry was
    given, and ``range_rate`` the rate of change of the distance [m/s, negative: approaching].
    """

    class_id: int
    class_name: str
    class_probabilities: np.ndarray
    azimuth: float
    elevation: float
    distance: float
    direction: np.ndarray  # unit vector [3]
    confidence: float
    occlusion_level: float
    visibility: Visibility
    audio_weight: float
    visual_weight: float
    risk_level: RiskLevel
    recommended_action: Action
    track_id: int = 0
    first_seen_ns: int = 0
    track_age_s: float = 0.0
    angular_velocity: float = 0.0
    range_rate: float = 0.0


@dataclass
class PipelineResult:
    """Everything the pipeline derives from one Frame.

    ``occlusion_mask``: uint8 [H, W], 255 where the view is blocked or depth is invalid.
    ``hazards``: estimates above the confidence threshold (may be empty).
    ``top``: the model's best guess even when it falls below the threshold, for reports.
    """

    hazards: list[HazardEstimateData]
    top: HazardEstimateData
    occlusion_mask: np.ndarray
    occlusion_level: float
    timings_ms: dict[str, float] = field(default_factory=dict)
