"""The trained model that ships with the package: where it lives and how to ask for it.

Perception nodes in ROS start with weights, not with a training run. The package carries one
small trained checkpoint (safetensors + metadata, with its model card and metrics files) inside
the Python package, so it installs with pip and with colcon alike and resolves from any working
directory. Every entry point whose model path is optional (the node, the launch file, ``avi-ros
replay`` and ``avi-ros predict``) falls back to it through ``resolve_model_path``.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "models" / "shipped"


def shipped_model_path() -> Path:
    """The shipped checkpoint directory (it holds ``model.safetensors`` and ``metadata.json``)."""
    return SHIPPED_MODEL_DIR


def resolve_model_path(model_path: str | Path | None) -> Path:
    """The checkpoint to load: ``model_path`` when given (``~`` expanded), else the shipped model.

    Raises FileNotFoundError naming the path and what to do when the directory is missing, so a
    user never sees "retrain" for what is a wrong path.
    """
    if model_path is not None and str(model_path).strip():
        path = Path(model_path).expanduser()
        if path.is_file():
            raise FileNotFoundError(
                "--model expects the checkpoint directory (holding model.safetensors and metadata.json), "
                f"not the file {path}; try --model {path.parent}"
            )
        if not path.is_dir():
            raise FileNotFoundError(
                f"model path '{path}' is not a directory (resolved from {Path.cwd()}); "
                "give a checkpoint directory, or leave the model path empty to use the shipped model"
            )
        return path
    path = shipped_model_path()
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"the shipped model is missing from this install ({path}); reinstall the package, "
            "or give a checkpoint directory from training/train.py"
        )
    return path
