"""Tracks on held-out moving scenes: the model per frame, then the tracker, against the exact truth.

    python training/track_eval.py --checkpoint avi_ros/models/shipped \\
        --sound-dir ~/.cache/avi_ros/sounds/bank/test --scenes 12 --seed 0 1 2 --out docs/results/tracks

Renders ``--scenes`` random moving scenes (``avi_ros.data.moving_scenes``: sources that walk, run
or drive past, a robot that drives and turns; real test-split recordings with ``--sound-dir``,
procedural sounds otherwise) at ``--camera-rate`` (10 Hz: the 100 ms SELD resolution) and caches
them under ``--cache-dir`` (default ``OUT/scenes``), so a second run reuses them. Then, as the node
does, runs the checkpoint's ``Pipeline`` on every camera frame with the audio window that ends at
its stamp (frames before the first full window are skipped, as the node cannot assemble them),
and feeds each frame's hazards to four trackers:

- ``tracker``: ``avi_ros.tracking.HazardTracker`` with the robot's exact odometry (forward speed
  and yaw rate), tentative tracks published from their first frame;
- ``tracker_rotation_only``: the same given the yaw rate only (the robot's driving not removed);
- ``tracker_no_odometry``: the same without odometry (angular velocities are the apparent ones);
- ``nearest_neighbour``: ``NearestNeighbourTracker`` (per-frame ids, the baseline), with odometry.

All three are scored by ``avi_ros.tracking.metrics.score_trackers`` against the true track ids:
MOTA, ID switches per track-minute, median onset and offset latency, median azimuth error (all
and on moving sources: true speed >= ``MOVING_MPS``), range-rate sign accuracy on approach/leave
phases, and the median angular-velocity error against the true world-frame rate (what yaw
compensation changes).
Beside the trackers, ``OneHazardDirections`` puts the model's direction next to physics on the
frames with exactly one true hazard (the broadband FOA intensity vector of the same window).
Works with single-hazard and hazard-set checkpoints. Writes ``metrics.json`` and ``metrics.md``
into ``--out``; with several ``--seed`` values (each its own set of scenes), into
``OUT/seed<N>/`` for each, and the mean ± std over the seeds into ``OUT/summary.json`` and
``OUT/summary.md``. Exit status 0, or 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from tqdm import tqdm

from avi_ros.audio import SAMPLE_RATE
from avi_ros.bag.scenario import DEFAULT_START_NS, ScenarioRenderer, SensorConfig
from avi_ros.checkpoint import CheckpointError
from avi_ros.data.moving_scenes import random_moving_script
from avi_ros.data.sound_bank import SoundBank, bank_digest
from avi_ros.device import resolve_device
from avi_ros.doa import broadband_direction
from avi_ros.geometry import angular_error_rad, direction_to_unit
from avi_ros.pipeline import Pipeline
from avi_ros.taxonomy import Visibility, default_taxonomy
from avi_ros.tracking import (
    HazardTracker,
    NearestNeighbourTracker,
    RobotMotion,
    TrackerConfig,
    TrackingAccumulator,
    TruthPoint,
)
from avi_ros.tracking.metrics import TrackerFrame, TrackingScores, score_trackers
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD, Frame, HazardEstimateData
from avi_ros.units import NS_PER_S
from training.metrics import azimuth_errors_deg, direction_by_sector, mean_and_std
from training.tables import metric_row, metric_table_head, portable_path

SCENE_FORMAT = 2  # bump when the cached scene layout or the scene generator changes
MOVING_MPS = 0.5  # a true source this fast in the world counts as moving [m/s]
SCENE_SPACING_S = 1000.0  # scene k's stamps start k * this after the first's, so scenes never mix [s]
TRACK_ID_STRIDE = 1000  # true track id = scene index * this + the scene's own id
GATE_DEG = 20.0  # a tracked estimate within this of a same-class truth counts for the rate errors
TRACKERS = ("tracker", "tracker_rotation_only", "tracker_no_odometry", "nearest_neighbour")
# The targets for tracks on held-out moving scenes: metric -> (bound, "max" or "min").
TARGETS = {
    "onset_latency_s": (0.3, "max"),
    "offset_latency_s": (0.3, "max"),
    "azimuth_error_moving_deg": (10.0, "max"),
    "range_rate_sign_accuracy": (0.9, "min"),
}
TRUTH_FIELDS = (
    "frame",
    "track_id",
    "class_id",
    "azimuth",
    "elevation",
    "distance",
    "range_rate",
    "angular_velocity",
    "speed",
)

# The metrics of the tables, as (label, key of the tracker's row), in table order.
ROWS = (
    ("MOTA", "mota"),
    ("ID switches / track-minute", "id_switches_per_track_minute"),
    ("onset latency, median [s]", "onset_latency_s"),
    ("offset latency, median [s]", "offset_latency_s"),
    ("azimuth error, median [deg]", "azimuth_error_deg"),
    ("azimuth error on moving sources, median [deg]", "azimuth_error_moving_deg"),
    ("range-rate sign right (approach/leave phases)", "range_rate_sign_accuracy"),
    ("approach/leave phases", "range_rate_phases"),
    ("angular velocity error, median [deg/s]", "angular_velocity_error_deg_s"),
    ("true hazard-frames (GT)", "truth_count"),
    ("false negatives", "false_negatives"),
    ("false positives", "false_positives"),
    ("ID switches", "id_switches"),
    ("true hazards never matched", "never_matched"),
)
# The columns of the one-hazard direction table (``OneHazardDirections``), as (label, key).
DIRECTION_COLUMNS = (
    ("frames", "frames"),
    ("model answered", "model_located"),
    ("model [deg]", "model_azimuth_error_median_deg"),
    ("physics on those frames [deg]", "physics_azimuth_error_located_median_deg"),
    ("physics on every frame [deg]", "physics_azimuth_error_median_deg"),
)
DIRECTION_INTRO = (
    "Direction on the frames with exactly one true hazard, by sector of its true azimuth (front "
    "|az| <= 45°, behind |az| > 135°): median azimuth error of the model's published hazard nearest "
    "the truth beside physics, the broadband FOA intensity vector of the same audio window "
    "(`avi_ros.doa.broadband_direction`; distractor sounds and the room included)."
)
LEGEND = (
    "`tracker`: HazardTracker with the robot's odometry (speed and yaw rate), tentative tracks published "
    "from their first frame; `tracker_rotation_only`: the same given the yaw rate only; "
    "`tracker_no_odometry`: the same without odometry; `nearest_neighbour`: per-frame "
    "nearest-neighbour ids (baseline). Angular velocities are scored against the hazard's own "
    "motion (the robot's turning and driving removed)."
)


class UsageError(ValueError):
    """A bad argument; reported in one line with exit status 2."""


@dataclass(frozen=True)
class SceneSettings:
    """How the held-out scenes are rendered; part of the cache key."""

    seed: int
    camera_rate_hz: float
    width: int
    height: int
    knot_s: float
    sound_digest: str  # "procedural" or a digest of the bank folder's files

    def key(self) -> str:
        text = json.dumps({**asdict(self), "format": SCENE_FORMAT}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    @property
    def sensors(self) -> SensorConfig:
        return SensorConfig(
            camera_rate_hz=self.camera_rate_hz, width=self.width, height=self.height, knot_s=self.knot_s
        )


@dataclass
class Scene:
    """One rendered scene: FOA audio [4, N] at 24 kHz, frames [F] with their times [s], the
    robot's odometry at each (forward speed [m/s], yaw rate [rad/s]), and the truth rows
    (``TRUTH_FIELDS``) of every frame."""

    audio: np.ndarray
    rgb: np.ndarray
    depth_m: np.ndarray
    times_s: np.ndarray
    speeds: np.ndarray
    yaw_rates: np.ndarray
    truth: np.ndarray

    def truths(self, frame: int, scene_index: int) -> list[tuple[TruthPoint, float, float]]:
        """(truth point with a globally unique id, true angular velocity [rad/s], speed [m/s])."""
        rows = self.truth[self.truth[:, 0] == frame]
        return [
            (
                TruthPoint(
                    int(scene_index * TRACK_ID_STRIDE + r[1]),
                    int(r[2]),
                    float(r[3]),
                    float(r[5]),
                    float(r[6]),
                    float(r[4]),
                ),
                float(r[7]),
                float(r[8]),
            )
            for r in rows
        ]

    def tracker_frame(self, frame: int, scene_index: int, hazards: list[HazardEstimateData]) -> SceneFrame:
        """Frame ``frame`` with the estimates ``hazards``, as the trackers see it."""
        truths = self.truths(frame, scene_index)
        return SceneFrame(
            stamp_ns=_stamp(scene_index, float(self.times_s[frame])),
            estimates=hazards,
            truths=[t for t, _, _ in truths],
            motion=RobotMotion(float(self.speeds[frame]), float(self.yaw_rates[frame])),
            scene=scene_index,
            angular_velocities=tuple(rate for _, rate, _ in truths),
            speeds=tuple(speed for _, _, speed in truths),
        )


@dataclass(frozen=True)
class SceneFrame(TrackerFrame):
    """A held-out frame with what ``TrackingAccumulator`` does not take: the true world-frame
    angular velocity [rad/s] and speed [m/s] of each of ``truths``."""

    angular_velocities: tuple[float, ...] = ()
    speeds: tuple[float, ...] = ()


def render_scene(index: int, settings: SceneSettings, bank: SoundBank | None) -> Scene:
    """Scene ``index`` of the held-out set: its script and its render are drawn from (seed, index)."""
    script_seed, render_seed = np.random.SeedSequence([settings.seed, index]).generate_state(2)
    script = random_moving_script(int(script_seed))
    renderer = ScenarioRenderer(script, settings.sensors, int(render_seed), bank=bank)
    audio = renderer.render_audio()
    rgb, depth, rows = [], [], []
    for frame_index, frame in enumerate(renderer.frames()):
        rgb.append(frame.rgb)
        depth.append(frame.depth_m)
        for hazard in frame.truth:
            track = script.hazards[hazard.track_id - 1]
            step = track.position(frame.time_s + 0.05) - track.position(frame.time_s - 0.05)
            speed = float(np.linalg.norm(step) / 0.1)
            rows.append(
                (
                    frame_index,
                    hazard.track_id,
                    hazard.class_id,
                    hazard.azimuth,
                    hazard.elevation,
                    hazard.distance,
                    hazard.range_rate,
                    hazard.angular_velocity,
                    speed,
                )
            )
    times = renderer.frame_times
    return Scene(
        audio=audio,
        rgb=np.stack(rgb),
        depth_m=np.stack(depth).astype(np.float32),
        times_s=times,
        speeds=np.array([script.robot.forward_speed(float(t)) for t in times]),
        yaw_rates=np.array([script.robot.yaw_rate(float(t)) for t in times]),
        truth=np.array(rows, dtype=np.float64).reshape(-1, len(TRUTH_FIELDS)),
    )


def cached_scenes(
    count: int, settings: SceneSettings, cache_dir: Path, bank: SoundBank | None, progress: bool
) -> Iterator[Scene]:
    """The ``count`` scenes, rendered into ``cache_dir/moving-<key>/`` once and read back after."""
    directory = cache_dir / f"moving-{settings.key()}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "settings.json").write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    for index in tqdm(range(count), desc="moving scenes", unit="scene", disable=None if progress else True):
        path = directory / f"scene_{index:05d}.npz"
        if not path.is_file():
            scene = render_scene(index, settings, bank)
            partial = path.with_suffix(".partial.npz")
            np.savez(partial, **asdict(scene))
            partial.replace(path)
        with np.load(path) as data:
            yield Scene(**{name: data[name] for name in Scene.__dataclass_fields__})


class _LessOdometry:
    """A tracker given part of the robot's odometry: its yaw rate only (``rotation=True``: the
    robot's driving is not removed), or none (its angular velocities are the apparent ones)."""

    def __init__(self, tracker: HazardTracker, rotation: bool) -> None:
        self.tracker = tracker
        self.rotation = rotation

    def update(
        self, estimates: list[HazardEstimateData], stamp_ns: int, motion: RobotMotion | None = None
    ) -> list[HazardEstimateData]:
        given = RobotMotion(0.0, motion.yaw_rate_rps) if self.rotation and motion is not None else None
        return self.tracker.update(estimates, stamp_ns, given)

    def reset(self) -> None:
        self.tracker.reset()


class MotionErrors:
    """Per tracker, what ``score_trackers`` does not score: the azimuth error on moving sources
    (a ``TrackingAccumulator`` of those only) and the angular-velocity error [rad/s] of tracked
    estimates against the nearest same-class truth."""

    def __init__(self, period_s: float) -> None:
        self.moving = {
            name: TrackingAccumulator(gate_deg=GATE_DEG, frame_period_s=period_s) for name in TRACKERS
        }
        self.angular_velocity_errors: dict[str, list[float]] = {name: [] for name in TRACKERS}

    def observe(self, name: str, frame: SceneFrame, published: list[HazardEstimateData]) -> None:
        truths = frame.truths or []
        moving = [t for t, speed in zip(truths, frame.speeds, strict=True) if speed >= MOVING_MPS]
        self.moving[name].add_frame(frame.stamp_ns, moving, published)
        for estimate in published:
            match = _nearest_truth(estimate, truths, frame.angular_velocities)
            if estimate.track_id != 0 and match is not None:
                self.angular_velocity_errors[name].append(abs(estimate.angular_velocity - match))

    def result(self, name: str, scores: TrackingScores) -> dict[str, Any]:
        """``scores`` of tracker ``name`` as the metrics file lists them, with these errors beside."""
        row = scores.as_dict()
        for per_track in ("onset_latencies_s", "offset_latencies_s"):
            row.pop(per_track)
        row["azimuth_error_moving_deg"] = self.moving[name].compute().azimuth_error_deg
        errors = self.angular_velocity_errors[name]
        row["angular_velocity_error_deg_s"] = math.degrees(float(np.median(errors))) if errors else math.nan
        return row


class OneHazardDirections:
    """Direction on the frames with exactly one true hazard, the model beside physics: the
    published hazard nearest the truth (any class) against the broadband FOA intensity vector of
    the same audio window (``avi_ros.doa``), as azimuth errors [deg], over all such frames and by
    sector of the true azimuth (``training.metrics.direction_by_sector``, as ``evaluate.py``'s
    ``direction`` group). Physics always answers (180 deg where the window holds no direction);
    the model only on the frames where it published something (``model_located``)."""

    def __init__(self) -> None:
        self.true_azimuth_deg: list[float] = []
        self.model_deg: list[float] = []  # NaN where the model published nothing
        self.physics_deg: list[float] = []

    def observe(
        self, audio: np.ndarray, truths: Sequence[TruthPoint], hazards: Sequence[HazardEstimateData]
    ) -> None:
        """One frame: its FOA window [4, N] at ``SAMPLE_RATE``, truths and published hazards."""
        if len(truths) != 1:
            return
        truth = direction_to_unit(truths[0].azimuth, truths[0].elevation)[None]
        physics = broadband_direction(audio, SAMPLE_RATE)
        self.true_azimuth_deg.append(math.degrees(truths[0].azimuth))
        self.physics_deg.append(
            float(azimuth_errors_deg(physics.vector[None], truth)[0]) if physics.known else 180.0
        )
        if not hazards:
            self.model_deg.append(math.nan)
            return
        published = np.stack([direction_to_unit(h.azimuth, h.elevation) for h in hazards])
        nearest = published[int(np.argmin(angular_error_rad(published, truth)))]
        self.model_deg.append(float(azimuth_errors_deg(nearest[None], truth)[0]))

    def result(self) -> dict[str, dict[str, Any]]:
        """``direction_by_sector`` of the frames seen: ``all``, then each sector."""
        return direction_by_sector(
            np.array(self.true_azimuth_deg), np.array(self.model_deg), np.array(self.physics_deg)
        )


def score_frames(frames: Iterable[SceneFrame], period_s: float) -> dict[str, dict[str, Any]]:
    """The trackers of ``TRACKERS`` (module docstring) run over ``frames`` and scored; each frame
    lasts ``period_s`` [s]."""
    config = TrackerConfig()
    trackers = {
        "tracker": HazardTracker(config),
        "tracker_rotation_only": _LessOdometry(HazardTracker(config), rotation=True),
        "tracker_no_odometry": _LessOdometry(HazardTracker(config), rotation=False),
        "nearest_neighbour": NearestNeighbourTracker(config),
    }
    motion = MotionErrors(period_s)
    accumulator = partial(TrackingAccumulator, gate_deg=GATE_DEG, frame_period_s=period_s)
    scores = score_trackers(frames, trackers, accumulator, motion.observe)
    return {name: motion.result(name, score) for name, score in scores.items()}


def _nearest_truth(
    estimate: HazardEstimateData, truths: Sequence[TruthPoint], angular_velocities: Sequence[float]
) -> float | None:
    """The true angular velocity [rad/s] of the nearest same-class truth within ``GATE_DEG``."""
    best, best_angle = None, math.radians(GATE_DEG)
    estimate_dir = direction_to_unit(estimate.azimuth, estimate.elevation)
    for truth, angular_velocity in zip(truths, angular_velocities, strict=True):
        if truth.class_id != estimate.class_id:
            continue
        angle = float(angular_error_rad(direction_to_unit(truth.azimuth, truth.elevation), estimate_dir))
        if angle <= best_angle:
            best, best_angle = angular_velocity, angle
    return best


def _model_frames(
    pipeline: Pipeline,
    scenes: Iterable[Scene],
    sensors: SensorConfig,
    batch_size: int,
    counts: Counter[str],
    directions: OneHazardDirections,
) -> Iterator[SceneFrame]:
    """Every usable frame of every scene with the hazards ``pipeline`` publishes for it; counts
    the frames, the hazards and the hazards by visibility into ``counts``, and gives each frame
    to ``directions``."""
    window = pipeline.window_samples
    for index, scene in enumerate(scenes):
        ends = np.round(scene.times_s * SAMPLE_RATE).astype(int)
        usable = [f for f in range(len(ends)) if window <= ends[f] <= scene.audio.shape[1]]
        for batch in _batches(usable, batch_size):
            frames = [
                Frame(
                    rgb=scene.rgb[f],
                    depth_m=scene.depth_m[f],
                    intrinsics=sensors.intrinsics,
                    audio=scene.audio[:, ends[f] - window : ends[f]],
                    stamp_ns=_stamp(index, scene.times_s[f]),
                )
                for f in batch
            ]
            for f, frame, result in zip(batch, frames, pipeline.run_batch(frames), strict=True):
                counts["frames"] += 1
                counts["hazards"] += len(result.hazards)
                counts.update(Visibility(h.visibility).name.lower() for h in result.hazards)
                tracker_frame = scene.tracker_frame(f, index, result.hazards)
                directions.observe(frame.audio, tracker_frame.truths, result.hazards)
                yield tracker_frame


def load_pipeline(args: argparse.Namespace) -> Pipeline:
    """The checkpoint's pipeline at ``--confidence-threshold``; UsageError for another audio rate."""
    torch.set_num_threads(args.threads)
    pipeline = Pipeline.from_checkpoint(
        args.checkpoint, resolve_device(args.device), confidence_threshold=args.confidence_threshold
    )
    if pipeline.feature_config.sample_rate != SAMPLE_RATE:
        raise UsageError(
            f"the checkpoint's audio rate {pipeline.feature_config.sample_rate} Hz is not {SAMPLE_RATE}"
        )
    return pipeline


def evaluate(args: argparse.Namespace, pipeline: Pipeline, seed: int) -> dict[str, Any]:
    """Render (or reuse) the scenes of ``seed``, run the model and the trackers, and score them."""
    bank = None
    digest = "procedural"
    if args.sound_dir is not None:
        bank = SoundBank.from_folder(args.sound_dir, default_taxonomy().names)
        digest = bank_digest(args.sound_dir)
    settings = SceneSettings(seed, args.camera_rate, args.width, args.height, args.knot_s, digest)
    cache_dir = args.cache_dir or args.out / "scenes"
    scenes = cached_scenes(args.scenes, settings, cache_dir, bank, progress=True)
    counts: Counter[str] = Counter()
    directions = OneHazardDirections()
    trackers = score_frames(
        _model_frames(pipeline, scenes, settings.sensors, args.batch, counts, directions),
        1.0 / args.camera_rate,
    )
    return {
        "checkpoint": str(args.checkpoint),
        "hazard_set": pipeline.is_hazard_set,
        "sound_dir": portable_path(args.sound_dir) if args.sound_dir else None,
        "scenes": args.scenes,
        "seed": seed,
        "frames_scored": counts["frames"],
        "hazards_published": counts["hazards"],
        "published_by_visibility": {v.name.lower(): counts[v.name.lower()] for v in Visibility},
        "window_s": pipeline.window_samples / SAMPLE_RATE,
        "settings": asdict(settings),
        "confidence_threshold": args.confidence_threshold,
        "trackers": trackers,
        "one_hazard_direction": directions.result(),
    }


def _stamp(scene_index: int, time_s: float) -> int:
    return DEFAULT_START_NS + round((scene_index * SCENE_SPACING_S + float(time_s)) * NS_PER_S)


def _batches(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _cell(value: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` decimals, NaN or None (nothing matched) as n/a."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """The tables of ``metrics.md``: one column per tracker, the issue's targets beside."""
    trackers = metrics["trackers"]
    names = list(trackers)
    kind = "hazard set" if metrics["hazard_set"] else "single hazard"
    lines = [
        f"# Tracks on {metrics['scenes']} held-out moving scenes (seed {metrics['seed']})",
        "",
        f"checkpoint `{metrics['checkpoint']}` ({kind}), "
        f"sounds: {metrics['sound_dir'] or 'procedural'}, {metrics['frames_scored']} frames at "
        f"{metrics['settings']['camera_rate_hz']:g} Hz, {metrics['window_s']:g} s window, "
        f"{metrics['hazards_published']} hazards published.",
        "",
        *metric_table_head(names),
    ]
    for label, key in ROWS:
        lines.append(metric_row(label, TARGETS.get(key), (_cell(trackers[t][key]) for t in names)))
    lines += ["", LEGEND, "", DIRECTION_INTRO, "", *_direction_head()]
    for sector, row in metrics["one_hazard_direction"].items():
        lines.append(f"| {sector} | " + " | ".join(_cell(row[key], 1) for _, key in DIRECTION_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _direction_head() -> list[str]:
    """The head of the one-hazard direction table: a sector column, then ``DIRECTION_COLUMNS``."""
    labels = [label for label, _ in DIRECTION_COLUMNS]
    return ["| sector | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation (ddof 1; 0 for one run) over the ``metrics.json`` of several
    seeds, per tracker and metric; a metric that is null (nothing matched) in a run is left out
    of that run's share, and ``n`` counts the runs that had it."""
    trackers = {
        name: mean_and_std([{key: r["trackers"][name][key] for _, key in ROWS} for r in runs])
        for name in runs[0]["trackers"]
    }
    first = runs[0]
    return {
        "checkpoint": first["checkpoint"],
        "sound_dir": first["sound_dir"],
        "seeds": [r["seed"] for r in runs],
        "scenes_per_seed": first["scenes"],
        "frames_scored": [r["frames_scored"] for r in runs],
        "hazards_published": [r["hazards_published"] for r in runs],
        "trackers": trackers,
        "one_hazard_direction": mean_and_std([r["one_hazard_direction"] for r in runs]),
    }


def _spread_cell(value: dict[str, Any], runs: int, digits: int = 3) -> str:
    """``mean ± std`` of a ``mean_and_std`` leaf, with ``(n=...)`` when some runs lacked it; n/a for none."""
    if value["mean"] is None:
        return "n/a"
    shown = f"{_cell(value['mean'], digits)} ± {_cell(value['std'], digits)}"
    return shown if value["n"] == runs else f"{shown} (n={value['n']})"


def summary_markdown(summary: dict[str, Any]) -> str:
    """The table of ``summary.md``: mean ± std over the seeds, one column per tracker."""
    trackers = summary["trackers"]
    names = list(trackers)
    seeds = ", ".join(str(s) for s in summary["seeds"])
    lines = [
        f"# Tracks on held-out moving scenes: mean ± std over seeds {seeds}",
        "",
        f"checkpoint `{summary['checkpoint']}`, sounds: {summary['sound_dir'] or 'procedural'}, "
        f"{summary['scenes_per_seed']} scenes per seed, frames scored {summary['frames_scored']}, "
        f"hazards published {summary['hazards_published']}.",
        "",
        *metric_table_head(names),
    ]
    runs = len(summary["seeds"])
    for label, key in ROWS:
        cells = [_spread_cell(trackers[name][key], runs) for name in names]
        lines.append(metric_row(label, TARGETS.get(key), cells))
    lines += ["", LEGEND, "", DIRECTION_INTRO + " Mean ± std over the seeds.", "", *_direction_head()]
    for sector, row in summary["one_hazard_direction"].items():
        cells = (_spread_cell(row[key], runs, 1) for _, key in DIRECTION_COLUMNS)
        lines.append(f"| {sector} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python training/track_eval.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory")
    parser.add_argument(
        "--sound-dir", type=Path, help="bank split folder (BANK/test); procedural sounds otherwise"
    )
    parser.add_argument("--scenes", type=int, default=20, help="held-out moving scenes (default 20)")
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[0],
        help="seed(s) of the scenes (default 0); several: OUT/seed<N>/ each and OUT/summary.*",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder for metrics.json and metrics.md"
    )
    parser.add_argument(
        "--summarize-only",
        action="store_true",
        help="write OUT/summary.* from the OUT/seed<N>/metrics.json already there; run nothing",
    )
    parser.add_argument("--cache-dir", type=Path, help="where rendered scenes are kept (default OUT/scenes)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--confidence-threshold", type=float, default=DEFAULT_CONFIDENCE_THRESHOLD)
    parser.add_argument("--camera-rate", type=float, default=10.0, help="frames per second [Hz] (default 10)")
    parser.add_argument("--width", type=int, default=128, help="camera width [px] (default 128)")
    parser.add_argument("--height", type=int, default=96, help="camera height [px] (default 96)")
    parser.add_argument(
        "--knot-s", type=float, default=0.1, help="room-response update period [s] (default 0.1)"
    )
    parser.add_argument("--batch", type=int, default=16, help="frames per model forward (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    if not args.checkpoint.is_dir():
        raise UsageError(f"checkpoint directory {args.checkpoint} does not exist")
    if args.sound_dir is not None and not args.sound_dir.is_dir():
        raise UsageError(f"sound folder {args.sound_dir} does not exist (use a bank split folder: BANK/test)")
    if len(set(args.seed)) < len(args.seed):
        raise UsageError(f"--seed values must differ, got {args.seed}")
    for name in ("scenes", "batch", "threads"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.confidence_threshold <= 1.0:
        raise UsageError(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")
    if not 0.0 < args.knot_s <= 0.5:
        raise UsageError(f"--knot-s must be in (0, 0.5] s, got {args.knot_s}")
    SensorConfig(camera_rate_hz=args.camera_rate, width=args.width, height=args.height)  # ValueError if bad


def _seed_dir(args: argparse.Namespace, seed: int) -> Path:
    """Where the files of ``seed`` go: ``--out`` itself for a single seed."""
    return args.out / f"seed{seed}" if len(args.seed) > 1 else args.out


def _write(directory: Path, stem: str, data: dict[str, Any], markdown: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(_plain(data), indent=2), encoding="utf-8")
    (directory / f"{stem}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {directory / stem}.md and {directory / stem}.json")


def _read_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The metrics.json of every seed of ``--seed`` under ``--out``; UsageError naming a missing one."""
    runs = []
    for seed in args.seed:
        path = _seed_dir(args, seed) / "metrics.json"
        if not path.is_file():
            raise UsageError(f"{path} does not exist: run the seed first")
        runs.append(json.loads(path.read_text(encoding="utf-8")))
    return runs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.summarize_only:
            runs = _read_runs(args)
        else:
            check_arguments(args)
            pipeline = load_pipeline(args)
            runs = []
            for seed in args.seed:
                metrics = _plain(evaluate(args, pipeline, seed))
                _write(_seed_dir(args, seed), "metrics", metrics, metrics_markdown(metrics))
                runs.append(metrics)
    except (UsageError, CheckpointError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"track_eval.py: error: {exc}", file=sys.stderr)
        return 2
    if len(runs) > 1:
        summary = summarize(runs)
        _write(args.out, "summary", summary, summary_markdown(summary))
    return 0


def _plain(value: Any) -> Any:
    """``value`` as strict JSON: numpy scalars as Python numbers, NaN as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


if __name__ == "__main__":
    sys.exit(main())
