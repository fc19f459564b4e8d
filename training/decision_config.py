"""The ``decision`` section of a training config (``task: decision``): data source, model, loss, test split.

It imports only the core, so ``training.config`` can hold it without an import cycle.

``source`` says where the windows come from:

- ``pipeline``: rendered scenario runs through the real pipeline with a hazard model
  (``training/decision_data.py``; ``pipeline`` below). ``data.train`` / ``data.val`` give the
  number of scenario runs (``scenes``) and their seeds, ``pipeline.test_scenes`` and
  ``test_seed`` the held-out runs; the per-frame outputs are cached under ``data.cache_dir``;
- ``simulated``: the kinematic estimate simulator (``avi_ros.decision.scenarios``, the ablation):
  ``data.train`` / ``data.val`` give window counts, ``test_windows`` / ``test_seed`` the
  held-out split.

Either way the held-out split is what ``export/metrics.json`` reports after training, untouched
by model selection.
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
class PipelineDataConfig:
    """Scenario runs through the pipeline (``training/decision_data.py``); units beside each.

    Only the rendering keys and the model's weights are in the cache fingerprint; the replay
    keys (``replays`` .. ``telemetry_dropout``) shape the windows made from the cached frames.
    """

    model_path: str | None = None  # hazard checkpoint directory; None: the model shipped with the package
    test_scenes: int = 24  # held-out scenario runs (seed ``decision.test_seed``)
    duration_s: float = 6.0  # length of a scenario run [s]
    camera_rate_hz: float = 15.0  # the demo camera's rate [Hz]
    width: int = 128  # camera image [px]
    height: int = 96
    knot_s: float = 0.1  # room-response update period along the motion [s]
    sound_dir: str | None = "~/.cache/avi_ros/sounds/bank"  # bank root (val/ for training runs, test/
    # for held-out runs); procedural sounds where it is missing
    device: str = "cpu"  # where the pipeline runs while generating
    batch: int = 16  # frames per model forward while generating
    replays: int = 4  # skip patterns per training run (each a different busy node)
    eval_replays: int = 2  # skip patterns per validation / test run
    processing_s: tuple[float, float] = (0.03, 0.10)  # median inference time of a replay's node [s]
    processing_spread: float = 0.35  # log-normal sigma of the inference time frame to frame
    telemetry_dropout: float = 0.05  # training replays without telemetry (zeros + flag)

    def __post_init__(self) -> None:
        for name in ("test_scenes", "width", "height", "batch", "replays", "eval_replays"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(self, name)}")
        if not self.duration_s > 1.5:
            raise ValueError(
                f"duration_s: expected > 1.5 s (the model's window is 1 s), got {self.duration_s}"
            )
        if not 1.0 <= self.camera_rate_hz <= 60.0:
            raise ValueError(f"camera_rate_hz: expected 1-60 Hz, got {self.camera_rate_hz}")
        if not 0.0 < self.knot_s <= 0.5:
            raise ValueError(f"knot_s: expected (0, 0.5] s, got {self.knot_s}")
        low, high = self.processing_s
        if not 0.0 < low <= high:
            raise ValueError(f"processing_s: expected 0 < low <= high [s], got {self.processing_s}")
        if self.processing_spread < 0.0 or not 0.0 <= self.telemetry_dropout <= 1.0:
            raise ValueError("processing_spread: expected >= 0; telemetry_dropout: expected 0..1")


SOURCES = ("pipeline", "simulated")


@dataclass(frozen=True)
class DecisionConfig:
    """What a ``task: decision`` run trains (see the module docstring)."""

    source: str = "simulated"  # pipeline | simulated (module docstring)
    pipeline: PipelineDataConfig = field(default_factory=PipelineDataConfig)
    model: DecisionModelConfig = field(default_factory=DecisionModelConfig)
    scenarios: ScenarioConfig = field(default_factory=ScenarioConfig)
    loss: DecisionLossConfig = field(default_factory=DecisionLossConfig)
    test_windows: int = 4000
    test_seed: int = 3
    # The share of the validation split's truly HIGH-risk windows the stage must call HIGH: after
    # training, P(HIGH) >= the largest threshold that reaches it is HIGH (stored in both checkpoints,
    # used at run time); null: the argmax of the risk head.
    high_risk_recall: float | None = 0.95

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source: expected one of {list(SOURCES)}, got '{self.source}'")
        if self.high_risk_recall is not None and not 0.0 < self.high_risk_recall <= 1.0:
            raise ValueError(f"high_risk_recall: expected in (0, 1] or null, got {self.high_risk_recall}")
        if self.test_windows < 1 or self.test_seed < 0:
            raise ValueError(
                f"test_windows / test_seed: expected >= 1 and >= 0, got {self.test_windows}, {self.test_seed}"
            )
