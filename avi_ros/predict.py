"""What the model hears in an audio file, window by window (``avi-ros predict FILE``).

Users check their own recordings with it. The file is read with soundfile (WAV, FLAC, OGG, ...):
- 4 channels: first-order ambisonics, ACN/SN3D unless told otherwise (FuMa order and N3D or FuMa
  normalisation are converted with ``avi_ros.audio.to_acn_sn3d``, as the node does at its edge);
- 1 channel: mono, taken as the omnidirectional W channel with Y, Z, X silent. Class
  probabilities still mean something; the direction does not, so azimuth and elevation are NaN.

The audio is resampled once to the checkpoint's rate and cut into windows of the checkpoint's
length (``FeatureConfig.window_seconds``) every ``hop_s`` seconds; a file shorter than one window
gives one window, zero-padded at its start as the pipeline pads a short buffer. Every window goes
through ``Pipeline.run_batch``, the node's own path (features, occlusion, model, output reading),
with a camera that sees nothing: a black image with no depth reading anywhere. The occlusion code
reads that as a fully blocked view (occlusion level 1), the condition in which the model's
reliability network leans on audio; an ``audio_only`` checkpoint ignores the image altogether.

Every hazard the node would publish for a window is reported (a hazard-set checkpoint may find
several at once, most confident first); a window where none would be published reports the
model's best guess instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from avi_ros.audio import FOA_CHANNELS, AudioFormatError, resample, to_acn_sn3d
from avi_ros.geometry import CameraIntrinsics
from avi_ros.pipeline import Pipeline
from avi_ros.types import Frame, HazardEstimateData

MONO = 1
BLANK_FOV_RAD = math.radians(90.0)  # field of view of the blank camera; it sees nothing anyway
DEFAULT_HOP_S = 0.5
DEFAULT_BATCH = 16  # windows per model forward


@dataclass
class Recording:
    """An audio file as the model's input: float32 [4, samples] ACN/SN3D at ``sample_rate`` [Hz].

    ``channels``: channels in the file (4 = FOA, 1 = mono placed on W); ``file_rate``: its rate [Hz].
    """

    path: Path
    audio: np.ndarray
    sample_rate: int
    channels: int
    file_rate: int

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / self.sample_rate

    @property
    def is_mono(self) -> bool:
        return self.channels == MONO


def read_recording(
    path: str | Path, sample_rate: int, channel_order: str = "ACN", normalization: str = "SN3D"
) -> Recording:
    """Read a 4-channel FOA or mono file and bring it to ACN/SN3D at ``sample_rate`` [Hz].

    Raises FileNotFoundError for a missing file and ValueError (naming the file) for a format
    soundfile cannot read, a channel count other than 1 or 4, an empty or a non-finite file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(
            f"cannot read audio file {path}: {exc} (expected a format libsndfile reads: WAV, FLAC, OGG, ...)"
        ) from exc
    channels = data.shape[1]
    if channels not in (MONO, FOA_CHANNELS):
        raise ValueError(
            f"{path} has {channels} channels; expected {FOA_CHANNELS} (first-order ambisonics) or 1 (mono)"
        )
    if data.shape[0] == 0:
        raise ValueError(f"{path} holds no samples")
    if not np.isfinite(data).all():
        raise ValueError(f"{path} contains NaN or infinite samples")
    if channels == MONO:
        audio = np.zeros((FOA_CHANNELS, data.shape[0]), dtype=np.float32)
        audio[0] = data[:, 0]
    else:
        try:
            audio = to_acn_sn3d(np.ascontiguousarray(data.T), channel_order, normalization)
        except AudioFormatError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    audio = resample(audio, int(file_rate), sample_rate)
    return Recording(
        path, np.ascontiguousarray(audio, dtype=np.float32), sample_rate, channels, int(file_rate)
    )


def window_ends(num_samples: int, window_samples: int, hop_samples: int) -> list[int]:
    """Sample index just past the end of each window: every hop from one full window to the end.

    A recording shorter than one window gives a single window ending at its last sample.
    """
    if hop_samples <= 0:
        raise ValueError(f"hop must be at least one sample, got {hop_samples}")
    if num_samples <= window_samples:
        return [num_samples]
    return list(range(window_samples, num_samples + 1, hop_samples))


def blank_camera_frame(audio: np.ndarray, sample_rate: int, size_px: int) -> Frame:
    """A Frame whose camera sees nothing (black, no depth reading) around an audio window."""
    return Frame(
        rgb=np.zeros((size_px, size_px, 3), dtype=np.uint8),
        depth_m=np.zeros((size_px, size_px), dtype=np.float32),
        intrinsics=CameraIntrinsics.from_fov(size_px, size_px, BLANK_FOV_RAD),
        audio=audio,
        sample_rate=sample_rate,
    )


@dataclass
class HazardPrediction:
    """One hazard estimate of a window: class, its probabilities [N], confidence [0..1], direction
    in degrees (REP-103: azimuth counter-clockwise from the array's +x, elevation up; NaN for a
    mono file) and distance [m]."""

    class_name: str
    probabilities: np.ndarray
    confidence: float
    azimuth_deg: float
    elevation_deg: float
    distance_m: float

    @classmethod
    def of(cls, estimate: HazardEstimateData, mono: bool) -> HazardPrediction:
        unknown = float("nan")
        return cls(
            class_name=estimate.class_name,
            probabilities=np.asarray(estimate.class_probabilities, dtype=np.float32),
            confidence=estimate.confidence,
            azimuth_deg=unknown if mono else math.degrees(estimate.azimuth),
            elevation_deg=unknown if mono else math.degrees(estimate.elevation),
            distance_m=estimate.distance,
        )

    def to_dict(self, class_names: list[str]) -> dict[str, Any]:
        """JSON-ready: NaN (unknown direction) becomes null."""
        return {
            "class": self.class_name,
            "probabilities": dict(zip(class_names, map(float, self.probabilities), strict=True)),
            "confidence": self.confidence,
            "azimuth_deg": _finite_or_none(self.azimuth_deg),
            "elevation_deg": _finite_or_none(self.elevation_deg),
            "distance_m": self.distance_m,
        }


@dataclass
class WindowPrediction:
    """The model's answer for one window [start_s, end_s) of the file (seconds from its start).

    ``top``: the best guess (``PipelineResult.top``); ``hazards``: every hazard the node would
    publish (not ``none``, confidence at or above the threshold), most confident first.
    """

    start_s: float
    end_s: float
    top: HazardPrediction
    hazards: list[HazardPrediction]

    @property
    def hazard(self) -> bool:
        """Whether the node would publish anything for this window."""
        return bool(self.hazards)

    @property
    def shown(self) -> list[HazardPrediction]:
        """What a report lists for the window: its published hazards, else the best guess."""
        return self.hazards or [self.top]


@dataclass
class PredictionReport:
    """Every window of one file, with what is needed to read them."""

    recording: Recording
    model: str
    class_names: list[str]
    window_s: float
    hop_s: float
    confidence_threshold: float
    channel_order: str
    normalization: str
    windows: list[WindowPrediction] = field(default_factory=list)

    def describe(self) -> str:
        """One line: the file, how it was read, the model and the windowing."""
        rec = self.recording
        kind = (
            "mono (direction unknown)"
            if rec.is_mono
            else f"{FOA_CHANNELS}-channel FOA ({self.channel_order}/{self.normalization})"
        )
        return (
            f"{rec.path}: {kind}, {rec.file_rate} Hz, {rec.duration_s:.2f} s; model {self.model}, "
            f"window {self.window_s:.2f} s, hop {self.hop_s:g} s"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (unknown direction) becomes null."""
        rec = self.recording
        return {
            "file": str(rec.path),
            "channels": rec.channels,
            "channel_order": self.channel_order,
            "normalization": self.normalization,
            "file_sample_rate": rec.file_rate,
            "duration_s": rec.duration_s,
            "model": self.model,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "confidence_threshold": self.confidence_threshold,
            "classes": self.class_names,
            "windows": [
                {
                    "start_s": w.start_s,
                    "end_s": w.end_s,
                    **w.top.to_dict(self.class_names),
                    "hazard": w.hazard,
                    "hazards": [h.to_dict(self.class_names) for h in w.hazards],
                }
                for w in self.windows
            ],
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def predict_recording(
    pipeline: Pipeline,
    recording: Recording,
    hop_s: float = DEFAULT_HOP_S,
    batch_size: int = DEFAULT_BATCH,
) -> list[WindowPrediction]:
    """Run ``pipeline`` over the windows of ``recording`` (see the module doc)."""
    if not hop_s > 0:
        raise ValueError(f"hop must be > 0 s, got {hop_s}")
    if recording.sample_rate != pipeline.feature_config.sample_rate:
        raise ValueError(
            f"recording is at {recording.sample_rate} Hz but the model expects "
            f"{pipeline.feature_config.sample_rate} Hz; read it with read_recording(..., sample_rate)"
        )
    rate = recording.sample_rate
    window = pipeline.window_samples
    ends = window_ends(recording.audio.shape[1], window, max(round(hop_s * rate), 1))
    size = max(pipeline.image_size, 8)
    out: list[WindowPrediction] = []
    for first in range(0, len(ends), batch_size):
        chunk = ends[first : first + batch_size]
        frames = [
            blank_camera_frame(recording.audio[:, max(end - window, 0) : end], rate, size) for end in chunk
        ]
        for end, result in zip(chunk, pipeline.run_batch(frames), strict=True):
            mono = recording.is_mono
            out.append(
                WindowPrediction(
                    start_s=max(end - window, 0) / rate,
                    end_s=end / rate,
                    top=HazardPrediction.of(result.top, mono),
                    hazards=[HazardPrediction.of(h, mono) for h in result.hazards],
                )
            )
    return out


def predict_file(
    path: str | Path,
    pipeline: Pipeline,
    model_name: str,
    hop_s: float = DEFAULT_HOP_S,
    channel_order: str = "ACN",
    normalization: str = "SN3D",
    batch_size: int = DEFAULT_BATCH,
) -> PredictionReport:
    """Read ``path`` and predict every window; see ``read_recording`` for the errors raised."""
    recording = read_recording(path, pipeline.feature_config.sample_rate, channel_order, normalization)
    return PredictionReport(
        recording=recording,
        model=model_name,
        class_names=list(pipeline.taxonomy.names),
        window_s=pipeline.window_samples / pipeline.feature_config.sample_rate,
        hop_s=hop_s,
        confidence_threshold=pipeline.confidence_threshold,
        channel_order=channel_order,
        normalization=normalization,
        windows=predict_recording(pipeline, recording, hop_s, batch_size),
    )


def _angle(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.1f}"


def format_table(report: PredictionReport, all_classes: bool = False) -> str:
    """A plain-text table, one row per hazard the node would publish (several rows with the same
    times when a window holds several hazards; one row with the best guess when it holds none):
    time, class and its probability, confidence, direction [deg], distance [m], whether it is
    published, and the runner-up class (or, with ``all_classes``, one probability column per class)."""
    names = report.class_names
    header = ["start_s", "end_s", "class", "p", "conf", "az_deg", "el_deg", "dist_m", "hazard"]
    header += names if all_classes else ["second", "p2"]
    rows = []
    for w in report.windows:
        for h in w.shown:
            order = np.argsort(h.probabilities)[::-1]
            row = [
                f"{w.start_s:.2f}",
                f"{w.end_s:.2f}",
                h.class_name,
                f"{float(h.probabilities[order[0]]):.2f}",
                f"{h.confidence:.2f}",
                _angle(h.azimuth_deg),
                _angle(h.elevation_deg),
                f"{h.distance_m:.1f}",
                "yes" if w.hazard else "no",
            ]
            if all_classes:
                row += [f"{float(p):.2f}" for p in h.probabilities]
            else:
                row += [names[order[1]], f"{float(h.probabilities[order[1]]):.2f}"]
            rows.append(row)
    return _align([header, *rows], text_columns={2, 9} if not all_classes else {2})


def _align(rows: Sequence[Sequence[str]], text_columns: set[int]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i in text_columns else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def write_json(report: PredictionReport, path: str | Path) -> Path:
    """Write ``report.to_dict()`` to ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path
