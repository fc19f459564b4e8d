"""Generated splits on disk: make the synthetic scene shards if missing, then prepare model inputs.

A split directory is ``<cache_dir>/scenes-seed<seed>-n<count>-<config hash>``, written by the
data layer's ``write_shards`` (parallel, resumable). The prepared inputs of a split (features,
5-channel images, labels) are cached next to the shards in ``prepared-<prepare fingerprint>/``
(chunks, read per batch: ``training.disk_columns``), so evaluation and the baselines reuse them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.shards import FORMAT_VERSION, INDEX_NAME, ShardReader, scene_config_to_dict, write_shards
from training.config import SplitConfig, repo_path
from training.data import InputStore, PrepareConfig, build_store


def split_directory(cache_dir: str | Path, split: SplitConfig, scene: SceneConfig) -> Path:
    digest = hashlib.sha1(json.dumps(scene_config_to_dict(scene), sort_keys=True).encode()).hexdigest()[:10]
    return repo_path(cache_dir) / f"scenes-seed{split.seed}-n{split.scenes}-{digest}"


def ensure_scenes(
    directory: Path, split: SplitConfig, scene: SceneConfig, workers: int, progress: bool
) -> Path:
    """Generate the split's scenes into ``directory`` unless a complete index of the current shard
    format is already there (scenes of an older format are generated again)."""
    index = directory / INDEX_NAME
    if index.is_file():
        meta = json.loads(index.read_text())
        if meta.get("count") == split.scenes and meta.get("version") == FORMAT_VERSION:
            return directory
    with tqdm(
        total=split.scenes,
        unit="scene",
        desc=f"generating {directory.name}",
        disable=None if progress else True,  # bars only on a terminal
        file=sys.stderr,
    ) as bar:
        write_shards(directory, split.scenes, split.seed, scene, workers=workers, on_progress=bar.update)
    return directory


def iter_scenes(reader: ShardReader) -> Iterator[dict[str, Any]]:
    """Shard samples with the split's sample rate attached (what ``prepare_sample`` reads)."""
    rate = reader.config.sample_rate
    for index in range(len(reader)):
        yield {**reader[index], "sample_rate": rate}


def prepared_path(directory: Path, name: str) -> Path:
    """Where a split's prepared inputs ``name`` live: a directory of chunks, or the single
    ``name.safetensors`` file that caches written before streaming hold (still valid)."""
    single_file = directory / f"{name}.safetensors"
    return single_file if single_file.is_file() else directory / name


def prepared_split(
    directory: Path, prepare: PrepareConfig, device: torch.device, progress: bool
) -> InputStore:
    """The split's InputStore, from the cache file or prepared now (and cached)."""
    reader = ShardReader(directory)
    cache = prepared_path(directory, f"prepared-{prepare.fingerprint()}")

    def bar(items: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return tqdm(
            items,
            total=len(reader),
            unit="scene",
            desc=f"preparing {directory.name}",
            disable=None if progress else True,  # bars only on a terminal
            file=sys.stderr,
        )

    return build_store(iter_scenes(reader), prepare, device, cache, bar)
