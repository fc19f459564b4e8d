"""What the model (and the physics) hears in an audio file, window by window (``avi-ros predict FILE``).

Users check their own recordings with it. The file is read with soundfile (WAV, FLAC, OGG, ...):
- 4 channels: first-order ambisonics, ACN/SN3D unless told otherwise (FuMa order and N3D or FuMa
  normalisation are converted with ``avi_ros.audio.to_acn_sn3d``, as the node does at its edge);
- 1 channel: mono, taken as the omnidirectional W channel with Y, Z, X silent. Class
  probabilities still mean something; the direction does not, so azimuth and elevation are NaN.

Streaming, in bounded memory: ``FoaStream`` reads the file in blocks, converts each block to
ACN/SN3D and resamples it to the model's rate with enough overlap that the result equals
resampling the whole file at once (``avi_ros.audio.resample``). It holds at most one block, its
overlap and one window at a time, so an hour-long file needs no more memory than a minute-long
one, and every window is printed as soon as it is computed (a tqdm bar counts windows on stderr
when stderr is a terminal).

Windows have the checkpoint's length (``FeatureConfig.window_seconds``; ``--mic-check``:
``--window``) and end every ``hop_s`` seconds; a file shorter than one window gives one window,
zero-padded at its start as the pipeline pads a short buffer. Every window goes through
``Pipeline.run_batch``, the node's own path (features, occlusion, model, output reading), with a
camera that sees nothing: a black image with no depth reading anywhere. The occlusion code reads
that as a fully blocked view (occlusion level 1), the condition in which the model's reliability
network leans on audio; an ``audio_only`` checkpoint ignores the image altogether. Every hazard
the node would publish for a window is reported (a model with several hazard slots may find
several at once, most confident first); a window where none would be published reports the model's best
guess instead.

Beside the model, every window gets the *physics* direction of arrival
(``avi_ros.doa.tf_direction``: the FOA active intensity vector, no model involved), its
confidence and the input level. This is the microphone check: a source on the robot's left must
read azimuth about +90 deg (REP-103: x forward, y left, z up, azimuth counter-clockwise from +x),
one on its right about -90 deg. If it reads the mirror image, the channel order, the
normalisation or the array's mounting is wrong. ``--mic-check`` prints only these and needs no
model (nor torch).

The model defaults to the shipped one (``avi_ros.shipped_model.resolve_model_path``), from any
working directory. Errors name their cause: a missing file, a wrong model path, a missing
shipped model and a CUDA device that this machine does not have are different messages.

The output columns and JSON keys are described once, in ``OUTPUT_HELP`` below, which
``avi-ros predict --help`` prints as its epilog.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import soundfile as sf
from tqdm import tqdm

from avi_ros.audio import FOA_CHANNELS, AudioFormatError, check_sample_rate, resample, to_acn_sn3d
from avi_ros.doa import DirectionEstimate, tf_direction
from avi_ros.geometry import CameraIntrinsics
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD, Frame, HazardEstimateData

if TYPE_CHECKING:
    from avi_ros.pipeline import Pipeline

MONO = 1
BLANK_FOV_RAD = math.radians(90.0)  # field of view of the blank camera; it sees nothing anyway
DEFAULT_HOP_S = 0.5
DEFAULT_BATCH = 16  # windows per model forward
DEFAULT_MIC_WINDOW_S = 1.0  # --mic-check window [s]: the default model window (FeatureConfig)
DEFAULT_BLOCK_FRAMES = 1 << 16  # file samples read at a time (1.4 s at 48 kHz)

OUTPUT_HELP = """\
Output: one '#' line (file, format, model, windowing), one header line, then one row per window
(several rows with the same times when the model publishes several hazards in one window):
  start_s, end_s   window [s from the start of the file]
  class, p         the hazard's class and its probability (the best guess when nothing is published)
  conf             the model's calibrated confidence (0..1)
  az_deg, el_deg   the model's direction [deg]; nan for a mono file
  dist_m           the model's distance [m]
  hazard           yes: the node would publish it (not 'none', conf >= --confidence-threshold)
  phys_az, phys_el physics direction of arrival [deg] from the FOA intensity vector, no model
  phys_conf        1 - diffuseness (0: diffuse or silent .. 1: one plane wave)
  level_dbfs       RMS of the omnidirectional channel W [dBFS], after resampling to the model's rate
  second, p2       runner-up class and probability (--all-classes: one column per class instead)
--mic-check prints start_s, end_s, phys_az, phys_el, phys_conf and level_dbfs only.
Directions follow REP-103 (x forward, y left, z up; azimuth counter-clockwise from +x): a source on
the robot's left must read azimuth about +90, on its right about -90, ahead 0.
--json FILE: {file, channels, channel_order, normalization, file_sample_rate, duration_s, model
(null for --mic-check), window_s, hop_s, confidence_threshold, classes, windows: [{start_s, end_s,
physics: {azimuth_deg, elevation_deg, confidence, level_dbfs}, and with a model: class,
probabilities {class: p}, confidence, azimuth_deg, elevation_deg, distance_m, hazard, hazards: [the
published hazards, each with the same keys as the window's own]}]}; unknown angles are null."""


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioFileInfo:
    """What an audio file holds: ``channels`` (4 = FOA, 1 = mono placed on W), ``file_rate``
    [Hz] and ``frames`` (samples per channel at ``file_rate``)."""

    path: Path
    channels: int
    file_rate: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.file_rate

    @property
    def is_mono(self) -> bool:
        return self.channels == MONO


def open_audio_file(path: str | Path) -> AudioFileInfo:
    """Check that ``path`` is a 4-channel FOA or mono audio file with samples, without reading them.

    Raises FileNotFoundError for a missing file and ValueError (naming the file) for a directory,
    a format soundfile cannot read, another channel count or an empty file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(
            f"cannot read audio file {path}: {exc} (expected a format libsndfile reads: WAV, FLAC, OGG, ...)"
        ) from exc
    if info.channels not in (MONO, FOA_CHANNELS):
        raise ValueError(
            f"{path} has {info.channels} channels; "
            f"expected {FOA_CHANNELS} (first-order ambisonics) or 1 (mono)"
        )
    if info.frames <= 0:
        raise ValueError(f"{path} holds no samples")
    return AudioFileInfo(path, info.channels, int(info.samplerate), int(info.frames))


class FoaStream:
    """An audio file as consecutive ACN/SN3D float32 blocks [4, n] at ``sample_rate`` [Hz].

    Reads ``block_frames`` file samples at a time (plus an overlap on each side when resampling,
    a whole number of polyphase periods longer than the resampling filter's reach, so that the
    kept part of each block equals the whole-file ``avi_ros.audio.resample``). ``peak_held_samples``
    records the most samples per channel held at once (input block, its resampled copy and the
    window buffer), which is bounded by the block and window sizes, not by the file.
    """

    def __init__(
        self,
        info: AudioFileInfo,
        sample_rate: int,
        channel_order: str = "ACN",
        normalization: str = "SN3D",
        block_frames: int = DEFAULT_BLOCK_FRAMES,
    ) -> None:
        if block_frames <= 0:
            raise ValueError(f"block_frames must be positive, got {block_frames}")
        self.info = info
        self.sample_rate = sample_rate
        self.channel_order = channel_order
        self.normalization = normalization
        self.peak_held_samples = 0
        if info.file_rate == sample_rate:
            self._up, self._down, self._margin = 1, 1, 0
        else:
            try:
                check_sample_rate(info.file_rate)
            except AudioFormatError as exc:
                raise ValueError(f"{info.path}: {exc}") from exc
            ratio = Fraction(sample_rate, info.file_rate).limit_denominator(1000)  # as audio.resample
            self._up, self._down = ratio.numerator, ratio.denominator
            # resample_poly's filter reaches 10 * max(up, down) upsampled samples each side.
            reach = math.ceil(10 * max(self._up, self._down) / self._up) + 1
            self._margin = math.ceil(reach / self._down) * self._down
        self._block = math.ceil(block_frames / self._down) * self._down
        self._buffered = 0  # samples per channel that windows() keeps while the next block is read

    @property
    def num_samples(self) -> int:
        """Samples per channel at ``sample_rate`` (ceil(frames * up / down), as resample_poly gives)."""
        return -(-self.info.frames * self._up // self._down)

    def _hold(self, samples: int) -> None:
        self.peak_held_samples = max(self.peak_held_samples, samples)

    def _to_acn(self, data: np.ndarray, start: int) -> np.ndarray:
        info = self.info
        if not np.isfinite(data).all():
            bad = start + int(np.argwhere(~np.isfinite(data))[0, 0])
            raise ValueError(
                f"{info.path} contains NaN or infinite samples (first at {bad / info.file_rate:.3f} s)"
            )
        if info.is_mono:
            audio = np.zeros((FOA_CHANNELS, data.shape[0]), dtype=np.float32)
            audio[0] = data[:, 0]
            return audio
        try:
            return to_acn_sn3d(np.ascontiguousarray(data.T), self.channel_order, self.normalization)
        except AudioFormatError as exc:
            raise ValueError(f"{info.path}: {exc}") from exc

    def blocks(self) -> Iterator[np.ndarray]:
        """Consecutive float32 [4, n] blocks covering ``num_samples``."""
        frames, up, down = self.info.frames, self._up, self._down
        with sf.SoundFile(str(self.info.path)) as audio_file:
            for start in range(0, frames, self._block):
                stop = min(start + self._block, frames)
                low, high = max(start - self._margin, 0), min(stop + self._margin, frames)
                audio_file.seek(low)
                data = audio_file.read(high - low, dtype="float32", always_2d=True)
                segment = resample(self._to_acn(data, low), self.info.file_rate, self.sample_rate)
                self._hold(self._buffered + data.shape[0] + segment.shape[1])
                first = (start - low) * up // down
                last = segment.shape[1] if stop == frames else first + (stop - start) * up // down
                yield np.ascontiguousarray(segment[:, first:last], dtype=np.float32)

    def windows(self, window_samples: int, hop_samples: int) -> Iterator[tuple[int, np.ndarray]]:
        """(end sample, audio [4, <= window_samples]) of each window of ``window_ends``.

        Between blocks only the samples that a coming window needs are kept (at most one window).
        """
        ends = iter(window_ends(self.num_samples, window_samples, hop_samples))
        end = next(ends, None)
        buffer = np.zeros((FOA_CHANNELS, 0), dtype=np.float32)
        buffer_start = 0  # sample index of buffer[:, 0]
        for block in self.blocks():
            buffer = np.concatenate([buffer, block], axis=1)
            self._hold(buffer.shape[1] + block.shape[1])
            while end is not None and end <= buffer_start + buffer.shape[1]:
                start = max(end - window_samples, 0)
                yield end, buffer[:, start - buffer_start : end - buffer_start].copy()
                end = next(ends, None)
            if end is None:
                return
            drop = min(max(end - window_samples - buffer_start, 0), buffer.shape[1])
            buffer, buffer_start = buffer[:, drop:], buffer_start + drop
            self._buffered = buffer.shape[1]


def read_foa(
    path: str | Path, sample_rate: int, channel_order: str = "ACN", normalization: str = "SN3D"
) -> np.ndarray:
    """A whole (short) file as float32 [4, samples] ACN/SN3D at ``sample_rate`` [Hz].

    For tests and small clips; ``FoaStream`` reads long files in bounded memory.
    """
    stream = FoaStream(open_audio_file(path), sample_rate, channel_order, normalization)
    return np.concatenate(list(stream.blocks()), axis=1)


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


# --- results --------------------------------------------------------------------------------


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


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


def physics_to_dict(estimate: DirectionEstimate) -> dict[str, float | None]:
    """The mic check of a window as JSON: direction [deg] (null when unknown), confidence, level [dBFS]."""
    return {
        "azimuth_deg": _finite_or_none(estimate.azimuth_deg),
        "elevation_deg": _finite_or_none(estimate.elevation_deg),
        "confidence": estimate.confidence,
        "level_dbfs": _finite_or_none(estimate.level_dbfs),
    }


@dataclass
class WindowPrediction:
    """What was found in one window [start_s, end_s) of the file (seconds from its start).

    ``physics``: the direction from the intensity vector (``avi_ros.doa.tf_direction``);
    ``top``: the model's best guess (``PipelineResult.top``), None in a mic check;
    ``hazards``: every hazard the node would publish (not ``none``, confidence at or above the
    threshold), most confident first.
    """

    start_s: float
    end_s: float
    physics: DirectionEstimate
    top: HazardPrediction | None = None
    hazards: list[HazardPrediction] = field(default_factory=list)

    @property
    def hazard(self) -> bool:
        """Whether the node would publish anything for this window."""
        return bool(self.hazards)

    @property
    def shown(self) -> list[HazardPrediction]:
        """What a report lists for the window: its published hazards, else the best guess."""
        return self.hazards or ([self.top] if self.top is not None else [])


@dataclass
class PredictionReport:
    """Every window of one file, with what is needed to read them. ``model`` is None for a mic check."""

    info: AudioFileInfo
    model: str | None
    class_names: list[str]
    window_s: float
    hop_s: float
    confidence_threshold: float | None
    channel_order: str
    normalization: str
    windows: list[WindowPrediction] = field(default_factory=list)

    @property
    def mic_check(self) -> bool:
        return self.model is None

    def describe(self) -> str:
        """One line: the file, how it was read, the model and the windowing."""
        info = self.info
        kind = (
            "mono (direction unknown)"
            if info.is_mono
            else f"{FOA_CHANNELS}-channel FOA ({self.channel_order}/{self.normalization})"
        )
        model = "mic check (physics only, no model)" if self.mic_check else f"model {self.model}"
        return (
            f"{info.path}: {kind}, {info.file_rate} Hz, {info.duration_s:.2f} s; {model}, "
            f"window {self.window_s:.2f} s, hop {self.hop_s:g} s"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (keys in ``OUTPUT_HELP``): NaN (unknown direction) becomes null."""
        info = self.info
        return {
            "file": str(info.path),
            "channels": info.channels,
            "channel_order": self.channel_order,
            "normalization": self.normalization,
            "file_sample_rate": info.file_rate,
            "duration_s": info.duration_s,
            "model": self.model,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "confidence_threshold": self.confidence_threshold,
            "classes": self.class_names,
            "windows": [self._window_dict(w) for w in self.windows],
        }

    def _window_dict(self, window: WindowPrediction) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_s": window.start_s,
            "end_s": window.end_s,
            "physics": physics_to_dict(window.physics),
        }
        if window.top is not None:
            out |= window.top.to_dict(self.class_names)
            out["hazard"] = window.hazard
            out["hazards"] = [h.to_dict(self.class_names) for h in window.hazards]
        return out


# --- running --------------------------------------------------------------------------------


def check_device(device: str) -> None:
    """Fail before any model is loaded when ``device`` cannot run here.

    ``avi_ros.device.resolve_device`` reads the setting (``auto``, ``cpu``, ``cuda``, ``cuda:N``) and
    refuses CUDA where torch sees none; on top of it, ``cuda:N`` needs N + 1 devices, and a setting
    torch cannot parse is named as such, so no device problem reads like a bad checkpoint.
    """
    import torch

    from avi_ros.device import resolve_device

    if device != "auto":
        try:
            kind = torch.device(device).type
        except RuntimeError:
            kind = None
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device '{device}' is not one of auto, cpu or cuda:N")
    resolved = resolve_device(device)
    count = torch.cuda.device_count() if resolved.type == "cuda" else 0
    if resolved.index is not None and resolved.index >= count:
        raise RuntimeError(
            f"device '{device}' requested, but this machine has {count} CUDA device(s): "
            f"cuda:0..cuda:{count - 1}"
        )


def load_pipeline(
    model: str | Path | None,
    device: str = "auto",
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    backend: str = "torch",
) -> tuple[Pipeline, Path]:
    """The checkpoint ``model`` (None: the shipped model) as a Pipeline on ``device``, and its path.
    ``backend`` "onnxruntime" runs its exported graph (``model`` may then be the .onnx file).

    The device is checked first and the path resolved next, so each failure names its own cause.
    """
    from avi_ros.onnx_backend import resolve_model_input
    from avi_ros.pipeline import Pipeline

    check_device(device)
    path = resolve_model_input(model, backend)
    pipeline = Pipeline.from_checkpoint(
        path, device=device, confidence_threshold=confidence_threshold, backend=backend
    )
    return pipeline, path


@dataclass
class PredictionJob:
    """A file opened for prediction: ``report`` (empty until ``run``), its stream and the pipeline
    (None: mic check only)."""

    report: PredictionReport
    stream: FoaStream
    pipeline: Pipeline | None
    window_samples: int
    hop_samples: int

    def run(
        self, batch_size: int = DEFAULT_BATCH, progress: bool = False, keep: bool = True
    ) -> Iterator[WindowPrediction]:
        """Yield every window as soon as it is computed (``keep``: also append it to ``report.windows``).

        ``progress`` shows a tqdm bar on stderr, only when stderr is a terminal.
        """
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        total = len(window_ends(self.stream.num_samples, self.window_samples, self.hop_samples))
        with tqdm(total=total, unit="window", desc="predict", disable=None if progress else True) as bar:
            pending: list[tuple[int, np.ndarray]] = []
            for item in self.stream.windows(self.window_samples, self.hop_samples):
                pending.append(item)
                if len(pending) == batch_size:
                    yield from self._finish(pending, bar, keep)
                    pending = []
            yield from self._finish(pending, bar, keep)

    def _finish(
        self, pending: list[tuple[int, np.ndarray]], bar: tqdm, keep: bool
    ) -> Iterator[WindowPrediction]:
        rate, window, mono = self.stream.sample_rate, self.window_samples, self.report.info.is_mono
        results = [None] * len(pending)
        if self.pipeline is not None and pending:
            size = max(self.pipeline.image_size, 8)
            results = self.pipeline.run_batch([blank_camera_frame(audio, rate, size) for _, audio in pending])
        for (end, audio), result in zip(pending, results, strict=True):
            prediction = WindowPrediction(
                start_s=max(end - window, 0) / rate, end_s=end / rate, physics=tf_direction(audio, rate)
            )
            if result is not None:
                prediction.top = HazardPrediction.of(result.top, mono)
                prediction.hazards = [HazardPrediction.of(h, mono) for h in result.hazards]
            if keep:
                self.report.windows.append(prediction)
            bar.update(1)
            yield prediction


def prepare_prediction(
    path: str | Path,
    pipeline: Pipeline | None,
    model_name: str | None,
    hop_s: float = DEFAULT_HOP_S,
    channel_order: str = "ACN",
    normalization: str = "SN3D",
    window_s: float = DEFAULT_MIC_WINDOW_S,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
) -> PredictionJob:
    """Open ``path`` (see ``open_audio_file`` for the errors) for the pipeline's windows at its rate,
    or, with ``pipeline`` None, for a mic check: ``window_s`` windows at the file's own rate."""
    if not hop_s > 0:
        raise ValueError(f"hop must be > 0 s, got {hop_s}")
    info = open_audio_file(path)
    if pipeline is None:
        if not window_s > 0:
            raise ValueError(f"window must be > 0 s, got {window_s}")
        rate, window = info.file_rate, max(round(window_s * info.file_rate), 1)
        class_names: list[str] = []
        threshold = None
    else:
        rate, window = pipeline.feature_config.sample_rate, pipeline.window_samples
        class_names, threshold = list(pipeline.taxonomy.names), pipeline.confidence_threshold
    stream = FoaStream(info, rate, channel_order, normalization, block_frames)
    report = PredictionReport(
        info=info,
        model=None if pipeline is None else (model_name or "model"),
        class_names=class_names,
        window_s=window / rate,
        hop_s=hop_s,
        confidence_threshold=threshold,
        channel_order=channel_order,
        normalization=normalization,
    )
    return PredictionJob(report, stream, pipeline, window, max(round(hop_s * rate), 1))


def predict_file(
    path: str | Path,
    pipeline: Pipeline | None,
    model_name: str | None,
    *,
    batch_size: int = DEFAULT_BATCH,
    **reading: Any,
) -> PredictionReport:
    """Read ``path`` and predict every window (``prepare_prediction``, given the keywords of its
    reading in ``reading``: ``hop_s``, ``channel_order`` ..., then ``PredictionJob.run``)."""
    job = prepare_prediction(path, pipeline, model_name, **reading)
    for _ in job.run(batch_size):
        pass
    return job.report


# --- output ---------------------------------------------------------------------------------

_NUMBER_WIDTH = 9


def _angle(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.1f}"


def _columns(report: PredictionReport, all_classes: bool) -> list[tuple[str, int]]:
    """(name, width) of every column; a negative width is left-aligned text."""
    physics = [("phys_az", 8), ("phys_el", 8), ("phys_conf", 9), ("level_dbfs", 10)]
    times = [("start_s", _NUMBER_WIDTH), ("end_s", _NUMBER_WIDTH)]
    if report.mic_check:
        return times + physics
    name_width = -max(len(name) for name in [*report.class_names, "second"])
    model = [
        ("class", name_width),
        ("p", 4),
        ("conf", 4),
        ("az_deg", 6),
        ("el_deg", 6),
        ("dist_m", 6),
        ("hazard", 6),
    ]
    extra = (
        [(name, max(len(name), 4)) for name in report.class_names]
        if all_classes
        else [("second", name_width), ("p2", 4)]
    )
    return times + model + physics + extra


def _line(cells: list[str], columns: list[tuple[str, int]]) -> str:
    return "  ".join(
        cell.ljust(-width) if width < 0 else cell.rjust(width)
        for cell, (_, width) in zip(cells, columns, strict=True)
    ).rstrip()


def table_header(report: PredictionReport, all_classes: bool = False) -> str:
    """The header line of the table (columns in ``OUTPUT_HELP``)."""
    columns = _columns(report, all_classes)
    return _line([name for name, _ in columns], columns)


def format_window(report: PredictionReport, window: WindowPrediction, all_classes: bool = False) -> list[str]:
    """The table rows of one window, in fixed-width columns, so rows can be printed as they come."""
    physics = window.physics
    mic = [
        _angle(physics.azimuth_deg),
        _angle(physics.elevation_deg),
        f"{physics.confidence:.2f}",
        f"{physics.level_dbfs:.1f}",
    ]
    times = [f"{window.start_s:.2f}", f"{window.end_s:.2f}"]
    columns = _columns(report, all_classes)
    if report.mic_check:
        return [_line(times + mic, columns)]
    rows = []
    for h in window.shown:
        order = np.argsort(h.probabilities)[::-1]
        model = [
            h.class_name,
            f"{float(h.probabilities[order[0]]):.2f}",
            f"{h.confidence:.2f}",
            _angle(h.azimuth_deg),
            _angle(h.elevation_deg),
            f"{h.distance_m:.1f}",
            "yes" if window.hazard else "no",
        ]
        if all_classes:
            extra = [f"{float(p):.2f}" for p in h.probabilities]
        else:
            extra = [report.class_names[order[1]], f"{float(h.probabilities[order[1]]):.2f}"]
        rows.append(_line(times + model + mic + extra, columns))
    return rows


def format_table(report: PredictionReport, all_classes: bool = False) -> str:
    """The whole table: header, then every window's rows (see ``OUTPUT_HELP``)."""
    lines = [table_header(report, all_classes)]
    for window in report.windows:
        lines += format_window(report, window, all_classes)
    return "\n".join(lines)


def write_json(report: PredictionReport, path: str | Path) -> Path:
    """Write ``report.to_dict()`` to ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class PredictOptions:
    """``avi-ros predict``'s arguments (see ``avi_ros.cli``): ``model`` None means the shipped model."""

    file: Path
    model: Path | None = None
    hop_s: float = DEFAULT_HOP_S
    channel_order: str = "ACN"
    normalization: str = "SN3D"
    json: Path | None = None
    all_classes: bool = False
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    device: str = "auto"
    backend: str = "torch"
    mic_check: bool = False
    window_s: float = DEFAULT_MIC_WINDOW_S
    block_frames: int = DEFAULT_BLOCK_FRAMES


def run_predict(options: PredictOptions, out: TextIO | None = None) -> PredictionReport:
    """The command: open the file, load the model (unless a mic check), print rows to ``out``
    (default stdout) as they come; returns the report (its windows only with ``options.json``).

    The file is checked before the model is loaded, so a typo in its name costs no model load.
    """
    out = sys.stdout if out is None else out
    open_audio_file(options.file)
    pipeline, model_name = None, None
    if not options.mic_check:
        pipeline, path = load_pipeline(
            options.model, options.device, options.confidence_threshold, options.backend
        )
        model_name = str(path)
    job = prepare_prediction(
        options.file,
        pipeline,
        model_name,
        options.hop_s,
        options.channel_order,
        options.normalization,
        options.window_s,
        options.block_frames,
    )
    print(f"# {job.report.describe()}", file=out, flush=True)
    print(table_header(job.report, options.all_classes), file=out, flush=True)
    for window in job.run(progress=True, keep=options.json is not None):
        for row in format_window(job.report, window, options.all_classes):
            tqdm.write(row, file=out)
        out.flush()
    if options.json is not None:
        print(f"wrote {write_json(job.report, options.json)}", file=sys.stderr)
    return job.report
