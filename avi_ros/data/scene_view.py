"""The camera view of a scene: the exact render of its geometry, then the wide profile's sensor
limits (a lower effective resolution, a depth range)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from avi_ros.data.layout import camera_pose
from avi_ros.data.render import FIRST_SCENERY_ID, HAZARD_ID, RenderResult, render_rgbd
from avi_ros.data.scene_config import SceneConfig, draw_uniform
from avi_ros.data.scene_geometry import SceneGeometry
from avi_ros.data.sensors import limit_depth_range, reduce_resolution


def render_view(rng: np.random.Generator, cfg: SceneConfig, geometry: SceneGeometry) -> RenderResult:
    """The exact render of the scene, then (wide profile) a lower effective resolution and a depth range."""
    view = geometry.layout.render(
        geometry.mic, cfg.intrinsics, cfg.extrinsic, rng, cfg.render, 0 if geometry.hazard else None
    )
    return _sensor_limits(rng, cfg, view)


def render_hazard_set(
    rng: np.random.Generator, cfg: SceneConfig, geometry: SceneGeometry
) -> tuple[RenderResult, list[np.ndarray]]:
    """The scene's view with every hazard drawn, and per hazard the pixels that show it.

    The renderer marks one hazard (HAZARD_ID); the others are drawn as extra far objects with
    ids of their own, then relabelled HAZARD_ID so ``hazard_mask`` covers them all."""
    layout, mic = geometry.layout, geometry.mic
    shapes = [h.shape for h in layout.hazards]
    cam, rot = camera_pose(mic, cfg.extrinsic)
    view = render_rgbd(
        layout.room.size_m,
        cam,
        rot,
        cfg.intrinsics,
        list(layout.occluders),
        shapes[0] if shapes else None,
        rng,
        cfg.render,
        layout.look,
        [*layout.scenery, *shapes[1:]],
    )
    ids = view.object_ids
    seen = [ids == HAZARD_ID] if shapes else []
    first_extra = FIRST_SCENERY_ID + len(layout.scenery)
    seen += [ids == first_extra + k for k in range(len(shapes) - 1)]
    merged = ids.copy()
    for mask in seen[1:]:
        merged[mask] = HAZARD_ID
    return _sensor_limits(rng, cfg, replace(view, object_ids=merged)), seen


def _sensor_limits(rng: np.random.Generator, cfg: SceneConfig, view: RenderResult) -> RenderResult:
    """``view`` as the wide profile's camera sees it (lower resolution, depth range); as is otherwise."""
    if cfg.wide is None:
        return view
    rgb, depth = reduce_resolution(view.rgb, view.depth_m, draw_uniform(rng, cfg.wide.resolution_scale_range))
    depth = limit_depth_range(depth, draw_uniform(rng, cfg.wide.max_depth_range_m))
    return replace(view, rgb=rgb, depth_m=depth)
