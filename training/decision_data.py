"""Decision data from the pipeline itself: rendered scenario runs, the hazard model's outputs, windows.

    python training/decision_data.py --config training/configs/decision.yaml   # (re)generate the cache

A decision window at run time is what the node builds (``avi_ros.ros.assessment``): the
pipeline's best estimate of each frame it processed, placed by the frame's stamp in a
``FeatureWindow``, and the telemetry read from the IMU and odometry streams at that stamp. This
module makes the training windows the same way:

1. **Scenario runs** (``decision_script``): a robot path (a unicycle at constant forward speed
   and yaw rate) and one hazard (static, or a person or dog walking towards the robot) drawn per
   kind (``KINDS``: the simulator's scenarios and ``walk_toward``), sometimes behind a thin panel
   0.7-1.0 m from the robot, in a shoebox room around them. The hazard sounds from 0-3 s after
   the start (so some runs start with it) until the end or earlier.
2. **Rendering** with the package's renderer (``avi_ros.bag.scenario.ScenarioRenderer``: FOA
   room acoustics along both motions, the RGB-D view at each camera frame); the sounds are real
   clips of the local sound bank (``val/`` for training and validation runs, ``test/`` for the
   held-out runs) where it is installed, procedural otherwise.
3. **The pipeline** (``avi_ros.pipeline.Pipeline``, the node's code) with the hazard model on
   every frame whose 1 s audio window is complete (the node cannot assemble earlier ones); the
   frame's feature is ``features.frame_feature(result.top)``, as the node pushes it.
4. **Telemetry**: IMU samples at 100 Hz and odometry at 50 Hz from the robot's true motion with
   the simulator's sensor noise (``scenarios.NoiseConfig``), fed in time order to a
   ``TelemetryBuffer`` and read at each frame stamp, as the node reads them.
5. **Labels** at each frame from the exact truth of the render (``rules.label_situation``): every
   sounding hazard's class, distance, azimuth, visibility, the frame's occlusion level, the robot's
   forward speed and the hazard's true closing speed (minus its range rate, so a walking hazard
   closes in too); the riskiest hazard gives the labels.

Steps 1-5 are cached per run (``scene_*.npz``: per frame the stamp, the feature, the telemetry
and the labels; a few kB) under ``data.cache_dir/decision-<fingerprint>/``, where the
fingerprint covers the rendering settings, the sound folder and the **hazard model's weights
hash**: a new shipped model gets new data with the same command.

6. **Replays** (``replay_windows``): the node skips frames while busy with the one before; each
   replay draws a node whose inference time per frame is log-normal around a median in
   ``processing_s`` and keeps the newest frame when it frees (older waiting frames are
   dropped). The processed frames go through ``FeatureWindow`` (stamp-placed: a skipped frame
   leaves its slot zero) from the first processed frame on, so the zero-padded start-up windows
   are there too. One window per processed frame; the labels are those of its frame.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from avi_ros.audio import SAMPLE_RATE
from avi_ros.bag.scenario import DEFAULT_START_NS, CameraFrame, ScenarioRenderer, SensorConfig
from avi_ros.checkpoint import model_fingerprint
from avi_ros.data.acoustics import ShoeboxRoom
from avi_ros.data.layout import CLASS_APPEARANCE
from avi_ros.data.render import Box
from avi_ros.data.scenario_script import HazardTrack, RobotPath, ScenarioScript
from avi_ros.data.sound_bank import SoundBank, bank_digest
from avi_ros.decision.features import FeatureWindow, feature_size, frame_feature
from avi_ros.decision.rules import Decision, LabelRules, Situation, label_situation
from avi_ros.decision.scenarios import SCENARIOS, NoiseConfig
from avi_ros.pipeline import Pipeline
from avi_ros.shipped_model import resolve_model_path
from avi_ros.taxonomy import NONE_CLASS_NAME, RiskLevel, Taxonomy, Visibility, default_taxonomy
from avi_ros.telemetry import TELEMETRY_SIZE, TelemetryBuffer
from avi_ros.types import Frame, HazardEstimateData
from avi_ros.units import GRAVITY_MPS2, NS_PER_S
from training.decision_config import PipelineDataConfig

DATA_FORMAT = 1  # bump when the scripts, the labels or the cached layout change
KINDS = (*SCENARIOS, "walk_toward")
KIND_WEIGHTS = {
    "approach": 0.24,
    "pass_by": 0.10,
    "turn_away": 0.10,
    "standing": 0.12,
    "reverse_toward": 0.07,
    "reverse_away": 0.07,
    "drive_away": 0.08,
    "no_hazard": 0.12,
    "walk_toward": 0.10,
}
WALKERS = ("speech", "footsteps", "dog_bark", "power_tool")  # classes that may walk towards the robot
MIC_HEIGHT_M = 0.9
MIN_CLEARANCE_M = 0.8  # a hazard never comes closer to the microphone [m]
PANEL_PROBABILITY = 0.4  # a hazard in front of the robot hidden behind a near panel
IMU_RATE_HZ = 100.0
ODOM_RATE_HZ = 50.0
SCENE_SPACING_S = 100.0  # run k's stamps start k * this after run 0's, so runs never mix [s]
CACHED = ("stamps_ns", "features", "telemetry", "telemetry_missing", "risk", "reason", "action")
CACHED += ("class_id", "visibility", "ttc_s", "published")


# --- 1. scenario runs --------------------------------------------------------------------------


def _unicycle(speed: float, yaw_rate: float, t: np.ndarray) -> np.ndarray:
    """(x, y, yaw) [T, 3] at times ``t`` of a robot leaving (0, 0, 0) at constant speed and yaw rate."""
    yaw = yaw_rate * t
    if abs(yaw_rate) < 1e-9:
        return np.stack([speed * t, np.zeros_like(t), yaw], axis=1)
    return np.stack([speed / yaw_rate * np.sin(yaw), speed / yaw_rate * (1.0 - np.cos(yaw)), yaw], axis=1)


@dataclass(frozen=True)
class _Story:
    """A kind's draw in the robot's start frame: motion, hazard place (or walk) and timing."""

    speed: float
    yaw_rate: float
    hazard: bool
    reference_s: float = 0.0  # the hazard is placed relative to the robot's pose at this time
    azimuth: float = 0.0  # [rad] from the robot's heading at reference_s
    distance: float = 0.0  # [m]
    walk_mps: float = 0.0  # > 0: the hazard walks from there towards the robot's final place


def _story(rng: np.random.Generator, kind: str, duration: float) -> _Story:
    u, deg = rng.uniform, math.radians
    side = float(rng.choice((-1.0, 1.0)))
    drift = float(rng.normal(0.0, 0.05))
    if kind == "approach":
        return _Story(u(0.4, 1.4), drift, True, duration, u(-deg(40), deg(40)), u(0.9, 5.0))
    if kind == "pass_by":
        return _Story(u(0.3, 1.2), drift, True, u(1.5, duration), side * u(deg(45), deg(135)), u(1.2, 5.0))
    if kind == "turn_away":
        return _Story(u(0.0, 0.5), -side * u(0.3, 0.8), True, 0.0, side * u(deg(15), deg(110)), u(1.0, 6.0))
    if kind == "standing":
        return _Story(0.0, 0.0, True, 0.0, u(-math.pi, math.pi), u(1.0, 8.0))
    if kind == "reverse_toward":
        return _Story(-u(0.2, 0.7), drift, True, duration, math.pi + u(-deg(40), deg(40)), u(0.9, 5.0))
    if kind == "reverse_away":
        return _Story(-u(0.2, 0.7), drift, True, 0.0, u(-deg(40), deg(40)), u(1.0, 5.0))
    if kind == "drive_away":
        return _Story(u(0.3, 1.2), drift, True, 0.0, math.pi + u(-deg(50), deg(50)), u(1.0, 8.0))
    if kind == "walk_toward":
        return _Story(u(0.0, 0.5), drift, True, 0.0, u(-deg(60), deg(60)), u(4.0, 8.0), u(0.6, 1.5))
    if kind == "no_hazard":
        moving = _story(rng, str(rng.choice(("approach", "standing", "turn_away", "reverse_away"))), duration)
        return _Story(moving.speed, moving.yaw_rate, False)
    raise ValueError(f"unknown kind '{kind}'; known: {list(KINDS)}")


def decision_script(seed: int, kind: str, duration_s: float, taxonomy: Taxonomy) -> ScenarioScript:
    """One scenario run of ``kind`` (module docstring, step 1), deterministic in ``seed``."""
    for attempt in range(20):  # a draw that comes too close to the robot is drawn anew
        rng = np.random.default_rng(np.random.SeedSequence([seed, 23, attempt]))
        script = _draw(rng, kind, duration_s, taxonomy, f"decision-{kind}-{seed}")
        if script is not None:
            return script
    raise ValueError(f"seed {seed}: no {kind} run kept its clearance in 20 draws")


def _draw(
    rng: np.random.Generator, kind: str, duration: float, taxonomy: Taxonomy, name: str
) -> ScenarioScript | None:
    story = _story(rng, kind, duration)
    times = np.linspace(0.0, duration + 0.5, math.ceil((duration + 0.5) / 0.25) + 1)
    poses = _unicycle(story.speed, story.yaw_rate, times)
    hazards: list[tuple[str, float, float, list[np.ndarray], list[float]]] = []
    panels: list[tuple[np.ndarray, float]] = []
    if story.hazard:
        classes = WALKERS if story.walk_mps > 0 else [n for n in taxonomy.names if n != NONE_CLASS_NAME]
        class_name = str(classes[int(rng.integers(len(classes)))])
        start = float(rng.uniform(0.0, min(3.0, duration / 2.0))) if rng.uniform() < 0.7 else 0.0
        end = (
            duration + 0.5
            if rng.uniform() < 0.75
            else float(rng.uniform(min(start + 1.5, duration), duration))
        )
        ref = _unicycle(story.speed, story.yaw_rate, np.array([story.reference_s]))[0]
        bearing = ref[2] + story.azimuth
        place = ref[:2] + story.distance * np.array([math.cos(bearing), math.sin(bearing)])
        points, point_times = [place], [start]
        if story.walk_mps > 0:  # towards the robot's final place, stopping 1.0-2.0 m short of it
            goal = poses[-1, :2]
            heading = goal - place
            length = float(np.linalg.norm(heading)) - float(rng.uniform(1.0, 2.0))
            if length > 0.5:
                points.append(place + heading / np.linalg.norm(heading) * length)
                point_times.append(start + length / story.walk_mps)
        hazards.append((class_name, start, end, points, point_times))
        if -math.radians(35) <= story.azimuth <= math.radians(35) and rng.uniform() < PANEL_PROBABILITY:
            distance = float(rng.uniform(0.7, 1.0))
            panels.append((ref[:2] + distance * np.array([math.cos(bearing), math.sin(bearing)]), bearing))
    if not _clear(poses, times, hazards, panels):
        return None
    return _script(rng, name, kind, duration, times, poses, hazards, panels)


def _hazard_xy(points: list[np.ndarray], point_times: list[float], t: np.ndarray) -> np.ndarray:
    table = np.asarray(points)
    return np.stack([np.interp(t, point_times, table[:, d]) for d in range(2)], axis=1)


def _clear(poses, times, hazards, panels) -> bool:
    """Hazards keep ``MIN_CLEARANCE_M`` from the robot while they sound and 0.5 m from the panels;
    the robot keeps 0.45 m from every panel."""
    for _, start, end, points, point_times in hazards:
        sounding = (times >= start - 0.25) & (times <= end)
        where = _hazard_xy(points, point_times, times)
        if np.any(np.linalg.norm(where - poses[:, :2], axis=1)[sounding] < MIN_CLEARANCE_M):
            return False
        for centre, _ in panels:
            if np.any(np.linalg.norm(where - centre, axis=1) < 0.5):
                return False
    return all(np.all(np.linalg.norm(poses[:, :2] - centre, axis=1) >= 0.45) for centre, _ in panels)


def _script(rng, name, kind, duration, times, poses, hazards, panels) -> ScenarioScript:
    """The run placed in a shoebox room 1.5-4 m larger than it on every side."""
    everything = [poses[:, :2]] + [np.asarray(h[3]) for h in hazards] + [c[None] for c, _ in panels]
    low, high = np.min(np.concatenate(everything), axis=0), np.max(np.concatenate(everything), axis=0)
    margin = rng.uniform(1.5, 4.0, size=2)
    size = np.maximum(high - low + 2 * margin, (8.0, 6.0))
    shift = (size - (high - low)) / 2.0 - low
    walls = tuple(float(a) for a in rng.uniform(0.15, 0.5, size=4))
    room = ShoeboxRoom(
        (float(size[0]), float(size[1]), float(rng.uniform(2.6, 4.0))),
        (*walls, float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.2, 0.6))),
    )
    robot = RobotPath(
        tuple(
            (float(t), float(x + shift[0]), float(y + shift[1]), float(yaw))
            for t, (x, y, yaw) in zip(times, poses, strict=True)
        ),
        MIC_HEIGHT_M,
    )
    tracks = []
    for class_name, start, end, points, point_times in hazards:
        z = float(CLASS_APPEARANCE[class_name].size_m[2] / 2.0 + rng.uniform(0.0, 0.3))
        waypoints = [
            (float(t), float(p[0] + shift[0]), float(p[1] + shift[1]), z)
            for p, t in zip(points, point_times, strict=True)
        ]
        if len(waypoints) == 1 or waypoints[-1][0] < end:
            waypoints.append((max(end, waypoints[-1][0] + 0.1), *waypoints[-1][1:]))
        tracks.append(HazardTrack(class_name, start, end, tuple(waypoints), float(rng.uniform(8.0, 20.0))))
    occluders = []
    for centre, bearing in panels:
        grey = int(rng.integers(90, 150))
        occluders.append(
            Box(
                (float(centre[0] + shift[0]), float(centre[1] + shift[1]), 0.7),
                (0.08, float(rng.uniform(0.45, 0.7)), 1.4),
                float(bearing),
                (grey, grey - 10, grey - 20),
            )
        )
    return ScenarioScript(name, kind, duration, room, tuple(occluders), robot, tuple(tracks), -35.0)


# --- 2-5. one run through the pipeline ---------------------------------------------------------


def _labels(
    truth: Sequence[HazardEstimateData],
    occlusion: float,
    speed: float,
    taxonomy: Taxonomy,
    rules: LabelRules,
) -> tuple[Decision, int, int]:
    """(the riskiest sounding hazard's decision, its class id, its visibility) at one frame."""
    if not truth:
        situation = Situation(0, 0.0, 0.0, Visibility.OUT_OF_VIEW, occlusion, speed)
        return label_situation(situation, taxonomy, rules), 0, int(Visibility.OUT_OF_VIEW)
    options = []
    for hazard in truth:
        situation = Situation(
            hazard.class_id,
            hazard.distance,
            hazard.azimuth,
            Visibility(int(hazard.visibility)),
            occlusion,
            speed,
            closing_speed_mps=-hazard.range_rate,
        )
        decision = label_situation(situation, taxonomy, rules)
        options.append((int(decision.risk), -decision.ttc_s, -hazard.distance, decision, hazard))
    *_, decision, hazard = max(options, key=lambda o: o[:3])
    return decision, hazard.class_id, int(hazard.visibility)


def telemetry_streams(
    robot: RobotPath, duration_s: float, rng: np.random.Generator, noise: NoiseConfig
) -> tuple[list[tuple[float, np.ndarray]], list[tuple[float, np.ndarray]]]:
    """IMU (ax, ay, az, gx, gy, gz) at ``IMU_RATE_HZ`` and odometry (v, w) at ``ODOM_RATE_HZ``
    samples [(t [s], values)] of the robot's true motion with the simulator's sensor noise."""
    imu, odom = [], []
    h = 0.02
    for t in np.arange(rng.uniform(0.0, 1.0 / IMU_RATE_HZ), duration_s, 1.0 / IMU_RATE_HZ):
        v, w = robot.forward_speed(t), robot.yaw_rate(t)
        accel = (robot.forward_speed(t + h) - robot.forward_speed(t - h)) / (2 * h)
        std = noise.accel_std_mps2 + noise.vibration_mps2_per_mps * abs(v)
        values = np.array([accel, v * w, GRAVITY_MPS2, 0.0, 0.0, w])
        values[:3] += rng.normal(0.0, std, 3)
        values[3:] += rng.normal(0.0, noise.gyro_std_rps, 3)
        imu.append((float(t), values))
    for t in np.arange(rng.uniform(0.0, 1.0 / ODOM_RATE_HZ), duration_s, 1.0 / ODOM_RATE_HZ):
        values = np.array([robot.forward_speed(t), robot.yaw_rate(t)])
        values += rng.normal(0.0, 1.0, 2) * (noise.odom_speed_std_mps, noise.odom_yaw_std_rps)
        odom.append((float(t), values))
    return imu, odom


def scene_frames(
    script: ScenarioScript,
    sensors: SensorConfig,
    seed: int,
    start_ns: int,
    window_samples: int,
    taxonomy: Taxonomy,
    bank: SoundBank | None = None,
) -> Iterator[tuple[Frame, CameraFrame]]:
    """The pipeline's input (``Frame``: the image, and the audio window ending at the frame's
    stamp) and the render with its truth, for every frame whose audio window is complete, in time
    order; deterministic in ``seed``."""
    render_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    renderer = ScenarioRenderer(script, sensors, render_seed, taxonomy=taxonomy, bank=bank)
    audio = renderer.render_audio()
    for t in renderer.frame_times:
        end = round(float(t) * SAMPLE_RATE)
        if not window_samples <= end <= audio.shape[1]:
            continue
        camera = renderer.render_frame(float(t))
        frame = Frame(
            rgb=camera.rgb,
            depth_m=camera.depth_m,
            intrinsics=sensors.intrinsics,
            audio=audio[:, end - window_samples : end],
            stamp_ns=start_ns + round(camera.time_s * NS_PER_S),
        )
        yield frame, camera


def run_scene(
    pipeline: Pipeline,
    script: ScenarioScript,
    sensors: SensorConfig,
    seed: int,
    start_ns: int,
    bank: SoundBank | None,
    batch: int = 16,
    rules: LabelRules | None = None,
) -> dict[str, np.ndarray]:
    """Steps 2-5 of the module docstring for one run: the ``CACHED`` arrays of its usable frames."""
    rules = rules or LabelRules()
    taxonomy = pipeline.taxonomy
    rows: dict[str, list[Any]] = {key: [] for key in CACHED}
    frames = scene_frames(script, sensors, seed, start_ns, pipeline.window_samples, taxonomy, bank)
    while chunk := list(itertools.islice(frames, batch)):
        results = pipeline.run_batch([frame for frame, _ in chunk])
        for (frame, camera), result in zip(chunk, results, strict=True):
            speed = script.robot.forward_speed(camera.time_s)
            decision, class_id, visibility = _labels(
                camera.truth, camera.occlusion_level, speed, taxonomy, rules
            )
            rows["stamps_ns"].append(frame.stamp_ns)
            rows["features"].append(frame_feature(result.top))
            rows["published"].append(len(result.hazards))
            rows["risk"].append(int(decision.risk))
            rows["reason"].append(int(decision.reason))
            rows["action"].append(int(decision.action))
            rows["class_id"].append(class_id)
            rows["visibility"].append(visibility)
            rows["ttc_s"].append(decision.ttc_s)
    telemetry_seed = int(np.random.SeedSequence(seed).generate_state(2)[1])
    rows["telemetry"], rows["telemetry_missing"] = _telemetry_at(
        script.robot, script.duration_s, np.random.default_rng(telemetry_seed), start_ns, rows["stamps_ns"]
    )
    dtypes = {"features": np.float32, "telemetry": np.float32, "ttc_s": np.float32}
    return {key: np.asarray(value, dtype=dtypes.get(key, np.int64)) for key, value in rows.items()}


def _telemetry_at(
    robot: RobotPath, duration_s: float, rng: np.random.Generator, start_ns: int, stamps: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The node's telemetry readings [N, 8] and missing flags [N] at ``stamps``: the streams fed
    to a ``TelemetryBuffer`` in time order up to each stamp, then read at it."""
    imu, odom = telemetry_streams(robot, duration_s, rng, NoiseConfig())
    samples = sorted(
        [(start_ns + round(t * NS_PER_S), "imu", v) for t, v in imu]
        + [(start_ns + round(t * NS_PER_S), "odom", v) for t, v in odom],
        key=lambda s: s[0],
    )
    buffer = TelemetryBuffer()
    vectors, missing, next_sample = [], [], 0
    for stamp in stamps:
        while next_sample < len(samples) and samples[next_sample][0] <= stamp:
            sample_ns, stream, values = samples[next_sample]
            if stream == "imu":
                buffer.add_imu(sample_ns, values[:3], values[3:])
            else:
                buffer.add_odometry(sample_ns, float(values[0]), float(values[1]))
            next_sample += 1
        reading = buffer.reading(stamp)
        vectors.append(reading.vector)
        missing.append(reading.missing)
    return np.asarray(vectors, dtype=np.float32).reshape(-1, TELEMETRY_SIZE), np.asarray(missing, np.int64)


# --- the cache ---------------------------------------------------------------------------------


def _bank_folder(config: PipelineDataConfig, held_out: bool) -> Path | None:
    if config.sound_dir is None:
        return None
    folder = Path(config.sound_dir).expanduser() / ("test" if held_out else "val")
    return folder if folder.is_dir() else None


@dataclass(frozen=True)
class SplitKey:
    """What a split's cached runs depend on (its fingerprint)."""

    seed: int
    model_hash: str
    sounds: str  # "procedural" or the digest of the bank folder
    duration_s: float
    camera_rate_hz: float
    width: int
    height: int
    knot_s: float

    def fingerprint(self) -> str:
        text = json.dumps({**asdict(self), "format": DATA_FORMAT, "kinds": KIND_WEIGHTS}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


class PipelineRuns:
    """The cached runs of the splits, generated on first use (module docstring).

    ``runs(count, seed, held_out)`` returns the first ``count`` runs of the split with ``seed``,
    rendering and inferring the missing ones into ``cache_dir/decision-<fingerprint>/``.
    """

    def __init__(self, config: PipelineDataConfig, cache_dir: str | Path, log: Any = None) -> None:
        self.config = config
        self.cache_dir = Path(cache_dir)
        self.model_dir = resolve_model_path(config.model_path)
        self.model_hash = model_fingerprint(self.model_dir)
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self._pipeline: Pipeline | None = None

    @property
    def sensors(self) -> SensorConfig:
        c = self.config
        return SensorConfig(camera_rate_hz=c.camera_rate_hz, width=c.width, height=c.height, knot_s=c.knot_s)

    def key(self, seed: int, held_out: bool) -> SplitKey:
        c = self.config
        folder = _bank_folder(c, held_out)
        sounds = "procedural" if folder is None else bank_digest(folder)
        return SplitKey(
            seed, self.model_hash, sounds, c.duration_s, c.camera_rate_hz, c.width, c.height, c.knot_s
        )

    def directory(self, seed: int, held_out: bool) -> Path:
        return self.cache_dir / f"decision-{self.key(seed, held_out).fingerprint()}"

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = Pipeline.from_checkpoint(self.model_dir, self.config.device)
        return self._pipeline

    def runs(self, count: int, seed: int, held_out: bool) -> list[dict[str, np.ndarray]]:
        directory = self.directory(seed, held_out)
        directory.mkdir(parents=True, exist_ok=True)
        key = self.key(seed, held_out)
        (directory / "key.json").write_text(json.dumps(asdict(key), indent=2) + "\n", encoding="utf-8")
        folder = _bank_folder(self.config, held_out)
        bank = SoundBank.from_folder(folder, default_taxonomy().names) if folder is not None else None
        runs, started, made = [], time.monotonic(), 0
        for index in range(count):
            path = directory / f"scene_{index:05d}.npz"
            if not path.is_file():
                arrays = self.make_run(index, seed, bank)
                partial = path.with_suffix(".partial.npz")
                np.savez(partial, **arrays)
                partial.replace(path)
                made += 1
                if made % 8 == 0 or index == count - 1:
                    self.log(
                        f"decision data (seed {seed}): {index + 1}/{count} runs, "
                        f"{time.monotonic() - started:.0f} s, model {self.model_hash}"
                    )
            with np.load(path) as data:
                runs.append({name: data[name] for name in data.files})
        return runs

    def make_run(self, index: int, seed: int, bank: SoundBank | None) -> dict[str, np.ndarray]:
        """Run ``index`` of the split with ``seed``: its kind, script and render drawn from (seed, index)."""
        pipeline = self.pipeline()
        rng = np.random.default_rng([seed, index])
        kind = str(
            rng.choice(KINDS, p=np.array([KIND_WEIGHTS[k] for k in KINDS]) / sum(KIND_WEIGHTS.values()))
        )
        script_seed, render_seed = (int(s) for s in rng.integers(0, 2**31, size=2))
        script = decision_script(script_seed, kind, self.config.duration_s, pipeline.taxonomy)
        start_ns = DEFAULT_START_NS + round(index * SCENE_SPACING_S * NS_PER_S)
        arrays = run_scene(pipeline, script, self.sensors, render_seed, start_ns, bank, self.config.batch)
        arrays["kind"] = np.asarray(KINDS.index(kind), dtype=np.int64)
        return arrays


# --- 6. replays and windows --------------------------------------------------------------------


def processed_frames(
    times_s: np.ndarray, rng: np.random.Generator, median_s: float, spread: float
) -> np.ndarray:
    """Which frames (captured at ``times_s``) a node busy ``median_s`` per frame (log-normal with
    sigma ``spread``) processes: a frame that arrives while it is busy waits, and is dropped when
    a newer one arrives before the node frees. Bool [N]."""
    processed = np.zeros(len(times_s), dtype=bool)
    free_at = -math.inf
    for i, t in enumerate(times_s):
        newer = times_s[i + 1] if i + 1 < len(times_s) else math.inf
        start = max(t, free_at)
        if start >= newer:  # still busy when the next frame arrives: this one is stale
            continue
        processed[i] = True
        free_at = start + median_s * math.exp(spread * rng.normal())
    return processed


def replay_windows(
    runs: Sequence[dict[str, np.ndarray]],
    replays: int,
    seed: int,
    config: PipelineDataConfig,
    frames: int,
    period_s: float,
    telemetry_dropout: float = 0.0,
) -> dict[str, np.ndarray]:
    """Windows of every processed frame of ``replays`` skip patterns per run (module docstring,
    step 6): the columns of ``ScenarioWindows`` plus ``startup`` (the window reaches before the
    first processed frame), ``skipped`` (frames the node dropped inside the window), ``run`` and
    ``stamp_ns`` (the frame's)."""
    columns: dict[str, list[Any]] = {}
    for run_index, run in enumerate(runs):
        stamps = run["stamps_ns"]
        times = (stamps - stamps[0]) / NS_PER_S
        dv = run["features"].shape[1]
        for replay in range(replays):
            rng = np.random.default_rng([seed, run_index, replay])
            median = float(rng.uniform(*config.processing_s))
            processed = processed_frames(times, rng, median, config.processing_spread)
            no_telemetry = rng.uniform() < telemetry_dropout
            window = FeatureWindow(frames, dv, period_s)
            first = int(np.argmax(processed))
            for i in np.flatnonzero(processed):
                window.push(run["features"][i], int(stamps[i]))
                since_first = round((stamps[i] - stamps[first]) / (period_s * NS_PER_S))
                row = {
                    "features": window.window(int(stamps[i])),
                    "telemetry": np.zeros(TELEMETRY_SIZE, np.float32)
                    if no_telemetry
                    else run["telemetry"][i],
                    "telemetry_missing": 1 if no_telemetry else int(run["telemetry_missing"][i]),
                    "scenario": int(run["kind"]),
                    "startup": int(since_first < frames - 1),
                    "skipped": int(np.sum(~processed[max(0, i - frames + 1) : i + 1])),
                    "run": run_index,
                    "stamp_ns": int(stamps[i]),
                    **{
                        key: run[key][i]
                        for key in ("risk", "reason", "action", "class_id", "visibility", "ttc_s")
                    },
                }
                for key, value in row.items():
                    columns.setdefault(key, []).append(value)
    if not columns:
        raise ValueError("no processed frame in any run")
    out = {key: np.stack([np.asarray(v) for v in values]) for key, values in columns.items()}
    count = len(out["risk"])
    out["weight"] = np.ones(count, dtype=np.float32)
    out["sample_id"] = np.int64(seed) * 10_000_000 + np.arange(count, dtype=np.int64)
    floats = ("features", "telemetry", "ttc_s", "weight")
    return {key: value.astype(np.float32 if key in floats else np.int64) for key, value in out.items()}


def check_features(runs: Sequence[dict[str, np.ndarray]], num_classes: int) -> None:
    if runs and runs[0]["features"].shape[1] != feature_size(num_classes):
        raise ValueError(
            f"cached features have {runs[0]['features'].shape[1]} values per frame, the taxonomy "
            f"needs {feature_size(num_classes)}"
        )


# --- command line ------------------------------------------------------------------------------


def generate(config_path: Path, overrides: list[str]) -> dict[str, Any]:
    """Generate (or reuse) the training, validation and held-out runs of a decision config."""
    from training.config import load_config

    config = load_config(config_path, overrides)
    decision, data = config.decision, config.data
    torch.set_num_threads(config.runtime.threads)
    source = PipelineRuns(decision.pipeline, data.cache_dir)
    summary: dict[str, Any] = {"model": str(source.model_dir), "model_hash": source.model_hash}
    for name, count, seed, held_out in (
        ("train", data.train.scenes, data.train.seed, False),
        ("val", data.val.scenes, data.val.seed, False),
        ("test", decision.pipeline.test_scenes, decision.test_seed, True),
    ):
        runs = source.runs(count, seed, held_out)
        risk = np.concatenate([r["risk"] for r in runs])
        summary[name] = {
            "runs": count,
            "frames": len(risk),
            "high_risk_frames": int(np.sum(risk == int(RiskLevel.HIGH))),
            "directory": str(source.directory(seed, held_out)),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python training/decision_data.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", type=Path, default=Path("training/configs/decision.yaml"))
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    print(json.dumps(generate(args.config, args.overrides), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
