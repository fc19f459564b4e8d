"""Default topic names and frame ids of the bags this package writes and reads.

They are the perception node's default topics, made absolute, so a scenario bag plays
straight into the node. A robot's own bag names its topics through the replay options.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BagTopics:
    """Topic names; ``ground_truth`` is optional in a bag (None: not read or written)."""

    audio: str = "/audio"
    rgb: str = "/rgb/image_raw"
    depth: str = "/depth/image_raw"
    camera_info: str = "/rgb/camera_info"
    ground_truth: str | None = "/ground_truth/hazards"
    tf_static: str = "/tf_static"


@dataclass(frozen=True)
class BagFrames:
    """frame_id of each sensor (REP-103 names)."""

    base: str = "base_link"
    microphone: str = "foa_microphone"
    camera: str = "camera_link"
    optical: str = "camera_color_optical_frame"
