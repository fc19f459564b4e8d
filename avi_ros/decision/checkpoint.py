"""Decision checkpoints: ``decision.safetensors`` (the trainable state) + ``decision_metadata.json``.

The metadata rebuilds the model without any other file: the model config, dv (feature size),
d (token width), F and K, the label maps, the taxonomy the features were built with (class
order of the probabilities), the telemetry layout and scales, the parameter counts, and an
``extra`` dict for callers (the training run, its git hash). A frozen ``hf_local`` backbone is
not stored: it loads again from ``model_config.hf_path``. Both files are written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from avi_ros import __version__
from avi_ros.checkpoint import CheckpointError, atomic_write, check_format, read_json_object, read_weights
from avi_ros.decision.features import feature_size
from avi_ros.decision.labels import label_maps
from avi_ros.decision.model import TELEMETRY_SCALE, DecisionModel, DecisionModelConfig, parameter_counts
from avi_ros.taxonomy import Taxonomy
from avi_ros.telemetry import TELEMETRY_FIELDS

FORMAT_NAME = "avi_ros.decision"
FORMAT_VERSION = 1
WEIGHTS_FILE = "decision.safetensors"
METADATA_FILE = "decision_metadata.json"
HOW_TO_MAKE_ONE = "python training/train.py --config training/configs/decision.yaml"
HIGH_RISK_THRESHOLD_KEY = "high_risk_threshold"


@dataclass
class DecisionMetadata:
    """The parsed ``decision_metadata.json``."""

    model_config: DecisionModelConfig
    taxonomy: Taxonomy
    width: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_size(self) -> int:
        return feature_size(self.taxonomy.num_classes)

    @property
    def high_risk_threshold(self) -> float | None:
        """P(HIGH) at which the stage says HIGH risk (``inference.risk_labels``); None: the argmax.
        Chosen on the validation split at the end of training and stored under ``extra``."""
        value = self.extra.get(HIGH_RISK_THRESHOLD_KEY)
        return None if value is None else float(value)

    def to_dict(self, parameters: dict[str, int] | None = None) -> dict[str, Any]:
        config = self.model_config
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "package_version": __version__,
            "model_config": config.to_dict(),
            "dv": self.feature_size,
            "d": self.width,
            "F": config.frames,
            "K": config.tokens,
            "labels": label_maps(self.taxonomy),
            "taxonomy": self.taxonomy.to_dict(),
            "telemetry_fields": list(TELEMETRY_FIELDS),
            "telemetry_scale": list(TELEMETRY_SCALE),
            "parameters": parameters or {},
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path) -> DecisionMetadata:
        check_format(data, source, FORMAT_NAME, FORMAT_VERSION)
        try:
            metadata = cls(
                model_config=DecisionModelConfig.from_dict(data["model_config"]),
                taxonomy=Taxonomy.from_dict(data["taxonomy"]),
                width=int(data["d"]),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: malformed metadata: {exc!r}") from exc
        if int(data.get("dv", -1)) != metadata.feature_size:
            raise CheckpointError(
                f"{source}: dv = {data.get('dv')} but the taxonomy's features have {metadata.feature_size}"
            )
        if list(data.get("telemetry_fields", [])) != list(TELEMETRY_FIELDS):
            raise CheckpointError(f"{source}: telemetry_fields differ from {list(TELEMETRY_FIELDS)}")
        return metadata


def save_decision_checkpoint(
    directory: str | Path, model: DecisionModel, taxonomy: Taxonomy, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s trainable state and metadata into ``directory`` (created if needed)."""
    directory = Path(directory)
    if model.feature_size != feature_size(taxonomy.num_classes):
        raise ValueError(
            f"model dv {model.feature_size} does not fit the taxonomy's {taxonomy.num_classes} classes"
        )
    metadata = DecisionMetadata(model.config, taxonomy, model.width, dict(extra or {}))
    text = json.dumps(metadata.to_dict(parameter_counts(model)), indent=2)  # fails before any write
    directory.mkdir(parents=True, exist_ok=True)
    tensors = model.trainable_state_dict()
    atomic_write(
        directory / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT_NAME})
    )
    atomic_write(directory / METADATA_FILE, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return directory


def store_high_risk_threshold(directory: str | Path, threshold: float | None) -> None:
    """Write the HIGH-risk operating point (``DecisionMetadata.high_risk_threshold``) into a
    checkpoint's metadata, atomically; the weights stay as they are."""
    path = Path(directory) / METADATA_FILE
    data = read_json_object(path)
    data.setdefault("extra", {})[HIGH_RISK_THRESHOLD_KEY] = threshold
    text = json.dumps(data, indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def read_decision_metadata(directory: str | Path) -> DecisionMetadata:
    """Parse ``decision_metadata.json`` of a checkpoint directory without loading weights."""
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: not a decision checkpoint (make one with: {HOW_TO_MAKE_ONE})"
        )
    return DecisionMetadata.from_dict(read_json_object(path), path)


def load_decision_weights(model: DecisionModel, directory: str | Path) -> None:
    """Load a checkpoint's trainable state into ``model`` (CheckpointError when it does not fit)."""
    path = Path(directory) / WEIGHTS_FILE
    state = read_weights(path, f"make a decision checkpoint with: {HOW_TO_MAKE_ONE}")
    try:
        model.load_trainable_state_dict(state)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def load_decision_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[DecisionModel, DecisionMetadata]:
    """Rebuild the decision model of a checkpoint directory on ``device``, in eval mode."""
    metadata = read_decision_metadata(directory)
    model = DecisionModel(metadata.model_config, metadata.feature_size)
    if model.width != metadata.width:
        raise CheckpointError(f"{directory}: d = {metadata.width} but the rebuilt model has {model.width}")
    load_decision_weights(model, directory)
    return model.to(device).eval(), metadata
