"""What a training task must provide to the generic loop in ``training.trainer``.

The trainer owns the loop, stages, optimiser, AMP, DDP, logging, checkpoints and resume; a
task owns the data, the model, the loss, the metrics and what a checkpoint holds. Three tasks
exist: ``hazard_set`` (the hazard model, ``training.hazard_set_task``), ``seld_pretrain`` (the
SELD encoder with its multi-ACCDOA head) and ``decision`` (the decision stage).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.config import ExperimentConfig, StageConfig
from training.data import InputStore
from training.distributed import DistInfo


@dataclass
class EvalResult:
    """Nested metrics (JSON-ready) and the flat scalars logged to val.jsonl and TensorBoard."""

    metrics: dict[str, Any]
    scalars: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """See the module docstring; ``model`` arguments are the unwrapped (non-DDP) module."""

    def __init__(self, config: ExperimentConfig, device: torch.device, dist: DistInfo) -> None:
        self.config = config
        self.device = device
        self.dist = dist
        self.progress = config.runtime.progress and dist.is_main

    @abstractmethod
    def load_data(self) -> tuple[InputStore, InputStore]:
        """(train, val) stores; generates and caches on first use (rank 0 runs it first)."""

    @abstractmethod
    def initial_model(self, train: InputStore) -> nn.Module:
        """A fresh model with pretrained weights and normalisation statistics installed."""

    @abstractmethod
    def model_parts(self, model: nn.Module) -> dict[str, nn.Module | None]:
        """Parameter groups by name (the keys of ``StageConfig.lr``)."""

    @abstractmethod
    def configure_stage(self, model: nn.Module, stage: StageConfig) -> None:
        """Set requires_grad for the stage (freezing)."""

    @abstractmethod
    def loss(
        self, forward: nn.Module, model: nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of a batch; ``forward`` is the (possibly DDP-wrapped) module to call."""

    @abstractmethod
    def evaluate(self, model: nn.Module, store: InputStore) -> EvalResult:
        """Metrics of ``model`` on a split."""

    @abstractmethod
    def save(self, model: nn.Module, target: Path, trainer_state: dict | None, progress: dict | None) -> None:
        """Write a checkpoint directory atomically."""

    @abstractmethod
    def load_weights(self, model: nn.Module, directory: Path) -> None:
        """Load the weights of a checkpoint written by ``save``."""

    @abstractmethod
    def finalize(self, model: nn.Module, val: InputStore, run_dir: Path, best_dir: Path) -> EvalResult:
        """After training (rank 0): post-process ``best`` and write plots and exports."""
