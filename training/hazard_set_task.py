"""The hazard-set task: train a model that reports up to K hazards per frame (issue 13).

It shares the imagination task's data, pretrained weights, freezing, checkpoints and model parts
(``ImaginationTask``) and differs where a set differs from one hazard:
- inputs: the view tokens (``avi_ros.view_tokens``) beside the audio and the image; the oracle
  variant gets the exact ones (true occluders and where a hazard shows), which no robot has;
- loss: permutation-invariant, after Hungarian matching of slots to true hazards
  (``training.set_loss``);
- metrics: DCASE2024-style frame-wise detection, F20 / LE / RDE, by visibility and by polyphony
  (``training.set_metrics``), plus the single-hazard figures on frames with at most one hazard;
- finalize: no post-hoc calibration (the confidence threshold is the node's); metrics, the
  per-hazard weight plot and the model card are written.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from avi_ros.doa import feature_direction_vectors
from avi_ros.models.freezing import parameter_counts
from avi_ros.models.output_arrays import HazardSetArrays, read_set_outputs
from avi_ros.preprocess import Preprocessor
from avi_ros.taxonomy import default_taxonomy
from training.config import ExperimentConfig, git_commit
from training.data import InputStore, PrepareConfig, epoch_batches
from training.export import write_labels, write_model_card
from training.imagination_task import ImaginationTask
from training.metrics import NODE_CONFIDENCE_THRESHOLD
from training.precision import autocast
from training.set_loss import hazard_set_loss
from training.set_metrics import SetEvaluation, evaluate_hazard_sets
from training.set_plots import plot_weight_vs_occlusion
from training.task import EvalResult

# Ground-truth keys of a prepared split that the set metrics read.
SET_LABEL_KEYS = (
    "hazard_class",
    "hazard_direction",
    "hazard_distance",
    "hazard_visibility",
    "hazard_occlusion",
)


def set_model_inputs(
    model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features, visual, view tokens) of a batch on ``device``; the oracle reads the exact view tokens."""
    config = getattr(model, "module", model).config
    tokens = batch["view_tokens_exact" if config.variant == "oracle" else "view_tokens"]
    return (
        batch["features"].to(device, non_blocking=True),
        batch["visual"].to(device, non_blocking=True),
        tokens.to(device, non_blocking=True),
    )


@torch.no_grad()
def collect_set_outputs(
    model: nn.Module, store: InputStore, device: torch.device, batch_size: int
) -> HazardSetArrays:
    """The set outputs of ``model`` (eval mode) over every sample of ``store``, in order."""
    was_training = model.training
    model.eval()
    parts = []
    try:
        for batch in store.iterate(epoch_batches(len(store), batch_size, 0, 0, shuffle=False)):
            parts.append(read_set_outputs(model(*set_model_inputs(model, batch, device))))
    finally:
        model.train(was_training)
    return HazardSetArrays.concatenate(parts)


def evaluate_set_store(
    model: nn.Module,
    store: InputStore,
    device: torch.device,
    batch_size: int,
    threshold: float = NODE_CONFIDENCE_THRESHOLD,
) -> SetEvaluation:
    """Metrics, flat scalars and (true occlusion, audio weight) pairs of ``model`` on a prepared split;
    the direction figures put the physics baseline (each window's broadband intensity vector, from
    the same features the model reads) beside the model."""
    outputs = collect_set_outputs(model, store, device, batch_size)
    labels = {key: store.tensors[key].numpy() for key in SET_LABEL_KEYS}
    physics = None
    if getattr(model, "module", model).config.uses_audio and store.tensors["features"].shape[1] == 7:
        physics = feature_direction_vectors(store.tensors["features"].numpy())
    return evaluate_hazard_sets(outputs, labels, threshold, default_taxonomy().names, physics)


def set_prepare_config(config: ExperimentConfig) -> PrepareConfig:
    """How scenes become a set model's inputs: the imagination inputs plus the view tokens, made
    with the configured camera (the one the node is given)."""
    preprocess = Preprocessor(
        config.model.visual.image_size, config.features, config.occlusion, view_grid=config.model.view_grid
    )
    scene = config.data.scene_config()
    return PrepareConfig(preprocess, camera=(scene.intrinsics, scene.extrinsic))


class HazardSetTask(ImaginationTask):
    """See the module docstring."""

    def prepare_config(self) -> PrepareConfig:
        return set_prepare_config(self.config)

    def loss(
        self, forward: nn.Module, model: nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast(self.device, self.config.runtime.amp):
            output = forward(*set_model_inputs(model, batch, self.device))
        targets = {key: value.to(self.device) for key, value in batch.items() if key.startswith("hazard_")}
        return hazard_set_loss(output, targets, self.config.hazard_loss)

    def evaluate(self, model: nn.Module, store: InputStore) -> EvalResult:
        metrics, scalars, plot_data = evaluate_set_store(
            model, store, self.device, self.config.optim.eval_batch_size
        )
        return EvalResult(metrics, scalars, {"plot": plot_data})

    def finalize(self, model: nn.Module, val: InputStore, run_dir: Path, best_dir: Path) -> EvalResult:
        """Evaluate ``best`` on the validation split; write metrics, the weight plot and the model card."""
        self.load_weights(model, best_dir)
        model.to(self.device)
        result = self.evaluate(model, val)
        plot_weight_vs_occlusion(
            {self.config.model.variant: result.extras["plot"]}, run_dir / "plots" / "weight_vs_occlusion.png"
        )
        export = run_dir / "export"
        write_labels(self.taxonomy, export / "labels.json")
        (export / "metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n", encoding="utf-8")
        cfg = self.config
        write_model_card(
            export / "model_card.md",
            run_name=cfg.name,
            config_summary={
                "variant": cfg.model.variant,
                "hazard slots": str(cfg.model.hazard_slots),
                "visual encoder": f"{cfg.model.visual.arch}, {cfg.model.visual.image_size} px",
                "audio": f"{cfg.features.kind} features, {cfg.features.window_seconds} s window",
                "data": f"{cfg.data.train.scenes} training / {cfg.data.val.scenes} validation scenes",
                "stages": "; ".join(f"{s.name}: {s.epochs} epochs, lr {s.lr}" for s in cfg.stages),
                "checkpoint": str(best_dir),
            },
            parameter_counts=parameter_counts(model),
            metrics=result.metrics,
            taxonomy=self.taxonomy,
            calibration=None,
            git_commit=git_commit(),
            eval_split=f"validation split, {len(val)} scenes",
        )
        return result
