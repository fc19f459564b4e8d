"""Run the decision stage: a window of frames + telemetry -> an ``Assessment`` with readable JSON.

``DecisionStage`` holds a loaded decision model and the window of the last F frame features.
Per frame the caller pushes the pipeline's best estimate with the frame's stamp (the window places
frames by their stamps, ``features.FeatureWindow``) and asks for the assessment at that stamp with
the telemetry reading aligned to it::

    stage = DecisionStage.from_checkpoint("runs/decision/checkpoints/best")
    assessment = stage.step(result.top, telemetry.reading(frame.stamp_ns), frame.stamp_ns)
    print(json.dumps(assessment.to_json()))

``read_decision_output`` is the one place model logits become probabilities and labels; the
training evaluation reads them through it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avi_ros.decision.checkpoint import DecisionMetadata, load_decision_checkpoint
from avi_ros.decision.features import FeatureWindow, frame_feature
from avi_ros.decision.labels import ACTION_NAMES, REASON_NAMES, RISK_NAMES, Reason, reason_of_class
from avi_ros.decision.model import DecisionModel, DecisionOutput
from avi_ros.device import resolve_device
from avi_ros.taxonomy import Action, RiskLevel
from avi_ros.telemetry import TelemetryReading
from avi_ros.types import HazardEstimateData


def risk_labels(probabilities: np.ndarray, high_risk_threshold: float | None = None) -> np.ndarray:
    """Risk levels [N] from risk probabilities [N, 4]: HIGH wherever P(HIGH) >= ``high_risk_threshold``,
    else the most probable of the other levels; the most probable level when the threshold is None.

    Why a threshold of its own: a missed HIGH risk costs far more than a false one, and the classes
    are not balanced, so the argmax misses HIGH-risk windows the model gives a fair chance (the
    training run picks the threshold on its validation split: ``training.decision_task``)."""
    if high_risk_threshold is None:
        return probabilities.argmax(axis=1)
    others = probabilities[:, : RiskLevel.HIGH].argmax(axis=1)
    return np.where(probabilities[:, RiskLevel.HIGH] >= high_risk_threshold, int(RiskLevel.HIGH), others)


ARRAY_FIELDS = ("risk_probabilities", "reason_probabilities", "action_probabilities", "confidence")


@dataclass(frozen=True)
class DecisionArrays:
    """A batch of decisions as numpy: probabilities [N, n] per head, labels [N], confidence [N] (0..1);
    ``high_risk_threshold``: the operating point of HIGH risk (``risk_labels``), None for the argmax."""

    risk_probabilities: np.ndarray
    reason_probabilities: np.ndarray
    action_probabilities: np.ndarray
    confidence: np.ndarray
    high_risk_threshold: float | None = None

    @property
    def risk(self) -> np.ndarray:
        return risk_labels(self.risk_probabilities, self.high_risk_threshold)

    def rows(self, mask: np.ndarray) -> DecisionArrays:
        """The decisions at ``mask`` (a boolean or index array over N), at the same operating point."""
        fields = (getattr(self, name)[mask] for name in ARRAY_FIELDS)
        return DecisionArrays(*fields, self.high_risk_threshold)

    @property
    def reason(self) -> np.ndarray:
        return self.reason_probabilities.argmax(axis=1)

    @property
    def action(self) -> np.ndarray:
        return self.action_probabilities.argmax(axis=1)


def concatenate_decisions(
    parts: Sequence[DecisionArrays], high_risk_threshold: float | None = None
) -> DecisionArrays:
    """The batches ``parts`` as one ``DecisionArrays``, read at ``high_risk_threshold``."""
    return DecisionArrays(
        *(np.concatenate([getattr(p, name) for p in parts]) for name in ARRAY_FIELDS),
        high_risk_threshold,
    )


def read_decision_output(output: DecisionOutput, high_risk_threshold: float | None = None) -> DecisionArrays:
    """Softmax of each head and sigmoid of the confidence, as float32 numpy on the CPU, read at the
    checkpoint's HIGH-risk operating point (``DecisionMetadata.high_risk_threshold``)."""

    def probabilities(logits: torch.Tensor) -> np.ndarray:
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()

    return DecisionArrays(
        probabilities(output.risk),
        probabilities(output.reason),
        probabilities(output.action),
        torch.sigmoid(output.confidence.float()).cpu().numpy(),
        high_risk_threshold,
    )


@dataclass(frozen=True)
class Assessment:
    """One frame's decision. Probabilities per label (in the order of the label maps), confidence 0..1."""

    risk: RiskLevel
    reason: Reason
    action: Action
    confidence: float
    risk_probabilities: np.ndarray
    reason_probabilities: np.ndarray
    action_probabilities: np.ndarray
    telemetry_missing: bool
    stamp_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        """Readable JSON: names with their probabilities, the confidence and the telemetry flag."""

        def head(names: Sequence[str], value: int, probabilities: np.ndarray) -> dict[str, Any]:
            return {
                "id": int(value),
                "name": names[int(value)],
                "probabilities": {n: round(float(p), 4) for n, p in zip(names, probabilities, strict=True)},
            }

        return {
            "stamp_ns": int(self.stamp_ns),
            "risk": head(RISK_NAMES, self.risk, self.risk_probabilities),
            "reason": head(REASON_NAMES, self.reason, self.reason_probabilities),
            "action": head(ACTION_NAMES, self.action, self.action_probabilities),
            "confidence": round(float(self.confidence), 4),
            "telemetry_missing": bool(self.telemetry_missing),
        }


def assessments(
    arrays: DecisionArrays, telemetry_missing: Sequence[bool], stamps_ns: Sequence[int]
) -> list[Assessment]:
    """One ``Assessment`` per row of ``arrays``."""
    risk, reason, action = arrays.risk, arrays.reason, arrays.action
    return [
        Assessment(
            risk=RiskLevel(int(risk[i])),
            reason=Reason(int(reason[i])),
            action=Action(int(action[i])),
            confidence=float(arrays.confidence[i]),
            risk_probabilities=arrays.risk_probabilities[i],
            reason_probabilities=arrays.reason_probabilities[i],
            action_probabilities=arrays.action_probabilities[i],
            telemetry_missing=bool(telemetry_missing[i]),
            stamp_ns=int(stamps_ns[i]),
        )
        for i in range(len(risk))
    ]


def driving_hazards(hazards: Sequence[HazardEstimateData], assessment: Assessment) -> list[int]:
    """Indices of the ``hazards`` (one frame's published estimates) whose class gives the assessment's
    reason: the hazards that drive it. Empty for no risk, ``tight_space`` and ``unknown``."""
    if assessment.risk == RiskLevel.NONE or assessment.reason in (Reason.TIGHT_SPACE, Reason.UNKNOWN):
        return []
    return [i for i, h in enumerate(hazards) if reason_of_class(h.class_name) == assessment.reason]


class DecisionStage:
    """A loaded decision model plus the window of the last F frame features (module docstring)."""

    def __init__(
        self, model: DecisionModel, metadata: DecisionMetadata, device: str | torch.device = "cpu"
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.metadata = metadata
        self.window = FeatureWindow(model.config.frames, model.feature_size, model.config.frame_period_s)

    @classmethod
    def from_checkpoint(cls, directory: str | Path, device: str | torch.device = "cpu") -> DecisionStage:
        model, metadata = load_decision_checkpoint(directory, "cpu")
        return cls(model, metadata, device)

    def push(self, estimate: HazardEstimateData, stamp_ns: int) -> None:
        """Add one frame's best hazard estimate (``PipelineResult.top``) at its stamp [ns] to the window."""
        if len(estimate.class_probabilities) != self.metadata.taxonomy.num_classes:
            raise ValueError(
                f"estimate has {len(estimate.class_probabilities)} class probabilities, the decision model "
                f"was trained on {self.metadata.taxonomy.num_classes} ({self.metadata.taxonomy.names})"
            )
        self.window.push(frame_feature(estimate), stamp_ns)

    def assess(self, telemetry: TelemetryReading, stamp_ns: int) -> Assessment:
        """The assessment of the window at ``stamp_ns`` with ``telemetry`` aligned to it."""
        return self.predict(
            self.window.window(stamp_ns)[None], telemetry.vector[None], [telemetry.missing], [stamp_ns]
        )[0]

    def step(self, estimate: HazardEstimateData, telemetry: TelemetryReading, stamp_ns: int) -> Assessment:
        """``push`` then ``assess`` at the frame's stamp: what the node calls once per frame."""
        self.push(estimate, stamp_ns)
        return self.assess(telemetry, stamp_ns)

    def predict(
        self,
        features: np.ndarray,
        telemetry: np.ndarray,
        telemetry_missing: Sequence[bool],
        stamps_ns: Sequence[int],
    ) -> list[Assessment]:
        """Batched: features [B, F, dv], telemetry [B, 8] -> B assessments."""
        with torch.inference_mode():
            output = self.model(
                torch.as_tensor(features, dtype=torch.float32, device=self.device),
                torch.as_tensor(telemetry, dtype=torch.float32, device=self.device),
            )
        return assessments(
            read_decision_output(output, self.metadata.high_risk_threshold), telemetry_missing, stamps_ns
        )

    def reset(self) -> None:
        """Forget the window (the clock jumped back, or the node deactivates)."""
        self.window.reset()
