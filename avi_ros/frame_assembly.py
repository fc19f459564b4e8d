"""Frame assembly: timestamped FOA audio + synchronised RGB-D in, complete ``Frame`` objects out.

The live node and the offline bag replay both feed this module with plain values (stamps in
nanoseconds, decoded numpy arrays), so a frame is assembled the same way whether it came
from DDS or from a file. Nothing here imports ROS.

Three parts, each with one job:

- ``AudioRing``: a bounded, timestamped ring of FOA samples. It places every chunk on a
  sample timeline from its stamp, zero-fills short gaps, marks long gaps as missing, takes
  late (out-of-order) chunks into the hole they belong to, rejects duplicates, and resets
  when time jumps backwards (a bag that loops).
- ``ApproximateTimeSync``: the same matching rule as the Python
  ``message_filters.ApproximateTimeSynchronizer`` (per-input queues keyed by stamp, bounded
  by ``queue_size``; a set is emitted as soon as one message of every input lies within
  ``slop``), for systems without message_filters.
- ``FrameAssembler``: joins a synchronised RGB-D set with the audio window that ends at its
  stamp. It keeps at most one frame waiting for audio and one frame ready for inference, so
  inference only ever sees the newest frame; everything it throws away is counted.

Every drop and every bad input goes through an ``EventCounter`` under a reason key such as
``audio.gap`` or ``frame.audio_timeout``, which the node turns into diagnostics and
throttled warnings.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from avi_ros.audio import FOA_CHANNELS, SAMPLE_RATE
from avi_ros.geometry import CameraIntrinsics
from avi_ros.types import Frame

NS_PER_S = 1_000_000_000

# Reason keys (stream.reason). Kept as constants so tests and diagnostics cannot misspell them.
AUDIO_GAP_FILLED = "audio.gap_filled"
AUDIO_GAP = "audio.gap"
AUDIO_OUT_OF_ORDER = "audio.out_of_order"
AUDIO_OVERLAP = "audio.overlap"
AUDIO_DUPLICATE = "audio.duplicate"
AUDIO_STALE = "audio.stale"
AUDIO_TIME_BACKWARDS = "audio.time_backwards"
FRAME_SUPERSEDED = "frame.superseded"
FRAME_STALE = "frame.stale"
FRAME_AUDIO_TIMEOUT = "frame.audio_timeout"
FRAME_AUDIO_GAP = "frame.audio_gap"
FRAME_AUDIO_TOO_OLD = "frame.audio_too_old"
FRAME_OUT_OF_ORDER = "frame.out_of_order"
FRAME_TIME_BACKWARDS = "frame.time_backwards"
RGBD_UNMATCHED = "rgbd.unmatched"

EventListener = Callable[[str, str], None]


class EventCounter:
    """Thread-safe counts of named events (drops, bad input), with listeners for logging.

    ``record(reason, detail)`` increments ``reason`` and calls every listener with the reason
    and a human-readable detail, so the node can log a throttled warning per reason.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._listeners: list[EventListener] = []

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def record(self, reason: str, detail: str = "") -> None:
        with self._lock:
            self._counts[reason] += 1
        for listener in self._listeners:
            listener(reason, detail)

    def __getitem__(self, reason: str) -> int:
        with self._lock:
            return self._counts[reason]

    def snapshot(self) -> dict[str, int]:
        """A copy of all counts, sorted by reason."""
        with self._lock:
            return dict(sorted(self._counts.items()))


def _ns_to_samples(delta_ns: int, sample_rate: int) -> int:
    """Nearest whole number of samples in ``delta_ns`` nanoseconds (exact integer arithmetic)."""
    return (delta_ns * sample_rate + NS_PER_S // 2) // NS_PER_S


# ---------------------------------------------------------------------------------------------
# Audio ring
# ---------------------------------------------------------------------------------------------

_MISSING, _FILLED, _REAL = 0, 1, 2  # per-sample state in the ring


@dataclass(frozen=True)
class AudioRingConfig:
    """Bounds of the audio ring (seconds; the sample rate in Hz).

    capacity_s: audio kept; must exceed the model window plus the longest wait for audio.
    max_gap_fill_s: a gap between chunks up to this long is filled with silence; a longer
        one is marked missing, and any window that spans it is dropped.
    stamp_jitter_s: a chunk that starts within this of where the previous one ended is taken
        as contiguous, because driver stamps jitter while the sample count does not.
    backwards_reset_s: a chunk that starts this much before the newest audio means time went
        backwards (a looping bag, a restarted driver): the ring is cleared and starts again.
    """

    sample_rate: int = SAMPLE_RATE
    channels: int = FOA_CHANNELS
    capacity_s: float = 4.0
    max_gap_fill_s: float = 0.1
    stamp_jitter_s: float = 0.002
    backwards_reset_s: float = 1.0

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.channels <= 0:
            raise ValueError("AudioRingConfig: sample_rate and channels must be positive")
        if not self.capacity_s > 0.0:
            raise ValueError(f"AudioRingConfig.capacity_s must be > 0 s, got {self.capacity_s}")
        for name in ("max_gap_fill_s", "stamp_jitter_s", "backwards_reset_s"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"AudioRingConfig.{name} must be >= 0 s, got {getattr(self, name)}")


class WindowStatus(Enum):
    """Outcome of asking the ring for a window."""

    COMPLETE = "complete"  # every sample present (short gaps zero-filled)
    PENDING = "pending"  # the window ends after the newest sample: wait for more audio
    GAP = "gap"  # part of the window fell in a gap too long to fill
    TOO_OLD = "too_old"  # the window starts before the oldest sample kept


@dataclass
class AudioWindow:
    status: WindowStatus
    audio: np.ndarray | None = None  # float32 [channels, samples] when COMPLETE
    filled_samples: int = 0  # zero-filled samples inside the window


class AudioRing:
    """Bounded ring of multichannel audio on a sample timeline anchored at the first stamp.

    A chunk's stamp is the capture time of its first sample [ns]. Sample ``k`` of the
    timeline is at ``origin_ns + k / sample_rate``. Not thread-safe: ``FrameAssembler``
    holds the lock.
    """

    def __init__(self, config: AudioRingConfig = AudioRingConfig(), events: EventCounter | None = None):
        self.config = config
        self.events = events if events is not None else EventCounter()
        rate = config.sample_rate
        self.capacity = max(1, round(config.capacity_s * rate))
        self._max_fill = round(config.max_gap_fill_s * rate)
        self._jitter = round(config.stamp_jitter_s * rate)
        self._backwards = round(config.backwards_reset_s * rate)
        self._data = np.zeros((config.channels, self.capacity), dtype=np.float32)
        self._state = np.zeros(self.capacity, dtype=np.uint8)
        self._origin_ns: int | None = None
        self._head = 0  # timeline index one past the newest sample
        self._first = 0  # timeline index of the oldest sample received since the last reset

    @property
    def empty(self) -> bool:
        return self._origin_ns is None

    @property
    def newest_end_ns(self) -> int | None:
        """Time just after the newest sample [ns], or None when empty."""
        return None if self._origin_ns is None else self._time_of(self._head)

    def reset(self) -> None:
        """Forget all audio; the next chunk anchors a new timeline."""
        self._state[:] = _MISSING
        self._origin_ns = None
        self._head = 0
        self._first = 0

    def add(self, stamp_ns: int, audio: np.ndarray) -> bool:
        """Insert a chunk [channels, samples] whose first sample was captured at ``stamp_ns``.

        Returns False when the chunk was rejected (duplicate, stale, empty); the reason is
        recorded in ``events``.
        """
        if audio.ndim != 2 or audio.shape[0] != self.config.channels:
            raise ValueError(f"audio must be [{self.config.channels}, samples], got shape {audio.shape}")
        n = audio.shape[1]
        if n == 0:
            return False
        if n > self.capacity:  # keep only what the ring can hold
            stamp_ns += round((n - self.capacity) * NS_PER_S / self.config.sample_rate)
            audio, n = audio[:, -self.capacity :], self.capacity
        if self._origin_ns is None:
            self._origin_ns = int(stamp_ns)
            self._write(0, audio)
            self._head = n
            return True
        start = self._index_of(stamp_ns)
        if abs(start - self._head) <= self._jitter:
            start = self._head
        if start < self._head - self._backwards:
            self.events.record(
                AUDIO_TIME_BACKWARDS,
                f"audio stamp {stamp_ns * 1e-9:.3f} s is "
                f"{(self._head - start) / self.config.sample_rate:.3f} s before the newest audio; "
                "buffer reset",
            )
            self.reset()
            return self.add(stamp_ns, audio)
        if start >= self._head:
            self._append_after_gap(start, audio)
            return True
        return self._insert_late(start, audio)

    def window(self, end_ns: int, num_samples: int) -> AudioWindow:
        """The ``num_samples`` samples captured just before ``end_ns`` [ns]."""
        if self._origin_ns is None:
            return AudioWindow(WindowStatus.PENDING)
        end = self._index_of(end_ns)
        start = end - num_samples
        if end > self._head:
            return AudioWindow(WindowStatus.PENDING)
        if start < max(self._first, self._head - self.capacity):
            return AudioWindow(WindowStatus.TOO_OLD)
        positions = np.arange(start, end) % self.capacity
        states = self._state[positions]
        if (states == _MISSING).any():
            return AudioWindow(WindowStatus.GAP)
        return AudioWindow(
            WindowStatus.COMPLETE,
            self._data[:, positions].copy(),
            int((states == _FILLED).sum()),
        )

    # --- internals -----------------------------------------------------------------------

    def _index_of(self, stamp_ns: int) -> int:
        assert self._origin_ns is not None
        return _ns_to_samples(int(stamp_ns) - self._origin_ns, self.config.sample_rate)

    def _time_of(self, index: int) -> int:
        assert self._origin_ns is not None
        return self._origin_ns + (index * NS_PER_S) // self.config.sample_rate

    def _append_after_gap(self, start: int, audio: np.ndarray) -> None:
        gap = start - self._head
        if gap > 0:
            seconds = gap / self.config.sample_rate
            if gap <= self._max_fill:
                self._mark(self._head, start, _FILLED)
                self.events.record(AUDIO_GAP_FILLED, f"{seconds * 1e3:.1f} ms of missing audio zero-filled")
            else:
                self._mark(self._head, start, _MISSING)
                self.events.record(
                    AUDIO_GAP,
                    f"{seconds * 1e3:.1f} ms of audio missing (more than the "
                    f"{self.config.max_gap_fill_s * 1e3:.0f} ms fill bound); frames spanning it are dropped",
                )
        self._write(start, audio)
        self._head = start + audio.shape[1]

    def _insert_late(self, start: int, audio: np.ndarray) -> bool:
        """A chunk that starts before the newest sample: fill holes, never overwrite real audio."""
        n = audio.shape[1]
        oldest = self._head - self.capacity
        if start + n <= oldest:
            self.events.record(AUDIO_STALE, "audio chunk is older than the buffer; dropped")
            return False
        offsets = np.arange(max(start, oldest), start + n) - start
        overlap = offsets[start + offsets < self._head]
        positions = (start + overlap) % self.capacity
        holes = overlap[self._state[positions] != _REAL]
        if holes.size:
            hole_positions = (start + holes) % self.capacity
            self._data[:, hole_positions] = audio[:, holes]
            self._state[hole_positions] = _REAL
            self._first = min(self._first, start + int(holes[0]))
        extends = start + n > self._head
        if extends:
            tail = audio[:, self._head - start :]
            self._write(self._head, tail)
            self._head = start + n
            self.events.record(AUDIO_OVERLAP, "audio chunk overlaps the previous one; overlap ignored")
            return True
        if holes.size == 0:
            self.events.record(AUDIO_DUPLICATE, "audio chunk repeats audio already received; dropped")
            return False
        self.events.record(AUDIO_OUT_OF_ORDER, "late audio chunk arrived out of order; put in place")
        return True

    def _slices(self, start: int, length: int) -> list[tuple[int, int, int]]:
        """(ring_start, ring_stop, source_offset) pieces covering timeline [start, start+length)."""
        pieces = []
        done = 0
        while done < length:
            pos = (start + done) % self.capacity
            take = min(length - done, self.capacity - pos)
            pieces.append((pos, pos + take, done))
            done += take
        return pieces

    def _write(self, start: int, audio: np.ndarray) -> None:
        for lo, hi, off in self._slices(start, audio.shape[1]):
            self._data[:, lo:hi] = audio[:, off : off + hi - lo]
            self._state[lo:hi] = _REAL

    def _mark(self, start: int, stop: int, state: int) -> None:
        start = max(start, stop - self.capacity)  # older samples fall out of the ring anyway
        for lo, hi, _ in self._slices(start, stop - start):
            self._data[:, lo:hi] = 0.0
            self._state[lo:hi] = state


# ---------------------------------------------------------------------------------------------
# RGB-D synchronisation
# ---------------------------------------------------------------------------------------------


class ApproximateTimeSync:
    """The matching rule of the Python ``message_filters.ApproximateTimeSynchronizer``.

    Each input keeps a queue of items keyed by stamp (a repeated stamp replaces the item),
    at most ``queue_size`` long (the oldest stamp is evicted and counted as unmatched). When
    an item arrives, every other queue is searched for stamps within ``slop_s`` of it,
    closest first; the first combination whose stamps all lie within ``slop_s`` of one
    another (strictly) is emitted as ``callback(*items)`` in input order and removed.
    Not thread-safe on its own: callers serialise ``add``.
    """

    def __init__(
        self,
        input_names: tuple[str, ...],
        queue_size: int,
        slop_s: float,
        callback: Callable[..., None],
        events: EventCounter | None = None,
    ):
        if len(input_names) < 2:
            raise ValueError("ApproximateTimeSync needs at least two inputs")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not slop_s > 0.0:
            raise ValueError(f"slop must be > 0 s, got {slop_s}")
        self.input_names = input_names
        self.queue_size = queue_size
        self.slop_ns = round(slop_s * NS_PER_S)
        self.callback = callback
        self.events = events if events is not None else EventCounter()
        self._queues: list[dict[int, Any]] = [{} for _ in input_names]

    def reset(self) -> None:
        for queue in self._queues:
            queue.clear()

    def add(self, index: int, stamp_ns: int, item: Any) -> bool:
        """Queue ``item`` of input ``index``; returns True when it completed a set."""
        stamp_ns = int(stamp_ns)
        queue = self._queues[index]
        queue[stamp_ns] = item
        while len(queue) > self.queue_size:
            del queue[min(queue)]
            self.events.record(
                RGBD_UNMATCHED,
                f"no match within {self.slop_ns * 1e-9:.3f} s for a '{self.input_names[index]}' "
                "message; check the stamps or raise the sync slop",
            )
        candidates: list[list[int]] = []
        for other, other_queue in enumerate(self._queues):
            if other == index:
                candidates.append([stamp_ns])
                continue
            near = sorted(
                (s for s in other_queue if abs(s - stamp_ns) <= self.slop_ns), key=lambda s: abs(s - stamp_ns)
            )
            if not near:
                return False
            candidates.append(near)
        for combination in itertools.product(*candidates):
            if max(combination) - min(combination) < self.slop_ns:
                items = [q.pop(s) for q, s in zip(self._queues, combination, strict=True)]
                self.callback(*items)
                return True
        return False


# ---------------------------------------------------------------------------------------------
# Frame assembly
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssemblyConfig:
    """How long a frame may wait for its audio, and when a stamp counts as going backwards.

    max_audio_wait_s: a synchronised RGB-D frame whose audio window is not complete after
        this long (on the caller's clock, ROS time in the node) is dropped [s]. A window with
        a gap waits too, since a late chunk may still fill it.
    backwards_reset_s: an RGB-D stamp this much older than the newest one means time jumped
        back (a looping bag): all buffers are reset [s].
    """

    ring: AudioRingConfig = AudioRingConfig()
    max_audio_wait_s: float = 0.3
    backwards_reset_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_audio_wait_s < 0.0:
            raise ValueError(f"AssemblyConfig.max_audio_wait_s must be >= 0 s, got {self.max_audio_wait_s}")
        if self.backwards_reset_s < 0.0:
            raise ValueError(f"AssemblyConfig.backwards_reset_s must be >= 0 s, got {self.backwards_reset_s}")


@dataclass
class _PendingFrame:
    frame: Frame
    received_ns: int


class FrameAssembler:
    """Joins synchronised RGB-D frames with the audio window ending at their stamp.

    One slot waits for audio (``pending``) and one holds a complete frame for inference
    (``ready``). A newer RGB-D frame replaces the pending one and a newer complete frame
    replaces the ready one, so inference always gets the newest frame and nothing queues
    behind it. Thread-safe: sensor callbacks add, an inference worker takes.
    """

    def __init__(
        self,
        window_samples: int,
        config: AssemblyConfig = AssemblyConfig(),
        events: EventCounter | None = None,
    ):
        if window_samples <= 0:
            raise ValueError(f"window_samples must be positive, got {window_samples}")
        ring_samples = round(config.ring.capacity_s * config.ring.sample_rate)
        if ring_samples < window_samples:
            raise ValueError(
                f"audio buffer ({config.ring.capacity_s} s) is shorter than the model window "
                f"({window_samples / config.ring.sample_rate} s)"
            )
        self.window_samples = window_samples
        self.config = config
        self.events: EventCounter = events if events is not None else EventCounter()
        self.ring = AudioRing(config.ring, self.events)
        self._cond = threading.Condition()
        self._pending: _PendingFrame | None = None
        self._ready: Frame | None = None
        self._newest_rgbd_ns: int | None = None
        self.frames_in = 0
        self.frames_ready = 0

    def reset(self) -> None:
        """Drop all audio and waiting frames (time jumped, node deactivated)."""
        with self._cond:
            self._reset_locked()

    def add_audio(self, stamp_ns: int, audio: np.ndarray, now_ns: int) -> None:
        """A decoded FOA chunk [4, samples] at the ring's rate; ``now_ns`` is the caller's clock."""
        with self._cond:
            self.ring.add(stamp_ns, audio)
            self._advance(now_ns)

    def add_rgbd(
        self,
        stamp_ns: int,
        rgb: np.ndarray,
        depth_m: np.ndarray,
        intrinsics: CameraIntrinsics,
        now_ns: int,
    ) -> None:
        """A synchronised RGB-D frame (``stamp_ns`` = its RGB stamp); waits for its audio window."""
        with self._cond:
            newest = self._newest_rgbd_ns
            jump_ns = round(self.config.backwards_reset_s * NS_PER_S)
            if newest is not None and stamp_ns < newest - jump_ns:
                self.events.record(
                    FRAME_TIME_BACKWARDS,
                    f"RGB-D stamp went back {(newest - stamp_ns) * 1e-9:.3f} s; buffers reset",
                )
                audio_end = self.ring.newest_end_ns
                keep_audio = audio_end is not None and audio_end <= stamp_ns + jump_ns  # audio already jumped
                self._reset_locked(keep_audio=keep_audio)
            elif newest is not None and stamp_ns <= newest:
                self.events.record(FRAME_OUT_OF_ORDER, "RGB-D frame not newer than the previous one; dropped")
                return
            self._newest_rgbd_ns = stamp_ns
            self.frames_in += 1
            if self._pending is not None:
                self.events.record(FRAME_SUPERSEDED, "a newer RGB-D frame arrived before this one's audio")
            frame = Frame(
                rgb=rgb,
                depth_m=depth_m,
                intrinsics=intrinsics,
                audio=np.zeros((self.config.ring.channels, 0), np.float32),
                stamp_ns=stamp_ns,
                sample_rate=self.config.ring.sample_rate,
            )
            self._pending = _PendingFrame(frame, now_ns)
            self._advance(now_ns)

    def expire(self, now_ns: int) -> None:
        """Drop a pending frame that has waited too long (call periodically)."""
        with self._cond:
            self._advance(now_ns)

    def take_ready(self, timeout_s: float | None = 0.0) -> Frame | None:
        """The newest complete frame, or None; waits up to ``timeout_s`` (None: forever)."""
        with self._cond:
            if self._ready is None and timeout_s != 0.0:
                self._cond.wait_for(lambda: self._ready is not None, timeout=timeout_s)
            frame, self._ready = self._ready, None
            return frame

    def wake(self) -> None:
        """Wake a worker blocked in ``take_ready`` (for shutdown)."""
        with self._cond:
            self._cond.notify_all()

    # --- internals -----------------------------------------------------------------------

    def _reset_locked(self, keep_audio: bool = False) -> None:
        if not keep_audio:
            self.ring.reset()
        self._pending = None
        self._ready = None
        self._newest_rgbd_ns = None

    def _advance(self, now_ns: int) -> None:
        pending = self._pending
        if pending is None:
            return
        window = self.ring.window(pending.frame.stamp_ns, self.window_samples)
        if window.status is WindowStatus.COMPLETE:
            assert window.audio is not None
            pending.frame.audio = window.audio
            self._pending = None
            if self._ready is not None:
                self.events.record(FRAME_STALE, "inference was busy; an older complete frame was skipped")
            self._ready = pending.frame
            self.frames_ready += 1
            self._cond.notify_all()
        elif window.status in (WindowStatus.PENDING, WindowStatus.GAP):
            # A gap may still be filled by a late chunk, so it waits like missing audio does.
            if now_ns - pending.received_ns > round(self.config.max_audio_wait_s * NS_PER_S):
                self._pending = None
                if window.status is WindowStatus.GAP:
                    self.events.record(FRAME_AUDIO_GAP, "the frame's audio window spans a gap; frame dropped")
                else:
                    self.events.record(
                        FRAME_AUDIO_TIMEOUT,
                        f"audio for the frame did not arrive within {self.config.max_audio_wait_s:.3f} s",
                    )
        else:
            self._pending = None
            self.events.record(
                FRAME_AUDIO_TOO_OLD, "the frame's audio window starts before the buffered audio; dropped"
            )


__all__ = [
    "ApproximateTimeSync",
    "AssemblyConfig",
    "AudioRing",
    "AudioRingConfig",
    "AudioWindow",
    "EventCounter",
    "FrameAssembler",
    "WindowStatus",
]
