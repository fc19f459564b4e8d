"""Far occluders of the wide profile: shelves, pillars and parked cars 2-10 m from the camera.

The default scenes hide hazards only behind thin panels within a metre of the camera, which the
depth-based near-obstacle mask finds. In a warehouse or a car park the thing between the robot
and a barking dog is a shelf or a van several metres away: the view of the hazard is blocked,
but no near obstacle says so. These objects are drawn by the renderer as scenery (their own ids,
not in the near-occluder mask); the visibility label still comes from the exact render.

Units: metres, radians; world frame z up, room on [0, size].
"""

from __future__ import annotations

import math

import numpy as np

from avi_ros.data.acoustics import ShoeboxRoom
from avi_ros.data.render import Box, Cylinder, Shape, first_hit_distance

FAR_KINDS = ("shelf", "pillar", "car")
_PLACEMENT_TRIES = 16
_CAMERA_CLEARANCE_M = 1.0  # no far object closer to the camera (or microphone) than this
_INSIDE_MARGIN_M = 0.02
# Share of far objects placed towards the camera's view (the rest anywhere around).
_IN_VIEW_SHARE = 0.7


def distance_to_shape(shape: Shape, point: np.ndarray) -> float:
    """Euclidean distance [m] from a point to a box or an upright cylinder (0 inside it)."""
    p = np.asarray(point, dtype=np.float64) - np.asarray(shape.centre_m)
    if isinstance(shape, Box):
        c, s = math.cos(shape.yaw_rad), math.sin(shape.yaw_rad)
        local = np.array([c * p[0] + s * p[1], -s * p[0] + c * p[1], p[2]])
        return float(np.linalg.norm(np.maximum(np.abs(local) - np.asarray(shape.size_m) / 2.0, 0.0)))
    if isinstance(shape, Cylinder):
        radial = max(math.hypot(p[0], p[1]) - shape.radius_m, 0.0)
        vertical = max(abs(p[2]) - shape.height_m / 2.0, 0.0)
        return math.hypot(radial, vertical)
    raise TypeError(f"no distance for {type(shape).__name__}")


def _colour(rng: np.random.Generator, kind: str) -> tuple[int, int, int]:
    if kind == "car":
        return tuple(int(c) for c in rng.integers(20, 236, 3))  # type: ignore[return-value]
    base = {"shelf": np.array([120, 95, 70]), "pillar": np.array([175, 175, 170])}[kind]
    return tuple(int(c) for c in np.clip(base + rng.integers(-30, 31, 3), 0, 255))  # type: ignore[return-value]


def _shape_at(
    rng: np.random.Generator, kind: str, foot_m: np.ndarray, facing_rad: float, ceiling_m: float
) -> Shape:
    """A far object of ``kind`` standing on the floor at ``foot_m`` (x, y); a shelf faces along ``facing_rad``
    (the heading of the line from the camera), so its wide side is what the camera sees."""
    x, y = float(foot_m[0]), float(foot_m[1])
    if kind == "shelf":
        height = min(float(rng.uniform(1.2, 2.2)), ceiling_m - 0.05)
        size = (float(rng.uniform(0.35, 0.6)), float(rng.uniform(0.8, 2.5)), height)
        yaw = facing_rad + float(rng.uniform(-0.35, 0.35))
        return Box((x, y, height / 2.0), size, yaw, _colour(rng, kind))
    if kind == "car":
        height = min(float(rng.uniform(1.35, 1.7)), ceiling_m - 0.05)
        size = (float(rng.uniform(3.8, 4.8)), float(rng.uniform(1.6, 1.9)), height)
        return Box((x, y, height / 2.0), size, float(rng.uniform(-math.pi, math.pi)), _colour(rng, kind))
    height = ceiling_m - 0.01  # a pillar reaches the ceiling
    if rng.uniform() < 0.5:
        return Cylinder((x, y, height / 2.0), float(rng.uniform(0.15, 0.4)), height, _colour(rng, kind))
    side = float(rng.uniform(0.3, 0.7))
    return Box(
        (x, y, height / 2.0), (side, side, height), float(rng.uniform(0, math.pi / 2)), _colour(rng, kind)
    )


def _fits(shape: Shape, room: ShoeboxRoom, clear_points: list[tuple[np.ndarray, float]]) -> bool:
    """Inside the room and at least the given clearance [m] from each (point, clearance)."""
    corners = shape.bounding_corners()
    size = np.asarray(room.size_m)
    if (corners[:, :2] < _INSIDE_MARGIN_M).any() or (corners[:, :2] > size[:2] - _INSIDE_MARGIN_M).any():
        return False
    if corners[:, 2].max() > size[2] or corners[:, 2].min() < -1e-9:  # stands on the floor
        return False
    return all(distance_to_shape(shape, point) >= clear for point, clear in clear_points)


def sample_far_occluders(
    rng: np.random.Generator,
    room: ShoeboxRoom,
    camera_m: np.ndarray,
    heading_rad: float,
    half_fov_rad: float,
    count: int,
    distance_range_m: tuple[float, float],
    clear_points: list[tuple[np.ndarray, float]],
    keep_visible_m: np.ndarray | None = None,
) -> list[Shape]:
    """Up to ``count`` far objects around the camera (fewer when the room has no place for them).

    ``clear_points``: (point, clearance [m]) that no object may come closer to (the microphone,
    the hazard). ``keep_visible_m``: a point whose line of sight from the camera must stay free.
    """
    shapes: list[Shape] = []
    clear = [(np.asarray(camera_m, dtype=np.float64), _CAMERA_CLEARANCE_M), *clear_points]
    for _ in range(count):
        kind = FAR_KINDS[int(rng.integers(len(FAR_KINDS)))]
        for _ in range(_PLACEMENT_TRIES):
            if rng.uniform() < _IN_VIEW_SHARE:
                angle = heading_rad + float(rng.uniform(-1.2, 1.2)) * half_fov_rad
            else:
                angle = float(rng.uniform(-math.pi, math.pi))
            distance = float(rng.uniform(*distance_range_m))
            foot = np.asarray(camera_m[:2]) + distance * np.array([math.cos(angle), math.sin(angle)])
            shape = _shape_at(rng, kind, foot, angle, room.size_m[2])
            if not _fits(shape, room, clear):
                continue
            if (
                keep_visible_m is not None
                and first_hit_distance([shape], camera_m, keep_visible_m - camera_m) < 1.0
            ):
                continue
            shapes.append(shape)
            break
    return shapes


def far_cover(
    rng: np.random.Generator,
    room: ShoeboxRoom,
    camera_m: np.ndarray,
    hazard_m: np.ndarray,
    hazard_radius_m: float,
    distance_range_m: tuple[float, float],
    clear_points: list[tuple[np.ndarray, float]],
) -> Shape | None:
    """A shelf, car or pillar standing on the line of sight to the hazard's centre, or None.

    The object stands at least ``distance_range_m[0]`` from the camera and clear of the hazard;
    None when the hazard is too close for that or no try blocks the line of sight.
    """
    camera_m = np.asarray(camera_m, dtype=np.float64)
    to_hazard = np.asarray(hazard_m, dtype=np.float64) - camera_m
    reach = float(np.linalg.norm(to_hazard[:2]))
    lo, hi = distance_range_m[0], min(distance_range_m[1], reach - hazard_radius_m - 0.4)
    if hi <= lo:
        return None
    heading = math.atan2(to_hazard[1], to_hazard[0])
    clear = [(camera_m, _CAMERA_CLEARANCE_M), (np.asarray(hazard_m), hazard_radius_m + 0.1), *clear_points]
    for _ in range(_PLACEMENT_TRIES):
        t = float(rng.uniform(lo, hi)) / reach  # fraction of the horizontal way to the hazard
        ray_point = camera_m + t * to_hazard
        kind = FAR_KINDS[int(rng.integers(len(FAR_KINDS)))]
        # A little past the crossing point, so the object's front face is what the ray meets.
        foot = ray_point[:2] + 0.2 * np.array([math.cos(heading), math.sin(heading)])
        shape = _shape_at(rng, kind, foot, heading, room.size_m[2])
        if shape.bounding_corners()[:, 2].max() < ray_point[2] + 0.1:
            continue  # too low to hide the centre
        if _fits(shape, room, clear) and first_hit_distance([shape], camera_m, to_hazard) < 1.0:
            return shape
    return None
