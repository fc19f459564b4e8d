"""Telemetry alignment to a frame stamp: nearest sample before, max age, missing flags, bad samples."""

from __future__ import annotations

import numpy as np
import pytest

from avi_ros.events import EventCounter
from avi_ros.telemetry import TELEMETRY_FIELDS, TelemetryBuffer, TelemetryConfig, TelemetryReading

MS = 1_000_000  # ns


def _buffer(max_age_s: float = 0.2) -> tuple[TelemetryBuffer, EventCounter]:
    events = EventCounter()
    return TelemetryBuffer(TelemetryConfig(max_age_s=max_age_s), events), events


def test_the_vector_layout_is_the_contracts():
    assert TELEMETRY_FIELDS == ("ax", "ay", "az", "gx", "gy", "gz", "v", "w")
    absent = TelemetryReading.absent()
    assert absent.vector.shape == (8,) and not absent.vector.any() and absent.missing


def test_each_part_takes_the_nearest_sample_at_or_before_the_frame():
    buffer, events = _buffer()
    for t in (0, 10, 20, 30):  # IMU at 100 Hz, values tagged by time
        buffer.add_imu(t * MS, (t, 0.0, 9.81), (0.0, 0.0, t / 100))
    buffer.add_odometry(5 * MS, 1.0, 0.1)
    buffer.add_odometry(25 * MS, 1.5, 0.2)
    reading = buffer.reading(24 * MS)
    assert not reading.missing
    np.testing.assert_allclose(reading.vector, [20.0, 0.0, 9.81, 0.0, 0.0, 0.2, 1.0, 0.1], rtol=1e-6)
    exact = buffer.reading(30 * MS)
    assert exact.vector[0] == 30.0 and exact.vector[6] == 1.5
    assert events.snapshot() == {}


def test_a_stale_part_is_zeros_flagged_and_counted_the_other_part_is_kept():
    buffer, events = _buffer(max_age_s=0.05)
    buffer.add_imu(0, (0.1, 0.0, 9.81), (0.0, 0.0, 0.0))
    buffer.add_odometry(90 * MS, 0.8, 0.0)
    reading = buffer.reading(100 * MS)  # IMU 100 ms old > 50 ms
    assert reading.imu_missing and not reading.odom_missing and reading.missing
    assert not reading.vector[:6].any()
    assert reading.vector[6] == pytest.approx(0.8)
    assert events["imu.stale"] == 1


def test_nothing_before_the_frame_is_missing_but_not_stale():
    buffer, events = _buffer()
    buffer.add_imu(200 * MS, (0.0, 0.0, 9.81), (0.0, 0.0, 0.0))  # only after the frame
    reading = buffer.reading(100 * MS)
    assert reading.imu_missing and reading.odom_missing
    assert not reading.vector.any()
    assert events.snapshot() == {}


def test_nan_samples_are_counted_and_never_used():
    buffer, events = _buffer()
    buffer.add_imu(0, (0.2, 0.0, 9.81), (0.0, 0.0, 0.0))
    assert not buffer.add_imu(10 * MS, (float("nan"), 0.0, 9.81), (0.0, 0.0, 0.0))
    assert not buffer.add_odometry(10 * MS, float("inf"), 0.0)
    reading = buffer.reading(20 * MS)
    assert reading.vector[0] == pytest.approx(0.2)  # the earlier, finite sample
    assert reading.odom_missing
    assert events["imu.non_finite"] == 1 and events["odom.non_finite"] == 1


def test_out_of_order_samples_are_dropped_and_a_clock_jump_back_restarts():
    buffer, events = _buffer()
    buffer.add_odometry(100 * MS, 1.0, 0.0)
    assert not buffer.add_odometry(90 * MS, 9.0, 0.0)
    assert buffer.reading(100 * MS).vector[6] == pytest.approx(1.0)
    assert events["odom.out_of_order"] == 1
    assert buffer.add_odometry(100 * MS - 5_000 * MS, 0.3, 0.0)  # 5 s back: a bag loop
    assert events["odom.time_backwards"] == 1
    assert buffer.reading(-4_900 * MS).vector[6] == pytest.approx(0.3)
    assert buffer.reading(100 * MS).odom_missing  # the 1.0 sample is gone; 0.3 is 5 s old: stale


def test_reset_forgets_every_sample():
    buffer, _ = _buffer()
    buffer.add_odometry(0, 1.0, 0.0)
    buffer.reset()
    assert buffer.reading(0).odom_missing


def test_the_buffer_is_bounded():
    events = EventCounter()
    buffer = TelemetryBuffer(TelemetryConfig(capacity=3, max_age_s=10.0), events)
    for t in range(10):
        buffer.add_odometry(t * MS, float(t), 0.0)
    assert buffer.reading(9 * MS).vector[6] == 9.0
    assert buffer.reading(6 * MS).odom_missing  # samples 0..6 fell out of the 3-sample buffer


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="max_age_s"):
        TelemetryConfig(max_age_s=0.0)
