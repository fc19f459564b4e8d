"""The microphone -> camera extrinsic from a bag's ``/tf_static``, without tf2.

The live node looks the extrinsic up with tf2 where it is installed; a recorded bag carries
the same static transforms, so the replay reads them here. The frames may be linked through
a chain of static transforms in any direction (e.g. foa -> base_link -> camera_link).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from avi_ros.geometry import MicToCamera

# (rotation [3, 3], translation [3]) of a child frame in its parent: p_parent = R p_child + t.
Pose = tuple[np.ndarray, np.ndarray]


def _pose_of(transform: Any) -> Pose:
    q, t = transform.rotation, transform.translation
    rotation = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    return rotation, np.array([t.x, t.y, t.z], dtype=np.float64)


def _inverse(pose: Pose) -> Pose:
    rotation, translation = pose
    return rotation.T, -rotation.T @ translation


def _compose(first: Pose, second: Pose) -> Pose:
    """Pose of frame c in a, from b in a (``first``) and c in b (``second``)."""
    return first[0] @ second[0], first[0] @ second[1] + first[1]


class StaticTransforms:
    """The static transform tree of a bag: which frames it names, and the pose between two.

    ``tf_messages``: tf2_msgs/TFMessage messages (rosbags or rclpy). Each transform is an edge
    usable forwards or inverted, so frames may be linked through any chain.
    """

    def __init__(self, tf_messages: Iterable[Any]) -> None:
        self._edges: dict[str, list[tuple[str, Pose]]] = {}
        for message in tf_messages:
            for stamped in message.transforms:
                parent, child = stamped.header.frame_id.lstrip("/"), stamped.child_frame_id.lstrip("/")
                pose = _pose_of(stamped.transform)
                self._edges.setdefault(parent, []).append((child, pose))
                self._edges.setdefault(child, []).append((parent, _inverse(pose)))

    @property
    def frames(self) -> list[str]:
        """Every frame id the transforms name, sorted (for error messages)."""
        return sorted(self._edges)

    def extrinsic(self, microphone_frame: str, camera_frame: str) -> MicToCamera | None:
        """Pose of ``camera_frame`` (camera body, REP-103) in ``microphone_frame``; None if unlinked.

        Breadth-first search from the microphone frame.
        """
        start, goal = microphone_frame.lstrip("/"), camera_frame.lstrip("/")
        found: dict[str, Pose] = {start: (np.eye(3), np.zeros(3))}
        queue = deque([start])
        while queue:
            frame = queue.popleft()
            if frame == goal:
                rotation, translation = found[frame]
                rpy = Rotation.from_matrix(rotation).as_euler("xyz")
                return MicToCamera(
                    (float(translation[0]), float(translation[1]), float(translation[2])),
                    (float(rpy[0]), float(rpy[1]), float(rpy[2])),
                )
            for neighbour, pose in self._edges.get(frame, []):
                if neighbour not in found:
                    found[neighbour] = _compose(found[frame], pose)
                    queue.append(neighbour)
        return None
