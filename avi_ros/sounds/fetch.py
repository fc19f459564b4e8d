"""Fetch Debian packages with ``apt-get download`` and unpack them with ``dpkg-deb -x``.

Nothing is installed: the ``.deb`` files land in ``<cache>/debs`` and their contents in
``<cache>/extract/<package>``, marked complete by a ``.complete`` file, so a second run
downloads and extracts nothing. Only ``apt-get update`` (run once, as root, when apt does not
know a package yet) needs more than a normal user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

CACHE_ENV = "AVI_ROS_SOUNDS"
COMPLETE_MARKER = ".complete"


class FetchUnavailableError(RuntimeError):
    """The packages cannot be fetched here (no apt, no network, unknown package)."""


def cache_root() -> Path:
    """``$AVI_ROS_SOUNDS`` or ``~/.cache/avi_ros/sounds``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "avi_ros" / "sounds")


def extract_dir(cache: Path, package: str) -> Path:
    return cache / "extract" / package


def cached_deb(cache: Path, package: str) -> Path | None:
    """The downloaded ``.deb`` of ``package`` in the cache, if any (newest by name)."""
    found = sorted((cache / "debs").glob(f"{package}_*.deb"))
    return found[-1] if found else None


def _run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or [f"exit status {result.returncode}"])[-1].strip()


def _apt_download(packages: Sequence[str], debs: Path) -> None:
    """Download ``packages`` into ``debs``; runs ``apt-get update`` once (as root) and retries if
    apt does not know them yet. Raises FetchUnavailableError."""
    if shutil.which("apt-get") is None:
        raise FetchUnavailableError("apt-get is not available on this system")
    debs.mkdir(parents=True, exist_ok=True)
    # As root apt drops to the _apt user to download, which cannot write into a private cache.
    sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
    command = ["apt-get", *sandbox, "download", *packages]
    result = _run(command, cwd=debs)
    if result.returncode != 0 and os.geteuid() == 0:
        update = _run(["apt-get", "update"])
        if update.returncode != 0:
            raise FetchUnavailableError(f"apt-get update failed: {_last_line(update)}")
        result = _run(command, cwd=debs)
    if result.returncode != 0:
        raise FetchUnavailableError(f"apt-get download {' '.join(packages)} failed: {_last_line(result)}")


def _extract(deb: Path, target: Path) -> None:
    """Unpack ``deb`` into ``target`` through a temporary folder, so a crash leaves no half tree."""
    if shutil.which("dpkg-deb") is None:
        raise FetchUnavailableError("dpkg-deb is not available on this system")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    result = _run(["dpkg-deb", "-x", str(deb), str(partial)])
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise FetchUnavailableError(f"dpkg-deb -x {deb.name} failed: {_last_line(result)}")
    (partial / COMPLETE_MARKER).write_text(deb.name + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def fetch_packages(packages: Sequence[str], cache: Path) -> dict[str, Path]:
    """Package name -> its extracted root, downloading and extracting only what is missing."""
    pending = [p for p in packages if not (extract_dir(cache, p) / COMPLETE_MARKER).is_file()]
    missing = [p for p in pending if cached_deb(cache, p) is None]
    if missing:
        _apt_download(missing, cache / "debs")
    for package in pending:
        deb = cached_deb(cache, package)
        if deb is None:
            raise FetchUnavailableError(f"apt-get download gave no .deb for {package}")
        _extract(deb, extract_dir(cache, package))
    return {p: extract_dir(cache, p) for p in packages}
