"""``avi-ros play``: publish a rosbag2 file through rclpy with its original timing.

For systems without ``ros2 bag``. Messages are republished as the CDR bytes stored in the
bag (rclpy's raw publish), so nothing is decoded and re-encoded, and any type whose Python
message package is installed can be played. Message *i* is published at
``start + (t_i - t_0) / rate`` on the monotonic clock, where ``t_i`` is its receive time in
the bag; a late message is published at once and the schedule is not shifted, so delays
never accumulate. With ``clock`` the player also publishes ``/clock`` (bag time) at
``clock_rate_hz``, for nodes running with ``use_sim_time``. The clock and the sleeping come
from a ``PlayTimer`` (the monotonic clock; tests pass a simulated one).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import rclpy
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from avi_ros.bag.io import BagError, RawBagMessage, bag_topics, read_raw
from avi_ros.ros.conversions import ros_message_class
from avi_ros.units import NS_PER_S

# Topics whose late subscribers must still get the last messages (tf2 static transforms).
LATCHED_TOPICS = ("/tf_static",)


class PlayTimer(Protocol):
    """Where the player reads the time [s] and how it waits."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class MonotonicTimer:
    """The real time source: ``time.monotonic`` and ``time.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class PlayOptions:
    """How to play a bag.

    rate: playback speed factor (2.0 = twice as fast). clock: also publish /clock.
    clock_rate_hz: /clock publication rate [Hz]. loop: start again at the end, forever.
    topics: play only these (None: all). remap: bag topic -> published topic.
    wait_for: before playing, wait until each of these (published) topics has a subscriber,
        at most ``wait_timeout_s`` seconds; so the first messages are not lost to discovery.
    """

    rate: float = 1.0
    clock: bool = False
    clock_rate_hz: float = 40.0
    loop: bool = False
    topics: tuple[str, ...] | None = None
    remap: dict[str, str] = field(default_factory=dict)
    wait_for: tuple[str, ...] = ()
    wait_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.rate > 0.0:
            raise ValueError(f"--rate must be > 0, got {self.rate}")
        if not self.clock_rate_hz > 0.0:
            raise ValueError(f"--clock-rate must be > 0 Hz, got {self.clock_rate_hz}")


@dataclass
class PlayStats:
    """What a play did: messages per published topic, skipped topics, lateness [s], and how long it
    played [s] (also when it was interrupted)."""

    published: Counter[str] = field(default_factory=Counter)
    skipped_topics: dict[str, str] = field(default_factory=dict)
    max_lateness_s: float = 0.0
    wall_duration_s: float = 0.0


def _qos_for(topic: str) -> QoSProfile:
    if topic in LATCHED_TOPICS:
        return QoSProfile(
            depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
    return QoSProfile(depth=10)  # system default: reliable, volatile (REP-2003 for publishers)


class BagPlayer:
    """Creates one publisher per playable topic of a bag and plays it on a schedule."""

    def __init__(
        self,
        node: Node,
        bag: Path | str,
        options: PlayOptions = PlayOptions(),
        timer: PlayTimer | None = None,
    ) -> None:
        self.node = node
        self.bag = Path(bag)
        self.options = options
        self.timer = timer or MonotonicTimer()
        self.stats = PlayStats()
        available = bag_topics(self.bag)
        wanted = list(options.topics) if options.topics is not None else sorted(available)
        missing = [t for t in wanted if t not in available]
        if missing:
            raise BagError(f"{self.bag}: topics {missing} not in the bag; it has {sorted(available)}")
        self._publishers: dict[str, Publisher] = {}
        for topic in wanted:
            try:
                msg_class = ros_message_class(available[topic])
            except (ImportError, AttributeError, ValueError):
                self.stats.skipped_topics[topic] = available[topic]
                node.get_logger().warning(
                    f"skipping {topic}: message type {available[topic]} is not installed for rclpy"
                )
                continue
            out_topic = options.remap.get(topic, topic)
            self._publishers[topic] = node.create_publisher(msg_class, out_topic, _qos_for(out_topic))
        if not self._publishers:
            raise BagError(f"{self.bag}: no topic has a message type installed for rclpy")
        self._clock_publisher = node.create_publisher(Clock, "/clock", 10) if options.clock else None
        self._clock_ns = 0

    @property
    def topics(self) -> list[str]:
        """Bag topics that will be played."""
        return list(self._publishers)

    def wait_for_subscribers(self) -> None:
        """Block until every topic of ``options.wait_for`` has a subscriber; BagError on timeout."""
        deadline = self.timer.now() + self.options.wait_timeout_s
        remaining = set(self.options.wait_for)
        while remaining:
            remaining = {t for t in remaining if self.node.count_subscribers(t) == 0}
            if not remaining:
                return
            if self.timer.now() > deadline:
                waited = self.options.wait_timeout_s
                raise BagError(f"no subscriber appeared on {sorted(remaining)} within {waited:.0f} s")
            self.timer.sleep(0.05)

    def play(self) -> PlayStats:
        """Play once (or forever with ``loop``); returns the statistics.

        ``stats.wall_duration_s`` is set however playing ends, so an interrupted ``--loop``
        reports how long it played.
        """
        self.wait_for_subscribers()
        started = self.timer.now()
        try:
            while True:
                self._play_once(read_raw(self.bag, topics=self.topics))
                if not self.options.loop:
                    break
        finally:
            self.stats.wall_duration_s = self.timer.now() - started
        return self.stats

    def _play_once(self, messages: Iterable[RawBagMessage]) -> None:
        start_wall: float | None = None
        first_ns = 0
        self._clock_ns = 0  # a new loop may start earlier: time jumps back once, as with ros2 bag play
        next_clock = 0.0
        for message in messages:
            if start_wall is None:
                start_wall, first_ns = self.timer.now(), message.stamp_ns
                next_clock = start_wall
            due = start_wall + (message.stamp_ns - first_ns) / NS_PER_S / self.options.rate
            next_clock = self._wait_until(due, message.stamp_ns, start_wall, first_ns, next_clock)
            self.stats.max_lateness_s = max(self.stats.max_lateness_s, self.timer.now() - due)
            if self._clock_publisher is not None:
                self._publish_clock(message.stamp_ns)
            self._publishers[message.topic].publish(message.data)
            self.stats.published[self.options.remap.get(message.topic, message.topic)] += 1

    def _wait_until(
        self, due: float, due_ns: int, start_wall: float, first_ns: int, next_clock: float
    ) -> float:
        """Sleep until ``due`` (monotonic seconds), publishing /clock on its schedule meanwhile.

        /clock never passes ``due_ns``, the bag time of the message waiting to go out, so ROS
        time never runs ahead of a message not yet delivered.
        """
        period = 1.0 / self.options.clock_rate_hz
        while True:
            now = self.timer.now()
            if self._clock_publisher is not None and now >= next_clock:
                bag_ns = first_ns + round((now - start_wall) * self.options.rate * NS_PER_S)
                self._publish_clock(min(bag_ns, due_ns))
                next_clock = max(next_clock + period, now)
            if now >= due:
                return next_clock
            wake = min(due, next_clock) if self._clock_publisher is not None else due
            self.timer.sleep(max(wake - now, 0.0))

    def _publish_clock(self, bag_ns: int) -> None:
        """Publish bag time ``bag_ns``, never earlier than the last value (ROS time must not step back)."""
        assert self._clock_publisher is not None
        self._clock_ns = max(self._clock_ns, int(bag_ns))
        clock = Clock()
        clock.clock.sec, clock.clock.nanosec = divmod(self._clock_ns, NS_PER_S)
        self._clock_publisher.publish(clock)


def run_play(bag: Path | str, options: PlayOptions, ros_args: list[str] | None = None) -> PlayStats:
    """Initialise rclpy, play ``bag`` from a node named ``avi_ros_player``, shut down.

    Ctrl-C stops playback cleanly and returns the statistics so far.
    """
    context = rclpy.Context()
    rclpy.init(args=ros_args, context=context)
    node = rclpy.create_node("avi_ros_player", context=context)
    try:
        player = BagPlayer(node, bag, options)
        node.get_logger().info(
            f"playing {bag} at rate {options.rate}{' with /clock' if options.clock else ''}: "
            f"{', '.join(player.topics)}"
        )
        try:
            return player.play()
        except KeyboardInterrupt:
            node.get_logger().info("interrupted")
            return player.stats
    finally:
        node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
