"""Core values -> rclpy messages, without cv_bridge.

Every message is built by the core builders of ``avi_ros.message_builders`` (shared with the
bag writer) with rclpy's message classes; these functions only bind them. Decoding goes the
other way through ``avi_ros.sensor_decoding`` (shared with the bag replay).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from avi_ros import message_builders as build
from avi_ros.audio import SAMPLE_RATE
from avi_ros.geometry import CameraIntrinsics
from avi_ros.hazard_markers import MarkerStyle, hazard_marker_specs, track_marker_specs
from avi_ros.interop.detections import Detection, detection_array_message
from avi_ros.sensor_decoding import stamp_to_ns as stamp_to_ns  # re-exported: the node's stamps
from avi_ros.types import HazardEstimateData

if TYPE_CHECKING:  # classes are looked up by name when built, so importing this needs none of them
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection3DArray
    from visualization_msgs.msg import MarkerArray

    from avi_ros.msg import FoaAudio, HazardEstimateArray
    from avi_ros.tracking import TrackView


@cache
def ros_message_class(msgtype: str) -> type:
    """The rclpy message class of ``pkg/msg/Name``; ImportError/AttributeError when not installed."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class RclpyConstructors:
    """``pkg/msg/Name`` -> its rclpy class: the constructors the core builders take."""

    def __getitem__(self, msgtype: str) -> type:
        return ros_message_class(msgtype)


ROS_MESSAGES = RclpyConstructors()


def ns_to_stamp(stamp_ns: int) -> Time:
    return build.time_message(ROS_MESSAGES, stamp_ns)


def make_header(stamp_ns: int, frame_id: str) -> Header:
    return build.header_message(ROS_MESSAGES, stamp_ns, frame_id)


def foa_to_msg(
    audio: np.ndarray,
    stamp_ns: int,
    frame_id: str,
    sample_format: str = "float32",
    sample_rate: int = SAMPLE_RATE,
) -> FoaAudio:
    """float [channels, samples] ACN/SN3D -> FoaAudio; ``stamp_ns`` is the first sample's time."""
    header = make_header(stamp_ns, frame_id)
    return build.foa_audio_message(ROS_MESSAGES, header, audio, sample_format, sample_rate)


def image_to_msg(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """A contiguous [H, W] or [H, W, C] array -> Image with the given encoding (little-endian)."""
    return build.image_message(ROS_MESSAGES, header, pixels, encoding)


def depth_to_msg(depth_m: np.ndarray, header: Header, encoding: str = "32FC1") -> Image:
    """float depth [H, W] in metres -> 32FC1 (metres) or 16UC1 (millimetres; invalid -> 0)."""
    return build.depth_image_message(ROS_MESSAGES, header, depth_m, encoding)


def camera_info_to_msg(intrinsics: CameraIntrinsics, header: Header) -> CameraInfo:
    return build.camera_info_message(ROS_MESSAGES, header, intrinsics)


def hazards_to_msg(hazards: list[HazardEstimateData], header: Header) -> HazardEstimateArray:
    return build.hazard_array_message(ROS_MESSAGES, header, hazards)


def hazard_markers(
    hazards: list[HazardEstimateData], header: Header, style: MarkerStyle, tracks: Sequence[TrackView] = ()
) -> MarkerArray:
    """RViz markers for ``hazards`` (see ``avi_ros.hazard_markers``): DELETEALL, then an arrow and
    a text label per hazard, then a trail and a label per track of ``tracks``."""
    specs = hazard_marker_specs(hazards, style) + track_marker_specs(list(tracks), style)
    return build.marker_array_message(ROS_MESSAGES, header, specs)


def detections_to_msg(detections: Sequence[Detection], header: Header) -> Detection3DArray:
    """vision_msgs/Detection3DArray of ``avi_ros.interop.detections`` values (vision_msgs needed)."""
    return detection_array_message(ROS_MESSAGES, header, detections)
