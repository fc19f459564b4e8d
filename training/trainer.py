"""The training loop: stages, per-group learning rates, AMP, DDP, logging, checkpoints and exact resume.

Stages come from the config. Each stage sets which parts train (the task freezes the rest)
and their learning rates, builds a fresh AdamW with one parameter group per model part, and a
warm-up + cosine (or constant) schedule over the stage's steps.

Exact resume: the batches of an epoch are a pure function of (seed, epoch, rank), see
``training.data.epoch_batches``; a checkpoint stores the position (epoch, batches done), the
optimizer, scheduler and grad-scaler states and every rank's RNG states. ``--resume`` rebuilds
the same model, restores all of it and skips the batches already done, so the next batch and
the loss curve are those of an uninterrupted run. SIGINT/SIGTERM finish the current step,
save ``checkpoints/last`` and stop.

Outputs under the run directory: ``config_resolved.yaml``, ``metrics/train.jsonl`` and
``metrics/val.jsonl``, ``tensorboard/``, ``checkpoints/{best,last}``, ``plots/*.png`` and
``export/`` (labels.json, model_card.md, metrics.json). Only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from avi_ros.device import resolve_device
from training.augment import acs_for_run
from training.config import ExperimentConfig, StageConfig, write_resolved_config
from training.data import InputStore, batch_fingerprint, epoch_batches
from training.decision_task import DecisionTask
from training.distributed import DistInfo, any_rank, barrier, gather_objects, init_distributed
from training.hazard_set_task import HazardSetTask
from training.precision import grad_scaler
from training.resume_state import (
    capture_rng_state,
    load_trainer_state,
    resolve_checkpoint,
    restore_rng_state,
    seed_everything,
)
from training.seld_task import SeldPretrainTask
from training.task import EvalResult, Task
from training.typed_config import ConfigError

TASKS: dict[str, type[Task]] = {
    "hazard_set": HazardSetTask,
    "seld_pretrain": SeldPretrainTask,
    "decision": DecisionTask,
}


@dataclass
class Position:
    """Where training stands: ``epoch`` in progress (0-based, counted over all stages), batches done in it."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


@dataclass
class TrainResult:
    """``status``: completed, interrupted (a signal) or stopped (runtime.stop_after_steps)."""

    status: str
    run_dir: Path
    position: Position
    best_value: float | None
    final_metrics: dict[str, Any] | None = None
    signal_number: int | None = None


class StopSignals:
    """SIGINT/SIGTERM set a flag that the loop checks after each step; a second signal aborts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        print(f"\nsignal {signum}: finishing the current step, then saving checkpoints/last", file=sys.stderr)

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)


def lr_factor(step: int, total: int, warmup: int, kind: str, min_ratio: float) -> float:
    """Factor of the base learning rate at ``step``: linear warm-up, then cosine decay to ``min_ratio``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """Runs one ExperimentConfig into ``run_dir``; ``resume`` continues from ``run_dir/checkpoints/last``."""

    def __init__(self, config: ExperimentConfig, run_dir: Path, resume: bool = False) -> None:
        self.config = config
        self.run_dir = run_dir
        self.resume = resume
        runtime = config.runtime
        if runtime.threads:
            torch.set_num_threads(runtime.threads)
        device = resolve_device(runtime.device)
        self.dist: DistInfo = init_distributed(device.type)
        if device.type == "cuda" and self.dist.enabled:
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        self.task: Task = TASKS[config.task](config, device, self.dist)
        self.signals = StopSignals()
        self.writer: SummaryWriter | None = None
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.model: nn.Module | None = None  # the unwrapped model, once built

    # --- paths -------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def metrics_dir(self) -> Path:
        return self.run_dir / "metrics"

    # --- main entry --------------------------------------------------------------------
    def fit(self) -> TrainResult:
        with self.signals.installed():
            return self._fit()

    def _fit(self) -> TrainResult:
        config, dist = self.config, self.dist
        seed_everything(config.seed)
        if dist.is_main:
            self.metrics_dir.mkdir(parents=True, exist_ok=True)
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            if not self.resume:
                write_resolved_config(config, self.run_dir / "config_resolved.yaml")
        train, val = self._load_data()
        train = train.with_augmentation(acs_for_run(config))
        model = self.model = self.task.initial_model(train)
        state = None
        position = Position()
        if self.resume:
            last = resolve_checkpoint(self.checkpoint_dir / "last")
            self.task.load_weights(model, last)
            state = load_trainer_state(last)
            if state["world_size"] != dist.world_size:
                raise ConfigError(
                    f"{last} was written by {state['world_size']} process(es); resume with the same number "
                    f"(now {dist.world_size}) to continue exactly"
                )
            position = Position(**state["position"])
            self.best_value, self.best_epoch = state["best"]["value"], state["best"]["epoch"]
        model.to(self.device)
        torch.manual_seed(config.seed + 1 + dist.rank)  # distinct dropout streams per rank
        if dist.is_main:
            self._open_logs(position)
        steps_per_epoch = len(self._batches(len(train), 0))
        result = self._run_stages(model, train, val, position, state, steps_per_epoch)
        if self.writer is not None:
            self.writer.close()
        return result

    def _load_data(self) -> tuple[InputStore, InputStore]:
        """Rank 0 generates and caches first; the other ranks then read the caches."""
        if self.dist.is_main:
            data = self.task.load_data()
        barrier(self.dist)
        if not self.dist.is_main:
            data = self.task.load_data()
        return data

    def _open_logs(self, position: Position) -> None:
        if self.resume:
            _truncate_jsonl(self.metrics_dir / "train.jsonl", position.global_step)
            _truncate_jsonl(self.metrics_dir / "val.jsonl", position.global_step)
        purge = position.global_step + 1 if self.resume else None
        self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=purge)

    def _batches(self, num_samples: int, epoch: int) -> list[list[int]]:
        return epoch_batches(
            num_samples,
            self.config.optim.batch_size,
            self.config.seed,
            epoch,
            self.dist.rank,
            self.dist.world_size,
        )

    # --- stages ------------------------------------------------------------------------
    def _run_stages(
        self,
        model: nn.Module,
        train: InputStore,
        val: InputStore,
        position: Position,
        state: dict | None,
        steps_per_epoch: int,
    ) -> TrainResult:
        stage_start = 0
        for stage_index, stage in enumerate(self.config.stages):
            stage_end = stage_start + stage.epochs
            if position.epoch >= stage_end:
                stage_start = stage_end
                continue
            optimizer, scheduler, scaler = self._setup_stage(model, stage, stage.epochs * steps_per_epoch)
            if state is not None:
                if state["stage_index"] == stage_index:
                    optimizer.load_state_dict(state["optimizer"])
                    scheduler.load_state_dict(state["scheduler"])
                    scaler.load_state_dict(state["scaler"])
                restore_rng_state(state["rng"][self.dist.rank])
                state = None
            forward = self._wrap(model)
            while position.epoch < stage_end:
                stopped = self._train_epoch(
                    model, forward, train, position, stage, optimizer, scheduler, scaler
                )
                if stopped is not None:
                    self._save_last(model, position, stage_index, optimizer, scheduler, scaler)
                    return self._stopped(stopped, position)
                position.epoch += 1
                position.step_in_epoch = 0
                if position.epoch % self.config.runtime.eval_every_epochs == 0 or position.epoch == stage_end:
                    self._validate(model, val, position, stage)
                self._save_last(model, position, stage_index, optimizer, scheduler, scaler)
            stage_start = stage_end
        return self._finish(model, val, position)

    def _setup_stage(
        self, model: nn.Module, stage: StageConfig, total_steps: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, torch.amp.GradScaler]:
        self.task.configure_stage(model, stage)
        model.train()
        groups = []
        for part, module in self.task.model_parts(model).items():
            lr = stage.part_lr(part)
            params = [p for p in module.parameters() if p.requires_grad] if module is not None else []
            if params and lr > 0:
                groups.append({"params": params, "lr": lr, "name": part})
            elif module is not None:
                module.requires_grad_(False)
        if not groups:
            raise ConfigError(
                f"stage '{stage.name}': no model part has trainable parameters and a learning rate > 0"
            )
        optim_cfg = self.config.optim
        optimizer = torch.optim.AdamW(groups, weight_decay=optim_cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: lr_factor(
                step, total_steps, stage.warmup_steps, optim_cfg.scheduler, optim_cfg.min_lr_ratio
            ),
        )
        model.train()  # re-applied: frozen BatchNorm layers keep their statistics
        return optimizer, scheduler, grad_scaler(self.device, self.config.runtime.amp)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return model
        device_ids = [self.dist.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    # --- one epoch ---------------------------------------------------------------------
    def _train_epoch(
        self,
        model: nn.Module,
        forward: nn.Module,
        train: InputStore,
        position: Position,
        stage: StageConfig,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LambdaLR,
        scaler: torch.amp.GradScaler,
    ) -> str | None:
        """Train the rest of the current epoch; returns a stop reason, or None when the epoch finished."""
        runtime, dist = self.config.runtime, self.dist
        batches = self._batches(len(train), position.epoch)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        window: dict[str, list[torch.Tensor]] = {}
        started = time.perf_counter()
        bar = tqdm(
            total=len(batches),
            initial=position.step_in_epoch,
            desc=f"epoch {position.epoch + 1}/{self.config.total_epochs} [{stage.name}]",
            disable=None if runtime.progress and dist.is_main else True,  # bars only on a terminal
            file=sys.stderr,
            leave=False,
        )
        model.train()
        with bar:
            for index in range(position.step_in_epoch, len(batches)):
                batch = train.batch(batches[index])
                loss, terms = self.task.loss(forward, model, batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if self.config.optim.grad_clip_norm > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, self.config.optim.grad_clip_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                position.step_in_epoch = index + 1
                position.global_step += 1
                for name, value in {"loss": loss.detach(), **terms}.items():
                    window.setdefault(name, []).append(value)
                bar.update(1)
                if position.global_step % runtime.log_every_steps == 0 or index == len(batches) - 1:
                    self._log_train(window, position, stage, optimizer, batches[index], started, bar)
                    window = {}
                stop = self._stop_reason(position)
                if stop is not None:
                    return stop
                periodic = (
                    runtime.checkpoint_every_steps
                    and position.global_step % runtime.checkpoint_every_steps == 0
                )
                if periodic and index < len(batches) - 1:  # the epoch end saves anyway
                    self._save_last(
                        model, position, self._stage_index(position), optimizer, scheduler, scaler
                    )
        return None

    def _stop_reason(self, position: Position) -> str | None:
        limit = self.config.runtime.stop_after_steps
        signalled = any_rank(self.signals.received is not None, self.dist)
        if signalled:
            return "interrupted"
        if limit and position.global_step >= limit:
            return "stopped"
        return None

    def _stage_index(self, position: Position) -> int:
        end = 0
        for index, stage in enumerate(self.config.stages):
            end += stage.epochs
            if position.epoch < end:
                return index
        return len(self.config.stages) - 1

    # --- logging -----------------------------------------------------------------------
    def _log_train(
        self,
        window: dict[str, list[torch.Tensor]],
        position: Position,
        stage: StageConfig,
        optimizer: torch.optim.Optimizer,
        last_batch: list[int],
        started: float,
        bar: tqdm,
    ) -> None:
        if not self.dist.is_main:
            return
        values = {name: float(torch.stack(v).float().mean()) for name, v in window.items()}
        record = {
            "step": position.global_step,
            "epoch": position.epoch,
            "stage": stage.name,
            **values,
            **{f"lr/{g['name']}": g["lr"] for g in optimizer.param_groups},
            "batch": batch_fingerprint(last_batch),
            "elapsed_s": round(time.perf_counter() - started, 3),
        }
        _append_jsonl(self.metrics_dir / "train.jsonl", record)
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, position.global_step)
        for group in optimizer.param_groups:
            self.writer.add_scalar(f"lr/{group['name']}", group["lr"], position.global_step)
        bar.set_postfix(loss=f"{values['loss']:.4f}")

    def _validate(self, model: nn.Module, val: InputStore, position: Position, stage: StageConfig) -> None:
        """Rank 0 evaluates, logs, and saves ``best`` when the selection metric improved."""
        if self.dist.is_main:
            result: EvalResult = self.task.evaluate(model, val)
            record = {
                "step": position.global_step,
                "epoch": position.epoch,
                "stage": stage.name,
                **result.scalars,
            }
            _append_jsonl(self.metrics_dir / "val.jsonl", record)
            for name, value in result.scalars.items():
                self.writer.add_scalar(f"val/{name}", value, position.global_step)
            self.writer.flush()
            value = result.scalars.get(self.config.runtime.select_metric)
            if value is None:
                raise ConfigError(
                    f"runtime.select_metric '{self.config.runtime.select_metric}' is not a validation "
                    f"metric; available: {sorted(result.scalars)}"
                )
            improved = self._is_better(value)
            if improved:
                self.best_value, self.best_epoch = value, position.epoch
                self.task.save(model, self.checkpoint_dir / "best", None, self._progress(position))
            # One whole line per validation: progress bars are off in a log file.
            print(
                f"epoch {position.epoch}/{self.config.total_epochs} [{stage.name}] "
                f"{self.config.runtime.select_metric}={value:.4f}" + (" (best)" if improved else ""),
                file=sys.stderr,
                flush=True,
            )
        barrier(self.dist)

    def _is_better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        if self.config.runtime.select_lower_is_better:
            return value < self.best_value
        return value > self.best_value

    def _progress(self, position: Position) -> dict[str, Any]:
        return {
            **asdict(position),
            "best_metric": self.config.runtime.select_metric,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
        }

    # --- checkpoints -------------------------------------------------------------------
    def _save_last(
        self,
        model: nn.Module,
        position: Position,
        stage_index: int,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LambdaLR,
        scaler: torch.amp.GradScaler,
    ) -> None:
        rng_states = gather_objects(capture_rng_state(), self.dist)  # collective: every rank
        if self.dist.is_main:
            state = {
                "position": asdict(position),
                "stage_index": stage_index,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_states,
                "best": {"value": self.best_value, "epoch": self.best_epoch},
                "world_size": self.dist.world_size,
            }
            self.task.save(model, self.checkpoint_dir / "last", state, self._progress(position))
        barrier(self.dist)

    def _stopped(self, reason: str, position: Position) -> TrainResult:
        if self.dist.is_main:
            print(
                f"{reason} at step {position.global_step} (epoch {position.epoch + 1}, "
                f"batch {position.step_in_epoch}); saved {self.checkpoint_dir / 'last'}. "
                f"Resume with: python training/train.py --resume {self.run_dir}",
                file=sys.stderr,
            )
        return TrainResult(
            reason, self.run_dir, position, self.best_value, signal_number=self.signals.received
        )

    def _finish(self, model: nn.Module, val: InputStore, position: Position) -> TrainResult:
        final = None
        if self.dist.is_main:
            best = resolve_checkpoint(self.checkpoint_dir / "best")
            final = self.task.finalize(model, val, self.run_dir, best).metrics
        barrier(self.dist)
        return TrainResult("completed", self.run_dir, position, self.best_value, final)


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop records after ``last_step`` (logged after the checkpoint that a resume starts from)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= last_step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
