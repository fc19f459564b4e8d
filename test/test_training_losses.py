"""The multi-task loss: the direction/distance term only sees non-background samples."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from training.losses import LossConfig, Targets, imagination_loss, masked_mean


def _output(direction, distance, class_logits=None, confidence=None):
    batch = len(direction)
    confidence = torch.full((batch,), 0.5) if confidence is None else confidence
    return SimpleNamespace(
        class_logits=torch.zeros(batch, 3) if class_logits is None else class_logits,
        direction=torch.tensor(direction, dtype=torch.float32, requires_grad=True),
        distance=torch.tensor(distance, dtype=torch.float32, requires_grad=True),
        confidence_logit=torch.logit(confidence),
        risk_logits=torch.zeros(batch, 4),
        action_logits=torch.zeros(batch, 6),
    )


def _targets(class_id, direction, distance):
    batch = len(class_id)
    return Targets(
        class_id=torch.tensor(class_id),
        direction=torch.tensor(direction, dtype=torch.float32),
        distance=torch.tensor(distance, dtype=torch.float32),
        risk=torch.zeros(batch, dtype=torch.long),
        action=torch.zeros(batch, dtype=torch.long),
    )


def test_background_samples_get_no_direction_or_distance_gradient():
    # Sample 0 is background with a wildly wrong direction and distance; sample 1 is a source.
    output = _output(direction=[[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], distance=[50.0, 2.0])
    targets = _targets([0, 2], direction=[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], distance=[1.0, 4.0])
    total, terms = imagination_loss(output, targets, LossConfig())
    total.backward()
    assert torch.all(output.direction.grad[0] == 0)
    assert output.distance.grad[0] == 0
    assert output.direction.grad[1].abs().sum() > 0
    # Only the source counts: 90 deg off -> chord = 2 sin(45 deg) = sqrt 2; |log 2 - log 4| = log 2.
    assert terms["direction"].item() == pytest.approx(math.sqrt(2.0), abs=1e-6)
    assert terms["distance"].item() == pytest.approx(math.log(2.0), abs=1e-6)


def test_all_background_batch_has_zero_geometric_term_and_finite_loss():
    output = _output(direction=[[0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], distance=[3.0, 9.0])
    targets = _targets([0, 0], direction=[[1.0, 0.0, 0.0]] * 2, distance=[1.0, 1.0])
    total, terms = imagination_loss(output, targets, LossConfig())
    assert terms["direction"].item() == 0.0 and terms["distance"].item() == 0.0
    assert torch.isfinite(total)


def test_weights_come_from_the_config():
    output = _output(direction=[[0.0, 1.0, 0.0]], distance=[2.0])
    targets = _targets([1], direction=[[1.0, 0.0, 0.0]], distance=[2.0])
    only_beta = LossConfig(class_weight=0.0, beta=2.0, gamma=0.0, risk_weight=0.0, action_weight=0.0)
    total, _ = imagination_loss(output, targets, only_beta)
    assert total.item() == pytest.approx(2.0 * math.sqrt(2.0), abs=1e-6)  # beta * chord(90 deg) + 0 distance


def test_confidence_target_is_whether_the_class_is_right():
    logits = torch.tensor([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0]])  # predicts class 0 for both
    confidence = torch.tensor([0.9, 0.9])
    output = _output([[1.0, 0, 0]] * 2, [1.0, 1.0], class_logits=logits, confidence=confidence)
    targets = _targets([0, 1], direction=[[1.0, 0, 0]] * 2, distance=[1.0, 1.0])
    _, terms = imagination_loss(output, targets, LossConfig())
    expected = -(math.log(0.9) + math.log(0.1)) / 2  # right -> target 1, wrong -> target 0
    assert terms["confidence"].item() == pytest.approx(expected, rel=1e-5)


def test_masked_mean_ignores_masked_values():
    values = torch.tensor([1.0, 100.0, 3.0])
    assert masked_mean(values, torch.tensor([True, False, True])).item() == pytest.approx(2.0)


def test_invalid_weight_is_rejected():
    with pytest.raises(ValueError, match="beta"):
        LossConfig(beta=-1.0)


# --- ADPIT (multi-ACCDOA) --------------------------------------------------------------------

from training.losses import adpit_loss  # noqa: E402


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


def test_direction_error_is_the_chord_and_keeps_its_gradient_near_zero():
    from training.losses import direction_error

    angle = math.radians(2.0)
    target = torch.tensor([[1.0, 0.0, 0.0]])
    predicted = torch.tensor([[math.cos(angle), math.sin(angle), 0.0]], requires_grad=True)
    error = direction_error(predicted, target)
    assert error.item() == pytest.approx(2 * math.sin(angle / 2), rel=1e-5)
    error.sum().backward()
    assert predicted.grad.norm().item() == pytest.approx(1.0, rel=1e-2)  # ~unit slope, unlike 1 - cos
