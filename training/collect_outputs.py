"""Run a model over a prepared split: its outputs and labels, their metrics, the calibration's targets.

The one collector of training evaluation, ``evaluate.py``, ``calibrate.py``, ``crossval.py`` and
the study. Scenes are prepared with the checkpoint's own preprocessing (``Preprocessor.from_metadata``,
the pipeline's) plus the view tokens, made with the camera the scenes were rendered with (the
shards' scene config); for a run's own checkpoint this is exactly the training task's
``prepare_config``, so evaluation sees the inputs training saw.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avi_ros.checkpoint import CheckpointMetadata
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.shards import ShardReader
from avi_ros.doa import feature_direction_vectors
from avi_ros.models.output_arrays import HazardSetArrays, read_set_outputs
from avi_ros.preprocess import Preprocessor
from avi_ros.taxonomy import default_taxonomy
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD
from training.calibration import CalibrationTargets, set_calibration_targets
from training.data import InputStore, PrepareConfig, epoch_batches
from training.metrics import (
    SetEvaluation,
    SetPredictions,
    SingleHazardView,
    evaluate_hazard_sets,
)

# Ground-truth keys of a prepared split that the metrics and the calibration read.
LABEL_KEYS = (
    "hazard_class",
    "hazard_direction",
    "hazard_distance",
    "hazard_visibility",
    "hazard_occlusion",
)


def prepare_config_of(metadata: CheckpointMetadata, scene: SceneConfig) -> PrepareConfig:
    """How scenes rendered with ``scene`` become the inputs of this checkpoint (see module doc)."""
    return PrepareConfig(Preprocessor.from_metadata(metadata), camera=(scene.intrinsics, scene.extrinsic))


def shard_prepare_config(metadata: CheckpointMetadata, directory: Path) -> PrepareConfig:
    """``prepare_config_of`` with the scene config the shards of ``directory`` were rendered with."""
    return prepare_config_of(metadata, ShardReader(directory).config)


def model_inputs(
    model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features, visual, view tokens) of a batch on ``device``; the oracle reads the exact view
    tokens (true occluders and where a hazard shows), which no robot has."""
    config = getattr(model, "module", model).config
    tokens = batch["view_tokens_exact" if config.variant == "oracle" else "view_tokens"]
    return (
        batch["features"].to(device, non_blocking=True),
        batch["visual"].to(device, non_blocking=True),
        tokens.to(device, non_blocking=True),
    )


@dataclass
class SplitOutputs:
    """The model outputs [F, K, ...] and labels (``LABEL_KEYS``, [F, Kt, ...]) of a whole split, plus
    each window's physics direction [F, 3] (the broadband intensity vector of the features the
    model read; None for a model that does not hear)."""

    arrays: HazardSetArrays
    labels: dict[str, np.ndarray]
    physics_direction: np.ndarray | None = None

    def evaluation(self, threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> SetEvaluation:
        """Every metric of the split (``training.metrics.evaluate_hazard_sets``); the direction
        figures put the physics baseline beside the model."""
        names = default_taxonomy().names
        return evaluate_hazard_sets(self.arrays, self.labels, threshold, names, self.physics_direction)

    def single_hazard_view(self) -> SingleHazardView:
        """The frames with at most one hazard through the top slot (``training.metrics``)."""
        return SingleHazardView.of(SetPredictions.from_outputs(self.arrays, self.labels))

    def calibration_targets(self) -> CalibrationTargets:
        """What a calibration of these outputs is fitted on (``training.calibration``)."""
        return set_calibration_targets(self.arrays, self.labels)


@torch.no_grad()
def collect_outputs(
    model: nn.Module,
    store: InputStore,
    device: torch.device,
    batch_size: int,
    autocast: AbstractContextManager | None = None,
) -> SplitOutputs:
    """Run ``model`` (eval mode, under ``autocast`` when given) over every sample of ``store``, in order."""
    was_training = model.training
    model.eval()
    parts = []
    try:
        for batch in store.iterate(epoch_batches(len(store), batch_size, 0, 0, shuffle=False)):
            with autocast or nullcontext():
                parts.append(read_set_outputs(model(*model_inputs(model, batch, device))))
    finally:
        model.train(was_training)
    labels = {key: store.tensors[key].numpy() for key in LABEL_KEYS}
    physics = None
    features = store.tensors["features"]
    if getattr(model, "module", model).config.uses_audio and features.shape[1] == 7:
        physics = feature_direction_vectors(features.numpy())
    return SplitOutputs(HazardSetArrays.concatenate(parts), labels, physics)
