"""/diagnostics for the perception node: input rates, latency, CPU, drops and bad input by reason.

``NodeStats`` collects (thread-safe, on the wall clock so rates stay meaningful under
bag replay) and ``diagnostic_array`` turns a snapshot into one ``DiagnosticStatus``.
The level is WARN when frames were dropped or input was bad during the last period, or when
camera images arrive late (``transport_hint``), and ERROR when the node itself failed during
the period (``internal_error.*``, ``inference.error``) or when no frame has been processed for
``stale_after_s`` while inputs arrive.

Late images: a 640x480 rgb8 image is 0.9 MB. Fast DDS's default transports (UDP, and a shared
memory segment too small for such a sample) deliver it in fragments, late and in bursts, or lose
it; the node then sees images whose receive time is far behind their header stamp, and RGB-D
sets that never match. ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` on both sides (shared memory on
one host, TCP between hosts) or an RMW tuned for large data removes that. The node cannot see
the camera driver's settings, so it watches the symptom (``ImageArrivals``): how much later than
the fastest ones the RGB and depth images arrive. Measured on one 2-core machine with a 640x480
camera at 10 Hz, 10-14 % of the images came more than 50 ms later than the fastest over the default
transports, none over LARGE_DATA.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from avi_ros.events import DEPTH, RGB, is_drop, is_error, is_gap
from avi_ros.topics import SENSOR_STREAMS

RECEIVED_MEMORY = 64  # synchronised sets whose arrival time is kept for the end-to-end latency
LARGE_IMAGE_STREAMS = (RGB, DEPTH)  # camera_info is small: it does not show a large-data transport problem
LATE_IMAGE_MS = 50.0  # default of image.late_ms: this much later than the fastest images is late [ms]
IMAGE_AGE_WINDOW = 200  # RGB and depth images whose age is kept (10 s of a 10 Hz camera) [images]
LATE_MIN_IMAGES = 40  # images in the window before the share of late ones is judged [images]
LATE_SHARE_WARN = 0.05  # this share of late images in the window makes the status WARN
FASTEST_PERCENTILE = 5.0  # the window's "fastest" age: this percentile, robust to one odd early image
# A delay beyond this is a clock jump (a bag skipped ahead, a clock stepped), not a transport delay [ms].
CLOCK_JUMP_MS = 10_000.0
STAMPS_BACK_NS = 1_000_000_000  # an image stamped this much before the newest: time restarted (bag loop)
LATE_IMAGES = "camera frames arrive late"  # how the transport hint starts
TRANSPORT_FIX = (
    "large images over the default DDS transport; set FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA "
    "for the camera driver and this node, or use an RMW for large data"
)


class RateMeter:
    """Messages per second over a sliding window of ``window_s`` seconds (wall clock)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now_s: float) -> None:
        self._times.append(now_s)
        self._trim(now_s)

    def rate_hz(self, now_s: float) -> float:
        self._trim(now_s)
        if len(self._times) < 2:
            return 0.0
        span = now_s - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now_s: float) -> None:
        while self._times and now_s - self._times[0] > self.window_s:
            self._times.popleft()


class LatencyWindow:
    """The last ``size`` latencies [ms], with percentiles."""

    def __init__(self, size: int = 200) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, latency_ms: float) -> None:
        self._values.append(latency_ms)

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self._values, float), q)) if self._values else float("nan")

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class ArrivalFigures:
    """The images of the window: ages on arrival [ms], their delay beyond the fastest ones [ms],
    the share of late ones and how many there are."""

    age_ms_p50: float = float("nan")
    age_ms_p95: float = float("nan")
    delay_ms_p95: float = float("nan")
    late_share: float = float("nan")
    count: int = 0


class ImageArrivals:
    """Ages on arrival of the last ``size`` RGB and depth images [ms] (the node's clock at arrival
    minus the header stamp), and how late the slow ones come.

    An image's delay is its age minus the window's fastest age (``FASTEST_PERCENTILE``): a camera
    driver's constant latency and an offset between the camera's clock and the node's (another
    host; a bag played without --clock) cancel, and what remains is the transport's delay and its
    bursts. A stamp going back (a bag loop) starts a new window. Not thread-safe: ``NodeStats`` locks.
    """

    def __init__(self, size: int = IMAGE_AGE_WINDOW) -> None:
        self._ages: deque[float] = deque(maxlen=size)
        self._newest_stamp_ns: dict[str, int] = {}

    def add(self, stream: str, stamp_ns: int, age_ms: float) -> None:
        newest = self._newest_stamp_ns.get(stream)
        if newest is not None and stamp_ns < newest - STAMPS_BACK_NS:
            self._ages.clear()
            self._newest_stamp_ns.clear()
            newest = None
        self._newest_stamp_ns[stream] = stamp_ns if newest is None else max(newest, stamp_ns)
        self._ages.append(age_ms)

    def figures(self, late_after_ms: float) -> ArrivalFigures:
        """Percentiles and the share of images delayed more than ``late_after_ms`` (and less than
        ``CLOCK_JUMP_MS``) beyond the fastest."""
        if not self._ages:
            return ArrivalFigures()
        ages = np.fromiter(self._ages, float)
        delay = ages - np.percentile(ages, FASTEST_PERCENTILE)
        p50, p95 = np.percentile(ages, [50, 95])
        return ArrivalFigures(
            age_ms_p50=float(p50),
            age_ms_p95=float(p95),
            delay_ms_p95=float(np.percentile(delay, 95)),
            late_share=float(np.mean((delay > late_after_ms) & (delay <= CLOCK_JUMP_MS))),
            count=len(ages),
        )


@dataclass
class StatsSnapshot:
    """What ``diagnostic_array`` reports. Latencies [ms]; CPU in percent of one core over the
    period since the previous snapshot."""

    rates_hz: dict[str, float]
    inference_ms_p50: float
    inference_ms_p95: float
    end_to_end_ms_p50: float
    end_to_end_ms_p95: float
    frames_processed: int
    events: dict[str, int]
    seconds_since_last_frame: float
    new_events: dict[str, int] = field(default_factory=dict)
    messages_in: dict[str, int] = field(default_factory=dict)
    stamp_age_ms_p50: float = float("nan")
    stamp_age_ms_p95: float = float("nan")
    cpu_percent_process: float = float("nan")
    cpu_percent_inference: float = float("nan")
    model_forward_percent: float = float("nan")
    images: ArrivalFigures = field(default_factory=ArrivalFigures)  # RGB and depth arrivals


class NodeStats:
    """What the node reports; every method is safe to call from any thread.

    Latencies: ``inference`` is ``Pipeline.run``; ``end_to_end`` runs from the moment the
    synchronised RGB-D set reached the node (``rgbd_received``) to its publication;
    ``stamp_age`` from the sensor stamp to the publication, on the node's clock; ``images``
    from an RGB or depth image's stamp to its arrival (``ImageArrivals``). CPU: the
    whole process, the inference worker thread, and the model forward pass (its wall time,
    which is CPU time with one torch thread), each in percent of one core.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates = {name: RateMeter() for name in (*SENSOR_STREAMS, "frames")}
        self._messages_in: Counter[str] = Counter()
        self._inference = LatencyWindow()
        self._end_to_end = LatencyWindow()
        self._stamp_age = LatencyWindow()
        self._images = ImageArrivals()
        self._received: OrderedDict[int, float] = OrderedDict()  # stamp [ns] -> monotonic arrival [s]
        self.frames_processed = 0
        self._last_frame_s = time.monotonic()
        self._reported_events: dict[str, int] = {}
        self._inference_cpu_s = 0.0
        self._model_s = 0.0
        self._cpu_mark = (time.monotonic(), time.process_time(), 0.0, 0.0)

    def message_in(self, stream: str) -> None:
        with self._lock:
            self._rates[stream].tick(time.monotonic())
            self._messages_in[stream] += 1

    def message_counts(self) -> dict[str, int]:
        """Messages received so far, per input stream (bad ones included)."""
        with self._lock:
            return dict(self._messages_in)

    def image_arrived(self, stream: str, stamp_ns: int, received_ns: int) -> None:
        """An image of ``stream`` stamped ``stamp_ns`` arrived at ``received_ns`` (the node's clock);
        only the large streams (``LARGE_IMAGE_STREAMS``) are kept."""
        if stream in LARGE_IMAGE_STREAMS:
            with self._lock:
                self._images.add(stream, stamp_ns, (received_ns - stamp_ns) * 1e-6)

    def rgbd_received(self, stamp_ns: int) -> None:
        """A synchronised set stamped ``stamp_ns`` reached the node (start of ``end_to_end``)."""
        with self._lock:
            self._received[stamp_ns] = time.monotonic()
            while len(self._received) > RECEIVED_MEMORY:
                self._received.popitem(last=False)

    def frame_done(
        self,
        stamp_ns: int,
        inference_ms: float,
        stamp_age_ms: float,
        inference_thread_cpu_s: float,
        model_ms: float = 0.0,
    ) -> None:
        """The frame stamped ``stamp_ns`` was published. ``inference_thread_cpu_s``: the worker's
        ``time.thread_time()`` now (its CPU so far; torch's extra intra-op threads are not in it);
        ``model_ms``: the model forward's part of ``inference_ms``."""
        with self._lock:
            now = time.monotonic()
            received = self._received.pop(stamp_ns, None)
            self._rates["frames"].tick(now)
            self._inference.add(inference_ms)
            self._end_to_end.add((now - received) * 1e3 if received is not None else inference_ms)
            self._stamp_age.add(stamp_age_ms)
            self.frames_processed += 1
            self._last_frame_s = now
            self._inference_cpu_s = inference_thread_cpu_s
            self._model_s += model_ms * 1e-3

    def snapshot(self, events: dict[str, int], late_after_ms: float = LATE_IMAGE_MS) -> StatsSnapshot:
        """Current figures; ``new_events`` are the counts added since the previous snapshot. An
        image arriving more than ``late_after_ms`` later than the fastest images is late."""
        with self._lock:
            now, cpu = time.monotonic(), time.process_time()
            then, cpu_then, inference_then, model_then = self._cpu_mark
            self._cpu_mark = (now, cpu, self._inference_cpu_s, self._model_s)
            elapsed = max(now - then, 1e-9)
            new = {k: v - self._reported_events.get(k, 0) for k, v in events.items()}
            self._reported_events = dict(events)
            return StatsSnapshot(
                rates_hz={name: meter.rate_hz(now) for name, meter in self._rates.items()},
                inference_ms_p50=self._inference.percentile(50),
                inference_ms_p95=self._inference.percentile(95),
                end_to_end_ms_p50=self._end_to_end.percentile(50),
                end_to_end_ms_p95=self._end_to_end.percentile(95),
                frames_processed=self.frames_processed,
                events=dict(events),
                seconds_since_last_frame=now - self._last_frame_s,
                new_events={k: v for k, v in new.items() if v > 0},
                messages_in=dict(self._messages_in),
                stamp_age_ms_p50=self._stamp_age.percentile(50),
                stamp_age_ms_p95=self._stamp_age.percentile(95),
                cpu_percent_process=100.0 * (cpu - cpu_then) / elapsed,
                cpu_percent_inference=100.0 * (self._inference_cpu_s - inference_then) / elapsed,
                model_forward_percent=100.0 * (self._model_s - model_then) / elapsed,
                images=self._images.figures(late_after_ms),
            )


def transport_hint(snapshot: StatsSnapshot) -> str | None:
    """The WARN message naming the transport when many camera images arrive late, else None.

    Judged once the window holds ``LATE_MIN_IMAGES``: at least ``LATE_SHARE_WARN`` of its images
    late. The p95 named is the delay beyond the fastest images. An executor kept busy by the node
    itself delays arrivals too; the CPU values tell that case.
    """
    images = snapshot.images
    if images.count < LATE_MIN_IMAGES or not images.late_share >= LATE_SHARE_WARN:
        return None
    return f"{LATE_IMAGES} (p95 {images.delay_ms_p95:.0f} ms): {TRANSPORT_FIX}"


def diagnostic_array(
    snapshot: StatsSnapshot, header: Header, name: str, hardware_id: str, stale_after_s: float = 5.0
) -> DiagnosticArray:
    """One DiagnosticStatus with every figure as a key/value (``bad.<stream>.<reason>`` etc.)."""
    events = snapshot.events
    groups = {reason: _group(reason) for reason in events}
    totals: Counter[str] = Counter()
    for reason, count in events.items():
        totals[groups[reason]] += count
    inputs_alive = any(snapshot.rates_hz[s] > 0 for s in SENSOR_STREAMS)
    new_errors = {k: v for k, v in snapshot.new_events.items() if is_error(k)}
    if new_errors:
        level = DiagnosticStatus.ERROR
        message = "node errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(new_errors.items()))
    elif inputs_alive and snapshot.seconds_since_last_frame > stale_after_s:
        level, message = DiagnosticStatus.ERROR, "inputs arrive but no frame was processed recently"
    elif warnings := _warnings(snapshot):
        level, message = DiagnosticStatus.WARN, "; ".join(warnings)
    elif not inputs_alive:
        level, message = DiagnosticStatus.WARN, "no input"
    else:
        level, message = DiagnosticStatus.OK, "ok"
    values = [KeyValue(key=f"rate_hz.{k}", value=f"{v:.2f}") for k, v in snapshot.rates_hz.items()]
    inputs = sorted(snapshot.messages_in.items())
    values += [KeyValue(key=f"messages_in.{k}", value=str(n)) for k, n in inputs]
    values += [
        *_percentiles("inference_ms", snapshot.inference_ms_p50, snapshot.inference_ms_p95),
        *_percentiles("end_to_end_ms", snapshot.end_to_end_ms_p50, snapshot.end_to_end_ms_p95),
        *_percentiles("stamp_age_ms", snapshot.stamp_age_ms_p50, snapshot.stamp_age_ms_p95),
        *_percentiles("image_age_ms", snapshot.images.age_ms_p50, snapshot.images.age_ms_p95),
        KeyValue(key="image_delay_ms.p95", value=f"{snapshot.images.delay_ms_p95:.2f}"),
        KeyValue(key="image_late_share", value=f"{snapshot.images.late_share:.3f}"),
        KeyValue(key="cpu_percent.process", value=f"{snapshot.cpu_percent_process:.1f}"),
        KeyValue(key="cpu_percent.inference_thread", value=f"{snapshot.cpu_percent_inference:.1f}"),
        KeyValue(key="cpu_percent.model_forward", value=f"{snapshot.model_forward_percent:.1f}"),
        KeyValue(key="frames_processed", value=str(snapshot.frames_processed)),
        KeyValue(key="frames_dropped", value=str(totals["dropped"])),
        KeyValue(key="audio_gaps", value=str(totals["gaps"])),
        KeyValue(key="bad_messages", value=str(totals["bad"])),
        KeyValue(key="errors", value=str(totals["error"])),
    ]
    for reason, count in sorted(events.items()):
        values.append(KeyValue(key=f"{groups[reason]}.{reason}", value=str(count)))
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id, values=values)
    return DiagnosticArray(header=header, status=[status])


def _percentiles(name: str, p50: float, p95: float) -> list[KeyValue]:
    """``name.p50`` and ``name.p95`` [ms, 2 decimals]: each latency is published as that pair."""
    return [KeyValue(key=f"{name}.p50", value=f"{p50:.2f}"), KeyValue(key=f"{name}.p95", value=f"{p95:.2f}")]


def _warnings(snapshot: StatsSnapshot) -> list[str]:
    """The WARN messages of a snapshot: the transport hint first, then the events of the period."""
    warnings = [hint] if (hint := transport_hint(snapshot)) is not None else []
    if snapshot.new_events:
        warnings.append("recent: " + ", ".join(f"{k} x{v}" for k, v in sorted(snapshot.new_events.items())))
    return warnings


def _group(reason: str) -> str:
    """The diagnostics group of a reason key: dropped, gaps, error or bad (input)."""
    if is_drop(reason):
        return "dropped"
    if is_gap(reason):
        return "gaps"
    return "error" if is_error(reason) else "bad"


def diagnostic_values(array: DiagnosticArray) -> dict[str, str]:
    """Key/value pairs of the first status (for tests and tools that read diagnostics)."""
    return {kv.key: kv.value for kv in array.status[0].values} if array.status else {}
