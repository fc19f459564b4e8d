"""Peak memory of preparing a scene split and of an epoch over it: bounded by a chunk, not the split.

    python bench/bench_memory.py runs/cache/hazard_set/scenes-seed22-n400-* \\
        runs/cache/hazard_set/scenes-seed23-n600-* [--config training/configs/hazard_set.yaml] \\
        [--out docs/results/memory.json]

For each scene split (a shard directory of ``avi_ros.data.synthesize`` / a training run's cache), a
fresh process prepares it the way training does (``training.data.build_store`` into a temporary
chunk directory, ``PREPARE_CHUNK`` scenes at a time) and then reads one epoch of batches of 32 from
disk; it reports its peak resident set size (``ru_maxrss``) after each. Splits of different sizes
with the same peak show that memory does not grow with the split. Writes ``--out`` (JSON) and
prints it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from avi_ros.data.shards import ShardReader
from training.config import load_config
from training.data import PREPARE_CHUNK, build_store, epoch_batches
from training.hazard_set_task import set_prepare_config
from training.splits import iter_scenes


def peak_rss_mb() -> float:
    """This process's peak resident set size so far [MB] (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_split(split: Path, config_path: Path) -> dict[str, float | int | str]:
    """Prepare ``split`` into a temporary directory, then one epoch over it; the peaks after each."""
    prepare = set_prepare_config(load_config(config_path))
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(
            iter_scenes(ShardReader(split)), prepare, torch.device("cpu"), Path(tmp) / "prepared"
        )
        after_prepare = peak_rss_mb()
        for _ in store.iterate(epoch_batches(len(store), 32, 0, 0)):
            pass
        return {
            "split": split.name,
            "scenes": len(store),
            "peak_rss_mb_after_prepare": round(after_prepare),
            "peak_rss_mb_after_epoch": round(peak_rss_mb()),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/bench_memory.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("splits", nargs="+", type=Path, help="scene shard directories")
    parser.add_argument("--config", type=Path, default=Path("training/configs/hazard_set.yaml"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/memory.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one split, in this process
    args = parser.parse_args(argv)
    missing = [str(s) for s in args.splits if not (s / "index.json").is_file()]
    if missing:
        print(f"bench_memory: not a scene split (no index.json): {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.child:
        print(json.dumps(measure_split(args.splits[0], args.config)))
        return 0
    rows = []
    for split in args.splits:  # a fresh process each: ru_maxrss is the peak of the whole process
        command = [sys.executable, __file__, str(split), "--config", str(args.config), "--child"]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    report = {
        "benchmark": "peak RSS of preparing a split and of one epoch over it (training.data)",
        "prepare_chunk_scenes": PREPARE_CHUNK,
        "config": str(args.config),
        "machine": {"platform": platform.platform(), "torch": torch.__version__},
        "splits": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
