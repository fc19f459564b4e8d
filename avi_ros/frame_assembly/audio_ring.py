"""The audio ring: a bounded, timestamped buffer of FOA samples on one sample timeline.

Every chunk is placed on the timeline from its stamp; short gaps are zero-filled, long gaps
are marked missing, late (out-of-order) chunks fill the hole they belong to, duplicates are
rejected, and a stamp far behind the newest audio (a bag that loops) resets the ring. Every
such case is counted in an ``EventCounter`` under its reason key. Nothing here imports ROS.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from avi_ros.audio import FOA_CHANNELS, SAMPLE_RATE
from avi_ros.events import (
    AUDIO_DUPLICATE,
    AUDIO_GAP,
    AUDIO_GAP_FILLED,
    AUDIO_OUT_OF_ORDER,
    AUDIO_OVERLAP,
    AUDIO_STALE,
    AUDIO_TIME_BACKWARDS,
    EventCounter,
)
from avi_ros.units import NS_PER_S


def _ns_to_samples(delta_ns: int, sample_rate: int) -> int:
    """Nearest whole number of samples in ``delta_ns`` nanoseconds (exact integer arithmetic)."""
    return (delta_ns * sample_rate + NS_PER_S // 2) // NS_PER_S


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
                f"audio stamp {stamp_ns / NS_PER_S:.3f} s is "
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
