"""SELD encoder pre-training with the multi-ACCDOA head, on multi-source scenes or STARSS23.

The model is the DCASE2023 baseline encoder (``avi_ros.models.seld_encoder.SeldEncoder``) with
its head, behind the feature normaliser. Targets are multi-ACCDOA per 100 ms frame
[T', tracks, 3, C]: the unit vector of each active source, tracks filled in order. The loss is
ADPIT (Shimada et al., ICASSP 2022, as in the DCASE2022/23 baselines): for each frame and class
the output tracks are compared with every assignment of the active sources to the tracks that
uses each source at least once, and the best one counts, so the order of tracks never matters.
Validation uses the DCASE2023 metrics (``training.seld_metrics``).

Synthetic scenes give the hazard and, when present, the second source (``data.scene.
second_source_probability``), over the hazard classes 1..9 of the taxonomy (accdoa class =
class id - 1). STARSS23 gives its 13 classes, fold 3 for training and fold 4 for validation.

A checkpoint is ``seld_encoder.safetensors`` (the encoder's state_dict under DCASE names) plus
``seld_metadata.json`` (feature config, normalisation statistics, encoder config, class names);
``load_seld_encoder`` copies it into the hazard model's encoder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from avi_ros.config_io import to_plain
from avi_ros.data.shards import ShardReader
from avi_ros.data.starss23 import STARSS23_CLASSES, TEST_FOLD, TRAIN_FOLD, find_recordings, iter_windows
from avi_ros.features import FeatureConfig, FeatureNormalizer, compute_normalization_stats
from avi_ros.models.freezing import freeze_seld_encoder
from avi_ros.models.seld_encoder import SeldEncoder, SeldEncoderConfig, load_dcase_checkpoint
from avi_ros.preprocess import audio_window
from avi_ros.taxonomy import default_taxonomy
from training.config import StageConfig, repo_path
from training.data import (
    InputStore,
    accdoa_target_of_scene,
    compute_features,
    epoch_batches,
    in_chunks,
    write_split,
)
from training.losses import ACTIVE_TARGET_NORM, adpit_loss
from training.precision import autocast
from training.resume_state import save_training_checkpoint
from training.seld_metrics import SeldAccumulator, frame_labels_from_multi_accdoa
from training.splits import ensure_scenes, prepared_path, split_directory
from training.task import EvalResult, Task
from training.typed_config import ConfigError

WEIGHTS_FILE = "seld_encoder.safetensors"
METADATA_FILE = "seld_metadata.json"
FORMAT_NAME = "avi_ros.seld_encoder"


class SeldPretrainModel(nn.Module):
    """Raw features [B, 7, T, F] -> multi-ACCDOA [B, T', tracks, 3, C]."""

    def __init__(self, config: SeldEncoderConfig) -> None:
        super().__init__()
        self.feature_norm = FeatureNormalizer(config.in_channels, config.n_bins)
        self.audio_encoder = SeldEncoder(config)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.audio_encoder.accdoa(self.audio_encoder(self.feature_norm(features)))


def frame_labels_from_target(target: np.ndarray) -> dict[int, list[tuple[int, np.ndarray]]]:
    """Multi-ACCDOA target [T, tracks, 3, C] -> FrameLabels (every non-zero track is a source)."""
    labels: dict[int, list[tuple[int, np.ndarray]]] = {}
    for frame in range(target.shape[0]):
        events = [
            (c, target[frame, k, :, c])
            for c in range(target.shape[3])
            for k in range(target.shape[1])
            if np.linalg.norm(target[frame, k, :, c]) > ACTIVE_TARGET_NORM
        ]
        if events:
            labels[frame] = events
    return labels


def load_seld_encoder(encoder: SeldEncoder, directory: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy a seld_pretrain checkpoint into ``encoder`` (shape-checked); returns its (mean, std)."""
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} is missing: {directory} is not a seld_pretrain checkpoint")
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    if metadata.get("format") != FORMAT_NAME:
        raise ValueError(f"{meta_path}: format {metadata.get('format')!r}, expected '{FORMAT_NAME}'")
    load_dcase_checkpoint(encoder, directory / WEIGHTS_FILE)
    norm = metadata["normalization"]
    return torch.tensor(norm["mean"]), torch.tensor(norm["std"])


class SeldPretrainTask(Task):
    """See the module docstring."""

    def class_names(self) -> list[str]:
        if self.config.data.source == "starss23":
            return list(STARSS23_CLASSES)
        return default_taxonomy().names[1:]

    def _check_classes(self) -> None:
        expected = len(self.class_names())
        if self.config.model.audio.accdoa_classes != expected:
            raise ConfigError(
                f"model.audio.accdoa_classes: expected {expected} for data.source "
                f"'{self.config.data.source}', got {self.config.model.audio.accdoa_classes}"
            )

    @property
    def label_frames(self) -> int:
        return self.config.features.num_frames // self.config.model.audio.time_pool

    def _synthetic_split(self, split_name: str) -> InputStore:
        data, audio_cfg = self.config.data, self.config.model.audio
        split = getattr(data, split_name)
        scene = data.scene_config(split_name)
        directory = split_directory(data.cache_dir, split, scene)
        cache = prepared_path(directory, f"prepared-seld-{self._fingerprint()}")
        if cache.exists():
            return InputStore.open(cache)
        ensure_scenes(directory, split, scene, data.generation_workers, self.progress)
        reader = ShardReader(directory)
        rate = reader.config.sample_rate

        def chunk_arrays(indices: list[int]) -> dict[str, np.ndarray]:
            fields = [reader[index] for index in indices]
            audio = np.stack([audio_window(f["audio"], rate, self.config.features) for f in fields])
            targets = np.stack(
                [
                    accdoa_target_of_scene(
                        f, self.label_frames, audio_cfg.accdoa_tracks, audio_cfg.accdoa_classes
                    )
                    for f in fields
                ]
            )
            return {key: value.numpy() for key, value in self._store(audio, targets).tensors.items()}

        return write_split(map(chunk_arrays, in_chunks(range(len(reader)))), cache)

    def _starss23_split(self, split_name: str) -> InputStore:
        fold = TRAIN_FOLD if split_name == "train" else TEST_FOLD
        recordings = [r for r in find_recordings(repo_path(self.config.data.starss23_root)) if r.fold == fold]
        if not recordings:
            raise FileNotFoundError(
                f"no STARSS23 fold-{fold} recordings under {self.config.data.starss23_root}"
            )
        tracks = self.config.model.audio.accdoa_tracks
        audio, targets = [], []
        for recording in recordings:
            for window in iter_windows(recording, self.config.features.window_seconds, num_tracks=tracks):
                audio.append(window.audio[:, : self.config.features.window_samples])
                targets.append(
                    window.target.transpose(0, 1, 3, 2)[: self.label_frames]
                )  # -> [T, tracks, 3, C]
        return self._store(np.stack(audio), np.stack(targets))

    def _store(self, audio: np.ndarray, targets: np.ndarray) -> InputStore:
        return InputStore(
            {
                "features": compute_features(audio, self.config.features, self.device),
                "accdoa_target": torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)),
            }
        )

    def _fingerprint(self) -> str:
        audio_cfg = self.config.model.audio
        text = json.dumps(
            [
                self.config.features.to_dict(),
                audio_cfg.accdoa_tracks,
                audio_cfg.accdoa_classes,
                self.label_frames,
            ]
        )
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def load_data(self) -> tuple[InputStore, InputStore]:
        self._check_classes()
        load = self._starss23_split if self.config.data.source == "starss23" else self._synthetic_split
        return load("train"), load("val")

    def initial_model(self, train: InputStore) -> SeldPretrainModel:
        model = SeldPretrainModel(self.config.model.audio)
        pretrained = self.config.pretrained
        if pretrained.seld_checkpoint:  # warm start: a longer run continues a shorter one's encoder
            seld_dir = repo_path(pretrained.seld_checkpoint)
            if feature_config_of(seld_dir) != self.config.features:
                raise ConfigError(
                    f"pretrained.seld_checkpoint: {seld_dir} was trained with features "
                    f"{feature_config_of(seld_dir)}, but this run uses {self.config.features}"
                )
            model.feature_norm.set_stats(*load_seld_encoder(model.audio_encoder, seld_dir))
            return model
        if pretrained.dcase_checkpoint:
            load_dcase_checkpoint(model.audio_encoder, repo_path(pretrained.dcase_checkpoint))
        features = train.tensors["features"]
        chunks = (features[i : i + 512] for i in range(0, len(features), 512))
        model.feature_norm.set_stats(*compute_normalization_stats(chunks))
        return model

    def model_parts(self, model: SeldPretrainModel) -> dict[str, nn.Module | None]:
        return {"audio_encoder": model.audio_encoder}

    def configure_stage(self, model: SeldPretrainModel, stage: StageConfig) -> None:
        freeze_seld_encoder(model.audio_encoder, stage.seld_trainable_fraction)

    def loss(
        self, forward: nn.Module, model: SeldPretrainModel, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast(self.device, self.config.runtime.amp):
            output = forward(batch["features"].to(self.device, non_blocking=True))
        loss = adpit_loss(output.float(), batch["accdoa_target"].to(self.device, non_blocking=True))
        return loss, {"adpit": loss.detach()}

    @torch.no_grad()
    def evaluate(self, model: SeldPretrainModel, store: InputStore) -> EvalResult:
        was_training = model.training
        model.eval()
        accumulator = SeldAccumulator(len(self.class_names()))
        try:
            for batch in store.iterate(
                epoch_batches(len(store), self.config.optim.eval_batch_size, 0, 0, shuffle=False)
            ):
                with autocast(self.device, self.config.runtime.amp):
                    output = model(batch["features"].to(self.device)).float().cpu().numpy()
                for predicted, target in zip(output, batch["accdoa_target"].numpy(), strict=True):
                    accumulator.update(
                        frame_labels_from_target(target),
                        frame_labels_from_multi_accdoa(predicted),
                        target.shape[0],
                    )
        finally:
            model.train(was_training)
        scores = accumulator.compute()
        metrics = {"seld": scores.as_dict()}
        return EvalResult(metrics, {f"seld/{k}": v for k, v in scores.as_dict().items()})

    def save(
        self, model: SeldPretrainModel, target: Path, trainer_state: dict | None, progress: dict | None
    ) -> None:
        metadata = {
            "format": FORMAT_NAME,
            "version": 1,
            "feature_config": self.config.features.to_dict(),
            "encoder_config": to_plain(self.config.model.audio),
            "normalization": {
                "mean": model.feature_norm.mean.cpu().tolist(),
                "std": model.feature_norm.std.cpu().tolist(),
            },
            "classes": self.class_names(),
        }

        def write(directory: Path) -> None:
            state = {k: v.detach().cpu().contiguous() for k, v in model.audio_encoder.state_dict().items()}
            save_file(state, str(directory / WEIGHTS_FILE))
            (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")

        save_training_checkpoint(target, write, trainer_state, progress)

    def load_weights(self, model: SeldPretrainModel, directory: Path) -> None:
        model.audio_encoder.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)
        metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
        model.feature_norm.set_stats(
            torch.tensor(metadata["normalization"]["mean"]), torch.tensor(metadata["normalization"]["std"])
        )

    def finalize(
        self, model: SeldPretrainModel, val: InputStore, run_dir: Path, best_dir: Path
    ) -> EvalResult:
        self.load_weights(model, best_dir)
        model.to(self.device)
        result = self.evaluate(model, val)
        export = run_dir / "export"
        export.mkdir(parents=True, exist_ok=True)
        (export / "metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n", encoding="utf-8")
        (export / "labels.json").write_text(
            json.dumps({"labels": self.class_names()}, indent=2) + "\n", encoding="utf-8"
        )
        return result


def feature_config_of(directory: Path) -> FeatureConfig:
    """The feature config a seld_pretrain checkpoint was trained with."""
    metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    return FeatureConfig.from_dict(metadata["feature_config"])
