"""Metrics of the decision stage (SIM v0 contract): accumulate per batch, then compute.

Scalars (logged per epoch to ``metrics/val.jsonl``; the names are the contract's):

- ``risk_high_recall``: share of truly HIGH-risk windows predicted HIGH;
- ``risk_high_fn_rate``: the share of truly HIGH-risk windows predicted lower, 1 - recall;
- ``risk_high_precision``: share of HIGH predictions that are HIGH (the price of the recall);
- ``risk_accuracy``, ``risk_macro_f1``, ``reason_accuracy``, ``action_accuracy``,
  ``action_macro_f1`` (macro F1 over the labels present in truth or prediction, as in
  ``training.metrics``);
- ``mean_confidence``.

A scalar is None where it is undefined (no HIGH-risk window, say). ``compute(groups=...)`` also
gives them per group (e.g. per scenario) in the nested metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avi_ros.decision.inference import DecisionArrays
from avi_ros.decision.labels import ACTION_NAMES, REASON_NAMES, RISK_NAMES
from avi_ros.decision.rules import LabelRules, rules_from_feature
from avi_ros.scoring import accuracy
from avi_ros.taxonomy import RiskLevel, Taxonomy
from avi_ros.telemetry import TELEMETRY_FIELDS
from training.metrics import confusion_matrix, high_risk_recall, macro_f1

LABELS = ("risk", "reason", "action")


def decision_scalars(
    truth: dict[str, np.ndarray], predicted: dict[str, np.ndarray], confidence: np.ndarray
) -> dict[str, float | None]:
    """The scalars of the module docstring for aligned label arrays (``LABELS`` keys); None where
    undefined (no HIGH-risk window, no HIGH prediction, no sample)."""
    risk_true, risk_pred = truth["risk"], predicted["risk"]
    recall = high_risk_recall(risk_true, risk_pred)
    predicted_high = risk_pred == int(RiskLevel.HIGH)
    precision = (
        float(np.mean(risk_true[predicted_high] == int(RiskLevel.HIGH))) if predicted_high.any() else None
    )
    return {
        "risk_high_recall": recall,
        "risk_high_fn_rate": 1.0 - recall if recall is not None else None,
        "risk_high_precision": precision,
        "risk_accuracy": accuracy(risk_true, risk_pred),
        "risk_macro_f1": macro_f1(risk_true, risk_pred, len(RISK_NAMES)),
        "reason_accuracy": accuracy(truth["reason"], predicted["reason"]),
        "action_accuracy": accuracy(truth["action"], predicted["action"]),
        "action_macro_f1": macro_f1(truth["action"], predicted["action"], len(ACTION_NAMES)),
        "mean_confidence": float(np.mean(confidence)) if len(confidence) else None,
    }


class DecisionAccumulator:
    """Collects labels and predictions batch by batch (``update``), then computes (``compute``)."""

    def __init__(self) -> None:
        self._truth: dict[str, list[np.ndarray]] = {name: [] for name in LABELS}
        self._predicted: dict[str, list[np.ndarray]] = {name: [] for name in LABELS}
        self._confidence: list[np.ndarray] = []

    def update(self, arrays: DecisionArrays, truth: dict[str, np.ndarray]) -> None:
        for name in LABELS:
            self._truth[name].append(np.asarray(truth[name], dtype=np.int64))
            self._predicted[name].append(getattr(arrays, name))
        self._confidence.append(arrays.confidence)

    def compute(self, groups: np.ndarray | None = None, group_names: Sequence[str] = ()) -> dict[str, Any]:
        """{"scalars", "confusion": {label: [[...]]}, "groups": {name: scalars}} (groups by index)."""
        truth = {name: np.concatenate(parts) for name, parts in self._truth.items()}
        predicted = {name: np.concatenate(parts) for name, parts in self._predicted.items()}
        confidence = np.concatenate(self._confidence)
        sizes = {"risk": len(RISK_NAMES), "reason": len(REASON_NAMES), "action": len(ACTION_NAMES)}
        result: dict[str, Any] = {
            "samples": len(confidence),
            "scalars": decision_scalars(truth, predicted, confidence),
            "confusion": {
                name: confusion_matrix(truth[name], predicted[name], sizes[name]).tolist() for name in LABELS
            },
        }
        if groups is not None:
            result["groups"] = {}
            for index, name in enumerate(group_names):
                mask = groups == index
                if mask.any():
                    result["groups"][name] = {
                        "samples": int(mask.sum()),
                        **decision_scalars(
                            {k: v[mask] for k, v in truth.items()},
                            {k: v[mask] for k, v in predicted.items()},
                            confidence[mask],
                        ),
                    }
        return result


def fit_high_risk_threshold(
    high_probability: np.ndarray, risk_true: np.ndarray, target_recall: float
) -> float | None:
    """The largest P(HIGH) threshold at which at least ``target_recall`` of the truly HIGH-risk
    windows are called HIGH (``inference.risk_labels``): the operating point that misses the fewest
    HIGH risks the target allows while raising the fewest false ones. None without a HIGH window.

    ``high_probability`` [N]: P(HIGH) per window; ``risk_true`` [N]: the true risk levels."""
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall: expected in (0, 1], got {target_recall}")
    scores = np.sort(
        np.asarray(high_probability, dtype=np.float64)[np.asarray(risk_true) == int(RiskLevel.HIGH)]
    )
    if len(scores) == 0:
        return None
    must_call = int(np.ceil(target_recall * len(scores) - 1e-9))  # windows that must reach the threshold
    return float(scores[len(scores) - must_call])


def rules_arrays(
    features: np.ndarray,
    telemetry: np.ndarray,
    taxonomy: Taxonomy,
    confidence_threshold: float = 0.5,
    rules: LabelRules | None = None,
) -> DecisionArrays:
    """The rules baseline (``rules.rules_from_feature``) on windows [N, F, dv] with telemetry
    [N, 8]: the newest frame's estimate and the odometry's speed, as one-hot "probabilities"
    (confidence 1), so the baseline goes through the same ``DecisionAccumulator``."""
    speed_index = TELEMETRY_FIELDS.index("v")
    decisions = [
        rules_from_feature(window[-1], float(reading[speed_index]), taxonomy, confidence_threshold, rules)
        for window, reading in zip(features, telemetry, strict=True)
    ]

    def one_hot(values: list[int], size: int) -> np.ndarray:
        return np.eye(size, dtype=np.float32)[np.asarray(values, dtype=np.int64)].reshape(-1, size)

    return DecisionArrays(
        one_hot([int(d.risk) for d in decisions], len(RISK_NAMES)),
        one_hot([int(d.reason) for d in decisions], len(REASON_NAMES)),
        one_hot([int(d.action) for d in decisions], len(ACTION_NAMES)),
        np.ones(len(decisions), dtype=np.float32),
    )
