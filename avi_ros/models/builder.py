"""The one constructor of the package's model and the loading of pretrained encoder weights.

``build_model`` builds the model of a ``ModelConfig`` (any variant, any number of hazard slots);
``load_pretrained`` initialises the encoders from local files (ImageNet ResNet, DCASE2023 SELD baseline).
"""

from __future__ import annotations

from pathlib import Path

from avi_ros.models.config import ModelConfig
from avi_ros.models.hazard_set import HazardSetModel
from avi_ros.models.seld_encoder import load_dcase_checkpoint


def build_model(config: ModelConfig) -> HazardSetModel:
    """The one constructor for the full model and every baseline (randomly initialised)."""
    return HazardSetModel(config)


def load_pretrained(
    model: HazardSetModel,
    imagenet_weights: str | Path | None = None,
    dcase_checkpoint: str | Path | None = None,
) -> None:
    """Initialise the encoders from local files: a torchvision ImageNet state_dict of the visual
    encoder's architecture, and/or a DCASE2023 baseline state_dict for the SELD encoder."""
    if imagenet_weights is not None:
        if model.visual_encoder is None:
            raise ValueError(
                f"model variant '{model.config.variant}' has no visual encoder for ImageNet weights"
            )
        model.visual_encoder.load_imagenet_weights(imagenet_weights)
    if dcase_checkpoint is not None:
        if model.audio_encoder is None:
            raise ValueError(
                f"model variant '{model.config.variant}' has no SELD encoder for a DCASE checkpoint"
            )
        load_dcase_checkpoint(model.audio_encoder, dcase_checkpoint)
