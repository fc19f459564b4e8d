"""The ``decision`` section of a training config (``task: decision``): model, scenarios, loss, test split.

It imports only the core, so ``training.config`` can hold it without an import cycle. The
window counts and seeds of the training and validation splits are ``data.train`` and
``data.val`` (``scenes`` = windows); ``test_windows`` / ``test_seed`` give the held-out split
that ``export/metrics.json`` reports after training, untouched by model selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from avi_ros.decision.model import DecisionModelConfig
from avi_ros.decision.scenarios import ScenarioConfig


@dataclass(frozen=True)
class DecisionLossConfig:
    """Loss = risk·CE(risk) + reason·CE(reason) + action·CE(action) + confidence·BCE(confidence).

    The first three weights are the SIM v0 contract's (1, 0.5, 1). Two additions, both
    switchable: ``risk_class_weights`` weigh the risk CE per true level (none, low, medium,
    high), making a missed HIGH cost more than a false alarm, since the contract selects and
    judges by high-risk recall (all ones is the plain CE); the confidence term (0 switches it off)
    teaches the confidence head whether the recommended action is right: its target is
    ``argmax(action) == action_id``, computed without gradient. Every term is a mean over the
    batch weighted by the samples' ``weight`` (and, for risk, by the class weights).
    """

    risk: float = 1.0
    reason: float = 0.5
    action: float = 1.0
    confidence: float = 0.1
    risk_class_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 3.0)

    def __post_init__(self) -> None:
        for name in ("risk", "reason", "action", "confidence"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected a loss weight >= 0, got {getattr(self, name)}")
        if min(self.risk_class_weights) <= 0:
            raise ValueError(f"risk_class_weights: expected 4 weights > 0, got {self.risk_class_weights}")


@dataclass(frozen=True)
class DecisionConfig:
    """What a ``task: decision`` run trains (see the module docstring)."""

    model: DecisionModelConfig = field(default_factory=DecisionModelConfig)
    scenarios: ScenarioConfig = field(default_factory=ScenarioConfig)
    loss: DecisionLossConfig = field(default_factory=DecisionLossConfig)
    test_windows: int = 4000
    test_seed: int = 3

    def __post_init__(self) -> None:
        if self.test_windows < 1 or self.test_seed < 0:
            raise ValueError(
                f"test_windows / test_seed: expected >= 1 and >= 0, got {self.test_windows}, {self.test_seed}"
            )
