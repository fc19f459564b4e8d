"""The one reader of the model's output: ModelOutput (torch, batched) -> OutputArrays (numpy).

The node, the bag replay, training evaluation and calibration all turn the raw head outputs into
probabilities and decisions here, so a change to the head is made once. The arrays keep the raw
class and confidence logits because calibration rescales them; everything derived from the logits
(class probabilities, class id, confidence) is a property computed from them, in numpy float32:
- class probabilities: softmax of the class logits; class id: their argmax;
- confidence: sigmoid of the confidence logit, in [0, 1];
- risk level and recommended action: the argmax of the risk and action logits (RiskLevel and
  Action ids), taken on the model's device so only one id per sample leaves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import torch

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
