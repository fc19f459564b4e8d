"""From one frame to the next: how much time passed, how far the robot turned, and time jumps.

When the robot turns at yaw rate ``w`` [rad/s, counter-clockwise positive, REP-103] for ``dt``
seconds, a source that stands still in the world moves by ``-w · dt`` in azimuth in the robot
(microphone) frame. The tracker shifts each track's predicted azimuth by that amount, so its
filter's rate is the rate in a frame that moves with the robot but does not turn with it. The
microphone's z axis is taken to be parallel to the base's, so the base's yaw rate is the
microphone's. Without odometry the shift is 0 and the rate is the apparent one.

A stamp older than the previous frame's (the clock jumped back: a bag looped, a simulator
restarted) or a gap longer than ``reset_gap_s`` means the tracks can no longer be predicted:
the step says so, and it is counted under ``tracks.time_backwards`` / ``tracks.gap`` in the
shared ``EventCounter``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avi_ros.events import TRACKS_GAP, TRACKS_TIME_BACKWARDS, EventCounter
from avi_ros.telemetry import TELEMETRY_FIELDS, TelemetryReading
from avi_ros.units import NS_PER_S


@dataclass(frozen=True)
class FrameStep:
    """dt_s: time since the previous frame [s] (0 after a reset); azimuth_shift_rad: how far a
    static source's azimuth moved in the robot frame [rad]; reset: forget every track first."""

    dt_s: float
    azimuth_shift_rad: float
    reset: bool


class FrameClock:
    """Turns each frame's stamp [ns] and yaw rate [rad/s] into a ``FrameStep``."""

    def __init__(self, reset_gap_s: float, events: EventCounter | None = None) -> None:
        self.reset_gap_s = reset_gap_s
        self.events = events if events is not None else EventCounter()
        self._last_ns: int | None = None

    def step(self, stamp_ns: int, yaw_rate_rps: float | None) -> FrameStep:
        """The step to the frame at ``stamp_ns``; ``yaw_rate_rps`` None: no odometry."""
        last, self._last_ns = self._last_ns, int(stamp_ns)
        if last is None:
            return FrameStep(0.0, 0.0, reset=False)
        dt_s = (stamp_ns - last) / NS_PER_S
        if dt_s < 0.0:
            self.events.record(
                TRACKS_TIME_BACKWARDS, f"frame stamp {-dt_s:.3f} s older than the last: tracks reset"
            )
            return FrameStep(0.0, 0.0, reset=True)
        if dt_s > self.reset_gap_s:
            self.events.record(
                TRACKS_GAP, f"{dt_s:.3f} s between frames (more than {self.reset_gap_s} s): tracks reset"
            )
            return FrameStep(0.0, 0.0, reset=True)
        shift = -(yaw_rate_rps or 0.0) * dt_s
        return FrameStep(dt_s, shift, reset=False)

    def reset(self) -> None:
        """Forget the previous stamp: the next frame starts afresh."""
        self._last_ns = None


def odometry_twist(msg: Any) -> tuple[float, float]:
    """A ``nav_msgs/Odometry`` (rclpy or rosbags) -> (forward speed [m/s], yaw rate [rad/s]) of its
    twist, in its ``child_frame_id``: the one conversion the node and the replay share."""
    twist = msg.twist.twist
    return float(twist.linear.x), float(twist.angular.z)


def yaw_rate(reading: TelemetryReading) -> float | None:
    """The robot's yaw rate [rad/s] in a telemetry reading; None when it has no odometry, so the
    tracker's angular velocities are the apparent ones."""
    return None if reading.odom_missing else float(reading.vector[TELEMETRY_FIELDS.index("w")])
