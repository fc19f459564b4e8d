"""The loss of the hazard model: Hungarian matching, empty slots, permutation invariance, gradients,
the one-slot case; and the ADPIT loss of the SELD encoder's pre-training."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from training.losses import LossConfig, adpit_loss, direction_error, hazard_loss, masked_mean, match_hazards

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
        total, parts = hazard_loss(_perfect_output(batch, order), batch, LossConfig())
        assert total.item() < 1e-3, (order, parts)
        assert parts["matched"].item() == 5


@pytest.mark.parametrize("order", [[1, 2, 0], [2, 1, 0], [0, 2, 1]])
def test_the_loss_does_not_depend_on_the_order_of_the_target_slots(order):
    batch, output = _batch(), _output()
    config = LossConfig()
    total, parts = hazard_loss(output, batch, config)
    total_permuted, parts_permuted = hazard_loss(output, _permuted(batch, order), config)
    assert total_permuted.item() == pytest.approx(total.item(), rel=1e-6)
    for name in parts:
        assert parts_permuted[name].item() == pytest.approx(parts[name].item(), rel=1e-6, abs=1e-7)


def test_the_loss_does_not_depend_on_the_order_of_the_model_slots():
    batch, output = _batch(), _output()
    order = [2, 0, 1]
    permuted = SimpleNamespace(**{name: value[:, order] for name, value in vars(output).items()})
    total, _ = hazard_loss(output, batch, LossConfig())
    total_permuted, _ = hazard_loss(permuted, batch, LossConfig())
    assert total_permuted.item() == pytest.approx(total.item(), rel=1e-6)


def test_unmatched_slots_are_pushed_to_the_empty_class_with_the_empty_weight():
    # One sample, one hazard of class 2 answered perfectly by slot 0; slots 1, 2 are unmatched
    # with uniform class logits, so each costs log(N) in the class term, weighted empty_weight.
    batch = {name: value[:1] for name, value in _batch().items()}
    batch["hazard_class"] = torch.tensor([[2, 0, 0]])
    output = _perfect_output(batch, [0, 1, 2])
    output.class_logits = output.class_logits.clone()
    output.class_logits[0, 1:] = 0.0
    config = LossConfig(empty_weight=0.3)
    _, parts = hazard_loss(output, batch, config)
    expected = 0.3 * 2 * math.log(NUM_CLASSES) / (1.0 + 0.3 * 2)
    assert parts["class"].item() == pytest.approx(expected, rel=1e-4)
    _, parts_lighter = hazard_loss(output, batch, LossConfig(empty_weight=0.1))
    assert parts_lighter["class"].item() < parts["class"].item()


def test_confidence_target_is_a_hazard_there_whatever_its_class():
    # Slot 0 is matched but predicts the wrong class: its confidence target is still 1 (a hazard
    # is there; the class probabilities say which), so an unconfident slot 0 costs more than a
    # confident one.
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
    _, high = hazard_loss(output, batch, LossConfig())
    output.confidence_logit = unconfident
    _, low = hazard_loss(output, batch, LossConfig())
    assert low["confidence"].item() > 1.0 > high["confidence"].item()


def test_the_loss_reaches_every_output_head_and_only_matched_geometry():
    batch, output = _batch(), _output()
    total, _ = hazard_loss(output, batch, LossConfig())
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
    total, parts = hazard_loss(output, batch, LossConfig())
    total.backward()
    assert torch.isfinite(total) and parts["direction"].item() == 0.0
    assert output.class_logits.grad.abs().sum() > 0


def test_negative_weights_are_rejected():
    with pytest.raises(ValueError, match="empty_weight"):
        LossConfig(empty_weight=-0.1)


def test_the_steering_direction_is_trained_on_matched_slots_only():
    """The full model looks where its audio direction points: a wrong one costs, an absent one does not."""
    batch = _batch()
    perfect = _perfect_output(batch, [0, 1, 2])
    _, without = hazard_loss(perfect, batch, LossConfig())
    assert float(without["steering"]) == 0.0
    perfect.audio_direction = perfect.direction.clone()
    _, right = hazard_loss(perfect, batch, LossConfig())
    assert float(right["steering"]) == pytest.approx(0.0, abs=1e-6)
    wrong = perfect.direction.clone()
    wrong[0, 1] = torch.tensor([-1.0, 0.0, 0.0])  # the empty slot: not matched, costs nothing
    perfect.audio_direction = wrong
    _, empty_only = hazard_loss(perfect, batch, LossConfig())
    assert float(empty_only["steering"]) == pytest.approx(0.0, abs=1e-6)
    wrong[0, 0] = -wrong[0, 0]  # a matched slot pointing backwards: chord 2 over 5 matched slots
    _, turned = hazard_loss(perfect, batch, LossConfig(steering_weight=1.0))
    assert float(turned["steering"]) == pytest.approx(2.0 / 5.0, rel=1e-4)


# --- one slot (K = 1): a frame without a hazard carries no geometric target -----------------


def _one_slot(direction: list[list[float]], distance: list[float]) -> SimpleNamespace:
    """A one-slot output of ``len(direction)`` frames, confident in class 1; its geometry requires grad."""
    frames = len(direction)
    return SimpleNamespace(
        class_logits=torch.nn.functional.one_hot(torch.ones(frames, 1, dtype=torch.long), NUM_CLASSES) * 9.0,
        direction=torch.tensor(direction).reshape(frames, 1, 3).requires_grad_(),
        distance=torch.tensor(distance).reshape(frames, 1).requires_grad_(),
        confidence_logit=torch.zeros(frames, 1),
        risk_logits=torch.zeros(frames, 1, 4),
        action_logits=torch.zeros(frames, 1, 6),
        visibility_logits=torch.zeros(frames, 1, 3),
    )


def _one_hazard(classes: list[int], direction: list[list[float]], distance: list[float]) -> dict:
    frames = len(classes)
    return {
        "hazard_class": torch.tensor(classes).reshape(frames, 1),
        "hazard_direction": torch.tensor(direction).reshape(frames, 1, 3),
        "hazard_distance": torch.tensor(distance).reshape(frames, 1),
        "hazard_visibility": torch.zeros(frames, 1, dtype=torch.long),
        "hazard_risk": torch.zeros(frames, 1, dtype=torch.long),
        "hazard_action": torch.zeros(frames, 1, dtype=torch.long),
    }


def test_one_slot_without_a_hazard_gets_no_direction_or_distance_gradient():
    # Frame 0 has no hazard and a wildly wrong direction and distance; frame 1 has one.
    output = _one_slot(direction=[[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], distance=[50.0, 2.0])
    batch = _one_hazard([0, 1], direction=[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], distance=[0.0, 4.0])
    total, terms = hazard_loss(output, batch, LossConfig())
    total.backward()
    assert output.direction.grad[0].abs().sum() == 0 and output.distance.grad[0] == 0
    assert output.direction.grad[1].abs().sum() > 0
    # Only frame 1 counts: 90 deg off -> chord = 2 sin(45 deg) = sqrt 2; |log 2 - log 4| = log 2.
    assert terms["direction"].item() == pytest.approx(math.sqrt(2.0), abs=1e-6)
    assert terms["distance"].item() == pytest.approx(math.log(2.0), abs=1e-6)


def test_the_weights_come_from_the_config():
    output = _one_slot(direction=[[0.0, 1.0, 0.0]], distance=[2.0])
    batch = _one_hazard([1], direction=[[1.0, 0.0, 0.0]], distance=[2.0])
    zero = {name: 0.0 for name in ("class_weight", "confidence_weight", "risk_weight", "action_weight")}
    only_direction = LossConfig(**zero, direction_weight=2.0, visibility_weight=0.0)
    total, _ = hazard_loss(output, batch, only_direction)
    assert total.item() == pytest.approx(2.0 * math.sqrt(2.0), abs=1e-6)  # 2 * chord(90 deg) + 0 distance


def test_masked_mean_ignores_masked_values():
    values = torch.tensor([1.0, 100.0, 3.0])
    assert masked_mean(values, torch.tensor([True, False, True])).item() == pytest.approx(2.0)
    assert masked_mean(values, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_direction_error_is_the_chord_and_keeps_its_gradient_near_zero():
    angle = math.radians(2.0)
    target = torch.tensor([[1.0, 0.0, 0.0]])
    predicted = torch.tensor([[math.cos(angle), math.sin(angle), 0.0]], requires_grad=True)
    error = direction_error(predicted, target)
    assert error.item() == pytest.approx(2 * math.sin(angle / 2), rel=1e-5)
    error.sum().backward()
    assert predicted.grad.norm().item() == pytest.approx(1.0, rel=1e-2)  # ~unit slope, unlike 1 - cos


# --- ADPIT (multi-ACCDOA) --------------------------------------------------------------------


def _accdoa(tracks: dict[tuple[int, int], list[float]], frames: int = 1, classes: int = 2) -> torch.Tensor:
    """[1, frames, 3 tracks, 3, classes] with the given (track, class) -> xyz vectors."""
    out = torch.zeros(1, frames, 3, 3, classes)
    for (track, c), xyz in tracks.items():
        out[0, :, track, :, c] = torch.tensor(xyz)
    return out


def test_adpit_ignores_track_order_of_two_sources():
    target = _accdoa({(0, 1): [1.0, 0, 0], (1, 1): [0, 1.0, 0]})
    # Sources on tracks (1, 2) and the first one duplicated on track 0: a valid assignment.
    output = _accdoa({(0, 1): [0, 1.0, 0], (1, 1): [0, 1.0, 0], (2, 1): [1.0, 0, 0]})
    assert adpit_loss(output, target).item() == pytest.approx(0.0)
    # Not using the second source at all is not a valid assignment and costs.
    lazy = _accdoa({(0, 1): [1.0, 0, 0], (1, 1): [1.0, 0, 0], (2, 1): [1.0, 0, 0]})
    assert adpit_loss(lazy, target).item() > 0.0


def test_adpit_single_source_wants_every_track_and_silence_wants_zeros():
    target = _accdoa({(0, 0): [0, 0, 1.0]})
    assert adpit_loss(_accdoa({(t, 0): [0, 0, 1.0] for t in range(3)}), target).item() == pytest.approx(0.0)
    # Only one track right: the two others miss a unit vector: 2 tracks * 1 / (3 tracks * 3 xyz) / 2 classes.
    assert adpit_loss(_accdoa({(0, 0): [0, 0, 1.0]}), target).item() == pytest.approx(2 / 9 / 2)
    # Class 1 is silent: any output on it is penalised.
    noisy = _accdoa({**{(t, 0): [0, 0, 1.0] for t in range(3)}, (0, 1): [0.3, 0, 0]})
    assert adpit_loss(noisy, target).item() == pytest.approx(0.09 / 9 / 2)
