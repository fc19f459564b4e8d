"""The robot's telemetry at the ROS edge: optional Imu and Odometry subscriptions into the core buffer.

``TelemetryInput`` subscribes (sensor-data QoS, topics by parameter; an empty topic means no
subscription) and hands each message to ``avi_ros.telemetry.TelemetryBuffer``, which
aligns the samples to frame stamps. Its callbacks are O(1): check, convert, store. Bad telemetry
is counted in the node's ``EventCounter`` like every other input, so it shows in /diagnostics
(``bad.imu.non_finite``, ``bad.odom.wrong_frame``, ``bad.imu.stale``, ...) and in the throttled
warnings; the node keeps running and the affected part of the vector is zeros, flagged missing.

The IMU is read as REP-145 ``sensor_msgs/Imu`` (linear acceleration with gravity, angular
velocity) and must be mounted aligned with the robot base: no rotation is applied, so an IMU
in another frame (``telemetry.imu_frame``) is rejected rather than misread. The odometry gives
the forward speed ``twist.twist.linear.x`` and yaw rate ``twist.twist.angular.z`` in its
``child_frame_id`` (``telemetry.base_frame``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu

from avi_ros.events import EventCounter, stream_key
from avi_ros.ros.params import ParamSpec, declare_parameters
from avi_ros.ros.qos import mismatch_callbacks, sensor_qos
from avi_ros.sensor_decoding import SensorInputError, checked_stamp_ns
from avi_ros.telemetry import (
    IMU,
    ODOM,
    WRONG_FRAME,
    TelemetryBuffer,
    TelemetryConfig,
    TelemetryReading,
)
from avi_ros.topics import TelemetryTopics
from avi_ros.tracking.ego_motion import odometry_twist

TOPICS = TelemetryTopics()

TELEMETRY_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "telemetry.imu_topic",
        TOPICS.imu,
        "sensor_msgs/Imu topic (REP-145) of an IMU aligned with the robot base; empty: no IMU "
        "(its part of the decision stage's telemetry is zeros, flagged missing).",
    ),
    ParamSpec(
        "telemetry.odom_topic",
        TOPICS.odom,
        "nav_msgs/Odometry topic giving the forward speed and yaw rate (the decision stage's telemetry, "
        "and the robot's turning the tracker removes from angular velocities); empty: no odometry.",
    ),
    ParamSpec(
        "telemetry.imu_frame",
        "",
        "Expected header.frame_id of the IMU messages; others are ignored and counted "
        "(imu.wrong_frame). Empty: any frame.",
    ),
    ParamSpec(
        "telemetry.base_frame",
        "",
        "Expected child_frame_id of the odometry (the frame of its twist); others are ignored and "
        "counted (odom.wrong_frame). Empty: any frame.",
    ),
    ParamSpec(
        "telemetry.max_age_s",
        0.2,
        "A telemetry sample this much older than the frame stamp is not used (counted as "
        "<stream>.stale) [s].",
        0.001,
        10.0,
    ),
    ParamSpec(
        "telemetry.queue_depth",
        50,
        "Subscription queue depth of the IMU and odometry topics [messages].",
        1,
        1000,
    ),
)


@dataclass(frozen=True)
class TelemetrySettings:
    """The telemetry parameters, validated."""

    imu_topic: str
    odom_topic: str
    imu_frame: str
    base_frame: str
    buffer: TelemetryConfig
    queue_depth: int


def declare_telemetry_parameters(node: Node) -> None:
    """Declare ``TELEMETRY_PARAMETERS`` with the descriptors of the node's own parameter table."""
    declare_parameters(node, TELEMETRY_PARAMETERS)


def read_telemetry_settings(node: Node) -> TelemetrySettings:
    """Read the telemetry parameters; raises ValueError naming a bad one."""
    p = {spec.name: node.get_parameter(spec.name).value for spec in TELEMETRY_PARAMETERS}
    return TelemetrySettings(
        imu_topic=str(p["telemetry.imu_topic"]),
        odom_topic=str(p["telemetry.odom_topic"]),
        imu_frame=str(p["telemetry.imu_frame"]),
        base_frame=str(p["telemetry.base_frame"]),
        buffer=TelemetryConfig(max_age_s=float(p["telemetry.max_age_s"])),
        queue_depth=int(p["telemetry.queue_depth"]),
    )


class TelemetryInput:
    """The optional IMU and odometry subscriptions of a node and their aligned buffer.

    ``subscribe`` and ``unsubscribe`` mirror each other (the node's activate / deactivate);
    ``reading(stamp_ns)`` is what the inference worker asks for each frame. The perception node
    owns one while the decision stage (IMU and odometry) or tracking (odometry only) is on.
    """

    def __init__(self, node: Node, settings: TelemetrySettings, events: EventCounter) -> None:
        self.node = node
        self.settings = settings
        self.events = events
        self.buffer = TelemetryBuffer(settings.buffer, events)
        self._subscriptions: list[Any] = []

    def subscribe(
        self,
        qos_reliability: str,
        guard: Callable[[Callable[[Any], None]], Callable[[Any], None]] = lambda f: f,
        streams: tuple[str, ...] = (IMU, ODOM),
    ) -> None:
        """Subscribe to ``streams`` whose topic is set; ``guard`` wraps each callback (the node's guard)."""
        settings = self.settings
        for stream, msg_type, topic, callback in (
            (IMU, Imu, settings.imu_topic, self.on_imu),
            (ODOM, Odometry, settings.odom_topic, self.on_odometry),
        ):
            if stream not in streams or not topic:
                continue
            self._subscriptions.append(
                self.node.create_subscription(
                    msg_type,
                    topic,
                    guard(callback),
                    sensor_qos(qos_reliability, settings.queue_depth),
                    event_callbacks=mismatch_callbacks(
                        self.node.resolve_topic_name(topic), qos_reliability, self.node.get_logger().warning
                    ),
                )
            )

    def unsubscribe(self) -> None:
        """Mirror of ``subscribe``; also forgets every sample."""
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
        self._subscriptions = []
        self.buffer.reset()

    @property
    def subscription_count(self) -> int:
        return len(self._subscriptions)

    def _stamp_ns(self, stream: str, header: Any) -> int | None:
        try:
            return checked_stamp_ns(header.stamp)
        except SensorInputError as exc:
            self.events.record(stream_key(stream, exc.reason), f"{stream}: {exc}")
            return None

    def _frame_ok(self, stream: str, frame_id: str, expected: str) -> bool:
        if expected and frame_id != expected:
            self.events.record(
                stream_key(stream, WRONG_FRAME),
                f"{stream} in frame '{frame_id}', expected '{expected}': ignored",
            )
            return False
        return True

    def on_imu(self, msg: Imu) -> None:
        if not self._frame_ok(IMU, msg.header.frame_id, self.settings.imu_frame):
            return
        stamp_ns = self._stamp_ns(IMU, msg.header)
        if stamp_ns is None:
            return
        a, g = msg.linear_acceleration, msg.angular_velocity
        self.buffer.add_imu(stamp_ns, (a.x, a.y, a.z), (g.x, g.y, g.z))

    def on_odometry(self, msg: Odometry) -> None:
        if not self._frame_ok(ODOM, msg.child_frame_id, self.settings.base_frame):
            return
        stamp_ns = self._stamp_ns(ODOM, msg.header)
        if stamp_ns is None:
            return
        self.buffer.add_odometry(stamp_ns, *odometry_twist(msg))

    def reading(self, stamp_ns: int) -> TelemetryReading:
        """The telemetry vector aligned to a frame stamp [ns] (zeros + missing flags where none)."""
        return self.buffer.reading(stamp_ns)
