"""The one reader of the model's output: ModelOutput (torch, batched) -> OutputArrays (numpy).

The node, the bag replay, training evaluation and calibration all turn the raw head outputs into
probabilities and decisions here, so a change to the head is made once. The arrays keep the raw
class and confidence logits because calibration rescales them; everything derived from the logits
(class probabilities, class id, confidence) is a property computed from them, in numpy float32:
- class probabilities: softmax of the class logits; class id: their argmax;
- confidence: sigmoid of the confidence logit, in [0, 1];
- risk level and recommended action: the argmax of the risk and action logits (RiskLevel and
  Action ids), taken on the model's device so only one id per sample leaves it.

Hazard-set models (HazardSetOutput) are read into ``HazardSetArrays`` [B, K, ...] the same way
(plus visibility ids and the occlusion each slot reads); ``.slot(k)`` gives one slot as
OutputArrays, so per-sample code serves each slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import torch

from avi_ros.models.hazard_set import HazardSetOutput
from avi_ros.models.imagination import ModelOutput


@dataclass(frozen=True, eq=False)
class OutputArrays:
    """Per-sample model outputs, numpy, first axis = sample.

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
        """[B, N] softmax of the class logits, float32."""
        logits = np.asarray(self.class_logits, dtype=np.float32)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    @property
    def class_id(self) -> np.ndarray:
        """[B] the most probable class (0 = none)."""
        return np.argmax(self.class_probabilities, axis=1)

    @cached_property
    def confidence(self) -> np.ndarray:
        """[B] sigmoid of the confidence logit, float32 in [0, 1] (tanh form: no overflow)."""
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(self.confidence_logit, dtype=np.float32)))

    def __len__(self) -> int:
        return len(self.class_logits)

    @classmethod
    def concatenate(cls, parts: Sequence[OutputArrays]) -> OutputArrays:
        """The outputs of several batches as one, in order."""
        if not parts:
            raise ValueError("OutputArrays.concatenate needs at least one part")
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def read_outputs(output: ModelOutput) -> OutputArrays:
    """The numpy arrays of one batched model forward (floats as float32, ids as int64)."""

    def floats(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().float().cpu().numpy()

    return OutputArrays(
        class_logits=floats(output.class_logits),
        direction=floats(output.direction),
        distance=floats(output.distance),
        confidence_logit=floats(output.confidence_logit),
        risk=output.risk_logits.detach().argmax(dim=-1).cpu().numpy(),
        action=output.action_logits.detach().argmax(dim=-1).cpu().numpy(),
        audio_weight=floats(output.audio_weight),
        visual_weight=floats(output.visual_weight),
    )


def _softmax_last(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float32)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass(frozen=True, eq=False)
class HazardSetArrays:
    """Per-slot model outputs, numpy, axes = (sample, slot).

    class_logits [B, K, N] (class 0 = empty slot) and confidence_logit [B, K] raw; direction
    [B, K, 3] unit vectors in the microphone frame; distance [B, K] in metres; risk, action and
    visibility [B, K] RiskLevel, Action and Visibility ids; audio_weight / visual_weight [B, K];
    hazard_occlusion [B, K] the blocked fraction read in the slot's direction (NaN: not read).
    """

    class_logits: np.ndarray
    direction: np.ndarray
    distance: np.ndarray
    confidence_logit: np.ndarray
    risk: np.ndarray
    action: np.ndarray
    visibility: np.ndarray
    audio_weight: np.ndarray
    visual_weight: np.ndarray
    hazard_occlusion: np.ndarray

    @cached_property
    def class_probabilities(self) -> np.ndarray:
        """[B, K, N] softmax of the class logits, float32."""
        return _softmax_last(self.class_logits)

    @property
    def class_id(self) -> np.ndarray:
        """[B, K] the most probable class per slot (0 = empty)."""
        return np.argmax(self.class_probabilities, axis=-1)

    @cached_property
    def confidence(self) -> np.ndarray:
        """[B, K] sigmoid of the confidence logit, float32 in [0, 1]."""
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(self.confidence_logit, dtype=np.float32)))

    @property
    def num_slots(self) -> int:
        return self.class_logits.shape[1]

    def __len__(self) -> int:
        return len(self.class_logits)

    def slot(self, k: int) -> OutputArrays:
        """Slot ``k`` of every sample as OutputArrays [B, ...] (without visibility and occlusion)."""
        return OutputArrays(**{f.name: getattr(self, f.name)[:, k] for f in fields(OutputArrays)})

    @classmethod
    def concatenate(cls, parts: Sequence[HazardSetArrays]) -> HazardSetArrays:
        """The outputs of several batches as one, in order."""
        if not parts:
            raise ValueError("HazardSetArrays.concatenate needs at least one part")
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def read_set_outputs(output: HazardSetOutput) -> HazardSetArrays:
    """The numpy arrays of one batched hazard-set forward (floats as float32, ids as int64)."""

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
