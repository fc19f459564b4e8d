"""Sensor messages and raw payloads -> core arrays, with every malformed case named.

The ROS node (rclpy messages) and the bag replay (rosbags messages) carry the same field
names, so both hand their messages to ``decode_foa_message`` and ``decode_rgbd`` and get the
same arrays or the same error. The payload functions below them take plain values.

- FOA audio: PCM bytes + ambisonic conventions -> float32 [4, samples], ACN/SN3D, 24 kHz.
- Images (sensor_msgs/Image encodings): colour -> uint8 [H, W, 3] RGB; depth -> float32
  [H, W] metres (16UC1/mono16 millimetres are scaled; 0, NaN and inf stay "no reading").
- Camera info: the 3x3 K and the image size -> ``CameraIntrinsics``.

Every error is a ``SensorInputError`` with a short ``reason`` (the constants of
``avi_ros.events``). The payload functions give the bare reason (``truncated``); the message
functions prefix the stream (``audio.truncated``, ``rgb.truncated``, ``rgbd.size_mismatch``),
which is the key the caller counts in diagnostics.

Checking and converting are separate steps for images: ``check_rgbd`` validates a set from its
headers alone (O(1), no pixel is touched) and returns an ``RgbdSet`` whose ``decode`` converts
the pixels later, so the node converts only the frames it infers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from avi_ros import events
from avi_ros.audio import (
    FOA_CHANNELS,
    SAMPLE_RATE,
    AudioFormatError,
    check_sample_rate,
    decode_pcm,
    resample,
    to_acn_sn3d,
)
from avi_ros.geometry import CameraIntrinsics
from avi_ros.topics import RGBD_STREAMS
from avi_ros.units import MILLIMETRES_PER_METRE, NS_PER_S


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
    reasons ``bad_format``, ``empty``, ``truncated``, ``non_finite``, ``out_of_range``,
    ``bad_channels``, ``bad_rate`` (outside ``audio.MIN_SAMPLE_RATE..MAX_SAMPLE_RATE``) or
    ``size_mismatch``.
    """
    root = math.isqrt(channel_count) if channel_count > 0 else 0
    if channel_count < FOA_CHANNELS or root * root != channel_count:
        raise SensorInputError(
            events.BAD_CHANNELS,
            f"FOA audio needs {FOA_CHANNELS} channels (or an ambisonic (N+1)^2 count), got {channel_count}",
        )
    try:
        check_sample_rate(sample_rate)  # before decoding: the rate bounds the cost of what follows
        audio = decode_pcm(bytes(data), sample_format, channel_count)
    except AudioFormatError as exc:
        raise SensorInputError(exc.reason, str(exc)) from exc
    if frame_sample_count and audio.shape[1] != frame_sample_count:
        raise SensorInputError(
            events.SIZE_MISMATCH,
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
# Images no camera makes are rejected (``bad_shape``) before anything is allocated for them:
# a side longer than 8K, or a strip such as 1 x 10000 (the widest panoramic sensors are 4:1).
MAX_IMAGE_SIDE = 8192
MAX_ASPECT_RATIO = 8.0


@dataclass(frozen=True)
class ImageLayout:
    """A validated image header: how to read its rows [bytes] and pixels."""

    encoding: str
    height: int
    width: int
    step: int
    channels: int
    dtype: np.dtype
    row_bytes: int


def _byte_length(data: Payload) -> int:
    """Size of a payload in bytes (rclpy gives array.array, rosbags numpy, tests bytes)."""
    if isinstance(data, np.ndarray | memoryview):
        return int(data.nbytes)
    itemsize = getattr(data, "itemsize", 1)  # array.array
    return len(data) * itemsize


def image_layout(
    encoding: str,
    table: dict[str, tuple[int, str]],
    other: dict[str, tuple[int, str]],
    height: int,
    width: int,
    step: int,
    data_bytes: int,
    is_bigendian: bool,
) -> ImageLayout:
    """Validate an image header against its data size; O(1), no pixel is read."""
    if encoding not in table:
        if encoding in other:
            raise SensorInputError(
                events.ENCODING_MISMATCH,
                f"encoding '{encoding}' is not valid on this topic; expected {list(table)}",
            )
        raise SensorInputError(
            events.UNSUPPORTED_ENCODING, f"unsupported encoding '{encoding}'; use {list(table)}"
        )
    channels, kind = table[encoding]
    dtype = np.dtype(kind).newbyteorder(">" if is_bigendian else "<")
    if height <= 0 or width <= 0:
        raise SensorInputError(events.EMPTY, f"image is {width}x{height} pixels")
    if max(height, width) > MAX_IMAGE_SIDE or max(height, width) > MAX_ASPECT_RATIO * min(height, width):
        raise SensorInputError(
            events.BAD_SHAPE,
            f"image is {width}x{height} pixels; a camera image has sides up to {MAX_IMAGE_SIDE} and an "
            f"aspect ratio up to {MAX_ASPECT_RATIO:g}:1",
        )
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise SensorInputError(
            events.SIZE_MISMATCH,
            f"step {step} B is shorter than a {width}-pixel '{encoding}' row ({row_bytes} B)",
        )
    expected = step * height
    if data_bytes == 0:
        raise SensorInputError(events.EMPTY, "image has no data")
    if data_bytes != expected:
        reason = events.TRUNCATED if data_bytes < expected else events.SIZE_MISMATCH
        raise SensorInputError(reason, f"image data is {data_bytes} B, expected step*height = {expected} B")
    return ImageLayout(encoding, height, width, step, channels, dtype, row_bytes)


def _pixels(layout: ImageLayout, data: Payload) -> np.ndarray:
    """Raw bytes of a validated image as [H, W, C] (row padding removed)."""
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    rows = buffer.reshape(layout.height, layout.step)[:, : layout.row_bytes]
    return np.ascontiguousarray(rows).view(layout.dtype).reshape(layout.height, layout.width, layout.channels)


def _color_layout(
    encoding: str, height: int, width: int, step: int, data: Payload, is_bigendian: bool
) -> ImageLayout:
    return image_layout(
        encoding, COLOR_ENCODINGS, DEPTH_ENCODINGS, height, width, step, _byte_length(data), is_bigendian
    )


def _depth_layout(
    encoding: str, height: int, width: int, step: int, data: Payload, is_bigendian: bool
) -> ImageLayout:
    return image_layout(
        encoding, DEPTH_ENCODINGS, COLOR_ENCODINGS, height, width, step, _byte_length(data), is_bigendian
    )


def _color_pixels(layout: ImageLayout, data: Payload) -> np.ndarray:
    """uint8 [H, W, 3] RGB from a validated colour image (mono8 is repeated into three channels)."""
    pixels = _pixels(layout, data)
    encoding = layout.encoding
    if encoding == "rgb8":
        return pixels
    if encoding == "bgr8":
        return np.ascontiguousarray(pixels[..., ::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[..., :3])
    if encoding == "bgra8":
        return np.ascontiguousarray(pixels[..., 2::-1])
    return np.repeat(pixels, 3, axis=2)  # mono8


def _depth_metres(layout: ImageLayout, data: Payload) -> np.ndarray:
    """float32 [H, W] metres from a validated depth image (16UC1/mono16 are millimetres)."""
    depth = _pixels(layout, data)[..., 0]
    if depth.dtype.kind == "u":
        return depth.astype(np.float32) / np.float32(MILLIMETRES_PER_METRE)
    return depth.astype(np.float32, copy=False)


def decode_color_image(
    encoding: str, height: int, width: int, step: int, data: Payload, is_bigendian: bool = False
) -> np.ndarray:
    """A colour image -> uint8 [H, W, 3] in RGB order (mono8 is repeated into three channels)."""
    return _color_pixels(_color_layout(encoding, height, width, step, data, is_bigendian), data)


def decode_depth_image(
    encoding: str, height: int, width: int, step: int, data: Payload, is_bigendian: bool = False
) -> np.ndarray:
    """A depth image -> float32 [H, W] metres; 16UC1/mono16 are millimetres, 32FC1 metres."""
    return _depth_metres(_depth_layout(encoding, height, width, step, data, is_bigendian), data)


# A pinhole K whose field of view lies outside these bounds [deg] is not a camera calibration:
# fx = 1e-30 would put everything "in view", fx = 1e30 nothing.
MIN_FOV_DEG = 1.0
MAX_FOV_DEG = 170.0


def _check_k(matrix: np.ndarray, width: int, height: int) -> None:
    """Raise ``invalid``, ``uncalibrated``, ``bad_focal`` or ``bad_principal_point`` for a flat K
    at ``width`` x ``height`` pixels (a zero size checks only finiteness and sign)."""
    if matrix.size != 9 or not np.isfinite(matrix).all():
        raise SensorInputError(events.INVALID, "camera_info K must hold 9 finite values")
    fx, fy, cx, cy = matrix[0], matrix[4], matrix[2], matrix[5]
    if fx <= 0.0 or fy <= 0.0:
        raise SensorInputError(events.UNCALIBRATED, "camera_info K has no focal length (uncalibrated camera)")
    if width <= 0 or height <= 0:
        return
    for name, focal, side in (("horizontal", fx, width), ("vertical", fy, height)):
        fov_deg = math.degrees(2.0 * math.atan(side / (2.0 * focal)))
        if not MIN_FOV_DEG <= fov_deg <= MAX_FOV_DEG:
            raise SensorInputError(
                events.BAD_FOCAL,
                f"camera_info K gives a {name} field of view of {fov_deg:.3g} deg at {width}x{height}; "
                f"a pinhole camera has {MIN_FOV_DEG:g}..{MAX_FOV_DEG:g} deg",
            )
    if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
        raise SensorInputError(
            events.BAD_PRINCIPAL_POINT,
            f"camera_info principal point ({cx:.4g}, {cy:.4g}) is far outside the {width}x{height} image",
        )


def intrinsics_from_camera_info(
    k: np.ndarray, info_width: int, info_height: int, image_shape: tuple
) -> CameraIntrinsics:
    """CameraInfo K (9 values, row-major) -> intrinsics for an image of ``image_shape`` [H, W, ...].

    A CameraInfo calibrated at another resolution with the same aspect ratio is scaled; a
    zero K (uncalibrated camera), an implausible one (see ``_check_k``) or a different aspect
    ratio is an error.
    """
    matrix = np.asarray(k, dtype=np.float64).reshape(-1)
    height, width = int(image_shape[0]), int(image_shape[1])
    if info_width <= 0 or info_height <= 0:
        info_width, info_height = width, height
    _check_k(matrix, info_width, info_height)
    intrinsics = CameraIntrinsics.from_matrix(matrix.reshape(3, 3), info_width, info_height)
    if (info_width, info_height) == (width, height):
        return intrinsics
    if abs(info_width * height - info_height * width) > max(width, height):
        raise SensorInputError(
            events.SIZE_MISMATCH,
            f"camera_info is {info_width}x{info_height} but the image is {width}x{height}",
        )
    return intrinsics.scaled(width, height)


def unused_calibration_problem(d: Any, r: Any, p: Any) -> str | None:
    """What is wrong with CameraInfo D, R and P, which this package does not use (it uses K), or None.

    NaN or inf there means a broken calibration file; the frame is still usable, so the caller
    counts ``camera_info.unused_calibration_invalid`` and keeps it.
    """
    for name, values in (("D", d), ("R", r), ("P", p)):
        array = np.asarray(values, dtype=np.float64).reshape(-1)
        if array.size and not np.isfinite(array).all():
            return f"camera_info {name} holds NaN or inf (not used: K is); fix the calibration file"
    return None


# --- messages (rclpy or rosbags: the same field names) -----------------------------------------


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (``sec``, ``nanosec``) -> nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def checked_stamp_ns(stamp: Any) -> int:
    """``stamp_to_ns``, with ``bad_stamp`` when ``nanosec`` is outside [0, 1e9) (as builtin_interfaces/Time
    defines it): rclpy would carry the excess into the seconds and move the frame by up to 4.3 s."""
    nanosec = int(stamp.nanosec)
    if not 0 <= nanosec < NS_PER_S:
        raise SensorInputError(events.BAD_STAMP, f"header.stamp.nanosec is {nanosec}, outside [0, 1e9)")
    return int(stamp.sec) * NS_PER_S + nanosec


@contextmanager
def _keyed(stream: str) -> Iterator[None]:
    """Re-raise a SensorInputError of the block keyed ``stream.reason``."""
    try:
        yield
    except SensorInputError as exc:
        raise exc.in_stream(stream) from exc


def message_stamp_ns(msg: Any, stream: str) -> int:
    """The header stamp of a message [ns]; ``<stream>.bad_stamp`` when it is malformed."""
    with _keyed(stream):
        return checked_stamp_ns(msg.header.stamp)


def decode_foa_message(msg: Any) -> FoaChunk:
    """An avi_ros/FoaAudio message -> ``FoaChunk`` (errors keyed ``audio.<reason>``)."""
    with _keyed(events.AUDIO):
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


def color_message_layout(msg: Any) -> ImageLayout:
    """Validate a colour sensor_msgs/Image from its header (errors keyed ``rgb.<reason>``)."""
    with _keyed(events.RGB):
        return _color_layout(*_image_fields(msg))


def depth_message_layout(msg: Any) -> ImageLayout:
    """Validate a depth sensor_msgs/Image from its header (errors keyed ``depth.<reason>``)."""
    with _keyed(events.DEPTH):
        return _depth_layout(*_image_fields(msg))


def check_camera_info_message(msg: Any) -> None:
    """Validate a sensor_msgs/CameraInfo's K on its own (errors keyed ``camera_info.<reason>``)."""
    with _keyed(events.CAMERA_INFO):
        _check_k(np.asarray(msg.k, dtype=np.float64).reshape(-1), int(msg.width), int(msg.height))


def decode_color_message(msg: Any) -> np.ndarray:
    """A colour sensor_msgs/Image -> uint8 [H, W, 3] RGB (errors keyed ``rgb.<reason>``)."""
    return _color_pixels(color_message_layout(msg), msg.data)


def decode_depth_message(msg: Any) -> np.ndarray:
    """A depth sensor_msgs/Image -> float32 [H, W] metres (errors keyed ``depth.<reason>``)."""
    return _depth_metres(depth_message_layout(msg), msg.data)


def decode_camera_info_message(msg: Any, image_shape: tuple) -> CameraIntrinsics:
    """A sensor_msgs/CameraInfo -> intrinsics at ``image_shape`` (errors keyed ``camera_info.<reason>``)."""
    with _keyed(events.CAMERA_INFO):
        return intrinsics_from_camera_info(np.asarray(msg.k), int(msg.width), int(msg.height), image_shape)


def check_image_message(index: int, msg: Any) -> int:
    """Validate input ``index`` of ``RGBD_STREAMS`` from its header alone; returns its stamp [ns].

    O(1): what the node runs on every arriving image before it enters the synchroniser, so a
    malformed message is counted under its own reason, not as ``rgbd.unmatched``.
    """
    stream = RGBD_STREAMS[index]
    stamp_ns = message_stamp_ns(msg, stream)
    if stream == events.RGB:
        color_message_layout(msg)
    elif stream == events.DEPTH:
        depth_message_layout(msg)
    else:
        check_camera_info_message(msg)
    return stamp_ns


@dataclass(frozen=True)
class RgbdImages:
    """A decoded RGB-D set: uint8 [H, W, 3] RGB, float32 [H, W] depth [m], intrinsics at H x W."""

    rgb: np.ndarray
    depth_m: np.ndarray
    intrinsics: CameraIntrinsics


@dataclass(frozen=True)
class RgbdSet:
    """A checked RGB-D set whose pixels are not converted yet.

    ``warnings`` are (reason key, detail) pairs of problems that do not stop the frame (for
    now only ``camera_info.unused_calibration_invalid``); the caller counts them.
    """

    stamp_ns: int
    intrinsics: CameraIntrinsics
    rgb_layout: ImageLayout
    depth_layout: ImageLayout
    rgb_data: Payload
    depth_data: Payload
    warnings: tuple[tuple[str, str], ...] = ()

    def decode(self) -> RgbdImages:
        """Convert the pixels (the O(pixels) part; call it only for a frame that will be inferred)."""
        return RgbdImages(
            _color_pixels(self.rgb_layout, self.rgb_data),
            _depth_metres(self.depth_layout, self.depth_data),
            self.intrinsics,
        )


def check_rgbd(rgb_msg: Any, depth_msg: Any, info_msg: Any) -> RgbdSet:
    """A synchronised colour Image, depth Image and CameraInfo -> a checked ``RgbdSet`` (O(1)).

    Errors are keyed by the message at fault (``rgb.``, ``depth.``, ``camera_info.``), or
    ``rgbd.size_mismatch`` when the depth image is not registered to the colour image. The set
    is stamped by its RGB image.
    """
    stamp_ns = message_stamp_ns(rgb_msg, events.RGB)
    message_stamp_ns(depth_msg, events.DEPTH)
    message_stamp_ns(info_msg, events.CAMERA_INFO)
    rgb = color_message_layout(rgb_msg)
    depth = depth_message_layout(depth_msg)
    intrinsics = decode_camera_info_message(info_msg, (rgb.height, rgb.width))
    if (depth.height, depth.width) != (rgb.height, rgb.width):
        raise SensorInputError(
            events.RGBD_SIZE_MISMATCH,
            f"depth is {depth.width}x{depth.height} but rgb is {rgb.width}x{rgb.height}; "
            "use depth registered to the colour camera (e.g. aligned_depth_to_color)",
        )
    problem = unused_calibration_problem(info_msg.d, info_msg.r, info_msg.p)
    key = events.stream_key(events.CAMERA_INFO, events.UNUSED_CALIBRATION_INVALID)
    warnings = ((key, problem),) if problem else ()
    return RgbdSet(stamp_ns, intrinsics, rgb, depth, rgb_msg.data, depth_msg.data, warnings)


def decode_rgbd(rgb_msg: Any, depth_msg: Any, info_msg: Any) -> RgbdImages:
    """A synchronised colour Image, depth Image and CameraInfo -> ``RgbdImages`` (``check_rgbd`` + decode)."""
    return check_rgbd(rgb_msg, depth_msg, info_msg).decode()
