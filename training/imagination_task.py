"""The imagination task: train the hazard model (or a baseline variant) on synthetic scenes."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from avi_ros.checkpoint import WEIGHTS_FILE, read_checkpoint_metadata, save_checkpoint
from avi_ros.features import compute_normalization_stats
from avi_ros.models.builder import build_model, load_pretrained
from avi_ros.models.freezing import MODEL_PARTS, freeze_seld_encoder, parameter_counts
from avi_ros.models.imagination import ImaginationModel
from avi_ros.preprocess import Preprocessor
from avi_ros.taxonomy import default_taxonomy
from training.calibration import Calibration, fit_calibration, fold_into_head
from training.collect_outputs import collect_outputs, model_inputs
from training.config import StageConfig, git_commit, repo_path
from training.data import InputStore, PrepareConfig, targets_from_batch
from training.export import write_labels, write_model_card
from training.losses import imagination_loss
from training.metrics import evaluate_predictions, flatten_metrics
from training.plots import write_all_plots
from training.precision import autocast
from training.resume_state import read_progress, save_training_checkpoint
from training.seld_task import feature_config_of, load_seld_encoder
from training.splits import ensure_scenes, prepared_split, split_directory
from training.task import EvalResult, Task

FEATURE_STATS_CHUNK = 512  # samples per chunk when computing normalisation statistics


class ImaginationTask(Task):
    """See the module docstring."""

    taxonomy = default_taxonomy()

    def prepare_config(self) -> PrepareConfig:
        config = self.config
        accdoa = None
        if config.loss.accdoa_weight > 0:
            audio = config.model.audio
            accdoa = (
                config.features.num_frames // audio.time_pool,
                audio.accdoa_tracks,
                audio.accdoa_classes,
            )
        preprocess = Preprocessor(config.model.visual.image_size, config.features, config.occlusion)
        return PrepareConfig(preprocess, accdoa)

    def load_split(self, split_name: str) -> InputStore:
        data = self.config.data
        split = getattr(data, split_name)
        scene = data.scene_config(split_name)
        directory = split_directory(data.cache_dir, split, scene)
        ensure_scenes(directory, split, scene, data.generation_workers, self.progress)
        return prepared_split(directory, self.prepare_config(), self.device, self.progress)

    def load_data(self) -> tuple[InputStore, InputStore]:
        return self.load_split("train"), self.load_split("val")

    def initial_model(self, train: InputStore) -> ImaginationModel:
        config = self.config
        model = build_model(config.model)
        pretrained = config.pretrained
        load_pretrained(
            model,
            repo_path(pretrained.imagenet_weights) if pretrained.imagenet_weights else None,
            repo_path(pretrained.dcase_checkpoint) if pretrained.dcase_checkpoint else None,
        )
        if pretrained.seld_checkpoint and model.audio_encoder is not None:
            seld_dir = repo_path(pretrained.seld_checkpoint)
            if feature_config_of(seld_dir) != config.features:
                raise ValueError(
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

    def model_parts(self, model: ImaginationModel) -> dict[str, nn.Module | None]:
        return {part: getattr(model, part) for part in MODEL_PARTS}

    def configure_stage(self, model: ImaginationModel, stage: StageConfig) -> None:
        if model.audio_encoder is not None:
            freeze_seld_encoder(model.audio_encoder, stage.seld_trainable_fraction)
        if model.visual_encoder is not None:
            model.visual_encoder.requires_grad_(stage.train_visual_encoder)
        model.adapter.requires_grad_(stage.part_lr("adapter") > 0)
        model.head.requires_grad_(stage.part_lr("head") > 0)

    def loss(
        self, forward: nn.Module, model: ImaginationModel, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast(self.device, self.config.runtime.amp):
            output = forward(*model_inputs(model, batch, self.device))
        return imagination_loss(output, targets_from_batch(batch).to(self.device), self.config.loss)

    def evaluate(self, model: ImaginationModel, store: InputStore) -> EvalResult:
        outputs = collect_outputs(
            model,
            store,
            self.device,
            self.config.optim.eval_batch_size,
            autocast(self.device, self.config.runtime.amp),
        )
        predictions = outputs.predictions()
        metrics = evaluate_predictions(predictions, self.taxonomy.names)
        return EvalResult(metrics, flatten_metrics(metrics), {"predictions": predictions, "outputs": outputs})

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
        model: ImaginationModel,
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

    def load_weights(self, model: ImaginationModel, directory: Path) -> None:
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)

    def finalize(self, model: ImaginationModel, val: InputStore, run_dir: Path, best_dir: Path) -> EvalResult:
        """Calibrate ``best`` on the validation split (once), then evaluate it and write plots and exports."""
        self.load_weights(model, best_dir)
        model.to(self.device)
        calibration_data = read_checkpoint_metadata(best_dir).extra.get("calibration")
        if calibration_data is not None:
            calibration = Calibration(**calibration_data)
        elif self.config.calibration.enabled:
            outputs = collect_outputs(model, val, self.device, self.config.optim.eval_batch_size)
            calibration = fit_calibration(
                outputs.arrays.class_logits, outputs.arrays.confidence_logit, outputs.labels["class_id"]
            )
            fold_into_head(model.head, calibration)
            self.save(model, best_dir, None, read_progress(best_dir), calibration)
        else:
            calibration = None
        result = self.evaluate(model, val)
        write_all_plots(result.extras["predictions"], self.taxonomy.names, run_dir / "plots")
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
