"""Diagnostics events: a thread-safe counter, and every reason key it counts, defined once.

The node, the bag replay, the sensor intake, the decoders and the frame assembly all count
what they drop or reject in one ``EventCounter`` under a key ``<stream>.<reason>``
(``audio.truncated``, ``frame.audio_timeout``). The node turns the counts into /diagnostics
values and throttled warnings, the replay into its report. Keys are constants here so that
code, tests and diagnostics cannot misspell them. Nothing here imports ROS or numpy.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from avi_ros.topics import SENSOR_STREAMS

# --- streams (the first part of a key) ---------------------------------------------------------

AUDIO, RGB, DEPTH, CAMERA_INFO = SENSOR_STREAMS  # the inputs, named in avi_ros.topics.SensorTopics
RGBD = "rgbd"  # a synchronised RGB + depth + camera_info set
FRAME = "frame"  # an RGB-D set joined with its audio window
CLOCK = "clock"
INFERENCE = "inference"
INTERNAL_ERROR = "internal_error"  # a bug: any exception a callback did not expect

# --- why a single message is rejected (keyed ``<stream>.<reason>`` by the decoders) -----------

BAD_FORMAT = "bad_format"  # unknown sample format, channel order or normalisation
EMPTY = "empty"  # no data, or a zero image size
TRUNCATED = "truncated"  # fewer bytes than the header promises
SIZE_MISMATCH = "size_mismatch"  # sizes in the header disagree with the data or with each other
NON_FINITE = "non_finite"  # NaN or inf where a number is needed
OUT_OF_RANGE = "out_of_range"  # float audio far beyond full scale (a driver writing the wrong format)
BAD_CHANNELS = "bad_channels"  # not an ambisonic channel count
BAD_RATE = "bad_rate"  # a sample rate outside the range a microphone can have
UNSUPPORTED_ENCODING = "unsupported_encoding"
ENCODING_MISMATCH = "encoding_mismatch"  # a colour encoding on the depth topic or the reverse
BAD_SHAPE = "bad_shape"  # an image no camera makes (a side over the limit, a 1 x 10000 strip)
BAD_STAMP = "bad_stamp"  # header.stamp.nanosec outside [0, 1e9)
INVALID = "invalid"  # camera_info K is not 9 finite values
UNCALIBRATED = "uncalibrated"  # camera_info K has no focal length
BAD_FOCAL = "bad_focal"  # a focal length that implies a field of view no pinhole camera has
BAD_PRINCIPAL_POINT = "bad_principal_point"  # a principal point far outside the image
UNUSED_CALIBRATION_INVALID = "unused_calibration_invalid"  # NaN/inf in D, R or P (K is used; kept)

# --- audio ring ---------------------------------------------------------------------------------

AUDIO_RESAMPLED = "audio.resampled"  # counted though the chunk is used: another rate costs CPU
AUDIO_GAP_FILLED = "audio.gap_filled"
AUDIO_GAP = "audio.gap"
AUDIO_OUT_OF_ORDER = "audio.out_of_order"
AUDIO_OVERLAP = "audio.overlap"
AUDIO_DUPLICATE = "audio.duplicate"
AUDIO_STALE = "audio.stale"
AUDIO_TIME_BACKWARDS = "audio.time_backwards"

# --- RGB-D synchronisation ------------------------------------------------------------------

RGBD_UNMATCHED = "rgbd.unmatched"
RGBD_TIME_BACKWARDS = "rgbd.time_backwards"
RGBD_SIZE_MISMATCH = "rgbd.size_mismatch"

# --- frame assembly ---------------------------------------------------------------------------

FRAME_SUPERSEDED = "frame.superseded"  # a newer frame completed while this one waited for audio
FRAME_STALE = "frame.stale"  # complete, but a newer complete frame came before inference took it
FRAME_AUDIO_TIMEOUT = "frame.audio_timeout"
FRAME_AUDIO_GAP = "frame.audio_gap"
FRAME_AUDIO_TOO_OLD = "frame.audio_too_old"
FRAME_OUT_OF_ORDER = "frame.out_of_order"
FRAME_TIME_BACKWARDS = "frame.time_backwards"
FRAME_BACKLOG_FULL = "frame.backlog_full"  # memory guard on frames waiting for audio

# --- the node ---------------------------------------------------------------------------------

CLOCK_TIME_BACKWARDS = "clock.time_backwards"
INFERENCE_ERROR = "inference.error"

# --- tracks (avi_ros.tracking; each reset clears the tracks, ids keep increasing) -------------

TRACKS = "tracks"
TRACKS_TIME_BACKWARDS = "tracks.time_backwards"  # a frame stamp older than the previous one
TRACKS_GAP = "tracks.gap"  # a gap between frames longer than tracking.reset_gap_s
TRACKS_NON_FINITE = "tracks.non_finite"  # an estimate with a NaN or inf angle or distance (untracked)


def stream_key(stream: str, reason: str) -> str:
    """The counted key of ``reason`` on ``stream``: ``stream_key(RGB, TRUNCATED)`` is ``rgb.truncated``."""
    return f"{stream}.{reason}"


def internal_error_key(exc: BaseException) -> str:
    """``internal_error.<ExceptionType>``: how an unexpected exception is counted."""
    return stream_key(INTERNAL_ERROR, type(exc).__name__)


def is_drop(reason: str) -> bool:
    """A frame that was assembled or matched but not inferred (not bad input)."""
    return reason.startswith(f"{FRAME}.") or reason == RGBD_UNMATCHED


def is_gap(reason: str) -> bool:
    """Missing audio between chunks (filled or not)."""
    return reason in (AUDIO_GAP, AUDIO_GAP_FILLED)


def is_error(reason: str) -> bool:
    """A failure of the node itself rather than of its input."""
    return reason.startswith(f"{INTERNAL_ERROR}.") or reason == INFERENCE_ERROR


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
