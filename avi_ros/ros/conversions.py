"""Messages <-> core values, without cv_bridge.

Decoding goes through ``avi_ros.sensor_decoding`` (shared with the bag replay), so a bad
message raises ``SensorInputError`` with a reason key. Encoding helpers build the messages
the node publishes and the ones tests and benches send to it.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Vector3
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from avi_ros.audio import SAMPLE_RATE, encode_pcm
from avi_ros.geometry import CameraIntrinsics
from avi_ros.msg import FoaAudio, HazardEstimate, HazardEstimateArray
from avi_ros.sensor_decoding import (
    FoaChunk,
    decode_color_image,
    decode_depth_image,
    decode_foa_chunk,
    intrinsics_from_camera_info,
)
from avi_ros.types import HazardEstimateData

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(stamp_ns: int) -> Time:
    return Time(sec=int(stamp_ns // NS_PER_S), nanosec=int(stamp_ns % NS_PER_S))


def make_header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


# --- decoding --------------------------------------------------------------------------------


def foa_from_msg(msg: FoaAudio) -> FoaChunk:
    """FoaAudio -> float32 [4, samples] ACN/SN3D at 24 kHz (raises SensorInputError)."""
    return decode_foa_chunk(
        msg.data,
        msg.format,
        int(msg.sample_rate),
        int(msg.channel_count),
        int(msg.frame_sample_count),
        msg.channel_order,
        msg.normalization,
    )


def rgb_from_msg(msg: Image) -> np.ndarray:
    """Colour Image -> uint8 [H, W, 3] RGB (raises SensorInputError)."""
    return decode_color_image(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))


def depth_from_msg(msg: Image) -> np.ndarray:
    """Depth Image (16UC1 mm or 32FC1 m) -> float32 [H, W] metres (raises SensorInputError)."""
    return decode_depth_image(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))


def intrinsics_from_msg(msg: CameraInfo, image_shape: tuple) -> CameraIntrinsics:
    """CameraInfo -> intrinsics at the RGB image's size (raises SensorInputError)."""
    return intrinsics_from_camera_info(np.asarray(msg.k), int(msg.width), int(msg.height), image_shape)


# --- encoding --------------------------------------------------------------------------------


def foa_to_msg(
    audio: np.ndarray,
    stamp_ns: int,
    frame_id: str,
    sample_format: str = "float32",
    sample_rate: int = SAMPLE_RATE,
) -> FoaAudio:
    """float [channels, samples] ACN/SN3D -> FoaAudio; ``stamp_ns`` is the first sample's time."""
    return FoaAudio(
        header=make_header(stamp_ns, frame_id),
        format=sample_format,
        sample_rate=int(sample_rate),
        channel_count=int(audio.shape[0]),
        frame_sample_count=int(audio.shape[1]),
        channel_order="ACN",
        normalization="SN3D",
        data=encode_pcm(audio, sample_format),
    )


def image_to_msg(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """A contiguous [H, W] or [H, W, C] array -> Image with the given encoding (little-endian)."""
    array = np.ascontiguousarray(pixels)
    height, width = array.shape[:2]
    return Image(
        header=header,
        height=int(height),
        width=int(width),
        encoding=encoding,
        is_bigendian=0,
        step=int(array.strides[0]),
        data=array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(),
    )


def depth_to_msg(depth_m: np.ndarray, header: Header, encoding: str = "32FC1") -> Image:
    """float depth [H, W] in metres -> 32FC1 (metres) or 16UC1 (millimetres; invalid -> 0)."""
    if encoding == "32FC1":
        return image_to_msg(depth_m.astype(np.float32), encoding, header)
    millimetres = np.where(np.isfinite(depth_m), np.round(depth_m * 1000.0), 0.0)
    return image_to_msg(np.clip(millimetres, 0, 65535).astype(np.uint16), encoding, header)


def camera_info_to_msg(intrinsics: CameraIntrinsics, header: Header) -> CameraInfo:
    return CameraInfo(
        header=header,
        width=int(intrinsics.width),
        height=int(intrinsics.height),
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=intrinsics.matrix.reshape(-1).tolist(),
        r=np.eye(3).reshape(-1).tolist(),
        p=np.hstack([intrinsics.matrix, np.zeros((3, 1))]).reshape(-1).tolist(),
    )


def hazard_to_msg(hazard: HazardEstimateData) -> HazardEstimate:
    direction = np.asarray(hazard.direction, dtype=np.float64)
    return HazardEstimate(
        class_id=int(hazard.class_id),
        class_name=hazard.class_name,
        class_probabilities=np.asarray(hazard.class_probabilities, dtype=np.float32).tolist(),
        azimuth=float(hazard.azimuth),
        elevation=float(hazard.elevation),
        distance=float(hazard.distance),
        direction=Vector3(x=float(direction[0]), y=float(direction[1]), z=float(direction[2])),
        confidence=float(hazard.confidence),
        occlusion_level=float(hazard.occlusion_level),
        visibility=int(hazard.visibility),
        audio_weight=float(hazard.audio_weight),
        visual_weight=float(hazard.visual_weight),
        risk_level=int(hazard.risk_level),
        recommended_action=int(hazard.recommended_action),
    )


def hazards_to_msg(hazards: list[HazardEstimateData], header: Header) -> HazardEstimateArray:
    return HazardEstimateArray(header=header, hazards=[hazard_to_msg(h) for h in hazards])
