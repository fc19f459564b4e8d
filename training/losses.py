"""The loss of the hazard model: a permutation-invariant set loss (DETR-style set prediction),
plus the ADPIT loss of the SELD encoder's multi-ACCDOA head (its pre-training, ``training.seld_task``).

The model emits K hazard slots per window; the targets hold up to K hazards in no particular
order (K = 1: at most one). Each sample's slots are matched one-to-one to its non-empty target
hazards with the Hungarian algorithm (``match_hazards``) on

    cost = w_class · (−log p(target class)) + w_dir · (1 − cos θ) + w_dist · |log(d̂ / d)|,

and the loss is then taken slot by slot:

    total = w_class · CE(class)       all slots; unmatched ones target class 0 (empty),
                                      weighted ``empty_weight`` (DETR's no-object weight)
          + w_dir · ‖û − u‖           matched slots
          + w_dist · |log d̂ − log d|  matched slots
          + w_conf · BCE(confidence, matched)                  all slots
          + w_risk · CE(risk) + w_action · CE(action) + w_vis · CE(visibility)   matched slots
          + w_steer · ‖â − u‖         matched slots, where the model has an audio direction â
                                      (the full and oracle variants look where â points)

An empty slot (a frame without a hazard, or more slots than hazards) has no source, so it carries
no direction or distance target. The direction error is the chord between the unit vectors,
2·sin(θ/2) ≈ θ [rad]: unlike 1 − cos θ (≈ θ²/2) its gradient does not vanish as the error
shrinks, which is what fine localisation needs; the matching cost keeps 1 − cos θ, where only the
ranking matters. The distance error is taken on a log scale because a 1 m miss matters at 2 m,
not at 20 m. The confidence target is whether the slot answers a true hazard, whatever its class:
the published confidence is the probability that a hazard is there (the one meaning the node's
threshold, the tracker and the decision stage read), and the class probabilities say which. Its
target was "matched and the class right" until the slot classes were right a quarter of the time on
real test sounds: then a real hazard got a low confidence and went unreported (recall 9 %).

The matching only chooses which slot answers which hazard, so it runs on detached CPU copies
and the loss is differentiable in everything the matching picked. Because the cost and the
loss only depend on the pairing, not on the order of the target slots, the loss is invariant
to a permutation of the targets (and, jointly, of the slots).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

BACKGROUND_CLASS = 0
_CHORD_EPS = 1e-12  # keeps the chord's gradient finite at zero error
ACTIVE_TARGET_NORM = 0.5  # a multi-ACCDOA target track is active when its vector is non-zero (unit length)
_MIN_DISTANCE_M = 1e-3  # distances are clamped here before their logarithm
IGNORE_LABEL = -1  # padding of the visibility targets (hazard_visibility); never a loss target


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms and of the matching cost (all dimensionless, >= 0)."""

    class_weight: float = 1.0
    empty_weight: float = 0.3  # class-0 weight of unmatched slots (K slots, ~1.5 hazards per scene)
    direction_weight: float = 1.0
    distance_weight: float = 0.5
    confidence_weight: float = 0.1
    risk_weight: float = 0.5
    action_weight: float = 0.5
    visibility_weight: float = 0.5
    steering_weight: float = 0.5  # the audio direction that steers each slot's look (full/oracle only)
    match_class_weight: float = 1.0  # matching cost: class NLL
    match_direction_weight: float = 1.0  # matching cost: 1 − cos θ, in [0, 2]
    match_distance_weight: float = 1.0  # matching cost: |log(d̂ / d)|

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"{field.name}: expected a weight >= 0, got {value}")


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


def match_hazards(
    class_logits: torch.Tensor,
    direction: torch.Tensor,
    distance: torch.Tensor,
    target_class: torch.Tensor,
    target_direction: torch.Tensor,
    target_distance: torch.Tensor,
    config: LossConfig | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Hungarian matching of each sample's slots to its non-empty target hazards.

    class_logits [B, K, N] (class 0 = empty), direction [B, K, 3] (any length), distance [B, K] m;
    target_class [B, Kt] (0 = empty slot), target_direction [B, Kt, 3], target_distance [B, Kt] m.
    Returns per sample (slot indices, target slot indices), int64 arrays of equal length
    (min(K, number of hazards)), sorted by slot. Runs on detached CPU float64 copies.
    """
    config = LossConfig() if config is None else config
    with torch.no_grad():
        log_prob = F.log_softmax(class_logits.detach().float(), dim=-1).cpu().double().numpy()
        unit = F.normalize(direction.detach().float(), dim=-1, eps=1e-8).cpu().double().numpy()
        log_d = np.log(distance.detach().float().clamp_min(_MIN_DISTANCE_M).cpu().double().numpy())
        t_class = target_class.detach().cpu().numpy().astype(np.int64)
        t_unit = F.normalize(target_direction.detach().float(), dim=-1, eps=1e-8).cpu().double().numpy()
        t_log_d = np.log(target_distance.detach().float().clamp_min(_MIN_DISTANCE_M).cpu().double().numpy())
    matches = []
    for b in range(t_class.shape[0]):
        targets = np.flatnonzero(t_class[b] != BACKGROUND_CLASS)
        if len(targets) == 0:
            matches.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
            continue
        cost = (
            config.match_class_weight * -log_prob[b][:, t_class[b, targets]]
            + config.match_direction_weight * (1.0 - unit[b] @ t_unit[b, targets].T)
            + config.match_distance_weight * np.abs(log_d[b][:, None] - t_log_d[b, targets][None, :])
        )  # [K, hazards]
        slots, columns = linear_sum_assignment(cost)
        matches.append((slots.astype(np.int64), targets[columns].astype(np.int64)))
    return matches


def hazard_loss(
    output: Any, batch: dict[str, torch.Tensor], config: LossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total set loss and its detached terms.

    ``output`` has the HazardSetOutput attributes class_logits [B, K, N], direction [B, K, 3],
    distance [B, K] m, confidence_logit [B, K], risk_logits [B, K, 4], action_logits [B, K, 6],
    visibility_logits [B, K, 3]. ``batch`` has hazard_class [B, Kt] (0 = empty),
    hazard_direction [B, Kt, 3], hazard_distance [B, Kt] m, hazard_visibility [B, Kt] (-1 pad),
    hazard_risk [B, Kt], hazard_action [B, Kt]. Computed in float32 even under autocast.
    Besides the loss terms, ``parts["matched"]`` is the number of matched slots of the batch.
    """
    target_class = batch["hazard_class"].long()
    matches = match_hazards(
        output.class_logits,
        output.direction,
        output.distance,
        target_class,
        batch["hazard_direction"],
        batch["hazard_distance"],
        config,
    )
    batch_size, slots = output.class_logits.shape[:2]
    device = output.class_logits.device
    matched = torch.zeros(batch_size, slots, dtype=torch.bool)
    source = torch.zeros(batch_size, slots, dtype=torch.long)  # target slot answered by each slot
    for b, (slot_index, target_index) in enumerate(matches):
        matched[b, torch.from_numpy(slot_index)] = True
        source[b, torch.from_numpy(slot_index)] = torch.from_numpy(target_index)
    matched, source = matched.to(device), source.to(device)

    def per_slot(name: str) -> torch.Tensor:
        """The target ``name`` [B, Kt, ...] re-ordered to the slots [B, K, ...] (garbage where unmatched)."""
        values = batch[name].to(device)
        index = source.view(batch_size, slots, *([1] * (values.dim() - 2))).expand(
            batch_size, slots, *values.shape[2:]
        )
        return values.gather(1, index)

    with torch.autocast(device_type=device.type, enabled=False):
        class_logits = output.class_logits.float()
        slot_class = torch.where(matched, per_slot("hazard_class").long(), BACKGROUND_CLASS)
        slot_weight = torch.where(matched, 1.0, config.empty_weight).to(class_logits.dtype)
        class_ce = F.cross_entropy(class_logits.flatten(0, 1), slot_class.flatten(), reduction="none")
        class_loss = (class_ce * slot_weight.flatten()).sum() / slot_weight.sum().clamp_min(1e-8)

        flat_matched = matched.flatten()
        direction_loss = masked_mean(
            direction_error(output.direction.flatten(0, 1), per_slot("hazard_direction").flatten(0, 1)),
            flat_matched,
        )
        distance_loss = masked_mean(
            log_distance_error(output.distance.flatten(), per_slot("hazard_distance").flatten()),
            flat_matched,
        )

        steering = getattr(output, "audio_direction", None)
        steering_loss = (
            masked_mean(
                direction_error(steering.flatten(0, 1), per_slot("hazard_direction").flatten(0, 1)),
                flat_matched,
            )
            if steering is not None
            else direction_loss.new_zeros(())
        )

        confidence_loss = F.binary_cross_entropy_with_logits(output.confidence_logit.float(), matched.float())

        risk_loss = _matched_cross_entropy(output.risk_logits, per_slot("hazard_risk"), matched)
        action_loss = _matched_cross_entropy(output.action_logits, per_slot("hazard_action"), matched)
        visibility_loss = _matched_cross_entropy(
            output.visibility_logits, per_slot("hazard_visibility"), matched
        )

        total = (
            config.class_weight * class_loss
            + config.direction_weight * direction_loss
            + config.distance_weight * distance_loss
            + config.confidence_weight * confidence_loss
            + config.risk_weight * risk_loss
            + config.action_weight * action_loss
            + config.visibility_weight * visibility_loss
            + config.steering_weight * steering_loss
        )
    terms = {
        "class": class_loss,
        "direction": direction_loss,
        "distance": distance_loss,
        "confidence": confidence_loss,
        "risk": risk_loss,
        "action": action_loss,
        "visibility": visibility_loss,
        "steering": steering_loss,
        "matched": matched.sum().float(),
    }
    return total, {name: value.detach() for name, value in terms.items()}


def _matched_cross_entropy(logits: torch.Tensor, target: torch.Tensor, matched: torch.Tensor) -> torch.Tensor:
    """Mean CE of ``logits`` [B, K, C] against ``target`` [B, K] over matched slots whose target
    is a label (>= 0); 0, with a gradient path, when there is none."""
    target = target.long()
    valid = (matched & (target > IGNORE_LABEL)).flatten()
    ce = F.cross_entropy(logits.float().flatten(0, 1), target.clamp_min(0).flatten(), reduction="none")
    return masked_mean(ce, valid)


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
