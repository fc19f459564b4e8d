"""Running a command of the checkout (a script, an installed executable) from a test."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def run_ok(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` to its end with its output captured as text and assert that it succeeded.

    Both streams go into the failure message: a script may say why it stopped on either.
    """
    result = subprocess.run(
        list(args),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result
