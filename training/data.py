"""Raw scenes -> model inputs, with the same code the node runs, and the batch order of an epoch.

Each scene goes through the same ``avi_ros.preprocess.Preprocessor`` that ``avi_ros.pipeline``
runs on a live frame (occlusion mask and level, the 5-channel image, the audio window), so the
model is trained on inputs made exactly as at run time. The labels (class, direction, distance, risk, action,
visibility and the generator's exact occlusion level, used for the per-bin metrics) come from
the scene, with the scene's RT60, SNR and content kind (``SCENE_KEYS``) for grouping results.

Every sample also gets its hazard set (``HAZARD_KEYS``, MAX_HAZARDS slots, the hazards PRESENT
in the model's audio window first, see ``hazard_set_labels``) and, for a preprocessing with a
view grid, the view tokens of the depth-based occlusion mask and the exact ones (``VIEW_KEYS``).

Audio features are computed with ``avi_ros.features.FeatureExtractor``: once up front for a
preloaded split (``InputStore``), or batched on the training device per step otherwise.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avi_ros.data.shards import sample_fields
from avi_ros.features import FeatureConfig, FeatureExtractor
from avi_ros.geometry import CameraIntrinsics, MicToCamera, direction_to_unit
from avi_ros.preprocess import Preprocessor
from avi_ros.taxonomy import MAX_HAZARDS
from avi_ros.view_tokens import view_tokens_of
from training.disk_columns import DiskColumns, write_chunk

# Keys of a prepared sample / batch.
INPUT_KEYS = ("visual", "occlusion_input")
LABEL_KEYS = ("class_id", "direction", "distance", "risk", "action", "visibility", "occlusion_true")
# Scene conditions carried for evaluation: RT60 [s], SNR [dB] (NaN: background only), SceneContent.
SCENE_KEYS = ("rt60_s", "snr_db", "content")
# The hazard set of a sample (MAX_HAZARDS slots) and the number of hazards present in it.
HAZARD_KEYS = (
    "hazard_class",
    "hazard_direction",
    "hazard_distance",
    "hazard_visibility",
    "hazard_occlusion",
    "hazard_risk",
    "hazard_action",
    "polyphony",
)
# View tokens [M, 6] (``avi_ros.view_tokens``): of the depth-based occlusion mask, and the exact ones.
VIEW_KEYS = ("view_tokens", "view_tokens_exact")
# A hazard is in a sample's target set when it sounds in at least one of the window's last this many
# label frames (0.3 s at LABEL_FRAME_S): the frame reports what sounds now, so a hazard counts from
# its first 100 ms and stops counting 0.3 s after it stops, not when it leaves the 1 s window.
PRESENT_LOOKBACK_FRAMES = 3
# Samples prepared (and held in memory) at a time when a split is written to disk.
PREPARE_CHUNK = 256
# A batch transform applied by ``InputStore.batch``: (batch, its sample indices) -> batch.
BatchAugmentation = Callable[[dict[str, torch.Tensor], Sequence[int]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class PrepareConfig:
    """What turns a scene into model inputs; its fingerprint names the on-disk cache.

    ``preprocess`` is the model's preprocessing (the pipeline's, for a checkpoint). With
    ``accdoa_shape`` each sample also gets the multi-ACCDOA target of its sources, for the
    auxiliary SELD loss that teaches the audio encoder to localise. ``camera`` (the dataset's
    intrinsics and microphone-to-camera extrinsic; intrinsics of another image size are scaled
    to each image) is needed when ``preprocess.view_grid`` > 0, for the view tokens.
    """

    preprocess: Preprocessor
    accdoa_shape: tuple[int, int, int] | None = None  # (frames, tracks, classes) of an auxiliary target
    camera: tuple[CameraIntrinsics, MicToCamera] | None = None

    def fingerprint(self) -> str:
        camera = None
        if self.camera is not None and self.preprocess.view_grid > 0:
            intrinsics, extrinsic = self.camera
            camera = [vars(intrinsics), list(extrinsic.translation_m), list(extrinsic.rpy_rad)]
        text = json.dumps(
            {
                "image_size": self.preprocess.image_size,
                "features": self.preprocess.features.to_dict(),
                "occlusion": vars(self.preprocess.occlusion),
                "accdoa_shape": self.accdoa_shape,
                "view_grid": self.preprocess.view_grid,
                "camera": camera,
                "version": 4,
            },
            sort_keys=True,
        )
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def _field(sample: Any, name: str) -> Any:
    return sample[name] if isinstance(sample, Mapping) else getattr(sample, name)


def prepare_sample(sample: Any, config: PrepareConfig) -> dict[str, np.ndarray]:
    """A scene (a shard sample's fields, or an ``avi_ros.data.scene_labels.Sample``) -> numpy inputs, labels.

    ``direction`` is the unit vector of the source in the microphone frame (zeros for class 0);
    ``occlusion_input`` is what the node computes from depth; ``occlusion_true`` is the
    generator's exact occluder fraction; ``SCENE_KEYS`` are the scene's RT60, SNR and content;
    ``HAZARD_KEYS`` the hazard set (``hazard_set_labels``); ``VIEW_KEYS`` with a view grid.
    """
    if not isinstance(sample, Mapping):
        sample = {**sample_fields(sample), "sample_rate": sample.sample_rate}
    camera = _camera_of(sample, config)
    inputs = config.preprocess(
        _field(sample, "rgb"),
        _field(sample, "depth_m"),
        _field(sample, "audio"),
        int(_field(sample, "sample_rate")),
        *(camera or ()),
    )
    class_id = int(_field(sample, "class_id"))
    if class_id == 0:
        direction = np.zeros(3, dtype=np.float32)
    else:
        direction = direction_to_unit(float(_field(sample, "azimuth")), float(_field(sample, "elevation")))
    prepared = {
        "audio": inputs.audio,
        "visual": inputs.visual,
        "occlusion_input": np.float32(inputs.occlusion.level),
        "class_id": np.int64(class_id),
        "direction": direction.astype(np.float32),
        "distance": np.float32(_field(sample, "distance")),
        "risk": np.int64(int(_field(sample, "risk"))),
        "action": np.int64(int(_field(sample, "action"))),
        "visibility": np.int64(int(_field(sample, "visibility"))),
        "occlusion_true": np.float32(_field(sample, "occlusion_level")),
        "rt60_s": np.float32(_field(sample, "rt60_s")),
        "snr_db": np.float32(_field(sample, "snr_db")),
        "content": np.int64(int(_field(sample, "content"))),
    }
    prepared.update(hazard_set_labels(sample))
    if camera is not None:
        prepared["view_tokens"] = inputs.view_tokens
        prepared["view_tokens_exact"] = view_tokens_of(
            _field(sample, "occluder_mask"),
            _field(sample, "depth_m"),
            camera[0],
            camera[1],
            config.preprocess.view_grid,
            config.preprocess.occlusion.near_range_m,
            hazard_mask=_field(sample, "hazard_mask"),
        )
    if config.accdoa_shape is not None:
        prepared["accdoa_target"] = accdoa_target_of_scene(sample, *config.accdoa_shape)
    return prepared


def _camera_of(
    sample: Mapping[str, Any], config: PrepareConfig
) -> tuple[CameraIntrinsics, MicToCamera] | None:
    """The config's camera with the intrinsics scaled to this sample's image; None without view tokens."""
    if config.preprocess.view_grid <= 0:
        return None
    if config.camera is None:
        raise ValueError(
            "prepare_sample: view tokens (preprocess.view_grid > 0) need the camera: "
            "PrepareConfig(..., camera=(intrinsics, extrinsic)) of the dataset"
        )
    intrinsics, extrinsic = config.camera
    height, width = np.asarray(sample["depth_m"]).shape[:2]
    if (intrinsics.width, intrinsics.height) != (width, height):
        intrinsics = intrinsics.scaled(width, height)
    return intrinsics, extrinsic


def sounds_now(activity: np.ndarray | None) -> bool:
    """Whether a source sounds in one of the last PRESENT_LOOKBACK_FRAMES label frames of its
    scene (``activity``: per LABEL_FRAME_S frame, the scene ending at the window's end; None:
    always on)."""
    if activity is None:
        return True
    recent = np.asarray(activity, dtype=np.float32)[-PRESENT_LOOKBACK_FRAMES:]
    return bool(np.any(recent > 0.5))


def hazard_set_labels(fields: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The ``HAZARD_KEYS`` of one sample's fields: the hazards that sound now (``sounds_now``),
    in scene order, padded to MAX_HAZARDS slots.

    hazard_class int64 (0 = empty slot), hazard_direction [K, 3] unit in the microphone frame
    (zeros), hazard_distance [K] m (0), hazard_visibility int64 (-1), hazard_occlusion [K] (NaN,
    also out of view), hazard_risk / hazard_action int64 (0), polyphony: hazards present.
    Fields without ``hazard_class_id`` (shards older than v4) give the single hazard (class > 0).
    """
    k = MAX_HAZARDS
    out = {
        "hazard_class": np.zeros(k, dtype=np.int64),
        "hazard_direction": np.zeros((k, 3), dtype=np.float32),
        "hazard_distance": np.zeros(k, dtype=np.float32),
        "hazard_visibility": np.full(k, -1, dtype=np.int64),
        "hazard_occlusion": np.full(k, np.nan, dtype=np.float32),
        "hazard_risk": np.zeros(k, dtype=np.int64),
        "hazard_action": np.zeros(k, dtype=np.int64),
    }
    slot = 0
    for hazard in _hazards_of_fields(fields):
        if not sounds_now(hazard["activity"]):
            continue
        out["hazard_class"][slot] = hazard["class_id"]
        out["hazard_direction"][slot] = direction_to_unit(hazard["azimuth"], hazard["elevation"])
        out["hazard_distance"][slot] = hazard["distance"]
        out["hazard_visibility"][slot] = hazard["visibility"]
        out["hazard_occlusion"][slot] = hazard["occlusion"]
        out["hazard_risk"][slot] = hazard["risk"]
        out["hazard_action"][slot] = hazard["action"]
        slot += 1
    out["polyphony"] = np.int64(slot)
    return out


def _hazards_of_fields(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per hazard of a sample: class_id, azimuth, elevation, distance, visibility, occlusion, risk,
    action, activity (None: always on), from the hazard_* fields or the single-hazard ones."""
    if "hazard_class_id" not in fields:
        if int(fields["class_id"]) <= 0:
            return []
        single = ("class_id", "azimuth", "elevation", "distance", "visibility", "risk", "action")
        hazard = {name: fields.get(name) for name in single}
        return [{**hazard, "occlusion": np.nan, "activity": fields.get("activity")}]
    names = ("class_id", "azimuth", "elevation", "distance", "visibility", "occlusion", "risk", "action")
    columns = {name: np.asarray(fields[f"hazard_{name}"]) for name in (*names, "activity")}
    return [
        {name: columns[name][slot] for name in (*names, "activity")}
        for slot in range(columns["class_id"].size)
        if columns["class_id"][slot] > 0
    ]


def accdoa_target_of_scene(fields: dict, frames: int, tracks: int, classes: int) -> np.ndarray:
    """Multi-ACCDOA target [frames, tracks, 3, classes] of a static scene: every hazard
    (``hazard_*`` fields of a v4 shard, else the single hazard) plus the audio-only second source.

    accdoa class = class id - 1; the same class twice takes the next track. A source is active in
    the label frames where its activity says it sounds; a source without one is active throughout.
    """
    target = np.zeros((frames, tracks, 3, classes), dtype=np.float32)
    used = np.zeros(classes, dtype=int)
    sources = [
        (h["class_id"], h["azimuth"], h["elevation"], h["activity"]) for h in _hazards_of_fields(fields)
    ]
    if int(fields.get("second_class_id", -1)) > 0:
        second = ("class_id", "azimuth", "elevation", "activity")
        sources.append(tuple(fields.get(f"second_{name}") for name in second))
    for class_id, azimuth, elevation, activity in sources:
        c = int(class_id) - 1
        if c < 0 or used[c] >= tracks:
            continue
        unit = direction_to_unit(float(azimuth), float(elevation))
        target[_activity_at(activity, frames), used[c], :, c] = unit
        used[c] += 1
    return target


def _activity_at(activity: np.ndarray | None, frames: int) -> np.ndarray:
    """The activity labels as a bool mask over ``frames`` label frames (nearest-frame resampling
    when the scene's label resolution differs from the model's)."""
    if activity is None:
        return np.ones(frames, dtype=bool)
    activity = np.asarray(activity) > 0.5
    if activity.size == frames:
        return activity
    return activity[np.minimum((np.arange(frames) * activity.size) // frames, activity.size - 1)]


def stack_samples(prepared: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """List of prepared samples -> dict of arrays with a leading sample axis."""
    if not prepared:
        raise ValueError("no samples to stack")
    return {key: np.stack([np.asarray(p[key]) for p in prepared]) for key in prepared[0]}


@torch.no_grad()
def compute_features(
    audio: np.ndarray | torch.Tensor, config: FeatureConfig, device: torch.device, batch_size: int = 256
) -> torch.Tensor:
    """Features [N, 7, T, F] (CPU, float32) of audio windows [N, 4, samples], batched on ``device``."""
    extractor = FeatureExtractor(config).to(device)
    audio = torch.as_tensor(audio)
    chunks = [
        extractor(audio[i : i + batch_size].to(device)).cpu() for i in range(0, audio.shape[0], batch_size)
    ]
    return torch.cat(chunks)


class InputStore:
    """A split as columns: features (precomputed), images and labels, in memory or on disk.

    ``batch(indices)`` gathers a batch without a DataLoader, which on a small CPU is the
    fastest way to feed the model; the order of batches is decided by ``epoch_batches``.
    A store opened from a prepared split (``open``, ``build_store`` with a cache) reads each
    batch's rows from disk (``training.disk_columns``), so training holds batches, not the split;
    ``tensors[key]`` still gives a whole column (labels, a validation split's features).
    ``augment`` (see ``with_augmentation``) transforms every batch gathered, e.g. the training
    split's ACS augmentation; the stored columns are never changed.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], augment: BatchAugmentation | None = None) -> None:
        if isinstance(tensors, DiskColumns):
            self._length = tensors.num_rows
        else:
            lengths = {key: len(value) for key, value in tensors.items()}
            if len(set(lengths.values())) != 1:
                raise ValueError(f"input store: tensors of different lengths {lengths}")
            self._length = next(iter(lengths.values()))
        self.tensors = tensors
        self.augment = augment

    def with_augmentation(self, augment: BatchAugmentation | None) -> InputStore:
        """The same columns, with ``augment`` applied to each batch (None: plain batches)."""
        return InputStore(self.tensors, augment)

    def __len__(self) -> int:
        return self._length

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        if isinstance(self.tensors, DiskColumns):
            batch = {key: self.tensors.rows(key, indices) for key in self.tensors}
        else:
            index = torch.as_tensor(list(indices), dtype=torch.long)
            batch = {key: value.index_select(0, index) for key, value in self.tensors.items()}
        return batch if self.augment is None else self.augment(batch, indices)

    def iterate(self, batches: Iterable[Sequence[int]]) -> Iterator[dict[str, torch.Tensor]]:
        for indices in batches:
            yield self.batch(indices)

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], features: FeatureConfig, device: torch.device
    ) -> InputStore:
        """Prepared arrays (with raw ``audio``) -> store with ``features`` instead of audio."""
        return cls(
            {key: torch.from_numpy(value) for key, value in with_features(arrays, features, device).items()}
        )

    @classmethod
    def open(cls, path: Path) -> InputStore:
        """A prepared split on disk (a safetensors file or a directory of chunks), read per batch."""
        return cls(DiskColumns(path))


def with_features(
    arrays: Mapping[str, np.ndarray], features: FeatureConfig, device: torch.device
) -> dict[str, np.ndarray]:
    """Prepared arrays with raw ``audio`` [N, 4, samples] -> with ``features`` [N, 7, T, F] instead."""
    out = {key: np.ascontiguousarray(value) for key, value in arrays.items() if key != "audio"}
    out["features"] = compute_features(arrays["audio"], features, device).numpy()
    return out


def write_split(chunks: Iterable[Mapping[str, np.ndarray]], cache_path: Path) -> InputStore:
    """Write a split chunk by chunk into the directory ``cache_path`` (atomically) and open it.

    Only one chunk is in memory at a time, so preparing a large split needs no more memory than
    training on it."""
    tmp = cache_path.with_name(f".{cache_path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for index, arrays in enumerate(chunks):
        write_chunk(tmp, index, arrays)
    if not tmp.is_dir():
        raise ValueError(f"{cache_path}: no samples to prepare")
    shutil.rmtree(cache_path, ignore_errors=True)
    tmp.replace(cache_path)
    return InputStore.open(cache_path)


def in_chunks(items: Iterable[Any], size: int = PREPARE_CHUNK) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def build_store(
    samples: Iterable[Any],
    config: PrepareConfig,
    device: torch.device,
    cache_path: Path | None = None,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> InputStore:
    """Prepare every sample into an InputStore: in memory without ``cache_path``; else written to
    ``cache_path`` chunk by chunk and read from disk (or opened there when it exists)."""
    if cache_path is not None and cache_path.exists():
        return InputStore.open(cache_path)
    iterator = progress(samples) if progress is not None else samples
    if cache_path is None:
        arrays = stack_samples([prepare_sample(sample, config) for sample in iterator])
        return InputStore.from_arrays(arrays, config.preprocess.features, device)
    chunks = (
        with_features(
            stack_samples([prepare_sample(s, config) for s in chunk]), config.preprocess.features, device
        )
        for chunk in in_chunks(iterator)
    )
    return write_split(chunks, cache_path)


def epoch_batches(
    num_samples: int,
    batch_size: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
) -> list[list[int]]:
    """The batches (sample indices) of one epoch for one rank; a pure function of its arguments.

    The permutation depends only on (seed, epoch), so a resumed run recreates it and skips the
    batches already done. Under DDP the permutation is padded (wrapping around) to a multiple
    of ``world_size`` and dealt out round-robin, so every rank runs the same number of steps.
    """
    if shuffle:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(num_samples, generator=generator).tolist()
    else:
        order = list(range(num_samples))
    if world_size > 1:
        pad = (-len(order)) % world_size
        order = order + order[:pad]
        order = order[rank::world_size]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def batch_fingerprint(indices: Sequence[int]) -> str:
    """Short hash of a batch's sample indices; logged per step to show a resumed run sees the same batches."""
    return hashlib.sha1(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:10]
