"""From one frame to the next: how much time passed, how the robot moved, and time jumps.

The robot's motion comes from its odometry as a ``RobotMotion``: forward speed ``v`` [m/s] along
its x axis and yaw rate ``w`` [rad/s, counter-clockwise positive, REP-103], taken as constant
between two frames (a unicycle, as a differential-drive base moves). Over ``dt`` seconds the
robot drives along an arc and turns by ``w · dt``; a source that stands still in the world then
moves, in the robot (microphone) frame, by the inverse of that motion: ``FrameStep.move`` gives
its new azimuth, elevation and distance. The tracker applies this move to each track's
prediction, so its filters' rates are those of the hazard's own motion, in a frame that neither
turns nor moves with the robot: a standing hazard has rates of 0 while the robot drives past it.
``ego_range_rate`` is the part of the distance's rate that the robot's own driving makes, which
the tracker adds back to publish the range rate between hazard and robot (what time-to-contact
needs). The microphone is taken to sit on the base's vertical axis with its z axis parallel to
the base's. Without odometry the move is the identity and the rates are the apparent ones.

A stamp older than the previous frame's (the clock jumped back: a bag looped, a simulator
restarted) or a gap longer than ``reset_gap_s`` means the tracks can no longer be predicted:
the step says so, and it is counted under ``tracks.time_backwards`` / ``tracks.gap`` in the
shared ``EventCounter``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from avi_ros.events import TRACKS_GAP, TRACKS_TIME_BACKWARDS, EventCounter
from avi_ros.telemetry import TELEMETRY_FIELDS, TelemetryReading
from avi_ros.units import NS_PER_S

_STRAIGHT_RAD = 1e-9  # below this turn over one step the arc is taken as a straight line [rad]


@dataclass(frozen=True)
class RobotMotion:
    """The robot's odometry at a frame: forward speed [m/s] and yaw rate [rad/s, CCW]."""

    speed_mps: float
    yaw_rate_rps: float


@dataclass(frozen=True)
class FrameStep:
    """dt_s: time since the previous frame [s] (0 after a reset); reset: forget every track first.

    dx_m, dy_m: the robot's displacement over the step, in the previous robot frame [m];
    turn_rad: how far it turned [rad, CCW]; speed_mps: its forward speed [m/s]. All 0 without
    odometry."""

    dt_s: float
    reset: bool
    dx_m: float = 0.0
    dy_m: float = 0.0
    turn_rad: float = 0.0
    speed_mps: float = 0.0

    @classmethod
    def of(cls, dt_s: float, motion: RobotMotion | None) -> FrameStep:
        """The step over ``dt_s`` [s] of a robot moving as ``motion`` (None: no odometry)."""
        if motion is None:
            return cls(dt_s, reset=False)
        turn = motion.yaw_rate_rps * dt_s
        arc = motion.speed_mps * dt_s
        if abs(turn) < _STRAIGHT_RAD:
            dx, dy = arc, 0.0
        else:
            radius = arc / turn
            dx, dy = radius * math.sin(turn), radius * (1.0 - math.cos(turn))
        return cls(dt_s, False, dx, dy, turn, motion.speed_mps)

    @property
    def moves(self) -> bool:
        """Whether the robot moved or turned over this step."""
        return bool(self.dx_m or self.dy_m or self.turn_rad)

    def move(self, azimuth: float, elevation: float, distance: float) -> tuple[float, float, float]:
        """Where a world-fixed point at (azimuth [rad], elevation [rad], distance [m]) in the
        previous robot frame is in this one: (azimuth in [-π, π), elevation, distance)."""
        horizontal = distance * math.cos(elevation)
        height = distance * math.sin(elevation)
        x = horizontal * math.cos(azimuth) - self.dx_m
        y = horizontal * math.sin(azimuth) - self.dy_m
        cos_t, sin_t = math.cos(self.turn_rad), math.sin(self.turn_rad)
        x, y = cos_t * x + sin_t * y, -sin_t * x + cos_t * y
        horizontal = math.hypot(x, y)
        return math.atan2(y, x), math.atan2(height, horizontal), math.hypot(horizontal, height)

    def ego_range_rate(self, azimuth: float, elevation: float) -> float:
        """The rate [m/s] at which the robot's driving changes its distance to a world-fixed point
        in direction (azimuth, elevation) [rad]: ``-v cos(azimuth) cos(elevation)``."""
        return -self.speed_mps * math.cos(azimuth) * math.cos(elevation)


class FrameClock:
    """Turns each frame's stamp [ns] and the robot's motion into a ``FrameStep``."""

    def __init__(self, reset_gap_s: float, events: EventCounter | None = None) -> None:
        self.reset_gap_s = reset_gap_s
        self.events = events if events is not None else EventCounter()
        self._last_ns: int | None = None

    def step(self, stamp_ns: int, motion: RobotMotion | None) -> FrameStep:
        """The step to the frame at ``stamp_ns``; ``motion`` None: no odometry."""
        last, self._last_ns = self._last_ns, int(stamp_ns)
        if last is None:
            return FrameStep(0.0, reset=False)
        dt_s = (stamp_ns - last) / NS_PER_S
        if dt_s < 0.0:
            self.events.record(
                TRACKS_TIME_BACKWARDS, f"frame stamp {-dt_s:.3f} s older than the last: tracks reset"
            )
            return FrameStep(0.0, reset=True)
        if dt_s > self.reset_gap_s:
            self.events.record(
                TRACKS_GAP, f"{dt_s:.3f} s between frames (more than {self.reset_gap_s} s): tracks reset"
            )
            return FrameStep(0.0, reset=True)
        return FrameStep.of(dt_s, motion)

    def reset(self) -> None:
        """Forget the previous stamp: the next frame starts afresh."""
        self._last_ns = None


def odometry_twist(msg: Any) -> tuple[float, float]:
    """A ``nav_msgs/Odometry`` (rclpy or rosbags) -> (forward speed [m/s], yaw rate [rad/s]) of its
    twist, in its ``child_frame_id``: the one conversion the node and the replay share."""
    twist = msg.twist.twist
    return float(twist.linear.x), float(twist.angular.z)


def robot_motion(reading: TelemetryReading) -> RobotMotion | None:
    """The robot's odometry in a telemetry reading; None when it has no odometry, so the tracker's
    rates are the apparent ones."""
    if reading.odom_missing:
        return None
    vector = reading.vector
    return RobotMotion(float(vector[TELEMETRY_FIELDS.index("v")]), float(vector[TELEMETRY_FIELDS.index("w")]))
