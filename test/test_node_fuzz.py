"""A bounded, seeded fuzz run of the live node over real rclpy: malformed messages of every input.

About 2,000 messages go to a live ``PerceptionNode`` in this process: malformed FoaAudio,
colour Image, depth Image and CameraInfo (each with the reason key it must be counted under),
interleaved with a valid scene stream. Then a valid stream must still be answered. The run
asserts that the node never stops, that every malformed message is counted under its reason,
that nothing is counted as an internal error, and that its memory stays bounded.

Delivery is reliable and paced (a batch is sent only when the node has taken the previous
one), so the counts are exact on any machine; no assertion depends on timing.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
import rclpy
from avi_ros.msg import FoaAudio, HazardEstimateArray
from node_harness import wait_for
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from avi_ros.audio import encode_pcm
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.geometry import CameraIntrinsics
from avi_ros.ros import conversions
from avi_ros.ros.perception_node import PerceptionNode, make_executor
from avi_ros.ros.qos import sensor_qos
from avi_ros.ros.scene_streamer import SceneStreamer
from avi_ros.taxonomy import HazardClass, RiskLevel, Taxonomy

pytestmark = pytest.mark.ros

NS = 1_000_000_000
SEED = 12
MALFORMED = 1200  # plus about 800 valid messages: 100 frames of 5 audio chunks and an RGB-D set
BATCH = 25  # messages sent before waiting for the node to take them
DEADLINE_S = 120.0  # only reached when the node stops taking messages
RSS_GROWTH_LIMIT_MB = 150.0  # one chunk "at 1 Hz" alone cost 360 MB before the fix
SLOT_NS = 50_000_000  # every valid frame and every malformed set gets its own stamp slot
TAXONOMY = Taxonomy(
    (HazardClass("none", RiskLevel.NONE, 0.0, 0.0), HazardClass("thing", RiskLevel.HIGH, 3.0, 8.0))
)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclass
class Sent:
    """One malformed case: the messages to publish (input stream, message) and the key it counts."""

    messages: list[tuple[str, object]]
    reason: str


class Fuzzer:
    """Builds malformed messages from a valid scene stream, seeded."""

    def __init__(self, streamer: SceneStreamer, rng: np.random.Generator) -> None:
        self.streamer, self.rng = streamer, rng

    def audio(self, **fields: object) -> FoaAudio:
        msg = conversions.foa_to_msg(self.streamer.audio_chunk(int(self.rng.integers(100))), 5 * NS, "mic")
        for name, value in fields.items():
            setattr(msg, name, value)
        return msg

    def rgbd(self, stamp_ns: int) -> tuple[Image, Image, CameraInfo]:
        return self.streamer.rgbd_msgs(stamp_ns)

    def bad_audio(self) -> Sent:
        pcm = lambda x: encode_pcm(np.asarray(x, np.float64), "float32")  # noqa: E731
        rate = int(self.rng.choice([0, 1, 7_999, 48_000_001, 4_294_967_295]))
        cases = [
            (lambda: self.audio(format="float64"), "audio.bad_format"),
            (lambda: self.audio(channel_order="SID"), "audio.bad_format"),
            (lambda: self.audio(normalization="XYZ"), "audio.bad_format"),
            (lambda: self.audio(channel_count=int(self.rng.choice([0, 2, 5, 7]))), "audio.bad_channels"),
            (lambda: self.audio(sample_rate=rate), "audio.bad_rate"),
            (lambda: self.audio(data=b"", frame_sample_count=0), "audio.empty"),
            (
                lambda: self.audio(data=pcm(np.zeros((4, 480)))[: -int(self.rng.integers(1, 15))]),
                "audio.truncated",
            ),
            (lambda: self.audio(data=pcm(np.full((4, 480), np.nan))), "audio.non_finite"),
            (lambda: self.audio(data=pcm(np.full((4, 480), -np.inf))), "audio.non_finite"),
            (lambda: self.audio(data=pcm(np.full((4, 480), 1e20))), "audio.out_of_range"),
            (lambda: self.audio(frame_sample_count=int(self.rng.integers(1, 479))), "audio.size_mismatch"),
            (lambda: self.audio_with_nanosec(), "audio.bad_stamp"),
        ]
        make, reason = cases[int(self.rng.integers(len(cases)))]
        return Sent([("audio", make())], reason)

    def audio_with_nanosec(self) -> FoaAudio:
        msg = self.audio()
        msg.header.stamp.nanosec = int(self.rng.integers(NS, 2**32))
        return msg

    def bad_image(self, stream: str, stamp_ns: int) -> Sent:
        rgb, depth, _ = self.rgbd(stamp_ns)
        msg = rgb if stream == "rgb" else depth
        other = "16UC1" if stream == "rgb" else "rgb8"
        row = msg.step
        size = len(msg.data)
        cases = [
            ({"encoding": "yuv422"}, "unsupported_encoding"),
            ({"encoding": other}, "encoding_mismatch"),
            ({"height": 0, "data": b""}, "empty"),
            ({"data": bytes(size - int(self.rng.integers(1, row)))}, "truncated"),
            ({"data": bytes(size + int(self.rng.integers(1, row)))}, "size_mismatch"),
            ({"step": row - 1}, "size_mismatch"),
            ({"height": 1, "width": 10_000, "step": 10_000 * (row // msg.width), "data": b"\0"}, "bad_shape"),
            ({"height": 100_000, "width": 100_000}, "bad_shape"),
        ]
        fields, reason = cases[int(self.rng.integers(len(cases)))]
        for name, value in fields.items():
            setattr(msg, name, value)
        if self.rng.random() < 0.15:
            msg.header.stamp.nanosec, reason = int(self.rng.integers(NS, 2**32)), "bad_stamp"
        return Sent([(stream, msg)], f"{stream}.{reason}")

    def bad_camera_info(self, stamp_ns: int) -> Sent:
        _, _, info = self.rgbd(stamp_ns)
        k = list(info.k)
        cases = [
            ([0.0] * 9, "uncalibrated"),
            ([float("nan"), *k[1:]], "invalid"),
            ([*k[:4], float("inf"), *k[5:]], "invalid"),
            ([1e-30, 0.0, k[2], 0.0, 1e-30, k[5], 0.0, 0.0, 1.0], "bad_focal"),
            ([1e30, 0.0, k[2], 0.0, 1e30, k[5], 0.0, 0.0, 1.0], "bad_focal"),
            ([*k[:2], 1e9, *k[3:]], "bad_principal_point"),
        ]
        info.k, reason = cases[int(self.rng.integers(len(cases)))]
        if self.rng.random() < 0.15:
            info.header.stamp.nanosec, reason = int(self.rng.integers(NS, 2**32)), "bad_stamp"
        return Sent([("camera_info", info)], f"camera_info.{reason}")

    def bad_set(self, stamp_ns: int) -> Sent:
        """A set whose messages are each valid but wrong together (or carry unused broken calibration)."""
        rgb, depth, info = self.rgbd(stamp_ns)
        choice = int(self.rng.integers(3))
        if choice == 0:
            small = np.zeros((depth.height // 2, depth.width), np.uint16)
            depth.height, depth.step, depth.data = small.shape[0], depth.width * 2, small.tobytes()
            reason = "rgbd.size_mismatch"
        elif choice == 1:
            square = conversions.camera_info_to_msg(CameraIntrinsics.from_fov(64, 64, 1.2), info.header)
            info = square
            reason = "camera_info.size_mismatch"
        else:
            info.p = [float("nan")] * 12
            reason = "camera_info.unused_calibration_invalid"  # counted, and the frame is kept
        return Sent([("camera_info", info), ("depth", depth), ("rgb", rgb)], reason)


@pytest.fixture(scope="module")
def checkpoint_dir(tiny_checkpoint):
    return tiny_checkpoint(TAXONOMY, 0.5, {1: 50.0}, confidence_bias=50.0)


def test_malformed_messages_of_every_input_are_counted_and_the_node_keeps_answering(checkpoint_dir):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=100 + os.getpid() % 100)
    node = PerceptionNode(
        context=context,
        namespace="fuzz",
        parameter_overrides=[
            Parameter(name, value=value)
            for name, value in {
                "model_path": str(checkpoint_dir),
                "device": "cpu",
                "extrinsic.from_tf": False,
                "qos_reliability": "reliable",
                "audio.queue_depth": 1000,
                "image.queue_depth": 100,
                "audio.buffer_s": 30.0,
                "audio.max_wait_s": 3.0,
                "sync.slop_s": 0.02,  # valid frames and malformed sets lie 50 ms apart: never mixed
                "sync.queue_size": 100,  # the executor takes the topics in its own order
            }.items()
        ],
    )
    client = Node("fuzz_client", context=context, namespace="fuzz")
    scene = generate_scene(5, SceneConfig(duration_s=1.0).with_image_size(64, 48))
    streamer = SceneStreamer(
        client,
        scene.audio,
        scene.rgb,
        scene.depth_m,
        scene.intrinsics,
        qos=sensor_qos("reliable", 100),
        audio_qos_depth=1000,
    )
    publishers = {
        "audio": streamer.audio_pub,
        "rgb": streamer.rgb_pub,
        "depth": streamer.depth_pub,
        "camera_info": streamer.info_pub,
    }
    answered: set[int] = set()
    client.create_subscription(
        HazardEstimateArray, "hazards", lambda m: answered.add(conversions.stamp_to_ns(m.header.stamp)), 100
    )
    executor = make_executor(context)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    try:
        assert node.start(), node.configure_error
        executor.add_node(node)
        executor.add_node(client)
        spinner.start()
        assert wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers.values()), DEADLINE_S)

        rng = np.random.default_rng(SEED)
        fuzzer = Fuzzer(streamer, rng)
        sent: Counter[str] = Counter()  # messages per input stream
        expected: Counter[str] = Counter()  # reason key -> malformed cases
        stamp = 1000 * NS
        streamer.start_audio_at(stamp - 2 * NS)

        def publish(stream: str, msg: object) -> None:
            publishers[stream].publish(msg)
            sent[stream] += 1

        def drain() -> None:
            assert wait_for(lambda: node.stats.message_counts() == dict(sent), DEADLINE_S), (
                f"the node took {node.stats.message_counts()} of {dict(sent)}; "
                f"events {node.events.snapshot()}"
            )

        malformed = 0
        rss_start = None
        while malformed < MALFORMED:
            if rng.random() < 0.1:  # a valid frame: its audio, then its RGB-D set
                stamp += SLOT_NS
                sent["audio"] += streamer.publish_audio_until(stamp + 30_000_000)
                for stream, msg in zip(
                    ("rgb", "depth", "camera_info"), streamer.rgbd_msgs(stamp), strict=True
                ):
                    publish(stream, msg)
                continue
            kind = rng.choice(["audio", "rgb", "depth", "camera_info", "set"], p=[0.35, 0.2, 0.2, 0.15, 0.1])
            if kind == "audio":
                case = fuzzer.bad_audio()
            elif kind in ("rgb", "depth"):
                case = fuzzer.bad_image(str(kind), stamp)  # rejected on arrival: its stamp matters not
            elif kind == "camera_info":
                case = fuzzer.bad_camera_info(stamp)
            else:
                stamp += SLOT_NS
                case = fuzzer.bad_set(stamp)
            for stream, msg in case.messages:
                publish(stream, msg)
            expected[case.reason] += 1
            malformed += 1
            if malformed % BATCH == 0:
                drain()
                if rss_start is None and malformed >= 4 * BATCH:  # after the first frames: caches warm
                    rss_start = rss_mb()
        drain()
        assert sum(sent.values()) >= 1800
        assert wait_for(lambda: all(node.events[k] >= n for k, n in expected.items()), DEADLINE_S), (
            f"expected {dict(expected)}, counted {node.events.snapshot()}"
        )
        counted = node.events.snapshot()
        assert {k: counted.get(k, 0) for k in expected} == dict(expected)
        assert not [k for k in counted if k.startswith("internal_error.")], counted
        assert len(expected) >= 25  # every input and nearly every reason was exercised
        assert rss_start is not None and rss_mb() - rss_start < RSS_GROWTH_LIMIT_MB

        # The node is still alive and answers a valid stream.
        assert spinner.is_alive()
        for _ in range(5):
            stamp += NS
            sent["audio"] += streamer.publish_audio_until(stamp + 30_000_000)
            for stream, msg in zip(("rgb", "depth", "camera_info"), streamer.rgbd_msgs(stamp), strict=True):
                publish(stream, msg)
            assert wait_for(lambda stamp=stamp: stamp in answered, DEADLINE_S), (
                f"no answer for {stamp} after the fuzz run; events {node.events.snapshot()}"
            )
    finally:
        executor.shutdown(timeout_sec=5.0)
        spinner.join(timeout=5.0)
        node.stop()
        node.destroy_node()
        client.destroy_node()
        rclpy.shutdown(context=context)
