"""Frame assembly: synchronised RGB-D sets joined with the audio window that ends at their stamp.

Sensor callbacks add audio and RGB-D sets; an inference worker takes the newest complete
frame. Frames wait for their audio in stamp order and are bounded in time
(``max_audio_wait_s`` on the caller's clock), not in arrivals: a newer RGB-D set never throws
away an older one that is still waiting, so a steady audio lag cannot starve the output. The
newest *complete* frame wins; everything older is dropped and counted. The pixels of a set are
converted only when the worker takes its frame (``RgbdSet.decode``). Nothing here imports ROS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from avi_ros.events import (
    FRAME_AUDIO_GAP,
    FRAME_AUDIO_TIMEOUT,
    FRAME_AUDIO_TOO_OLD,
    FRAME_BACKLOG_FULL,
    FRAME_OUT_OF_ORDER,
    FRAME_STALE,
    FRAME_SUPERSEDED,
    FRAME_TIME_BACKWARDS,
    EventCounter,
)
from avi_ros.frame_assembly.audio_ring import AudioRing, AudioRingConfig, WindowStatus
from avi_ros.geometry import CameraIntrinsics
from avi_ros.sensor_decoding import RgbdImages, SensorInputError
from avi_ros.types import Frame
from avi_ros.units import NS_PER_S

RgbdSource = Callable[[], RgbdImages]  # converts a set's pixels when its frame is taken


@dataclass(frozen=True)
class AssemblyConfig:
    """How long a frame may wait for its audio, and when a stamp counts as going backwards.

    max_audio_wait_s: a synchronised RGB-D frame whose audio window is not complete after
        this long (on the caller's clock, ROS time in the node) is dropped [s]. A window with
        a gap waits too, since a late chunk may still fill it.
    backwards_reset_s: an RGB-D stamp this much older than the newest one means time jumped
        back (a looping bag): all buffers are reset [s].
    max_waiting_frames: a memory guard, not the wait bound: at most this many frames wait
        for audio at once (64 is 2 s at 30 Hz); beyond it the oldest is dropped
        (``frame.backlog_full``).
    """

    ring: AudioRingConfig = field(default_factory=AudioRingConfig)
    max_audio_wait_s: float = 0.3
    backwards_reset_s: float = 1.0
    max_waiting_frames: int = 64

    def __post_init__(self) -> None:
        if self.max_audio_wait_s < 0.0:
            raise ValueError(f"AssemblyConfig.max_audio_wait_s must be >= 0 s, got {self.max_audio_wait_s}")
        if self.backwards_reset_s < 0.0:
            raise ValueError(f"AssemblyConfig.backwards_reset_s must be >= 0 s, got {self.backwards_reset_s}")
        if self.max_waiting_frames < 1:
            raise ValueError(f"AssemblyConfig.max_waiting_frames must be >= 1, got {self.max_waiting_frames}")


@dataclass
class _Waiting:
    stamp_ns: int
    source: RgbdSource
    received_ns: int  # on the caller's clock


@dataclass
class _Ready:
    stamp_ns: int
    source: RgbdSource
    audio: np.ndarray  # float32 [channels, window_samples]


class FrameAssembler:
    """Joins synchronised RGB-D frames with the audio window ending at their stamp.

    Frames wait in stamp order (``waiting``); whenever audio arrives, the newest frame whose
    window is complete moves to the one-slot ``ready`` mailbox and every older waiting frame
    is dropped as superseded. A newer complete frame replaces an untaken ready one (stale),
    so inference always gets the newest complete frame and nothing queues behind it. A frame
    leaves the waiting list after ``max_audio_wait_s`` at the latest. Thread-safe: sensor
    callbacks add, an inference worker takes.
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
        self._waiting: list[_Waiting] = []  # ascending stamps, all newer than the last ready frame
        self._ready: _Ready | None = None
        self._newest_rgbd_ns: int | None = None
        self._wait_ns = round(config.max_audio_wait_s * NS_PER_S)
        self.frames_in = 0
        self.frames_ready = 0

    @property
    def waiting(self) -> int:
        """Frames waiting for their audio now."""
        with self._cond:
            return len(self._waiting)

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
        """A decoded synchronised RGB-D frame (``stamp_ns`` = its RGB stamp); waits for its audio window."""
        images = RgbdImages(rgb, depth_m, intrinsics)
        self.add_rgbd_source(stamp_ns, lambda: images, now_ns)

    def add_rgbd_source(self, stamp_ns: int, source: RgbdSource, now_ns: int) -> None:
        """A synchronised RGB-D set whose pixels ``source()`` converts when its frame is taken."""
        with self._cond:
            newest = self._newest_rgbd_ns
            jump_ns = round(self.config.backwards_reset_s * NS_PER_S)
            if newest is not None and stamp_ns < newest - jump_ns:
                self.events.record(
                    FRAME_TIME_BACKWARDS,
                    f"RGB-D stamp went back {(newest - stamp_ns) / NS_PER_S:.3f} s; buffers reset",
                )
                audio_end = self.ring.newest_end_ns
                keep_audio = audio_end is not None and audio_end <= stamp_ns + jump_ns  # audio already jumped
                self._reset_locked(keep_audio=keep_audio)
            elif newest is not None and stamp_ns <= newest:
                self.events.record(FRAME_OUT_OF_ORDER, "RGB-D frame not newer than the previous one; dropped")
                return
            self._newest_rgbd_ns = stamp_ns
            self.frames_in += 1
            self._waiting.append(_Waiting(stamp_ns, source, now_ns))
            if len(self._waiting) > self.config.max_waiting_frames:
                self._waiting.pop(0)
                self.events.record(
                    FRAME_BACKLOG_FULL,
                    f"{self.config.max_waiting_frames} frames wait for audio; the oldest was dropped "
                    "(is the audio far behind the images?)",
                )
            self._advance(now_ns)

    def expire(self, now_ns: int) -> None:
        """Drop waiting frames that have waited too long (call periodically)."""
        with self._cond:
            self._advance(now_ns)

    def take_ready(self, timeout_s: float | None = 0.0) -> Frame | None:
        """The newest complete frame, or None; waits up to ``timeout_s`` (None: forever).

        The pixels are converted here, outside the lock; a set that fails to convert is
        counted under its reason and None is returned.
        """
        with self._cond:
            if self._ready is None and timeout_s != 0.0:
                self._cond.wait_for(lambda: self._ready is not None, timeout=timeout_s)
            ready, self._ready = self._ready, None
        if ready is None:
            return None
        try:
            images = ready.source()
        except SensorInputError as exc:
            self.events.record(exc.reason, str(exc))
            return None
        return Frame(
            rgb=images.rgb,
            depth_m=images.depth_m,
            intrinsics=images.intrinsics,
            audio=ready.audio,
            stamp_ns=ready.stamp_ns,
            sample_rate=self.config.ring.sample_rate,
        )

    def wake(self) -> None:
        """Wake a worker blocked in ``take_ready`` (for shutdown)."""
        with self._cond:
            self._cond.notify_all()

    # --- internals -----------------------------------------------------------------------

    def _reset_locked(self, keep_audio: bool = False) -> None:
        if not keep_audio:
            self.ring.reset()
        self._waiting = []
        self._ready = None
        self._newest_rgbd_ns = None

    def _advance(self, now_ns: int) -> None:
        """Move the newest complete waiting frame to ``ready``; drop the superseded, the expired
        and those whose audio is gone."""
        if not self._waiting:
            return
        still_waiting: list[_Waiting] = []
        for index in range(len(self._waiting) - 1, -1, -1):  # newest first
            waiting = self._waiting[index]
            window = self.ring.window(waiting.stamp_ns, self.window_samples)
            if window.status is WindowStatus.COMPLETE:
                assert window.audio is not None
                for _ in range(index):
                    self.events.record(FRAME_SUPERSEDED, "a newer frame got its audio first; frame dropped")
                self._make_ready(_Ready(waiting.stamp_ns, waiting.source, window.audio))
                break
            if window.status is WindowStatus.TOO_OLD:
                self.events.record(
                    FRAME_AUDIO_TOO_OLD, "the frame's audio window starts before the buffered audio; dropped"
                )
            elif now_ns - waiting.received_ns > self._wait_ns:
                # A gap may still be filled by a late chunk, so it waits like missing audio does.
                if window.status is WindowStatus.GAP:
                    self.events.record(FRAME_AUDIO_GAP, "the frame's audio window spans a gap; frame dropped")
                else:
                    self.events.record(
                        FRAME_AUDIO_TIMEOUT,
                        f"audio for the frame did not arrive within {self.config.max_audio_wait_s:.3f} s",
                    )
            else:
                still_waiting.append(waiting)
        still_waiting.reverse()
        self._waiting = still_waiting

    def _make_ready(self, ready: _Ready) -> None:
        if self._ready is not None:
            self.events.record(FRAME_STALE, "inference was busy; an older complete frame was skipped")
        self._ready = ready
        self.frames_ready += 1
        self._cond.notify_all()
