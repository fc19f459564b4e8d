#!/usr/bin/env python3
"""Step 1 of the demo: generate the synthetic splits of a training config (reused when present).

    python scripts/demo_dataset.py training/configs/demo.yaml [key=value ...]

The same directories and scenes ``training/train.py`` would generate on first use, made
here so that the demo shows dataset generation as its own step. A file (not stdin) because
the generator's worker processes re-import the main module.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.config import load_config
from training.splits import ensure_scenes, split_directory


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python scripts/demo_dataset.py CONFIG [key=value ...]", file=sys.stderr)
        return 2
    config = load_config(argv[0], argv[1:])
    data = config.data
    scene = data.scene_config()
    for name in ("train", "val"):
        split = getattr(data, name)
        directory = split_directory(data.cache_dir, split, scene)
        ensure_scenes(directory, split, scene, data.generation_workers, progress=True)
        print(f"{name}: {split.scenes} scenes in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
