"""Train the hazard model, pre-train the SELD encoder, or train the decision stage from a YAML config.

    python training/train.py --config training/configs/demo.yaml [key=value ...]
    python training/train.py --config training/configs/decision.yaml
    python training/train.py --resume runs/demo
    torchrun --nproc_per_node 2 training/train.py --config training/configs/default.yaml

Overrides use dotted keys: ``optim.batch_size=16``, ``stages.1.epochs=3``,
``model.variant=audio_only``, ``output_dir=runs/x``. The synthetic dataset is generated into
``data.cache_dir`` on first use and reused afterwards. Exit status: 0 when training completed
(or stopped at ``runtime.stop_after_steps``), 2 for a bad config or input, 128 + N after
signal N (checkpoints/last is saved; resume with ``--resume RUN_DIR``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avi_ros.checkpoint import CheckpointError
from training.config import ExperimentConfig, load_config, read_resolved_config
from training.distributed import shutdown
from training.run_status import RESUME_OVERRIDABLE, RUN_OUTPUTS, clear_run_outputs
from training.typed_config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python training/train.py", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="YAML config (training/configs/*.yaml)")
    source.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR exactly")
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh in a run directory that already holds a run"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides (with --resume: runtime bookkeeping only)",
    )
    return parser


def resolve(args: argparse.Namespace) -> tuple[ExperimentConfig, Path, bool]:
    """(config, run directory, resume?) from the command line."""
    if args.resume is not None:
        for item in args.overrides:
            if item.split("=", 1)[0] not in RESUME_OVERRIDABLE:
                raise ConfigError(
                    f"override '{item}': a resumed run continues exactly as configured; "
                    f"only {list(RESUME_OVERRIDABLE)} may change"
                )
        run_dir = args.resume.resolve()
        if run_dir.name == "last" and run_dir.parent.name == "checkpoints":
            run_dir = run_dir.parent.parent
        resolved = run_dir / "config_resolved.yaml"
        if not resolved.is_file():
            raise ConfigError(
                f"--resume {args.resume}: no config_resolved.yaml there; give the run directory"
            )
        return read_resolved_config(resolved, args.overrides), run_dir, True
    config = load_config(args.config, args.overrides)
    run_dir = config.resolved_output_dir()
    existing = [name for name in RUN_OUTPUTS if (run_dir / name).exists()]
    if existing and not args.overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run ({', '.join(existing)}); continue it with --resume {run_dir}, "
            "start afresh with --overwrite, or set another name/output_dir"
        )
    clear_run_outputs(run_dir)
    return config, run_dir, False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config, run_dir, resume = resolve(args)
    except ConfigError as exc:
        print(f"train.py: config error: {exc}", file=sys.stderr)
        return 2
    from training.trainer import Trainer  # heavy imports only after the config is valid

    trainer = None
    try:
        trainer = Trainer(config, run_dir, resume=resume)
        result = trainer.fit()
    except (ConfigError, CheckpointError, FileNotFoundError) as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if trainer is not None:
            shutdown(trainer.dist)
    if result.status == "interrupted":
        return 128 + (result.signal_number or 2)
    if result.status == "completed" and trainer.dist.is_main:
        print(f"done: {run_dir} (best {config.runtime.select_metric} = {result.best_value})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
