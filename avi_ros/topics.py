"""The perception node's topic names and frame ids: one definition for every entry point.

The node subscribes and publishes under these names, the scene streamer publishes to them,
the bag writer records them and the replay writes its outputs under them, so a scenario bag
plays straight into the node. Names are relative, as the node uses them (a namespace or a
remap moves them); bags store absolute names (``absolute_topics``). Frame ids follow REP-103.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

Topics = TypeVar("Topics")


@dataclass(frozen=True)
class SensorTopics:
    """The node's inputs: FoaAudio, colour Image, depth Image and the colour camera's CameraInfo.

    The table of the input streams: each field's name is the stream's name (``SENSOR_STREAMS``:
    its diagnostics key in ``avi_ros.events``, its launch argument ``<stream>_topic``) and its
    value the topic the node subscribes to.
    """

    audio: str = "audio"
    rgb: str = "rgb/image_raw"
    depth: str = "depth/image_raw"
    camera_info: str = "rgb/camera_info"

    @property
    def rgbd(self) -> tuple[str, ...]:
        """The topics of ``RGBD_STREAMS`` (rgb, depth, camera_info): the synchroniser's input order."""
        return tuple(getattr(self, stream) for stream in RGBD_STREAMS)

    def by_stream(self) -> dict[str, str]:
        """Stream name -> topic, for every input (``SENSOR_STREAMS`` order)."""
        return {stream: getattr(self, stream) for stream in SENSOR_STREAMS}

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every input topic: audio, then ``rgbd``."""
        return (self.audio, *self.rgbd)


# The input streams, audio first, then the RGB-D inputs in the synchroniser's order.
SENSOR_STREAMS = tuple(f.name for f in dataclasses.fields(SensorTopics))
RGBD_STREAMS = SENSOR_STREAMS[1:]


@dataclass(frozen=True)
class OutputTopics:
    """The node's outputs: HazardEstimateArray, MarkerArray, the mono8 occlusion mask, the
    decision stage's HazardAssessment and the DiagnosticArray."""

    hazards: str = "hazards"
    markers: str = "markers"
    mask: str = "occlusion_mask"
    assessment: str = "hazard_assessment"  # avi_ros/HazardAssessment, while the decision stage is on
    diagnostics: str = "/diagnostics"  # absolute: ROS 2 tools read every node's status there


@dataclass(frozen=True)
class TelemetryTopics:
    """The robot's own motion, read by the tracker (yaw rate) and the decision stage: an IMU
    aligned with the robot base (sensor_msgs/Imu, REP-145) and the odometry (nav_msgs/Odometry)."""

    imu: str = "imu/data"
    odom: str = "odom"


# The telemetry streams (their diagnostics keys in ``avi_ros.telemetry``): imu, then odom.
TELEMETRY_STREAMS = tuple(f.name for f in dataclasses.fields(TelemetryTopics))


@dataclass(frozen=True)
class StandardTopics:
    """The standard interfaces beside the node's own (``avi_ros.interop``): the
    vision_msgs/Detection3DArray it publishes, and the audio_common_msgs/AudioInfo it reads
    when its audio input is audio_common (the AudioDataStamped chunks come on
    ``SensorTopics.audio``, so the ``audio_topic`` launch argument remaps either input)."""

    detections: str = "hazards/detections"
    audio_info: str = "audio_info"


@dataclass(frozen=True)
class FrameIds:
    """TF frame ids (REP-103): robot base, microphone array, camera body, colour optical frame,
    odometry frame."""

    base: str = "base_link"
    microphone: str = "foa_microphone"
    camera: str = "camera_link"
    optical: str = "camera_color_optical_frame"
    odom: str = "odom"  # the odometry's fixed frame (REP-105)


def absolute_topic(name: str) -> str:
    """``name`` under the root namespace (``audio`` -> ``/audio``); absolute names are kept."""
    return name if name.startswith("/") else f"/{name}"


def absolute_changes(topics: object) -> dict[str, str]:
    """The string fields of a topics dataclass that are relative, made absolute (for ``replace``)."""
    return {
        f.name: absolute_topic(value)
        for f in dataclasses.fields(topics)  # type: ignore[arg-type]
        if isinstance(value := getattr(topics, f.name), str) and value and not value.startswith("/")
    }


def absolute_topics(topics: Topics) -> Topics:
    """A copy of a topics dataclass with every name absolute, as bags store them."""
    return dataclasses.replace(topics, **absolute_changes(topics))  # type: ignore[type-var]
