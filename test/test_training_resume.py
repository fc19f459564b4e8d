"""Exact resume: interrupted + resumed gives the batches, loss curve and weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.config import load_config
from training.evaluate import main as evaluate_main
from training.resume_state import load_trainer_state, resolve_checkpoint, save_training_checkpoint
from training.train import main as train_main
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "tiny.yaml"

pytestmark = pytest.mark.slow


def _overrides(root: Path, name: str) -> list[str]:
    return [f"name={name}", f"output_dir={root}/{{name}}", f"data.cache_dir={root}/cache"]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _curve(run: Path) -> list[tuple[int, str, float]]:
    return [(r["step"], r["batch"], r["loss"]) for r in _jsonl(run / "metrics" / "train.jsonl")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted tiny run (2 stages, 9 steps)."""
    root = tmp_path_factory.mktemp("resume")
    config = load_config(TINY, _overrides(root, "reference"))
    result = Trainer(config, config.resolved_output_dir()).fit()
    assert result.status == "completed" and result.position.global_step == 9
    return config.resolved_output_dir()


@pytest.mark.parametrize("stop_step", [5, 6])  # mid-epoch in stage 1; at the stage 1 -> 2 boundary
def test_stopped_and_resumed_run_equals_uninterrupted(reference: Path, stop_step: int):
    root = reference.parent
    name = f"stopped_at_{stop_step}"
    config = load_config(TINY, [*_overrides(root, name), f"runtime.stop_after_steps={stop_step}"])
    run = config.resolved_output_dir()
    first = Trainer(config, run).fit()
    assert first.status == "stopped" and first.position.global_step == stop_step
    assert load_trainer_state(run / "checkpoints" / "last")["position"]["global_step"] == stop_step

    assert train_main(["--resume", str(run), "runtime.stop_after_steps=0"]) == 0

    assert _curve(run) == _curve(reference)  # same batches, bit-identical losses
    assert _jsonl(run / "metrics" / "val.jsonl") == _jsonl(reference / "metrics" / "val.jsonl")
    for checkpoint in ("last", "best"):
        ours = load_file(str(run / "checkpoints" / checkpoint / "model.safetensors"))
        theirs = load_file(str(reference / "checkpoints" / checkpoint / "model.safetensors"))
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), checkpoint


def test_sigint_saves_last_and_the_run_resumes_exactly(reference: Path):
    root = reference.parent
    run = root / "signalled"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A long first stage so the signal surely arrives during training.
    command = [
        sys.executable,
        str(REPO / "training" / "train.py"),
        "--config",
        str(TINY),
        *_overrides(root, "signalled"),
    ]
    process = subprocess.Popen([*command, "stages.0.epochs=40"], env=env, stderr=subprocess.PIPE, text=True)
    log = run / "metrics" / "train.jsonl"
    deadline = time.monotonic() + 120
    while not (log.is_file() and len(log.read_text().splitlines()) >= 2):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr
    assert "Resume with" in stderr
    state = load_trainer_state(run / "checkpoints" / "last")
    steps = state["position"]["global_step"]
    assert steps >= 2
    assert [r["step"] for r in _jsonl(log)][-1] == steps

    # Resume in a fresh process; it continues from the saved step with the same batch order.
    resumed = subprocess.run(
        [
            sys.executable,
            str(REPO / "training" / "train.py"),
            "--resume",
            str(run),
            "runtime.stop_after_steps=" + str(steps + 2),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    curve = _curve(run)
    assert [step for step, _, _ in curve] == list(range(1, steps + 3))
    # The first steps of an uninterrupted run with the same seed see the same batches.
    assert [b for _, b, _ in curve[:3]] == [b for _, b, _ in _curve(reference)[:3]]


def test_evaluate_writes_markdown_and_json_for_a_checkpoint(reference: Path, tmp_path: Path):
    out = tmp_path / "eval"
    code = evaluate_main(
        [
            "--checkpoint",
            str(reference / "checkpoints" / "best"),
            "--scenes",
            "8",
            "--seed",
            "77",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["reference"]
    assert metrics["reference"]["set"]["frames"] == metrics["reference"]["single_hazard"]["frames"] == 8
    table = (out / "metrics.md").read_text()
    assert "| reference |" in table and "| visibility_occluded |" in table
    # A finished run also has its exports and plots.
    assert json.loads((reference / "export" / "labels.json").read_text())["labels"][0] == "none"
    assert "## Metrics" in (reference / "export" / "model_card.md").read_text()
    assert {p.name for p in (reference / "plots").glob("*.png")} == {
        "confusion_matrix.png",
        "reliability_diagram.png",
        "weight_vs_occlusion.png",
    }


def test_checkpoint_directory_swap_is_atomic(tmp_path: Path):
    target = tmp_path / "last"

    def writer(text: str):
        return lambda directory: (directory / "weights.txt").write_text(text)

    save_training_checkpoint(target, writer("one"), {"step": torch.tensor(1)}, {"step": 1})
    save_training_checkpoint(target, writer("two"), {"step": torch.tensor(2)}, {"step": 2})
    assert (target / "weights.txt").read_text() == "two"
    assert load_trainer_state(target)["step"].item() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # no temporary or old copies left

    # A crash between "rename old aside" and "rename new into place" leaves only the old one.
    target.rename(tmp_path / ".last.old")
    assert resolve_checkpoint(target) == tmp_path / ".last.old"
