"""The two values that cross every boundary of the package: a Frame in, estimates out.

A ``Frame`` is what the node and the bag replay hand to the pipeline, whose
``avi_ros.preprocess.Preprocessor`` turns it into model inputs exactly as training turns its
scenes (``training.data.prepare_sample`` calls the same one). A ``HazardEstimateData``
carries every field of ``msg/HazardEstimate.msg`` without importing ROS, and the ROS layer
copies it into the message at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from avi_ros.audio import SAMPLE_RATE
from avi_ros.geometry import CameraIntrinsics
from avi_ros.taxonomy import Action, RiskLevel, Visibility

# The default confidence at or above which a hazard estimate (not of class none) is published by
# the node, replay and predict: the F20 optimum, on a 0.05 grid, of the shipped model on its
# validation split (docs/results/operating_points_val.json). The confidence is a calibrated "a
# hazard is there" probability; on that split F20 stays within about a point from 0.3 to 0.6
# (38-39 %) while the false alarms on frames without a hazard fall from 42 % to 20 %, so the
# optimum also publishes half as many false alarms as 0.3. Lower it for fewer missed hazards (more
# out-of-view ones), raise it for fewer false alarms.
DEFAULT_CONFIDENCE_THRESHOLD = 0.55


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


class TrackState(IntEnum):
    """Whether an estimate belongs to a track, and how sure the tracker is of it
    (HazardEstimate.TRACK_NONE, ...): NONE is untracked (``track_id`` 0); TENTATIVE is a track
    seen in fewer than the tracker's ``min_hits`` frames (it may be clutter and may end soon);
    CONFIRMED is a track seen at least that often. A track keeps its id when it is confirmed."""

    NONE = 0
    TENTATIVE = 1
    CONFIRMED = 2


@dataclass
class HazardEstimateData:
    """One hazard in the microphone frame; mirrors HazardEstimate.msg field for field.

    Angles in radians (REP-103), distance in metres, probabilities and weights in [0, 1].
    The track fields stay at their defaults (``track_id`` 0, ``track_state`` NONE: untracked)
    until ``avi_ros.tracking`` fills them: ``track_state`` says whether the track is tentative or
    confirmed, ``first_seen_ns`` is the stamp [ns] of the track's first frame, ``track_age_s`` the
    time since then [s], ``angular_velocity`` the azimuth rate of the hazard's own motion [rad/s,
    counter-clockwise positive] (the robot's turning and driving removed when odometry was given),
    and ``range_rate`` the rate of change of its distance from the robot [m/s, negative:
    approaching].
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
    track_state: TrackState = TrackState.NONE
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
