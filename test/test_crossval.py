"""UrbanSound8K cross-validation on a tiny tree in the dataset's layout: folds, resume, summary, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from avi_ros.data.urbansound8k import URBANSOUND8K_CLASSES
from training.config import load_config, read_resolved_config, write_resolved_config
from training.crossval import fold_config
from training.crossval import main as crossval_main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "tiny.yaml"
SET_TINY = REPO / "training" / "configs" / "hazard_set_tiny.yaml"
FOLDS = (1, 2, 3)
RATE = 22_050

pytestmark = pytest.mark.slow


def write_us8k(root: Path, leak: bool = False) -> Path:
    """metadata/UrbanSound8K.csv + audio/foldN/*.wav: 2 short clips per class per fold, one recording each
    (``leak``: one recording's slices in two folds)."""
    rng = np.random.default_rng(0)
    (root / "metadata").mkdir(parents=True)
    rows = []
    for fold in FOLDS:
        for class_id, name in enumerate(URBANSOUND8K_CLASSES):
            for clip in range(2):
                fs_id = 1000 * fold + 10 * class_id + clip
                if leak and fold == 2 and class_id == 0 and clip == 0:
                    fs_id = 1000  # also a recording of fold 1
                file_name = f"{fs_id}-{class_id}-0-{clip}.wav"
                t = np.arange(int(0.8 * RATE)) / RATE
                tone = np.sin(2 * np.pi * (200 + 150 * class_id) * t) * 0.3
                audio = tone + 0.05 * rng.standard_normal(t.size) * (class_id % 3)
                (root / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
                sf.write(root / "audio" / f"fold{fold}" / file_name, audio.astype(np.float32), RATE)
                rows.append([file_name, fs_id, 0.0, 0.8, 1, fold, class_id, name])
    with (root / "metadata" / "UrbanSound8K.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"])
        writer.writerows(rows)
    return root


def _argv(root: Path, out: Path, cache: Path, folds: tuple[int, ...], *overrides: str) -> list[str]:
    return [
        "--config", str(TINY), "--root", str(root), "--out", str(out), "--folds", *map(str, folds),
        "--test-scenes", "8", "--test-seed", "21",
        f"data.cache_dir={cache}", "data.train.scenes=16", "data.val.scenes=8",
        "stages.0.epochs=1", "stages.1.epochs=1", *overrides,
    ]  # fmt: skip


def _steps(run: Path) -> list[int]:
    lines = (run / "metrics" / "train.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if line.strip()]


def _weights(run: Path, name: str = "best") -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / name / "model.safetensors"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_us8k(tmp_path_factory.mktemp("us8k") / "UrbanSound8K")


def test_folds_resume_after_an_interruption_at_fold_two(tree: Path, tmp_path: Path, capsys):
    out, cache = tmp_path / "cv", tmp_path / "cache"
    assert crossval_main(_argv(tree, out, cache, (1,))) == 0
    fold1 = json.loads((out / "fold1" / "test_metrics.json").read_text())
    assert fold1["train_folds"] == [2, 3] and fold1["fold"] == 1
    assert 0 < fold1["test_scenes"] <= 8
    assert (out / "fold1" / "checkpoints" / "best" / "model.safetensors").is_file()
    best_mtime = (out / "fold1" / "checkpoints" / "best" / "model.safetensors").stat().st_mtime_ns

    # Interrupted inside fold 2 (after 2 of its 4 steps): fold 1 is reused, fold 2 left resumable.
    assert crossval_main(_argv(tree, out, cache, FOLDS, "runtime.stop_after_steps=2")) == 0
    err = capsys.readouterr().err
    assert "fold 1: done earlier" in err and "fold 2 stopped" in err
    assert not (out / "fold2" / "test_metrics.json").exists() and not (out / "fold3").exists()
    assert _steps(out / "fold2") == [1, 2]

    # The same command again: fold 2 resumes at step 3, fold 3 runs, and the summary covers all three.
    assert crossval_main(_argv(tree, out, cache, FOLDS)) == 0
    assert _steps(out / "fold2") == [1, 2, 3, 4]
    assert (out / "fold1" / "checkpoints" / "best" / "model.safetensors").stat().st_mtime_ns == best_mtime
    summary = json.loads((out / "summary.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2, 3]
    assert [f["train_folds"] for f in summary["folds"]] == [[2, 3], [1, 3], [1, 2]]
    accuracies = [f["metrics"]["single_hazard"]["accuracy"] for f in summary["folds"]]
    aggregate = summary["mean_std"]["single_hazard"]["accuracy"]
    assert aggregate["n"] == 3 and aggregate["mean"] == pytest.approx(np.mean(accuracies))
    assert aggregate["std"] == pytest.approx(np.std(accuracies, ddof=1))
    for fold in summary["folds"]:  # only scenes whose sounds are the test fold's clips, or background
        heard = {name for name, count in fold["metrics"]["set"]["per_class_hazards"].items() if count}
        assert heard and heard <= {"car_horn", "dog_bark", "power_tool", "vehicle_engine", "siren"}
    text = (out / "summary.md").read_text()
    assert "| mean ± std |" in text and "| 3 |" in text

    # Resumed exactly: fold 2 ends with the weights of an uninterrupted fold-2 run.
    reference = tmp_path / "reference"
    assert crossval_main(_argv(tree, reference, cache, (2,))) == 0
    ours, theirs = _weights(out / "fold2", "last"), _weights(reference / "fold2", "last")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_three_slot_config_is_cross_validated_on_hazard_set_scenes(tree: Path, tmp_path: Path):
    out = tmp_path / "cv"
    argv = [
        "--config", str(SET_TINY), "--root", str(tree), "--out", str(out), "--folds", "2",
        "--test-scenes", "8", "--test-seed", "21", f"data.cache_dir={tmp_path / 'cache'}",
        "data.train.scenes=12", "data.val.scenes=6", "stages.0.epochs=1",
    ]  # fmt: skip
    assert crossval_main(argv) == 0
    fold = json.loads((out / "fold2" / "test_metrics.json").read_text())
    assert fold["train_folds"] == [1, 3]
    metrics = fold["metrics"]
    assert {"set", "visibility_out_of_view", "polyphony_1", "single_hazard", "direction"} <= set(metrics)
    assert metrics["set"]["frames"] == fold["test_scenes"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_std"]["set"]["frames"] == {"mean": fold["test_scenes"], "std": 0.0, "n": 1}
    text = (out / "summary.md").read_text()
    assert "| test fold | scenes | F20 | LE [deg] | RDE | single-hazard accuracy | ECE |" in text
    assert f"| 2 | {fold['test_scenes']} |" in text


def test_bad_input_is_refused_with_one_line(tree: Path, tmp_path: Path, capsys):
    cache = tmp_path / "cache"
    assert crossval_main(_argv(tree, tmp_path / "a", cache, (7,))) == 2
    err = capsys.readouterr().err
    assert err.startswith("crossval.py: error:") and "not in the metadata" in err
    assert len(err.strip().splitlines()) == 1

    leaky = write_us8k(tmp_path / "leaky", leak=True)
    assert crossval_main(_argv(leaky, tmp_path / "b", cache, (1,))) == 2
    assert "leak" in capsys.readouterr().err

    # A fold interrupted under one config is not continued under another.
    out = tmp_path / "c"
    assert crossval_main(_argv(tree, out, cache, (1,), "runtime.stop_after_steps=1")) == 0
    assert crossval_main(_argv(tree, out, cache, (1,), "optim.batch_size=4")) == 2
    assert "started with another config" in capsys.readouterr().err

    assert crossval_main(["--config", str(TINY), "--root", str(tmp_path / "nowhere")]) == 2
    assert "UrbanSound8K metadata not found" in capsys.readouterr().err


def test_shipped_config_becomes_one_run_per_fold(tmp_path: Path):
    config = load_config(REPO / "training" / "configs" / "us8k_cv.yaml")
    assert config.data.scene.sound_dir is None  # set per fold from --root
    fold = fold_config(config, tmp_path / "UrbanSound8K", 3, list(range(1, 11)), tmp_path / "cv")
    assert fold.data.scene.sound_folds == (1, 2, 4, 5, 6, 7, 8, 9, 10)
    assert fold.data.scene.sound_dir == str((tmp_path / "UrbanSound8K").resolve())
    assert (
        fold.name == "us8k_cv_fold3" and fold.resolved_output_dir() == (tmp_path / "cv" / "fold3").resolve()
    )
    write_resolved_config(fold, tmp_path / "resolved.yaml")
    assert read_resolved_config(tmp_path / "resolved.yaml") == fold  # what a resumed fold reads back
