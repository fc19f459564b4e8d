"""The architecture of the package's model, saved in every checkpoint: ``ModelConfig``.

Its own module so that the model, the builder, the checkpoint code and training read it without
importing one another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from avi_ros.config_io import build, to_plain
from avi_ros.features import FeatureConfig
from avi_ros.models.hazard_fusion import AdapterConfig
from avi_ros.models.head import HeadConfig
from avi_ros.models.seld_encoder import SeldEncoderConfig
from avi_ros.models.visual_encoder import VisualEncoderConfig
from avi_ros.taxonomy import MAX_HAZARDS

VARIANTS = ("full", "audio_only", "visual_only", "concat", "oracle")
# Where the model's directions come from: the head alone (learned), or each slot's
# mask-weighted FOA intensity vector plus a learned correction (avi_ros.models.intensity_direction).
DIRECTION_SOURCES = ("learned", "intensity")
# Keys that checkpoints and run configs of earlier versions wrote and that no longer mean anything
# (the time pooling of the single-hazard adapter); ``without_retired_keys`` drops them, so the
# shipped checkpoint and earlier run directories still load.
RETIRED_KEYS = (("adapter", "pooling"),)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one model; saved in every checkpoint. ``num_classes`` comes from the taxonomy.

    ``hazard_slots``: K, the hazards the model reports per frame (K = 1 is the single-hazard
    case; 3 by default, as many as the scenes' hazard labels hold). ``view_grid``: side of the
    view-token grid the fusion reads. ``direction``: one of DIRECTION_SOURCES ("intensity" needs
    the dcase features, whose channels 4..6 are the intensity vector, and a variant that hears).
    ``direction_correction`` (with "intensity"): add the learned correction, gated by the
    incoherence of the slot's bins, to the physics direction; False: the direction is the
    mask-weighted intensity vector alone, so only the masks learn where a hazard is.
    """

    num_classes: int = 10
    variant: str = "full"
    audio: SeldEncoderConfig = field(default_factory=SeldEncoderConfig)
    visual: VisualEncoderConfig = field(default_factory=VisualEncoderConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    hazard_slots: int = MAX_HAZARDS
    view_grid: int = 6
    direction: str = "learned"
    direction_correction: bool = True

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"model.variant: expected one of {VARIANTS}, got '{self.variant}'")
        if self.num_classes < 2:
            raise ValueError(
                f"model.num_classes: need 'none' plus at least one class, got {self.num_classes}"
            )
        if self.direction not in DIRECTION_SOURCES:
            raise ValueError(f"model.direction: expected one of {DIRECTION_SOURCES}, got '{self.direction}'")
        if self.direction == "intensity" and not self.uses_audio:
            raise ValueError("model.direction: 'intensity' needs a variant that hears, got 'visual_only'")
        if not self.direction_correction and self.direction != "intensity":
            raise ValueError("model.direction_correction: false needs model.direction 'intensity'")
        if self.hazard_slots < 1:
            raise ValueError(
                f"model.hazard_slots: expected >= 1 (hazards per frame), got {self.hazard_slots}"
            )
        if self.view_grid < 1:
            raise ValueError(f"model.view_grid: expected >= 1, got {self.view_grid}")

    @property
    def learns_direction(self) -> bool:
        """Whether the head (and the steering) have a learned direction layer: the whole direction
        ("learned"), or a correction of the physics one."""
        return self.direction != "intensity" or self.direction_correction

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
        """Inverse of ``to_dict`` (``RETIRED_KEYS`` are dropped); a ConfigError (ValueError)
        names the first bad key."""
        return build(cls, without_retired_keys(data), "model")


def without_retired_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a model config mapping without the ``RETIRED_KEYS`` (see there)."""
    plain = dict(data)
    for section, key in RETIRED_KEYS:
        if isinstance(plain.get(section), Mapping):
            plain[section] = {k: v for k, v in plain[section].items() if k != key}
    return plain


def check_input(name: str, tensor: torch.Tensor | None, dims: int) -> None:
    if tensor is None or tensor.dim() != dims:
        shape = None if tensor is None else tuple(tensor.shape)
        raise ValueError(f"model: '{name}' must be a {dims}-d tensor, got {shape}")
