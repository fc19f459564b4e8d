"""The hazard-set loss: Hungarian matching, empty slots, permutation invariance, gradients."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from training.set_loss import SetLossConfig, hazard_set_loss, match_hazards

NUM_CLASSES = 5
SLOTS = 3


def _output(batch: int = 2, seed: int = 0) -> SimpleNamespace:
    """A random HazardSetOutput stand-in whose tensors require gradients."""
    generator = torch.Generator().manual_seed(seed)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).requires_grad_()

    return SimpleNamespace(
        class_logits=leaf(batch, SLOTS, NUM_CLASSES),
        direction=leaf(batch, SLOTS, 3),
        distance=(torch.rand(batch, SLOTS, generator=generator) * 5 + 0.5).requires_grad_(),
        confidence_logit=leaf(batch, SLOTS),
        risk_logits=leaf(batch, SLOTS, 4),
        action_logits=leaf(batch, SLOTS, 6),
        visibility_logits=leaf(batch, SLOTS, 3),
        audio_weight=torch.full((batch, SLOTS), 0.5),
        visual_weight=torch.full((batch, SLOTS), 0.5),
        hazard_occlusion=torch.zeros(batch, SLOTS),
    )


def _batch() -> dict[str, torch.Tensor]:
    """Sample 0: two hazards (slots 0 and 2) and an empty slot; sample 1: three hazards."""
    return {
        "hazard_class": torch.tensor([[2, 0, 4], [1, 3, 1]]),
        "hazard_direction": torch.tensor(
            [
                [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                [[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.6, 0.8, 0.0]],
            ]
        ),
        "hazard_distance": torch.tensor([[2.0, 0.0, 7.0], [1.5, 4.0, 3.0]]),
        "hazard_visibility": torch.tensor([[0, -1, 1], [2, 0, 1]]),
        "hazard_risk": torch.tensor([[3, 0, 1], [2, 2, 0]]),
        "hazard_action": torch.tensor([[2, 0, 1], [5, 0, 3]]),
    }


def _permuted(batch: dict[str, torch.Tensor], order: list[int]) -> dict[str, torch.Tensor]:
    return {name: value[:, order] for name, value in batch.items()}


def _perfect_output(batch: dict[str, torch.Tensor], order: list[int]) -> SimpleNamespace:
    """Slot k answers target slot order[k] exactly, with confident logits; empty targets give class 0."""
    target = _permuted(batch, order)
    big = 20.0
    return SimpleNamespace(
        class_logits=torch.nn.functional.one_hot(target["hazard_class"], NUM_CLASSES).float() * big,
        direction=torch.where(
            target["hazard_direction"].norm(dim=-1, keepdim=True) > 0,
            target["hazard_direction"],
            torch.tensor([0.0, 0.0, 1.0]),
        ),
        distance=torch.where(target["hazard_distance"] > 0, target["hazard_distance"], 1.0),
        confidence_logit=torch.where(target["hazard_class"] > 0, big, -big),
        risk_logits=torch.nn.functional.one_hot(target["hazard_risk"], 4).float() * big,
        action_logits=torch.nn.functional.one_hot(target["hazard_action"], 6).float() * big,
        visibility_logits=torch.nn.functional.one_hot(target["hazard_visibility"].clamp_min(0), 3).float()
        * big,
    )


def _matches(output: SimpleNamespace, batch: dict[str, torch.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``match_hazards`` of the output's slots against the batch's target hazards."""
    return match_hazards(
        output.class_logits,
        output.direction,
        output.distance,
        batch["hazard_class"],
        batch["hazard_direction"],
        batch["hazard_distance"],
    )


def test_matching_pairs_each_hazard_with_the_slot_that_answers_it():
    batch = _batch()
    output = _perfect_output(batch, order=[2, 0, 1])  # slot 0 answers target 2, slot 1 target 0, ...
    matches = _matches(output, batch)
    slots, targets = matches[0]
    # Sample 0's empty target slot 1 is not matched; slot 2 (answering it) stays unmatched.
    assert slots.tolist() == [0, 1] and targets.tolist() == [2, 0]
    slots, targets = matches[1]
    assert slots.tolist() == [0, 1, 2] and targets.tolist() == [2, 0, 1]


def test_matching_of_a_sample_without_hazards_is_empty():
    output = _output(batch=1)
    matches = match_hazards(
        output.class_logits,
        output.direction,
        output.distance,
        torch.zeros(1, SLOTS, dtype=torch.long),
        torch.zeros(1, SLOTS, 3),
        torch.zeros(1, SLOTS),
    )
    assert [len(m) for m in matches[0]] == [0, 0]


def test_a_perfect_prediction_in_any_slot_order_has_near_zero_loss():
    batch = _batch()
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        total, parts = hazard_set_loss(_perfect_output(batch, order), batch, SetLossConfig())
        assert total.item() < 1e-3, (order, parts)
        assert parts["matched"].item() == 5


@pytest.mark.parametrize("order", [[1, 2, 0], [2, 1, 0], [0, 2, 1]])
def test_the_loss_does_not_depend_on_the_order_of_the_target_slots(order):
    batch, output = _batch(), _output()
    config = SetLossConfig()
    total, parts = hazard_set_loss(output, batch, config)
    total_permuted, parts_permuted = hazard_set_loss(output, _permuted(batch, order), config)
    assert total_permuted.item() == pytest.approx(total.item(), rel=1e-6)
    for name in parts:
        assert parts_permuted[name].item() == pytest.approx(parts[name].item(), rel=1e-6, abs=1e-7)


def test_the_loss_does_not_depend_on_the_order_of_the_model_slots():
    batch, output = _batch(), _output()
    order = [2, 0, 1]
    permuted = SimpleNamespace(**{name: value[:, order] for name, value in vars(output).items()})
    total, _ = hazard_set_loss(output, batch, SetLossConfig())
    total_permuted, _ = hazard_set_loss(permuted, batch, SetLossConfig())
    assert total_permuted.item() == pytest.approx(total.item(), rel=1e-6)


def test_unmatched_slots_are_pushed_to_the_empty_class_with_the_empty_weight():
    # One sample, one hazard of class 2 answered perfectly by slot 0; slots 1, 2 are unmatched
    # with uniform class logits, so each costs log(N) in the class term, weighted empty_weight.
    batch = {name: value[:1] for name, value in _batch().items()}
    batch["hazard_class"] = torch.tensor([[2, 0, 0]])
    output = _perfect_output(batch, [0, 1, 2])
    output.class_logits = output.class_logits.clone()
    output.class_logits[0, 1:] = 0.0
    config = SetLossConfig(empty_weight=0.3)
    _, parts = hazard_set_loss(output, batch, config)
    expected = 0.3 * 2 * math.log(NUM_CLASSES) / (1.0 + 0.3 * 2)
    assert parts["class"].item() == pytest.approx(expected, rel=1e-4)
    _, parts_lighter = hazard_set_loss(output, batch, SetLossConfig(empty_weight=0.1))
    assert parts_lighter["class"].item() < parts["class"].item()


def test_confidence_target_is_matched_and_class_right():
    # Slot 0 is matched but predicts the wrong class: its confidence target is 0, so a
    # confident slot 0 costs more than an unconfident one.
    batch = {name: value[:1] for name, value in _batch().items()}
    output = _perfect_output(batch, [0, 1, 2])
    logits = output.class_logits.clone()
    logits[0, 0] = torch.nn.functional.one_hot(torch.tensor(1), NUM_CLASSES).float() * 20.0
    logits[0, 0, 2] = 19.0  # still matched to class 2 (cheapest), argmax is class 1
    output.class_logits = logits
    confident = output.confidence_logit.clone()
    confident[0, 0] = 20.0
    unconfident = confident.clone()
    unconfident[0, 0] = -20.0
    output.confidence_logit = confident
    _, high = hazard_set_loss(output, batch, SetLossConfig())
    output.confidence_logit = unconfident
    _, low = hazard_set_loss(output, batch, SetLossConfig())
    assert high["confidence"].item() > 1.0 > low["confidence"].item()


def test_the_loss_reaches_every_output_head_and_only_matched_geometry():
    batch, output = _batch(), _output()
    total, _ = hazard_set_loss(output, batch, SetLossConfig())
    total.backward()
    for name in ("class_logits", "confidence_logit", "risk_logits", "action_logits", "visibility_logits"):
        grad = getattr(output, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    matches = _matches(output, batch)
    unmatched = np.setdiff1d(np.arange(SLOTS), matches[0][0])
    assert len(unmatched) == 1  # sample 0 has two hazards for three slots
    slot = int(unmatched[0])  # a slot answering no hazard gets no direction/distance gradient
    assert output.direction.grad[0, slot].abs().sum() == 0
    assert output.distance.grad[0, slot] == 0
    assert output.direction.grad[1].abs().sum() > 0


def test_a_batch_without_any_hazard_gives_a_finite_loss_with_gradients():
    output = _output()
    batch = {name: torch.zeros_like(value) for name, value in _batch().items()}
    total, parts = hazard_set_loss(output, batch, SetLossConfig())
    total.backward()
    assert torch.isfinite(total) and parts["direction"].item() == 0.0
    assert output.class_logits.grad.abs().sum() > 0


def test_negative_weights_are_rejected():
    with pytest.raises(ValueError, match="empty_weight"):
        SetLossConfig(empty_weight=-0.1)


def test_the_steering_direction_is_trained_on_matched_slots_only():
    """The full model looks where its audio direction points: a wrong one costs, an absent one does not."""
    batch = _batch()
    perfect = _perfect_output(batch, [0, 1, 2])
    _, without = hazard_set_loss(perfect, batch, SetLossConfig())
    assert float(without["steering"]) == 0.0
    perfect.audio_direction = perfect.direction.clone()
    _, right = hazard_set_loss(perfect, batch, SetLossConfig())
    assert float(right["steering"]) == pytest.approx(0.0, abs=1e-6)
    wrong = perfect.direction.clone()
    wrong[0, 1] = torch.tensor([-1.0, 0.0, 0.0])  # the empty slot: not matched, costs nothing
    perfect.audio_direction = wrong
    _, empty_only = hazard_set_loss(perfect, batch, SetLossConfig())
    assert float(empty_only["steering"]) == pytest.approx(0.0, abs=1e-6)
    wrong[0, 0] = -wrong[0, 0]  # a matched slot pointing backwards: chord 2 over 5 matched slots
    _, turned = hazard_set_loss(perfect, batch, SetLossConfig(steering_weight=1.0))
    assert float(turned["steering"]) == pytest.approx(2.0 / 5.0, rel=1e-4)
