"""A rosbags type store that knows the standard ROS 2 Kilted types plus avi_ros's own.

The avi_ros definitions are read from the package's ``.msg`` files, so the bag layer never
keeps a second copy of the message contracts. They are found in the colcon install tree
(``share/avi_ros/msg``), in a pip install (the same path under ``sys.prefix``) or in a
source checkout (``msg/``).
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

MESSAGE_NAMES = ("FoaAudio", "HazardEstimate", "HazardEstimateArray")


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
    """Kilted's standard types plus avi_ros/msg/{FoaAudio,HazardEstimate,HazardEstimateArray}."""
    store = get_typestore(Stores.ROS2_KILTED)
    directory = message_dir()
    types = {}
    for name in MESSAGE_NAMES:
        text = (directory / f"{name}.msg").read_text()
        types.update(get_types_from_msg(text, f"avi_ros/msg/{name}"))
    store.register(types)
    return store
