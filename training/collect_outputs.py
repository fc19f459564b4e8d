"""Run a model over a prepared split and collect what the metrics and the calibration need."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from avi_ros.checkpoint import CheckpointMetadata
from avi_ros.models.output_arrays import OutputArrays, read_outputs
from avi_ros.preprocess import Preprocessor
from training.data import InputStore, PrepareConfig, epoch_batches
from training.metrics import Predictions


def prepare_config_of(metadata: CheckpointMetadata) -> PrepareConfig:
    """How scenes are prepared for a loaded checkpoint: its own preprocessing, as the pipeline's."""
    return PrepareConfig(Preprocessor.from_metadata(metadata))


@dataclass
class SplitOutputs:
    """The model outputs and labels of a whole split (numpy, first axis = sample)."""

    arrays: OutputArrays
    labels: dict[str, np.ndarray]

    def predictions(self) -> Predictions:
        return Predictions(
            class_true=self.labels["class_id"],
            class_prob=self.arrays.class_probabilities,
            confidence=self.arrays.confidence,
            direction_true=self.labels["direction"],
            direction_pred=self.arrays.direction,
            distance_true=self.labels["distance"],
            distance_pred=self.arrays.distance,
            risk_true=self.labels["risk"],
            risk_pred=self.arrays.risk,
            occlusion_level=self.labels["occlusion_true"],
            visibility=self.labels["visibility"],
        )


def model_inputs(
    model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(features, visual, occlusion level, visibility-or-None) of a batch on ``device``.

    The true visibility is passed only to the oracle variant, which is defined by having it.
    """
    config = getattr(model, "module", model).config
    visibility = batch["visibility"].to(device) if config.variant == "oracle" else None
    return (
        batch["features"].to(device, non_blocking=True),
        batch["visual"].to(device, non_blocking=True),
        batch["occlusion_input"].to(device, non_blocking=True),
        visibility,
    )


@torch.no_grad()
def collect_outputs(
    model: nn.Module,
    store: InputStore,
    device: torch.device,
    batch_size: int,
    autocast: AbstractContextManager | None = None,
) -> SplitOutputs:
    """Evaluate ``model`` (in eval mode) over every sample of ``store`` in order."""
    was_training = model.training
    model.eval()
    parts: list[OutputArrays] = []
    try:
        for batch in store.iterate(epoch_batches(len(store), batch_size, 0, 0, shuffle=False)):
            if autocast is None:
                out = model(*model_inputs(model, batch, device))
            else:
                with autocast:
                    out = model(*model_inputs(model, batch, device))
            parts.append(read_outputs(out))
    finally:
        model.train(was_training)
    labels = {
        key: store.tensors[key].numpy()
        for key in ("class_id", "direction", "distance", "risk", "visibility", "occlusion_true")
    }
    return SplitOutputs(OutputArrays.concatenate(parts), labels)
