"""Sensor messages and raw payloads -> core arrays, with every malformed case named.

The ROS node (rclpy messages) and the bag replay (rosbags messages) carry the same field
names, so both hand their messages to ``decode_foa_message`` and ``decode_rgbd`` and get the
same arrays or the same error. The payload functions below them take plain values.

- FOA audio: PCM bytes + ambisonic conventions -> float32 [4, samples], ACN/SN3D, 24 kHz.
- Images (sensor_msgs/Image encodings): colour -> uint8 [H, W, 3] RGB; depth -> float32
  [H, W] metres (16UC1/mono16 millimetres are scaled; 0, NaN and inf stay "no reading").
- Camera info: the 3x3 K and the image size -> ``CameraIntrinsics``.

Every error is a ``SensorInputError`` with a short ``reason``. The payload functions give the
bare reason (``truncated``); the message functions prefix the stream (``audio.truncated``,
``rgb.truncated``, ``rgbd.size_mismatch``), which is the key the caller counts in diagnostics.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from avi_ros.audio import FOA_CHANNELS, SAMPLE_RATE, AudioFormatError, decode_pcm, resample, to_acn_sn3d
from avi_ros.geometry import CameraIntrinsics


class SensorInputError(ValueError):
    """A message that cannot be used; ``reason`` is a short diagnostics key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def in_stream(self, stream: str) -> SensorInputError:
        """The same error keyed ``stream.reason`` (``rgb.truncated``), as diagnostics count it."""
        return SensorInputError(f"{stream}.{self.reason}", str(self))


Payload = bytes | bytearray | memoryview | np.ndarray


# --- audio -----------------------------------------------------------------------------------

# Counted like an error, though the chunk is still used: a driver at another rate costs CPU.
AUDIO_RESAMPLED = "audio.resampled"


@dataclass
class FoaChunk:
    """A decoded chunk: float32 [4, samples] ACN/SN3D at ``SAMPLE_RATE``.

    ``resampled`` and ``dropped_channels`` say what was converted, so the caller can warn once.
    """

    audio: np.ndarray
    resampled: bool = False
    dropped_channels: int = 0


def decode_foa_chunk(
    data: Payload,
    sample_format: str,
    sample_rate: int,
    channel_count: int,
    frame_sample_count: int,
    channel_order: str,
    normalization: str,
) -> FoaChunk:
    """Decode one FoaAudio payload to ACN/SN3D at 24 kHz.

    Higher-order ambisonics ((N+1)^2 channels, ACN or FuMa) is cut to its first-order part,
    which both orderings keep in the first four channels. Raises ``SensorInputError`` with
    reasons ``bad_format``, ``empty``, ``truncated``, ``non_finite``, ``bad_channels``,
    ``bad_rate`` or ``size_mismatch``.
    """
    root = math.isqrt(channel_count) if channel_count > 0 else 0
    if channel_count < FOA_CHANNELS or root * root != channel_count:
        raise SensorInputError(
            "bad_channels",
            f"FOA audio needs {FOA_CHANNELS} channels (or an ambisonic (N+1)^2 count), got {channel_count}",
        )
    if sample_rate <= 0:
        raise SensorInputError("bad_rate", f"sample_rate must be positive, got {sample_rate} Hz")
    try:
        audio = decode_pcm(bytes(data), sample_format, channel_count)
    except AudioFormatError as exc:
        raise SensorInputError(exc.reason, str(exc)) from exc
    if frame_sample_count and audio.shape[1] != frame_sample_count:
        raise SensorInputError(
            "size_mismatch",
            f"frame_sample_count says {frame_sample_count} samples but the data holds {audio.shape[1]}",
        )
    dropped = channel_count - FOA_CHANNELS
    try:
        foa = to_acn_sn3d(audio[:FOA_CHANNELS], channel_order, normalization)
    except AudioFormatError as exc:
        raise SensorInputError(exc.reason, str(exc)) from exc
    resampled = sample_rate != SAMPLE_RATE
    if resampled:
        foa = resample(foa, sample_rate, SAMPLE_RATE)
    return FoaChunk(np.ascontiguousarray(foa, dtype=np.float32), resampled, dropped)


# --- images ----------------------------------------------------------------------------------

# encoding -> (channels, numpy dtype without byte order)
COLOR_ENCODINGS: dict[str, tuple[int, str]] = {
    "rgb8": (3, "u1"),
    "bgr8": (3, "u1"),
    "rgba8": (4, "u1"),
    "bgra8": (4, "u1"),
    "mono8": (1, "u1"),
}
DEPTH_ENCODINGS: dict[str, tuple[int, str]] = {
    "16UC1": (1, "u2"),
    "mono16": (1, "u2"),
    "32FC1": (1, "f4"),
}
MILLIMETRES_PER_METRE = 1000.0


def _image_array(
    encoding: str,
    table: dict[str, tuple[int, str]],
    other: dict[str, tuple[int, str]],
    height: int,
    width: int,
    step: int,
    data: Payload,
    is_bigendian: bool,
) -> np.ndarray:
    """View raw image bytes as [H, W, C] (row padding removed), validating every size."""
    if encoding not in table:
        if encoding in other:
            raise SensorInputError(
                "encoding_mismatch",
                f"encoding '{encoding}' is not valid on this topic; expected {list(table)}",
            )
        raise SensorInputError(
            "unsupported_encoding", f"unsupported encoding '{encoding}'; use {list(table)}"
        )
    channels, kind = table[encoding]
    dtype = np.dtype(kind).newbyteorder(">" if is_bigendian else "<")
    if height <= 0 or width <= 0:
        raise SensorInputError("empty", f"image is {width}x{height} pixels")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise SensorInputError(
            "size_mismatch", f"step {step} B is shorter than a {width}-pixel '{encoding}' row ({row_bytes} B)"
        )
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    expected = step * height
    if buffer.size == 0:
        raise SensorInputError("empty", "image has no data")
    if buffer.size != expected:
        reason = "truncated" if buffer.size < expected else "size_mismatch"
        raise SensorInputError(reason, f"image data is {buffer.size} B, expected step*height = {expected} B")
    rows = buffer.reshape(height, step)[:, :row_bytes]
    return np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)


def decode_color_image(
    encoding: str, height: int, width: int, step: int, data: Payload, is_bigendian: bool = False
) -> np.ndarray:
    """A colour image -> uint8 [H, W, 3] in RGB order (mono8 is repeated into three channels)."""
    pixels = _image_array(encoding, COLOR_ENCODINGS, DEPTH_ENCODINGS, height, width, step, data, is_bigendian)
    if encoding == "rgb8":
        return pixels
    if encoding == "bgr8":
        return np.ascontiguousarray(pixels[..., ::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[..., :3])
    if encoding == "bgra8":
        return np.ascontiguousarray(pixels[..., 2::-1])
    return np.repeat(pixels, 3, axis=2)  # mono8


def decode_depth_image(
    encoding: str, height: int, width: int, step: int, data: Payload, is_bigendian: bool = False
) -> np.ndarray:
    """A depth image -> float32 [H, W] metres; 16UC1/mono16 are millimetres, 32FC1 metres."""
    pixels = _image_array(encoding, DEPTH_ENCODINGS, COLOR_ENCODINGS, height, width, step, data, is_bigendian)
    depth = pixels[..., 0]
    if depth.dtype.kind == "u":
        return depth.astype(np.float32) / np.float32(MILLIMETRES_PER_METRE)
    return depth.astype(np.float32, copy=False)


def intrinsics_from_camera_info(
    k: np.ndarray, info_width: int, info_height: int, image_shape: tuple
) -> CameraIntrinsics:
    """CameraInfo K (9 values, row-major) -> intrinsics for an image of ``image_shape`` [H, W, ...].

    A CameraInfo calibrated at another resolution with the same aspect ratio is scaled; a
    zero K (uncalibrated camera) or a different aspect ratio is an error.
    """
    matrix = np.asarray(k, dtype=np.float64).reshape(-1)
    if matrix.size != 9 or not np.isfinite(matrix).all():
        raise SensorInputError("invalid", "camera_info K must hold 9 finite values")
    if matrix[0] <= 0.0 or matrix[4] <= 0.0:
        raise SensorInputError("uncalibrated", "camera_info K has no focal length (uncalibrated camera)")
    height, width = int(image_shape[0]), int(image_shape[1])
    if info_width <= 0 or info_height <= 0:
        info_width, info_height = width, height
    intrinsics = CameraIntrinsics.from_matrix(matrix.reshape(3, 3), info_width, info_height)
    if (info_width, info_height) == (width, height):
        return intrinsics
    if abs(info_width * height - info_height * width) > max(width, height):
        raise SensorInputError(
            "size_mismatch",
            f"camera_info is {info_width}x{info_height} but the image is {width}x{height}",
        )
    return intrinsics.scaled(width, height)


# --- messages (rclpy or rosbags: the same field names) -----------------------------------------

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (``sec``, ``nanosec``) -> nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


@contextmanager
def _keyed(stream: str) -> Iterator[None]:
    """Re-raise a SensorInputError of the block keyed ``stream.reason``."""
    try:
        yield
    except SensorInputError as exc:
        raise exc.in_stream(stream) from exc


def decode_foa_message(msg: Any) -> FoaChunk:
    """An avi_ros/FoaAudio message -> ``FoaChunk`` (errors keyed ``audio.<reason>``)."""
    with _keyed("audio"):
        return decode_foa_chunk(
            msg.data,
            msg.format,
            int(msg.sample_rate),
            int(msg.channel_count),
            int(msg.frame_sample_count),
            msg.channel_order,
            msg.normalization,
        )


def _image_fields(msg: Any) -> tuple[str, int, int, int, Payload, bool]:
    """A sensor_msgs/Image's (encoding, height, width, step, data, is_bigendian)."""
    return msg.encoding, int(msg.height), int(msg.width), int(msg.step), msg.data, bool(msg.is_bigendian)


def decode_color_message(msg: Any) -> np.ndarray:
    """A colour sensor_msgs/Image -> uint8 [H, W, 3] RGB (errors keyed ``rgb.<reason>``)."""
    with _keyed("rgb"):
        return decode_color_image(*_image_fields(msg))


def decode_depth_message(msg: Any) -> np.ndarray:
    """A depth sensor_msgs/Image -> float32 [H, W] metres (errors keyed ``depth.<reason>``)."""
    with _keyed("depth"):
        return decode_depth_image(*_image_fields(msg))


def decode_camera_info_message(msg: Any, image_shape: tuple) -> CameraIntrinsics:
    """A sensor_msgs/CameraInfo -> intrinsics at ``image_shape`` (errors keyed ``camera_info.<reason>``)."""
    with _keyed("camera_info"):
        return intrinsics_from_camera_info(np.asarray(msg.k), int(msg.width), int(msg.height), image_shape)


# The order ``decode_rgbd`` takes its messages in, and the synchronisers' input order.
RGBD_INPUTS = ("rgb", "depth", "camera_info")


@dataclass(frozen=True)
class RgbdImages:
    """A decoded RGB-D set: uint8 [H, W, 3] RGB, float32 [H, W] depth [m], intrinsics at H x W."""

    rgb: np.ndarray
    depth_m: np.ndarray
    intrinsics: CameraIntrinsics


def decode_rgbd(rgb_msg: Any, depth_msg: Any, info_msg: Any) -> RgbdImages:
    """A synchronised colour Image, depth Image and CameraInfo -> ``RgbdImages``.

    Errors are keyed by the message at fault (``rgb.``, ``depth.``, ``camera_info.``), or
    ``rgbd.size_mismatch`` when the depth image is not registered to the colour image.
    """
    rgb = decode_color_message(rgb_msg)
    depth = decode_depth_message(depth_msg)
    intrinsics = decode_camera_info_message(info_msg, rgb.shape)
    if depth.shape != rgb.shape[:2]:
        raise SensorInputError(
            "rgbd.size_mismatch",
            f"depth is {depth.shape[1]}x{depth.shape[0]} but rgb is {rgb.shape[1]}x{rgb.shape[0]}; "
            "use depth registered to the colour camera (e.g. aligned_depth_to_color)",
        )
    return RgbdImages(rgb, depth, intrinsics)
