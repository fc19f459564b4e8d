"""Core values -> rosbags message dataclasses, for the bags this package writes.

The ROS layer builds rclpy messages at its edge; bags are written without rclpy, so the
same fields are filled here on the rosbags dataclasses of the avi_ros type store. Units
follow the message contracts: stamps [ns], angles [rad], distances [m], depth 16UC1 [mm]
or 32FC1 [m].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rosbags.typesys.store import Typestore

from avi_ros.audio import FOA_CHANNELS, SAMPLE_RATE, encode_pcm
from avi_ros.bag.typestore import avi_ros_typestore
from avi_ros.geometry import CameraIntrinsics
from avi_ros.sensor_decoding import MILLIMETRES_PER_METRE
from avi_ros.taxonomy import Action, RiskLevel, Visibility
from avi_ros.types import HazardEstimateData

NS_PER_S = 1_000_000_000
DEPTH_ENCODINGS = ("16UC1", "32FC1")
UINT16_MAX = 65535

# Risk -> RGBA, as the node's markers (avi_ros/ros/markers.py): grey, green, amber, red.
RISK_COLOURS: dict[RiskLevel, tuple[float, float, float, float]] = {
    RiskLevel.NONE: (0.6, 0.6, 0.6, 0.8),
    RiskLevel.LOW: (0.1, 0.8, 0.2, 0.9),
    RiskLevel.MEDIUM: (1.0, 0.65, 0.0, 0.95),
    RiskLevel.HIGH: (0.95, 0.1, 0.1, 1.0),
}


@dataclass(frozen=True)
class MarkerStyle:
    """Marker sizes [m] and lifetime [s], with the node's defaults (distance-length arrows)."""

    min_length_m: float = 0.3
    max_length_m: float = 5.0
    lifetime_s: float = 0.5
    shaft_diameter_m: float = 0.05
    head_diameter_m: float = 0.12
    text_height_m: float = 0.2

    def arrow_tip(self, estimate: HazardEstimateData) -> tuple[float, float, float]:
        """End of the arrow [m]: the unit direction times the distance, clamped to the length range."""
        direction = np.asarray(estimate.direction, dtype=np.float64)
        norm = float(np.linalg.norm(direction))
        unit = direction / norm if norm > 0 else np.array([1.0, 0.0, 0.0])
        distance = float(estimate.distance)
        if not np.isfinite(distance) or distance <= 0.0:
            distance = self.min_length_m
        length = float(np.clip(distance, self.min_length_m, self.max_length_m))
        return float(unit[0] * length), float(unit[1] * length), float(unit[2] * length)


class MessageFactory:
    """Builds the messages of a bag from numpy arrays and core types."""

    def __init__(self, store: Typestore | None = None) -> None:
        self.types = (store or avi_ros_typestore()).types

    def header(self, stamp_ns: int, frame_id: str):
        sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
        time_cls = self.types["builtin_interfaces/msg/Time"]
        return self.types["std_msgs/msg/Header"](stamp=time_cls(sec=sec, nanosec=nanosec), frame_id=frame_id)

    def _image(self, stamp_ns: int, frame_id: str, encoding: str, pixels: np.ndarray):
        height, width = pixels.shape[:2]
        data = np.ascontiguousarray(pixels).view(np.uint8).reshape(-1)
        return self.types["sensor_msgs/msg/Image"](
            header=self.header(stamp_ns, frame_id),
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=0,
            step=data.size // height,
            data=data,
        )

    def rgb_image(self, stamp_ns: int, frame_id: str, rgb: np.ndarray):
        """uint8 [H, W, 3] RGB -> ``rgb8`` Image."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"RGB image must be uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
        return self._image(stamp_ns, frame_id, "rgb8", rgb)

    def mono8_image(self, stamp_ns: int, frame_id: str, mask: np.ndarray):
        """uint8 [H, W] -> ``mono8`` Image (occlusion masks: 255 blocked)."""
        return self._image(stamp_ns, frame_id, "mono8", np.asarray(mask, dtype=np.uint8))

    def depth_image(self, stamp_ns: int, frame_id: str, depth_m: np.ndarray, encoding: str = "16UC1"):
        """float [H, W] metres -> 16UC1 millimetres (0 = no reading) or 32FC1 metres (NaN stays NaN)."""
        if encoding not in DEPTH_ENCODINGS:
            raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got '{encoding}'")
        depth = np.asarray(depth_m, dtype=np.float64)
        if encoding == "32FC1":
            return self._image(stamp_ns, frame_id, encoding, depth.astype("<f4"))
        valid = np.isfinite(depth) & (depth > 0.0)
        mm = np.where(valid, np.round(depth * MILLIMETRES_PER_METRE), 0.0)
        mm[mm > UINT16_MAX] = 0  # beyond the sensor's range: no reading
        return self._image(stamp_ns, frame_id, encoding, mm.astype("<u2"))

    def camera_info(self, stamp_ns: int, frame_id: str, intrinsics: CameraIntrinsics):
        """A distortion-free pinhole CameraInfo (plumb_bob with zero coefficients)."""
        k = intrinsics.matrix
        p = np.hstack([k, np.zeros((3, 1))])
        roi = self.types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        return self.types["sensor_msgs/msg/CameraInfo"](
            header=self.header(stamp_ns, frame_id),
            height=intrinsics.height,
            width=intrinsics.width,
            distortion_model="plumb_bob",
            d=np.zeros(5),
            k=k.reshape(-1).astype(np.float64),
            r=np.eye(3).reshape(-1),
            p=p.reshape(-1).astype(np.float64),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

    def foa_audio(self, stamp_ns: int, frame_id: str, audio: np.ndarray, sample_format: str = "float32"):
        """float [4, samples] ACN/SN3D at 24 kHz -> FoaAudio (stamp = first sample's capture time)."""
        if audio.ndim != 2 or audio.shape[0] != FOA_CHANNELS:
            raise ValueError(f"FOA audio must be [4, samples], got {audio.shape}")
        return self.types["avi_ros/msg/FoaAudio"](
            header=self.header(stamp_ns, frame_id),
            format=sample_format,
            sample_rate=SAMPLE_RATE,
            channel_count=FOA_CHANNELS,
            frame_sample_count=audio.shape[1],
            channel_order="ACN",
            normalization="SN3D",
            data=np.frombuffer(encode_pcm(audio, sample_format), dtype=np.uint8),
        )

    def hazard(self, estimate: HazardEstimateData):
        direction = np.asarray(estimate.direction, dtype=np.float64)
        return self.types["avi_ros/msg/HazardEstimate"](
            class_id=int(estimate.class_id),
            class_name=estimate.class_name,
            class_probabilities=np.asarray(estimate.class_probabilities, dtype=np.float32),
            azimuth=float(estimate.azimuth),
            elevation=float(estimate.elevation),
            distance=float(estimate.distance),
            direction=self.types["geometry_msgs/msg/Vector3"](
                x=float(direction[0]), y=float(direction[1]), z=float(direction[2])
            ),
            confidence=float(estimate.confidence),
            occlusion_level=float(estimate.occlusion_level),
            visibility=int(estimate.visibility),
            audio_weight=float(estimate.audio_weight),
            visual_weight=float(estimate.visual_weight),
            risk_level=int(estimate.risk_level),
            recommended_action=int(estimate.recommended_action),
        )

    def hazard_array(self, stamp_ns: int, frame_id: str, estimates: list[HazardEstimateData]):
        return self.types["avi_ros/msg/HazardEstimateArray"](
            header=self.header(stamp_ns, frame_id), hazards=[self.hazard(e) for e in estimates]
        )

    def static_transforms(self, stamp_ns: int, transforms: list[tuple[str, str, np.ndarray, np.ndarray]]):
        """TFMessage from (parent, child, translation [3] m, quaternion [4] xyzw) tuples."""
        vec, quat = self.types["geometry_msgs/msg/Vector3"], self.types["geometry_msgs/msg/Quaternion"]
        stamped = [
            self.types["geometry_msgs/msg/TransformStamped"](
                header=self.header(stamp_ns, parent),
                child_frame_id=child,
                transform=self.types["geometry_msgs/msg/Transform"](
                    translation=vec(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                    rotation=quat(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
                ),
            )
            for parent, child, t, q in transforms
        ]
        return self.types["tf2_msgs/msg/TFMessage"](transforms=stamped)

    def hazard_markers(
        self, stamp_ns: int, frame_id: str, estimates: list[HazardEstimateData], style: MarkerStyle
    ):
        """MarkerArray like the node's: DELETEALL, then an ARROW (``hazards``) and a TEXT label
        (``labels``) per hazard, coloured by risk, with a lifetime."""
        types = self.types
        marker_cls, point, colour_cls = (
            types["visualization_msgs/msg/Marker"],
            types["geometry_msgs/msg/Point"],
            types["std_msgs/msg/ColorRGBA"],
        )
        lifetime = types["builtin_interfaces/msg/Duration"](
            sec=int(style.lifetime_s), nanosec=round((style.lifetime_s % 1.0) * 1e9)
        )
        header = self.header(stamp_ns, frame_id)

        def marker(kind: int, action: int, ns: str, index: int, **fields):
            base = {
                "header": header,
                "ns": ns,
                "id": index,
                "type": kind,
                "action": action,
                "pose": types["geometry_msgs/msg/Pose"](
                    position=point(x=0.0, y=0.0, z=0.0),
                    orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                ),
                "scale": types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                "color": colour_cls(r=0.0, g=0.0, b=0.0, a=0.0),
                "lifetime": types["builtin_interfaces/msg/Duration"](sec=0, nanosec=0),
                "frame_locked": False,
                "points": [],
                "colors": [],
                "texture_resource": "",
                "texture": types["sensor_msgs/msg/CompressedImage"](
                    header=self.header(0, ""), format="", data=np.zeros(0, dtype=np.uint8)
                ),
                "uv_coordinates": [],
                "text": "",
                "mesh_resource": "",
                "mesh_file": types["visualization_msgs/msg/MeshFile"](
                    filename="", data=np.zeros(0, dtype=np.uint8)
                ),
                "mesh_use_embedded_materials": False,
            }
            base.update(fields)
            return marker_cls(**base)

        markers = [marker(marker_cls.ARROW, marker_cls.DELETEALL, "", 0)]
        for index, estimate in enumerate(estimates):
            tip = style.arrow_tip(estimate)
            colour = colour_cls(*RISK_COLOURS[RiskLevel(int(estimate.risk_level))])
            markers.append(
                marker(
                    marker_cls.ARROW,
                    marker_cls.ADD,
                    "hazards",
                    index,
                    points=[point(x=0.0, y=0.0, z=0.0), point(x=tip[0], y=tip[1], z=tip[2])],
                    scale=types["geometry_msgs/msg/Vector3"](
                        x=style.shaft_diameter_m, y=style.head_diameter_m, z=0.0
                    ),
                    color=colour,
                    lifetime=lifetime,
                )
            )
            label_pose = types["geometry_msgs/msg/Pose"](
                position=point(x=tip[0], y=tip[1], z=tip[2] + style.text_height_m),
                orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
            )
            markers.append(
                marker(
                    marker_cls.TEXT_VIEW_FACING,
                    marker_cls.ADD,
                    "labels",
                    index,
                    pose=label_pose,
                    scale=types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=style.text_height_m),
                    color=colour,
                    lifetime=lifetime,
                    text=f"{estimate.class_name} {estimate.confidence:.2f}",
                )
            )
        return types["visualization_msgs/msg/MarkerArray"](markers=markers)


def estimate_from_message(hazard) -> HazardEstimateData:
    """A HazardEstimate message (rosbags or rclpy) -> HazardEstimateData (ground truth in reports)."""
    return HazardEstimateData(
        class_id=int(hazard.class_id),
        class_name=str(hazard.class_name),
        class_probabilities=np.asarray(hazard.class_probabilities, dtype=np.float32),
        azimuth=float(hazard.azimuth),
        elevation=float(hazard.elevation),
        distance=float(hazard.distance),
        direction=np.array([hazard.direction.x, hazard.direction.y, hazard.direction.z], dtype=np.float64),
        confidence=float(hazard.confidence),
        occlusion_level=float(hazard.occlusion_level),
        visibility=Visibility(int(hazard.visibility)),
        audio_weight=float(hazard.audio_weight),
        visual_weight=float(hazard.visual_weight),
        risk_level=RiskLevel(int(hazard.risk_level)),
        recommended_action=Action(int(hazard.recommended_action)),
    )
