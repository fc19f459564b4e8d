"""The script of a moving scenario: the robot's timed path, each hazard's timed track, and the
room and occluders they share; the exact rates of each hazard as the moving microphone sees it.

A script is data, drawn by ``avi_ros.data.moving_scenes`` or written by hand (the named scenarios
of ``avi_ros.bag.scenario``), and rendered by ``avi_ros.bag.scenario.ScenarioRenderer``. The true
track fields follow the convention of ``avi_ros.tracking``: ``range_rate`` is d distance / dt in
the microphone frame [m/s] (both the hazard's and the robot's motion), negative: approaching;
``angular_velocity`` is the rate of the hazard's bearing from the microphone's position at that
instant, in a frame that neither turns nor moves with the robot [rad/s, counter-clockwise]: the
hazard's own motion only, 0 for a standing hazard however the robot drives and turns. Both rates
are central differences over ``RATE_STEP_S`` either side.

Units: seconds, metres, radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avi_ros.data.acoustics import ShoeboxRoom
from avi_ros.data.layout import MicPose
from avi_ros.data.render import Box
from avi_ros.taxonomy import MAX_HAZARDS
from avi_ros.units import GRAVITY_MPS2

RATE_STEP_S = 0.05  # half-width of the central differences behind the true rates [s]


def _interpolate(times: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    """Piecewise-linear value of ``values`` [K, D] at time ``t`` (held constant outside)."""
    return np.array([np.interp(t, times, values[:, d]) for d in range(values.shape[1])])


@dataclass(frozen=True)
class RobotPath:
    """Timed waypoints (t [s], x [m], y [m], yaw [rad]) of the microphone in the world.

    The robot holds its last pose after the last waypoint; ``mic_height_m`` is constant.
    """

    waypoints: tuple[tuple[float, float, float, float], ...]
    mic_height_m: float

    def pose(self, t: float) -> MicPose:
        table = np.asarray(self.waypoints, dtype=np.float64)
        x, y, yaw = _interpolate(table[:, 0], table[:, 1:], t)
        return MicPose((float(x), float(y), self.mic_height_m), float(yaw))

    def _slope(self, t: float) -> np.ndarray:
        """d(x, y, yaw)/dt [m/s, m/s, rad/s] of the segment holding ``t`` (0 outside the waypoints;
        at a waypoint, the segment that starts there)."""
        table = np.asarray(self.waypoints, dtype=np.float64)
        segment = int(np.searchsorted(table[:, 0], t, side="right")) - 1
        if segment < 0 or segment >= len(table) - 1:
            return np.zeros(3)
        a, b = table[segment], table[segment + 1]
        return (b[1:] - a[1:]) / (b[0] - a[0])

    def yaw_rate(self, t: float) -> float:
        """The robot's yaw rate at ``t`` [rad/s, counter-clockwise]: what its odometry reports."""
        return float(self._slope(t)[2])

    def forward_speed(self, t: float) -> float:
        """The robot's speed along its heading at ``t`` [m/s] (odometry's twist.linear.x)."""
        vx, vy, _ = self._slope(t)
        yaw = self.pose(t).yaw_rad
        return float(vx * math.cos(yaw) + vy * math.sin(yaw))

    def imu(self, t: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """What a level IMU aligned with the base reads at ``t`` (REP-145): linear acceleration
        [m/s², gravity included: +``GRAVITY_MPS2`` on z] and angular velocity [rad/s]. Forward:
        the change of ``forward_speed`` as a central difference over ``RATE_STEP_S`` either side
        (the waypoints' speed steps spread over 0.1 s); lateral: the centripetal ``speed · yaw
        rate``; angular velocity: (0, 0, ``yaw_rate``)."""
        h = RATE_STEP_S
        forward = (self.forward_speed(t + h) - self.forward_speed(t - h)) / (2.0 * h)
        yaw_rate = self.yaw_rate(t)
        return (forward, self.forward_speed(t) * yaw_rate, GRAVITY_MPS2), (0.0, 0.0, yaw_rate)


@dataclass(frozen=True)
class HazardTrack:
    """A hazard sounding from ``start_s`` to ``end_s`` while moving through timed waypoints.

    waypoints: (t [s], x, y, z [m]) of the source (the centre of its object) in the world.
    snr_db: its level over the background noise while it sounds.
    """

    class_name: str
    start_s: float
    end_s: float
    waypoints: tuple[tuple[float, float, float, float], ...]
    snr_db: float = 15.0

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s

    def position(self, t: float) -> np.ndarray:
        table = np.asarray(self.waypoints, dtype=np.float64)
        return _interpolate(table[:, 0], table[:, 1:], t)

    def heading(self, t: float) -> float:
        """Yaw of the object [rad]: along its motion, or the first segment's direction when still."""
        ahead = self.position(t + 0.1) - self.position(t - 0.1)
        if np.hypot(ahead[0], ahead[1]) < 1e-6:
            table = np.asarray(self.waypoints, dtype=np.float64)
            ahead = table[-1, 1:] - table[0, 1:]
        return float(math.atan2(ahead[1], ahead[0]))


@dataclass(frozen=True)
class ScenarioScript:
    """The world and the story of one scenario: its room, occluders, robot path and hazard tracks."""

    name: str
    description: str
    duration_s: float
    room: ShoeboxRoom
    occluders: tuple[Box, ...]
    robot: RobotPath
    hazards: tuple[HazardTrack, ...]
    noise_dbfs: float = -35.0

    def __post_init__(self) -> None:
        for track in self.hazards:
            if not 0.0 <= track.start_s < track.end_s:
                raise ValueError(f"scenario {self.name}: hazard '{track.class_name}' has an empty time span")
        # The most tracks sounding at once is reached at some track's start.
        for track in self.hazards:
            if len(self.active_hazards(track.start_s)) > MAX_HAZARDS:
                raise ValueError(
                    f"scenario {self.name}: more than {MAX_HAZARDS} hazards sound at {track.start_s} s"
                )

    def active_hazards(self, t: float) -> list[HazardTrack]:
        """Every hazard sounding at ``t`` [s], in script order (empty between hazards)."""
        return [h for h in self.hazards if h.active(t)]

    def active_track_ids(self, t: float) -> list[int]:
        """The track ids (script index + 1) of the hazards sounding at ``t`` [s], in script order."""
        return [i + 1 for i, h in enumerate(self.hazards) if h.active(t)]

    def rates(self, track: HazardTrack, t: float) -> tuple[float, float]:
        """(range rate [m/s, negative: approaching], angular velocity [rad/s, CCW]) of ``track``
        at ``t`` seen from the microphone; the angular velocity is of the world bearing from the
        microphone's position at ``t``, so neither the robot's turning nor its driving is in it
        (module docstring)."""
        h = RATE_STEP_S
        before, after = self.robot.pose(t - h), self.robot.pose(t + h)
        near = track.position(t - h) - np.asarray(before.position_m)
        far = track.position(t + h) - np.asarray(after.position_m)
        range_rate = (np.linalg.norm(far) - np.linalg.norm(near)) / (2.0 * h)
        here = np.asarray(self.robot.pose(t).position_m)
        near, far = track.position(t - h) - here, track.position(t + h) - here
        turn = math.remainder(math.atan2(far[1], far[0]) - math.atan2(near[1], near[0]), 2.0 * math.pi)
        return float(range_rate), turn / (2.0 * h)
