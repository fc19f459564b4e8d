"""Publish a synthetic scene as live sensor streams (FoaAudio chunks, RGB, depth, CameraInfo).

Used by the node's integration tests and by the latency bench: a real publisher on real
topics, fed from the scene generator, so the node is exercised exactly as by a robot.
The scene's audio is looped on a global sample timeline, so every chunk of any stream is
real audio and consecutive chunks are contiguous.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from avi_ros.audio import SAMPLE_RATE
from avi_ros.geometry import CameraIntrinsics
from avi_ros.msg import FoaAudio
from avi_ros.ros import conversions
from avi_ros.topics import FrameIds, SensorTopics
from avi_ros.units import NS_PER_S

FRAMES = FrameIds()
TOPICS = SensorTopics()  # the node's inputs


class SceneStreamer:
    """Publishes one scene's audio, RGB, depth and intrinsics with the stamps the caller picks.

    ``audio``: float32 [4, N] ACN/SN3D at 24 kHz. ``chunk_samples``: samples per FoaAudio
    message. ``depth_encoding``: ``32FC1`` (metres) or ``16UC1`` (millimetres).
    """

    def __init__(
        self,
        node: Node,
        audio: np.ndarray,
        rgb: np.ndarray,
        depth_m: np.ndarray,
        intrinsics: CameraIntrinsics,
        chunk_samples: int = 480,
        depth_encoding: str = "16UC1",
        topics: SensorTopics = TOPICS,
        qos: QoSProfile = qos_profile_sensor_data,
        audio_qos_depth: int = 50,
        mic_frame: str = FRAMES.microphone,
        camera_frame: str = FRAMES.optical,
    ) -> None:
        self.node = node
        self.audio = np.asarray(audio, dtype=np.float32)
        self.rgb, self.depth_m, self.intrinsics = rgb, depth_m, intrinsics
        self.chunk_samples = chunk_samples
        self.depth_encoding = depth_encoding
        self.mic_frame, self.camera_frame = mic_frame, camera_frame
        audio_qos = QoSProfile(
            history=qos.history, depth=audio_qos_depth, reliability=qos.reliability, durability=qos.durability
        )
        self.audio_pub = node.create_publisher(FoaAudio, topics.audio, audio_qos)
        self.rgb_pub = node.create_publisher(Image, topics.rgb, qos)
        self.depth_pub = node.create_publisher(Image, topics.depth, qos)
        self.info_pub = node.create_publisher(CameraInfo, topics.camera_info, qos)
        self._origin_ns: int | None = None
        self._next_sample = 0
        self.last_audio_msg: FoaAudio | None = None
        self._rgbd_cache: tuple[Image, Image, CameraInfo] | None = None

    def start_audio_at(self, stamp_ns: int) -> None:
        """Anchor the audio timeline: the next chunk's first sample is captured at ``stamp_ns``."""
        self._origin_ns = int(stamp_ns)
        self._next_sample = 0

    def audio_chunk(self, index: int) -> np.ndarray:
        """Chunk ``index`` of the looped scene audio, [4, chunk_samples]."""
        n = self.audio.shape[1]
        positions = (np.arange(self.chunk_samples) + index * self.chunk_samples) % n
        return self.audio[:, positions]

    def chunk_stamp_ns(self, sample_index: int) -> int:
        assert self._origin_ns is not None, "call start_audio_at first"
        return self._origin_ns + sample_index * NS_PER_S // SAMPLE_RATE

    def publish_audio_until(self, end_ns: int) -> int:
        """Publish every chunk whose last sample lies before ``end_ns``; returns how many."""
        assert self._origin_ns is not None, "call start_audio_at first"
        sent = 0
        while self.chunk_stamp_ns(self._next_sample + self.chunk_samples) <= end_ns:
            index = self._next_sample // self.chunk_samples
            msg = conversions.foa_to_msg(
                self.audio_chunk(index), self.chunk_stamp_ns(self._next_sample), self.mic_frame
            )
            self.audio_pub.publish(msg)
            self.last_audio_msg = msg
            self._next_sample += self.chunk_samples
            sent += 1
        return sent

    @property
    def next_chunk_stamp_ns(self) -> int:
        """Capture time of the next chunk's first sample [ns]."""
        return self.chunk_stamp_ns(self._next_sample)

    def skip_audio_until(self, end_ns: int) -> None:
        """Advance the timeline without publishing, as a driver that loses audio would."""
        while self.chunk_stamp_ns(self._next_sample + self.chunk_samples) <= end_ns:
            self._next_sample += self.chunk_samples

    def rgbd_msgs(self, stamp_ns: int) -> tuple[Image, Image, CameraInfo]:
        header = conversions.make_header(stamp_ns, self.camera_frame)
        return (
            conversions.image_to_msg(self.rgb, "rgb8", header),
            conversions.depth_to_msg(self.depth_m, header, self.depth_encoding),
            conversions.camera_info_to_msg(self.intrinsics, header),
        )

    def publish_rgbd(self, stamp_ns: int) -> None:
        """Publish the scene's RGB-D set stamped ``stamp_ns``; the messages are built once and
        only their stamps change, so the rig costs little CPU next to the node it measures."""
        if self._rgbd_cache is None:
            self._rgbd_cache = self.rgbd_msgs(stamp_ns)
        rgb, depth, info = self._rgbd_cache
        stamp = conversions.ns_to_stamp(stamp_ns)
        for msg in (rgb, depth, info):
            msg.header.stamp = stamp
        self.info_pub.publish(info)
        self.depth_pub.publish(depth)
        self.rgb_pub.publish(rgb)
