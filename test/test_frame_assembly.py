"""Frame assembly (core, no ROS): audio ring windows, gaps, time jumps, RGB-D sync, newest-only."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from avi_ros import events as ev
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
from avi_ros.sensor_decoding import RgbdImages, SensorInputError

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
    assert r.events[ev.AUDIO_GAP_FILLED] == 1
    window = r.window(T0 + 20 * CHUNK_NS, 20 * CHUNK)
    assert window.status is WindowStatus.COMPLETE
    assert window.filled_samples == CHUNK
    np.testing.assert_array_equal(window.audio[:, 10 * CHUNK : 11 * CHUNK], 0.0)
    np.testing.assert_array_equal(window.audio[0, 11 * CHUNK :], np.arange(11 * CHUNK, 20 * CHUNK))


def test_long_gap_drops_windows_that_span_it_only():
    r = ring(max_gap_fill_s=0.05)
    feed(r, 0, 10)
    feed(r, 20, 40)  # 200 ms missing
    assert r.events[ev.AUDIO_GAP] == 1
    assert r.window(T0 + 25 * CHUNK_NS, 10 * CHUNK).status is WindowStatus.GAP
    assert r.window(T0 + 40 * CHUNK_NS, 20 * CHUNK).status is WindowStatus.COMPLETE


def test_late_chunk_fills_its_hole_and_duplicate_is_rejected():
    r = ring(max_gap_fill_s=0.0)
    feed(r, 0, 10)
    feed(r, 11, 20)
    assert r.window(T0 + 20 * CHUNK_NS, 20 * CHUNK).status is WindowStatus.GAP
    assert r.add(T0 + 10 * CHUNK_NS, ramp(10 * CHUNK)) is True
    assert r.events[ev.AUDIO_OUT_OF_ORDER] == 1
    window = r.window(T0 + 20 * CHUNK_NS, 20 * CHUNK)
    assert window.status is WindowStatus.COMPLETE
    np.testing.assert_array_equal(window.audio[0], np.arange(20 * CHUNK))

    assert r.add(T0 + 5 * CHUNK_NS, ramp(5 * CHUNK) + 1000.0) is False
    assert r.events[ev.AUDIO_DUPLICATE] == 1
    np.testing.assert_array_equal(r.window(T0 + 20 * CHUNK_NS, 20 * CHUNK).audio[0], np.arange(20 * CHUNK))


def test_partial_overlap_keeps_old_samples_and_appends_the_rest():
    r = ring(stamp_jitter_s=0.0)
    feed(r, 0, 10)
    overlap = 48  # the next chunk starts 2 ms early
    r.add(T0 + 10 * CHUNK_NS - 2_000_000, ramp(10 * CHUNK - overlap) + 0.5)
    assert r.events[ev.AUDIO_OVERLAP] == 1
    window = r.window(T0 + 11 * CHUNK_NS - 2_000_000, 11 * CHUNK - overlap)
    np.testing.assert_array_equal(window.audio[0, : 10 * CHUNK], np.arange(10 * CHUNK))
    np.testing.assert_array_equal(
        window.audio[0, 10 * CHUNK :], np.arange(10 * CHUNK, 11 * CHUNK - overlap) + 0.5
    )


def test_chunk_older_than_the_buffer_is_stale():
    r = ring(capacity_s=0.2, backwards_reset_s=1.0)
    feed(r, 0, 30)
    assert r.add(T0 + 2 * CHUNK_NS, ramp(2 * CHUNK)) is False
    assert r.events[ev.AUDIO_STALE] == 1


def test_time_jumping_backwards_resets_the_ring():
    r = ring(backwards_reset_s=1.0)
    feed(r, 500, 550)  # 10 s .. 11 s
    r.add(T0, ramp(0))  # the bag looped back to its start
    assert r.events[ev.AUDIO_TIME_BACKWARDS] == 1
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
    assert sync.events[ev.RGBD_UNMATCHED] == 2
    sync.add(1, T0, "depth0")
    sync.add(2, T0, "info0")
    assert out.sets == []  # rgb0 was evicted
    sync.add(1, T0 + 400_000_000, "depth4")
    sync.add(2, T0 + 400_000_000, "info4")
    assert out.sets == [("rgb4", "depth4", "info4")]


def test_a_message_evicted_on_arrival_matches_nothing_instead_of_raising():
    """Its queue is full of later stamps (camera_info at twice the image rate, then a bag loop)."""
    sync, out = make_sync(queue_size=2, slop_s=0.01)
    ms = 1_000_000
    sync.add(2, T0 + 100 * ms, "info +100")
    sync.add(2, T0 + 200 * ms, "info +200")
    sync.add(0, T0, "rgb")
    sync.add(1, T0, "depth")
    assert sync.add(2, T0, "info") is False  # evicted at once: it was the oldest of three
    assert out.sets == [] and sync.events[ev.RGBD_UNMATCHED] == 1


def test_a_queue_of_stamps_from_before_a_loop_does_not_starve_the_new_ones():
    sync, out = make_sync(queue_size=3, slop_s=0.01)
    for i in range(3):  # the end of the bag, never matched
        sync.add(2, T0 + (30 + i) * 1_000_000_000, f"old info {i}")
    for i in range(3):  # the bag starts again, 30 s earlier
        stamp = T0 + i * 100_000_000
        sync.add(0, stamp, f"rgb{i}")
        sync.add(1, stamp, f"depth{i}")
        sync.add(2, stamp, f"info{i}")
    assert out.sets == [(f"rgb{i}", f"depth{i}", f"info{i}") for i in range(3)]
    assert sync.events[ev.RGBD_TIME_BACKWARDS] == 1


def reference_approximate_sync(arrivals, queue_size: int, slop_ns: int) -> list[tuple[int, ...]]:
    """message_filters' ApproximateTimeSynchronizer.add, restated over (input, stamp) arrivals:
    the reference the built-in synchroniser is checked against (message_filters is not on PyPI)."""
    queues: list[dict[int, int]] = [{}, {}, {}]
    emitted = []
    for index, stamp in arrivals:
        mine = queues[index]
        mine[stamp] = stamp
        while len(mine) > queue_size:
            del mine[min(mine)]
        others = []
        for other, queue in enumerate(queues):
            if other == index:
                continue
            near = sorted(
                ((s, abs(s - stamp)) for s in queue if abs(s - stamp) <= slop_ns), key=lambda x: x[1]
            )
            if not near:
                break
            others.append([s for s, _ in near])
        else:
            for combination in itertools.product(*others):
                stamps = list(combination)
                stamps.insert(index, stamp)
                pairs = list(zip(queues, stamps, strict=True))
                if max(stamps) - min(stamps) < slop_ns and all(s in q for q, s in pairs):
                    emitted.append(tuple(q.pop(s) for q, s in pairs))
                    break
    return emitted


@pytest.mark.parametrize("seed", range(5))
def test_builtin_sync_emits_the_sets_message_filters_would(seed):
    rng = np.random.default_rng(seed)
    ms = 1_000_000
    arrivals = []
    for frame in range(80):
        base = T0 + frame * 33 * ms
        for index in rng.permutation(3):
            if rng.random() < 0.85:  # some messages never arrive
                arrivals.append((int(index), base + int(rng.integers(-15, 15)) * ms))
        if rng.random() < 0.1:  # a late straggler, stamped before what its queue holds
            arrivals.append((int(rng.integers(3)), base - int(rng.integers(100, 300)) * ms))
    ours: list[tuple[int, ...]] = []
    sync = ApproximateTimeSync(
        ("a", "b", "c"), 4, 0.02, lambda *stamps: ours.append(stamps), backwards_reset_s=None
    )
    for index, stamp in arrivals:
        sync.add(index, stamp, stamp)
    expected = reference_approximate_sync(arrivals, 4, 20 * ms)
    assert len(expected) > 30
    assert ours == expected


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
    assert asm.events[ev.FRAME_AUDIO_TIMEOUT] == 0
    asm.expire(T0 + 150_000_000)
    assert asm.events[ev.FRAME_AUDIO_TIMEOUT] == 1
    add_audio(asm, 20, 31, now_ns=T0 + 160_000_000)
    assert asm.take_ready() is None


def test_only_the_newest_complete_frame_reaches_inference_and_drops_are_counted():
    asm = assembler()
    add_audio(asm, 0, 60, now_ns=T0)
    for i, chunk in enumerate((20, 30, 40)):
        add_frame(asm, T0 + chunk * CHUNK_NS, now_ns=T0, tag=i)
    assert asm.events[ev.FRAME_STALE] == 2
    frame = asm.take_ready()
    assert int(frame.rgb[0, 0, 0]) == 2
    # Two frames wait for audio; both complete in turn, and the newer one replaces the older
    # one that inference has not taken yet.
    add_frame(asm, T0 + 70 * CHUNK_NS, now_ns=T0, tag=3)
    add_frame(asm, T0 + 75 * CHUNK_NS, now_ns=T0, tag=4)
    assert asm.waiting == 2 and asm.events[ev.FRAME_SUPERSEDED] == 0
    add_audio(asm, 60, 76, now_ns=T0)
    assert int(asm.take_ready().rgb[0, 0, 0]) == 4
    assert asm.events[ev.FRAME_STALE] == 3
    assert asm.frames_in == 5 and asm.frames_ready == 5


def test_a_frame_waiting_for_its_audio_is_not_thrown_away_when_a_newer_frame_arrives():
    """Audio that lags the images by more than a frame period must not starve the output."""
    asm = assembler(max_audio_wait_s=1.0)
    lag_chunks = 13  # 260 ms behind the images, frames every 100 ms
    answered = []
    for frame in range(20):
        stamp_chunk = 20 + 5 * frame
        now = T0 + stamp_chunk * CHUNK_NS
        add_frame(asm, T0 + stamp_chunk * CHUNK_NS, now_ns=now, tag=frame)
        for chunk in range(stamp_chunk - lag_chunks, stamp_chunk - lag_chunks + 5):
            if chunk >= 0:
                asm.add_audio(T0 + chunk * CHUNK_NS, ramp(chunk * CHUNK), now)
        taken = asm.take_ready()
        if taken is not None:
            answered.append(int(taken.rgb[0, 0, 0]))
    # Every frame whose audio has arrived was answered, in order; none was superseded.
    assert answered == list(range(len(answered))) and len(answered) >= 17
    assert asm.events[ev.FRAME_SUPERSEDED] == 0


def test_the_newest_complete_frame_wins_over_an_older_one_still_waiting():
    asm = assembler(ring=AudioRingConfig(max_gap_fill_s=0.0), max_audio_wait_s=1.0)
    add_audio(asm, 0, 10, now_ns=T0)
    add_audio(asm, 11, 30, now_ns=T0)  # chunk 10 is missing: a late chunk may still fill it
    add_frame(asm, T0 + 15 * CHUNK_NS, now_ns=T0, tag=1)  # its window spans the hole: waits
    assert asm.take_ready() is None and asm.waiting == 1
    add_frame(asm, T0 + 29 * CHUNK_NS, now_ns=T0, tag=2)  # complete at once
    assert int(asm.take_ready().rgb[0, 0, 0]) == 2
    assert asm.events[ev.FRAME_SUPERSEDED] == 1 and asm.waiting == 0
    add_audio(asm, 10, 11, now_ns=T0)  # the late chunk no longer brings the old frame back
    assert asm.take_ready() is None


def test_the_wait_is_bounded_in_time_not_in_arrivals():
    asm = assembler(max_audio_wait_s=0.5)
    add_audio(asm, 0, 20, now_ns=T0)
    for i in range(10):  # ten frames in 90 ms, none with audio yet
        add_frame(asm, T0 + (30 + i) * CHUNK_NS, now_ns=T0 + i * 10_000_000, tag=i)
    assert asm.waiting == 10 and asm.events.snapshot() == {}
    asm.expire(T0 + 545_000_000)  # the first five have waited more than 0.5 s
    assert asm.waiting == 5 and asm.events[ev.FRAME_AUDIO_TIMEOUT] == 5
    add_audio(asm, 20, 40, now_ns=T0 + 550_000_000)  # chunk by chunk: each frame completes in turn
    assert int(asm.take_ready().rgb[0, 0, 0]) == 9
    assert asm.events[ev.FRAME_STALE] == 4 and asm.events[ev.FRAME_SUPERSEDED] == 0


def test_waiting_frames_have_a_memory_guard():
    asm = FrameAssembler(WINDOW, AssemblyConfig(max_audio_wait_s=10.0, max_waiting_frames=3))
    add_audio(asm, 0, 20, now_ns=T0)
    for i in range(5):
        add_frame(asm, T0 + (30 + i) * CHUNK_NS, now_ns=T0, tag=i)
    assert asm.waiting == 3 and asm.events[ev.FRAME_BACKLOG_FULL] == 2


class CountingSource:
    """An RGB-D source that counts its conversions (the O(pixels) step)."""

    def __init__(self, tag: int, error: SensorInputError | None = None) -> None:
        self.tag, self.error, self.calls = tag, error, 0

    def __call__(self) -> RgbdImages:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return RgbdImages(np.full((6, 8, 3), self.tag, np.uint8), np.ones((6, 8), np.float32), K)


def test_only_the_frame_that_is_taken_has_its_pixels_converted():
    asm = assembler()
    add_audio(asm, 0, 60, now_ns=T0)
    sources = [CountingSource(tag) for tag in range(3)]
    for tag, source in enumerate(sources):
        asm.add_rgbd_source(T0 + (20 + 10 * tag) * CHUNK_NS, source, now_ns=T0)
    assert [s.calls for s in sources] == [0, 0, 0]
    assert int(asm.take_ready().rgb[0, 0, 0]) == 2
    assert [s.calls for s in sources] == [0, 0, 1]


def test_a_set_that_fails_to_convert_is_counted_and_skipped():
    asm = assembler()
    add_audio(asm, 0, 60, now_ns=T0)
    broken = CountingSource(0, SensorInputError("rgb.truncated", "cut short"))
    asm.add_rgbd_source(T0 + 20 * CHUNK_NS, broken, now_ns=T0)
    assert asm.take_ready() is None and asm.events["rgb.truncated"] == 1


def test_out_of_order_frames_and_audio_gaps_drop_the_frame():
    asm = assembler(ring=AudioRingConfig(max_gap_fill_s=0.0))
    add_audio(asm, 0, 20, now_ns=T0)
    add_frame(asm, T0 + 15 * CHUNK_NS, now_ns=T0)
    assert asm.take_ready() is not None
    add_frame(asm, T0 + 14 * CHUNK_NS, now_ns=T0)
    assert asm.events[ev.FRAME_OUT_OF_ORDER] == 1
    add_audio(asm, 22, 40, now_ns=T0)  # 40 ms hole at chunks 20-21
    add_frame(asm, T0 + 25 * CHUNK_NS, now_ns=T0)
    assert asm.take_ready() is None and asm.events[ev.FRAME_AUDIO_GAP] == 0  # a late chunk may fill it
    asm.expire(T0 + 400_000_000)
    assert asm.events[ev.FRAME_AUDIO_GAP] == 1
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
    assert asm.events[ev.FRAME_TIME_BACKWARDS] == 1
    assert asm.ring.empty
    add_audio(asm, 0, 16, now_ns=T0)
    frame = asm.take_ready()
    assert frame is not None and frame.stamp_ns == T0 + 15 * CHUNK_NS


def test_take_ready_blocks_until_a_frame_is_ready():
    import threading

    asm = assembler()
    got = []
    worker = threading.Thread(target=lambda: got.append(asm.take_ready(timeout_s=60.0)))
    worker.start()
    add_audio(asm, 0, 20, now_ns=T0)
    add_frame(asm, T0 + 20 * CHUNK_NS, now_ns=T0)
    worker.join(timeout=60.0)  # returns as soon as the frame is ready; the deadline is for a bug
    assert got and got[0] is not None and got[0].stamp_ns == T0 + 20 * CHUNK_NS


def test_assembler_rejects_a_buffer_shorter_than_the_window():
    with pytest.raises(ValueError, match="shorter than the model window"):
        FrameAssembler(RATE * 5, AssemblyConfig(ring=AudioRingConfig(capacity_s=2.0)))
