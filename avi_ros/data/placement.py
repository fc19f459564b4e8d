"""Where one object of a scene can stand: the room and the robot's pose, a hazard of a target
visibility (in view at a free line of sight, or wholly out of view), a near panel in front of a
pixel, a free point for an audio-only source.

Each function draws from the scene's generator in a fixed order and tries up to
PLACEMENT_TRIES times; a placement that finds no place returns None and the caller draws anew.
"""

from __future__ import annotations

import math

import numpy as np

from avi_ros.data.acoustics import ShoeboxRoom
from avi_ros.data.domain import draw_distance, sample_wide_room
from avi_ros.data.layout import HazardObject, MicPose, camera_pose, make_hazard_object
from avi_ros.data.render import Box, Shape, first_hit_distance
from avi_ros.data.scene_config import ProfileRanges, SceneConfig, draw_uniform
from avi_ros.geometry import CameraIntrinsics
from avi_ros.taxonomy import Visibility

PLACEMENT_TRIES = 64  # draws before a placement gives up
_RAYS_PER_DEPTH = 16  # pixels tried for one drawn depth (wide profile)
# Wide profile: least gap [m] between the camera and a hazard's bounding sphere, and the gap
# kept for a covering panel (and its thickness) in front of an occluded hazard.
_CAMERA_GAP_M = 0.3
_COVER_GAP_M = 0.6


def _source_distance(rng: np.random.Generator, cfg: SceneConfig, reach_m: float) -> float:
    """A source distance [m]: uniform in the default profile; in the wide one log-uniform and
    no farther than ``reach_m`` (the room's farthest corner from the camera)."""
    bounds = ProfileRanges.of(cfg).source_distance_m
    if cfg.wide is None:
        return draw_uniform(rng, bounds)
    return draw_distance(rng, bounds, reach_m)


def _farthest_corner_m(room: ShoeboxRoom, origin: np.ndarray) -> float:
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)]) * np.asarray(room.size_m)
    return float(np.linalg.norm(corners - origin, axis=1).max())


def _ray_span_m(
    low_m: np.ndarray, high_m: np.ndarray, origin: np.ndarray, direction: np.ndarray
) -> tuple[float, float]:
    """Parameters (t_enter, t_exit) of the ray origin + t * direction inside the box [low, high]
    (t_enter > t_exit when it misses)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (low_m - origin) / direction
        t2 = (high_m - origin) / direction
    inside = (origin >= low_m) & (origin <= high_m)
    near = np.where(direction == 0, np.where(inside, -np.inf, np.inf), np.fmin(t1, t2))
    far = np.where(direction == 0, np.where(inside, np.inf, -np.inf), np.fmax(t1, t2))
    return float(near.max()), float(far.min())


def sample_room_and_mic(rng: np.random.Generator, cfg: SceneConfig) -> tuple[ShoeboxRoom, MicPose]:
    """A room (the default ranges or the wide profile's) and the microphone's pose in it: clear of
    the walls by the wall clearance [m], at a drawn height, facing a drawn yaw [rad]."""
    if cfg.wide is None:
        size = tuple(
            float(rng.uniform(lo, hi))
            for lo, hi in zip(cfg.room_size_min_m, cfg.room_size_max_m, strict=True)
        )
        absorption = tuple(float(a) for a in rng.uniform(*cfg.absorption_range, size=6))
        room = ShoeboxRoom(size, absorption)  # type: ignore[arg-type]
    else:
        room = sample_wide_room(rng, cfg.wide)
        size = room.size_m
    ranges = ProfileRanges.of(cfg)
    clear = ranges.wall_clearance_m
    x = draw_uniform(rng, (clear, size[0] - clear))
    y = draw_uniform(rng, (clear, size[1] - clear))
    z = min(draw_uniform(rng, ranges.mic_height_m), size[2] - 0.5)
    return room, MicPose((x, y, z), float(rng.uniform(-math.pi, math.pi)))


def _place_in_view(
    rng: np.random.Generator,
    cfg: SceneConfig,
    room: ShoeboxRoom,
    mic: MicPose,
    radius: float,
    min_depth_m: float = 0.0,
) -> np.ndarray | None:
    """A world point seen by the camera, well inside the image, at an optical depth in the distance
    range (and, in the wide profile, at least ``min_depth_m``)."""
    if cfg.wide is not None:
        return _place_in_view_wide(rng, cfg, room, mic, radius, min_depth_m)
    intr = cfg.intrinsics
    cam, rot = camera_pose(mic, cfg.extrinsic)
    lo, hi = ProfileRanges.of(cfg).source_height_m
    for _ in range(PLACEMENT_TRIES):
        u = rng.uniform(0.15, 0.85) * intr.width
        v = rng.uniform(0.15, 0.85) * intr.height
        depth = _source_distance(rng, cfg, math.inf)
        ray = np.array([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, 1.0])
        point = cam + rot @ (ray * depth)
        if lo <= point[2] <= hi and room.contains(point, radius + 0.05):
            return point
    return None


def _place_in_view_wide(
    rng: np.random.Generator,
    cfg: SceneConfig,
    room: ShoeboxRoom,
    mic: MicPose,
    radius: float,
    min_depth_m: float,
) -> np.ndarray | None:
    """``_place_in_view`` for the wide profile: the depth first, then up to _RAYS_PER_DEPTH pixels.

    Drawing a pixel and a depth together and retrying both would accept near depths far more
    often than far ones (most lines of sight soon meet the floor or a wall), so the depth is
    kept while pixels are tried, and only the pixels whose line of sight has room for the
    object at that depth (inside the walls by its radius, within the height range) are taken.
    """
    intr = cfg.intrinsics
    cam, rot = camera_pose(mic, cfg.extrinsic)
    lo, hi = ProfileRanges.of(cfg).source_height_m
    margin = radius + 0.05
    low = np.array([margin, margin, max(margin, lo)])
    high = np.array([room.size_m[0] - margin, room.size_m[1] - margin, min(room.size_m[2] - margin, hi)])
    reach = _farthest_corner_m(room, cam)
    bounds = ProfileRanges.of(cfg).source_distance_m
    bounds = (max(bounds[0], min_depth_m), max(bounds[1], min_depth_m))
    for _ in range(PLACEMENT_TRIES):
        depth = draw_distance(rng, bounds, reach)
        for _ in range(_RAYS_PER_DEPTH):
            u = rng.uniform(0.15, 0.85) * intr.width
            v = rng.uniform(0.15, 0.85) * intr.height
            ray = rot @ np.array([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, 1.0])
            enter, leave = _ray_span_m(low, high, cam, ray)
            if enter <= depth <= leave:
                return cam + ray * depth
    return None


def _sphere_outside_view(
    centre_m: np.ndarray, radius_m: float, cam: np.ndarray, rot: np.ndarray, intr: CameraIntrinsics
) -> bool:
    """True when a sphere lies wholly behind the camera or beyond one side of the image frustum."""
    p = rot.T @ (np.asarray(centre_m) - cam)  # optical frame
    if p[2] < -radius_m:
        return True
    normals = np.array(
        [
            [intr.fx, 0.0, intr.cx + 0.5],  # left edge, pointing inwards
            [-intr.fx, 0.0, intr.width - 0.5 - intr.cx],  # right edge
            [0.0, intr.fy, intr.cy + 0.5],  # top edge
            [0.0, -intr.fy, intr.height - 0.5 - intr.cy],  # bottom edge
        ]
    )
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return bool((normals @ p < -radius_m).any())


def _place_out_of_view(
    rng: np.random.Generator, cfg: SceneConfig, room: ShoeboxRoom, mic: MicPose, radius: float
) -> np.ndarray | None:
    """A world point whose whole object lies outside the camera's view."""
    cam, rot = camera_pose(mic, cfg.extrinsic)
    heading = math.atan2(rot[1, 2], rot[0, 2])
    half_fov = cfg.intrinsics.horizontal_fov_rad / 2.0
    heights = ProfileRanges.of(cfg).source_height_m
    reach = _farthest_corner_m(room, cam)
    for _ in range(PLACEMENT_TRIES):
        distance = _source_distance(rng, cfg, reach)
        height = draw_uniform(rng, heights)
        if cfg.wide is not None and distance < radius + _CAMERA_GAP_M:
            continue
        horizontal_sq = distance**2 - (height - cam[2]) ** 2
        if horizontal_sq <= 0:
            continue
        horizontal = math.sqrt(horizontal_sq)
        margin = math.asin(min(radius / horizontal, 1.0)) + math.radians(5.0)
        if half_fov + margin >= math.pi:
            return None
        offset = rng.uniform(half_fov + margin, math.pi) * rng.choice([-1.0, 1.0])
        angle = heading + offset
        point = np.array(
            [cam[0] + horizontal * math.cos(angle), cam[1] + horizontal * math.sin(angle), height]
        )
        # The horizontal margin suffices for a level camera; a tilted one needs the frustum test.
        if room.contains(point, radius + 0.05) and _sphere_outside_view(
            point, radius, cam, rot, cfg.intrinsics
        ):
            return point
    return None


def occluder_at_pixel(
    rng: np.random.Generator,
    cfg: SceneConfig,
    mic: MicPose,
    u: float,
    v: float,
    cover: bool,
    ceiling_m: float,
    max_depth_m: float | None = None,
) -> Box:
    """An upright box facing the camera whose front face meets the ray of pixel (u, v).

    With ``cover`` the box is shifted sideways by less than half its width and rises above the
    ray, so that pixel is surely hidden; otherwise its height is random. ``max_depth_m`` caps
    the optical depth of its front face (to stand in front of a near hazard).
    """
    intr = cfg.intrinsics
    cam, rot = camera_pose(mic, cfg.extrinsic)
    forward = rot[:, 2].copy()
    forward[2] = 0.0
    forward /= np.linalg.norm(forward)
    right = np.array([forward[1], -forward[0], 0.0])
    lo, hi = cfg.occluder_depth_range_m
    if max_depth_m is not None:
        lo, hi = min(lo, 0.5 * max_depth_m), min(hi, max_depth_m)
    depth = draw_uniform(rng, (lo, hi))
    thickness = draw_uniform(rng, cfg.occluder_thickness_range_m)
    width = draw_uniform(rng, cfg.occluder_width_range_m)
    ray = np.array([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, 1.0])
    front = cam + rot @ (ray * depth)
    shift = rng.uniform(-0.35, 0.35) * width if cover else 0.0
    top = front[2] + rng.uniform(0.1, 0.5) if cover else rng.uniform(0.3, cam[2] + 0.3)
    top = min(max(top, 0.05), ceiling_m - 0.05)
    centre = front + forward * (thickness / 2.0) + right * shift
    yaw = math.atan2(forward[1], forward[0])
    grey = int(rng.integers(60, 200))
    tint = rng.integers(-25, 26, 3)
    colour = tuple(int(c) for c in np.clip(grey + tint, 0, 255))
    return Box((float(centre[0]), float(centre[1]), top / 2.0), (thickness, width, top), yaw, colour)


def near_cover(
    rng: np.random.Generator, cfg: SceneConfig, mic: MicPose, hazard: HazardObject, ceiling_m: float
) -> Box:
    """A near panel that surely hides the hazard's centre pixel (see ``occluder_at_pixel``); in the
    wide profile no deeper than the front of the hazard's bounding sphere."""
    cam, rot = camera_pose(mic, cfg.extrinsic)
    centre_optical = rot.T @ (hazard.centre_m - cam)
    (u, v), _ = cfg.intrinsics.project(centre_optical)
    # In front of the hazard's bounding sphere, leaving room for the panel's thickness.
    limit = centre_optical[2] - hazard.half_extent_m - cfg.occluder_thickness_range_m[1]
    max_depth = None if cfg.wide is None else max(limit, 0.1)
    return occluder_at_pixel(rng, cfg, mic, u, v, True, ceiling_m, max_depth)


def free_point(
    rng: np.random.Generator, room: ShoeboxRoom, mic: MicPose, min_distance_m: float
) -> np.ndarray | None:
    """A random point in the room at least ``min_distance_m`` from the microphone (None if none found)."""
    for _ in range(PLACEMENT_TRIES):
        candidate = np.array([rng.uniform(0.3, s - 0.3) for s in room.size_m])
        if np.linalg.norm(candidate - np.asarray(mic.position_m)) >= min_distance_m:
            return candidate
    return None


def blocks_sight(shapes: list[Shape], cam: np.ndarray, point: np.ndarray) -> bool:
    """Whether one of ``shapes`` stands on the line of sight from ``cam`` to ``point``."""
    return bool(shapes) and first_hit_distance(shapes, cam, np.asarray(point) - cam) < 1.0


def place_hazard_object(
    rng: np.random.Generator,
    cfg: SceneConfig,
    room: ShoeboxRoom,
    mic: MicPose,
    class_name: str,
    target: Visibility,
) -> HazardObject | None:
    """A ``class_name`` object of a drawn size, yaw and tint at a point of ``target`` visibility:
    wholly out of view, or in view at a depth that leaves room for a covering panel (OCCLUDED) or
    keeps it clear of the camera (VISIBLE). None when no point is found."""
    scale = draw_uniform(rng, cfg.object_scale_range)
    radius = make_hazard_object(class_name, np.zeros(3), 0.0, scale, np.zeros(3)).half_extent_m
    if target == Visibility.OUT_OF_VIEW:
        point = _place_out_of_view(rng, cfg, room, mic, radius)
    else:
        gap = _COVER_GAP_M if target == Visibility.OCCLUDED else _CAMERA_GAP_M
        point = _place_in_view(rng, cfg, room, mic, radius, radius + gap)
    if point is None:
        return None
    yaw = float(rng.uniform(-math.pi, math.pi))
    return make_hazard_object(class_name, point, yaw, scale, rng.integers(-20, 21, 3))
