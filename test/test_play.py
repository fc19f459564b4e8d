"""``avi-ros play`` over real rclpy: messages arrive intact and in order, /clock carries bag time, and
bad bags give clear errors. The pacing itself (the schedule, no accumulating delay, /clock's rate,
the time an interrupted loop reports) is checked in simulated time, so no outcome depends on how
fast or how busy the machine is."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from node_harness import isolated_context
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
BAG_TIMES_S = sorted(TEXT_TIMES_S + IMAGE_TIMES_S)
# Long enough for discovery and delivery on a loaded machine; the waits end as soon as all arrived.
DELIVERY_TIMEOUT_S = 60.0


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
    with isolated_context(100 + os.getpid() % 100) as context:
        yield context


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

    def wait_for(self, topic: str, count: int, timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
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


class SimulatedTimer:
    """Virtual seconds: ``sleep`` advances them by exactly what was asked plus ``overshoot_s`` (a
    loaded machine wakes late); at ``interrupt_at_s`` it raises KeyboardInterrupt, as Ctrl-C would."""

    def __init__(self, overshoot_s: float = 0.0, interrupt_at_s: float | None = None) -> None:
        self.t = 1000.0
        self.overshoot_s = overshoot_s
        self.interrupt_at_s = interrupt_at_s

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds + self.overshoot_s
        if self.interrupt_at_s is not None and self.t >= 1000.0 + self.interrupt_at_s:
            raise KeyboardInterrupt


class RecordingNode:
    """Stands in for an rclpy node: its publishers record (virtual time, topic, message)."""

    def __init__(self, timer: SimulatedTimer) -> None:
        self.timer = timer
        self.published: list[tuple[float, str, object]] = []

    def create_publisher(self, msg_type, topic, qos):
        node = self

        class Publisher:
            def publish(self, message) -> None:
                node.published.append((node.timer.now(), topic, message))

        return Publisher()

    def count_subscribers(self, topic: str) -> int:
        return 1

    def get_logger(self):
        return logging.getLogger("simulated_player")


def _simulate(bag: Path, options: PlayOptions, timer: SimulatedTimer) -> tuple[RecordingNode, BagPlayer]:
    node = RecordingNode(timer)
    return node, BagPlayer(node, bag, options, timer=timer)


@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_each_message_goes_out_at_its_bag_time_divided_by_the_rate(bag, rate):
    timer = SimulatedTimer()
    node, player = _simulate(bag, PlayOptions(rate=rate), timer)
    stats = player.play()
    first = node.published[0][0]
    offsets = [t - first for t, _, _ in node.published]
    np.testing.assert_allclose(offsets, np.array(BAG_TIMES_S) / rate, atol=1e-9)
    assert stats.wall_duration_s == pytest.approx(BAG_TIMES_S[-1] / rate)
    assert stats.max_lateness_s == pytest.approx(0.0, abs=1e-9)


def test_a_late_machine_delays_each_message_once_and_never_accumulates(bag):
    """Every sleep wakes 70 ms late: each message is at most that late, however many came before."""
    overshoot = 0.07
    timer = SimulatedTimer(overshoot_s=overshoot)
    node, player = _simulate(bag, PlayOptions(rate=1.0), timer)
    stats = player.play()
    first = node.published[0][0]
    lateness = [(t - first) - due for (t, _, _), due in zip(node.published, BAG_TIMES_S, strict=True)]
    assert min(lateness) >= -1e-9  # never early
    assert max(lateness) <= overshoot + 1e-9  # late by one wake-up at most, not by the sum of them
    assert stats.max_lateness_s == pytest.approx(max(lateness))
    # The burst (0.30 s, 0.32 s): the second is already due when the first goes out late.
    assert lateness[BAG_TIMES_S.index(0.32)] == pytest.approx(overshoot - 0.02)


def test_clock_ticks_at_its_rate_in_bag_time_and_never_runs_ahead(bag):
    timer = SimulatedTimer()
    node, player = _simulate(bag, PlayOptions(rate=2.0, clock=True, clock_rate_hz=50.0), timer)
    player.play()
    ticks = [m for _, topic, m in node.published if topic == "/clock"]
    values = np.array([m.clock.sec * NS + m.clock.nanosec for m in ticks])
    assert (np.diff(values) >= 0).all()
    assert values[0] == START_NS and values[-1] == START_NS + round(BAG_TIMES_S[-1] * NS)
    # 50 Hz of wall time at rate 2 over the 1.2 s bag: 30 ticks, plus one beside each message.
    assert abs(len(values) - BAG_TIMES_S[-1] / 2.0 * 50) <= len(BAG_TIMES_S) + 1
    latest_ns = 0
    bag_times = iter(BAG_TIMES_S)
    for _, topic, message in node.published:
        if topic == "/clock":
            latest_ns = message.clock.sec * NS + message.clock.nanosec
        else:  # ROS time never runs ahead of a message not yet delivered
            assert latest_ns <= START_NS + round(next(bag_times) * NS), topic


def test_an_interrupted_loop_reports_how_long_it_played(bag):
    timer = SimulatedTimer(interrupt_at_s=3.0)
    _, player = _simulate(bag, PlayOptions(loop=True), timer)
    with pytest.raises(KeyboardInterrupt):
        player.play()
    assert player.stats.wall_duration_s == pytest.approx(3.0, abs=0.1)
    assert sum(player.stats.published.values()) > len(BAG_TIMES_S)  # it looped


@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_messages_arrive_intact_and_in_order(context, bag, rate):
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
    assert stats.wall_duration_s >= BAG_TIMES_S[-1] / rate  # a schedule can be late, never early


def test_clock_publishes_bag_time(context, bag):
    listener = Listener(context, {"/clock": Clock, "/play/text": String})
    try:
        _play(context, bag, PlayOptions(rate=1.0, clock=True, clock_rate_hz=50.0, wait_for=("/play/text",)))
        listener.wait_for("/play/text", len(TEXT_TIMES_S))
        listener.wait_for("/clock", 1)
    finally:
        listener.close()
    values = np.array([m.clock.sec * NS + m.clock.nanosec for _, m in listener.received["/clock"]])
    assert len(values) >= 1
    assert (np.diff(values) >= 0).all()
    assert values[0] >= START_NS and values[-1] <= START_NS + round(BAG_TIMES_S[-1] * NS)


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
        received = run_echo("/hazards", count=2, timeout_s=DELIVERY_TIMEOUT_S, jsonl=jsonl)
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


def test_echo_records_the_decision_stages_assessments():
    from avi_ros.msg import HazardAssessment

    from avi_ros.ros.echo import assessment_record, describe

    message = HazardAssessment(risk_level=3, reason=1, recommended_action=2, confidence=0.9)
    message.header.stamp.sec = 7
    message.hazard_indices = [0]
    message.telemetry_missing = True
    record = assessment_record(message)
    assert (record["risk"], record["reason"], record["action"]) == ("high", "obstacle", "stop")
    assert record["stamp_ns"] == 7 * NS and record["hazard_indices"] == [0]
    assert describe(record) == "[7.000] risk high (obstacle) -> stop confidence 0.90 (no telemetry)"
