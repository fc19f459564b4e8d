"""/diagnostics for the perception node: input rates, latency, drops and bad input by reason.

``NodeStats`` collects (thread-safe, on the wall clock so rates stay meaningful under
bag replay) and ``diagnostic_array`` turns a snapshot into one ``DiagnosticStatus``.
The level is WARN when frames were dropped or input was bad during the last period, and
ERROR when no frame has been processed for ``stale_after_s`` while inputs arrive.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

INPUT_STREAMS = ("audio", "rgb", "depth", "camera_info")


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


@dataclass
class StatsSnapshot:
    rates_hz: dict[str, float]
    inference_ms_p50: float
    inference_ms_p95: float
    end_to_end_ms_p50: float
    end_to_end_ms_p95: float
    frames_processed: int
    events: dict[str, int]
    seconds_since_last_frame: float
    new_events: dict[str, int] = field(default_factory=dict)


class NodeStats:
    """What the node reports; every method is safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates = {name: RateMeter() for name in (*INPUT_STREAMS, "frames")}
        self._inference = LatencyWindow()
        self._end_to_end = LatencyWindow()
        self.frames_processed = 0
        self._last_frame_s = time.monotonic()
        self._reported_events: dict[str, int] = {}

    def message_in(self, stream: str) -> None:
        with self._lock:
            self._rates[stream].tick(time.monotonic())

    def frame_done(self, inference_ms: float, end_to_end_ms: float) -> None:
        with self._lock:
            now = time.monotonic()
            self._rates["frames"].tick(now)
            self._inference.add(inference_ms)
            self._end_to_end.add(end_to_end_ms)
            self.frames_processed += 1
            self._last_frame_s = now

    def snapshot(self, events: dict[str, int]) -> StatsSnapshot:
        """Current figures; ``new_events`` are the counts added since the previous snapshot."""
        with self._lock:
            now = time.monotonic()
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
            )


def _is_drop(reason: str) -> bool:
    return reason.startswith("frame.") or reason == "rgbd.unmatched"


def _is_gap(reason: str) -> bool:
    return reason in ("audio.gap", "audio.gap_filled")


def diagnostic_array(
    snapshot: StatsSnapshot, header: Header, name: str, hardware_id: str, stale_after_s: float = 5.0
) -> DiagnosticArray:
    """One DiagnosticStatus with every figure as a key/value (``bad.<stream>.<reason>`` etc.)."""
    events = snapshot.events
    dropped = sum(v for k, v in events.items() if _is_drop(k))
    gaps = sum(v for k, v in events.items() if _is_gap(k))
    bad = sum(v for k, v in events.items() if not _is_drop(k) and not _is_gap(k))
    inputs_alive = any(snapshot.rates_hz[s] > 0 for s in INPUT_STREAMS)
    if inputs_alive and snapshot.seconds_since_last_frame > stale_after_s:
        level, message = DiagnosticStatus.ERROR, "inputs arrive but no frame was processed recently"
    elif snapshot.new_events:
        level = DiagnosticStatus.WARN
        message = "recent: " + ", ".join(f"{k} x{v}" for k, v in sorted(snapshot.new_events.items()))
    elif not inputs_alive:
        level, message = DiagnosticStatus.WARN, "no input"
    else:
        level, message = DiagnosticStatus.OK, "ok"
    values = [KeyValue(key=f"rate_hz.{k}", value=f"{v:.2f}") for k, v in snapshot.rates_hz.items()]
    values += [
        KeyValue(key="inference_ms.p50", value=f"{snapshot.inference_ms_p50:.2f}"),
        KeyValue(key="inference_ms.p95", value=f"{snapshot.inference_ms_p95:.2f}"),
        KeyValue(key="end_to_end_ms.p50", value=f"{snapshot.end_to_end_ms_p50:.2f}"),
        KeyValue(key="end_to_end_ms.p95", value=f"{snapshot.end_to_end_ms_p95:.2f}"),
        KeyValue(key="frames_processed", value=str(snapshot.frames_processed)),
        KeyValue(key="frames_dropped", value=str(dropped)),
        KeyValue(key="audio_gaps", value=str(gaps)),
        KeyValue(key="bad_messages", value=str(bad)),
    ]
    for reason, count in sorted(events.items()):
        group = "dropped" if _is_drop(reason) else "gaps" if _is_gap(reason) else "bad"
        values.append(KeyValue(key=f"{group}.{reason}", value=str(count)))
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id, values=values)
    return DiagnosticArray(header=header, status=[status])


def diagnostic_values(array: DiagnosticArray) -> dict[str, str]:
    """Key/value pairs of the first status (for tests and tools that read diagnostics)."""
    return {kv.key: kv.value for kv in array.status[0].values} if array.status else {}
