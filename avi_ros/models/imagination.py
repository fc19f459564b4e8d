"""The imagination model and its baselines, all built by ``build_model(ModelConfig)``.

    features [B, 7, T, F] --FeatureNormalizer--> SeldEncoder --> audio frames [B, T', 128] --+
    visual [B, 5, S, S] ------------------------> VisualEncoder -> region tokens [B, N, C] ---+
    occlusion_level [B] (+ one-hot visibility for the oracle) --> reliability ----------------+
                                                  OcclusionAwareAdapter -> embedding -> ImaginationHead

Variants (``ModelConfig.variant``):
- ``full``: everything above; the reliability network sees the occlusion level.
- ``audio_only`` / ``visual_only``: one encoder and its pooled stream; weights 1/0 or 0/1.
- ``concat``: both encoders, no cross-attention, no reliability weighting (weights 0.5/0.5).
- ``oracle``: the full model whose reliability network also gets the true visibility.

``ModelConfig.hazard_slots`` > 0 builds the hazard-set model instead (``avi_ros.models.hazard_set``:
up to that many hazards per frame, the same variants); 0 keeps the single-hazard model above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from avi_ros.config_io import build, to_plain
from avi_ros.features import FeatureConfig, FeatureNormalizer
from avi_ros.models.adapter import AdapterConfig, OcclusionAwareAdapter
from avi_ros.models.freezing import keep_frozen_batchnorm_in_eval
from avi_ros.models.head import HeadConfig, HeadOutput, ImaginationHead
from avi_ros.models.seld_encoder import SeldEncoder, SeldEncoderConfig, load_dcase_checkpoint
from avi_ros.models.visual_encoder import VisualEncoder, VisualEncoderConfig
from avi_ros.taxonomy import Visibility

if TYPE_CHECKING:
    from avi_ros.models.hazard_set import HazardSetModel

VARIANTS = ("full", "audio_only", "visual_only", "concat", "oracle")
# Where a hazard-set model's directions come from: the head alone (learned), or each slot's
# mask-weighted FOA intensity vector plus a learned correction (avi_ros.models.intensity_direction).
DIRECTION_SOURCES = ("learned", "intensity")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one model; saved in every checkpoint. ``num_classes`` comes from the taxonomy.

    ``hazard_slots``: 0 = the single-hazard ImaginationModel; K > 0 = a HazardSetModel with K
    hazard slots. ``view_grid``: side of the view-token grid a hazard-set model reads.
    ``direction``: one of DIRECTION_SOURCES, for the hazard-set model ("intensity" needs the dcase
    features, whose channels 4..6 are the intensity vector).
    """

    num_classes: int = 10
    variant: str = "full"
    audio: SeldEncoderConfig = field(default_factory=SeldEncoderConfig)
    visual: VisualEncoderConfig = field(default_factory=VisualEncoderConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    hazard_slots: int = 0
    view_grid: int = 6
    direction: str = "learned"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"model.variant: expected one of {VARIANTS}, got '{self.variant}'")
        if self.num_classes < 2:
            raise ValueError(
                f"model.num_classes: need 'none' plus at least one class, got {self.num_classes}"
            )
        if self.direction not in DIRECTION_SOURCES:
            raise ValueError(f"model.direction: expected one of {DIRECTION_SOURCES}, got '{self.direction}'")
        if self.direction == "intensity" and (self.hazard_slots < 1 or not self.uses_audio):
            raise ValueError(
                "model.direction: 'intensity' needs a hazard-set model (hazard_slots >= 1) that hears "
                f"(not visual_only), got hazard_slots={self.hazard_slots}, variant '{self.variant}'"
            )
        if self.hazard_slots < 0 or self.view_grid < 1:
            raise ValueError(
                f"model: need hazard_slots >= 0 and view_grid >= 1, got {self.hazard_slots}, {self.view_grid}"
            )

    @property
    def uses_audio(self) -> bool:
        return self.variant != "visual_only"

    @property
    def uses_visual(self) -> bool:
        return self.variant != "audio_only"

    def check_features(self, features: FeatureConfig) -> None:
        """Raise ValueError when the feature config does not produce what the audio encoder expects."""
        if (features.channels, features.n_bins) != (self.audio.in_channels, self.audio.n_bins):
            raise ValueError(
                f"feature config gives {features.channels} x {features.n_bins} (channels x bins) but the "
                f"audio encoder expects {self.audio.in_channels} x {self.audio.n_bins}"
            )
        if self.direction == "intensity" and features.kind != "dcase":
            raise ValueError(
                f"model.direction 'intensity' reads the intensity-vector channels of the dcase features; "
                f"feature_config.kind is '{features.kind}'"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for checkpoint metadata (``avi_ros.config_io``)."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; a ConfigError (ValueError) names the first bad key."""
        return build(cls, dict(data), "model")


@dataclass
class ModelOutput(HeadOutput):
    """The head's outputs (see HeadOutput for shapes and units) plus the adapter's
    ``audio_weight``/``visual_weight`` [B], the reliance on each modality, and ``accdoa``
    [B, T', tracks, 3, classes] only with that head. avi_ros.models.output_arrays reads it."""

    audio_weight: torch.Tensor
    visual_weight: torch.Tensor
    accdoa: torch.Tensor | None = None


class ImaginationModel(nn.Module):
    """See the module docstring. Parts: ``feature_norm``, ``audio_encoder``, ``visual_encoder``,
    ``adapter``, ``head`` (the encoders are None in the variants that do without them)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_norm = FeatureNormalizer(config.audio.in_channels, config.audio.n_bins)
        self.audio_encoder = SeldEncoder(config.audio) if config.uses_audio else None
        self.visual_encoder = VisualEncoder(config.visual) if config.uses_visual else None
        both = config.uses_audio and config.uses_visual
        self.adapter = OcclusionAwareAdapter(
            config.adapter,
            audio_dim=self.audio_encoder.embedding_dim if self.audio_encoder else 0,
            visual_dim=self.visual_encoder.out_channels if self.visual_encoder else 0,
            cross_attention=config.variant in ("full", "oracle"),
            reliability_inputs={"full": 1, "oracle": 1 + len(Visibility)}.get(config.variant, 0)
            if both
            else 0,
        )
        self.head = ImaginationHead(self.adapter.out_dim, config.num_classes, config.head)

    def forward(
        self,
        features: torch.Tensor | None,
        visual: torch.Tensor | None,
        occlusion_level: torch.Tensor,
        visibility: torch.Tensor | None = None,
    ) -> ModelOutput:
        """features: raw (un-normalised) [B, 7, T, F]; visual: [B, 5, S, S] from visual_input;
        occlusion_level: [B] in [0, 1]; visibility: [B] Visibility ids, required by the oracle."""
        audio_tokens = visual_tokens = accdoa = None
        if self.audio_encoder is not None:
            _check_input("features", features, 4)
            audio_tokens = self.audio_encoder(self.feature_norm(features))
            if self.config.audio.accdoa_classes:
                accdoa = self.audio_encoder.accdoa(audio_tokens)
        if self.visual_encoder is not None:
            _check_input("visual", visual, 4)
            visual_tokens = self.visual_encoder(visual)
        fused = self.adapter(
            audio_tokens, visual_tokens, self._reliability_input(occlusion_level, visibility)
        )
        return ModelOutput(
            **vars(self.head(fused.embedding)),
            audio_weight=fused.audio_weight,
            visual_weight=fused.visual_weight,
            accdoa=accdoa,
        )

    def _reliability_input(
        self, occlusion_level: torch.Tensor, visibility: torch.Tensor | None
    ) -> torch.Tensor:
        level = occlusion_level.float().reshape(-1, 1)
        if self.config.variant != "oracle":
            return level
        if visibility is None:
            raise ValueError("model: the oracle variant needs the true visibility as input")
        one_hot = F.one_hot(visibility.long().reshape(-1), num_classes=len(Visibility)).float()
        return torch.cat([level, one_hot], dim=-1)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Install per channel-bin feature statistics [C, F] (see features.compute_normalization_stats)."""
        self.feature_norm.set_stats(mean, std)

    def train(self, mode: bool = True) -> ImaginationModel:
        """Like nn.Module.train, but BatchNorm layers whose parameters are frozen keep their statistics."""
        super().train(mode)
        keep_frozen_batchnorm_in_eval(self)
        return self


def _check_input(name: str, tensor: torch.Tensor | None, dims: int) -> None:
    if tensor is None or tensor.dim() != dims:
        shape = None if tensor is None else tuple(tensor.shape)
        raise ValueError(f"model: '{name}' must be a {dims}-d tensor, got {shape}")


def build_model(config: ModelConfig) -> ImaginationModel | HazardSetModel:
    """The one constructor for the full model and every baseline (randomly initialised): the
    hazard-set model when ``config.hazard_slots`` > 0, else the single-hazard model."""
    if config.hazard_slots > 0:
        from avi_ros.models.hazard_set import HazardSetModel  # it imports this module

        return HazardSetModel(config)
    return ImaginationModel(config)


def load_pretrained(
    model: ImaginationModel | HazardSetModel,
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
