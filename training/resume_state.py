"""Training checkpoints: a node-loadable model checkpoint plus what an exact resume needs.

``checkpoints/last`` = ``avi_ros.checkpoint`` directory (model.safetensors + metadata.json, so
the node can load it) + ``trainer_state.pt`` (optimizer, scheduler, grad scaler, RNG states of
every rank, position in the epoch) + ``progress.json`` (the same position, human-readable).
``checkpoints/best`` holds only the model files.

A checkpoint directory is replaced atomically as a whole: it is written to a temporary
sibling, the old directory is renamed aside, the new one renamed into place, and only then is
the old one deleted. Every rename is atomic, so at any instant either the complete new or the
complete old checkpoint exists (``resolve_checkpoint`` finds the old one if a crash hit
between the two renames). ``trainer_state.pt`` holds only tensors and plain Python values and
is read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

TRAINER_STATE_FILE = "trainer_state.pt"
PROGRESS_FILE = "progress.json"


def capture_rng_state() -> dict[str, Any]:
    """RNG states of torch (CPU and CUDA), numpy and Python's random, as weights_only-safe values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy and Python's random."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _old(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def resolve_checkpoint(path: Path) -> Path:
    """``path``, or its renamed-aside predecessor when a crash hit between the two renames."""
    if path.is_dir():
        return path
    if _old(path).is_dir():
        return _old(path)
    raise FileNotFoundError(f"no checkpoint at {path}")


def save_training_checkpoint(
    target: Path,
    write_model: Callable[[Path], object],
    trainer_state: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (see module doc); returns ``target``.

    ``write_model(directory)`` writes the model files (e.g. ``avi_ros.checkpoint.save_checkpoint``).
    """
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write_model(tmp)
    if trainer_state is not None:
        torch.save(trainer_state, tmp / TRAINER_STATE_FILE)
    if progress is not None:
        (tmp / PROGRESS_FILE).write_text(json.dumps(progress, indent=2) + "\n", encoding="utf-8")
    for child in [*tmp.iterdir(), tmp]:
        _fsync(child)
    old = _old(target)
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    _fsync(target.parent)
    if old.exists():
        shutil.rmtree(old)
    return target


def read_progress(directory: Path) -> dict[str, Any] | None:
    """The ``progress.json`` of a checkpoint directory, or None when it has none."""
    path = directory / PROGRESS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_trainer_state(directory: Path) -> dict[str, Any]:
    path = directory / TRAINER_STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {directory} is not a resumable training checkpoint")
    return torch.load(path, map_location="cpu", weights_only=True)


def _fsync(path: Path) -> None:
    """Flush a file or a directory's entries to disk where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
