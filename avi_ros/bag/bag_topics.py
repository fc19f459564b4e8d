"""Topic names and frame ids of the bags this package writes and reads.

They are the perception node's names (``avi_ros.topics``) made absolute, as rosbag2 stores
them, so a scenario bag plays straight into the node. A robot's own bag names its topics
through the replay options.
"""

from __future__ import annotations

from dataclasses import dataclass

from avi_ros.topics import FrameIds, SensorTopics, absolute_changes

# A bag's sensors carry the node's frame ids.
BagFrames = FrameIds

# The message type each input (a ``BagTopics`` field) must carry.
INPUT_TYPES = {
    "audio": "avi_ros/msg/FoaAudio",
    "rgb": "sensor_msgs/msg/Image",
    "depth": "sensor_msgs/msg/Image",
    "camera_info": "sensor_msgs/msg/CameraInfo",
    "ground_truth": "avi_ros/msg/HazardEstimateArray",
}


@dataclass(frozen=True)
class BagTopics(SensorTopics):
    """The node's sensor topics plus ground truth (optional: None is not read or written) and
    static transforms. Every name is absolute: a relative one given here gets a leading ``/``."""

    ground_truth: str | None = "/ground_truth/hazards"
    tf_static: str = "/tf_static"

    def __post_init__(self) -> None:
        for name, value in absolute_changes(self).items():
            object.__setattr__(self, name, value)  # frozen: set once, while constructing

    def typed_inputs(self) -> list[tuple[str, str, str]]:
        """(field, topic, expected message type) of every input that is read, ground truth last."""
        named = ((name, getattr(self, name), msgtype) for name, msgtype in INPUT_TYPES.items())
        return [(name, topic, msgtype) for name, topic, msgtype in named if topic]
