"""The hazard tracker against per-frame nearest-neighbour ids, on simulated estimates; prints JSON.

    python bench/bench_tracker.py                  # 100 scenes of 10 s at 10 frames/s
    python bench/bench_tracker.py --scenes 20 --azimuth-std-deg 10
    python bench/bench_tracker.py --seed 0 1 2 --out docs/results/tracker_bench.json

This measures the tracking stage alone, not the model: each scene has 1 to 3 sources that walk,
run or drive along straight lines (0.5 to 15 m/s) around a robot that drives forward (0 to 1
m/s) and turns at a constant yaw rate (both known, as from odometry), and each source starts and
stops inside the clip. The "model" is simulated: per frame each active source is detected with probability
``--p-detect``, with Gaussian azimuth noise and relative distance noise, the right class with
probability 0.9, and it keeps being reported for ``--linger-s`` after it stopped (the model's
1 s window still holds it); clutter detections appear at ``--clutter`` per frame. Both
associators see the same detections and are scored by ``avi_ros.tracking.metrics.score_trackers``
with the 20-degree gate. Times are per ``update`` call on this machine, as a ratio between the two.
With several ``--seed`` values each seed draws its own scenes, and the JSON has each seed's
results and their mean ± std (ddof 1) per metric; ``--out`` writes the JSON to a file as well.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's avi_ros

import numpy as np

from avi_ros.tracking import (
    HazardTracker,
    NearestNeighbourTracker,
    RobotMotion,
    TrackingAccumulator,
    TruthPoint,
)
from avi_ros.tracking.ego_motion import FrameStep
from avi_ros.tracking.metrics import Associator, TrackerFrame, score_trackers, simulated_detection
from avi_ros.types import HazardEstimateData
from avi_ros.units import NS_PER_S

CLASSES = 4  # classes 1..3 are hazards (0 is "none")
ID_STRIDE = 100_000  # truth ids of scene s are offset by s * ID_STRIDE


def simulate_scene(rng: np.random.Generator, args: argparse.Namespace, scene: int) -> list[TrackerFrame]:
    """The frames of one scene (detections, truth, the robot's constant odometry); the scene
    number makes its stamps and truth ids unique, so that all scenes go into one score."""
    frames = round(args.clip_s / args.frame_s)
    motion = RobotMotion(float(rng.choice([0.0, 0.0, 0.5, 1.0])), float(rng.choice([0.0, 0.0, 0.5, -0.5])))
    sources = []
    for track_id in range(ID_STRIDE * scene + 1, ID_STRIDE * scene + int(rng.integers(1, 4)) + 1):
        speed = float(rng.uniform(0.5, 15.0))
        heading = rng.uniform(-math.pi, math.pi)
        start = rng.uniform(-12.0, 12.0, size=2)
        onset = int(rng.integers(0, frames // 3))
        offset = int(rng.integers(onset + frames // 3, frames))
        velocity = speed * np.array([math.cos(heading), math.sin(heading)])
        sources.append((track_id, int(rng.integers(1, CLASSES)), start, velocity, onset, offset))
    linger = round(args.linger_s / args.frame_s)
    robot, yaw = np.zeros(2), 0.0  # the robot's position [m] and heading [rad] in the world
    scene_frames = []
    for k in range(frames):
        t = k * args.frame_s
        robot_velocity = motion.speed_mps * np.array([math.cos(yaw), math.sin(yaw)])
        row, seen = [], []
        for track_id, class_id, start, velocity, onset, offset in sources:
            if not onset <= k <= offset + linger:
                continue
            relative = start + velocity * (k - onset) * args.frame_s - robot
            distance = max(float(np.linalg.norm(relative)), 0.3)
            azimuth = math.remainder(math.atan2(relative[1], relative[0]) - yaw, 2.0 * math.pi)
            if k <= offset:
                rate = float(relative @ (velocity - robot_velocity)) / distance
                row.append(TruthPoint(track_id, class_id, azimuth, distance, rate))
            if rng.random() < args.p_detect:
                noisy_az = azimuth + math.radians(args.azimuth_std_deg) * rng.standard_normal()
                noisy_d = distance * math.exp(args.distance_rel_std * rng.standard_normal())
                detected = class_id if rng.random() < 0.9 else int(rng.integers(1, CLASSES))
                seen.append(
                    simulated_detection(math.remainder(noisy_az, 2.0 * math.pi), noisy_d, detected, CLASSES)
                )
        for _ in range(rng.poisson(args.clutter)):
            seen.append(
                simulated_detection(rng.uniform(-math.pi, math.pi), rng.uniform(1.0, 15.0), 1, CLASSES)
            )
        stamp_ns = round((100.0 + 2.0 * args.clip_s * scene + t) * NS_PER_S)
        scene_frames.append(TrackerFrame(stamp_ns, seen, row, motion, scene))
        step = FrameStep.of(args.frame_s, motion)  # the robot's move to the next frame
        robot = robot + np.array(
            [
                step.dx_m * math.cos(yaw) - step.dy_m * math.sin(yaw),
                step.dx_m * math.sin(yaw) + step.dy_m * math.cos(yaw),
            ]
        )
        yaw += step.turn_rad
    return scene_frames


class _Timed:
    """A tracker whose ``update`` calls are timed (wall clock of this machine)."""

    def __init__(self, tracker: Associator) -> None:
        self.tracker = tracker
        self.elapsed_s = 0.0
        self.calls = 0

    def update(
        self, estimates: list[HazardEstimateData], stamp_ns: int, motion: RobotMotion | None = None
    ) -> list[HazardEstimateData]:
        started = time.perf_counter()
        out = self.tracker.update(estimates, stamp_ns, motion)
        self.elapsed_s += time.perf_counter() - started
        self.calls += 1
        return out

    def reset(self) -> None:
        self.tracker.reset()

    def mean_us(self) -> float:
        """Mean time of one ``update`` [us]."""
        return 1e6 * self.elapsed_s / max(self.calls, 1)


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Both associators on the scenes of ``seed``: their scores, mean update time [us] and ratio."""
    rng = np.random.default_rng(seed)
    frames = [frame for scene in range(args.scenes) for frame in simulate_scene(rng, args, scene)]
    trackers = {"tracker": _Timed(HazardTracker()), "nearest_neighbour": _Timed(NearestNeighbourTracker())}
    scored = score_trackers(frames, trackers, partial(TrackingAccumulator, frame_period_s=args.frame_s))
    results: dict[str, dict[str, Any]] = {}
    for name, scores in scored.items():
        results[name] = scores.as_dict()
        for per_track in ("onset_latencies_s", "offset_latencies_s"):
            results[name].pop(per_track)
        results[name]["update_us_mean"] = trackers[name].mean_us()
    ratio = trackers["tracker"].mean_us() / trackers["nearest_neighbour"].mean_us()
    return {"seed": seed, "results": results, "time_ratio_tracker_to_nn": ratio}


def mean_std(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per associator and numeric metric: mean and std (ddof 1) over the seeds, NaN left out."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in runs[0]["results"]:
        out[name] = {}
        for key in runs[0]["results"][name]:
            values = np.array([r["results"][name][key] for r in runs], dtype=np.float64)
            values = values[np.isfinite(values)]
            out[name][key] = {
                "mean": float(values.mean()) if values.size else math.nan,
                "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--clip-s", type=float, default=10.0)
    parser.add_argument("--frame-s", type=float, default=0.1)
    parser.add_argument("--azimuth-std-deg", type=float, default=6.0)
    parser.add_argument("--distance-rel-std", type=float, default=0.2)
    parser.add_argument("--p-detect", type=float, default=0.9)
    parser.add_argument("--clutter", type=float, default=0.05, help="false detections per frame")
    parser.add_argument("--linger-s", type=float, default=0.0, help="reported after the source stops [s]")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="seed(s) of the scenes")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    runs = [run_seed(args, seed) for seed in args.seed]
    report: dict[str, Any] = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    }
    if len(runs) == 1:
        report.update(runs[0])
    else:
        report.update(seeds=runs, mean_std=mean_std(runs))
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
