"""How a training script ends on bad input: one line on stderr that names the script, exit status 2.

The scripts read configs, checkpoints and folders a user names; a wrong one is reported the same
way by each (``evaluate.py: error: <the reason>``), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from avi_ros.checkpoint import CheckpointError
from training.typed_config import ConfigError

# What bad input raises: a config or checkpoint that does not fit, a missing file, a bad value.
BAD_INPUT: tuple[type[Exception], ...] = (ConfigError, CheckpointError, FileNotFoundError, ValueError)


def script_main(
    build_parser: Callable[[], argparse.ArgumentParser], body: Callable[[argparse.Namespace], int]
) -> Callable[[Sequence[str] | None], int]:
    """A script's ``main(argv=None)``: parse the command line, return ``body(arguments)``'s exit
    status, or 2 after one line ``<script>: error: <reason>`` on stderr when it raises one of
    ``BAD_INPUT`` (the script's name from the parser's ``prog``, e.g. "python training/evaluate.py"
    -> "evaluate.py")."""

    def main(argv: Sequence[str] | None = None) -> int:
        parser = build_parser()
        arguments = parser.parse_args(argv)
        try:
            return body(arguments)
        except BAD_INPUT as exc:
            print(f"{Path(parser.prog.split()[-1]).name}: error: {exc}", file=sys.stderr)
            return 2

    return main
