"""Core values <-> ROS messages of either kind: rclpy classes (the node) or rosbags dataclasses (bags).

Both kinds have the same field names, so each message is built once, here, from constructors
the caller passes by type name: ``new["sensor_msgs/msg/Image"](height=..., ...)``. A
constructor fills the fields it is not given with their defaults, as rclpy's classes do
(``avi_ros.bag.typestore.MessageConstructors`` does the same for rosbags), and takes unsigned
byte arrays as ``bytes``, which rclpy copies fastest. Nothing here imports ROS.

Units follow the message contracts: stamps [ns], angles [rad], distances [m], depth 16UC1 [mm]
or 32FC1 [m]; audio is float [channels, samples] ACN/SN3D.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from avi_ros.audio import SAMPLE_RATE, encode_pcm
from avi_ros.decision.inference import Assessment
from avi_ros.geometry import CameraIntrinsics
from avi_ros.hazard_markers import MarkerSpec
from avi_ros.sensor_decoding import stamp_to_ns
from avi_ros.taxonomy import Action, RiskLevel, Visibility
from avi_ros.types import HazardEstimateData, TrackState
from avi_ros.units import MILLIMETRES_PER_METRE, NS_PER_S

DEPTH_ENCODINGS = ("16UC1", "32FC1")
ASSESSMENT_TYPE = "avi_ros/msg/HazardAssessment"  # the decision stage's output
UINT16_MAX = 65535


class MessageConstructors(Protocol):
    """``pkg/msg/Name`` -> a callable that builds that message from keyword fields."""

    def __getitem__(self, msgtype: str) -> Callable[..., Any]: ...


# --- time (``avi_ros.sensor_decoding.stamp_to_ns`` is the inverse) -----------------------------


def time_message(new: MessageConstructors, stamp_ns: int) -> Any:
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return new["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def duration_message(new: MessageConstructors, seconds: float) -> Any:
    sec, nanosec = divmod(round(seconds * NS_PER_S), NS_PER_S)
    return new["builtin_interfaces/msg/Duration"](sec=sec, nanosec=nanosec)


def header_message(new: MessageConstructors, stamp_ns: int, frame_id: str) -> Any:
    return new["std_msgs/msg/Header"](stamp=time_message(new, stamp_ns), frame_id=frame_id)


# --- sensor messages -------------------------------------------------------------------------


def foa_audio_message(
    new: MessageConstructors,
    header: Any,
    audio: np.ndarray,
    sample_format: str = "float32",
    sample_rate: int = SAMPLE_RATE,
) -> Any:
    """float [channels, samples] ACN/SN3D -> FoaAudio; the header stamp is the first sample's time."""
    if audio.ndim != 2:
        raise ValueError(f"audio must be [channels, samples], got shape {audio.shape}")
    return new["avi_ros/msg/FoaAudio"](
        header=header,
        format=sample_format,
        sample_rate=int(sample_rate),
        channel_count=int(audio.shape[0]),
        frame_sample_count=int(audio.shape[1]),
        channel_order="ACN",
        normalization="SN3D",
        data=encode_pcm(audio, sample_format),
    )


def image_message(new: MessageConstructors, header: Any, pixels: np.ndarray, encoding: str) -> Any:
    """An [H, W] or [H, W, C] array -> Image with ``encoding``, little-endian, unpadded rows."""
    array = np.ascontiguousarray(pixels)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    height, width = array.shape[:2]
    return new["sensor_msgs/msg/Image"](
        header=header,
        height=int(height),
        width=int(width),
        encoding=encoding,
        is_bigendian=0,
        step=int(array.strides[0]),
        data=array.tobytes(),
    )


def depth_image_message(new: MessageConstructors, header: Any, depth_m: np.ndarray, encoding: str) -> Any:
    """float depth [H, W] in metres -> 32FC1 metres (NaN/inf kept) or 16UC1 millimetres, where
    0 means no reading: non-finite, non-positive and beyond-range (> 65.535 m) depths."""
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got '{encoding}'")
    depth = np.asarray(depth_m, dtype=np.float64)
    if encoding == "32FC1":
        return image_message(new, header, depth.astype(np.float32), encoding)
    valid = np.isfinite(depth) & (depth > 0.0)
    millimetres = np.where(valid, np.round(depth * MILLIMETRES_PER_METRE), 0.0)
    millimetres[millimetres > UINT16_MAX] = 0.0
    return image_message(new, header, millimetres.astype(np.uint16), encoding)


def camera_info_message(new: MessageConstructors, header: Any, intrinsics: CameraIntrinsics) -> Any:
    """A distortion-free pinhole CameraInfo (plumb_bob with zero coefficients)."""
    k = intrinsics.matrix
    return new["sensor_msgs/msg/CameraInfo"](
        header=header,
        width=int(intrinsics.width),
        height=int(intrinsics.height),
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=k.reshape(-1).tolist(),
        r=np.eye(3).reshape(-1).tolist(),
        p=np.hstack([k, np.zeros((3, 1))]).reshape(-1).tolist(),
    )


# --- hazards ---------------------------------------------------------------------------------


def hazard_message(new: MessageConstructors, hazard: HazardEstimateData) -> Any:
    """HazardEstimateData -> HazardEstimate, every field set (``hazard_from_message`` inverts it)."""
    direction = np.asarray(hazard.direction, dtype=np.float64)
    return new["avi_ros/msg/HazardEstimate"](
        class_id=int(hazard.class_id),
        class_name=hazard.class_name,
        class_probabilities=np.asarray(hazard.class_probabilities, dtype=np.float32),
        azimuth=float(hazard.azimuth),
        elevation=float(hazard.elevation),
        distance=float(hazard.distance),
        direction=new["geometry_msgs/msg/Vector3"](
            x=float(direction[0]), y=float(direction[1]), z=float(direction[2])
        ),
        confidence=float(hazard.confidence),
        occlusion_level=float(hazard.occlusion_level),
        visibility=int(hazard.visibility),
        audio_weight=float(hazard.audio_weight),
        visual_weight=float(hazard.visual_weight),
        risk_level=int(hazard.risk_level),
        recommended_action=int(hazard.recommended_action),
        track_id=int(hazard.track_id),
        track_state=int(hazard.track_state),
        first_seen=time_message(new, hazard.first_seen_ns),
        track_age=float(hazard.track_age_s),
        angular_velocity=float(hazard.angular_velocity),
        range_rate=float(hazard.range_rate),
    )


def hazard_array_message(new: MessageConstructors, header: Any, hazards: list[HazardEstimateData]) -> Any:
    return new["avi_ros/msg/HazardEstimateArray"](
        header=header, hazards=[hazard_message(new, h) for h in hazards]
    )


def hazard_from_message(msg: Any) -> HazardEstimateData:
    """A HazardEstimate (rclpy or rosbags) -> HazardEstimateData (ground truth in reports)."""
    return HazardEstimateData(
        class_id=int(msg.class_id),
        class_name=str(msg.class_name),
        class_probabilities=np.asarray(msg.class_probabilities, dtype=np.float32),
        azimuth=float(msg.azimuth),
        elevation=float(msg.elevation),
        distance=float(msg.distance),
        direction=np.array([msg.direction.x, msg.direction.y, msg.direction.z], dtype=np.float64),
        confidence=float(msg.confidence),
        occlusion_level=float(msg.occlusion_level),
        visibility=Visibility(int(msg.visibility)),
        audio_weight=float(msg.audio_weight),
        visual_weight=float(msg.visual_weight),
        risk_level=RiskLevel(int(msg.risk_level)),
        recommended_action=Action(int(msg.recommended_action)),
        track_id=int(msg.track_id),
        track_state=TrackState(int(msg.track_state)),
        first_seen_ns=stamp_to_ns(msg.first_seen),
        track_age_s=float(msg.track_age),
        angular_velocity=float(msg.angular_velocity),
        range_rate=float(msg.range_rate),
    )


# --- markers ---------------------------------------------------------------------------------


def marker_array_message(new: MessageConstructors, header: Any, specs: list[MarkerSpec]) -> Any:
    """MarkerArray from ``avi_ros.hazard_markers`` specs, every marker in ``header``'s frame and stamp."""

    def point(xyz: tuple[float, float, float]) -> Any:
        return new["geometry_msgs/msg/Point"](x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))

    markers = [
        new["visualization_msgs/msg/Marker"](
            header=header,
            ns=spec.namespace,
            id=spec.marker_id,
            type=spec.marker_type,
            action=spec.action,
            pose=new["geometry_msgs/msg/Pose"](
                position=point(spec.position),
                orientation=new["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
            ),
            scale=new["geometry_msgs/msg/Vector3"](x=spec.scale[0], y=spec.scale[1], z=spec.scale[2]),
            color=new["std_msgs/msg/ColorRGBA"](
                r=spec.color[0], g=spec.color[1], b=spec.color[2], a=spec.color[3]
            ),
            lifetime=duration_message(new, spec.lifetime_s),
            points=[point(p) for p in spec.points],
            text=spec.text,
        )
        for spec in specs
    ]
    return new["visualization_msgs/msg/MarkerArray"](markers=markers)


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
