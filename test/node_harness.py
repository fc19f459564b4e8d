"""The perception node under test beside a publisher / recorder node, over real rclpy pub/sub: the
harness that the node's test modules share (``test_perception_node``, ``test_decision_node``,
``test_node_tracking``).

No outcome depends on the machine's speed: every wait is for an event, with a deadline that only
matters when the event never comes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import rclpy
import torch
from avi_ros.msg import FoaAudio, HazardEstimateArray
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from avi_ros.ros import conversions
from avi_ros.ros.diagnostics import diagnostic_values
from avi_ros.ros.perception_node import PerceptionNode, make_executor
from avi_ros.ros.scene_streamer import SceneStreamer
from avi_ros.taxonomy import HazardClass, RiskLevel, Taxonomy
from avi_ros.topics import OutputTopics

OUTPUTS = OutputTopics()  # the node's output topics, as it names them

NS = 1_000_000_000
TIMEOUT_S = 60.0  # only reached when the awaited event never comes
MIC_FRAME = "test_mic_array"
# Names no other list in the package has: the node can only know them from the checkpoint.
TAXONOMY = Taxonomy(
    (
        HazardClass("none", RiskLevel.NONE, 0.0, 0.0),
        HazardClass("test_forklift", RiskLevel.HIGH, 3.0, 8.0),
        HazardClass("test_beeper", RiskLevel.MEDIUM, 2.0, 5.0),
    )
)
TARGET_CLASS = 2


@contextmanager
def isolated_context(domain_id: int) -> Iterator[rclpy.Context]:
    """An rclpy context of its own on DDS domain ``domain_id`` (each test module picks its own,
    so that modules running side by side do not hear each other), shut down on exit."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


def wait_for(predicate: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Harness:
    """The node under test, a publisher/recorder node, and the executor thread."""

    def __init__(
        self, context, node: PerceptionNode, scene, namespace: str = "", record_optional: bool = True
    ) -> None:
        self.context, self.node = context, node
        self.client = Node("test_client", context=context, namespace=namespace)
        self.streamer = SceneStreamer(
            self.client, scene.audio, scene.rgb, scene.depth_m, scene.intrinsics, audio_qos_depth=500
        )
        self.hazards: list[HazardEstimateArray] = []
        self.markers: list[MarkerArray] = []
        self.masks: list[Image] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.client.create_subscription(HazardEstimateArray, OUTPUTS.hazards, self.hazards.append, 50)
        self.record_optional = record_optional  # markers and mask, published only while subscribed
        if record_optional:
            self.client.create_subscription(MarkerArray, "markers", self.markers.append, 50)
            self.client.create_subscription(Image, "occlusion_mask", self.masks.append, 50)
        self.client.create_subscription(DiagnosticArray, OUTPUTS.diagnostics, self.diagnostics.append, 50)
        self.raw_audio = self.client.create_publisher(FoaAudio, "audio", 50)
        self.executor = make_executor(context)
        self.executor.add_node(node)
        self.executor.add_node(self.client)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.now_ns = 1000 * NS
        self.streamer.start_audio_at(self.now_ns - 2 * NS)
        self.wait_until_connected()

    def wait_until_connected(self) -> None:
        """Every sensor publisher reaches the node, and the node's optional outputs (published
        only while subscribed) reach the recorder."""
        publishers = (
            self.streamer.audio_pub,
            self.streamer.rgb_pub,
            self.streamer.depth_pub,
            self.streamer.info_pub,
        )
        assert wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers))
        if self.record_optional:
            outputs = [self.node.resolve_topic_name(t) for t in ("markers", "occlusion_mask")]
            assert wait_for(lambda: all(self.node.count_subscribers(t) > 0 for t in outputs))

    def advance(self, seconds: float = 1.0) -> int:
        self.now_ns += round(seconds * NS)
        return self.now_ns

    def send_frame(self, stamp_ns: int | None = None) -> int:
        """Audio up to just past the stamp, then the RGB-D set; returns the stamp."""
        stamp_ns = self.advance() if stamp_ns is None else stamp_ns
        self.streamer.publish_audio_until(stamp_ns + 30_000_000)
        self.streamer.publish_rgbd(stamp_ns)
        return stamp_ns

    def answer_for(self, stamp_ns: int) -> HazardEstimateArray | None:
        for msg in list(self.hazards):
            if conversions.stamp_to_ns(msg.header.stamp) == stamp_ns:
                return msg
        return None

    def assert_answers(self, stamp_ns: int) -> HazardEstimateArray:
        assert wait_for(lambda: self.answer_for(stamp_ns) is not None), (
            f"no HazardEstimateArray for stamp {stamp_ns}; events {self.node.events.snapshot()}"
        )
        return self.answer_for(stamp_ns)

    def diagnostic(self, key: str) -> str | None:
        return diagnostic_values(self.diagnostics[-1]).get(key) if self.diagnostics else None

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self.thread.join(timeout=5.0)
        self.node.stop()
        self.node.destroy_node()
        self.client.destroy_node()


def make_node(context, checkpoint_dir, **overrides) -> PerceptionNode:
    params = {
        "model_path": str(checkpoint_dir),
        "device": "cpu",
        "frames.microphone": MIC_FRAME,
        "extrinsic.from_tf": False,
        "audio.queue_depth": 500,
        # Generous waits: the test sends a second of audio in one burst, and a slow or busy
        # CI machine may deliver it well after the RGB-D set; no assertion depends on these.
        "audio.max_wait_s": 3.0,
        "audio.buffer_s": 30.0,
        "diagnostics_period_s": 0.2,
        **overrides,
    }
    namespace = params.pop("namespace", "")
    return PerceptionNode(
        context=context,
        namespace=namespace,
        parameter_overrides=[Parameter(name, value=value) for name, value in params.items()],
    )


def started_harness(context, checkpoint_dir, scene, **overrides) -> Harness:
    """A node of ``make_node`` started, with the Harness that feeds it ``scene``; torch keeps to
    two threads so that the node's inference leaves a CPU to the executor threads."""
    torch.set_num_threads(2)
    node = make_node(context, checkpoint_dir, **overrides)
    assert node.start(), node.configure_error
    return Harness(context, node, scene)


@contextmanager
def unstarted_node(context, checkpoint_dir, **overrides) -> Iterator[PerceptionNode]:
    """``make_node(..., autostart=False)`` for a test that starts it (or sees it refuse to start);
    stopped and destroyed afterwards, whatever state it reached."""
    node = make_node(context, checkpoint_dir, autostart=False, **overrides)
    try:
        yield node
    finally:
        node.stop()
        node.destroy_node()
