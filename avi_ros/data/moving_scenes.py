"""Random moving scenes: scripts of hazards that walk, run or drive past a robot that moves and turns.

``random_moving_script(seed)`` draws one ``avi_ros.data.scenario_script.ScenarioScript`` (rendered by
``ScenarioRenderer`` like the scripted demo scenarios), for the held-out evaluation of tracks
(``training/track_eval.py``):

- a shoebox room: an office or hall (8-20 m), or, when a vehicle is in the scene, a long hall
  (28-45 m) so that a source at up to 15 m/s stays inside it for its pass;
- a robot that stands, drives (0.2-0.8 m/s) and/or turns (yaw rates up to ``MAX_YAW_RATE_RPS``)
  in segments of 1.5-4 s; its exact yaw rate at any instant is ``script.robot.yaw_rate(t)``,
  what its odometry reports;
- 1-3 hazards (taxonomy classes, repeats allowed), each starting and stopping inside the clip
  (8-12 s), with a gait drawn per class (``CLASS_GAITS``): static, walking (0.5-2 m/s), running
  (2-6 m/s) or driving past (5-15 m/s, vehicle_engine, car_horn and siren), on a straight or
  bent (one turn of 30-90 degrees) path at constant speed. Each is placed, at the middle of its
  time, in view, behind the robot, or hidden behind a thin panel 0.7-1.0 m from the robot (the
  near occluders of the training scenes), the panel placed where the robot's path never meets it.

Every source stays inside the room (0.5 m from the walls) and at least ``MIN_CLEARANCE_M`` from
the robot at all times. Doppler: the renderer cross-fades room responses computed every
``knot_s`` and does not model the Doppler shift (see ``avi_ros.bag.scenario``): a vehicle's pitch
does not change as it passes.

Units: seconds, metres, radians.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from avi_ros.data.acoustics import ShoeboxRoom
from avi_ros.data.layout import CLASS_APPEARANCE
from avi_ros.data.render import Box
from avi_ros.data.scenario_script import HazardTrack, RobotPath, ScenarioScript
from avi_ros.taxonomy import MAX_HAZARDS, default_taxonomy

GAIT_SPEEDS_MPS: dict[str, tuple[float, float]] = {
    "static": (0.0, 0.0),
    "walk": (0.5, 2.0),
    "run": (2.0, 6.0),
    "drive": (5.0, 15.0),
}
# Which gaits each class may have: vehicles drive past, animals and people walk or run, the
# rest stand or are carried.
CLASS_GAITS: dict[str, tuple[str, ...]] = {
    "vehicle_engine": ("drive",),
    "car_horn": ("drive",),
    "siren": ("drive",),
    "dog_bark": ("walk", "run"),
    "footsteps": ("walk", "run"),
    "speech": ("static", "walk"),
    "alarm_bell": ("static",),
    "glass_break": ("static",),
    "power_tool": ("static", "walk"),
}
VEHICLE_CLASSES = frozenset(c for c, gaits in CLASS_GAITS.items() if "drive" in gaits)
PLACEMENTS = ("view", "behind", "hidden")
MAX_YAW_RATE_RPS = 0.6
ROBOT_SPEED_MPS = (0.2, 0.8)
WALL_MARGIN_M = 0.5  # sources and their paths keep this far from the walls [m]
ROBOT_MARGIN_M = 1.2  # the robot keeps this far from the walls [m]
MIN_CLEARANCE_M = 0.8  # a source never comes closer to the microphone [m]
MIC_HEIGHT_M = 0.9
PANEL_DISTANCE_M = (0.7, 1.0)  # from the robot to a hiding panel [m]
PANEL_CLEARANCE_M = 0.45  # the robot's path keeps this far from a panel's centre [m]
CHECK_STEP_S = 0.1  # clearance checks sample the motion this often [s]


@dataclass(frozen=True)
class MovingSceneConfig:
    """Ranges of ``random_moving_script`` (units beside each)."""

    duration_s: tuple[float, float] = (8.0, 12.0)  # clip length [s]
    hazards: tuple[int, int] = (1, 3)  # hazards per scene, inclusive
    lead_in_s: float = 1.2  # no hazard starts before this [s] (a 1 s model window fills first)
    tail_s: float = 0.5  # every hazard stops this long before the clip ends [s]
    track_s: tuple[float, float] = (2.0, 6.0)  # how long a static, walking or running hazard sounds [s]
    snr_db: tuple[float, float] = (8.0, 20.0)
    bent_probability: float = 0.4  # a moving path turns once
    robot_moves_probability: float = 0.85  # otherwise the robot stands still the whole clip

    def __post_init__(self) -> None:
        if not 0.0 < self.duration_s[0] <= self.duration_s[1]:
            raise ValueError(f"duration range must be positive and ordered, got {self.duration_s}")
        if not 1 <= self.hazards[0] <= self.hazards[1] <= MAX_HAZARDS:
            raise ValueError(f"hazards per scene must be within [1, {MAX_HAZARDS}], got {self.hazards}")
        if self.lead_in_s + self.tail_s + self.track_s[0] > self.duration_s[0]:
            raise ValueError("lead-in, tail and the shortest track do not fit in the shortest clip")


def random_moving_script(
    seed: int, config: MovingSceneConfig | None = None, classes: tuple[str, ...] | None = None
) -> ScenarioScript:
    """One random moving scene (module docstring), deterministic in ``seed``.

    ``classes``: the hazard classes to draw from (default: every taxonomy class with a gait).
    """
    config = config or MovingSceneConfig()
    names = classes or tuple(n for n in default_taxonomy().names if n in CLASS_GAITS)
    unknown = sorted(set(names) - set(CLASS_GAITS))
    if unknown:
        raise ValueError(f"no gait known for classes {unknown}; known: {sorted(CLASS_GAITS)}")
    for attempt in range(10):  # a draw where no hazard fits its room is drawn anew
        rng = np.random.default_rng(np.random.SeedSequence([seed, 14, attempt]))
        script = _draw_script(rng, f"moving-{seed}", names, config)
        if script is not None:
            return script
    raise ValueError(f"seed {seed}: no hazard track fit its room in 10 draws")


def _draw_script(
    rng: np.random.Generator, name: str, names: tuple[str, ...], config: MovingSceneConfig
) -> ScenarioScript | None:
    duration = float(rng.uniform(*config.duration_s))
    count = int(rng.integers(config.hazards[0], config.hazards[1] + 1))
    picked = [str(names[i]) for i in rng.integers(len(names), size=count)]
    room = _random_room(rng, any(c in VEHICLE_CLASSES for c in picked))
    robot = _random_robot(rng, room, duration, config)
    hazards: list[HazardTrack] = []
    panels: list[Box] = []
    for class_name in picked:
        track, panel = _random_track(rng, class_name, room, robot, duration, config, panels)
        if track is not None:
            hazards.append(track)
            panels += [panel] if panel is not None else []
    if not hazards:
        return None
    return ScenarioScript(
        name=name,
        description=", ".join(f"{h.class_name} {_speed(h):.1f} m/s" for h in hazards),
        duration_s=duration,
        room=room,
        occluders=tuple(panels),
        robot=robot,
        hazards=tuple(hazards),
        noise_dbfs=-35.0,
    )


def path_speed(track: HazardTrack) -> float:
    """The constant speed of a track along its waypoints [m/s] (0 for a static one)."""
    return _speed(track)


def _speed(track: HazardTrack) -> float:
    table = np.asarray(track.waypoints, dtype=np.float64)
    if len(table) < 2:
        return 0.0
    length = float(np.sum(np.linalg.norm(np.diff(table[:, 1:], axis=0), axis=1)))
    span = float(table[-1, 0] - table[0, 0])
    return length / span if span > 0 else 0.0


def _random_room(rng: np.random.Generator, vehicles: bool) -> ShoeboxRoom:
    if vehicles:
        size = (rng.uniform(28.0, 45.0), rng.uniform(8.0, 14.0), rng.uniform(4.0, 7.0))
    else:
        size = (rng.uniform(8.0, 20.0), rng.uniform(6.0, 12.0), rng.uniform(2.6, 4.0))
    walls = tuple(float(a) for a in rng.uniform(0.15, 0.5, size=4))
    absorption = (*walls, float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.2, 0.6)))
    return ShoeboxRoom(tuple(float(s) for s in size), absorption)


def _random_robot(
    rng: np.random.Generator, room: ShoeboxRoom, duration: float, config: MovingSceneConfig
) -> RobotPath:
    """Segments of standing, driving, turning or both, kept ``ROBOT_MARGIN_M`` from the walls."""
    lx, ly, _ = room.size_m
    x = float(rng.uniform(0.35, 0.5) * lx)
    y = float(rng.uniform(0.4, 0.6) * ly)
    yaw = float(rng.uniform(-math.pi, math.pi))
    t = 0.0
    waypoints = [(t, x, y, yaw)]
    moves = rng.uniform() < config.robot_moves_probability
    while t < duration:
        step = float(min(rng.uniform(1.5, 4.0), duration + 0.5 - t))
        kind = str(rng.choice(["stand", "drive", "turn", "arc"])) if moves else "stand"
        speed = float(rng.uniform(*ROBOT_SPEED_MPS)) if kind in ("drive", "arc") else 0.0
        rate = (
            float(rng.choice([-1.0, 1.0]) * rng.uniform(0.2, MAX_YAW_RATE_RPS))
            if kind in ("turn", "arc")
            else 0.0
        )
        nx, ny = x + speed * step * math.cos(yaw), y + speed * step * math.sin(yaw)
        if not (ROBOT_MARGIN_M <= nx <= lx - ROBOT_MARGIN_M and ROBOT_MARGIN_M <= ny <= ly - ROBOT_MARGIN_M):
            nx, ny = x, y  # would leave the room: turn in place instead
            rate = rate or MAX_YAW_RATE_RPS * 0.5
        t += step
        x, y, yaw = nx, ny, yaw + rate * step
        waypoints.append((t, x, y, yaw))
    return RobotPath(tuple(waypoints), MIC_HEIGHT_M)


def _source_height(rng: np.random.Generator, class_name: str) -> float:
    """Height of a class's object centre [m]: its drawn size, standing on the floor."""
    return float(CLASS_APPEARANCE[class_name].size_m[2] / 2.0 + rng.uniform(0.0, 0.3))


def _random_track(
    rng: np.random.Generator,
    class_name: str,
    room: ShoeboxRoom,
    robot: RobotPath,
    duration: float,
    config: MovingSceneConfig,
    panels: list[Box],
    attempts: int = 60,
) -> tuple[HazardTrack | None, Box | None]:
    """A hazard track of the class (and the panel hiding it, if any) that fits the room, keeps
    clear of the robot and of the panels already placed; None when no draw of ``attempts`` fits."""
    gait = str(rng.choice(CLASS_GAITS[class_name]))
    z = _source_height(rng, class_name)
    for _ in range(attempts):
        speed = float(rng.uniform(*GAIT_SPEEDS_MPS[gait]))
        latest = duration - config.tail_s
        span = float(rng.uniform(1.5, 4.0) if gait == "drive" else rng.uniform(*config.track_s))
        if gait == "drive":  # the pass must fit in the hall, centred near the robot
            span = min(span, max(0.8, 2.0 * (min(room.size_m[0] * 0.35, 15.0) - WALL_MARGIN_M) / speed))
        span = min(span, latest - config.lead_in_s)
        start = float(rng.uniform(config.lead_in_s, latest - span))
        middle = start + span / 2.0
        mic = robot.pose(middle)
        here = np.array(mic.position_m[:2])
        if gait == "drive":  # a pass along the hall's long axis, 1.5-4 m to one side of the robot
            placement = "pass"
            heading = float(rng.choice([0.0, math.pi]) + rng.uniform(-0.2, 0.2))
            side = float(rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 4.0))
            centre = here + side * np.array([-math.sin(heading), math.cos(heading)])
            bearing = 0.0
        else:
            placement = str(rng.choice(PLACEMENTS))
            bearing = _placement_bearing(rng, placement) + mic.yaw_rad
            centre = here + float(rng.uniform(1.8, 7.0)) * np.array([math.cos(bearing), math.sin(bearing)])
            heading = float(rng.uniform(-math.pi, math.pi))
        bent = gait != "static" and rng.uniform() < config.bent_probability
        points = _path_points(rng, centre, heading, speed * span, bent)
        waypoints = _timed(points, start, span, z)
        track = HazardTrack(class_name, start, start + span, waypoints, float(rng.uniform(*config.snr_db)))
        panel = _hiding_panel(rng, mic, bearing) if placement == "hidden" else None
        if _fits(track, room, robot, panels + ([panel] if panel is not None else [])) and (
            panel is None or _panel_clear(panel, robot, duration)
        ):
            return track, panel
    return None, None


def _placement_bearing(rng: np.random.Generator, placement: str) -> float:
    """Bearing of the source from the robot, relative to its heading [rad]."""
    if placement == "behind":
        return float(math.pi + rng.uniform(-0.9, 0.9))
    if placement == "hidden":
        return float(rng.uniform(-0.35, 0.35))
    return float(rng.uniform(-0.5, 0.5))  # in view: within the 70-degree camera's field


def _path_points(
    rng: np.random.Generator, centre: np.ndarray, heading: float, length: float, bent: bool
) -> list[np.ndarray]:
    """Points (x, y) of a path of ``length`` [m] centred on ``centre``, straight or turning once."""
    if length <= 0.0:
        return [centre]
    forward = np.array([math.cos(heading), math.sin(heading)])
    if not bent:
        return [centre - forward * length / 2.0, centre + forward * length / 2.0]
    turn = float(rng.choice([-1.0, 1.0]) * rng.uniform(math.radians(30.0), math.radians(90.0)))
    after = np.array([math.cos(heading + turn), math.sin(heading + turn)])
    return [centre - forward * length / 2.0, centre, centre + after * length / 2.0]


def _timed(
    points: list[np.ndarray], start: float, span: float, z: float
) -> tuple[tuple[float, float, float, float], ...]:
    """Waypoints (t, x, y, z) at constant speed along ``points`` from ``start`` for ``span`` s."""
    if len(points) == 1:
        x, y = points[0]
        return ((start, float(x), float(y), z), (start + span, float(x), float(y), z))
    steps = [np.linalg.norm(b - a) for a, b in itertools.pairwise(points)]
    lengths = np.concatenate([[0.0], np.cumsum(steps)])
    times = start + span * lengths / lengths[-1]
    return tuple((float(t), float(p[0]), float(p[1]), z) for t, p in zip(times, points, strict=True))


def _hiding_panel(rng: np.random.Generator, mic: object, bearing: float) -> Box:
    """A thin panel 0.7-1.0 m from the robot across ``bearing`` (world) [rad], at camera height."""
    distance = float(rng.uniform(*PANEL_DISTANCE_M))
    x, y, _ = mic.position_m
    centre = (x + distance * math.cos(bearing), y + distance * math.sin(bearing), 0.7)
    grey = int(rng.integers(90, 150))
    return Box(centre, (0.08, float(rng.uniform(0.45, 0.7)), 1.4), bearing, (grey, grey - 10, grey - 20))


def _fits(track: HazardTrack, room: ShoeboxRoom, robot: RobotPath, panels: list[Box]) -> bool:
    """Inside the room at every waypoint (so along every straight segment), and never within
    ``MIN_CLEARANCE_M`` of the microphone nor 0.5 m of a panel while it sounds."""
    lx, ly, lz = room.size_m
    for _, x, y, z in track.waypoints:
        inside_x = WALL_MARGIN_M <= x <= lx - WALL_MARGIN_M
        inside_y = WALL_MARGIN_M <= y <= ly - WALL_MARGIN_M
        if not (inside_x and inside_y and 0.0 < z < lz):
            return False
    for t in np.arange(track.start_s, track.end_s + 1e-9, CHECK_STEP_S):
        position = track.position(float(t))
        mic = np.array(robot.pose(float(t)).position_m[:2])
        if np.linalg.norm(position[:2] - mic) < MIN_CLEARANCE_M:
            return False
        if any(np.linalg.norm(position[:2] - np.array(p.centre_m[:2])) < 0.5 for p in panels):
            return False
    return True


def _panel_clear(panel: Box, robot: RobotPath, duration: float) -> bool:
    """The robot's path never comes within ``PANEL_CLEARANCE_M`` of the panel's centre."""
    centre = np.array(panel.centre_m[:2])
    return all(
        np.linalg.norm(np.array(robot.pose(float(t)).position_m[:2]) - centre) >= PANEL_CLEARANCE_M
        for t in np.arange(0.0, duration + 1e-9, CHECK_STEP_S)
    )
