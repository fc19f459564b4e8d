"""The hazard task (``task: hazard_set``): train the package's model, K hazard slots per frame, or
one of its baseline variants, on synthetic scenes.

- inputs: the audio features, the 5-channel image and the view tokens (``avi_ros.view_tokens``),
  made with the configured camera (the one the node is given); the oracle variant gets the exact
  view tokens (true occluders and where a hazard shows), which no robot has;
- loss: permutation-invariant, after Hungarian matching of slots to true hazards
  (``training.losses``);
- metrics: DCASE2024-style frame-wise detection, F20 / LE / RDE, by visibility and by polyphony,
  the single-hazard figures of the top slot and the direction figures beside the physics
  baseline (``training.metrics``);
- finalize: with ``calibration.enabled``, ``best`` is calibrated on the validation split once (a
  temperature and Platt scaling shared by the slots, ``training.calibration``); then its metrics,
  plots (confusion matrix of the single-hazard view, reliability diagram of every slot, audio
  weight against occlusion) and model card are written.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from scipy.special import expit
from torch import nn

from avi_ros.checkpoint import WEIGHTS_FILE, read_checkpoint_metadata, save_checkpoint
from avi_ros.features import compute_normalization_stats
from avi_ros.models.builder import build_model, load_pretrained
from avi_ros.models.freezing import MODEL_PARTS, freeze_seld_encoder, parameter_counts
from avi_ros.models.hazard_set import HazardSetModel
from avi_ros.preprocess import Preprocessor
from avi_ros.taxonomy import default_taxonomy
from training.calibration import Calibration, fit_calibration, fold_into_head, load_uncalibrated
from training.collect_outputs import SplitOutputs, collect_outputs, model_inputs
from training.config import ExperimentConfig, StageConfig, git_commit, repo_path
from training.data import InputStore, PrepareConfig
from training.export import write_labels, write_model_card
from training.losses import hazard_loss
from training.plots import plot_confusion_matrix, plot_reliability_diagram, plot_weight_vs_occlusion
from training.precision import autocast
from training.resume_state import read_progress, save_training_checkpoint
from training.seld_task import feature_config_of, load_seld_encoder
from training.splits import ensure_scenes, prepared_split, split_directory
from training.task import EvalResult, Task
from training.typed_config import ConfigError

FEATURE_STATS_CHUNK = 512  # samples per chunk when computing normalisation statistics


def set_prepare_config(config: ExperimentConfig) -> PrepareConfig:
    """How scenes become the model's inputs: its preprocessing plus the view tokens, made with the
    configured camera (the one the node is given)."""
    preprocess = Preprocessor(
        config.model.visual.image_size, config.features, config.occlusion, view_grid=config.model.view_grid
    )
    scene = config.data.scene_config()
    return PrepareConfig(preprocess, camera=(scene.intrinsics, scene.extrinsic))


class HazardSetTask(Task):
    """See the module docstring."""

    taxonomy = default_taxonomy()

    def load_split(self, split_name: str) -> InputStore:
        data = self.config.data
        split = getattr(data, split_name)
        scene = data.scene_config(split_name)
        directory = split_directory(data.cache_dir, split, scene)
        ensure_scenes(directory, split, scene, data.generation_workers, self.progress)
        return prepared_split(directory, set_prepare_config(self.config), self.device, self.progress)

    def load_data(self) -> tuple[InputStore, InputStore]:
        return self.load_split("train"), self.load_split("val")

    def initial_model(self, train: InputStore) -> HazardSetModel:
        config = self.config
        pretrained = config.pretrained
        if pretrained.model_checkpoint:
            return self._warm_start(repo_path(pretrained.model_checkpoint))
        model = build_model(config.model)
        load_pretrained(
            model,
            repo_path(pretrained.imagenet_weights) if pretrained.imagenet_weights else None,
            repo_path(pretrained.dcase_checkpoint) if pretrained.dcase_checkpoint else None,
        )
        if pretrained.seld_checkpoint and model.audio_encoder is not None:
            seld_dir = repo_path(pretrained.seld_checkpoint)
            if feature_config_of(seld_dir) != config.features:
                raise ConfigError(
                    f"pretrained.seld_checkpoint: {seld_dir} was trained with features "
                    f"{feature_config_of(seld_dir)}, but this run uses {config.features}"
                )
            mean, std = load_seld_encoder(model.audio_encoder, seld_dir)
            model.set_normalization(mean, std)  # the encoder was trained on these statistics
        elif model.audio_encoder is not None:
            features = train.tensors["features"]
            chunks = (
                features[i : i + FEATURE_STATS_CHUNK] for i in range(0, len(features), FEATURE_STATS_CHUNK)
            )
            model.set_normalization(*compute_normalization_stats(chunks))
        return model

    def _warm_start(self, directory: Path) -> HazardSetModel:
        """This run's model started from ``pretrained.model_checkpoint`` (raw head, feature
        statistics included). The checkpoint must hold every weight of the model this config builds,
        with the same shape; weights it holds beyond them (a layer this config leaves out, e.g.
        ``model.direction_correction: false``) are dropped and named in the log."""
        stored, metadata, _ = load_uncalibrated(directory, "cpu")
        if metadata.feature_config != self.config.features:
            raise ConfigError(
                f"pretrained.model_checkpoint: {directory} was trained with features "
                f"{metadata.feature_config}, but this run uses {self.config.features}"
            )
        model = build_model(self.config.model)
        state = stored.state_dict()
        for key, target in model.state_dict().items():
            if key not in state or state[key].shape != target.shape:
                held = "lacks it" if key not in state else f"holds {tuple(state[key].shape)}"
                raise ConfigError(
                    f"pretrained.model_checkpoint: this run's model needs '{key}' "
                    f"{tuple(target.shape)}, but {directory} {held}"
                )
        dropped = sorted(set(state) - set(model.state_dict()))
        model.load_state_dict({key: state[key] for key in model.state_dict()})
        if dropped and self.dist.is_main:
            print(f"pretrained.model_checkpoint: not in this run's model, dropped: {', '.join(dropped)}")
        return model

    def model_parts(self, model: HazardSetModel) -> dict[str, nn.Module | None]:
        return {part: getattr(model, part) for part in MODEL_PARTS}

    def configure_stage(self, model: HazardSetModel, stage: StageConfig) -> None:
        if model.audio_encoder is not None:
            freeze_seld_encoder(model.audio_encoder, stage.seld_trainable_fraction)
        if model.visual_encoder is not None:
            model.visual_encoder.requires_grad_(stage.train_visual_encoder)
        model.adapter.requires_grad_(stage.part_lr("adapter") > 0)
        model.head.requires_grad_(stage.part_lr("head") > 0)

    def loss(
        self, forward: nn.Module, model: HazardSetModel, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast(self.device, self.config.runtime.amp):
            output = forward(*model_inputs(model, batch, self.device))
        targets = {key: value.to(self.device) for key, value in batch.items() if key.startswith("hazard_")}
        return hazard_loss(output, targets, self.config.loss)

    def evaluate(self, model: HazardSetModel, store: InputStore) -> EvalResult:
        outputs = collect_outputs(
            model,
            store,
            self.device,
            self.config.optim.eval_batch_size,
            autocast(self.device, self.config.runtime.amp),
        )
        metrics, scalars, weight_pairs = outputs.evaluation()
        return EvalResult(metrics, scalars, {"outputs": outputs, "weight_pairs": weight_pairs})

    def _extra(self, calibration: Calibration | None) -> dict:
        extra = {
            "occlusion": vars(self.config.occlusion),
            "training": {"run": self.config.name, "task": self.config.task, "git_commit": git_commit()},
        }
        if calibration is not None:
            extra["calibration"] = vars(calibration)
        return extra

    def save(
        self,
        model: HazardSetModel,
        target: Path,
        trainer_state: dict | None,
        progress: dict | None,
        calibration: Calibration | None = None,
    ) -> None:
        extra = self._extra(calibration)
        save_training_checkpoint(
            target,
            lambda directory: save_checkpoint(directory, model, self.config.features, self.taxonomy, extra),
            trainer_state,
            progress,
        )

    def load_weights(self, model: HazardSetModel, directory: Path) -> None:
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)

    def calibrate(self, model: HazardSetModel, val: InputStore, best_dir: Path) -> Calibration | None:
        """The calibration of ``best``: the one stored in it, else (with ``calibration.enabled``) one
        fitted on the validation split, folded into the head and saved into ``best`` (once: a
        resumed finalize finds it stored)."""
        stored = read_checkpoint_metadata(best_dir).extra.get("calibration")
        if stored is not None:
            return Calibration(**stored)
        if not self.config.calibration.enabled:
            return None
        outputs = collect_outputs(model, val, self.device, self.config.optim.eval_batch_size)
        calibration = fit_calibration(outputs.calibration_targets())
        fold_into_head(model.head, calibration)
        self.save(model, best_dir, None, read_progress(best_dir), calibration)
        return calibration

    def finalize(self, model: HazardSetModel, val: InputStore, run_dir: Path, best_dir: Path) -> EvalResult:
        """Calibrate ``best`` (see ``calibrate``), evaluate it on the validation split and write the
        plots, metrics and model card."""
        self.load_weights(model, best_dir)
        model.to(self.device)
        calibration = self.calibrate(model, val, best_dir)
        result = self.evaluate(model, val)
        self._write_plots(result, run_dir / "plots")
        export = run_dir / "export"
        write_labels(self.taxonomy, export / "labels.json")
        (export / "metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n", encoding="utf-8")
        cfg = self.config
        data = cfg.data
        write_model_card(
            export / "model_card.md",
            run_name=cfg.name,
            config_summary={
                "variant": cfg.model.variant,
                "hazard slots": str(cfg.model.hazard_slots),
                "direction": cfg.model.direction,
                "visual encoder": f"{cfg.model.visual.arch}, {cfg.model.visual.image_size} px",
                "audio": f"{cfg.features.kind} features, {cfg.features.window_seconds} s window",
                "data": f"{data.source}: {data.train.scenes} training / {data.val.scenes} validation scenes "
                f"(seeds {data.train.seed} / {data.val.seed}), "
                f"camera {data.camera_width}x{data.camera_height}",
                "stages": "; ".join(f"{s.name}: {s.epochs} epochs, lr {s.lr}" for s in cfg.stages),
                "checkpoint": str(best_dir),
            },
            parameter_counts=parameter_counts(model),
            metrics=result.metrics,
            taxonomy=self.taxonomy,
            calibration=vars(calibration) if calibration is not None else None,
            git_commit=git_commit(),
            eval_split=f"validation split, {len(val)} scenes",
        )
        return result

    def _write_plots(self, result: EvalResult, directory: Path) -> None:
        """The single-hazard view's confusion matrix (frames with at most one hazard: its hazard or
        ``none`` against the top slot's class), the reliability diagram of every slot against the
        calibration's target, and the per-hazard audio weight against occlusion."""
        outputs: SplitOutputs = result.extras["outputs"]
        view = outputs.single_hazard_view()
        plot_confusion_matrix(
            view.class_true, view.class_pred, self.taxonomy.names, directory / "confusion_matrix.png"
        )
        targets = outputs.calibration_targets()
        plot_reliability_diagram(
            expit(targets.confidence_logit), targets.present, directory / "reliability_diagram.png"
        )
        plot_weight_vs_occlusion(
            {self.config.model.variant: result.extras["weight_pairs"]}, directory / "weight_vs_occlusion.png"
        )
