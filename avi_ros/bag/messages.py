"""Core values -> rosbags messages, for the bags this package writes.

Every message is built by the core builders of ``avi_ros.message_builders``, the same ones the
node uses for its rclpy messages, with the constructors of the avi_ros type store; this class
only binds them to a stamp [ns] and a frame id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rosbags.typesys.store import Typestore

from avi_ros import message_builders as build
from avi_ros.bag.typestore import RosbagsConstructors
from avi_ros.geometry import CameraIntrinsics
from avi_ros.hazard_markers import MarkerStyle, hazard_marker_specs
from avi_ros.types import HazardEstimateData


class MessageFactory:
    """Builds the messages of a bag from numpy arrays and core types."""

    def __init__(self, store: Typestore | None = None) -> None:
        self.new = RosbagsConstructors(store)

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        return build.header_message(self.new, stamp_ns, frame_id)

    def rgb_image(self, stamp_ns: int, frame_id: str, rgb: np.ndarray) -> Any:
        """uint8 [H, W, 3] RGB -> ``rgb8`` Image."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"RGB image must be uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
        return build.image_message(self.new, self.header(stamp_ns, frame_id), rgb, "rgb8")

    def mono8_image(self, stamp_ns: int, frame_id: str, mask: np.ndarray) -> Any:
        """uint8 [H, W] -> ``mono8`` Image (occlusion masks: 255 blocked)."""
        pixels = np.asarray(mask, dtype=np.uint8)
        return build.image_message(self.new, self.header(stamp_ns, frame_id), pixels, "mono8")

    def depth_image(self, stamp_ns: int, frame_id: str, depth_m: np.ndarray, encoding: str = "16UC1") -> Any:
        """float [H, W] metres -> 16UC1 millimetres (0 = no reading) or 32FC1 metres (NaN stays NaN)."""
        return build.depth_image_message(self.new, self.header(stamp_ns, frame_id), depth_m, encoding)

    def camera_info(self, stamp_ns: int, frame_id: str, intrinsics: CameraIntrinsics) -> Any:
        """A distortion-free pinhole CameraInfo."""
        return build.camera_info_message(self.new, self.header(stamp_ns, frame_id), intrinsics)

    def foa_audio(
        self, stamp_ns: int, frame_id: str, audio: np.ndarray, sample_format: str = "float32"
    ) -> Any:
        """float [4, samples] ACN/SN3D at 24 kHz -> FoaAudio (stamp = first sample's capture time)."""
        return build.foa_audio_message(self.new, self.header(stamp_ns, frame_id), audio, sample_format)

    def hazard_array(self, stamp_ns: int, frame_id: str, estimates: list[HazardEstimateData]) -> Any:
        return build.hazard_array_message(self.new, self.header(stamp_ns, frame_id), estimates)

    def hazard_markers(
        self, stamp_ns: int, frame_id: str, estimates: list[HazardEstimateData], style: MarkerStyle
    ) -> Any:
        """The node's MarkerArray for ``estimates`` (see ``avi_ros.hazard_markers``)."""
        specs = hazard_marker_specs(estimates, style)
        return build.marker_array_message(self.new, self.header(stamp_ns, frame_id), specs)

    def static_transforms(
        self, stamp_ns: int, transforms: list[tuple[str, str, np.ndarray, np.ndarray]]
    ) -> Any:
        """TFMessage from (parent, child, translation [3] m, quaternion [4] xyzw) tuples."""
        new = self.new
        stamped = [
            new["geometry_msgs/msg/TransformStamped"](
                header=self.header(stamp_ns, parent),
                child_frame_id=child,
                transform=new["geometry_msgs/msg/Transform"](
                    translation=new["geometry_msgs/msg/Vector3"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
                    rotation=new["geometry_msgs/msg/Quaternion"](
                        x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])
                    ),
                ),
            )
            for parent, child, t, q in transforms
        ]
        return new["tf2_msgs/msg/TFMessage"](transforms=stamped)
