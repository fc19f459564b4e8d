"""The one reader of the model's output: HazardSetOutput (torch, batched) -> HazardSetArrays (numpy).

The node, the bag replay, training evaluation and calibration all turn the raw head outputs into
probabilities and decisions here, so a change to the head is made once. The arrays keep the raw
class and confidence logits because calibration rescales them; everything derived from the logits
(class probabilities, class id, confidence) is a property computed from them, in numpy float32:
- class probabilities: softmax of the class logits; class id: their argmax;
- confidence: sigmoid of the confidence logit, in [0, 1];
- risk level, recommended action and visibility: the argmax of their logits (RiskLevel, Action
  and Visibility ids), taken on the model's device so only one id per slot leaves it.

``HazardSetArrays`` holds every slot, axes (sample, slot); ``.slot(k)`` gives one slot as
``OutputArrays`` [B, ...], so per-sample code (the pipeline's estimate) serves each slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Self

import numpy as np
import torch

from avi_ros.models.hazard_set import HazardSetOutput


@dataclass(frozen=True, eq=False)
class OutputArrays:
    """One slot of every sample, numpy, first axis = sample (``HazardSetArrays.slot``); the
    probabilities, class ids and confidences derive from the logits whatever the leading axes.

    class_logits [B, N] and confidence_logit [B] raw (before softmax/sigmoid); direction [B, 3]
    unit vectors in the microphone frame; distance [B] in metres; risk [B] RiskLevel ids;
    action [B] Action ids; audio_weight/visual_weight [B], the reliance on each modality.
    """

    class_logits: np.ndarray
    direction: np.ndarray
    distance: np.ndarray
    confidence_logit: np.ndarray
    risk: np.ndarray
    action: np.ndarray
    audio_weight: np.ndarray
    visual_weight: np.ndarray

    @cached_property
    def class_probabilities(self) -> np.ndarray:
        """[..., N] softmax of the class logits, float32."""
        logits = np.asarray(self.class_logits, dtype=np.float32)
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)

    @property
    def class_id(self) -> np.ndarray:
        """[...] the most probable class (0 = none, an empty slot)."""
        return np.argmax(self.class_probabilities, axis=-1)

    @cached_property
    def confidence(self) -> np.ndarray:
        """[...] sigmoid of the confidence logit, float32 in [0, 1] (tanh form: no overflow)."""
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(self.confidence_logit, dtype=np.float32)))

    def __len__(self) -> int:
        return len(self.class_logits)

    @classmethod
    def concatenate(cls, parts: Sequence[Self]) -> Self:
        """The outputs of several batches as one, in order."""
        if not parts:
            raise ValueError(f"{cls.__name__}.concatenate needs at least one part")
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


@dataclass(frozen=True, eq=False)
class HazardSetArrays(OutputArrays):
    """Every slot of every sample, numpy, axes = (sample, slot): the fields of ``OutputArrays``
    with a slot axis ([B, K, ...]; class 0 = empty slot), plus visibility [B, K] Visibility ids and
    hazard_occlusion [B, K], the blocked fraction read in the slot's direction (NaN: not read).
    """

    visibility: np.ndarray
    hazard_occlusion: np.ndarray

    @property
    def num_slots(self) -> int:
        return self.class_logits.shape[1]

    def slot(self, k: int) -> OutputArrays:
        """Slot ``k`` of every sample as OutputArrays [B, ...] (without visibility and occlusion)."""
        return OutputArrays(**{f.name: getattr(self, f.name)[:, k] for f in fields(OutputArrays)})


def read_set_outputs(output: HazardSetOutput) -> HazardSetArrays:
    """The numpy arrays of one batched forward (floats as float32, ids as int64)."""

    def floats(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().float().cpu().numpy()

    def ids(logits: torch.Tensor) -> np.ndarray:
        return logits.detach().argmax(dim=-1).cpu().numpy()

    return HazardSetArrays(
        class_logits=floats(output.class_logits),
        direction=floats(output.direction),
        distance=floats(output.distance),
        confidence_logit=floats(output.confidence_logit),
        risk=ids(output.risk_logits),
        action=ids(output.action_logits),
        visibility=ids(output.visibility_logits),
        audio_weight=floats(output.audio_weight),
        visual_weight=floats(output.visual_weight),
        hazard_occlusion=floats(output.hazard_occlusion),
    )
