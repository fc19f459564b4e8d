"""The one reader of the model output: probabilities, confidence and decisions from raw logits."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from avi_ros.models import HazardSetArrays, HazardSetOutput, read_set_outputs

SLOTS = 2


def _output(batch: int, seed: int = 0) -> HazardSetOutput:
    gen = torch.Generator().manual_seed(seed)
    confidence = torch.tensor([-200.0, -1.0, 0.0, 3.0, 200.0])[:batch, None].expand(batch, SLOTS)
    return HazardSetOutput(
        class_logits=torch.randn(batch, SLOTS, 5, generator=gen) * 4,
        direction=torch.nn.functional.normalize(torch.randn(batch, SLOTS, 3, generator=gen), dim=-1),
        distance=torch.rand(batch, SLOTS, generator=gen) * 10,
        confidence_logit=confidence,
        risk_logits=torch.randn(batch, SLOTS, 4, generator=gen),
        action_logits=torch.randn(batch, SLOTS, 6, generator=gen),
        visibility_logits=torch.randn(batch, SLOTS, 3, generator=gen),
        audio_weight=torch.full((batch, SLOTS), 0.25),
        visual_weight=torch.full((batch, SLOTS), 0.75),
        hazard_occlusion=torch.full((batch, SLOTS), float("nan")),
    )


def test_reader_gives_the_softmax_sigmoid_and_argmax_of_the_logits() -> None:
    out = _output(5)
    arrays = read_set_outputs(out)
    np.testing.assert_allclose(
        arrays.class_probabilities, torch.softmax(out.class_logits, -1).numpy(), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(arrays.confidence, torch.sigmoid(out.confidence_logit).numpy(), atol=1e-7)
    assert arrays.confidence.dtype == np.float32 and arrays.class_probabilities.dtype == np.float32
    assert arrays.class_id.tolist() == out.class_logits.argmax(-1).tolist()
    assert arrays.risk.tolist() == out.risk_logits.argmax(-1).tolist()
    assert arrays.action.tolist() == out.action_logits.argmax(-1).tolist()
    assert arrays.visibility.tolist() == out.visibility_logits.argmax(-1).tolist()


def test_one_slot_reads_as_the_same_numbers_per_sample() -> None:
    arrays = read_set_outputs(_output(5))
    slot = arrays.slot(1)
    np.testing.assert_array_equal(slot.class_probabilities, arrays.class_probabilities[:, 1])
    np.testing.assert_array_equal(slot.class_id, arrays.class_id[:, 1])
    np.testing.assert_array_equal(slot.confidence, arrays.confidence[:, 1])
    np.testing.assert_array_equal(slot.direction, arrays.direction[:, 1])


def test_extreme_confidence_logits_saturate_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        confidence = read_set_outputs(_output(5)).confidence
    assert (confidence[0] == 0.0).all() and (confidence[-1] == 1.0).all()


def test_concatenated_batches_read_like_one_batch() -> None:
    first, second = read_set_outputs(_output(2, seed=1)), read_set_outputs(_output(3, seed=2))
    joined = HazardSetArrays.concatenate([first, second])
    assert len(joined) == 5
    np.testing.assert_array_equal(
        joined.class_probabilities, np.concatenate([first.class_probabilities, second.class_probabilities])
    )
    np.testing.assert_array_equal(joined.risk, np.concatenate([first.risk, second.risk]))
