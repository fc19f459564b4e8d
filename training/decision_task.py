"""The decision task: train the decision stage (risk, reason, action) on windows of hazard estimates.

Plugs into the generic trainer (``training.trainer``) like the other tasks; the SIM v0 contract
maps onto the package's run layout as follows:

- data (``decision.source``): ``pipeline``: rendered scenario runs through the real pipeline with
  the hazard model (``training/decision_data.py``, cached under ``data.cache_dir`` and keyed by
  the model's weights hash), replayed with the skip patterns of a busy node into stamp-placed
  windows: ``data.train`` / ``data.val`` give the number of runs (``scenes``) and their seeds,
  ``decision.pipeline.test_scenes`` / ``decision.test_seed`` the held-out runs; ``simulated``
  (the ablation): ``avi_ros.decision.scenarios`` windows, generated in memory in seconds:
  ``data.train`` / ``data.val`` give the window counts, ``decision.test_windows`` /
  ``decision.test_seed`` the held-out test split;
- model: ``decision.model`` (``avi_ros.decision.model``); with ``backbone: hf_local`` the frozen
  language model's freezing is asserted (0 < trainable < total parameters) and the counts are
  logged, as for every backbone;
- parameter groups (``stages[].lr``): ``adapter`` = projectors (+ the backbone unless frozen),
  ``head`` = the four heads;
- loss: ``decision.loss`` (``training.decision_config.DecisionLossConfig``);
- metrics per epoch: ``training.decision_metrics`` (``risk_high_recall``, ``risk_high_fn_rate``,
  action accuracy, macro F1 of risk and action, ...); choose ``checkpoints/best`` by
  ``runtime.select_metric: risk_high_recall``;
- checkpoints: ``avi_ros.decision.checkpoint`` files (safetensors + JSON metadata with dv, d, F,
  K, the label maps and the latest validation metrics) inside the trainer's atomic checkpoint
  directories (``progress.json``: epoch and best value; ``last`` also holds the optimizer,
  scheduler, position and RNG states for exact resume);
- after training: ``export/labels.json`` (the label maps) and ``export/metrics.json`` (the best
  checkpoint on the validation and the held-out test split, per scenario too, with the rules
  baseline on the same test windows beside it).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avi_ros.decision.checkpoint import (
    METADATA_FILE,
    load_decision_weights,
    save_decision_checkpoint,
    store_high_risk_threshold,
)
from avi_ros.decision.features import feature_size
from avi_ros.decision.inference import DecisionArrays, concatenate_decisions, read_decision_output
from avi_ros.decision.labels import label_maps
from avi_ros.decision.model import DecisionModel, check_frozen
from avi_ros.decision.scenarios import generate_windows
from avi_ros.taxonomy import RiskLevel, default_taxonomy
from training.config import StageConfig, git_commit
from training.data import InputStore, epoch_batches
from training.decision_data import KINDS, PipelineRuns, check_features, replay_windows
from training.decision_metrics import DecisionAccumulator, fit_high_risk_threshold, rules_arrays
from training.precision import autocast
from training.resume_state import save_training_checkpoint
from training.task import EvalResult, Task
from training.typed_config import ConfigError

LABEL_KEYS = ("risk", "reason", "action")


def weighted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy averaged over the batch with per-sample (and optional per-class) weights;
    the denominator is the sum of the weights, as in ``F.cross_entropy(weight=...)``."""
    losses = F.cross_entropy(logits.float(), target, reduction="none")
    if class_weights is not None:
        weight = weight * class_weights[target]
    return (losses * weight).sum() / weight.sum().clamp_min(1e-12)


class DecisionTask(Task):
    """See the module docstring."""

    taxonomy = default_taxonomy()
    latest_scalars: dict[str, float] | None = None  # of the latest evaluation; saved with the checkpoints
    _runs: PipelineRuns | None = None

    def _check_splits(self) -> None:
        data, decision = self.config.data, self.config.decision
        if decision.test_seed in (data.train.seed, data.val.seed):
            raise ConfigError(
                f"decision.test_seed: expected a seed other than data.train.seed ({data.train.seed}) and "
                f"data.val.seed ({data.val.seed}) for held-out data, got {decision.test_seed}"
            )

    def pipeline_runs(self) -> PipelineRuns:
        if self._runs is None:
            self._runs = PipelineRuns(self.config.decision.pipeline, self.config.data.cache_dir)
        return self._runs

    def split(self, count: int, seed: int, training: bool, held_out: bool = False) -> InputStore:
        """The windows of a split as an InputStore: ``count`` scenario runs (``pipeline``) or windows
        (``simulated``) with ``seed``; telemetry dropout applies to the training split only."""
        decision = self.config.decision
        if decision.source == "pipeline":
            pipeline = decision.pipeline
            runs = self.pipeline_runs().runs(count, seed, held_out)
            check_features(runs, self.taxonomy.num_classes)
            model = decision.model
            arrays = replay_windows(
                runs,
                pipeline.replays if training else pipeline.eval_replays,
                seed,
                pipeline,
                model.frames,
                model.frame_period_s,
                pipeline.telemetry_dropout if training else 0.0,
            )
        else:
            scenarios = decision.scenarios
            if not training:
                scenarios = dataclasses.replace(scenarios, telemetry_dropout=0.0)
            arrays = generate_windows(count, seed, scenarios, self.taxonomy, decision.model.frames).arrays()
        return InputStore({key: torch.from_numpy(np.ascontiguousarray(v)) for key, v in arrays.items()})

    def test_split(self) -> InputStore:
        """The held-out split that ``finalize`` reports."""
        decision = self.config.decision
        if decision.source == "pipeline":
            return self.split(decision.pipeline.test_scenes, decision.test_seed, False, held_out=True)
        return self.split(decision.test_windows, decision.test_seed, False)

    def load_data(self) -> tuple[InputStore, InputStore]:
        self._check_splits()
        data = self.config.data
        return self.split(data.train.scenes, data.train.seed, True), self.split(
            data.val.scenes, data.val.seed, False
        )

    def initial_model(self, train: InputStore) -> DecisionModel:
        model = DecisionModel(self.config.decision.model, feature_size(self.taxonomy.num_classes))
        counts = check_frozen(model)
        if self.dist.is_main:
            print(
                f"decision model: backbone {model.config.backbone}, d {model.width}, "
                f"{counts['trainable']:,} trainable of {counts['total']:,} parameters",
                file=sys.stderr,
                flush=True,
            )
        return model

    def model_parts(self, model: DecisionModel) -> dict[str, nn.Module | None]:
        return dict(model.trainable_parts())

    def configure_stage(self, model: DecisionModel, stage: StageConfig) -> None:
        for part, module in model.trainable_parts().items():
            module.requires_grad_(stage.part_lr(part) > 0)
        if model.backbone_frozen:
            model.backbone.requires_grad_(False)

    def loss(
        self, forward: nn.Module, model: DecisionModel, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        device, weights = self.device, self.config.decision.loss
        with autocast(device, self.config.runtime.amp):
            output = forward(batch["features"].to(device), batch["telemetry"].to(device))
        weight = batch["weight"].to(device)
        target = {key: batch[key].to(device) for key in LABEL_KEYS}
        class_weights = {"risk": torch.tensor(weights.risk_class_weights, device=device)}
        terms = {
            key: weighted_cross_entropy(getattr(output, key), target[key], weight, class_weights.get(key))
            for key in LABEL_KEYS
        }
        right = (output.action.detach().argmax(dim=1) == target["action"]).float()
        confidence = F.binary_cross_entropy_with_logits(output.confidence.float(), right, reduction="none")
        terms["confidence"] = (confidence * weight).sum() / weight.sum().clamp_min(1e-12)
        total = sum(getattr(weights, key) * value for key, value in terms.items())
        return total, {key: value.detach() for key, value in terms.items()}

    @torch.no_grad()
    def decisions(
        self, model: DecisionModel, store: InputStore, high_risk_threshold: float | None
    ) -> DecisionArrays:
        """``model``'s decisions on every window of ``store``, in order, read at ``high_risk_threshold``."""
        was_training = model.training
        model.eval()
        parts = []
        try:
            batches = epoch_batches(len(store), self.config.optim.eval_batch_size, 0, 0, shuffle=False)
            for batch in store.iterate(batches):
                with autocast(self.device, self.config.runtime.amp):
                    output = model(batch["features"].to(self.device), batch["telemetry"].to(self.device))
                parts.append(read_decision_output(output))
        finally:
            model.train(was_training)
        return concatenate_decisions(parts, high_risk_threshold)

    def collect(
        self, model: DecisionModel, store: InputStore, high_risk_threshold: float | None = None
    ) -> dict:
        """Nested metrics of ``model`` on ``store``, per scenario too (``DecisionAccumulator.compute``);
        risk read at ``high_risk_threshold`` (None, as while training: the argmax)."""
        return _metrics(self.decisions(model, store, high_risk_threshold), store)

    def fit_operating_point(self, model: DecisionModel, val: InputStore, directory: Path) -> DecisionArrays:
        """Load the checkpoint in ``directory`` into ``model``, choose its HIGH-risk threshold on
        ``val`` (``decision.high_risk_recall``; None, the argmax, when not asked for) and store it
        there. Returns the checkpoint's decisions on ``val``, read at that threshold."""
        self.load_weights(model, directory)
        model.to(self.device)
        decisions = self.decisions(model, val, None)
        target = self.config.decision.high_risk_recall
        threshold = None
        if target is not None:
            high = decisions.risk_probabilities[:, int(RiskLevel.HIGH)]
            threshold = fit_high_risk_threshold(high, val.tensors["risk"].numpy(), target)
        store_high_risk_threshold(directory, threshold)
        return dataclasses.replace(decisions, high_risk_threshold=threshold)

    def rules_baseline(self, store: InputStore) -> dict:
        """The rules baseline (``training.decision_metrics.rules_arrays``) on ``store``'s windows."""
        tensors = store.tensors
        return _metrics(
            rules_arrays(tensors["features"].numpy(), tensors["telemetry"].numpy(), self.taxonomy), store
        )

    def evaluate(self, model: DecisionModel, store: InputStore) -> EvalResult:
        result = _eval_result(self.collect(model, store))
        self.latest_scalars = result.scalars
        return result

    def save(
        self, model: DecisionModel, target: Path, trainer_state: dict | None, progress: dict | None
    ) -> None:
        extra = {
            "training": {"run": self.config.name, "task": self.config.task, "git_commit": git_commit()},
            "validation_metrics": self.latest_scalars,
        }
        save_training_checkpoint(
            target,
            lambda directory: save_decision_checkpoint(directory, model, self.taxonomy, extra),
            trainer_state,
            progress,
        )

    def load_weights(self, model: DecisionModel, directory: Path) -> None:
        load_decision_weights(model, directory)

    def finalize(self, model: DecisionModel, val: InputStore, run_dir: Path, best_dir: Path) -> EvalResult:
        """Choose the HIGH-risk operating point of ``last`` and ``best`` on validation, then evaluate
        ``best`` at it on validation and on the held-out test split; write the exports."""
        last_dir = best_dir.parent / "last"
        if (last_dir / METADATA_FILE).is_file():
            self.fit_operating_point(model, val, last_dir)
        val_decisions = self.fit_operating_point(model, val, best_dir)  # leaves best's weights loaded
        threshold = val_decisions.high_risk_threshold
        decision = self.config.decision
        test = self.test_split()
        result = _eval_result(self.collect(model, test, threshold))
        metrics = {
            "checkpoint": str(best_dir),
            "source": decision.source,
            "high_risk_threshold": threshold,
            "high_risk_recall_target": decision.high_risk_recall,
            "validation": _metrics(val_decisions, val),
            "test": {"seed": decision.test_seed, **result.metrics},
            "test_rules_baseline": self.rules_baseline(test),
            "parameters": check_frozen(model),
            "backbone": model.config.backbone,
            "telemetry": model.config.telemetry,
        }
        if decision.source == "pipeline":
            metrics["hazard_model"] = {
                "path": str(self.pipeline_runs().model_dir),
                "fingerprint_16": self.pipeline_runs().model_hash,
            }
        export = run_dir / "export"
        export.mkdir(parents=True, exist_ok=True)
        (export / "labels.json").write_text(
            json.dumps(label_maps(self.taxonomy), indent=2) + "\n", encoding="utf-8"
        )
        (export / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        return EvalResult(metrics, result.scalars)


def _metrics(decisions: DecisionArrays, store: InputStore) -> dict:
    """Nested metrics of ``decisions`` (one per window of ``store``, in order) against its labels."""
    accumulator = DecisionAccumulator()
    accumulator.update(decisions, {k: store.tensors[k].numpy() for k in LABEL_KEYS})
    return accumulator.compute(store.tensors["scenario"].numpy(), KINDS)


def _eval_result(metrics: dict) -> EvalResult:
    """``collect``'s metrics with their scalars for the trainer (an undefined scalar counts as 0)."""
    return EvalResult(metrics, {k: (v if v is not None else 0.0) for k, v in metrics["scalars"].items()})
