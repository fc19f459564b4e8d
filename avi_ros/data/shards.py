"""Parallel generation of synthetic scenes into cached shards on disk, and random access to them.

Layout of a dataset directory::

    index.json              what was generated (count, seed, config, taxonomy, camera) and the shards
    shard_00000/<field>.npy one .npy per field, first axis = sample (memory-mappable)
    shard_00001/...

Sample ``i`` always has seed ``sample_seed(seed, i)``, so the data does not depend on the
number of workers, and a finished shard (it has ``meta.json``) is reused when the same
generation is run again. Shards are written through memory-mapped ``.npy`` files, so a
worker holds about one sample in memory, and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from avi_ros.data.acoustics import AcousticsConfig
from avi_ros.data.clip_augment import ClipAugmentConfig
from avi_ros.data.domain import WideProfile
from avi_ros.data.render import RenderConfig
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_labels import HazardLabel, Sample, frame_activity
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.taxonomy import MAX_HAZARDS, Taxonomy, default_taxonomy

INDEX_NAME = "index.json"
SHARD_META = "meta.json"
FORMAT_NAME = "avi_ros.scene_shards"
# 2: rt60_s and content per sample; 3: per-frame activity of both sources; 4: every hazard (hazard_*)
FORMAT_VERSION = 4
NO_SECOND_SOURCE = -1
NO_HAZARD = -1  # class, visibility, risk and action of an empty hazard slot

# Per-sample scalar labels: field name -> dtype.
LABEL_FIELDS: dict[str, str] = {
    "seed": "int64",
    "class_id": "int64",
    "azimuth": "float32",
    "elevation": "float32",
    "distance": "float32",
    "visibility": "int64",
    "occlusion_level": "float32",
    "risk": "int64",
    "action": "int64",
    "snr_db": "float32",
    "second_class_id": "int64",
    "second_azimuth": "float32",
    "second_elevation": "float32",
    "second_distance": "float32",
    "second_visibility": "int64",
    "rt60_s": "float32",
    "content": "int64",
}
# Per-sample hazard set, MAX_HAZARDS slots, the hazards first: field name -> (dtype, padding).
# hazard_activity is [MAX_HAZARDS, label frames] (zeros in empty slots).
HAZARD_FIELDS: dict[str, tuple[str, float]] = {
    "hazard_class_id": ("int64", NO_HAZARD),
    "hazard_azimuth": ("float32", 0.0),
    "hazard_elevation": ("float32", 0.0),
    "hazard_distance": ("float32", 0.0),
    "hazard_visibility": ("int64", NO_HAZARD),
    "hazard_occlusion": ("float32", float("nan")),
    "hazard_risk": ("int64", NO_HAZARD),
    "hazard_action": ("int64", NO_HAZARD),
    "hazard_activity": ("float32", 0.0),
}
ARRAY_FIELDS = (
    "audio",
    "rgb",
    "depth_m",
    "occluder_mask",
    "hazard_mask",
    "activity",
    "second_activity",
    *HAZARD_FIELDS,
)


def sample_seed(base_seed: int, index: int) -> int:
    """Seed of sample ``index`` of a dataset generated with ``base_seed`` (independent streams).

    63 bits, so it fits the int64 seed column of the shards.
    """
    state = np.random.SeedSequence([int(base_seed), int(index)]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) & 0x7FFFFFFF) << 32 | int(state[1])


def sample_fields(sample: Sample) -> dict[str, Any]:
    """A Sample as flat arrays and scalars, the form stored in shards (second source -1 if absent)."""
    second = sample.second
    frames = frame_activity(np.zeros(sample.audio.shape[-1]), sample.sample_rate).size
    always_on = np.ones(frames, dtype=np.float32)
    activity = sample.activity if sample.activity is not None else always_on
    if second is None:
        second_activity = np.zeros(frames, dtype=np.float32)
    else:
        second_activity = second.activity if second.activity is not None else always_on
    return {
        "audio": sample.audio,
        "rgb": sample.rgb,
        "depth_m": sample.depth_m,
        "occluder_mask": sample.occluder_mask,
        "hazard_mask": sample.hazard_mask,
        "seed": sample.seed,
        "class_id": sample.class_id,
        "azimuth": sample.azimuth,
        "elevation": sample.elevation,
        "distance": sample.distance,
        "visibility": int(sample.visibility),
        "occlusion_level": sample.occlusion_level,
        "risk": int(sample.risk),
        "action": int(sample.action),
        "snr_db": sample.snr_db,
        "second_class_id": second.class_id if second else NO_SECOND_SOURCE,
        "second_azimuth": second.azimuth if second else 0.0,
        "second_elevation": second.elevation if second else 0.0,
        "second_distance": second.distance if second else 0.0,
        "second_visibility": int(second.visibility) if second else NO_SECOND_SOURCE,
        "rt60_s": sample.rt60_s,
        "content": int(sample.content),
        "activity": np.asarray(activity, dtype=np.float32),
        "second_activity": np.asarray(second_activity, dtype=np.float32),
        **hazard_fields(_hazards_of(sample, np.asarray(activity, dtype=np.float32)), frames),
    }


def _hazards_of(sample: Sample, activity: np.ndarray) -> list[HazardLabel]:
    """The sample's hazards; a Sample made without them gives its single hazard (class > 0)."""
    if sample.hazards or sample.class_id == 0:
        return list(sample.hazards)
    return [
        HazardLabel(
            sample.class_id,
            sample.azimuth,
            sample.elevation,
            sample.distance,
            sample.visibility,
            float("nan"),
            activity,
            sample.risk,
            sample.action,
        )
    ]


def hazard_fields(hazards: list[HazardLabel], frames: int) -> dict[str, np.ndarray]:
    """The hazard_* fields of a sample: one slot per hazard, padded to MAX_HAZARDS (see HAZARD_FIELDS)."""
    if len(hazards) > MAX_HAZARDS:
        raise ValueError(f"a sample holds {len(hazards)} hazards; shards store at most {MAX_HAZARDS}")
    out = {
        name: np.full(MAX_HAZARDS, pad, dtype=dtype)
        for name, (dtype, pad) in HAZARD_FIELDS.items()
        if name != "hazard_activity"
    }
    out["hazard_activity"] = np.zeros((MAX_HAZARDS, frames), dtype=np.float32)
    for k, hazard in enumerate(hazards):
        out["hazard_class_id"][k] = hazard.class_id
        out["hazard_azimuth"][k] = hazard.azimuth
        out["hazard_elevation"][k] = hazard.elevation
        out["hazard_distance"][k] = hazard.distance
        out["hazard_visibility"][k] = int(hazard.visibility)
        out["hazard_occlusion"][k] = hazard.occlusion
        out["hazard_risk"][k] = int(hazard.risk)
        out["hazard_action"][k] = int(hazard.action)
        activity = np.asarray(hazard.activity, dtype=np.float32)
        if activity.size != frames:
            raise ValueError(f"hazard {k}: {activity.size} activity frames, the scene has {frames}")
        out["hazard_activity"][k] = activity
    return out


# Knobs added after scenes were cached: left out of the dict at these (default) values, so a config
# that does not use them keeps the dict, the cache directory hash and the scenes it had before.
_OMITTED_AT_DEFAULT = {"procedural_probability": 0.0, "clip_augmentation": None}


def scene_config_to_dict(config: SceneConfig) -> dict[str, Any]:
    """JSON-ready SceneConfig (the extrinsic as translation and roll/pitch/yaw); the knobs of
    ``_OMITTED_AT_DEFAULT`` only when they differ from their default."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name in _OMITTED_AT_DEFAULT and value == _OMITTED_AT_DEFAULT[f.name]:
            continue
        if isinstance(value, MicToCamera):
            out[f.name] = {"translation_m": list(value.translation_m), "rpy_rad": list(value.rpy_rad)}
        elif is_dataclass(value):
            out[f.name] = asdict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def scene_config_from_dict(data: dict[str, Any]) -> SceneConfig:
    """Inverse of scene_config_to_dict; raises ValueError naming an unknown key."""
    known = {f.name for f in fields(SceneConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown SceneConfig keys {unknown}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "intrinsics":
            kwargs[key] = CameraIntrinsics(**value)
        elif key == "extrinsic":
            kwargs[key] = MicToCamera(tuple(value["translation_m"]), tuple(value["rpy_rad"]))
        elif key == "acoustics":
            kwargs[key] = AcousticsConfig(**value)
        elif key == "render":
            kwargs[key] = RenderConfig(**value)
        elif key == "wide":
            kwargs[key] = None if value is None else WideProfile(**_tuples(value))
        elif key == "clip_augmentation":
            kwargs[key] = None if value is None else ClipAugmentConfig(**_tuples(value))
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return replace(SceneConfig(), **kwargs)


def _tuples(data: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the frozen config dataclasses hold."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}


def _fingerprint(seed: int, config: SceneConfig, taxonomy: Taxonomy) -> str:
    # The format version is part of it: a shard of an older layout is regenerated, not reused.
    text = json.dumps(
        [FORMAT_VERSION, seed, scene_config_to_dict(config), taxonomy.to_dict()], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _shard_name(k: int) -> str:
    return f"shard_{k:05d}"


def _write_shard(task: tuple[Path, int, int, int, int, SceneConfig, Taxonomy, str]) -> tuple[int, int]:
    """Generate samples [start, start + count) into shard ``k``; returns (k, count)."""
    out_dir, k, start, count, seed, config, taxonomy, fingerprint = task
    final = out_dir / _shard_name(k)
    if (final / SHARD_META).is_file():
        meta = json.loads((final / SHARD_META).read_text())
        if meta.get("fingerprint") == fingerprint and meta.get("count") == count:
            return k, count
        shutil.rmtree(final)
    tmp = out_dir / f".{_shard_name(k)}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    maps: dict[str, np.ndarray] = {}
    for j in range(count):
        sample = generate_scene(sample_seed(seed, start + j), config, taxonomy)
        values = sample_fields(sample)
        if not maps:
            for name in ARRAY_FIELDS:
                arr = np.asarray(values[name])
                maps[name] = np.lib.format.open_memmap(
                    tmp / f"{name}.npy", mode="w+", dtype=arr.dtype, shape=(count, *arr.shape)
                )
            for name, dtype in LABEL_FIELDS.items():
                maps[name] = np.lib.format.open_memmap(
                    tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=(count,)
                )
        for name, array in maps.items():
            array[j] = values[name]
    for array in maps.values():
        array.flush()
    maps.clear()
    _write_json_atomic(tmp / SHARD_META, {"fingerprint": fingerprint, "start": start, "count": count})
    os.replace(tmp, final)
    return k, count


def _init_worker() -> None:
    """One thread per worker process: the workers already fill the cores."""
    import cv2

    cv2.setNumThreads(1)


def write_shards(
    out_dir: str | Path,
    count: int,
    seed: int,
    config: SceneConfig | None = None,
    workers: int = 1,
    shard_size: int = 128,
    taxonomy: Taxonomy | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate ``count`` scenes into ``out_dir`` with ``workers`` processes; returns the index path.

    ``on_progress(n)`` is called with the number of samples of each finished shard.
    """
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    if workers <= 0 or shard_size <= 0:
        raise ValueError(f"workers and shard_size must be positive, got {workers} and {shard_size}")
    cfg = config or SceneConfig()
    tax = taxonomy or default_taxonomy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(seed, cfg, tax)
    starts = list(range(0, count, shard_size))
    tasks = [
        (out, k, start, min(shard_size, count - start), seed, cfg, tax, fingerprint)
        for k, start in enumerate(starts)
    ]
    if workers == 1:
        _init_worker()
        for task in tasks:
            _, done = _write_shard(task)
            if on_progress:
                on_progress(done)
    else:
        with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            for _, done in pool.imap_unordered(_write_shard, tasks):
                if on_progress:
                    on_progress(done)
    index = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "count": count,
        "seed": seed,
        "fingerprint": fingerprint,
        "sample_rate": cfg.sample_rate,
        "taxonomy": tax.to_dict(),
        "config": scene_config_to_dict(cfg),
        "shards": [{"dir": _shard_name(t[1]), "start": t[2], "count": t[3]} for t in tasks],
    }
    _write_json_atomic(out / INDEX_NAME, index)
    return out / INDEX_NAME


class ShardReader:
    """Random access to a shard directory written by ``write_shards`` (memory-mapped, read-only)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX_NAME
        if not index_path.is_file():
            raise FileNotFoundError(
                f"no {INDEX_NAME} in {self.root}; generate it with python -m avi_ros.data.synthesize"
            )
        self.index = json.loads(index_path.read_text())
        if self.index.get("format") != FORMAT_NAME or self.index.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{index_path}: expected format {FORMAT_NAME} v{FORMAT_VERSION}, "
                f"got {self.index.get('format')} v{self.index.get('version')}; generate the scenes "
                "again (python -m avi_ros.data.synthesize, or a training run regenerates its splits)"
            )
        self.shards = self.index["shards"]
        self._ends = np.cumsum([s["count"] for s in self.shards])
        self._open: dict[int, dict[str, np.ndarray]] = {}
        self.taxonomy = Taxonomy.from_dict(self.index["taxonomy"])
        self.config = scene_config_from_dict(self.index["config"])

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def _arrays(self, k: int) -> dict[str, np.ndarray]:
        """Shard ``k``'s memory maps. Only the last shard used stays mapped: mapped pages count in
        the process's resident memory once read, so a pass over a split keeps one shard's worth."""
        if k not in self._open:
            self._open.clear()
            folder = self.root / self.shards[k]["dir"]
            self._open[k] = {
                name: np.load(folder / f"{name}.npy", mmap_mode="r")
                for name in (*ARRAY_FIELDS, *LABEL_FIELDS)
            }
        return self._open[k]

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        """Fields of sample ``index``: arrays copied out of the memory map, labels as 0-d arrays."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range 0..{len(self) - 1}")
        k = int(np.searchsorted(self._ends, index, side="right"))
        offset = index - (int(self._ends[k - 1]) if k else 0)
        return {name: np.array(array[offset]) for name, array in self._arrays(k).items()}
