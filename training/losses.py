"""The multi-task loss of the imagination model.

total = w_class · CE(class)
      + β · mean over non-background samples of [‖û − u‖ + w_dist · |log d̂ − log d|]
      + γ · BCE(confidence, 1[predicted class is right])
      + w_risk · CE(risk) + w_action · CE(action)

Background samples (class 0) have no source, so they carry no direction or distance target:
the geometric term is averaged over the non-background samples of the batch only. The
direction error is the chord between the unit vectors, 2·sin(θ/2) ≈ θ [rad]: unlike 1 − cos θ
(≈ θ²/2) its gradient does not vanish as the error shrinks, which is what fine localisation
needs. The distance error is taken on a log scale because a 1 m miss matters at 2 m, not at 20 m. The
confidence target is whether the class prediction is right (detached), which is what makes the
published confidence a calibrated probability of being right.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

BACKGROUND_CLASS = 0
_CHORD_EPS = 1e-12  # keeps the chord's gradient finite at zero error
ACTIVE_TARGET_NORM = 0.5  # a multi-ACCDOA target track is active when its vector is non-zero (unit length)
_MIN_DISTANCE_M = 1e-3


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms (dimensionless). ``accdoa_weight`` > 0 adds the auxiliary
    multi-ACCDOA (ADPIT) loss of the SELD encoder's head, per 100 ms frame, which supervises the
    audio encoder's localisation directly."""

    class_weight: float = 1.0
    beta: float = 1.0
    distance_weight: float = 0.5
    gamma: float = 0.1
    risk_weight: float = 0.5
    action_weight: float = 0.5
    label_smoothing: float = 0.0
    accdoa_weight: float = 0.0

    def __post_init__(self) -> None:
        names = (
            "class_weight",
            "beta",
            "distance_weight",
            "gamma",
            "risk_weight",
            "action_weight",
            "accdoa_weight",
        )
        for name in names:
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name}: expected a weight >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing: expected a value in [0, 1), got {self.label_smoothing}")


@dataclass
class Targets:
    """Labels of a batch. class_id, risk, action: long [B]; direction: unit vectors [B, 3]
    in the microphone frame; distance: [B] metres (ignored where class_id is background);
    accdoa: optional multi-ACCDOA target [B, T', tracks, 3, classes]."""

    class_id: torch.Tensor
    direction: torch.Tensor
    distance: torch.Tensor
    risk: torch.Tensor
    action: torch.Tensor
    accdoa: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Targets:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return Targets(
            **{k: None if v is None else v.to(device, non_blocking=True) for k, v in moved.items()}
        )


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` [B] where ``mask`` [B] is True; 0 (with a gradient path) when none is."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def direction_error(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Chord ‖û − u‖ between the normalised direction vectors [B, 3] -> [B]: 2·sin(θ/2), ≈ θ in
    radians for small angles; 0 when aligned, 2 when opposite."""
    unit_p = F.normalize(predicted.float(), dim=-1, eps=1e-8)
    unit_t = F.normalize(target.float(), dim=-1, eps=1e-8)
    return ((unit_p - unit_t).square().sum(dim=-1) + _CHORD_EPS).sqrt()


def log_distance_error(predicted_m: torch.Tensor, target_m: torch.Tensor) -> torch.Tensor:
    """|log d̂ − log d| [B] for distances in metres (clamped at 1 mm)."""
    return (
        torch.log(predicted_m.float().clamp_min(_MIN_DISTANCE_M))
        - torch.log(target_m.float().clamp_min(_MIN_DISTANCE_M))
    ).abs()


def imagination_loss(
    output: object, targets: Targets, config: LossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its detached terms for a model output with ``class_logits`` [B, C],
    ``direction`` [B, 3], ``distance`` [B] (m), ``confidence_logit`` [B] (sigmoid -> confidence),
    ``risk_logits`` [B, 4] and ``action_logits`` [B, 6]. Computed in float32 even under autocast."""
    device_type = targets.class_id.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        class_logits = output.class_logits.float()
        class_loss = F.cross_entropy(class_logits, targets.class_id, label_smoothing=config.label_smoothing)

        source = targets.class_id != BACKGROUND_CLASS
        direction_loss = masked_mean(direction_error(output.direction, targets.direction), source)
        distance_loss = masked_mean(log_distance_error(output.distance, targets.distance), source)

        correct = (class_logits.argmax(dim=-1) == targets.class_id).float()
        confidence_loss = F.binary_cross_entropy_with_logits(output.confidence_logit.float(), correct)

        risk_loss = F.cross_entropy(output.risk_logits.float(), targets.risk)
        action_loss = F.cross_entropy(output.action_logits.float(), targets.action)

        accdoa_loss = torch.zeros((), device=class_logits.device)
        if config.accdoa_weight > 0 and output.accdoa is not None and targets.accdoa is not None:
            accdoa_loss = adpit_loss(output.accdoa.float(), targets.accdoa)

        total = (
            config.class_weight * class_loss
            + config.beta * (direction_loss + config.distance_weight * distance_loss)
            + config.gamma * confidence_loss
            + config.risk_weight * risk_loss
            + config.action_weight * action_loss
            + config.accdoa_weight * accdoa_loss
        )
    terms = {
        "class": class_loss,
        "direction": direction_loss,
        "distance": distance_loss,
        "confidence": confidence_loss,
        "risk": risk_loss,
        "action": action_loss,
        "accdoa": accdoa_loss,
    }
    return total, {name: value.detach() for name, value in terms.items()}


def _assignments(tracks: int) -> list[tuple[int, tuple[int, ...]]]:
    """(n sources, source index per track) for every assignment using each of n sources at least once."""
    out = []
    for n in range(1, tracks + 1):
        for combo in itertools.product(range(n), repeat=tracks):
            if len(set(combo)) == n:
                out.append((n, combo))
    return out


def adpit_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ADPIT mean squared error of multi-ACCDOA ``output`` vs ``target``, both [B, T, tracks, 3, C].

    ``target`` holds the n active sources of each (frame, class) in tracks 0..n-1 and zeros
    after. An inactive class (n = 0) is compared with zeros on every track.
    """
    tracks = target.shape[2]
    active = target.norm(dim=3) > ACTIVE_TARGET_NORM  # [B, T, tracks, C]
    count = active.sum(dim=2)  # [B, T, C]
    best = None
    for n, combo in _assignments(tracks):
        candidate = target[:, :, list(combo)]  # [B, T, tracks, 3, C]
        error = (output - candidate).square().mean(dim=(2, 3))  # [B, T, C]
        valid = count == n if n > 1 else count <= 1  # with 0 sources, source 0 is the zero vector
        error = torch.where(valid, error, torch.full_like(error, float("inf")))
        best = error if best is None else torch.minimum(best, error)
    return best.mean()
