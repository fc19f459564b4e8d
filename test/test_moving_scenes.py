"""Moving scenes: random scripts keep their speeds, the room and the clip; the scenario truth carries
stable track ids and the true range rate and world-frame angular velocity; real clips are used
when a sound bank is given; the robot's path gives its odometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avi_ros.bag.scenario import DEFAULT_START_NS, ScenarioRenderer, SensorConfig
from avi_ros.data.acoustics import ShoeboxRoom
from avi_ros.data.moving_scenes import (
    CLASS_GAITS,
    GAIT_SPEEDS_MPS,
    MAX_YAW_RATE_RPS,
    MIN_CLEARANCE_M,
    WALL_MARGIN_M,
    MovingSceneConfig,
    path_speed,
    random_moving_script,
)
from avi_ros.data.scenario_script import HazardTrack, RobotPath, ScenarioScript
from avi_ros.data.sound_bank import SoundBank
from avi_ros.units import NS_PER_S

ROOM = ShoeboxRoom((12.0, 8.0, 3.0), (0.3, 0.3, 0.3, 0.3, 0.1, 0.4))
TINY = SensorConfig(camera_rate_hz=5.0, width=32, height=24, knot_s=0.1)
SEEDS = range(40)


def script(robot: RobotPath, *hazards: HazardTrack, duration_s: float = 2.0) -> ScenarioScript:
    return ScenarioScript("test", "test", duration_s, ROOM, (), robot, hazards)


STILL = RobotPath(((0.0, 3.0, 4.0, 0.0),), 0.9)


@pytest.fixture(scope="module")
def scripts() -> list[ScenarioScript]:
    return [random_moving_script(seed) for seed in SEEDS]


def test_random_scripts_keep_speeds_room_and_clip(scripts):
    config = MovingSceneConfig()
    speeds = []
    for s in scripts:
        assert config.duration_s[0] <= s.duration_s <= config.duration_s[1]
        assert 1 <= len(s.hazards) <= 3
        lx, ly, lz = s.room.size_m
        for track in s.hazards:
            allowed = [GAIT_SPEEDS_MPS[g] for g in CLASS_GAITS[track.class_name]]
            speed = path_speed(track)
            speeds.append(speed)
            assert any(lo - 1e-6 <= speed <= hi + 1e-6 for lo, hi in allowed), (track.class_name, speed)
            assert config.lead_in_s <= track.start_s < track.end_s <= s.duration_s - config.tail_s + 1e-9
            for t in np.linspace(track.start_s, track.end_s, 25):
                x, y, z = track.position(float(t))
                assert WALL_MARGIN_M - 1e-9 <= x <= lx - WALL_MARGIN_M + 1e-9
                assert WALL_MARGIN_M - 1e-9 <= y <= ly - WALL_MARGIN_M + 1e-9
                assert 0.0 < z < lz
                mic = s.robot.pose(float(t)).position_m
                assert math.hypot(x - mic[0], y - mic[1]) >= MIN_CLEARANCE_M - 0.2  # checked every 0.1 s
        for t in np.arange(0.0, s.duration_s, 0.05):
            assert abs(s.robot.yaw_rate(float(t))) <= MAX_YAW_RATE_RPS + 1e-9
            x, y, _ = s.robot.pose(float(t)).position_m
            assert 0.0 < x < lx and 0.0 < y < ly
    # The draws cover the gaits: standing, walking, running and vehicles driving past.
    assert min(speeds) == 0.0 and max(speeds) > 8.0
    assert any(0.5 <= v <= 2.0 for v in speeds) and any(2.0 < v <= 6.0 for v in speeds)
    assert any(s.robot.yaw_rate(t) != 0.0 for s in scripts for t in np.arange(0.0, 8.0, 0.5))
    assert any(s.occluders for s in scripts)  # some hazards hidden behind a panel


def test_random_scripts_are_deterministic_in_the_seed(scripts):
    assert random_moving_script(3) == scripts[3]
    assert random_moving_script(4) != scripts[3]


def test_robot_odometry_is_the_paths_slope():
    robot = RobotPath(((0.0, 1.0, 1.0, 0.0), (2.0, 2.0, 1.0, 0.0), (4.0, 2.0, 1.0, 1.0)), 0.9)
    assert robot.forward_speed(1.0) == pytest.approx(0.5) and robot.yaw_rate(1.0) == 0.0
    assert robot.yaw_rate(3.0) == pytest.approx(0.5) and robot.forward_speed(3.0) == pytest.approx(0.0)
    assert robot.yaw_rate(5.0) == 0.0 and robot.forward_speed(-1.0) == 0.0  # holds still outside


def render_truth(s: ScenarioScript) -> list:
    return [frame.truth for frame in ScenarioRenderer(s, TINY, seed=0).frames()]


def test_truth_track_ids_are_stable_and_first_seen_is_the_start():
    dog = HazardTrack("dog_bark", 0.2, 1.8, ((0.0, 6.0, 2.0, 0.3), (2.0, 6.0, 6.0, 0.3)))
    siren = HazardTrack("siren", 0.6, 2.0, ((0.0, 1.0, 6.0, 1.5), (2.0, 1.0, 6.0, 1.5)))
    frames = render_truth(script(STILL, dog, siren))
    seen = [[(h.class_name, h.track_id) for h in truth] for truth in frames]
    assert seen[0] == [] and seen[2] == [("dog_bark", 1)]
    assert seen[4] == [("dog_bark", 1), ("siren", 2)] and seen[9] == [("siren", 2)]
    siren_truth = frames[4][1]
    assert siren_truth.first_seen_ns == DEFAULT_START_NS + round(0.6 * NS_PER_S)
    assert siren_truth.track_age_s == pytest.approx(0.2)


def test_range_rate_sign_of_approaching_and_leaving_sources():
    approach = HazardTrack("vehicle_engine", 0.0, 2.0, ((0.0, 11.0, 4.0, 0.35), (2.0, 7.0, 4.0, 0.35)))
    leave = HazardTrack("footsteps", 0.0, 2.0, ((0.0, 3.0, 5.0, 0.9), (2.0, 3.0, 7.0, 0.9)))
    for truth in render_truth(script(STILL, approach, leave))[1:]:
        assert truth[0].range_rate == pytest.approx(-2.0, abs=0.02)  # 2 m/s at the robot (0.55 m lower)
        assert truth[1].range_rate == pytest.approx(1.0, abs=1e-3)  # 1 m/s away, at the microphone's height
        assert truth[0].angular_velocity == pytest.approx(0.0, abs=1e-6)


def test_static_source_seen_by_a_turning_robot_has_no_world_angular_velocity():
    turning = RobotPath(((0.0, 3.0, 4.0, 0.0), (2.0, 3.0, 4.0, 1.0)), 0.9)  # 0.5 rad/s in place
    still = HazardTrack("alarm_bell", 0.0, 2.0, ((0.0, 3.0, 7.0, 1.0), (2.0, 3.0, 7.0, 1.0)))
    frames = render_truth(script(turning, still))
    azimuths = [truth[0].azimuth for truth in frames]
    assert azimuths[0] - azimuths[-1] == pytest.approx(0.5 * frames[-1 - 0][0].track_age_s, abs=0.01)
    for truth in frames:
        assert truth[0].angular_velocity == pytest.approx(0.0, abs=1e-6)
    # A source walking around the standing robot has its true angular rate.
    circle = [
        (t, 3.0 + 3.0 * math.cos(0.4 * t), 4.0 + 3.0 * math.sin(0.4 * t), 1.0)
        for t in np.arange(0, 2.01, 0.1)
    ]
    walker = HazardTrack("footsteps", 0.0, 2.0, tuple(circle))
    for truth in render_truth(script(STILL, walker))[1:-1]:
        assert truth[0].angular_velocity == pytest.approx(0.4, abs=0.01)
        assert truth[0].range_rate == pytest.approx(0.0, abs=0.05)


def test_static_source_passed_by_a_driving_robot_has_no_angular_velocity_but_a_range_rate():
    driving = RobotPath(((0.0, 2.0, 4.0, 0.0), (2.0, 5.0, 4.0, 0.0)), 0.9)  # 1.5 m/s along +x
    still = HazardTrack("alarm_bell", 0.0, 2.0, ((0.0, 3.5, 5.5, 0.9), (2.0, 3.5, 5.5, 0.9)))
    frames = render_truth(script(driving, still))
    azimuths = [truth[0].azimuth for truth in frames]
    assert math.degrees(azimuths[-1] - azimuths[0]) > 60.0  # the bearing sweeps as the robot passes
    for truth in frames[1:-1]:
        assert truth[0].angular_velocity == pytest.approx(0.0, abs=1e-6)
        assert truth[0].range_rate == pytest.approx(-1.5 * math.cos(truth[0].azimuth), abs=0.05)


class CountingBank(SoundBank):
    """A bank whose draws are counted per class (tones, so the audio is known)."""

    def __init__(self) -> None:
        super().__init__({"siren": []})
        self.clips = {"siren": ["tone"]}
        self.draws: list[str] = []

    def draw(self, class_name: str, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        self.draws.append(class_name)
        return np.sin(2 * np.pi * 1000.0 * np.arange(n_samples) / 24_000).astype(np.float32)


def test_bank_clips_are_used_for_the_classes_it_has_and_procedural_otherwise():
    siren = HazardTrack("siren", 0.0, 2.5, ((0.0, 6.0, 4.0, 1.0), (2.5, 6.0, 4.0, 1.0)))
    dog = HazardTrack("dog_bark", 0.0, 1.5, ((0.0, 6.0, 2.0, 0.3), (1.5, 6.0, 2.0, 0.3)))
    bank = CountingBank()
    s = script(STILL, siren, dog, duration_s=2.5)
    with_bank = ScenarioRenderer(s, TINY, seed=0, bank=bank).render_audio()
    assert bank.draws == ["siren"] * 3  # 1 s clips concatenated over 2.5 s; the dog stays procedural
    procedural = ScenarioRenderer(s, TINY, seed=0).render_audio()
    assert not np.allclose(with_bank, procedural)
    assert np.array_equal(procedural, ScenarioRenderer(s, TINY, seed=0).render_audio())  # default unchanged
    spectrum = np.abs(np.fft.rfft(with_bank[0, 1000:24_000]))
    assert np.argmax(spectrum) == pytest.approx(1000 * 23_000 / 24_000, abs=30)  # the bank's 1 kHz tone
