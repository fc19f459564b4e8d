"""STARSS23 (DCASE2023 Task 3): FOA audio windows with 100 ms multi-source labels, and video crops.

Layout: ``<root>/{foa_dev,metadata_dev,video_dev}/<split>/fold<F>_room<R>_mix<M>.{wav,csv,mp4}``,
split one of ``SPLITS``; fold 3 is training data and fold 4 testing data. Metadata rows have no
header: ``frame, class_index, source_index, azimuth_deg, elevation_deg[, distance_cm]``, one
row per active source and 100 ms frame (frames repeat when sources overlap). Azimuth is
counter-clockwise (+90 = left) like REP-103, so labels are used as they are, in radians.

Video is 360 degree equirectangular. We assume the frame centre looks at azimuth 0 and the
azimuth grows to the left of the image (the same counter-clockwise sense as the labels);
``equirect_to_perspective`` cuts a pinhole view for any direction.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from avi_ros.audio import SAMPLE_RATE, resample, to_acn_sn3d
from avi_ros.geometry import OPTICAL_TO_BODY, CameraIntrinsics, direction_to_unit, rotation_from_rpy

SPLITS = ("dev-train-sony", "dev-train-tau", "dev-test-sony", "dev-test-tau")
TRAIN_FOLD = 3
TEST_FOLD = 4
LABEL_HOP_S = 0.1
STARSS23_CLASSES = (
    "female_speech",
    "male_speech",
    "clapping",
    "telephone",
    "laughter",
    "domestic_sounds",
    "footsteps",
    "door_open_close",
    "music",
    "musical_instrument",
    "water_tap",
    "bell",
    "knock",
)
_NAME = re.compile(r"^fold(\d+)_room(\d+)_mix(\d+)$")


@dataclass(frozen=True)
class Starss23Recording:
    """One recording: its split folder, fold/room/mix numbers and file paths (video may be absent)."""

    name: str
    split: str
    fold: int
    room: int
    mix: int
    foa_path: Path
    metadata_path: Path
    video_path: Path | None


@dataclass(frozen=True)
class Starss23Event:
    """One active source in one 100 ms frame; angles in degrees as stored, distance in metres if given."""

    frame: int
    class_index: int
    source_index: int
    azimuth_deg: float
    elevation_deg: float
    distance_m: float | None = None

    @property
    def unit_vector(self) -> np.ndarray:
        """Direction [3] in the microphone frame (REP-103)."""
        return direction_to_unit(math.radians(self.azimuth_deg), math.radians(self.elevation_deg))


def find_recordings(root: str | Path, splits: Sequence[str] = SPLITS) -> list[Starss23Recording]:
    """Recordings that have both FOA audio and metadata in the given split folders, sorted by name."""
    root = Path(root)
    if not (root / "foa_dev").is_dir() or not (root / "metadata_dev").is_dir():
        raise FileNotFoundError(f"{root} is not a STARSS23 root: it needs foa_dev/ and metadata_dev/")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown STARSS23 splits {unknown}; expected some of {SPLITS}")
    found = []
    for split in splits:
        for wav in sorted((root / "foa_dev" / split).glob("*.wav")):
            match = _NAME.match(wav.stem)
            meta = root / "metadata_dev" / split / f"{wav.stem}.csv"
            if match is None or not meta.is_file():
                continue
            video = root / "video_dev" / split / f"{wav.stem}.mp4"
            fold, room, mix = (int(g) for g in match.groups())
            found.append(
                Starss23Recording(
                    wav.stem, split, fold, room, mix, wav, meta, video if video.is_file() else None
                )
            )
    return found


def read_starss23_events(path: str | Path) -> list[Starss23Event]:
    """All rows of a metadata CSV (no header; 5 or 6 columns); raises ValueError naming a bad line."""
    events = []
    with Path(path).open(newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) not in (5, 6):
                raise ValueError(f"{path}:{line}: expected 5 or 6 columns, got {len(row)}: {row}")
            try:
                frame, cls, src = int(row[0]), int(row[1]), int(row[2])
                az, el = float(row[3]), float(row[4])
                dist = float(row[5]) / 100.0 if len(row) == 6 else None
            except ValueError as exc:
                raise ValueError(f"{path}:{line}: malformed row {row}: {exc}") from exc
            if not 0 <= cls < len(STARSS23_CLASSES):
                raise ValueError(f"{path}:{line}: class index {cls} outside 0..{len(STARSS23_CLASSES) - 1}")
            events.append(Starss23Event(frame, cls, src, az, el, dist))
    return events


def events_by_frame(
    events: Sequence[Starss23Event], start_frame: int, n_frames: int
) -> list[list[Starss23Event]]:
    """Events of frames start_frame .. start_frame + n_frames - 1, one list per frame."""
    frames: list[list[Starss23Event]] = [[] for _ in range(n_frames)]
    for event in events:
        k = event.frame - start_frame
        if 0 <= k < n_frames:
            frames[k].append(event)
    return frames


def multi_accdoa_target(
    frames: Sequence[Sequence[Starss23Event]], num_classes: int = len(STARSS23_CLASSES), num_tracks: int = 3
) -> np.ndarray:
    """Multi-ACCDOA target float32 [frames, tracks, classes, 3]: unit vectors of active sources.

    Sources of the same class in a frame fill the tracks in order of their source index; a
    fourth simultaneous source of one class is dropped (the format has three tracks).
    """
    target = np.zeros((len(frames), num_tracks, num_classes, 3), dtype=np.float32)
    for k, frame in enumerate(frames):
        used = np.zeros(num_classes, dtype=int)
        for event in sorted(frame, key=lambda e: (e.class_index, e.source_index)):
            track = used[event.class_index]
            if track < num_tracks:
                target[k, track, event.class_index] = event.unit_vector
                used[event.class_index] += 1
    return target


def read_foa(
    path: str | Path, sample_rate: int = SAMPLE_RATE, channel_order: str = "ACN", normalization: str = "SN3D"
) -> np.ndarray:
    """FOA file -> float32 [4, samples], ACN/SN3D at ``sample_rate`` Hz (STARSS23 is ACN/SN3D at 24 kHz)."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[1] != 4:
        raise ValueError(f"{path}: FOA audio needs 4 channels, got {data.shape[1]}")
    audio = to_acn_sn3d(np.ascontiguousarray(data.T), channel_order, normalization)
    return resample(audio, int(rate), sample_rate).astype(np.float32)


@dataclass
class Starss23Window:
    """A window of a recording: audio float32 [4, N] and its per-100 ms labels.

    frames[k] lists the events of label frame ``start_frame + k``; target is their multi-ACCDOA form.
    """

    recording: Starss23Recording
    start_frame: int
    audio: np.ndarray
    frames: list[list[Starss23Event]]
    target: np.ndarray


def iter_windows(
    recording: Starss23Recording,
    window_s: float = 5.0,
    hop_s: float | None = None,
    sample_rate: int = SAMPLE_RATE,
    num_tracks: int = 3,
) -> Iterator[Starss23Window]:
    """Windows of ``window_s`` seconds every ``hop_s`` (default: no overlap); the last one is zero-padded."""
    hop_s = window_s if hop_s is None else hop_s
    frames_per_window = round(window_s / LABEL_HOP_S)
    hop_frames = round(hop_s / LABEL_HOP_S)
    if frames_per_window <= 0 or hop_frames <= 0:
        raise ValueError(f"window_s and hop_s must be at least {LABEL_HOP_S} s, got {window_s} and {hop_s}")
    audio = read_foa(recording.foa_path, sample_rate)
    events = read_starss23_events(recording.metadata_path)
    samples_per_frame = round(LABEL_HOP_S * sample_rate)
    total_frames = math.ceil(audio.shape[1] / samples_per_frame)
    for start in range(0, max(total_frames, 1), hop_frames):
        segment = audio[:, start * samples_per_frame : (start + frames_per_window) * samples_per_frame]
        window = np.zeros((4, frames_per_window * samples_per_frame), dtype=np.float32)
        window[:, : segment.shape[1]] = segment
        frames = events_by_frame(events, start, frames_per_window)
        yield Starss23Window(
            recording, start, window, frames, multi_accdoa_target(frames, num_tracks=num_tracks)
        )
        if start + frames_per_window >= total_frames:
            break


def read_video_frame(path: str | Path, time_s: float) -> np.ndarray:
    """The video frame shown at ``time_s`` seconds, RGB uint8 [H, W, 3]."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"cannot open video {path}")
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        capture.set(cv2.CAP_PROP_POS_FRAMES, max(math.floor(time_s * fps + 1e-6), 0))
        ok, bgr = capture.read()
        if not ok:
            raise ValueError(f"{path}: no frame at {time_s:.2f} s")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def equirect_to_perspective(
    equirect: np.ndarray, azimuth_rad: float, elevation_rad: float, intrinsics: CameraIntrinsics
) -> np.ndarray:
    """Pinhole view [h, w, C] looking at (azimuth, elevation) [rad] cut from an equirectangular frame.

    Each output pixel's ray is turned into the 360 degree frame's azimuth/elevation and sampled
    bilinearly (wrapping around horizontally).
    """
    height, width = equirect.shape[:2]
    view_to_world = rotation_from_rpy(0.0, -elevation_rad, azimuth_rad) @ OPTICAL_TO_BODY
    rays = intrinsics.pixel_rays() @ view_to_world.T
    az = np.arctan2(rays[..., 1], rays[..., 0])
    el = np.arctan2(rays[..., 2], np.hypot(rays[..., 0], rays[..., 1]))
    map_x = ((1.0 - az / math.pi) * width / 2.0 - 0.5).astype(np.float32)
    map_y = ((0.5 - el / math.pi) * height - 0.5).astype(np.float32)
    return cv2.remap(equirect, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
