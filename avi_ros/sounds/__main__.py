"""``python -m avi_ros.sounds build [--full]`` fetches the catalogued packages and builds the bank;
``python -m avi_ros.sounds attribution`` prints the attribution text (for ATTRIBUTION.md).

Where the packages cannot be fetched (no apt, no network) ``build`` prints one line saying so
and exits 0: the demo then trains on the procedural sounds alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from avi_ros.sounds.attribution import attribution_text
from avi_ros.sounds.build import build_bank
from avi_ros.sounds.catalogue import CATALOGUE_PATH, CatalogueError, read_catalogue, select_packages
from avi_ros.sounds.fetch import FetchUnavailableError, cache_root, fetch_packages

FALLBACK = "the demo falls back to the procedural sounds"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m avi_ros.sounds", description=__doc__)
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE_PATH, help="catalogue CSV")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="fetch the packages and build the bank")
    build.add_argument("--full", action="store_true", help="also the large ambience packages")
    build.add_argument("--cache", type=Path, default=None, help="cache folder (default $AVI_ROS_SOUNDS)")
    commands.add_parser("attribution", help="print the attribution markdown")
    return parser


def _build(catalogue: Path, cache: Path, full: bool) -> int:
    start = time.monotonic()
    rows = read_catalogue(catalogue)
    packages = select_packages(rows, full)
    try:
        roots = fetch_packages(packages, cache)
    except FetchUnavailableError as exc:
        print(f"avi_ros sounds: cannot fetch the sound packages ({exc}); {FALLBACK}.", flush=True)
        return 0
    summary = build_bank(rows, roots, cache / "bank")
    if summary.skipped:
        print(f"avi_ros sounds: {summary.skipped_line(cache / 'bank')}", file=sys.stderr)
    print(summary.table())
    print(
        f"avi_ros sounds: bank at {cache / 'bank'} from {len(packages)} packages, "
        f"{sum(summary.clips.values())} clips ({summary.converted} converted now) "
        f"in {time.monotonic() - start:.0f} s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "attribution":
            sys.stdout.write(attribution_text(read_catalogue(args.catalogue)))
            return 0
        return _build(args.catalogue, args.cache or cache_root(), args.full)
    except CatalogueError as exc:
        print(f"avi_ros sounds: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
