"""Sensor messages -> the frame assembler, the same way for the live node and the bag replay.

Each message (rclpy or rosbags: the same field names) is checked by ``avi_ros.sensor_decoding``;
a bad one is counted under its reason key (``audio.truncated``, ``rgbd.size_mismatch``) and
skipped, a good one goes to the ``FrameAssembler`` with its header stamp. Audio is decoded at
once (the ring needs the samples); an RGB-D set is only checked from its headers, and its
pixels are converted when the assembler hands its frame to inference. ``now_ns`` is the
caller's clock: ROS time in the node, the bag's receive time in the replay.
"""

from __future__ import annotations

from typing import Any

from avi_ros.audio import SAMPLE_RATE
from avi_ros.events import AUDIO, AUDIO_RESAMPLED, EventCounter
from avi_ros.frame_assembly import FrameAssembler
from avi_ros.sensor_decoding import (
    FoaChunk,
    SensorInputError,
    check_image_message,
    check_rgbd,
    decode_foa_message,
    message_stamp_ns,
)


class SensorIntake:
    """Feeds ``assembler`` and counts bad input in ``events``; remembers the sensors' frame ids."""

    def __init__(self, assembler: FrameAssembler, events: EventCounter) -> None:
        self.assembler = assembler
        self.events = events
        self.microphone_frame_id = ""
        self.image_frame_id = ""

    def add_audio(self, msg: Any, now_ns: int) -> FoaChunk | None:
        """A FoaAudio message; returns the decoded chunk, or None when it was bad (and counted)."""
        try:
            stamp_ns = message_stamp_ns(msg, AUDIO)
            chunk = decode_foa_message(msg)
        except SensorInputError as exc:
            self.events.record(exc.reason, str(exc))
            return None
        if chunk.resampled:
            self.events.record(
                AUDIO_RESAMPLED, f"audio at {msg.sample_rate} Hz resampled to {SAMPLE_RATE} Hz"
            )
        self.microphone_frame_id = msg.header.frame_id
        self.assembler.add_audio(stamp_ns, chunk.audio, now_ns)
        return chunk

    def check_image(self, index: int, msg: Any) -> int | None:
        """An RGB-D input (index into ``topics.RGBD_STREAMS``) on arrival, from its header
        alone: its stamp [ns] for the synchroniser, or None when it was bad (and counted)."""
        try:
            return check_image_message(index, msg)
        except SensorInputError as exc:
            self.events.record(exc.reason, str(exc))
            return None

    def add_rgbd(self, rgb_msg: Any, depth_msg: Any, info_msg: Any, now_ns: int) -> bool:
        """A synchronised RGB-D set, stamped by its RGB image; False when it was bad (and counted)."""
        try:
            rgbd = check_rgbd(rgb_msg, depth_msg, info_msg)
        except SensorInputError as exc:
            self.events.record(exc.reason, str(exc))
            return False
        for reason, detail in rgbd.warnings:
            self.events.record(reason, detail)
        self.image_frame_id = rgb_msg.header.frame_id
        self.assembler.add_rgbd_source(rgbd.stamp_ns, rgbd.decode, now_ns)
        return True
