"""Checkpoints: a directory with ``model.safetensors`` (weights) and ``metadata.json``.

The metadata carries everything needed to rebuild and use the model without any other file:
format version, model config, feature config, feature normalisation statistics, the taxonomy
and an ``extra`` dict for callers (for example the occlusion config used in training). Both
files are written atomically (temporary file, then ``os.replace``), so a crash mid-save never
leaves a half-written checkpoint behind. Loading rebuilds the model from the metadata and
refuses weights that do not fit it, naming the file and the first offending key.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from avi_ros import __version__
from avi_ros.features import FeatureConfig
from avi_ros.models.builder import build_model
from avi_ros.models.config import ModelConfig
from avi_ros.models.hazard_set import HazardSetModel
from avi_ros.models.intensity_direction import MODE_STEPS, MODE_WIDTH_DEG
from avi_ros.taxonomy import Taxonomy

FORMAT_NAME = "avi_ros.checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
# The package's model, on the SELD encoder pre-trained for it.
HOW_TO_MAKE_ONE = (
    "python training/train.py --config training/configs/hazard_set_seld.yaml, then "
    "python training/train.py --config training/configs/hazard_set.yaml"
)
# Other checkpoint kinds of this package (metadata.json "format") -> what they are and what to do instead.
OTHER_FORMATS = {
    "avi_ros.seld_encoder": (
        "a SELD encoder checkpoint (task seld_pretrain) without a hazard head; name it as "
        "pretrained.seld_checkpoint of a hazard-model config and use that run's checkpoints/best"
    ),
    "avi_ros.decision": (
        "a decision-stage checkpoint (task decision), not a hazard model; give it to the node's "
        "decision.model_path and a hazard-model checkpoint here"
    ),
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the path and the problem."""


@dataclass
class CheckpointMetadata:
    """The parsed ``metadata.json``. ``normalization`` holds "mean" and "std" as [C][F] lists."""

    model_config: ModelConfig
    feature_config: FeatureConfig
    taxonomy: Taxonomy
    normalization: dict[str, list[list[float]]]
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    package_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": self.version,
            "package_version": self.package_version,
            "model_config": self.model_config.to_dict(),
            "feature_config": self.feature_config.to_dict(),
            "normalization": self.normalization,
            "taxonomy": self.taxonomy.to_dict(),
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path) -> CheckpointMetadata:
        check_format(data, source, FORMAT_NAME, FORMAT_VERSION)
        _check_hazard_slots(data, source)
        for key in ("model_config", "feature_config", "normalization", "taxonomy"):
            if key not in data:
                raise CheckpointError(f"{source}: metadata lacks the key '{key}'")
        try:
            return cls(
                model_config=ModelConfig.from_dict(data["model_config"]),
                feature_config=FeatureConfig.from_dict(data["feature_config"]),
                taxonomy=Taxonomy.from_dict(data["taxonomy"]),
                normalization={"mean": data["normalization"]["mean"], "std": data["normalization"]["std"]},
                extra=dict(data.get("extra") or {}),
                version=int(data["version"]),
                package_version=str(data.get("package_version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: malformed metadata: {exc}") from exc


def _check_consistent(metadata: CheckpointMetadata, source: Path) -> None:
    """Config, features and taxonomy must describe the same model."""
    config = metadata.model_config
    if config.num_classes != metadata.taxonomy.num_classes:
        raise CheckpointError(
            f"{source}: model_config.num_classes = {config.num_classes} but the taxonomy has "
            f"{metadata.taxonomy.num_classes} classes"
        )
    try:
        config.check_features(metadata.feature_config)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it into place."""
    # A unique name in the same directory (so the rename is atomic); plain creation keeps the
    # usual umask permissions, unlike mkstemp's 0600.
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    directory: str | Path,
    model: HazardSetModel,
    feature_config: FeatureConfig,
    taxonomy: Taxonomy,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``directory`` (created if needed); returns the directory.

    The normalisation statistics are read from the model's ``feature_norm`` buffers.
    ``extra`` must be JSON-serialisable.
    """
    directory = Path(directory)
    metadata = CheckpointMetadata(
        model_config=model.config,
        feature_config=feature_config,
        taxonomy=taxonomy,
        normalization={
            "mean": model.feature_norm.mean.detach().cpu().tolist(),
            "std": model.feature_norm.std.detach().cpu().tolist(),
        },
        extra=dict(extra or {}),
    )
    _check_consistent(metadata, directory)
    text = json.dumps(metadata.to_dict(), indent=2)  # fails before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    atomic_write(
        directory / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT_NAME})
    )
    atomic_write(directory / METADATA_FILE, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return directory


def model_fingerprint(directory: str | Path) -> str:
    """What fixes a hazard model's outputs, as a sha256 (first 16 hex digits): its weights, its
    metadata (config, normalisation, calibration) and the run-time reading of its directions (the
    mode-seeking steps and kernel width, code constants). Caches of the model's outputs key on it:
    a recalibration or a new direction reading with the same weights makes them stale."""
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, METADATA_FILE):
        with open(Path(directory) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    digest.update(json.dumps({"mode_steps": MODE_STEPS, "mode_width_deg": MODE_WIDTH_DEG}).encode())
    return digest.hexdigest()[:16]


def check_format(data: dict[str, Any], source: Path, name: str, version: int) -> None:
    """CheckpointError naming ``source`` unless ``data`` declares format ``name``, ``version``."""
    if data.get("format") != name:
        raise CheckpointError(f"{source}: 'format' is {data.get('format')!r}, expected '{name}'")
    if data.get("version") != version:
        raise CheckpointError(
            f"{source}: format version {data.get('version')!r} is not supported (expected {version})"
        )


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; CheckpointError naming the file when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def read_weights(path: Path, how_to_make: str) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``, read the one way for every kind of checkpoint.

    FileNotFoundError (ending with ``how_to_make``, which says how to write one) when it is
    missing, CheckpointError naming the file when it cannot be read.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing ({how_to_make})")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read safetensors: {exc}") from exc


def read_checkpoint_metadata(directory: str | Path) -> CheckpointMetadata:
    """Parse and check ``metadata.json`` of a checkpoint directory without loading weights."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"checkpoint directory {directory} does not exist; train one with: {HOW_TO_MAKE_ONE}"
        )
    path = directory / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {directory} is not a checkpoint (make one with: {HOW_TO_MAKE_ONE})"
        )
    data = read_json_object(path)
    if data.get("format") in OTHER_FORMATS:
        raise CheckpointError(f"{directory} is {OTHER_FORMATS[data['format']]}")
    if data.get("format") == FORMAT_NAME and data.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {data.get('version')!r} (avi_ros {data.get('package_version', '?')}) "
            f"is not supported by avi_ros {__version__} (expected {FORMAT_VERSION}); retrain it with: "
            f"{HOW_TO_MAKE_ONE}, or use the avi_ros version that wrote it"
        )
    metadata = CheckpointMetadata.from_dict(data, path)
    _check_consistent(metadata, path)
    return metadata


def _check_hazard_slots(data: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint of the single-hazard model that preceded the K-slot one: its metadata has
    no ``model_config.hazard_slots`` (or 0), and its weights fit no model this version builds."""
    model_config = data.get("model_config")
    if isinstance(model_config, dict) and not model_config.get("hazard_slots"):
        raise CheckpointError(
            f"{path}: a checkpoint of the retired single-hazard model (no model_config.hazard_slots, "
            f"avi_ros {data.get('package_version', '?')}); avi_ros {__version__} has one model with K "
            f"hazard slots: retrain with: {HOW_TO_MAKE_ONE} (model.hazard_slots=1 for one hazard per frame)"
        )


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[HazardSetModel, CheckpointMetadata]:
    """Rebuild the model of a checkpoint directory on ``device``, in eval mode.

    Raises FileNotFoundError for a missing directory or file, and CheckpointError when the
    metadata is malformed or the weights do not fit the config it describes.
    """
    directory = Path(directory)
    metadata = read_checkpoint_metadata(directory)
    weights_path = directory / WEIGHTS_FILE
    state = read_weights(weights_path, f"make a checkpoint with: {HOW_TO_MAKE_ONE}")
    model = build_model(metadata.model_config)
    try:
        _check_weights(model, state, weights_path)
    except CheckpointError as exc:  # most often a checkpoint of an older model layout
        raise CheckpointError(
            f"{exc} (written by avi_ros {metadata.package_version or '?'}, this is {__version__}; "
            f"retrain it with: {HOW_TO_MAKE_ONE})"
        ) from exc
    model.load_state_dict(state, strict=True)
    _check_normalization(model, metadata, directory / METADATA_FILE)
    return model.to(device).eval(), metadata


def _check_weights(model: HazardSetModel, state: dict[str, torch.Tensor], path: Path) -> None:
    """Missing keys, then unexpected keys, then shapes: the first problem found is reported."""
    expected = model.state_dict()
    described = f"the metadata's model config (variant '{model.config.variant}', {model.config.visual.arch})"
    missing = [key for key in expected if key not in state]
    if missing:
        raise CheckpointError(
            f"{path}: weights lack '{missing[0]}' ({len(missing)} missing keys) that {described} needs"
        )
    unexpected = [key for key in state if key not in expected]
    if unexpected:
        raise CheckpointError(
            f"{path}: weights have '{unexpected[0]}' ({len(unexpected)} unexpected keys) "
            f"that {described} lacks"
        )
    for key, target in expected.items():
        if tuple(state[key].shape) != tuple(target.shape):
            raise CheckpointError(
                f"{path}: '{key}' has shape {tuple(state[key].shape)} but {described} "
                f"needs {tuple(target.shape)}"
            )


def _check_normalization(model: HazardSetModel, metadata: CheckpointMetadata, path: Path) -> None:
    for name in ("mean", "std"):
        try:
            stored = torch.tensor(metadata.normalization[name], dtype=torch.float32)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: normalization.{name} is not a numeric [C][F] list: {exc}"
            ) from exc
        if not torch.equal(stored, getattr(model.feature_norm, name)):
            raise CheckpointError(
                f"{path}: normalization.{name} disagrees with the statistics in the weights"
            )
