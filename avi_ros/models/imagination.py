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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avi_ros.features import FeatureNormalizer
from avi_ros.models.adapter import OcclusionAwareAdapter
from avi_ros.models.config import ModelConfig, check_input
from avi_ros.models.freezing import keep_frozen_batchnorm_in_eval
from avi_ros.models.head import HeadOutput, ImaginationHead
from avi_ros.models.seld_encoder import SeldEncoder
from avi_ros.models.visual_encoder import VisualEncoder
from avi_ros.taxonomy import Visibility


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
            check_input("features", features, 4)
            audio_tokens = self.audio_encoder(self.feature_norm(features))
            if self.config.audio.accdoa_classes:
                accdoa = self.audio_encoder.accdoa(audio_tokens)
        if self.visual_encoder is not None:
            check_input("visual", visual, 4)
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
