"""Progress bars appear on a terminal only: a pipe or a log file gets whole lines, no '\\r'.

tqdm's ``disable=None`` turns a bar off when its stream is not a TTY; every bar of the package
uses it (grep tqdm). Checked here on the scene generator, the cheapest entry point with a bar.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _synthesize(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "avi_ros.data.synthesize",
        *("--out", str(out), "--n", "2", "--workers", "1"),
        *("--image-size", "32", "24", "--duration", "0.5"),
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}


def test_no_progress_bar_when_the_output_is_a_pipe(tmp_path: Path) -> None:
    result = subprocess.run(
        _synthesize(tmp_path / "scenes"),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout.decode(errors="replace")
    assert b"\r" not in result.stdout
    assert b"wrote 2 scenes" in result.stdout


def test_progress_bar_still_shows_on_a_terminal(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    # 24 x 80: a terminal of no width would give tqdm no room to draw a bar.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        process = subprocess.Popen(
            _synthesize(tmp_path / "scenes"), cwd=tmp_path, env=_env(), stdout=secondary, stderr=secondary
        )
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closes when the process exits
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=300) == 0, output.decode(errors="replace")
    finally:
        os.close(primary)
    # A terminal turns "\n" into "\r\n"; a bar redraws with a bare "\r".
    assert re.search(rb"\r(?!\n)", output), output.decode(errors="replace")
