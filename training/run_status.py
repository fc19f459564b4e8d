"""Where a training run directory stands, and bringing it to completion: skip, resume or start it.

    python training/run_status.py RUN_DIR                                  # prints one word
    python training/run_status.py RUN_DIR --config CONFIG [key=value ...]  # ... or ``stale``

- ``complete``: ``checkpoints/last`` records every epoch of the run's ``config_resolved.yaml``
  and the final evaluation wrote every export file of the task. Nothing is left to do.
- ``resumable``: a resumable ``checkpoints/last`` exists: ``train.py --resume RUN_DIR`` goes on
  from it (when only the final evaluation is missing, resume runs just that).
- ``restart``: the directory holds run outputs but nothing to resume from (the run stopped
  before its first checkpoint): ``train.py --overwrite`` starts it again.
- ``absent``: no run there.
- ``stale`` (only when asked with the config the run should have): the directory holds a complete
  or resumable run that was started with another config (the config file or its overrides changed
  since): reusing it would skip or continue a run that is no longer the one asked for.

A run records its position in ``checkpoints/last/progress.json`` after every epoch
(``training.resume_state``); the final evaluation (``Task.finalize``) writes ``export/`` last,
so the export files are what marks a finished run.

``complete_run(config, run_dir)`` acts on the answer, for the scripts that train many runs
(``training/study.py``, ``training/crossval.py``): nothing for a complete run, ``--resume`` for a
resumable one (refusing a run that was started with another config), a fresh start otherwise.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.config import ExperimentConfig, load_config, read_resolved_config
from training.resume_state import TRAINER_STATE_FILE, read_progress, resolve_checkpoint
from training.typed_config import ConfigError, to_plain

RESOLVED_CONFIG = "config_resolved.yaml"
# What each task's finalize() writes into export/, in the order it writes them.
EXPORT_FILES = {
    "seld_pretrain": ("metrics.json", "labels.json"),
    "hazard_set": ("labels.json", "metrics.json", "model_card.md"),
    "decision": ("labels.json", "metrics.json"),
}
STATUSES = ("absent", "restart", "resumable", "complete", "stale")
# What a run writes into its directory (cleared before a fresh start; their presence means "a run is here").
RUN_OUTPUTS = ("config_resolved.yaml", "checkpoints", "metrics", "tensorboard", "plots", "export")
# Keys that do not change what is trained, so a resumed run may set them anew.
RESUME_OVERRIDABLE = ("runtime.progress", "runtime.stop_after_steps", "runtime.checkpoint_every_steps")


def run_status(run_dir: Path) -> str:
    """One of ``STATUSES`` for ``run_dir`` (see the module docstring)."""
    resolved = run_dir / RESOLVED_CONFIG
    if not resolved.is_file():
        return "restart" if run_dir.is_dir() and any(run_dir.iterdir()) else "absent"
    try:
        last = resolve_checkpoint(run_dir / "checkpoints" / "last")
    except FileNotFoundError:
        return "restart"
    progress = read_progress(last)
    if progress is None or not (last / TRAINER_STATE_FILE).is_file():
        return "restart"
    config = read_resolved_config(resolved)
    exported = all((run_dir / "export" / name).is_file() for name in EXPORT_FILES[config.task])
    if progress["epoch"] >= config.total_epochs and exported:
        return "complete"
    return "resumable"


def run_status_for(config: ExperimentConfig, run_dir: Path) -> str:
    """``run_status(run_dir)``, or ``stale`` when the run there was started with another config
    than ``config`` (the keys of ``RESUME_OVERRIDABLE`` aside)."""
    status = run_status(run_dir)
    if status in ("complete", "resumable") and not same_run(config, run_dir):
        return "stale"
    return status


def same_run(config: ExperimentConfig, run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` was started with ``config`` (``RESUME_OVERRIDABLE`` aside)."""
    return _runtime_free(read_resolved_config(run_dir / RESOLVED_CONFIG)) == _runtime_free(config)


def clear_run_outputs(run_dir: Path) -> None:
    """Remove what a run wrote into ``run_dir`` (``RUN_OUTPUTS``), leaving any other file."""
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _runtime_free(config: ExperimentConfig) -> dict[str, Any]:
    plain = to_plain(config)
    for key in RESUME_OVERRIDABLE:
        section, name = key.split(".")
        plain[section].pop(name)
    return plain


def resumed_config(config: ExperimentConfig, run_dir: Path) -> ExperimentConfig:
    """The stored config of the run in ``run_dir``, with ``config``'s bookkeeping keys
    (``RESUME_OVERRIDABLE``); ConfigError when the run was started with another config."""
    stored = read_resolved_config(run_dir / RESOLVED_CONFIG)
    if not same_run(config, run_dir):
        raise ConfigError(
            f"{run_dir} was started with another config; rerun with the same config and overrides, "
            "or remove that run's directory to start it afresh"
        )
    runtime = replace(
        stored.runtime,
        progress=config.runtime.progress,
        stop_after_steps=config.runtime.stop_after_steps,
        checkpoint_every_steps=config.runtime.checkpoint_every_steps,
    )
    return replace(stored, runtime=runtime)


def complete_run(config: ExperimentConfig, run_dir: Path) -> tuple[str, int | None]:
    """Bring the run of ``config`` in ``run_dir`` to completion, as ``run_status`` says it stands:
    nothing when it is ``complete``, resume it when ``resumable``, else clear its leftovers and
    start it. A complete or resumable run started with another config is refused (ConfigError).
    Returns ("complete", None), or the trainer's (status, signal number)."""
    status = run_status(run_dir)
    resumed = status in ("complete", "resumable")
    if resumed:
        config = resumed_config(config, run_dir)
    if status == "complete":
        return status, None
    from training.distributed import shutdown
    from training.trainer import Trainer  # heavy imports only when something is trained

    if not resumed:
        clear_run_outputs(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config, run_dir, resume=resumed)
    try:
        result = trainer.fit()
    finally:
        shutdown(trainer.dist)
    return result.status, result.signal_number


def main(argv: list[str]) -> int:
    usage = "usage: python training/run_status.py RUN_DIR [--config CONFIG [key=value ...]]"
    if len(argv) == 1:
        print(run_status(Path(argv[0])))
        return 0
    if len(argv) < 3 or argv[1] != "--config":
        print(usage, file=sys.stderr)
        return 2
    try:
        config = load_config(argv[2], argv[3:])
        print(run_status_for(config, Path(argv[0])))
    except (ConfigError, OSError) as error:
        print(f"run_status: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
