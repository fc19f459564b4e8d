"""The robot's own motion at a frame stamp: the telemetry vector [8] that the tracker (its yaw rate)
and the decision stage read.

The vector is ``(ax, ay, az, gx, gy, gz, v, w)``: IMU linear acceleration [m/s², gravity
included, as ``sensor_msgs/Imu`` reports it] and angular rate [rad/s] in the robot's base frame
(REP-103: x forward, y left, z up), then the odometry's forward speed ``v`` [m/s] and yaw rate
``w`` [rad/s]. The IMU part and the odometry part come from two streams and are aligned
separately: each takes the **nearest sample at or before** the frame stamp, if it is at most
``max_age_s`` older than the frame. A part without such a sample is zeros, and the reading says
it is missing (``TelemetryReading.missing``), so the model and the message can tell "standing
still" from "no telemetry".

Bad samples never reach the vector; each is counted under ``<stream>.<reason>`` in the shared
``EventCounter`` (the node's /diagnostics): ``imu.non_finite`` / ``odom.non_finite`` (NaN or
inf), ``imu.wrong_frame`` / ``odom.wrong_frame`` (counted by the ROS edge, which knows the frame
ids), ``imu.out_of_order`` (older than the newest sample, dropped), ``imu.time_backwards`` (far
older: the clock jumped back, the buffer restarts), and ``imu.stale`` (a frame found only samples
older than ``max_age_s``). Nothing here imports ROS.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avi_ros.events import NON_FINITE, EventCounter, stream_key
from avi_ros.topics import TELEMETRY_STREAMS
from avi_ros.units import NS_PER_S

TELEMETRY_FIELDS: tuple[str, ...] = ("ax", "ay", "az", "gx", "gy", "gz", "v", "w")
TELEMETRY_SIZE = len(TELEMETRY_FIELDS)
IMU_SIZE = 6  # (ax, ay, az, gx, gy, gz): the first part of the vector
ODOM_SIZE = 2  # (v, w): the second part

STREAMS = TELEMETRY_STREAMS  # the diagnostics key of each stream is its TelemetryTopics field name
IMU, ODOM = STREAMS
WRONG_FRAME = "wrong_frame"  # a frame id other than the configured one
STALE = "stale"  # the newest sample before a frame is older than max_age_s
OUT_OF_ORDER = "out_of_order"  # a sample older than the newest one (dropped)
TIME_BACKWARDS = "time_backwards"  # a sample far older than the newest one: the buffer restarts


@dataclass(frozen=True)
class TelemetryConfig:
    """How telemetry is aligned to frames.

    max_age_s: the oldest a sample may be, relative to the frame stamp, to be used [s];
    capacity: samples kept per stream (400 is 2 s of a 200 Hz IMU);
    backwards_reset_s: a sample this much older than the newest means the clock jumped back [s].
    """

    max_age_s: float = 0.2
    capacity: int = 400
    backwards_reset_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.max_age_s > 0.0:
            raise ValueError(f"telemetry max_age_s: expected > 0 s, got {self.max_age_s}")
        if self.capacity < 1:
            raise ValueError(f"telemetry capacity: expected >= 1 sample, got {self.capacity}")
        if not self.backwards_reset_s > 0.0:
            raise ValueError(f"telemetry backwards_reset_s: expected > 0 s, got {self.backwards_reset_s}")


@dataclass(frozen=True)
class TelemetryReading:
    """The vector [8] (float32) at a frame stamp and which of its parts are zeros for lack of data."""

    vector: np.ndarray
    imu_missing: bool
    odom_missing: bool

    @property
    def missing(self) -> bool:
        """True when any part of the vector is zeros because no usable sample was there."""
        return self.imu_missing or self.odom_missing

    @classmethod
    def absent(cls) -> TelemetryReading:
        """No telemetry at all: zeros, both parts missing."""
        return cls(np.zeros(TELEMETRY_SIZE, dtype=np.float32), True, True)


class _Stream:
    """Time-ordered samples of one stream: (stamp [ns], values)."""

    def __init__(self, capacity: int) -> None:
        self.stamps: deque[int] = deque(maxlen=capacity)
        self.values: deque[np.ndarray] = deque(maxlen=capacity)

    def newest_at_or_before(self, stamp_ns: int) -> tuple[int, np.ndarray] | None:
        index = bisect.bisect_right(self.stamps, stamp_ns) - 1
        if index < 0:
            return None
        return self.stamps[index], self.values[index]


class TelemetryBuffer:
    """Bounded IMU and odometry samples, aligned on request to a frame stamp (module docstring).

    Thread-safe: sensor callbacks add, the inference worker reads.
    """

    def __init__(self, config: TelemetryConfig | None = None, events: EventCounter | None = None) -> None:
        self.config = config or TelemetryConfig()
        self.events = events if events is not None else EventCounter()
        self._lock = threading.Lock()
        self._streams = {name: _Stream(self.config.capacity) for name in STREAMS}

    def add_imu(
        self, stamp_ns: int, linear_acceleration: Sequence[float], angular_velocity: Sequence[float]
    ) -> bool:
        """Store an IMU sample (acceleration [m/s²], angular rate [rad/s], base frame); False: rejected."""
        values = np.asarray([*linear_acceleration, *angular_velocity], dtype=np.float32)
        if values.shape != (IMU_SIZE,):
            raise ValueError(f"an IMU sample has 3 + 3 values, got {values.shape}")
        return self._add(IMU, stamp_ns, values)

    def add_odometry(self, stamp_ns: int, speed_mps: float, yaw_rate_rps: float) -> bool:
        """Store an odometry sample (forward speed [m/s], yaw rate [rad/s]); False when rejected."""
        return self._add(ODOM, stamp_ns, np.asarray([speed_mps, yaw_rate_rps], dtype=np.float32))

    def _add(self, stream: str, stamp_ns: int, values: np.ndarray) -> bool:
        if not np.all(np.isfinite(values)):
            self.events.record(stream_key(stream, NON_FINITE), f"{stream} sample with NaN or inf ignored")
            return False
        reset_ns = int(self.config.backwards_reset_s * NS_PER_S)
        with self._lock:
            samples = self._streams[stream]
            newest = samples.stamps[-1] if samples.stamps else None
            if newest is not None and stamp_ns < newest:
                if newest - stamp_ns <= reset_ns:
                    reason = OUT_OF_ORDER
                else:
                    reason = TIME_BACKWARDS
                    samples.stamps.clear()
                    samples.values.clear()
            else:
                reason = None
            if reason != OUT_OF_ORDER:
                samples.stamps.append(int(stamp_ns))
                samples.values.append(values)
        if reason is not None:
            self.events.record(
                stream_key(stream, reason),
                f"{stream} stamp {(newest - stamp_ns) / NS_PER_S:.3f} s older than the newest sample",
            )
        return reason != OUT_OF_ORDER

    def reading(self, stamp_ns: int) -> TelemetryReading:
        """The telemetry vector at a frame stamp [ns] (module docstring: nearest before, max age)."""
        max_age_ns = int(self.config.max_age_s * NS_PER_S)
        parts, missing = [], []
        for stream, size in ((IMU, IMU_SIZE), (ODOM, ODOM_SIZE)):
            with self._lock:
                found = self._streams[stream].newest_at_or_before(stamp_ns)
            if found is not None and stamp_ns - found[0] > max_age_ns:
                self.events.record(
                    stream_key(stream, STALE),
                    f"newest {stream} sample is {(stamp_ns - found[0]) / NS_PER_S:.3f} s older than the "
                    f"frame (max {self.config.max_age_s} s): telemetry part zeroed",
                )
                found = None
            parts.append(found[1] if found is not None else np.zeros(size, dtype=np.float32))
            missing.append(found is None)
        return TelemetryReading(np.concatenate(parts).astype(np.float32), missing[0], missing[1])

    def reset(self) -> None:
        """Forget every sample (the clock jumped back, or the node deactivates)."""
        with self._lock:
            for samples in self._streams.values():
                samples.stamps.clear()
                samples.values.clear()
