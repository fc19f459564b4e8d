"""The imagination head: one hazard estimate from each fused slot embedding.

A shared hidden layer feeds six small outputs: class logits (class 0 = none), a direction unit
vector (avoids the azimuth wrap-around at +-pi), a distance in metres (softplus, so positive),
a confidence logit (sigmoid -> [0, 1]), and risk (4) and action (6) logits whose training
targets come from the taxonomy rules (class + distance -> risk -> action).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avi_ros.models.intensity_direction import corrected_direction
from avi_ros.taxonomy import Action, RiskLevel

NUM_RISK_LEVELS = len(RiskLevel)
NUM_ACTIONS = len(Action)
MIN_DISTANCE_M = 0.05  # floor of the predicted distance [m]
# Added before normalising the direction: a direction vector of exactly zero (silence through a
# model whose direction is the intensity vector plus a correction) reads as straight ahead (+x)
# instead of an undefined one; 1e-6 moves any other direction by under 1e-4 deg.
_FORWARD_TIEBREAK = (1e-6, 0.0, 0.0)


@dataclass(frozen=True)
class HeadConfig:
    """``hidden``: width of the shared layer; ``dropout`` applies after it."""

    hidden: int = 512
    dropout: float = 0.1


@dataclass
class HeadOutput:
    """Outputs per embedding, [..., X] over the embedding's leading axes (sample, slot):
    class_logits [..., N], direction [..., 3] (unit), distance [...] (m), confidence_logit [...],
    risk_logits [..., 4], action_logits [..., 6]."""

    class_logits: torch.Tensor
    direction: torch.Tensor
    distance: torch.Tensor
    confidence_logit: torch.Tensor
    risk_logits: torch.Tensor
    action_logits: torch.Tensor


class ImaginationHead(nn.Module):
    """Embedding [..., in_dim] -> HeadOutput for ``num_classes`` taxonomy classes; the K slots
    share it (one head, so calibration folds into it once for every slot)."""

    def __init__(
        self, in_dim: int, num_classes: int, config: HeadConfig = HeadConfig(), learns_direction: bool = True
    ) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(in_dim, config.hidden), nn.ReLU(), nn.Dropout(config.dropout))
        self.class_logits = nn.Linear(config.hidden, num_classes)
        # None: the direction is the prior alone (physics without a learned correction).
        self.direction = nn.Linear(config.hidden, 3) if learns_direction else None
        self.distance = nn.Linear(config.hidden, 1)
        self.confidence = nn.Linear(config.hidden, 1)
        self.risk = nn.Linear(config.hidden, NUM_RISK_LEVELS)
        self.action = nn.Linear(config.hidden, NUM_ACTIONS)

    def start_direction_as_correction(self) -> None:
        """Zero the direction layer, for a model whose direction is a prior (physics) plus this
        layer's correction: the model then starts exactly at the prior."""
        nn.init.zeros_(self.direction.weight)
        nn.init.zeros_(self.direction.bias)

    def forward(self, embedding: torch.Tensor, direction_prior: torch.Tensor | None = None) -> HeadOutput:
        """``direction_prior`` [..., 3] (the physics direction, length <= 1) is corrected by the
        direction layer's output where it is incoherent (``corrected_direction``), or taken as it
        is by a head without a direction layer; None: the layer alone."""
        h = self.trunk(embedding)
        if self.direction is None:
            if direction_prior is None:
                raise ValueError("head: a head without a direction layer needs the direction prior")
            raw_direction = direction_prior.float()
        else:
            raw_direction = self.direction(h).float()
            if direction_prior is not None:
                raw_direction = corrected_direction(direction_prior, raw_direction)
        tiebreak = raw_direction.new_tensor(_FORWARD_TIEBREAK)
        direction = F.normalize(raw_direction + tiebreak, dim=-1, eps=1e-12)
        return HeadOutput(
            class_logits=self.class_logits(h),
            direction=direction,
            distance=F.softplus(self.distance(h).float()).squeeze(-1) + MIN_DISTANCE_M,
            confidence_logit=self.confidence(h).squeeze(-1),
            risk_logits=self.risk(h),
            action_logits=self.action(h),
        )
