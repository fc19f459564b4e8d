"""A tiny decision run through the whole contract: per-epoch metrics in JSONL, best by high-risk
recall, labels.json and metrics.json, exact resume, the telemetry-zero baseline and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from avi_ros.decision.checkpoint import WEIGHTS_FILE, read_decision_metadata
from avi_ros.decision.inference import DecisionStage
from training.config import load_config, read_resolved_config, write_resolved_config
from training.decision_task import weighted_cross_entropy
from training.resume_state import read_progress
from training.train import main as train_main
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "decision_tiny.yaml"
CONTRACT_METRICS = (
    "risk_high_recall",
    "risk_high_fn_rate",
    "action_accuracy",
    "risk_macro_f1",
    "action_macro_f1",
)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted tiny run (4 epochs of 16 steps)."""
    run = tmp_path_factory.mktemp("decision") / "reference"
    assert train_main(["--config", str(TINY), f"output_dir={run}"]) == 0
    return run


def test_a_tiny_run_writes_the_contract_layout(reference: Path):
    for path in ("config_resolved.yaml", "checkpoints/best", "checkpoints/last", "metrics/train.jsonl"):
        assert (reference / path).exists(), path
    val = _jsonl(reference / "metrics" / "val.jsonl")
    assert [r["epoch"] for r in val] == [1, 2, 3, 4]
    for record in val:
        assert all(0.0 <= record[name] <= 1.0 for name in CONTRACT_METRICS)
        assert record["risk_high_fn_rate"] == pytest.approx(1.0 - record["risk_high_recall"])
    train = _jsonl(reference / "metrics" / "train.jsonl")
    assert {"loss", "risk", "reason", "action", "confidence"} <= set(train[0])
    labels = json.loads((reference / "export" / "labels.json").read_text())
    assert labels["risk"] == ["none", "low", "medium", "high"]
    assert labels["action"] == ["continue", "slow", "stop", "reverse", "turn_left", "turn_right"]
    assert labels["class_to_reason"]["footsteps"] == "human"
    metrics = json.loads((reference / "export" / "metrics.json").read_text())
    assert metrics["test"]["seed"] == 33 and metrics["test"]["samples"] == 128
    assert set(CONTRACT_METRICS) <= set(metrics["test"]["scalars"])
    assert "approach" in metrics["test"]["groups"]
    resolved = (reference / "config_resolved.yaml").read_text()
    assert "git_commit" in resolved and "task: decision" in resolved
    metadata = read_decision_metadata(reference / "checkpoints" / "best")
    assert metadata.extra["training"]["task"] == "decision"


def test_the_high_risk_operating_point_is_chosen_on_validation_and_stored(reference: Path):
    metrics = json.loads((reference / "export" / "metrics.json").read_text())
    threshold = metrics["high_risk_threshold"]
    assert metrics["high_risk_recall_target"] == 0.95 and 0.0 <= threshold <= 1.0
    assert metrics["validation"]["scalars"]["risk_high_recall"] >= 0.95
    assert read_decision_metadata(reference / "checkpoints" / "best").high_risk_threshold == threshold
    assert read_decision_metadata(reference / "checkpoints" / "last").high_risk_threshold is not None
    assert DecisionStage.from_checkpoint(reference / "checkpoints" / "best").metadata.high_risk_threshold == (
        threshold
    )


def test_best_is_the_epoch_with_the_highest_high_risk_recall(reference: Path):
    val = _jsonl(reference / "metrics" / "val.jsonl")
    recalls = [r["risk_high_recall"] for r in val]
    first_best = recalls.index(max(recalls))
    progress = read_progress(reference / "checkpoints" / "best")
    assert progress["best_metric"] == "risk_high_recall"
    assert progress["best_value"] == pytest.approx(max(recalls))
    assert progress["epoch"] == val[first_best]["epoch"]
    saved = read_decision_metadata(reference / "checkpoints" / "best").extra["validation_metrics"]
    assert saved == {k: v for k, v in val[first_best].items() if k not in ("step", "epoch", "stage")}
    if first_best != len(val) - 1:  # best is then not last: their weights differ
        best = load_file(str(reference / "checkpoints" / "best" / WEIGHTS_FILE))
        last = load_file(str(reference / "checkpoints" / "last" / WEIGHTS_FILE))
        assert any(not torch.equal(best[k], last[k]) for k in best)


def test_a_stopped_run_resumes_to_the_uninterrupted_result(reference: Path):
    run = reference.parent / "stopped"
    config = load_config(TINY, [f"output_dir={run}", "runtime.stop_after_steps=21"])  # mid-epoch 2
    assert Trainer(config, run).fit().status == "stopped"
    assert train_main(["--resume", str(run), "runtime.stop_after_steps=0"]) == 0
    curve = [(r["step"], r["batch"], r["loss"]) for r in _jsonl(run / "metrics" / "train.jsonl")]
    expected = [(r["step"], r["batch"], r["loss"]) for r in _jsonl(reference / "metrics" / "train.jsonl")]
    assert curve == expected
    assert _jsonl(run / "metrics" / "val.jsonl") == _jsonl(reference / "metrics" / "val.jsonl")
    ours = load_file(str(run / "checkpoints" / "last" / WEIGHTS_FILE))
    theirs = load_file(str(reference / "checkpoints" / "last" / WEIGHTS_FILE))
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_the_telemetry_zero_baseline_trains_the_same_model_blind(tmp_path):
    run = tmp_path / "zero"
    overrides = [f"output_dir={run}", "decision.model.telemetry=zero", "stages.0.epochs=1"]
    assert train_main(["--config", str(TINY), *overrides]) == 0
    metadata = read_decision_metadata(run / "checkpoints" / "best")
    assert metadata.model_config.telemetry == "zero"


@pytest.mark.parametrize("name", ["decision", "decision_tiny"])
def test_shipped_decision_configs_validate_and_round_trip(name, tmp_path):
    config = load_config(REPO / "training" / "configs" / f"{name}.yaml")
    assert config.task == "decision" and config.runtime.select_metric == "risk_high_recall"
    write_resolved_config(config, tmp_path / "resolved.yaml")
    assert read_resolved_config(tmp_path / "resolved.yaml") == config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("decision.test_seed=32", "decision.test_seed"),
        ("decision.model.backbone=gpt", "decision.model.backbone"),
        ("decision.model.tokens=3", "divisible"),
        ("decision.scenarios.scenario_weights={flying: 1.0}", "unknown scenarios"),
    ],
)
def test_config_errors_name_the_key_and_exit_2(tmp_path, capsys, override, message):
    assert train_main(["--config", str(TINY), f"output_dir={tmp_path / 'x'}", override]) == 2
    assert message in capsys.readouterr().err


def test_sample_and_class_weights_weigh_the_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    target = torch.tensor([0, 0])
    plain = weighted_cross_entropy(logits, target, torch.ones(2))
    only_first = weighted_cross_entropy(logits, target, torch.tensor([1.0, 0.0]))
    assert only_first < plain
    torch.testing.assert_close(
        weighted_cross_entropy(logits, target, torch.ones(2), torch.tensor([3.0, 1.0])), plain
    )  # one class in the batch: its weight cancels
    wrong_on_class_1 = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    mixed = torch.tensor([0, 1])  # right on a class-0 sample, wrong on a class-1 sample
    heavy = weighted_cross_entropy(wrong_on_class_1, mixed, torch.ones(2), torch.tensor([1.0, 5.0]))
    assert heavy > weighted_cross_entropy(
        wrong_on_class_1, mixed, torch.ones(2)
    )  # a miss of class 1 costs more
