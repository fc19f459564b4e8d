"""Where a training run directory stands, so a script can skip, resume or start it.

    python training/run_status.py RUN_DIR      # prints one word, exit status 0

- ``complete``: ``checkpoints/last`` records every epoch of the run's ``config_resolved.yaml``
  and the final evaluation wrote every export file of the task. Nothing is left to do.
- ``resumable``: a resumable ``checkpoints/last`` exists: ``train.py --resume RUN_DIR`` goes on
  from it (when only the final evaluation is missing, resume runs just that).
- ``restart``: the directory holds run outputs but nothing to resume from (the run stopped
  before its first checkpoint): ``train.py --overwrite`` starts it again.
- ``absent``: no run there.

A run records its position in ``checkpoints/last/progress.json`` after every epoch
(``training.resume_state``); the final evaluation (``Task.finalize``) writes ``export/`` last,
so the export files are what marks a finished run.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.config import read_resolved_config
from training.resume_state import TRAINER_STATE_FILE, read_progress, resolve_checkpoint

RESOLVED_CONFIG = "config_resolved.yaml"
# What each task's finalize() writes into export/, in the order it writes them.
EXPORT_FILES = {
    "seld_pretrain": ("metrics.json", "labels.json"),
    "imagination": ("labels.json", "metrics.json", "model_card.md"),
    "hazard_set": ("labels.json", "metrics.json", "model_card.md"),
    "decision": ("labels.json", "metrics.json"),
}
STATUSES = ("absent", "restart", "resumable", "complete")


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


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python training/run_status.py RUN_DIR", file=sys.stderr)
        return 2
    print(run_status(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
