"""``avi-ros play`` over real rclpy: messages arrive intact, paced like the bag (a tolerant check of
the pacing logic, not a benchmark), /clock follows bag time, and bad bags give clear errors."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import String

from avi_ros.bag.io import BagError, BagWriter
from avi_ros.cli import main
from avi_ros.ros.play import BagPlayer, PlayOptions

pytestmark = pytest.mark.ros

NS = 1_000_000_000
START_NS = 1_700_000_000 * NS
# Irregular receive times [s]: bursts and pauses, so pacing errors would show.
TEXT_TIMES_S = (0.0, 0.05, 0.3, 0.32, 0.8, 1.2)
IMAGE_TIMES_S = (0.1, 0.6, 1.0)
# A generous bound on how far one arrival may stray from its bag time, for a loaded 2-core machine.
TOLERANCE_S = 0.12


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("play") / "bag"
    with BagWriter(path) as writer:
        string = writer.message_class("std_msgs/msg/String")
        image = writer.message_class("sensor_msgs/msg/Image")
        header = writer.message_class("std_msgs/msg/Header")
        time_cls = writer.message_class("builtin_interfaces/msg/Time")
        events = [(t, "text", i) for i, t in enumerate(TEXT_TIMES_S)]
        events += [(t, "image", i) for i, t in enumerate(IMAGE_TIMES_S)]
        for t, kind, index in sorted(events):
            stamp = START_NS + round(t * NS)
            if kind == "text":
                writer.write("/play/text", stamp, string(data=f"message {index}"))
            else:
                pixels = np.full(2 * 3 * 3, index, dtype=np.uint8)
                msg = image(
                    header=header(stamp=time_cls(sec=stamp // NS, nanosec=stamp % NS), frame_id="cam"),
                    height=2,
                    width=3,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=9,
                    data=pixels,
                )
                writer.write("/play/image", stamp, msg)
    return path


@pytest.fixture
def context():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=100 + os.getpid() % 100)
    yield context
    rclpy.shutdown(context=context)


class Listener:
    """Records (monotonic arrival time, message) per topic on its own executor thread."""

    def __init__(self, context, topics: dict[str, type]) -> None:
        self.node = rclpy.create_node("play_listener", context=context)
        self.received: dict[str, list[tuple[float, object]]] = {topic: [] for topic in topics}
        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        for topic, msg_type in topics.items():
            self.node.create_subscription(
                msg_type,
                topic,
                lambda msg, topic=topic: self.received[topic].append((time.monotonic(), msg)),
                qos,
            )
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def wait_for(self, topic: str, count: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.received[topic]) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _play(context, bag: Path, options: PlayOptions):
    player_node = rclpy.create_node("avi_ros_player", context=context)
    try:
        return BagPlayer(player_node, bag, options).play()
    finally:
        player_node.destroy_node()


@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_messages_arrive_intact_with_the_bags_timing(context, bag, rate):
    listener = Listener(context, {"/play/text": String, "/play/image": Image})
    try:
        stats = _play(context, bag, PlayOptions(rate=rate, wait_for=("/play/text", "/play/image")))
        listener.wait_for("/play/text", len(TEXT_TIMES_S))
        listener.wait_for("/play/image", len(IMAGE_TIMES_S))
    finally:
        listener.close()
    texts, images = listener.received["/play/text"], listener.received["/play/image"]
    assert [m.data for _, m in texts] == [f"message {i}" for i in range(len(TEXT_TIMES_S))]
    assert [int(m.data[0]) for _, m in images] == list(range(len(IMAGE_TIMES_S)))
    assert images[1][1].header.stamp.sec == (START_NS + round(0.6 * NS)) // NS
    assert stats.published == {"/play/text": len(TEXT_TIMES_S), "/play/image": len(IMAGE_TIMES_S)}

    arrivals = sorted(
        [(t, "text", i) for i, (t, _) in enumerate(texts)]
        + [(t, "image", i) for i, (t, _) in enumerate(images)]
    )
    expected = {("text", i): s for i, s in enumerate(TEXT_TIMES_S)} | {
        ("image", i): s for i, s in enumerate(IMAGE_TIMES_S)
    }
    first = arrivals[0][0]
    deviations = [abs((t - first) - expected[(kind, i)] / rate) for t, kind, i in arrivals]
    assert max(deviations) < TOLERANCE_S, deviations
    # Arrival order is the bag's order: pacing never reorders.
    assert [expected[(kind, i)] for _, kind, i in arrivals] == sorted(expected.values())


def test_clock_publishes_bag_time(context, bag):
    listener = Listener(context, {"/clock": Clock, "/play/text": String})
    try:
        _play(context, bag, PlayOptions(rate=1.0, clock=True, clock_rate_hz=50.0, wait_for=("/play/text",)))
        listener.wait_for("/play/text", len(TEXT_TIMES_S))
    finally:
        listener.close()
    clocks = [(t, m.clock.sec * NS + m.clock.nanosec) for t, m in listener.received["/clock"]]
    values = np.array([v for _, v in clocks])
    assert len(values) >= 0.5 * 1.2 * 50  # about 50 Hz over the 1.2 s bag
    assert (np.diff(values) >= 0).all()
    assert values[0] >= START_NS and values[-1] <= START_NS + round(1.2 * NS)
    first_text_arrival = listener.received["/play/text"][0][0]
    lag = [abs((t - first_text_arrival) - (v - START_NS) / NS) for t, v in clocks]
    assert max(lag) < TOLERANCE_S


def test_remap_and_topic_selection(context, bag):
    listener = Listener(context, {"/robot/text": String, "/play/image": Image})
    try:
        stats = _play(
            context,
            bag,
            PlayOptions(
                rate=4.0,
                topics=("/play/text",),
                remap={"/play/text": "/robot/text"},
                wait_for=("/robot/text",),
            ),
        )
        listener.wait_for("/robot/text", len(TEXT_TIMES_S))
    finally:
        listener.close()
    assert len(listener.received["/robot/text"]) == len(TEXT_TIMES_S)
    assert listener.received["/play/image"] == []
    assert stats.published == {"/robot/text": len(TEXT_TIMES_S)}


def test_waiting_for_an_absent_subscriber_times_out_clearly(context, bag):
    with pytest.raises(BagError, match=r"no subscriber appeared on \['/nobody'\]"):
        _play(context, bag, PlayOptions(wait_for=("/nobody",), wait_timeout_s=0.3))


def test_options_and_bags_are_checked(context, bag, tmp_path, capsys):
    with pytest.raises(ValueError, match="--rate must be > 0"):
        PlayOptions(rate=0.0)
    with pytest.raises(BagError, match=r"\['/missing'\] not in the bag"):
        _play(context, bag, PlayOptions(topics=("/missing",)))
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"\x89MCAP0\r\n this is not a bag")
    assert main(["play", str(garbage)]) == 1
    assert "garbage.mcap: cannot open as rosbag2" in capsys.readouterr().err
    assert main(["play", str(tmp_path / "nothing.mcap")]) == 1
    assert "nothing.mcap: no such bag" in capsys.readouterr().err
    assert main(["play", str(bag), "--remap", "nonsense"]) == 1
    assert "--remap expects FROM:=TO" in capsys.readouterr().err


def test_echo_prints_and_records_the_hazards(monkeypatch, tmp_path, capsys):
    from avi_ros.msg import HazardEstimate, HazardEstimateArray

    from avi_ros.ros.echo import run_echo

    domain = 100 + os.getpid() % 100
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("echo_test_publisher", context=context)
    publisher = node.create_publisher(HazardEstimateArray, "/hazards", 10)
    message = HazardEstimateArray()
    message.header.stamp.sec, message.header.frame_id = 12, "foa_microphone"
    hazard = HazardEstimate(class_id=3, class_name="siren", confidence=0.8, azimuth=1.25, distance=3.5)
    hazard.visibility, hazard.risk_level, hazard.recommended_action = 1, 3, 2
    message.hazards = [hazard]
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            publisher.publish(message)
            time.sleep(0.05)

    sender = threading.Thread(target=publish, daemon=True)
    sender.start()
    jsonl = tmp_path / "hazards.jsonl"
    try:
        received = run_echo("/hazards", count=2, timeout_s=10.0, jsonl=jsonl)
    finally:
        stop.set()
        sender.join()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert received == 2
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 2 and records[0]["stamp_ns"] == 12 * NS
    (recorded,) = records[0]["hazards"]
    assert (recorded["class_name"], recorded["visibility"], recorded["recommended_action"]) == (
        "siren",
        "OCCLUDED",
        "STOP",
    )
    assert recorded["azimuth"] == pytest.approx(1.25)
    assert "siren 0.80 az +72 deg el +0 deg 3.5 m occluded risk high -> stop" in capsys.readouterr().out
