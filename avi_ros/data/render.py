"""Vectorised ray casting of a shoebox room with boxes, cylinders and ellipsoids into RGB-D.

The renderer is exact by construction: for every pixel it knows which surface it hit, so
the occluder mask, the hazard's pixels and the occlusion level are ground truth, against
which the depth-based occlusion code of the core is tested.

One ray per pixel centre leaves the camera with optical z = 1, so the hit distance along
that ray *is* the optical-axis depth z stored in depth images (metres). The world frame has
z up; the room spans [0, size] on each axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from avi_ros.geometry import CameraIntrinsics

# Object ids in RenderResult.object_ids: near occluders FIRST_OCCLUDER_ID + k (k < 49), far
# scenery (shelves, pillars, cars) FIRST_SCENERY_ID + k (k < 50), the hazard HAZARD_ID.
ROOM_ID = 0
FIRST_OCCLUDER_ID = 1
FIRST_SCENERY_ID = 50
HAZARD_ID = 100
FLOOR_TILE_M = 0.5
# Corners of the cube [-1, 1]^3, for bounding boxes.
_UNIT_CORNERS = np.array([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)])


def _rotate_rows(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``vectors [N, 3] @ matrix [3, 3]`` as three scaled sums.

    A threaded BLAS call for three columns costs more in thread wake-ups than it computes,
    and much more on a busy machine; plain element-wise arithmetic is steady.
    """
    return vectors[:, 0:1] * matrix[0] + vectors[:, 1:2] * matrix[1] + vectors[:, 2:3] * matrix[2]


@dataclass(frozen=True)
class Box:
    """Box of full extents ``size_m`` centred at ``centre_m`` [m], turned by ``yaw_rad`` about world z."""

    centre_m: tuple[float, float, float]
    size_m: tuple[float, float, float]
    yaw_rad: float = 0.0
    colour: tuple[int, int, int] = (128, 128, 128)

    def bounding_corners(self) -> np.ndarray:
        """The 8 corners [8, 3] in the world [m]."""
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return np.asarray(self.centre_m) + (_UNIT_CORNERS * (np.asarray(self.size_m) / 2.0)) @ rot.T

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Entry distance t [N] along rays origin + t * dirs (inf = miss) and world normals [N, 3].

        Slab test one axis at a time on 1-D arrays (faster than [N, 3] reductions).
        """
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # box -> world
        o = (origin - np.asarray(self.centre_m)) @ rot
        d = _rotate_rows(dirs, rot)
        half = np.asarray(self.size_m) / 2.0
        n = d.shape[0]
        t_near = np.full(n, -np.inf)
        t_far = np.full(n, np.inf)
        entry_axis = np.zeros(n, dtype=np.int8)
        with np.errstate(divide="ignore", invalid="ignore"):
            for axis in range(3):
                inv = 1.0 / d[:, axis]
                t1 = (-half[axis] - o[axis]) * inv
                t2 = (half[axis] - o[axis]) * inv
                later = np.fmin(t1, t2) > t_near
                t_near = np.where(later, np.fmin(t1, t2), t_near)
                entry_axis[later] = axis
                t_far = np.fmin(t_far, np.fmax(t1, t2))
        t = np.where((t_near <= t_far) & (t_near > 0.0), t_near, np.inf)
        normal = np.zeros((n, 3))
        for axis in range(3):
            on_axis = entry_axis == axis
            normal[on_axis] = -np.sign(d[on_axis, axis])[:, None] * rot[:, axis]
        return t, normal


@dataclass(frozen=True)
class Cylinder:
    """Upright cylinder of ``radius_m`` and ``height_m`` whose centre is ``centre_m`` [m]."""

    centre_m: tuple[float, float, float]
    radius_m: float
    height_m: float
    colour: tuple[int, int, int] = (128, 128, 128)

    def bounding_corners(self) -> np.ndarray:
        half = np.array([self.radius_m, self.radius_m, self.height_m / 2.0])
        return np.asarray(self.centre_m) + _UNIT_CORNERS * half

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        o = origin - np.asarray(self.centre_m)
        half = self.height_m / 2.0
        a = dirs[:, 0] ** 2 + dirs[:, 1] ** 2
        b = 2.0 * (o[0] * dirs[:, 0] + o[1] * dirs[:, 1])
        cc = o[0] ** 2 + o[1] ** 2 - self.radius_m**2
        disc = b * b - 4.0 * a * cc
        with np.errstate(divide="ignore", invalid="ignore"):
            t_side = (-b - np.sqrt(disc)) / (2.0 * a)
            z_side = o[2] + t_side * dirs[:, 2]
            side_ok = (disc >= 0) & (a > 1e-12) & (t_side > 0) & (np.abs(z_side) <= half)
            cap_z = np.where(o[2] > 0, half, -half)
            t_cap = (cap_z - o[2]) / dirs[:, 2]
            px = o[0] + t_cap * dirs[:, 0]
            py = o[1] + t_cap * dirs[:, 1]
            cap_ok = (t_cap > 0) & (px * px + py * py <= self.radius_m**2) & (abs(o[2]) > half)
        t_side = np.where(side_ok, t_side, np.inf)
        t_cap = np.where(cap_ok, t_cap, np.inf)
        t = np.minimum(t_side, t_cap)
        p = o + np.nan_to_num(t_side, posinf=0.0)[:, None] * dirs
        normal = np.zeros_like(dirs)
        side_first = t_side <= t_cap
        normal[:, 0] = np.where(side_first, p[:, 0], 0.0)
        normal[:, 1] = np.where(side_first, p[:, 1], 0.0)
        normal[:, 2] = np.where(side_first, 0.0, np.sign(cap_z))
        normal /= np.linalg.norm(normal, axis=1, keepdims=True).clip(1e-12)
        return t, normal


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid with semi-axes ``radii_m`` centred at ``centre_m`` [m]."""

    centre_m: tuple[float, float, float]
    radii_m: tuple[float, float, float]
    colour: tuple[int, int, int] = (128, 128, 128)

    def bounding_corners(self) -> np.ndarray:
        return np.asarray(self.centre_m) + _UNIT_CORNERS * np.asarray(self.radii_m)

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        radii = np.asarray(self.radii_m)
        o = (origin - np.asarray(self.centre_m)) / radii
        d = dirs / radii
        a = np.sum(d * d, axis=1)
        b = 2.0 * (d[:, 0] * o[0] + d[:, 1] * o[1] + d[:, 2] * o[2])
        cc = float(o @ o) - 1.0
        disc = b * b - 4.0 * a * cc
        with np.errstate(invalid="ignore"):
            t = (-b - np.sqrt(disc)) / (2.0 * a)
        t = np.where((disc >= 0) & (t > 0), t, np.inf)
        p = np.where(np.isfinite(t)[:, None], o + np.nan_to_num(t, posinf=0.0)[:, None] * d, 0.0)
        normal = p / radii
        normal /= np.linalg.norm(normal, axis=1, keepdims=True).clip(1e-12)
        return t, normal


Shape = Box | Cylinder | Ellipsoid


@dataclass(frozen=True)
class RenderConfig:
    """Sensor imperfections of the rendered RGB-D.

    depth_noise_coeff: depth noise standard deviation = coeff * z^2 [m] (structured-light like).
    dropout_rate: fraction of pixels that lose their reading as isolated specks (depth 0).
    rgb_noise_std: per-pixel brightness noise, the same on the three channels (0..255 scale).
    """

    depth_noise_coeff: float = 0.0015
    dropout_rate: float = 0.002
    rgb_noise_std: float = 2.0


@dataclass
class RenderResult:
    """rgb uint8 [H, W, 3]; depth_m float32 [H, W] (with sensor noise, 0 = no reading);
    exact_depth_m float32 [H, W]; object_ids int16 [H, W] (ROOM_ID, FIRST_OCCLUDER_ID + k,
    FIRST_SCENERY_ID + k, HAZARD_ID)."""

    rgb: np.ndarray
    depth_m: np.ndarray
    exact_depth_m: np.ndarray
    object_ids: np.ndarray

    @property
    def occluder_mask(self) -> np.ndarray:
        """bool [H, W]: pixels where a near occluder is the first surface seen (not far scenery)."""
        return (self.object_ids >= FIRST_OCCLUDER_ID) & (self.object_ids < FIRST_SCENERY_ID)

    @property
    def scenery_mask(self) -> np.ndarray:
        """bool [H, W]: pixels where a far object (shelf, pillar, car) is the first surface seen."""
        return (self.object_ids >= FIRST_SCENERY_ID) & (self.object_ids < HAZARD_ID)

    @property
    def hazard_mask(self) -> np.ndarray:
        """bool [H, W]: pixels where the hazard object is the first surface seen."""
        return self.object_ids == HAZARD_ID

    @property
    def occlusion_level(self) -> float:
        """Fraction of the image covered by occluders."""
        return float(self.occluder_mask.mean())


@dataclass(frozen=True)
class RoomLook:
    """Colours of the room surfaces: floor (two tile shades) and the four walls and ceiling."""

    floor: tuple[int, int, int] = (150, 140, 120)
    floor_alt: tuple[int, int, int] = (120, 112, 96)
    walls: tuple[tuple[int, int, int], ...] = field(
        default=((200, 200, 190), (190, 195, 205), (205, 195, 185), (185, 200, 190))
    )
    ceiling: tuple[int, int, int] = (230, 230, 230)


@lru_cache(maxsize=8)
def _optical_rays(intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rays [H*W, 3] (optical z = 1) and their inverse lengths [H*W] (rotation-invariant)."""
    rays = intrinsics.pixel_rays().reshape(-1, 3)
    return rays, (1.0 / np.linalg.norm(rays, axis=1)).astype(np.float32)


def _room_hit(
    size_m: np.ndarray, origin: np.ndarray, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exit distance from inside the room [N], the side code [N] and |dir| along the exit axis [N].

    Side codes 0..5: -x, +x, -y, +y walls, floor, ceiling. One axis at a time keeps the
    arrays one-dimensional, which is several times faster than an [N, 3] argmin.
    """
    t = np.full(dirs.shape[0], np.inf)
    side = np.zeros(dirs.shape[0], dtype=np.int64)
    along = np.zeros(dirs.shape[0])
    for axis in range(3):
        d = dirs[:, axis]
        positive = d > 0
        bound = np.where(positive, size_m[axis], 0.0)
        t_axis = np.divide(bound - origin[axis], d, out=np.full_like(d, np.inf), where=d != 0)
        closer = t_axis < t
        t = np.where(closer, t_axis, t)
        side = np.where(closer, 2 * axis + positive, side)
        along = np.where(closer, np.abs(d), along)
    return t, side, along


def render_rgbd(
    room_size_m: tuple[float, float, float],
    camera_position_m: np.ndarray,
    optical_to_world: np.ndarray,
    intrinsics: CameraIntrinsics,
    occluders: list[Shape],
    hazard: Shape | None,
    rng: np.random.Generator,
    config: RenderConfig = RenderConfig(),
    look: RoomLook = RoomLook(),
    scenery: Sequence[Shape] = (),
) -> RenderResult:
    """Ray-cast the room, the occluders, the far scenery and the hazard from a camera pose.

    ``optical_to_world``: 3x3 rotation of the camera optical frame (x right, y down, z forward)
    into the world. ``rng`` draws the sensor noise only, so the geometry is never random here.
    """
    shapes = _numbered_shapes(occluders, scenery, hazard)
    origin = np.asarray(camera_position_m, dtype=np.float64)
    rotation = np.asarray(optical_to_world, dtype=np.float64)
    rays, inv_length = _optical_rays(intrinsics)
    dirs = _rotate_rows(rays, rotation.T)
    hits = _render_room(np.asarray(room_size_m, dtype=np.float64), origin, dirs, inv_length, look)
    for object_id, shape in shapes:
        _render_shape(hits, object_id, shape, origin, rotation, intrinsics, dirs, inv_length)
    return _sensor_readings(hits, intrinsics, rng, config)


@dataclass
class _Hits:
    """The nearest surface along each pixel ray [H*W], updated in place as objects are drawn.

    t: hit distance = optical depth [m]; ids: object id; headlight: Lambert |cos| of the ray and
    the surface normal (light at the camera); albedo: surface colour [H*W, 3] (0..255 scale).
    """

    t: np.ndarray
    ids: np.ndarray
    headlight: np.ndarray
    albedo: np.ndarray


def _numbered_shapes(
    occluders: Sequence[Shape], scenery: Sequence[Shape], hazard: Shape | None
) -> list[tuple[int, Shape]]:
    """Each object with its id in RenderResult.object_ids, in drawing order; too many is an error."""
    if len(occluders) > FIRST_SCENERY_ID - FIRST_OCCLUDER_ID or len(scenery) > HAZARD_ID - FIRST_SCENERY_ID:
        raise ValueError(
            f"too many objects to render: {len(occluders)} occluders, {len(scenery)} far objects"
        )
    shapes: list[tuple[int, Shape]] = [(FIRST_OCCLUDER_ID + k, s) for k, s in enumerate(occluders)]
    shapes += [(FIRST_SCENERY_ID + k, s) for k, s in enumerate(scenery)]
    if hazard is not None:
        shapes.append((HAZARD_ID, hazard))
    return shapes


def _render_room(
    size_m: np.ndarray, origin: np.ndarray, dirs: np.ndarray, inv_length: np.ndarray, look: RoomLook
) -> _Hits:
    """Every ray's exit through the walls, floor (tiled) or ceiling of the empty room."""
    t, side, along = _room_hit(size_m, origin, dirs)
    ids = np.full(dirs.shape[0], ROOM_ID, dtype=np.int16)
    # Lambert shading with the light at the camera: |cos| between the ray and the surface normal.
    headlight = along.astype(np.float32) * inv_length
    wall_colours = np.array([*look.walls, look.floor, look.ceiling], dtype=np.float32)
    albedo = wall_colours[side]
    floor = np.flatnonzero(side == 4)
    floor_xy = origin[:2] + t[floor, None] * dirs[floor, :2]  # inside the room, so >= 0: int() floors
    tiles = ((floor_xy / FLOOR_TILE_M).astype(np.int64).sum(axis=1) & 1) == 1
    albedo[floor[tiles]] = look.floor_alt
    return _Hits(t, ids, headlight, albedo)


def _render_shape(
    hits: _Hits,
    object_id: int,
    shape: Shape,
    origin: np.ndarray,
    rotation: np.ndarray,
    intrinsics: CameraIntrinsics,
    dirs: np.ndarray,
    inv_length: np.ndarray,
) -> None:
    """Draw one object into ``hits`` where it is nearer, casting only the rays of its pixel window."""
    window = _pixel_window(shape.bounding_corners(), origin, rotation, intrinsics)
    if window is None:
        return
    h, w = intrinsics.height, intrinsics.width
    grid = (hits.t.reshape(h, w), hits.ids.reshape(h, w), hits.headlight.reshape(h, w))
    t_win, ids_win, light_win = (a[window] for a in grid)
    albedo_win = hits.albedo.reshape(h, w, 3)[window]
    dirs_win = dirs.reshape(h, w, 3)[window].reshape(-1, 3)
    t_obj, n_obj = shape.intersect(origin, dirs_win)
    cosine = np.abs(np.einsum("ij,ij->i", n_obj, dirs_win)) * inv_length.reshape(h, w)[window].ravel()
    closer = (t_obj < t_win.ravel()).reshape(t_win.shape)
    t_win[closer] = t_obj.reshape(t_win.shape)[closer]
    ids_win[closer] = object_id
    light_win[closer] = cosine.reshape(t_win.shape)[closer]
    albedo_win[closer] = shape.colour


def _sensor_readings(
    hits: _Hits, intrinsics: CameraIntrinsics, rng: np.random.Generator, config: RenderConfig
) -> RenderResult:
    """Shaded RGB with brightness noise, and depth with z^2 noise and dropouts (drawn in that order)."""
    h, w = intrinsics.height, intrinsics.width
    shade = (0.35 + 0.65 * hits.headlight) / (1.0 + 0.03 * hits.t.astype(np.float32))
    rgb = hits.albedo * shade[:, None]
    if config.rgb_noise_std > 0:
        rgb += np.float32(config.rgb_noise_std) * rng.standard_normal((rgb.shape[0], 1), dtype=np.float32)
    exact = hits.t.astype(np.float32).reshape(h, w)
    depth = exact.copy()
    if config.depth_noise_coeff > 0:
        depth += (
            np.float32(config.depth_noise_coeff)
            * exact**2
            * rng.standard_normal(exact.shape, dtype=np.float32)
        )
    if config.dropout_rate > 0:
        depth[rng.random(exact.shape, dtype=np.float32) < config.dropout_rate] = 0.0
    return RenderResult(
        rgb=np.clip(rgb, 0, 255).astype(np.uint8).reshape(h, w, 3),
        depth_m=depth,
        exact_depth_m=exact,
        object_ids=hits.ids.reshape(h, w),
    )


def _pixel_window(
    corners_world: np.ndarray, origin: np.ndarray, optical_to_world: np.ndarray, intrinsics: CameraIntrinsics
) -> tuple[slice, slice] | None:
    """Image rows/columns that can show a convex object with these bounding corners (None: none).

    A convex body in front of the camera projects inside the hull of its projected corners, so
    only that rectangle needs rays; an object reaching behind the camera gets the whole image.
    """
    p = (corners_world - origin) @ optical_to_world
    h, w = intrinsics.height, intrinsics.width
    if (p[:, 2] <= 1e-6).any():
        return slice(0, h), slice(0, w)
    u = intrinsics.fx * p[:, 0] / p[:, 2] + intrinsics.cx
    v = intrinsics.fy * p[:, 1] / p[:, 2] + intrinsics.cy
    c0, c1 = max(math.floor(u.min()), 0), min(math.ceil(u.max()) + 1, w)
    r0, r1 = max(math.floor(v.min()), 0), min(math.ceil(v.max()) + 1, h)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


def first_hit_distance(shapes: list[Shape], origin: np.ndarray, direction: np.ndarray) -> float:
    """Distance along one ray to the nearest of ``shapes`` (inf if none): for placement checks."""
    dirs = np.asarray(direction, dtype=np.float64).reshape(1, 3)
    best = math.inf
    for shape in shapes:
        best = min(best, float(shape.intersect(np.asarray(origin, dtype=np.float64), dirs)[0][0]))
    return best
