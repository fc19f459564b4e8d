"""The world behind a scene (SceneGeometry): room, robot pose, hazards, near occluders, far scenery.

``sample_geometry`` places at most one hazard (and maybe an audio-only second source);
``sample_hazard_set_geometry`` places a set of hazards, each of its own target visibility. The
single objects are placed by ``avi_ros.data.placement``.

Geometric guarantees that the occlusion code relies on (with the default config):
occluders are upright boxes facing the camera whose every visible surface lies closer than
``occluder_depth_range_m[1] + occluder_thickness_range_m[1]`` (< 1 m), while walls, floor,
ceiling and hazards stay farther (camera >= 0.8 m above the floor and >= 1.5 m from walls,
hazards >= 2 m away in optical depth). So the near-obstacle mask of ``avi_ros.occlusion``
with ``near_range_m = 1`` should recover the occluder mask. The wide profile
(``SceneConfig.wide``, see ``avi_ros.data.domain``) gives these guarantees up on purpose: tiny
rooms, a low camera, near sources and far occluders are what real robots meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from avi_ros.data.acoustics import ShoeboxRoom
from avi_ros.data.domain import WideProfile
from avi_ros.data.layout import HazardObject, MicPose, SceneLayout, camera_pose
from avi_ros.data.placement import (
    PLACEMENT_TRIES,
    blocks_sight,
    free_point,
    near_cover,
    occluder_at_pixel,
    place_hazard_object,
    sample_room_and_mic,
)
from avi_ros.data.render import Box, Shape
from avi_ros.data.scene_config import ProfileRanges, SceneConfig
from avi_ros.data.scenery import far_cover, sample_far_occluders
from avi_ros.taxonomy import Visibility, default_taxonomy

VISIBILITY_ORDER = (Visibility.VISIBLE, Visibility.OCCLUDED, Visibility.OUT_OF_VIEW)
_COVER_TRIES = 8  # covering panels tried before an occluded hazard is left to chance


@dataclass
class SceneGeometry:
    """The sampled world and pose behind a Sample (for inspection and for moving scenarios).

    hazard: the first hazard (``layout.hazards`` holds them all). none_source_m: position of the
    real non-hazard sound (of a class-0 scene, or any multi-hazard scene), if it has one.
    """

    layout: SceneLayout
    mic: MicPose
    hazard: HazardObject | None
    second_source_m: np.ndarray | None
    second_class: str | None
    none_source_m: np.ndarray | None = None


def sample_geometry(rng: np.random.Generator, cfg: SceneConfig, class_name: str | None) -> SceneGeometry:
    """Room, pose, hazard object and occluders for one scene (``class_name`` None: no hazard)."""
    intr = cfg.intrinsics
    target = _draw_target(rng, cfg)
    hazard = None
    # A pose facing a nearby wall may leave no place for the hazard: draw a new room and pose.
    for _ in range(PLACEMENT_TRIES):
        room, mic = sample_room_and_mic(rng, cfg)
        if class_name is None:
            break
        hazard = place_hazard_object(rng, cfg, room, mic, class_name, target)
        if hazard is not None:
            break
    if class_name is not None and hazard is None:
        raise RuntimeError(
            f"could not place a '{class_name}' hazard ({target.name}); "
            "widen the SceneConfig room or distance ranges"
        )

    scenery, covered = _far_scenery(rng, cfg, room, mic, hazard, target)
    cam, _ = camera_pose(mic, cfg.extrinsic)
    occluders: list[Box] = []
    count = int(rng.integers(0, cfg.max_occluders + 1))
    if hazard is not None and target == Visibility.OCCLUDED and not covered:
        count = max(count, 1)
        occluders.append(near_cover(rng, cfg, mic, hazard, room.size_m[2]))
    while len(occluders) < count:
        u, v = rng.uniform(0, intr.width), rng.uniform(0, intr.height)
        box = occluder_at_pixel(rng, cfg, mic, u, v, False, room.size_m[2])
        if hazard is not None and target == Visibility.VISIBLE and blocks_sight([box], cam, hazard.centre_m):
            count -= 1  # it would hide the hazard's centre
            continue
        occluders.append(box)

    second_point, second_class = None, None
    if class_name is not None and rng.uniform() < cfg.second_source_probability:
        names = [n for n in default_taxonomy().names[1:] if n != class_name]
        second_class = names[int(rng.integers(len(names)))]
        second_point = free_point(rng, room, mic, ProfileRanges.of(cfg).source_distance_m[0])
        if second_point is None:
            second_class = None
    layout = SceneLayout(room, occluders, [hazard] if hazard is not None else [], scenery=scenery)
    return SceneGeometry(layout, mic, hazard, second_point, second_class)


def _far_scenery(
    rng: np.random.Generator,
    cfg: SceneConfig,
    room: ShoeboxRoom,
    mic: MicPose,
    hazard: HazardObject | None,
    target: Visibility,
) -> tuple[list[Shape], bool]:
    """Far occluders of the wide profile, and whether one of them hides the (occluded) hazard."""
    wide = cfg.wide
    if wide is None:
        return [], False
    cam, _ = camera_pose(mic, cfg.extrinsic)
    clear: list[tuple[np.ndarray, float]] = [(np.asarray(mic.position_m), 1.0)]
    scenery: list[Shape] = []
    covered = False
    if hazard is not None:
        clear.append((hazard.centre_m, hazard.half_extent_m + 0.1))
        if target == Visibility.OCCLUDED and rng.uniform() < wide.far_cover_probability:
            cover = far_cover(
                rng,
                room,
                cam,
                hazard.centre_m,
                hazard.half_extent_m,
                wide.far_occluder_distance_range_m,
                clear,
            )
            if cover is not None:
                scenery.append(cover)
                covered = True
    keep_visible = hazard.centre_m if hazard is not None and target == Visibility.VISIBLE else None
    scenery += _far_occluders(rng, cfg, wide, room, mic, clear, keep_visible)
    return scenery, covered


def sample_hazard_set_geometry(
    rng: np.random.Generator, cfg: SceneConfig, class_names: list[str]
) -> tuple[SceneGeometry, list[Visibility]]:
    """Room, pose, one object per hazard class name (repeats allowed) and the occluders.

    Each hazard draws its own target visibility from ``visibility_mix``: a visible one keeps a
    clear line of sight (no occluder, far object or other hazard in front of its centre), an
    occluded one gets its own covering near panel (or, in the wide profile, a far object), an
    out-of-view one lies wholly outside the camera frustum. Returns the geometry and the targets
    (the labels come from the render: a target can be missed, e.g. a panel that also hides
    another occluded hazard)."""
    targets = [_draw_target(rng, cfg) for _ in class_names]
    for _ in range(PLACEMENT_TRIES):
        room, mic = sample_room_and_mic(rng, cfg)
        placed: list[tuple[HazardObject, Visibility]] = []
        cam, _ = camera_pose(mic, cfg.extrinsic)
        for name, target in zip(class_names, targets, strict=True):
            draw = partial(place_hazard_object, rng, cfg, room, mic, name, target)
            hazard = _place_hazard(draw, target, cam, placed)
            if hazard is None:
                break
            placed.append((hazard, target))
        if len(placed) == len(class_names):
            break
    else:
        raise RuntimeError(
            f"could not place the hazards {class_names} ({[t.name for t in targets]}); "
            "widen the SceneConfig room or distance ranges"
        )
    hazards = [h for h, _ in placed]
    visible = [h.centre_m for h, t in placed if t == Visibility.VISIBLE]
    scenery, covered = _hazard_set_scenery(rng, cfg, room, mic, hazards, targets)
    occluders: list[Box] = []
    for hazard, target, far in zip(hazards, targets, covered, strict=True):
        if target != Visibility.OCCLUDED or far:
            continue
        for _ in range(_COVER_TRIES):
            box = near_cover(rng, cfg, mic, hazard, room.size_m[2])
            if not any(blocks_sight([box], cam, p) for p in visible):
                occluders.append(box)
                break
    count = int(rng.integers(0, cfg.max_occluders + 1))
    for _ in range(max(count - len(occluders), 0)):
        u, v = rng.uniform(0, cfg.intrinsics.width), rng.uniform(0, cfg.intrinsics.height)
        box = occluder_at_pixel(rng, cfg, mic, u, v, False, room.size_m[2])
        if not any(blocks_sight([box], cam, p) for p in visible):
            occluders.append(box)
    layout = SceneLayout(room, occluders, hazards, scenery=scenery)
    return SceneGeometry(layout, mic, hazards[0] if hazards else None, None, None), targets


def _place_hazard(
    draw: Callable[[], HazardObject | None],
    target: Visibility,
    cam: np.ndarray,
    placed: list[tuple[HazardObject, Visibility]],
) -> HazardObject | None:
    """One hazard of ``draw`` (``place_hazard_object`` for a class at ``target`` visibility), clear
    of the hazards already ``placed`` and not hiding (nor hidden by, when visible, as seen from the
    camera position ``cam`` [m]) any of them; None when no try succeeds."""
    for _ in range(PLACEMENT_TRIES):
        hazard = draw()
        if hazard is None:
            continue
        point, radius = hazard.centre_m, hazard.half_extent_m
        others = [h for h, _ in placed]
        if any(np.linalg.norm(h.centre_m - point) < h.half_extent_m + radius + 0.1 for h in others):
            continue
        if target == Visibility.VISIBLE and blocks_sight([h.shape for h in others], cam, point):
            continue
        if any(t == Visibility.VISIBLE and blocks_sight([hazard.shape], cam, h.centre_m) for h, t in placed):
            continue
        return hazard
    return None


def _hazard_set_scenery(
    rng: np.random.Generator,
    cfg: SceneConfig,
    room: ShoeboxRoom,
    mic: MicPose,
    hazards: list[HazardObject],
    targets: list[Visibility],
) -> tuple[list[Shape], list[bool]]:
    """Far objects of the wide profile (none otherwise), and per hazard whether one hides it.

    An occluded hazard is hidden by a far object with ``far_cover_probability``; no far
    object stands in front of a visible hazard."""
    covered = [False] * len(hazards)
    wide = cfg.wide
    if wide is None:
        return [], covered
    cam, _ = camera_pose(mic, cfg.extrinsic)
    clear = [(np.asarray(mic.position_m), 1.0)] + [(h.centre_m, h.half_extent_m + 0.1) for h in hazards]
    visible = [h.centre_m for h, t in zip(hazards, targets, strict=True) if t == Visibility.VISIBLE]
    scenery: list[Shape] = []
    for k, (hazard, target) in enumerate(zip(hazards, targets, strict=True)):
        if target != Visibility.OCCLUDED or rng.uniform() >= wide.far_cover_probability:
            continue
        cover = far_cover(
            rng, room, cam, hazard.centre_m, hazard.half_extent_m, wide.far_occluder_distance_range_m, clear
        )
        if cover is not None and not any(blocks_sight([cover], cam, p) for p in visible):
            scenery.append(cover)
            covered[k] = True
    far = _far_occluders(rng, cfg, wide, room, mic, clear)
    scenery += [shape for shape in far if not any(blocks_sight([shape], cam, p) for p in visible)]
    return scenery, covered


def _draw_target(rng: np.random.Generator, cfg: SceneConfig) -> Visibility:
    """A hazard's target visibility, drawn from ``visibility_mix``."""
    return VISIBILITY_ORDER[int(rng.choice(3, p=np.asarray(cfg.visibility_mix) / sum(cfg.visibility_mix)))]


def _far_occluders(
    rng: np.random.Generator,
    cfg: SceneConfig,
    wide: WideProfile,
    room: ShoeboxRoom,
    mic: MicPose,
    clear: list[tuple[np.ndarray, float]],
    keep_visible: np.ndarray | None = None,
) -> list[Shape]:
    """Up to ``max_far_occluders`` far objects of the wide profile (a drawn count), spread around
    the camera's heading, clear of the ``clear`` spheres (centre [m], radius [m]); with
    ``keep_visible`` none hides that point (see ``scenery.sample_far_occluders``)."""
    cam, rot = camera_pose(mic, cfg.extrinsic)
    return sample_far_occluders(
        rng,
        room,
        cam,
        math.atan2(rot[1, 2], rot[0, 2]),
        cfg.intrinsics.horizontal_fov_rad / 2.0,
        int(rng.integers(0, wide.max_far_occluders + 1)),
        wide.far_occluder_distance_range_m,
        clear,
        keep_visible,
    )
