"""Late camera images turn /diagnostics to WARN with the DDS transport named as the likely cause.

A 640x480 image over Fast DDS's default transports arrives late or not at all; the node sees
images whose arrival is far behind their header stamp. The figures first (``NodeStats`` and
``diagnostic_array``, no pub/sub), then the node over real rclpy on simulated time, so an
image's age on arrival is exactly the gap the test puts between its stamp and /clock, whatever
the machine's speed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from node_harness import NS, Harness, isolated_context, make_node, wait_for
from rosgraph_msgs.msg import Clock

from avi_ros.events import CAMERA_INFO, DEPTH, RGB
from avi_ros.ros import conversions
from avi_ros.ros.diagnostics import (
    LATE_MIN_IMAGES,
    NodeStats,
    diagnostic_array,
    diagnostic_values,
)

pytestmark = pytest.mark.ros

HINT = "camera frames arrive late"  # written out: the test reads what a user reads
FIX = (
    "set FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA for the camera driver and this node, "
    "or use an RMW for large data"
)


def _status(stats: NodeStats, events: dict[str, int] | None = None, **snapshot: float) -> DiagnosticStatus:
    stats.message_in(RGB)  # inputs alive: without them the status is "no input"
    stats.message_in(RGB)
    array = diagnostic_array(
        stats.snapshot(events or {}, **snapshot), conversions.make_header(0, ""), "perception", "hw"
    )
    return array.status[0]


def _values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


class Camera:
    """Stamps a 10 Hz camera's images and hands them to ``stats`` with the ages given [ms]."""

    def __init__(self, stats: NodeStats, start_ns: int = 1000 * NS) -> None:
        self.stats, self.stamp_ns = stats, start_ns

    def send(self, ages_ms: list[float], streams: tuple[str, ...] = (RGB, DEPTH)) -> None:
        for age in ages_ms:
            self.stamp_ns += NS // 10
            for stream in streams:
                self.stats.image_arrived(stream, self.stamp_ns, self.stamp_ns + round(age * 1e6))


def test_late_images_warn_with_the_transport_its_fix_and_the_delay_p95():
    stats = NodeStats()
    ages = [5.0] * 60 + [450.0] * 20  # a quarter of the images come 445 ms after the fastest
    Camera(stats).send(ages)
    status, values = _status(stats), _values(_status(stats))
    delay_p95 = float(np.percentile(np.array(ages) - 5.0, 95))
    assert status.level == DiagnosticStatus.WARN
    assert status.message == (
        f"{HINT} (p95 {delay_p95:.0f} ms): large images over the default DDS transport; {FIX}"
    )
    assert float(values["image_delay_ms.p95"]) == pytest.approx(delay_p95)
    assert float(values["image_age_ms.p95"]) == pytest.approx(float(np.percentile(ages, 95)))
    assert float(values["image_age_ms.p50"]) == pytest.approx(5.0)
    assert float(values["image_late_share"]) == pytest.approx(0.25)


def test_timely_images_keep_the_status_ok_and_camera_info_does_not_count():
    stats = NodeStats()
    camera = Camera(stats)
    camera.send([5.0, 40.0] * 30)  # jitter within image.late_ms
    camera.send([5000.0] * 30, streams=(CAMERA_INFO,))  # small messages say nothing about large ones
    status = _status(stats)
    assert (status.level, status.message) == (DiagnosticStatus.OK, "ok")
    assert float(_values(status)["image_age_ms.p95"]) == pytest.approx(40.0)


@pytest.mark.parametrize("offset_ms", [150.0, 3 * 86_400_000.0])
def test_a_constant_latency_or_clock_offset_is_not_taken_for_the_transport(offset_ms):
    """A driver that stamps at exposure and publishes 150 ms later, or a bag played without
    --clock (stamps days behind the node's clock): reported, never hinted."""
    stats = NodeStats()
    Camera(stats).send([offset_ms, offset_ms + 10.0] * 30)
    status = _status(stats)
    assert status.level == DiagnosticStatus.OK
    assert float(_values(status)["image_age_ms.p50"]) == pytest.approx(offset_ms, abs=10.0)
    assert float(_values(status)["image_delay_ms.p95"]) == pytest.approx(10.0)


def test_the_hint_waits_for_enough_images_and_follows_the_threshold():
    stats = NodeStats()
    camera = Camera(stats)
    camera.send([5.0] * 35, streams=(RGB,))
    camera.send([450.0] * 4, streams=(RGB,))  # 10 % late, but one image short of a judgement
    assert stats.snapshot({}).images.count == LATE_MIN_IMAGES - 1
    assert _status(stats).level == DiagnosticStatus.OK
    camera.send([5.0], streams=(DEPTH,))
    assert HINT in _status(stats).message
    assert _status(stats, late_after_ms=500.0).level == DiagnosticStatus.OK


def test_stamps_going_back_start_a_new_window_and_clock_jumps_are_not_delays():
    stats = NodeStats()
    camera = Camera(stats)
    camera.send([5.0] * 30 + [450.0] * 10)
    assert HINT in _status(stats).message
    camera.stamp_ns -= 30 * NS  # the bag loops
    camera.send([5.0] * 30)
    status = _status(stats)
    assert status.level == DiagnosticStatus.OK and _values(status)["image_late_share"] == "0.000"
    camera.send([3_600_000.0] * 5)  # the node's clock jumped an hour ahead
    assert _status(stats).level == DiagnosticStatus.OK


def test_the_hint_comes_first_and_the_period_events_follow():
    stats = NodeStats()
    Camera(stats).send([5.0] * 30 + [450.0] * 10)
    status = _status(stats, events={"rgbd.unmatched": 3})
    assert status.level == DiagnosticStatus.WARN
    assert status.message.startswith(f"{HINT} (p95 445 ms)")
    assert status.message.endswith("; recent: rgbd.unmatched x3")


# --- the node over rclpy, on simulated time ----------------------------------------------------

FRAMES = 25  # per phase: RGB + depth make 2 * FRAMES images, more than LATE_MIN_IMAGES
LATE_S = 2.0  # how far behind /clock the late phase stamps its images


@pytest.fixture(scope="module")
def context():
    with isolated_context(100 + (os.getpid() + 53) % 100) as context:
        yield context


class SimRig:
    """The harness with a /clock publisher: images stamped on the caller's choice of clock."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.clock = harness.client.create_publisher(Clock, "/clock", 10)

    def tick(self, stamp_ns: int) -> None:
        """Set the node's clock to ``stamp_ns`` (publishing until it has it: the first /clock
        messages may go out before the node's clock subscription matched)."""
        node = self.h.node

        def arrived() -> bool:
            self.clock.publish(Clock(clock=conversions.ns_to_stamp(stamp_ns)))
            return node.get_clock().now().nanoseconds == stamp_ns

        assert wait_for(arrived)

    def frame_at(self, stamp_ns: int, clock_ns: int) -> None:
        """One RGB-D set stamped ``stamp_ns`` (with its audio) that reaches the node at ``clock_ns``.

        Waits until both images were received before the clock may move again (the executor is
        single-threaded, so each image's age was taken at ``clock_ns``)."""
        counts = self.h.node.stats.message_counts()
        self.tick(clock_ns)
        self.h.send_frame(stamp_ns)
        assert wait_for(
            lambda: all(self.h.node.stats.message_counts().get(s, 0) > counts.get(s, 0) for s in (RGB, DEPTH))
        )

    def status_after(self, images: int) -> DiagnosticStatus:
        """The first /diagnostics status that saw ``images`` RGB and depth images each while
        inputs were alive."""

        def seen(array: DiagnosticArray) -> bool:
            values = diagnostic_values(array)
            received = all(int(values.get(f"messages_in.{s}", 0)) >= images for s in (RGB, DEPTH))
            return received and float(values[f"rate_hz.{RGB}"]) > 0

        assert wait_for(lambda: any(seen(a) for a in list(self.h.diagnostics)))
        return next(a for a in list(self.h.diagnostics) if seen(a)).status[0]


@pytest.fixture(scope="module")
def rig(context, beeper_checkpoint, node_scene):
    torch.set_num_threads(2)
    node = make_node(context, beeper_checkpoint, use_sim_time=True)
    assert node.start(), node.configure_error
    h = Harness(context, node, node_scene)
    h.now_ns = 5000 * NS
    h.streamer.start_audio_at(h.now_ns - 2 * NS)
    yield SimRig(h)
    h.close()


def test_the_node_warns_about_the_transport_when_images_arrive_late_and_not_before(rig):
    start = rig.h.now_ns
    for k in range(FRAMES):  # on time: received at their stamp
        stamp = start + k * NS // 10
        rig.frame_at(stamp, clock_ns=stamp)
        rig.h.assert_answers(stamp)
    timely = rig.status_after(FRAMES)
    values = _values(timely)
    assert (timely.level, timely.message) == (DiagnosticStatus.OK, "ok"), values
    assert values["image_age_ms.p95"] == "0.00" and values["image_late_share"] == "0.000"

    start += 2 * NS
    for k in range(FRAMES):  # the same frames, received LATE_S after their stamps
        stamp = start + k * NS // 10
        rig.frame_at(stamp, clock_ns=stamp + round(LATE_S * NS))
    late = rig.status_after(2 * FRAMES)
    values = _values(late)
    assert late.level == DiagnosticStatus.WARN
    assert late.message.startswith(f"{HINT} (p95 {LATE_S * 1000:.0f} ms): "), late.message
    assert FIX in late.message
    assert float(values["image_age_ms.p95"]) == pytest.approx(LATE_S * 1000)
    assert float(values["image_delay_ms.p95"]) == pytest.approx(LATE_S * 1000)
    assert float(values["image_late_share"]) == pytest.approx(0.5)
