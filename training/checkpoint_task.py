"""What a hazard checkpoint answers, and how scenes become its inputs, for evaluation and calibration.

A checkpoint says its task itself: ``ModelConfig.hazard_slots`` in its metadata is 0 for the
single-hazard ``ImaginationModel`` and K > 0 for the ``HazardSetModel`` with K slots. The
evaluation entry (``training/evaluate.py``), ``training/calibrate.py`` and
``training/crossval.py`` read it here instead of assuming one family, so a set checkpoint is
never fed the single-hazard inputs (which lack the view tokens its fusion reads).

Scenes are prepared with the checkpoint's own preprocessing (``Preprocessor.from_metadata``, the
pipeline's); a set checkpoint also gets the view tokens, made with the camera the scenes were
rendered with (the shards' scene config). For a run's own checkpoint this is exactly
``training.hazard_set_task.set_prepare_config`` of the run's config (same cache fingerprint), so
evaluation sees the inputs training saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from avi_ros.checkpoint import CheckpointMetadata, read_checkpoint_metadata
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.shards import ShardReader
from avi_ros.preprocess import Preprocessor
from training.collect_outputs import prepare_config_of
from training.data import PrepareConfig
from training.typed_config import ConfigError

SINGLE_HAZARD = "single_hazard"
HAZARD_SET = "hazard_set"


def task_of(metadata: CheckpointMetadata) -> str:
    """``HAZARD_SET`` when the checkpoint's model has hazard slots, else ``SINGLE_HAZARD``."""
    return HAZARD_SET if metadata.model_config.hazard_slots > 0 else SINGLE_HAZARD


def describe_task(metadata: CheckpointMetadata) -> str:
    """The task in words, for messages and reports (e.g. "hazard set, K = 3")."""
    slots = metadata.model_config.hazard_slots
    return f"hazard set, K = {slots}" if slots > 0 else "single hazard"


def prepare_config_for(metadata: CheckpointMetadata, scene: SceneConfig) -> PrepareConfig:
    """How scenes rendered with ``scene`` become the inputs of this checkpoint (see module doc)."""
    if task_of(metadata) == HAZARD_SET:
        return PrepareConfig(Preprocessor.from_metadata(metadata), camera=(scene.intrinsics, scene.extrinsic))
    return prepare_config_of(metadata)


def shard_prepare_config(metadata: CheckpointMetadata, directory: Path) -> PrepareConfig:
    """``prepare_config_for`` with the scene config the shards of ``directory`` were rendered with."""
    return prepare_config_for(metadata, ShardReader(directory).config)


def common_task(checkpoints: Iterable[Path], expected: str | None = None) -> str | None:
    """The one task of ``checkpoints`` (None when there is none); ConfigError, naming two of them,
    when they answer different tasks or not ``expected`` (e.g. the task of the baselines' config):
    single-hazard and set metrics are not the same figures, so one report holds one task."""
    seen: dict[str, str] = {}
    for checkpoint in checkpoints:
        metadata = read_checkpoint_metadata(checkpoint)
        seen.setdefault(task_of(metadata), f"{checkpoint} ({describe_task(metadata)})")
    if expected is not None and seen and expected not in seen:
        first = next(iter(seen.values()))
        raise ConfigError(f"--config trains {expected} models but {first} is not one; evaluate them apart")
    if len(seen) > 1:
        first, second = seen.values()
        raise ConfigError(f"{first} and {second} answer different tasks; evaluate them in separate calls")
    return next(iter(seen), expected)
