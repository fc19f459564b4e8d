"""The labels of a synthetic scene and the Sample that carries them.

Labels are in the microphone frame (REP-103): azimuth, elevation [rad], distance [m] of a
hazard's centre (its acoustic source). Visibility and occlusion come from the render (what the
camera really shows), activity from the dry source (when it really sounds). ``scene_sample`` is
the one place a Sample is built, whichever generator made the scene.

Negatives. Class 0 ('none') scenes have no hazard: their direction fields are 0 and their
visibility is OUT_OF_VIEW. ``Sample.content`` tells a background-only scene from one with a
real non-hazard sound. ``Sample.rt60_s`` and ``Sample.snr_db`` record the room's reverberation
time and the point source's SNR, so evaluation can group by them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from avi_ros.data.layout import HazardObject, MicPose, SourceLabel, camera_pose
from avi_ros.data.render import HAZARD_ID, RenderResult
from avi_ros.data.scene_config import SceneConfig
from avi_ros.geometry import CameraIntrinsics, MicToCamera, direction_to_unit
from avi_ros.taxonomy import Action, RiskLevel, Taxonomy, Visibility

LABEL_FRAME_S = 0.1  # resolution of the per-frame activity labels [s] (the DCASE SELD frame)
ACTIVITY_RANGE_DB = 40.0  # a label frame is active when within this of the source's loudest frame [dB]


def frame_activity(dry: np.ndarray, sample_rate: int, frame_s: float = LABEL_FRAME_S) -> np.ndarray:
    """Per ``frame_s`` label frame, 1.0 where the dry source sounds and 0.0 where it is silent.

    A real clip can start late, stop early or pause inside the window; a label that stays on
    over its silence asks the model to report a sound it cannot hear (float32 [frames], the last
    frame partial; ``ACTIVITY_RANGE_DB`` below the loudest frame counts as silent)."""
    hop = max(1, round(frame_s * sample_rate))
    frames = max(1, -(-dry.size // hop))
    padded = np.zeros(frames * hop, dtype=np.float64)
    padded[: dry.size] = dry
    rms = np.sqrt(np.mean(padded.reshape(frames, hop) ** 2, axis=1))
    if rms.max() <= 0:
        return np.zeros(frames, dtype=np.float32)
    return (rms >= rms.max() * 10.0 ** (-ACTIVITY_RANGE_DB / 20.0)).astype(np.float32)


class SceneContent(IntEnum):
    """What a scene holds: a hazard, or one of the two kinds of negative (class 0)."""

    HAZARD = 0
    BACKGROUND_ONLY = 1
    NON_HAZARD_SOUND = 2  # a real non-hazard recording (bank label 'none') as a point source


@dataclass
class SecondSource:
    """An extra, audio-only source (not drawn): class and exact label in the microphone frame.

    visibility says whether its direction is in view with a clear line of sight.
    """

    class_id: int
    azimuth: float
    elevation: float
    distance: float
    visibility: Visibility
    activity: tuple[float, ...] | None = None  # per label frame, see frame_activity; None: always on


@dataclass
class HazardLabel:
    """One hazard of a scene, exact, in the microphone frame (REP-103).

    azimuth, elevation [rad], distance [m]: the object's centre (its acoustic source).
    visibility: from the render (the centre pixel shows the object itself, something else, or
    is outside the image). occlusion: share of the object's projected image footprint where
    something else (an occluder, far scenery, another hazard) is the first surface seen (0 clear
    .. 1 hidden; NaN out of view). activity: float32 [label frames], see frame_activity.
    risk / action: the taxonomy's rules for its class and distance.
    """

    class_id: int
    azimuth: float
    elevation: float
    distance: float
    visibility: Visibility
    occlusion: float
    activity: np.ndarray
    risk: RiskLevel
    action: Action


@dataclass
class Sample:
    """One synthetic scene.

    audio: float32 [4, N], ACN/SN3D at ``sample_rate`` Hz. rgb: uint8 [H, W, 3].
    depth_m: float32 [H, W] metres with sensor noise and dropouts (0 = no reading).
    occluder_mask / hazard_mask: bool [H, W], exact. occlusion_level: near-occluder pixel fraction.
    azimuth, elevation [rad], distance [m]: hazard centre in the microphone frame (REP-103).
    intrinsics / extrinsic: the camera of this scene (the wide profile tilts it per scene).
    snr_db: the point source's (hazard's, or the non-hazard sound's) SNR over the background;
    NaN for background-only scenes. rt60_s: Sabine reverberation time of the room [s].
    content: hazard, background only, or a real non-hazard sound (SceneContent).
    activity: per LABEL_FRAME_S frame, whether the hazard sounds (zeros without a hazard).
    hazards: every hazard of the scene (empty for class 0); the single-hazard fields above
    (class_id .. action, visibility, activity) are those of ``hazards[0]``.
    """

    seed: int
    audio: np.ndarray
    sample_rate: int
    rgb: np.ndarray
    depth_m: np.ndarray
    occluder_mask: np.ndarray
    hazard_mask: np.ndarray
    occlusion_level: float
    visibility: Visibility
    class_id: int
    class_name: str
    azimuth: float
    elevation: float
    distance: float
    risk: RiskLevel
    action: Action
    intrinsics: CameraIntrinsics
    extrinsic: MicToCamera
    snr_db: float
    second: SecondSource | None = None
    rt60_s: float = float("nan")
    content: SceneContent = SceneContent.HAZARD
    activity: np.ndarray | None = None  # the hazard's per-frame activity (frame_activity); None: always on
    hazards: list[HazardLabel] = field(default_factory=list)

    @property
    def direction(self) -> np.ndarray:
        """Unit vector [3] of the hazard in the microphone frame (zeros for class 0)."""
        if self.class_id == 0:
            return np.zeros(3)
        return direction_to_unit(self.azimuth, self.elevation)


def _label_frames(cfg: SceneConfig) -> int:
    """How many LABEL_FRAME_S label frames a scene of ``cfg`` has (the last one partial)."""
    return frame_activity(np.zeros(cfg.n_samples), cfg.sample_rate).size


def visibility_from_render(
    centre_mic: np.ndarray,
    object_ids: np.ndarray,
    intrinsics: CameraIntrinsics,
    extrinsic: MicToCamera,
    hazard_id: int = HAZARD_ID,
) -> Visibility:
    """Exact visibility of a hazard centre [m, microphone frame] in a rendered view.

    OUT_OF_VIEW outside the image or behind the camera; VISIBLE when the pixel it projects to
    shows the hazard itself (``object_ids == hazard_id``); OCCLUDED when something else is there.
    """
    (u, v), inside = intrinsics.project(extrinsic.mic_to_optical(centre_mic))
    if not bool(inside):
        return Visibility.OUT_OF_VIEW
    row = min(max(round(float(v)), 0), intrinsics.height - 1)
    col = min(max(round(float(u)), 0), intrinsics.width - 1)
    return Visibility.VISIBLE if object_ids[row, col] == hazard_id else Visibility.OCCLUDED


def visibility_of_mask(centre_mic: np.ndarray, seen_mask: np.ndarray, cfg: SceneConfig) -> Visibility:
    """``visibility_from_render`` with a hazard's own pixel mask (the centre pixel shows it or not)."""
    return visibility_from_render(centre_mic, seen_mask.astype(np.int16), cfg.intrinsics, cfg.extrinsic, 1)


def hazard_footprint(
    hazard: HazardObject, mic: MicPose, intrinsics: CameraIntrinsics, extrinsic: MicToCamera
) -> np.ndarray:
    """bool [H, W]: the pixels whose ray meets the hazard object, whatever stands in front of it.

    Only the rays of the window its projected bounding corners span are cast (the whole image
    when a corner lies behind the camera)."""
    cam, rot = camera_pose(mic, extrinsic)
    h, w = intrinsics.height, intrinsics.width
    footprint = np.zeros((h, w), dtype=bool)
    corners = (hazard.shape.bounding_corners() - cam) @ rot  # optical frame
    rows, cols = slice(0, h), slice(0, w)
    if (corners[:, 2] > 1e-6).all():
        uv, _ = intrinsics.project(corners)
        u, v = uv[:, 0], uv[:, 1]
        rows = slice(max(math.floor(v.min()), 0), min(math.ceil(v.max()) + 1, h))
        cols = slice(max(math.floor(u.min()), 0), min(math.ceil(u.max()) + 1, w))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return footprint
    rays = intrinsics.pixel_rays()[rows, cols].reshape(-1, 3) @ rot.T
    t, _ = hazard.shape.intersect(cam, rays)
    footprint[rows, cols] = (np.isfinite(t) & (t > 0)).reshape(footprint[rows, cols].shape)
    return footprint


def hazard_occlusion(
    hazard: HazardObject,
    seen_mask: np.ndarray,
    mic: MicPose,
    intrinsics: CameraIntrinsics,
    extrinsic: MicToCamera,
    visibility: Visibility,
) -> float:
    """Share of the hazard's image footprint where something else is seen first (0 clear .. 1 hidden).

    ``seen_mask``: bool [H, W], the pixels where the render shows this hazard. NaN when the
    hazard is out of view (or its footprint misses every pixel centre)."""
    if visibility == Visibility.OUT_OF_VIEW:
        return float("nan")
    footprint = hazard_footprint(hazard, mic, intrinsics, extrinsic)
    area = int(footprint.sum())
    if area == 0:
        return float("nan")
    return 1.0 - float((footprint & seen_mask).sum()) / area


def hazard_label(
    tax: Taxonomy,
    class_id: int,
    source: SourceLabel,
    visibility: Visibility,
    occlusion: float,
    activity: np.ndarray,
) -> HazardLabel:
    """A hazard's label, with the taxonomy's risk and action for its class, distance and azimuth."""
    risk = tax.risk_level(class_id, source.distance)
    return HazardLabel(
        class_id,
        source.azimuth,
        source.elevation,
        source.distance,
        visibility,
        occlusion,
        activity,
        risk,
        tax.recommended_action(risk, source.azimuth),
    )


def scene_sample(
    seed: int,
    cfg: SceneConfig,
    tax: Taxonomy,
    view: RenderResult,
    rt60_s: float,
    hazards: list[HazardLabel],
    audio: np.ndarray,
    snr_db: float,
    content: SceneContent,
    second: SecondSource | None = None,
) -> Sample:
    """The Sample of a scene: its mixed audio [4, N], its view, its room's RT60 [s] and its labels.

    ``cfg`` carries the scene's own camera. The single-hazard fields (class_id .. action,
    visibility, activity) are those of ``hazards[0]``, or without a hazard those of class 0
    (no direction, OUT_OF_VIEW, silent)."""
    if hazards:
        first = hazards[0]
    else:
        silent = np.zeros(_label_frames(cfg), np.float32)
        nowhere = SourceLabel(0.0, 0.0, 0.0)
        first = hazard_label(tax, 0, nowhere, Visibility.OUT_OF_VIEW, float("nan"), silent)
    return Sample(
        seed=seed,
        audio=audio.astype(np.float32),
        sample_rate=cfg.sample_rate,
        rgb=view.rgb,
        depth_m=view.depth_m,
        occluder_mask=view.occluder_mask,
        hazard_mask=view.hazard_mask,
        occlusion_level=view.occlusion_level,
        visibility=first.visibility,
        class_id=first.class_id,
        class_name=tax.names[first.class_id],
        azimuth=first.azimuth,
        elevation=first.elevation,
        distance=first.distance,
        risk=first.risk,
        action=first.action,
        intrinsics=cfg.intrinsics,
        extrinsic=cfg.extrinsic,
        snr_db=snr_db,
        second=second,
        rt60_s=rt60_s,
        content=content,
        activity=first.activity,
        hazards=hazards,
    )
