"""Labelled decision windows from a kinematic simulator of the robot and one hazard (no rendering).

The ablation and baseline of the decision stage: ``training/configs/decision.yaml`` trains on the
pipeline's own outputs on rendered scenario runs (``training/decision_data.py``), and
``decision_sim.yaml`` on these simulated estimates; ``training/decision_results.py`` scores both
on the same held-out pipeline runs.

Each window is F frames at the camera period, ending at the decision time t = 0. A scenario sets
the robot's motion (a unicycle: forward speed ``v(t) = v + a·t``, constant yaw rate ``w``) and
where the hazard (static, one of the taxonomy's classes, or none) stands at t = 0:

- ``approach``: driving at 0.3-1.6 m/s towards a hazard within ±40° ahead (often hidden);
- ``pass_by``: driving with the hazard 45-135° to a side;
- ``turn_away``: slow (0-0.6 m/s) while turning away from the hazard's side at 0.4-1.2 rad/s;
- ``standing``: not moving, the hazard anywhere around;
- ``reverse_toward`` / ``reverse_away``: reversing at 0.2-0.8 m/s with the hazard behind / ahead;
- ``drive_away``: driving with the hazard behind;
- ``no_hazard``: any of these motions with nothing there (class ``none``).

Per frame the simulator turns the true geometry into what the pipeline would report, with noise
**calibrated to the demo model's measured errors** (README, 1,000 held-out scenes): median
azimuth error 2.4° / 7.9° / 19.8° for visible / occluded / out-of-view hazards, distance RMSE
0.5 / 0.6 / 0.9 m, class accuracy 97.1 / 95.1 / 88.4 %. Errors are half a per-window bias and
half per-frame noise (``NoiseConfig.frame_share``), since a model errs alike on similar frames;
a wrong class is wrong for the whole window with a lower confidence. These features are
**simulated estimates, not the model's outputs on rendered scenes**: the decision stage has not
been trained on real pipeline outputs. The telemetry at t = 0 comes from the true motion with
IMU and odometry noise (``avi_ros.telemetry`` layout). Labels come from the true
situation at t = 0 by ``avi_ros.decision.rules``.

Window ``i`` of a split with seed ``s`` uses the generator ``default_rng([s, i])``, so a split is
reproducible and held-out splits use other seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from avi_ros.decision.features import frame_features
from avi_ros.decision.rules import LabelRules, Situation, label_situation
from avi_ros.taxonomy import Taxonomy, Visibility
from avi_ros.telemetry import TELEMETRY_SIZE
from avi_ros.units import GRAVITY_MPS2

SCENARIOS = (
    "approach",
    "pass_by",
    "turn_away",
    "standing",
    "reverse_toward",
    "reverse_away",
    "drive_away",
    "no_hazard",
)
MEDIAN_TO_SIGMA = 1.0 / 0.6745  # a zero-mean normal's sigma from the median of its absolute value
SUBSTEPS = 4  # integration steps per frame period


@dataclass(frozen=True)
class NoiseConfig:
    """Estimate and sensor noise. Triples are per true visibility (visible, occluded, out of view)."""

    azimuth_median_deg: tuple[float, float, float] = (2.4, 7.9, 19.8)  # demo model, README table
    distance_rmse_m: tuple[float, float, float] = (0.5, 0.6, 0.9)  # demo: 0.54 m with vision, 0.90 audio-only
    class_accuracy: tuple[float, float, float] = (0.971, 0.951, 0.884)  # demo model, README table
    none_accuracy: float = 0.9  # a window without hazard reported as class none
    visibility_accuracy: float = 0.9  # per frame, the estimated visibility equals the true one
    occlusion_std: float = 0.03  # occlusion level noise (0..1)
    frame_share: float = 0.5  # share of the error variance that changes frame to frame (rest: window bias)
    accel_std_mps2: float = 0.15  # IMU accelerometer noise
    vibration_mps2_per_mps: float = 0.3  # extra accelerometer noise per m/s of speed
    gyro_std_rps: float = 0.02  # IMU gyroscope noise
    odom_speed_std_mps: float = 0.03
    odom_yaw_std_rps: float = 0.03

    def __post_init__(self) -> None:
        for name in ("azimuth_median_deg", "distance_rmse_m"):
            if len(getattr(self, name)) != 3 or min(getattr(self, name)) < 0:
                raise ValueError(f"{name}: expected 3 values >= 0 (visible, occluded, out of view)")
        probabilities = (*self.class_accuracy, self.none_accuracy, self.visibility_accuracy, self.frame_share)
        if not all(0.0 <= p <= 1.0 for p in probabilities):
            raise ValueError("class_accuracy, none_accuracy, visibility_accuracy, frame_share: expected 0..1")


def _default_weights() -> dict[str, float]:
    return {
        "approach": 0.28,
        "pass_by": 0.10,
        "turn_away": 0.12,
        "standing": 0.14,
        "reverse_toward": 0.07,
        "reverse_away": 0.07,
        "drive_away": 0.08,
        "no_hazard": 0.14,
    }


@dataclass(frozen=True)
class ScenarioConfig:
    """What the simulator generates.

    frame_period_s: time between frames [s] (the demo camera's 15 Hz); scenario_weights:
    relative frequency of each scenario; occluded_probability: an in-view hazard hidden behind
    an obstacle; tight_probability: a window in a tight space (occlusion level 0.5-0.9);
    camera_half_fov_deg: beyond this azimuth a hazard is out of view (the demo camera's 70° / 2);
    telemetry_dropout: share of windows whose telemetry is missing (zeros + flag), so a model
    learns that case too.
    """

    frame_period_s: float = 1.0 / 15.0
    scenario_weights: dict[str, float] = field(default_factory=_default_weights)
    occluded_probability: float = 0.5
    tight_probability: float = 0.15
    camera_half_fov_deg: float = 35.0
    min_distance_m: float = 0.6
    telemetry_dropout: float = 0.0
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    rules: LabelRules = field(default_factory=LabelRules)

    def __post_init__(self) -> None:
        if not self.frame_period_s > 0:
            raise ValueError(f"frame_period_s: expected > 0 s, got {self.frame_period_s}")
        unknown = set(self.scenario_weights) - set(SCENARIOS)
        if unknown:
            raise ValueError(
                f"scenario_weights: unknown scenarios {sorted(unknown)}; expected some of {list(SCENARIOS)}"
            )
        if any(w < 0 for w in self.scenario_weights.values()) or sum(self.scenario_weights.values()) <= 0:
            raise ValueError("scenario_weights: expected weights >= 0 with a positive sum")
        for name in ("occluded_probability", "tight_probability", "telemetry_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.camera_half_fov_deg < 180.0:
            raise ValueError(f"camera_half_fov_deg: expected (0, 180), got {self.camera_half_fov_deg}")


@dataclass(frozen=True)
class Motion:
    """Robot motion at t = 0 and the hazard's place then.

    v [m/s], a [m/s²], w [rad/s]; the hazard's azimuth [rad] and distance [m] from the robot.
    """

    speed_mps: float
    accel_mps2: float
    yaw_rate_rps: float
    azimuth_rad: float
    distance_m: float


@dataclass
class ScenarioWindows:
    """Generated windows as arrays with a leading sample axis [N].

    features [N, F, dv] float32; telemetry [N, 8] float32; telemetry_missing, risk, reason,
    action, scenario (index into SCENARIOS), class_id, visibility (true, at t = 0), sample_id:
    int64; weight and ttc_s (inf when not closing): float32.
    """

    features: np.ndarray
    telemetry: np.ndarray
    telemetry_missing: np.ndarray
    risk: np.ndarray
    reason: np.ndarray
    action: np.ndarray
    weight: np.ndarray
    sample_id: np.ndarray
    scenario: np.ndarray
    class_id: np.ndarray
    visibility: np.ndarray
    ttc_s: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _wrap(angle: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(angle) + math.pi) % (2 * math.pi) - math.pi


def _motion(rng: np.random.Generator, scenario: str, min_distance_m: float) -> Motion:
    """The scenario's motion and the hazard's azimuth and distance at t = 0 (module docstring)."""
    u, side = rng.uniform, float(rng.choice((-1.0, 1.0)))
    deg = math.radians
    if scenario == "approach":
        return Motion(
            u(0.3, 1.6), u(-0.4, 0.4), rng.normal(0, 0.08), u(-deg(40), deg(40)), u(min_distance_m, 12)
        )
    if scenario == "pass_by":
        return Motion(
            u(0.3, 1.5), u(-0.2, 0.2), rng.normal(0, 0.08), side * u(deg(45), deg(135)), u(min_distance_m, 8)
        )
    if scenario == "turn_away":
        return Motion(
            u(0.0, 0.6), 0.0, -side * u(0.4, 1.2), side * u(deg(15), deg(110)), u(min_distance_m, 8)
        )
    if scenario == "standing":
        return Motion(0.0, 0.0, 0.0, u(-math.pi, math.pi), u(min_distance_m, 12))
    if scenario == "reverse_toward":
        return Motion(
            -u(0.2, 0.8),
            u(-0.2, 0.2),
            rng.normal(0, 0.05),
            float(_wrap(math.pi + u(-deg(40), deg(40)))),
            u(min_distance_m, 6),
        )
    if scenario == "reverse_away":
        return Motion(
            -u(0.2, 0.8), u(-0.2, 0.2), rng.normal(0, 0.05), u(-deg(40), deg(40)), u(min_distance_m, 6)
        )
    if scenario == "drive_away":
        return Motion(
            u(0.3, 1.5),
            u(-0.2, 0.2),
            rng.normal(0, 0.08),
            float(_wrap(math.pi + u(-deg(50), deg(50)))),
            u(min_distance_m, 10),
        )
    if scenario == "no_hazard":
        moving = _motion(
            rng, str(rng.choice(("approach", "standing", "turn_away", "reverse_away"))), min_distance_m
        )
        return Motion(
            moving.speed_mps, moving.accel_mps2, moving.yaw_rate_rps, u(-math.pi, math.pi), u(1.0, 10.0)
        )
    raise ValueError(f"unknown scenario '{scenario}'")


def relative_geometry(motion: Motion, frames: int, period_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance [m] and azimuth [rad] of the (static) hazard from the robot at each frame [F].

    The robot is integrated over the window from the pose (0, 0, heading 0) at the first frame;
    the hazard is placed where ``motion`` puts it at the last frame (t = 0).
    """
    times = (np.arange(frames) - (frames - 1)) * period_s
    dt = period_s / SUBSTEPS
    poses = [(0.0, 0.0, 0.0)]
    x = y = heading = 0.0
    for k in range(1, frames):
        for s in range(SUBSTEPS):
            t = times[k - 1] + s * dt
            speed = motion.speed_mps + motion.accel_mps2 * t
            x += speed * math.cos(heading) * dt
            y += speed * math.sin(heading) * dt
            heading += motion.yaw_rate_rps * dt
        poses.append((x, y, heading))
    px, py, ph = (np.asarray(v) for v in zip(*poses, strict=True))
    bearing = ph[-1] + motion.azimuth_rad
    hx = px[-1] + motion.distance_m * math.cos(bearing)
    hy = py[-1] + motion.distance_m * math.sin(bearing)
    distance = np.hypot(hx - px, hy - py)
    azimuth = _wrap(np.arctan2(hy - py, hx - px) - ph)
    return distance, np.asarray(azimuth)


def _noisy(rng: np.random.Generator, truth: np.ndarray, sigma: np.ndarray, frame_share: float) -> np.ndarray:
    """truth + a per-window bias + per-frame noise whose variances split ``sigma²`` by ``frame_share``."""
    bias = rng.normal(0.0, 1.0) * sigma * math.sqrt(1.0 - frame_share)
    return truth + bias + rng.normal(0.0, 1.0, truth.shape) * sigma * math.sqrt(frame_share)


def _class_probabilities(
    rng: np.random.Generator, estimated: int, correct: bool, num_classes: int, frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame class probabilities [F, C] peaked at ``estimated`` and confidences [F] (0..1)."""
    logits = rng.normal(0.0, 0.7, num_classes)[None] + rng.normal(0.0, 0.5, (frames, num_classes))
    logits[:, estimated] += rng.uniform(3.0, 6.0) if correct else rng.uniform(1.0, 3.0)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    if estimated == 0:
        centre = rng.normal(-2.0, 1.0)
    else:
        centre = rng.normal(2.0, 0.7) if correct else rng.normal(0.0, 1.0)
    confidence = 1.0 / (1.0 + np.exp(-(centre + rng.normal(0.0, 0.3, frames))))
    return probabilities, confidence


def _telemetry(rng: np.random.Generator, motion: Motion, noise: NoiseConfig) -> np.ndarray:
    """(ax, ay, az, gx, gy, gz, v, w) at t = 0 from the true motion, with IMU and odometry noise."""
    accel_std = noise.accel_std_mps2 + noise.vibration_mps2_per_mps * abs(motion.speed_mps)
    truth = np.array(
        [
            motion.accel_mps2,
            motion.speed_mps * motion.yaw_rate_rps,  # centripetal
            GRAVITY_MPS2,
            0.0,
            0.0,
            motion.yaw_rate_rps,
            motion.speed_mps,
            motion.yaw_rate_rps,
        ]
    )
    std = np.array(
        [accel_std] * 3 + [noise.gyro_std_rps] * 3 + [noise.odom_speed_std_mps, noise.odom_yaw_std_rps]
    )
    return (truth + rng.normal(0.0, 1.0, TELEMETRY_SIZE) * std).astype(np.float32)


def simulate_window(
    rng: np.random.Generator, scenario: str, config: ScenarioConfig, taxonomy: Taxonomy, frames: int
) -> dict[str, np.ndarray | int | float]:
    """One labelled window of ``frames`` frames of ``scenario`` (see ``ScenarioWindows`` for the keys)."""
    noise = config.noise
    motion = _motion(rng, scenario, config.min_distance_m)
    hazard = scenario != "no_hazard"
    num_classes = taxonomy.num_classes
    class_id = int(rng.integers(1, num_classes)) if hazard else 0
    distance, azimuth = relative_geometry(motion, frames, config.frame_period_s)
    in_view = np.abs(azimuth) <= math.radians(config.camera_half_fov_deg)
    occluded = rng.uniform() < config.occluded_probability
    visibility = np.where(
        in_view, int(Visibility.OCCLUDED if occluded else Visibility.VISIBLE), int(Visibility.OUT_OF_VIEW)
    )
    tight = rng.uniform() < config.tight_probability
    if tight:
        level = rng.uniform(0.5, 0.9)
    else:
        level = rng.uniform(0.15, 0.45) if occluded and hazard else rng.uniform(0.0, 0.15)
    occlusion = np.clip(level + rng.normal(0.0, 0.01, frames), 0.0, 1.0)

    decision = label_situation(
        Situation(
            class_id,
            float(distance[-1]),
            float(azimuth[-1]),
            Visibility(int(visibility[-1])),
            float(occlusion[-1]),
            motion.speed_mps,
        ),
        taxonomy,
        config.rules,
    )

    final_visibility = int(visibility[-1])
    if hazard:
        correct = rng.uniform() < noise.class_accuracy[final_visibility]
        wrong = int(rng.integers(1, num_classes - 1))
        estimated = class_id if correct else (wrong if wrong < class_id else wrong + 1)
    else:
        correct = rng.uniform() < noise.none_accuracy
        estimated = 0 if correct else int(rng.integers(1, num_classes))
    probabilities, confidence = _class_probabilities(rng, estimated, correct, num_classes, frames)
    az_sigma = np.radians(np.asarray(noise.azimuth_median_deg))[visibility] * MEDIAN_TO_SIGMA
    distance_sigma = np.asarray(noise.distance_rmse_m)[visibility]
    azimuth_est = _noisy(rng, azimuth, az_sigma, noise.frame_share)
    elevation_est = _noisy(rng, np.zeros(frames), az_sigma / 2, noise.frame_share)
    distance_est = np.maximum(_noisy(rng, distance, distance_sigma, noise.frame_share), 0.3)
    if not hazard:  # the pipeline still reports a best guess somewhere
        azimuth_est = _noisy(
            rng, np.full(frames, motion.azimuth_rad), np.full(frames, 0.5), noise.frame_share
        )
        distance_est = np.maximum(
            _noisy(rng, np.full(frames, motion.distance_m), np.full(frames, 1.0), noise.frame_share), 0.3
        )
    flip = rng.uniform(size=frames) > noise.visibility_accuracy
    visibility_est = np.where(flip, (visibility + rng.integers(1, 3, frames)) % 3, visibility)
    direction = np.stack(
        [
            np.cos(azimuth_est) * np.cos(elevation_est),
            np.sin(azimuth_est) * np.cos(elevation_est),
            np.sin(elevation_est),
        ],
        axis=-1,
    )
    occlusion_est = np.clip(occlusion + rng.normal(0.0, noise.occlusion_std, frames), 0.0, 1.0)
    features = frame_features(
        probabilities, direction, distance_est, confidence, visibility_est, occlusion_est
    )

    telemetry = _telemetry(rng, motion, noise)
    missing = rng.uniform() < config.telemetry_dropout
    if missing:
        telemetry = np.zeros(TELEMETRY_SIZE, dtype=np.float32)
    return {
        "features": features,
        "telemetry": telemetry,
        "telemetry_missing": int(missing),
        "risk": int(decision.risk),
        "reason": int(decision.reason),
        "action": int(decision.action),
        "scenario": SCENARIOS.index(scenario),
        "class_id": class_id,
        "visibility": final_visibility,
        "ttc_s": decision.ttc_s,
    }


def generate_windows(
    count: int, seed: int, config: ScenarioConfig, taxonomy: Taxonomy, frames: int
) -> ScenarioWindows:
    """``count`` labelled windows of ``frames`` frames; window i uses ``default_rng([seed, i])``."""
    if count < 1:
        raise ValueError(f"count: expected >= 1 windows, got {count}")
    names = [name for name in SCENARIOS if config.scenario_weights.get(name, 0.0) > 0]
    weights = np.asarray([config.scenario_weights[name] for name in names], dtype=np.float64)
    weights /= weights.sum()
    windows = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        scenario = names[int(rng.choice(len(names), p=weights))]
        windows.append(simulate_window(rng, scenario, config, taxonomy, frames))
    stacked = {key: np.stack([np.asarray(w[key]) for w in windows]) for key in windows[0]}
    return ScenarioWindows(
        features=stacked["features"].astype(np.float32),
        telemetry=stacked["telemetry"].astype(np.float32),
        telemetry_missing=stacked["telemetry_missing"].astype(np.int64),
        risk=stacked["risk"].astype(np.int64),
        reason=stacked["reason"].astype(np.int64),
        action=stacked["action"].astype(np.int64),
        weight=np.ones(count, dtype=np.float32),
        sample_id=(np.int64(seed) * 10_000_000 + np.arange(count, dtype=np.int64)),
        scenario=stacked["scenario"].astype(np.int64),
        class_id=stacked["class_id"].astype(np.int64),
        visibility=stacked["visibility"].astype(np.int64),
        ttc_s=stacked["ttc_s"].astype(np.float32),
    )
