"""A rosbags type store that knows the standard ROS 2 Kilted types plus avi_ros's own.

The avi_ros definitions are read from the package's ``.msg`` files, so the bag layer never
keeps a second copy of the message contracts. They are found in the colcon install tree
(``share/avi_ros/msg``), in a pip install (the same path under ``sys.prefix``) or in a
source checkout (``msg/``).

``RosbagsConstructors`` makes the store's dataclasses as easy to build as rclpy's classes,
so the core builders in ``avi_ros.message_builders`` serve bags and the live node alike.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

MESSAGE_NAMES = ("FoaAudio", "HazardEstimate", "HazardEstimateArray")

# The standard interfaces of ``avi_ros.interop`` that rosbags' stores lack (none of its stores,
# Dashing to Lyrical, has vision_msgs or audio_common_msgs): their fields as published, without
# the comments (a type's hash and layout depend on its fields alone). vision_msgs 4.x (ROS 2
# Humble to Rolling; github.com/ros-perception/vision_msgs, branch ros2) and the released
# audio_common_msgs 0.3.x (github.com/ros-drivers/audio_common, branch ros2).
STANDARD_DEFINITIONS: dict[str, str] = {
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"
    ),
    "vision_msgs/msg/BoundingBox3D": "geometry_msgs/Pose center\ngeometry_msgs/Vector3 size\n",
    "vision_msgs/msg/Detection3D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
        "vision_msgs/BoundingBox3D bbox\nstring id\n"
    ),
    "vision_msgs/msg/Detection3DArray": "std_msgs/Header header\nvision_msgs/Detection3D[] detections\n",
    "audio_common_msgs/msg/AudioData": "uint8[] data\n",
    "audio_common_msgs/msg/AudioDataStamped": "std_msgs/Header header\naudio_common_msgs/AudioData audio\n",
    "audio_common_msgs/msg/AudioInfo": (
        "uint8 channels\nuint32 sample_rate\nstring sample_format\nuint32 bitrate\nstring coding_format\n"
    ),
}


def message_dir() -> Path:
    """Directory holding avi_ros's .msg files; raises FileNotFoundError listing where it looked."""
    candidates = [
        Path(p) / "share" / "avi_ros" / "msg" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(":") if p
    ]
    candidates += [
        Path(sys.prefix) / "share" / "avi_ros" / "msg",
        Path(__file__).resolve().parents[2] / "msg",
    ]
    for candidate in candidates:
        if (candidate / "FoaAudio.msg").is_file():
            return candidate
    raise FileNotFoundError(
        f"avi_ros message definitions not found; looked in {[str(c) for c in candidates]}"
    )


@cache
def avi_ros_typestore() -> Typestore:
    """Kilted's standard types, avi_ros/msg/{FoaAudio,HazardEstimate,HazardEstimateArray} and the
    ``STANDARD_DEFINITIONS`` the store does not have yet."""
    store = get_typestore(Stores.ROS2_KILTED)
    directory = message_dir()
    types = {}
    for name in MESSAGE_NAMES:
        text = (directory / f"{name}.msg").read_text()
        types.update(get_types_from_msg(text, f"avi_ros/msg/{name}"))
    for msgtype, text in STANDARD_DEFINITIONS.items():
        if msgtype not in store.types:
            types.update(get_types_from_msg(text, msgtype))
    store.register(types)
    return store


# ROS primitive -> numpy dtype for primitive arrays ('byte' and 'char' are unsigned in ROS 2).
_ARRAY_DTYPES = {"byte": "uint8", "char": "uint8"}


def _dtype(primitive: str) -> np.dtype:
    return np.dtype(_ARRAY_DTYPES.get(primitive, primitive))


class RosbagsConstructors:
    """``pkg/msg/Name`` -> a constructor of that rosbags message that behaves like an rclpy class.

    Fields that are not given get the zero value of their type (0, 0.0, False, "", empty
    sequences, nested zero messages; unlike rclpy, defaults written in a .msg file such as
    Quaternion's ``w 1`` are not applied, so callers set those). Arrays of primitives may be
    given as bytes, lists or numpy arrays; they are stored as the numpy arrays rosbags serialises.
    """

    def __init__(self, store: Typestore | None = None) -> None:
        self.store = store or avi_ros_typestore()

    def __getitem__(self, msgtype: str) -> Callable[..., Any]:
        if msgtype not in self.store.types:
            raise KeyError(f"message type {msgtype} is not in the type store")
        return partial(self.build, msgtype)

    def build(self, msgtype: str, **fields: Any) -> Any:
        """A ``msgtype`` message with ``fields`` set and every other field at its default."""
        _, definitions = self.store.fielddefs[msgtype]
        names = {name for name, _ in definitions}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise TypeError(f"{msgtype} has no fields {unknown}")
        values = {
            name: self._coerce(kind, fields[name]) if name in fields else self._default(kind)
            for name, kind in definitions
        }
        return self.store.types[msgtype](**values)

    def _default(self, kind: tuple) -> Any:
        node, detail = kind
        if node == Nodetype.NAME:
            return self.build(detail)
        if node == Nodetype.BASE:
            primitive = detail[0]
            return "" if primitive == "string" else _dtype(primitive).type(0).item()
        (element_node, element), length = detail
        if element_node == Nodetype.BASE and element[0] != "string":
            return np.zeros(length if node == Nodetype.ARRAY else 0, dtype=_dtype(element[0]))
        count = length if node == Nodetype.ARRAY else 0
        return [self._default((element_node, element)) for _ in range(count)]

    @staticmethod
    def _coerce(kind: tuple, value: Any) -> Any:
        node, detail = kind
        if node in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            element_node, element = detail[0]
            if element_node == Nodetype.BASE and element[0] != "string":
                dtype = _dtype(element[0])
                if isinstance(value, bytes | bytearray | memoryview):
                    return np.frombuffer(value, dtype=dtype)
                return np.asarray(value, dtype=dtype)
        return value
