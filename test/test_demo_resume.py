"""A second `make demo` reuses every step, and an interrupted one resumes its training.

training/run_status.py asks a run directory whether it is complete, resumable or absent;
scripts/demo.sh --dry-run prints what each step would do, so the decisions are checked on
fake run directories without training anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_helpers import tiny_seld_overrides
from subprocess_helpers import run_ok

from avi_ros.checkpoint import model_fingerprint
from training.config import load_config, write_resolved_config
from training.resume_state import PROGRESS_FILE, TRAINER_STATE_FILE
from training.run_status import EXPORT_FILES, run_status, run_status_for
from training.train import main as train_main

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "training" / "configs"


def fake_run(
    run_dir: Path,
    config_name: str,
    epochs_done: int | None = None,
    exported: bool = True,
    overrides: tuple[str, ...] = (),
) -> Path:
    """A run directory as train.py leaves it, without weights: resolved config (``config_name``
    with ``overrides``), checkpoints/last with its progress after ``epochs_done`` epochs (default:
    all), and the export files."""
    config = load_config(CONFIGS / config_name, [f"output_dir={run_dir}", *overrides])
    last = run_dir / "checkpoints" / "last"
    last.mkdir(parents=True)
    write_resolved_config(config, run_dir / "config_resolved.yaml")
    (last / TRAINER_STATE_FILE).write_bytes(b"")
    done = config.total_epochs if epochs_done is None else epochs_done
    (last / PROGRESS_FILE).write_text(json.dumps({"epoch": done, "step_in_epoch": 0}))
    if exported:
        (run_dir / "export").mkdir()
        for name in EXPORT_FILES[config.task]:
            (run_dir / "export" / name).write_text("{}")
    return run_dir


@pytest.mark.parametrize("config_name", ["demo_seld.yaml", "demo.yaml", "decision.yaml"])
def test_run_status_of_each_stage_of_a_run(tmp_path: Path, config_name: str) -> None:
    assert run_status(tmp_path / "nothing") == "absent"
    started = tmp_path / "started"
    started.mkdir()
    write_resolved_config(load_config(CONFIGS / config_name, []), started / "config_resolved.yaml")
    assert run_status(started) == "restart"  # no checkpoint yet: nothing to resume from
    assert run_status(fake_run(tmp_path / "part", config_name, epochs_done=3)) == "resumable"
    # Every epoch done but the final evaluation cut short: resume runs just that.
    assert run_status(fake_run(tmp_path / "unexported", config_name, exported=False)) == "resumable"
    assert run_status(fake_run(tmp_path / "done", config_name)) == "complete"


@pytest.mark.slow
def test_a_real_run_is_resumable_when_stopped_and_complete_when_finished(tmp_path: Path) -> None:
    """What the SELD run writes (seld_metadata.json, not metadata.json) is read as complete."""
    config = str(CONFIGS / "seld_pretrain.yaml")
    run = tmp_path / "run"
    overrides = tiny_seld_overrides(f"{tmp_path}/run", tmp_path / "cache", (8, 4), max_order=1, batch_size=4)
    assert train_main(["--config", config, *overrides, "runtime.stop_after_steps=1"]) == 0
    assert run_status(run) == "resumable"
    assert train_main(["--resume", str(run), "runtime.stop_after_steps=0"]) == 0
    assert run_status(run) == "complete"
    assert (run / "checkpoints" / "best" / "seld_metadata.json").is_file()
    # A finished run whose final evaluation was lost resumes straight into it.
    (run / "export" / "labels.json").unlink()
    assert run_status(run) == "resumable"
    assert train_main(["--resume", str(run)]) == 0
    assert run_status(run) == "complete"


def _dry_run(tmp_path: Path) -> str:
    env = {
        **os.environ,
        "AVI_ROS_DEMO_OUT": str(tmp_path / "out"),
        "AVI_ROS_DEMO_RUN": str(tmp_path / "demo"),
        "AVI_ROS_DEMO_SELD_RUN": str(tmp_path / "demo_seld"),
        "AVI_ROS_DEMO_DECISION_RUN": str(tmp_path / "demo_decision"),
        "AVI_ROS_DEMO_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    return run_ok(["bash", "scripts/demo.sh", "--dry-run"], REPO_ROOT, env).stdout


def _demo_runs(tmp_path: Path, seld_overrides: tuple[str, ...] = ()) -> None:
    """The three finished training runs of a demo, with the overrides scripts/demo.sh passes."""
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    fake_run(tmp_path / "demo_seld", "demo_seld.yaml", overrides=(cache, *seld_overrides))
    seld = f"pretrained.seld_checkpoint={tmp_path / 'demo_seld'}/checkpoints/best"
    fake_run(tmp_path / "demo", "demo.yaml", overrides=(cache, seld))
    decision = ("data.train.scenes=16", "data.val.scenes=4", "decision.pipeline.test_scenes=8")
    fake_run(tmp_path / "demo_decision", "decision.yaml", overrides=decision)


def _finished_outputs(out: Path, stamp: str | None = None) -> None:
    for name in ("scenario/metadata.yaml", "bag/metadata.yaml", "index.html", "live_hazards.jsonl"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("done\n")
    stamp = stamp or model_fingerprint(REPO_ROOT / "avi_ros" / "models" / "shipped")
    (out / "model.fingerprint").write_text(stamp + "\n")


def test_second_demo_skips_every_step(tmp_path: Path) -> None:
    _demo_runs(tmp_path)
    _finished_outputs(tmp_path / "out")
    output = _dry_run(tmp_path)
    assert output.count("already trained") == 3
    would_run = [line for line in output.splitlines() if line.startswith("would run:")]
    for work in ("train.py", "make-bag", "perception_node", "replay"):
        assert not any(work in line for line in would_run), (work, would_run)
    for step in range(1, 7):
        assert f"[demo {step}/6]" in output
    assert "rm -rf" not in output


def test_a_new_shipped_model_redoes_the_decision_stage_and_the_node_steps(tmp_path: Path) -> None:
    _demo_runs(tmp_path)
    _finished_outputs(tmp_path / "out", stamp="0123456789abcdef")  # made with other weights
    output = _dry_run(tmp_path)
    assert "is not the one of the last run" in output
    removal = next(line for line in output.splitlines() if line.startswith("would run: rm -rf"))
    for made in ("live_hazards.jsonl", "index.html", "demo_decision"):
        assert made in removal


def test_interrupted_demo_resumes_the_training_it_stopped_in(tmp_path: Path) -> None:
    cache = f"data.cache_dir={tmp_path / 'cache'}"  # as scripts/demo.sh trains it
    seld_run = fake_run(tmp_path / "demo_seld", "demo_seld.yaml", epochs_done=5, overrides=(cache,))
    output = _dry_run(tmp_path)
    assert f"would run: python training/train.py --resume {seld_run}" in output
    # The hazard-set run has not started: it is trained from its config.
    assert "would run: python training/train.py --config training/configs/demo.yaml" in output
    assert "would run: python -m avi_ros.cli make-bag" in output


def test_a_changed_config_retrains_its_run_and_the_model_on_a_new_encoder(tmp_path: Path) -> None:
    """A SELD run trained with other settings than demo_seld.yaml's is trained again, and so is
    the hazard-set model on top of it, whose own config did not change."""
    _demo_runs(tmp_path, seld_overrides=("stages.0.epochs=1",))
    _finished_outputs(tmp_path / "out")
    output = _dry_run(tmp_path)
    would_run = [
        line for line in output.splitlines() if line.startswith("would run: python training/train.py")
    ]
    assert len(would_run) == 2, would_run
    assert "demo_seld.yaml --overwrite" in would_run[0]
    assert "demo.yaml --overwrite" in would_run[1]
    assert output.count("training it again") == 2
    assert output.count("already trained") == 1  # the decision stage: its model did not change


def test_run_status_for_a_config_tells_a_stale_run(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", "demo.yaml", epochs_done=2)
    asked = [f"output_dir={run}"]
    assert run_status_for(load_config(CONFIGS / "demo.yaml", asked), run) == "resumable"
    changed = load_config(CONFIGS / "demo.yaml", [*asked, "optim.batch_size=8"])
    assert run_status_for(changed, run) == "stale"
    # The keys a resumed run may set anew do not make it stale.
    progress = load_config(CONFIGS / "demo.yaml", [*asked, "runtime.progress=false"])
    assert run_status_for(progress, run) == "resumable"
    assert run_status_for(changed, tmp_path / "nothing") == "absent"


def test_run_status_cli_names_a_bad_config_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "training/run_status.py", str(tmp_path), "--config", str(tmp_path / "missing.yaml")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("run_status: ") and result.stderr.count("\n") == 1, result.stderr
