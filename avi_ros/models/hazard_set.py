"""The package's model: up to K hazards per frame, each fused with the view in its own direction.

    features [B, 7, T, F] --FeatureNormalizer--> SeldEncoder --> audio frames [B, T', 128] --+
    visual [B, 5, S, S] ------------------------> VisualEncoder -> region tokens [B, N, C] ---+
    view_tokens [B, M, 6] (avi_ros.view_tokens: cell rays, blocked fraction, near depth) ----+
                          HazardSetFusion (K slots) -> embedding [B, K, D] -> ImaginationHead per slot

Built by ``build_model(ModelConfig)``; ``ModelConfig.hazard_slots`` = K, and K = 1 is the
single-hazard case of the same class (one slot, one answer per frame). Variants
(``ModelConfig.variant``; see ``avi_ros.models.hazard_fusion`` for what each does): ``full``,
``audio_only``, ``visual_only``, ``concat`` and ``oracle`` (the full model fed the exact view
tokens, which only training data has). The parts are ``feature_norm``, ``audio_encoder``,
``visual_encoder``, ``adapter`` (the fusion) and ``head``: the names checkpoints, freezing,
parameter counts and DCASE / ImageNet loading use. Slots are unordered: training matches them to
the hazards (Hungarian).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avi_ros.features import FeatureNormalizer
from avi_ros.models.config import ModelConfig, check_input
from avi_ros.models.freezing import keep_frozen_batchnorm_in_eval
from avi_ros.models.hazard_fusion import FusionReadings, HazardSetFusion
from avi_ros.models.head import HeadOutput, ImaginationHead
from avi_ros.models.seld_encoder import SeldEncoder
from avi_ros.models.visual_encoder import VisualEncoder


@dataclass(kw_only=True)
class HazardSetOutput(HeadOutput, FusionReadings):
    """The model's answer per slot, [B, K, ...]: the head's outputs (class_logits [B, K, N], class 0 =
    empty slot, direction [B, K, 3] unit in the microphone frame, distance [B, K] m, confidence_logit
    [B, K], risk_logits [B, K, 4], action_logits [B, K, 6]), plus visibility_logits [B, K, 3]
    (Visibility ids), audio_weight / visual_weight [B, K] (sum 1 per slot), hazard_occlusion
    [B, K] (blocked fraction the model reads in the slot's direction; NaN when the variant reads
    none), audio_direction [B, K, 3] (the heard direction that steers the look; full and oracle
    only), physics_direction [B, K, 3] (the slot's mask-weighted intensity vector, length = its
    coherence; only with ``ModelConfig.direction`` = "intensity", where the direction is
    ``corrected_direction(physics, correction)`` normalised) and accdoa [B, T', tracks, 3,
    classes] only with the SELD encoder's ACCDOA head."""

    accdoa: torch.Tensor | None = None


class HazardSetModel(nn.Module):
    """See the module docstring. ``adapter`` is the HazardSetFusion; the encoders are None in the
    variants that do without them."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_norm = FeatureNormalizer(config.audio.in_channels, config.audio.n_bins)
        self.audio_encoder = SeldEncoder(config.audio) if config.uses_audio else None
        self.visual_encoder = VisualEncoder(config.visual) if config.uses_visual else None
        self.adapter = HazardSetFusion(
            config.adapter,
            slots=config.hazard_slots,
            variant=config.variant,
            audio_dim=self.audio_encoder.embedding_dim if self.audio_encoder else 0,
            visual_dim=self.visual_encoder.out_channels if self.visual_encoder else 0,
            intensity_bins=config.audio.n_bins if config.direction == "intensity" else 0,
            direction_correction=config.direction_correction,
        )
        self.head = ImaginationHead(
            self.adapter.out_dim, config.num_classes, config.head, learns_direction=config.learns_direction
        )
        if config.direction == "intensity" and config.direction_correction:
            self.head.start_direction_as_correction()

    def forward(
        self,
        features: torch.Tensor | None,
        visual: torch.Tensor | None,
        view_tokens: torch.Tensor | None = None,
    ) -> HazardSetOutput:
        """features: raw (un-normalised) [B, 7, T, F]; visual: [B, 5, S, S] from visual_input;
        view_tokens: [B, M, 6] (needed by full, oracle and visual_only; the oracle gets the exact ones)."""
        audio_tokens = visual_tokens = accdoa = spectra = None
        if self.audio_encoder is not None:
            check_input("features", features, 4)
            normalized = self.feature_norm(features)
            audio_tokens = self.audio_encoder(normalized)
            spectra = (normalized, features)
            if self.config.audio.accdoa_classes:
                accdoa = self.audio_encoder.accdoa(audio_tokens)
        if self.visual_encoder is not None:
            check_input("visual", visual, 4)
            visual_tokens = self.visual_encoder(visual)
        fused = self.adapter(audio_tokens, visual_tokens, view_tokens, spectra)
        head = self.head(fused.embedding, fused.physics_direction)
        return HazardSetOutput(**vars(head), **fused.readings(), accdoa=accdoa)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Install per channel-bin feature statistics [C, F] (see features.compute_normalization_stats)."""
        self.feature_norm.set_stats(mean, std)

    def train(self, mode: bool = True) -> HazardSetModel:
        """Like nn.Module.train, but BatchNorm layers whose parameters are frozen keep their statistics."""
        super().train(mode)
        keep_frozen_batchnorm_in_eval(self)
        return self
