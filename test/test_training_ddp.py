"""DDP smoke test: two CPU processes with the gloo backend train the tiny config in step."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from training.config import load_config
from training.distributed import shutdown
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "tiny.yaml"
STEPS = 4  # 24 scenes / 2 ranks = 12 per rank = 2 batches of 8 per epoch: stop inside epoch 2

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, root: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    overrides = [
        "name=ddp",
        f"output_dir={root}/{{name}}",
        f"data.cache_dir={root}/cache",
        f"runtime.stop_after_steps={STEPS}",
    ]
    config = load_config(TINY, overrides)
    trainer = Trainer(config, config.resolved_output_dir())
    try:
        result = trainer.fit()
        assert trainer.dist.world_size == world_size and trainer.dist.rank == rank
        state = {name: p.detach().cpu() for name, p in trainer.model.state_dict().items()}
        torch.save(
            {"status": result.status, "steps": result.position.global_step, "state": state},
            f"{root}/rank{rank}.pt",
        )
    finally:
        shutdown(trainer.dist)


def test_two_gloo_processes_train_in_sync(tmp_path: Path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["status"] for r in ranks] == ["stopped", "stopped"]
    assert [r["steps"] for r in ranks] == [STEPS, STEPS]
    # Gradients were averaged: both replicas hold the same weights, which moved from their start.
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    saved = load_file(str(tmp_path / "ddp" / "checkpoints" / "last" / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in ranks[0]["state"].items())
    best = load_file(str(tmp_path / "ddp" / "checkpoints" / "best" / "model.safetensors"))
    assert any(not torch.equal(best[k], v) for k, v in saved.items() if v.is_floating_point())
    # Only rank 0 logged: one record per step, with each rank's data shard giving 2 steps per epoch.
    records = [
        json.loads(line) for line in (tmp_path / "ddp" / "metrics" / "train.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert [r["epoch"] for r in records] == [0, 0, 1, 1]
    assert len((tmp_path / "ddp" / "metrics" / "val.jsonl").read_text().splitlines()) == 1
