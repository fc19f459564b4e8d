"""Synthetic scene throughput: scenes per second on this machine, and where the time goes.

    python bench/bench_synth.py [--seconds 20] [--workers 2] [--image-size 224 224]

Prints one JSON object: end-to-end scenes/s in one process and over ``--workers`` processes
(the target is >= 20 scenes/s on 2 cores at 1 s of audio + 224 x 224 RGB-D), and the mean
milliseconds per scene of each stage measured in one process (signal synthesis, FOA
acoustics, RGB-D rendering; end-to-end adds geometry sampling and mixing). The CPU time per
scene gives the rate two idle cores would reach when other jobs share the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avi_ros.data.acoustics import diffuse_noise
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_geometry import sample_geometry
from avi_ros.data.signals import synthesize_class
from avi_ros.taxonomy import default_taxonomy


def _stage_split(config: SceneConfig, count: int) -> dict[str, float]:
    """Mean ms per scene of each stage, timed on the same geometries generate_scene would use."""
    names = default_taxonomy().names
    totals = {"signal_ms": 0.0, "acoustics_ms": 0.0, "render_ms": 0.0, "end_to_end_ms": 0.0}
    for seed in range(count):
        rng = np.random.default_rng(seed)
        class_name = names[1 + seed % (len(names) - 1)]
        geometry = sample_geometry(rng, config, class_name)
        t0 = time.perf_counter()
        dry = synthesize_class(class_name, rng, config.n_samples, config.sample_rate)
        t1 = time.perf_counter()
        geometry.layout.render_audio(
            dry, [geometry.mic], geometry.hazard.centre_m, config.n_samples, config.acoustics, rng
        )
        diffuse_noise(rng, config.n_samples, config.sample_rate, 1.0)
        t2 = time.perf_counter()
        geometry.layout.render(geometry.mic, config.intrinsics, config.extrinsic, rng, config.render)
        t3 = time.perf_counter()
        generate_scene(seed, config)
        t4 = time.perf_counter()
        totals["signal_ms"] += (t1 - t0) * 1e3
        totals["acoustics_ms"] += (t2 - t1) * 1e3
        totals["render_ms"] += (t3 - t2) * 1e3
        totals["end_to_end_ms"] += (t4 - t3) * 1e3
    return {k: round(v / count, 2) for k, v in totals.items()}


def _worker(args: tuple[SceneConfig, int, float]) -> int:
    """Generate scenes from ``first_seed`` on until ``deadline`` (a perf_counter-free wall time)."""
    config, first_seed, deadline = args
    done = 0
    while time.time() < deadline:
        generate_scene(first_seed + done, config)
        done += 1
    return done


def _cpu_ms_per_scene(config: SceneConfig, count: int) -> float:
    """CPU time of one process per scene [ms]: unlike wall time, it ignores other load on the machine."""
    generate_scene(0, config)
    start = time.process_time()
    for seed in range(count):
        generate_scene(seed, config)
    return (time.process_time() - start) / count * 1e3


def _throughput(config: SceneConfig, workers: int, seconds: float) -> float:
    generate_scene(0, config)  # warm caches (ray grid, imports) before timing
    if workers == 1:
        start = time.time()
        count = _worker((config, 0, start + seconds))
        return count / (time.time() - start)
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_worker, [(config, 0, 0.0)] * workers)  # start the processes and import everything
        start = time.time()
        counts = pool.map(_worker, [(config, 10**6 * (k + 1), start + seconds) for k in range(workers)])
        elapsed = time.time() - start
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each throughput run [s]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, nargs=2, default=(224, 224), metavar=("W", "H"))
    parser.add_argument("--split-scenes", type=int, default=60, help="scenes for the per-stage split")
    args = parser.parse_args()
    config = SceneConfig().with_image_size(*args.image_size, math.radians(70.0))
    load_before = os.getloadavg()[0]
    split = _stage_split(config, args.split_scenes)
    cpu_ms = _cpu_ms_per_scene(config, args.split_scenes)
    single = _throughput(config, 1, args.seconds)
    multi = _throughput(config, args.workers, args.seconds)
    print(
        json.dumps(
            {
                "bench": "synthetic_scenes",
                "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                "image_size": list(args.image_size),
                "audio_s": config.duration_s,
                "scenes_per_s_1_process": round(single, 2),
                f"scenes_per_s_{args.workers}_workers": round(multi, 2),
                "speedup_workers_vs_1": round(multi / single, 2),
                "cpu_ms_per_scene": round(cpu_ms, 2),
                "cpu_bound_scenes_per_s_on_2_idle_cores": round(2e3 / cpu_ms, 2),
                "load_average_at_start": round(load_before, 2),
                "per_scene_ms_1_process": split,
                "target_scenes_per_s": 20,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
