"""The configuration of a training run: dataclasses, YAML loading, key=value overrides, validation.

``load_config(path, overrides)`` reads a YAML file, applies overrides such as
``optim.batch_size=16`` or ``stages.1.epochs=3``, and builds an ``ExperimentConfig``. Every
value is checked against its type and range; the first problem is reported as a ConfigError
that names the dotted key and what was expected. The model, feature, scene and occlusion
sections are the core library's own dataclasses, so the trainer never keeps a second copy of
their fields.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from avi_ros.data.scene_config import SceneConfig
from avi_ros.features import FeatureConfig
from avi_ros.models.config import ModelConfig, without_retired_keys
from avi_ros.models.freezing import MODEL_PARTS
from avi_ros.occlusion import OcclusionConfig
from avi_ros.taxonomy import default_taxonomy
from training.decision_config import DecisionConfig
from training.losses import LossConfig
from training.typed_config import ConfigError, apply_overrides, build, to_plain

REPO_ROOT = Path(__file__).resolve().parents[1]
BANK_AUTO = "auto"
_notified_missing_banks: set[Path] = set()


def resolve_bank_split(sound_bank: str | None, split_name: str) -> Path | None:
    """``<sound_bank>/<split_name>`` when the bank has that split, else None (with a one-line
    notice per missing bank, since the scenes then fall back to the procedural sounds).

    ``auto`` means the bank ``make sounds`` builds (``$AVI_ROS_SOUNDS/bank``); ``~`` and
    environment variables expand; relative paths start at the repository root."""
    if sound_bank is None:
        return None
    if sound_bank == BANK_AUTO:
        from avi_ros.sounds.fetch import cache_root

        root = cache_root() / "bank"
    else:
        root = Path(os.path.expandvars(os.path.expanduser(sound_bank)))
        root = root if root.is_absolute() else REPO_ROOT / root
    folder = root / split_name
    if folder.is_dir() and any(folder.iterdir()):
        return folder.resolve()
    if root not in _notified_missing_banks:
        _notified_missing_banks.add(root)
        print(
            f"no real sound bank at {root} (build it with: make sounds); "
            "the scenes use the procedural sounds only",
            file=sys.stderr,
        )
    return None


@dataclass(frozen=True)
class SplitConfig:
    """One generated split: ``scenes`` samples; scene i uses the data layer's
    ``sample_seed(seed, i)``, so splits with different base seeds are independent."""

    scenes: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scenes < 1:
            raise ValueError(f"scenes: expected an int >= 1, got {self.scenes}")
        if self.seed < 0:
            raise ValueError(f"seed: expected an int >= 0, got {self.seed}")


@dataclass(frozen=True)
class DataConfig:
    """Where samples come from and how they are cached.

    ``source``: ``synthetic`` scenes (generated into ``cache_dir`` and reused by later runs), or
    ``starss23`` recordings under ``starss23_root`` (SELD pre-training only: it has no depth).
    ``camera_width`` x ``camera_height`` [px] is the rendered camera (with the field of view of
    ``scene.intrinsics``). The prepared inputs of a split are held in memory as tensors.
    ``scene.wide: {}`` selects the wide domain-randomisation profile (``avi_ros.data.domain``).
    ``sound_bank``: a real sound bank (``make sounds``; ``auto`` = ``$AVI_ROS_SOUNDS/bank``): the
    training split draws its recordings from ``<bank>/train`` and validation from ``<bank>/val``,
    so model selection never hears a training recording. Without a bank the scenes use the
    procedural sounds only, and a one-line notice says so.
    ``scene.procedural_probability: 0.3`` and ``scene.clip_augmentation: {}`` widen the thin real
    classes with procedural families and waveform augmentation, in the training split only.
    ``acs_transforms``: FOA channel-swap augmentation of the training split, 0 (off), 8 or 16
    transforms, restricted per sample so the camera view stays consistent (``training.augment``).
    """

    source: Literal["synthetic", "starss23"] = "synthetic"
    cache_dir: str = "runs/cache/synthetic"
    train: SplitConfig = field(default_factory=lambda: SplitConfig(4000, 1))
    val: SplitConfig = field(default_factory=lambda: SplitConfig(500, 2))
    camera_width: int = 640
    camera_height: int = 480
    scene: SceneConfig = field(default_factory=SceneConfig)
    generation_workers: int = 2
    starss23_root: str | None = None
    sound_bank: str | None = None
    acs_transforms: int = 0

    def __post_init__(self) -> None:
        if self.camera_width < 8 or self.camera_height < 8:
            raise ValueError(
                f"camera size: expected at least 8 x 8 px, got {self.camera_width} x {self.camera_height}"
            )
        if self.generation_workers < 1:
            raise ValueError(f"generation_workers: expected an int >= 1, got {self.generation_workers}")
        if self.train.seed == self.val.seed:
            raise ValueError(
                f"val.seed: expected a seed other than train.seed ({self.train.seed}) for held-out data"
            )
        if self.acs_transforms not in (0, 8, 16):
            raise ValueError(f"acs_transforms: expected 0 (off), 8 or 16, got {self.acs_transforms}")
        if self.source == "starss23" and not self.starss23_root:
            raise ValueError("starss23_root: expected the STARSS23 folder when source is 'starss23'")

    def scene_config(self, split_name: str | None = None) -> SceneConfig:
        """The scene config with the camera resized to ``camera_width`` x ``camera_height`` and,
        for a named split (``train``/``val``) with a ``sound_bank``, that split's recordings.

        Only ``train`` keeps ``procedural_probability`` and ``clip_augmentation``: validation,
        test and any unnamed use (evaluation, calibration) hear real, untouched clips."""
        scene = self.scene.with_image_size(self.camera_width, self.camera_height)
        if split_name != "train":
            scene = replace(scene, procedural_probability=0.0, clip_augmentation=None)
        bank_split = resolve_bank_split(self.sound_bank, split_name) if split_name else None
        return replace(scene, sound_dir=str(bank_split)) if bank_split is not None else scene


@dataclass(frozen=True)
class PretrainedConfig:
    """Local weight files (nothing is downloaded): a torchvision ImageNet state_dict for the
    visual encoder, a DCASE2023 baseline state_dict, or a checkpoint directory of a
    ``seld_pretrain`` run whose audio encoder is copied. ``model_checkpoint``, a checkpoint
    directory with this run's features that holds every weight of this run's model (the shipped
    model, a run's ``checkpoints/best``), starts the whole model instead (weights, feature
    statistics; its calibration undone; weights of layers this config leaves out are dropped):
    staged transfer, so a longer run goes on from a shorter one on new scenes rather than from
    scratch. Relative paths start at the repository root."""

    imagenet_weights: str | None = None
    dcase_checkpoint: str | None = None
    seld_checkpoint: str | None = None
    model_checkpoint: str | None = None

    def __post_init__(self) -> None:
        others = [self.imagenet_weights, self.dcase_checkpoint, self.seld_checkpoint]
        if self.model_checkpoint and any(others):
            raise ValueError(
                "pretrained.model_checkpoint starts the whole model: leave imagenet_weights, "
                "dcase_checkpoint and seld_checkpoint empty (set them to null)"
            )


@dataclass(frozen=True)
class OptimConfig:
    """AdamW settings shared by all stages. ``batch_size`` is per process (per GPU under DDP)."""

    batch_size: int = 32
    eval_batch_size: int = 64
    weight_decay: float = 1e-4
    grad_clip_norm: float = 5.0
    scheduler: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.05

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(
                f"batch sizes: expected ints >= 1, got {self.batch_size} / {self.eval_batch_size}"
            )
        if self.grad_clip_norm < 0 or self.weight_decay < 0:
            raise ValueError("grad_clip_norm and weight_decay: expected values >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio: expected a value in [0, 1], got {self.min_lr_ratio}")


@dataclass(frozen=True)
class StageConfig:
    """One training stage.

    ``seld_trainable_fraction``: share of the SELD encoder's depth units trained, from the top
    (0 = frozen, 0.5 = top half, 1 = all); ``train_visual_encoder``: whether the ResNet trains;
    ``lr``: learning rate per model part (audio_encoder, visual_encoder, adapter, head); a part
    left out gets 0 and is frozen.
    """

    name: str = "stage"
    epochs: int = 1
    seld_trainable_fraction: float = 0.0
    train_visual_encoder: bool = False
    lr: dict[str, float] = field(default_factory=lambda: {"adapter": 1e-3, "head": 1e-3})
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs: expected an int >= 0, got {self.epochs}")
        if not 0.0 <= self.seld_trainable_fraction <= 1.0:
            raise ValueError(
                f"seld_trainable_fraction: expected a value in [0, 1], got {self.seld_trainable_fraction}"
            )
        for part, value in self.lr.items():
            if part not in MODEL_PARTS:
                raise ValueError(f"lr.{part}: unknown model part; expected one of {list(MODEL_PARTS)}")
            if value < 0:
                raise ValueError(f"lr.{part}: expected a learning rate >= 0, got {value}")
        if self.seld_trainable_fraction > 0 and self.lr.get("audio_encoder", 0.0) <= 0:
            raise ValueError("lr.audio_encoder: expected > 0 when seld_trainable_fraction > 0")
        if self.train_visual_encoder and self.lr.get("visual_encoder", 0.0) <= 0:
            raise ValueError("lr.visual_encoder: expected > 0 when train_visual_encoder is true")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected an int >= 0, got {self.warmup_steps}")

    def part_lr(self, part: str) -> float:
        return self.lr.get(part, 0.0)


@dataclass(frozen=True)
class RuntimeConfig:
    """Device and bookkeeping.

    ``device``: auto (CUDA when available), cpu or cuda[:N]; ``amp``: mixed precision on CUDA;
    ``threads``: torch CPU threads (0 = torch's default); ``checkpoint_every_steps``: extra
    ``last`` checkpoints inside an epoch (0 = at epoch ends only); ``stop_after_steps``: save
    ``last`` and stop after that many steps, exactly as an interrupt would (0 = never);
    ``select_metric``: validation metric choosing ``checkpoints/best`` (higher is better, or
    lower for names ending in ``loss``/``error``/``_deg``/``_m``/``ece``).
    """

    device: str = "auto"
    amp: bool = True
    threads: int = 0
    log_every_steps: int = 20
    checkpoint_every_steps: int = 0
    eval_every_epochs: int = 1
    progress: bool = True
    stop_after_steps: int = 0
    select_metric: str = "set/f20"

    def __post_init__(self) -> None:
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got '{self.device}'")
        for name in ("threads", "checkpoint_every_steps", "stop_after_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {getattr(self, name)}")
        if self.log_every_steps < 1 or self.eval_every_epochs < 1:
            raise ValueError("log_every_steps and eval_every_epochs: expected ints >= 1")

    @property
    def select_lower_is_better(self) -> bool:
        return self.select_metric.endswith(("loss", "error", "_deg", "_m", "ece", "seld_score", "er20"))


@dataclass(frozen=True)
class CalibrationConfig:
    """Post-hoc calibration on the validation split, folded into the head's last layers so the
    node needs no extra step: a temperature for the class softmax and Platt scaling (a·z + b)
    for the confidence logit."""

    enabled: bool = True


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole training run. ``output_dir`` may contain ``{name}``."""

    name: str = "run"
    task: Literal["hazard_set", "seld_pretrain", "decision"] = "hazard_set"
    seed: int = 0
    output_dir: str = "runs/{name}"
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)
    pretrained: PretrainedConfig = field(default_factory=PretrainedConfig)
    loss: LossConfig = field(default_factory=LossConfig)  # task: hazard_set only
    optim: OptimConfig = field(default_factory=OptimConfig)
    stages: list[StageConfig] = field(default_factory=lambda: [StageConfig()])
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)  # task: decision only

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages: expected at least one stage")
        taxonomy_classes = default_taxonomy().num_classes
        if self.model.num_classes != taxonomy_classes:
            raise ValueError(
                f"model.num_classes: expected {taxonomy_classes} (the taxonomy's classes), "
                f"got {self.model.num_classes}"
            )
        try:
            self.model.check_features(self.features)
        except ValueError as exc:
            raise ValueError(f"features: {exc}") from exc
        if self.data.scene.duration_s + 1e-9 < self.features.window_seconds:
            raise ValueError(
                f"data.scene.duration_s: {self.data.scene.duration_s} s is shorter than "
                f"features.window_seconds ({self.features.window_seconds} s)"
            )
        if self.data.source == "starss23" and self.task != "seld_pretrain":
            raise ValueError(
                "data.source: 'starss23' has no depth or hazard-set labels; use it with task seld_pretrain"
            )
        if self.task == "seld_pretrain" and not self.model.audio.accdoa_classes:
            raise ValueError(
                "model.audio.accdoa_classes: expected > 0 for task seld_pretrain (multi-ACCDOA head)"
            )

    @property
    def total_epochs(self) -> int:
        return sum(stage.epochs for stage in self.stages)

    def resolved_output_dir(self) -> Path:
        return repo_path(self.output_dir.format(name=self.name))


def repo_path(path: str | Path) -> Path:
    """A config path: absolute as given, relative ones from the repository root (like output_dir)."""
    path = Path(path)
    return path if path.is_absolute() else REPO_ROOT / path


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Validated ExperimentConfig from a plain mapping; raises ConfigError naming the key."""
    return build(ExperimentConfig, data)


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config, apply ``key=value`` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    data = apply_overrides(data, list(overrides or []))
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _git(*args: str) -> str:
    """What ``git args`` prints in the checkout; OSError or SubprocessError when git cannot say."""
    result = subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


def git_commit() -> str:
    """The checkout's commit (with ``-dirty`` when files changed), or 'unknown' outside git."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def resolved_config_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The config as plain data plus the git commit, for ``config_resolved.yaml``."""
    return {"git_commit": git_commit(), **to_plain(config)}


def write_resolved_config(config: ExperimentConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(resolved_config_dict(config), sort_keys=False), encoding="utf-8")


def read_resolved_config(path: Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Inverse of ``write_resolved_config`` (used by ``--resume``, ``run_status`` and the study),
    with optional overrides; a run written before the one model reads as ``_upgraded`` says."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.pop("git_commit", None)
    return config_from_dict(apply_overrides(_upgraded(data, path), list(overrides or [])))


def _upgraded(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """A resolved config written before the single-hazard model was retired, in today's schema:
    its set-loss weights (``hazard_loss``) become ``loss`` (the single-hazard weights there are
    dropped), the model's ``RETIRED_KEYS`` go, and a seld_pretrain or decision run's
    ``model.hazard_slots: 0`` (then the default, and unused by those tasks) takes today's default.
    A run of the retired task itself cannot be read: ConfigError naming what to do."""
    if data.get("task", "imagination") == "imagination":
        raise ConfigError(
            f"{path}: a run of the retired single-hazard task 'imagination'; train the one model "
            "instead: python training/train.py --config training/configs/hazard_set.yaml (or demo.yaml)"
        )
    if "hazard_loss" in data:
        data["loss"] = data.pop("hazard_loss")
    model = without_retired_keys(data.get("model") or {})
    if model.get("hazard_slots") == 0 and data["task"] != "hazard_set":
        model.pop("hazard_slots")
    return {**data, "model": model}
