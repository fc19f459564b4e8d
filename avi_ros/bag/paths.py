"""What a user types for a bag, and the rosbag2 directory that it means.

rosbag2 stores a bag as a *directory* (``metadata.yaml`` + ``<name>_0.mcap`` or ``.db3``),
while users naturally type ``demo.mcap``. For output, ``demo.mcap`` therefore means the
directory ``demo/`` written with the mcap plugin (``demo.db3``: sqlite3). For input, a bag
directory, a bare ``.mcap``/``.db3`` file, and ``demo.mcap`` naming the directory ``demo/``
are all accepted.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from avi_ros.bag.io import STORAGE_PLUGINS, BagError

STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}


def bag_output_path(out: Path | str, storage: str | None = None) -> tuple[Path, str]:
    """The bag directory and storage plugin for ``--out`` (and an optional ``--storage``).

    A ``.mcap``/``.db3`` suffix selects the plugin and is dropped from the directory name;
    a ``--storage`` that contradicts it is an error. Without either, mcap.
    """
    path = Path(out)
    implied = STORAGE_SUFFIXES.get(path.suffix)
    if storage is not None and storage not in STORAGE_PLUGINS:
        raise BagError(f"unknown storage '{storage}'; expected one of {list(STORAGE_PLUGINS)}")
    if implied is not None and storage is not None and storage != implied:
        raise BagError(f"--out {out} implies {implied} storage but --storage is {storage}")
    directory = path.with_suffix("") if implied is not None else path
    chosen = storage or implied or "mcap"
    if directory.exists():
        raise BagError(f"{directory} already exists; remove it or choose another --out")
    return directory, chosen


def resolve_bag_input(path: Path | str) -> Path:
    """The path rosbags should open for a user's bag argument; BagError when nothing is there."""
    candidate = Path(path)
    if candidate.exists():
        return candidate
    if candidate.suffix in STORAGE_SUFFIXES and (candidate.with_suffix("") / "metadata.yaml").is_file():
        return candidate.with_suffix("")
    raise BagError(f"{candidate}: no such bag (neither a rosbag2 directory nor a .mcap/.db3 file)")


@contextmanager
def removed_on_failure(directory: Path) -> Iterator[Path]:
    """Delete ``directory`` when the block fails (also on Ctrl-C), so that a half-written bag is
    never mistaken for a whole one by a later run that reuses existing outputs."""
    try:
        yield directory
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
