"""Frame assembly (core, no ROS): audio ring windows, gaps, time jumps, RGB-D sync, newest-only."""

from __future__ import annotations

import numpy as np
import pytest

from avi_ros import frame_assembly as fa
from avi_ros.frame_assembly import (
    ApproximateTimeSync,
    AssemblyConfig,
    AudioRing,
    AudioRingConfig,
    EventCounter,
    FrameAssembler,
    WindowStatus,
)
from avi_ros.geometry import CameraIntrinsics

RATE = 24_000
CHUNK = 480  # 20 ms
CHUNK_NS = 20_000_000
T0 = 1_700_000_000_000_000_000  # a realistic epoch stamp [ns]


def ramp(first_sample: int, n: int = CHUNK) -> np.ndarray:
    """Audio whose value is its global sample index (channel c adds c), so windows are checkable."""
    k = np.arange(first_sample, first_sample + n, dtype=np.float32)
    return np.stack([k + c for c in range(4)])


def feed(ring: AudioRing, first_chunk: int, last_chunk: int, jitter_ns=lambda i: 0) -> None:
    for i in range(first_chunk, last_chunk):
        ring.add(T0 + i * CHUNK_NS + jitter_ns(i), ramp(i * CHUNK))


def ring(**kwargs) -> AudioRing:
    return AudioRing(AudioRingConfig(**kwargs), EventCounter())


def test_window_ends_at_the_requested_stamp():
    r = ring()
    feed(r, 0, 50)  # 1 s
    window = r.window(T0 + 30 * CHUNK_NS, 2400)
    assert window.status is WindowStatus.COMPLETE
    np.testing.assert_array_equal(window.audio[0], np.arange(30 * CHUNK - 2400, 30 * CHUNK))
    np.testing.assert_array_equal(window.audio[3], window.audio[0] + 3)
    assert window.filled_samples == 0
    assert r.events.snapshot() == {}


def test_window_after_newest_audio_is_pending_and_before_the_first_is_too_old():
    r = ring()
    feed(r, 0, 10)
    assert r.window(T0 + 11 * CHUNK_NS, 480).status is WindowStatus.PENDING
    assert r.window(T0 + 5 * CHUNK_NS, 4 * CHUNK).status is WindowStatus.COMPLETE
    assert r.window(T0 + 5 * CHUNK_NS, 6 * CHUNK).status is WindowStatus.TOO_OLD
    assert AudioRing().window(T0, 10).status is WindowStatus.PENDING


def test_stamp_jitter_within_tolerance_keeps_audio_contiguous():
    r = ring(stamp_jitter_s=0.002)
    # The first stamp anchors the timeline; later ones wander +-1.5 ms around it.
    feed(r, 0, 40, jitter_ns=lambda i: 0 if i == 0 else (1_500_000 if i % 2 else -1_500_000))
    window = r.window(T0 + 40 * CHUNK_NS, 20 * CHUNK)
    assert window.status is WindowStatus.COMPLETE
    np.testing.assert_array_equal(window.audio[0], np.arange(20 * CHUNK, 40 * CHUNK))
    assert r.events.snapshot() == {}


def test_ring_wraps_around_its_capacity():
    r = ring(capacity_s=0.5)
    feed(r, 0, 101)  # 2 s through a 0.5 s ring
    window = r.window(T0 + 101 * CHUNK_NS, RATE // 4)
    assert window.status is WindowStatus.COMPLETE
    np.testing.assert_array_equal(window.audio[0], np.arange(101 * CHUNK - RATE // 4, 101 * CHUNK))
    assert r.window(T0 + 60 * CHUNK_NS, 480).status is WindowStatus.TOO_OLD


def test_short_gap_is_zero_filled_and_counted():
    r = ring(max_gap_fill_s=0.05)
    feed(r, 0, 10)
    feed(r, 11, 20)  # chunk 10 (20 ms) never arrives
    assert r.events[fa.AUDIO_GAP_FILLED] == 1
    window = r.window(T0 + 20 * CHUNK_NS, 20 * CHUNK)
    assert window.status is WindowStatus.COMPLETE
    assert window.filled_samples == CHUNK
    np.testing.assert_array_equal(window.audio[:, 10 * CHUNK : 11 * CHUNK], 0.0)
    np.testing.assert_array_equal(window.audio[0, 11 * CHUNK :], np.arange(11 * CHUNK, 20 * CHUNK))


def test_long_gap_drops_windows_that_span_it_only():
    r = ring(max_gap_fill_s=0.05)
    feed(r, 0, 10)
    feed(r, 20, 40)  # 200 ms missing
    assert r.events[fa.AUDIO_GAP] == 1
    assert r.window(T0 + 25 * CHUNK_NS, 10 * CHUNK).status is WindowStatus.GAP
    assert r.window(T0 + 40 * CHUNK_NS, 20 * CHUNK).status is WindowStatus.COMPLETE


def test_late_chunk_fills_its_hole_and_duplicate_is_rejected():
    r = ring(max_gap_fill_s=0.0)
    feed(r, 0, 10)
    feed(r, 11, 20)
    assert r.window(T0 + 20 * CHUNK_NS, 20 * CHUNK).status is WindowStatus.GAP
    assert r.add(T0 + 10 * CHUNK_NS, ramp(10 * CHUNK)) is True
    assert r.events[fa.AUDIO_OUT_OF_ORDER] == 1
    window = r.window(T0 + 20 * CHUNK_NS, 20 * CHUNK)
    assert window.status is WindowStatus.COMPLETE
    np.testing.assert_array_equal(window.audio[0], np.arange(20 * CHUNK))

    assert r.add(T0 + 5 * CHUNK_NS, ramp(5 * CHUNK) + 1000.0) is False
    assert r.events[fa.AUDIO_DUPLICATE] == 1
    np.testing.assert_array_equal(r.window(T0 + 20 * CHUNK_NS, 20 * CHUNK).audio[0], np.arange(20 * CHUNK))


def test_partial_overlap_keeps_old_samples_and_appends_the_rest():
    r = ring(stamp_jitter_s=0.0)
    feed(r, 0, 10)
    overlap = 48  # the next chunk starts 2 ms early
    r.add(T0 + 10 * CHUNK_NS - 2_000_000, ramp(10 * CHUNK - overlap) + 0.5)
    assert r.events[fa.AUDIO_OVERLAP] == 1
    window = r.window(T0 + 11 * CHUNK_NS - 2_000_000, 11 * CHUNK - overlap)
    np.testing.assert_array_equal(window.audio[0, : 10 * CHUNK], np.arange(10 * CHUNK))
    np.testing.assert_array_equal(
        window.audio[0, 10 * CHUNK :], np.arange(10 * CHUNK, 11 * CHUNK - overlap) + 0.5
    )


def test_chunk_older_than_the_buffer_is_stale():
    r = ring(capacity_s=0.2, backwards_reset_s=1.0)
    feed(r, 0, 30)
    assert r.add(T0 + 2 * CHUNK_NS, ramp(2 * CHUNK)) is False
    assert r.events[fa.AUDIO_STALE] == 1


def test_time_jumping_backwards_resets_the_ring():
    r = ring(backwards_reset_s=1.0)
    feed(r, 500, 550)  # 10 s .. 11 s
    r.add(T0, ramp(0))  # the bag looped back to its start
    assert r.events[fa.AUDIO_TIME_BACKWARDS] == 1
    assert r.newest_end_ns == T0 + CHUNK_NS
    assert r.window(T0 + 550 * CHUNK_NS, 480).status is WindowStatus.PENDING
    feed(r, 1, 10)
    window = r.window(T0 + 10 * CHUNK_NS, 10 * CHUNK)
    np.testing.assert_array_equal(window.audio[0], np.arange(10 * CHUNK))


def test_ring_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="audio must be"):
        ring().add(T0, np.zeros((2, 10), np.float32))


# --- ApproximateTimeSync ---------------------------------------------------------------------


class Collector:
    def __init__(self):
        self.sets = []

    def __call__(self, *items):
        self.sets.append(items)


def make_sync(slop_s=0.01, queue_size=10):
    out = Collector()
    return ApproximateTimeSync(("rgb", "depth", "camera_info"), queue_size, slop_s, out, EventCounter()), out


def test_sync_emits_one_set_in_input_order_within_slop():
    sync, out = make_sync()
    ms = 1_000_000
    assert sync.add(0, T0, "rgb0") is False
    assert sync.add(2, T0, "info0") is False
    assert sync.add(1, T0 + 4 * ms, "depth0") is True
    assert out.sets == [("rgb0", "depth0", "info0")]
    # The matched items are consumed: another depth at the same time finds no partners.
    assert sync.add(1, T0 + 5 * ms, "depth1") is False


def test_sync_never_pairs_beyond_slop_and_prefers_the_closest_stamp():
    sync, out = make_sync(slop_s=0.01)
    ms = 1_000_000
    sync.add(0, T0, "rgb")
    sync.add(2, T0, "info")
    sync.add(1, T0 + 15 * ms, "far depth")
    assert out.sets == []
    sync, out = make_sync(slop_s=0.01)
    sync.add(1, T0 - 8 * ms, "depth -8")
    sync.add(1, T0 + 2 * ms, "depth +2")
    sync.add(2, T0, "info")
    sync.add(0, T0, "rgb")
    assert out.sets == [("rgb", "depth +2", "info")]


def test_sync_queue_is_bounded_and_evictions_are_counted():
    sync, out = make_sync(queue_size=3)
    for i in range(5):
        sync.add(0, T0 + i * 100_000_000, f"rgb{i}")
    assert sync.events[fa.RGBD_UNMATCHED] == 2
    sync.add(1, T0, "depth0")
    sync.add(2, T0, "info0")
    assert out.sets == []  # rgb0 was evicted
    sync.add(1, T0 + 400_000_000, "depth4")
    sync.add(2, T0 + 400_000_000, "info4")
    assert out.sets == [("rgb4", "depth4", "info4")]


def test_sync_rejects_bad_settings():
    with pytest.raises(ValueError, match="slop"):
        make_sync(slop_s=0.0)
    with pytest.raises(ValueError, match="queue_size"):
        make_sync(queue_size=0)


# --- FrameAssembler --------------------------------------------------------------------------

K = CameraIntrinsics.from_fov(8, 6, 1.2)
WINDOW = 10 * CHUNK  # 200 ms


def assembler(**kwargs) -> FrameAssembler:
    return FrameAssembler(WINDOW, AssemblyConfig(**kwargs))


def add_frame(asm: FrameAssembler, stamp_ns: int, now_ns: int, tag: int = 0) -> None:
    rgb = np.full((6, 8, 3), tag, np.uint8)
    asm.add_rgbd(stamp_ns, rgb, np.ones((6, 8), np.float32), K, now_ns)


def add_audio(asm: FrameAssembler, first: int, last: int, now_ns: int) -> None:
    for i in range(first, last):
        asm.add_audio(T0 + i * CHUNK_NS, ramp(i * CHUNK), now_ns)


def test_frame_waits_for_audio_then_carries_the_window_ending_at_its_stamp():
    asm = assembler()
    add_audio(asm, 0, 20, now_ns=T0)
    stamp = T0 + 25 * CHUNK_NS
    add_frame(asm, stamp, now_ns=T0, tag=7)
    assert asm.take_ready() is None
    add_audio(asm, 20, 26, now_ns=T0)
    frame = asm.take_ready()
    assert frame is not None and frame.stamp_ns == stamp and int(frame.rgb[0, 0, 0]) == 7
    np.testing.assert_array_equal(frame.audio[0], np.arange(25 * CHUNK - WINDOW, 25 * CHUNK))
    assert frame.sample_rate == RATE
    assert asm.take_ready() is None  # taken once


def test_frame_whose_audio_never_comes_is_dropped_after_the_wait_bound():
    asm = assembler(max_audio_wait_s=0.1)
    add_audio(asm, 0, 20, now_ns=T0)
    add_frame(asm, T0 + 30 * CHUNK_NS, now_ns=T0)
    asm.expire(T0 + 50_000_000)
    assert asm.events[fa.FRAME_AUDIO_TIMEOUT] == 0
    asm.expire(T0 + 150_000_000)
    assert asm.events[fa.FRAME_AUDIO_TIMEOUT] == 1
    add_audio(asm, 20, 31, now_ns=T0 + 160_000_000)
    assert asm.take_ready() is None


def test_only_the_newest_frame_reaches_inference_and_drops_are_counted():
    asm = assembler()
    add_audio(asm, 0, 60, now_ns=T0)
    for i, chunk in enumerate((20, 30, 40)):
        add_frame(asm, T0 + chunk * CHUNK_NS, now_ns=T0, tag=i)
    assert asm.events[fa.FRAME_STALE] == 2
    frame = asm.take_ready()
    assert int(frame.rgb[0, 0, 0]) == 2
    # A frame still waiting for audio is superseded by a newer one.
    add_frame(asm, T0 + 70 * CHUNK_NS, now_ns=T0, tag=3)
    add_frame(asm, T0 + 75 * CHUNK_NS, now_ns=T0, tag=4)
    assert asm.events[fa.FRAME_SUPERSEDED] == 1
    add_audio(asm, 60, 76, now_ns=T0)
    assert int(asm.take_ready().rgb[0, 0, 0]) == 4
    assert asm.frames_in == 5 and asm.frames_ready == 4


def test_out_of_order_frames_and_audio_gaps_drop_the_frame():
    asm = assembler(ring=AudioRingConfig(max_gap_fill_s=0.0))
    add_audio(asm, 0, 20, now_ns=T0)
    add_frame(asm, T0 + 15 * CHUNK_NS, now_ns=T0)
    assert asm.take_ready() is not None
    add_frame(asm, T0 + 14 * CHUNK_NS, now_ns=T0)
    assert asm.events[fa.FRAME_OUT_OF_ORDER] == 1
    add_audio(asm, 22, 40, now_ns=T0)  # 40 ms hole at chunks 20-21
    add_frame(asm, T0 + 25 * CHUNK_NS, now_ns=T0)
    assert asm.take_ready() is None and asm.events[fa.FRAME_AUDIO_GAP] == 0  # a late chunk may fill it
    asm.expire(T0 + 400_000_000)
    assert asm.events[fa.FRAME_AUDIO_GAP] == 1
    assert asm.take_ready() is None


def test_a_late_chunk_that_fills_the_gap_completes_the_waiting_frame():
    asm = assembler(ring=AudioRingConfig(max_gap_fill_s=0.0))
    add_audio(asm, 0, 10, now_ns=T0)
    add_audio(asm, 11, 20, now_ns=T0)
    add_frame(asm, T0 + 20 * CHUNK_NS, now_ns=T0)
    assert asm.take_ready() is None
    add_audio(asm, 10, 11, now_ns=T0 + 10_000_000)
    frame = asm.take_ready()
    assert frame is not None
    np.testing.assert_array_equal(frame.audio[0], np.arange(10 * CHUNK, 20 * CHUNK))


def test_rgbd_time_jumping_backwards_resets_everything():
    asm = assembler(backwards_reset_s=1.0)
    add_audio(asm, 500, 520, now_ns=T0)
    add_frame(asm, T0 + 530 * CHUNK_NS, now_ns=T0)  # waits for audio
    add_frame(asm, T0 + 15 * CHUNK_NS, now_ns=T0)  # the bag looped
    assert asm.events[fa.FRAME_TIME_BACKWARDS] == 1
    assert asm.ring.empty
    add_audio(asm, 0, 16, now_ns=T0)
    frame = asm.take_ready()
    assert frame is not None and frame.stamp_ns == T0 + 15 * CHUNK_NS


def test_take_ready_blocks_until_a_frame_is_ready():
    import threading

    asm = assembler()
    got = []
    worker = threading.Thread(target=lambda: got.append(asm.take_ready(timeout_s=5.0)))
    worker.start()
    add_audio(asm, 0, 20, now_ns=T0)
    add_frame(asm, T0 + 20 * CHUNK_NS, now_ns=T0)
    worker.join(timeout=5.0)
    assert got and got[0] is not None and got[0].stamp_ns == T0 + 20 * CHUNK_NS


def test_assembler_rejects_a_buffer_shorter_than_the_window():
    with pytest.raises(ValueError, match="shorter than the model window"):
        FrameAssembler(RATE * 5, AssemblyConfig(ring=AudioRingConfig(capacity_s=2.0)))
