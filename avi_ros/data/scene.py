"""Random occluded-hazard scenes: FOA audio + RGB-D + exact labels, reproducible from a seed.

``generate_scene(seed, config)`` samples a room, a robot pose, a hazard (class, position,
look), 0-3 occluder boxes and the sensor imperfections, then renders the camera view and
the FOA room acoustics of the same geometry. The same seed always gives the same sample.

Geometric guarantees that the occlusion code relies on (with the default config):
occluders are upright boxes facing the camera whose every visible surface lies closer than
``occluder_depth_range_m[1] + occluder_thickness_range_m[1]`` (< 1 m), while walls, floor,
ceiling and hazards stay farther (camera >= 0.8 m above the floor and >= 1.5 m from walls,
hazards >= 2 m away in optical depth). So the near-obstacle mask of ``avi_ros.occlusion``
with ``near_range_m = 1`` should recover the occluder mask. The wide profile
(``SceneConfig.wide``, see ``avi_ros.data.domain``) gives these guarantees up on purpose: tiny
rooms, a low camera, near sources and far occluders are what real robots meet.

Sounds. With ``sound_dir`` (a sound-bank split, class folders or an UrbanSound8K tree) a hazard
is a real clip with ``real_sound_probability`` and the procedural model of its class otherwise.
For training sets, ``procedural_probability`` gives a share of hazards a clip of the class's wide
procedural family instead, and ``clip_augmentation`` reshapes every real hazard clip.
Under every scene lies a background (``avi_ros.data.background``): real ambience from the bank's
``background`` label, or procedural diffuse noise, at an SNR drawn from the SNR range relative
to the scene's point source.

Negatives. Class 0 ('none') scenes have no hazard: their direction fields are 0 and their
visibility is OUT_OF_VIEW. With ``none_sound_probability`` (and a bank with a ``none`` label)
one real non-hazard sound (music, a door, birds, a click) plays as a point source, as loud as
hazards are, so that a loud sound is not taken for a hazard; the rest are background only.
``Sample.content`` tells the three kinds apart.

Hazard sets. With ``SceneConfig.hazard_count_weights`` a scene holds 0..MAX_HAZARDS hazards
(repeated classes allowed), each with its own visibility, position, sound, SNR and (with
``onset_offset_probability``) onset/offset, plus an optional non-hazard sound; ``Sample.hazards``
labels them all and the single-hazard fields are the first one's. Without it the scenes are
exactly those of the single-hazard generator for the same seed.

Labels are in the microphone frame (REP-103): azimuth, elevation [rad], distance [m] of the
hazard's centre (its acoustic source). ``Sample.rt60_s`` and ``Sample.snr_db`` record the
room's reverberation time and the point source's SNR, so evaluation can group by them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum
from functools import lru_cache, partial

import numpy as np

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.acoustics import AcousticsConfig, ShoeboxRoom, event_power, scale_to_snr
from avi_ros.data.background import BACKGROUND_LABEL, draw_background
from avi_ros.data.clip_augment import ClipAugmentConfig, augment_clip
from avi_ros.data.domain import WideProfile, draw_distance, perturbed_extrinsic, sample_wide_room
from avi_ros.data.layout import HazardObject, MicPose, SceneLayout, camera_pose, make_hazard_object
from avi_ros.data.procedural import synthesize_procedural
from avi_ros.data.render import (
    FIRST_SCENERY_ID,
    HAZARD_ID,
    Box,
    RenderConfig,
    RenderResult,
    Shape,
    first_hit_distance,
    render_rgbd,
)
from avi_ros.data.scenery import far_cover, sample_far_occluders
from avi_ros.data.sensors import capsule_mismatch, limit_depth_range, reduce_resolution
from avi_ros.data.signals import synthesize_class, synthesize_varied
from avi_ros.data.sound_bank import SoundBank
from avi_ros.geometry import CameraIntrinsics, MicToCamera, direction_to_unit
from avi_ros.occlusion import direction_visibility
from avi_ros.taxonomy import MAX_HAZARDS, Action, RiskLevel, Taxonomy, Visibility, default_taxonomy

VISIBILITY_ORDER = (Visibility.VISIBLE, Visibility.OCCLUDED, Visibility.OUT_OF_VIEW)
_PLACEMENT_TRIES = 64
_RAYS_PER_DEPTH = 16  # pixels tried for one drawn depth (wide profile)
# Wide profile: least gap [m] between the camera and a hazard's bounding sphere, and the gap
# kept for a covering panel (and its thickness) in front of an occluded hazard.
_CAMERA_GAP_M = 0.3
_COVER_GAP_M = 0.6
_PEAK_LIMIT = 0.99  # the mix is scaled down when a sample would exceed this (no clipping)
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


def default_intrinsics() -> CameraIntrinsics:
    """640 x 480 pinhole with a 70 degree horizontal field of view."""
    return CameraIntrinsics.from_fov(640, 480, math.radians(70.0))


def default_extrinsic() -> MicToCamera:
    """Camera 5 cm ahead of and 10 cm above the microphone array, looking forward."""
    return MicToCamera((0.05, 0.0, 0.1), (0.0, 0.0, 0.0))


@dataclass(frozen=True)
class SceneConfig:
    """Distributions of the synthetic scenes. Lengths in metres, angles in radians, levels in dB.

    visibility_mix: target probabilities of (VISIBLE, OCCLUDED, OUT_OF_VIEW) for hazard samples.
    none_probability: share of class-0 (no hazard) samples.
    snr_db_range: point-source-to-background ratio, measured while the source sounds (acoustics.event_power).
    level_dbfs_range: RMS of the W channel of the final mix.
    sound_dir: folder of real clips (a sound-bank split or class subfolders, or an UrbanSound8K
        tree); sound_folds restricts UrbanSound8K folds.
    real_sound_probability: chance that a hazard of a class the bank has is a real clip (else procedural).
    real_background_probability: chance that the background is the bank's ambience, when it has some.
    none_sound_probability: share of class-0 scenes with a real non-hazard point source, when the
        bank has a 'none' label (the others are background only).
    wide: the wide domain-randomisation profile (``avi_ros.data.domain.WideProfile``); None keeps
        the default rooms and sensors. Its ranges replace room_size_*, absorption_range,
        wall_clearance_m, mic_height_range_m, source_distance_range_m, source_height_range_m,
        level_dbfs_range and snr_db_range.
    wide_probability: with ``wide`` set, the share of scenes drawn from the wide profile; the
        others use the default rooms and sensors (a training set that covers both conditions).
    hazard_count_weights: relative weights of 0, 1, .. len-1 simultaneous hazards per scene (at
        most MAX_HAZARDS); None keeps the single-hazard scenes (the same scenes per seed as before
        it existed). Set, it replaces none_probability (0 hazards is one of the counts), every
        hazard gets its own class, visibility, position, sound and SNR, and no unlabelled
        hazard-class second source plays (second_source_* are unused).
    onset_offset_probability: with hazard_count_weights, the chance that a hazard starts and/or
        stops inside the scene (sounding >= MIN_SOUNDING_S, ONSET_FADE_S fades).
    procedural_probability: share of hazards whose dry sound comes from the wide procedural
        families (``avi_ros.data.procedural``); the others are drawn as without it (real clips
        with real_sound_probability). 0 draws nothing extra, so scenes stay as they were.
        Training split only (``training.config.DataConfig.scene_config``).
    clip_augmentation: waveform augmentation of every real hazard clip
        (``avi_ros.data.clip_augment``; None: off). Training split only, as above.
    """

    duration_s: float = 1.0
    sample_rate: int = SAMPLE_RATE
    intrinsics: CameraIntrinsics = field(default_factory=default_intrinsics)
    extrinsic: MicToCamera = field(default_factory=default_extrinsic)
    room_size_min_m: tuple[float, float, float] = (4.0, 4.0, 2.5)
    room_size_max_m: tuple[float, float, float] = (12.0, 10.0, 4.0)
    absorption_range: tuple[float, float] = (0.05, 0.6)
    mic_height_range_m: tuple[float, float] = (0.7, 1.4)
    wall_clearance_m: float = 1.5
    source_distance_range_m: tuple[float, float] = (2.0, 7.0)
    source_height_range_m: tuple[float, float] = (0.2, 2.4)
    object_scale_range: tuple[float, float] = (0.8, 1.1)
    none_probability: float = 0.1
    visibility_mix: tuple[float, float, float] = (0.4, 0.35, 0.25)
    max_occluders: int = 3
    occluder_depth_range_m: tuple[float, float] = (0.4, 0.85)
    occluder_thickness_range_m: tuple[float, float] = (0.03, 0.12)
    occluder_width_range_m: tuple[float, float] = (0.1, 0.45)
    snr_db_range: tuple[float, float] = (0.0, 30.0)
    level_dbfs_range: tuple[float, float] = (-35.0, -15.0)
    noise_slope_range: tuple[float, float] = (0.0, 2.0)
    second_source_probability: float = 0.2
    second_source_gain_db_range: tuple[float, float] = (-12.0, 0.0)
    acoustics: AcousticsConfig = field(default_factory=AcousticsConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    sound_dir: str | None = None
    sound_folds: tuple[int, ...] | None = None
    real_sound_probability: float = 0.7
    real_background_probability: float = 0.9
    none_sound_probability: float = 0.5
    wide: WideProfile | None = None
    wide_probability: float = 1.0
    hazard_count_weights: tuple[float, ...] | None = None
    onset_offset_probability: float = 0.0
    procedural_probability: float = 0.0
    clip_augmentation: ClipAugmentConfig | None = None

    def __post_init__(self) -> None:
        for name in (
            "absorption_range",
            "mic_height_range_m",
            "source_distance_range_m",
            "source_height_range_m",
            "object_scale_range",
            "occluder_depth_range_m",
            "occluder_thickness_range_m",
            "occluder_width_range_m",
            "snr_db_range",
            "level_dbfs_range",
            "noise_slope_range",
            "second_source_gain_db_range",
        ):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"SceneConfig.{name}: lower bound {lo} exceeds upper bound {hi}")
        mix = np.asarray(self.visibility_mix, dtype=np.float64)
        if mix.shape != (3,) or (mix < 0).any() or mix.sum() <= 0:
            raise ValueError(
                f"SceneConfig.visibility_mix must be 3 non-negative weights, got {self.visibility_mix}"
            )
        for name in (
            "none_probability",
            "real_sound_probability",
            "real_background_probability",
            "none_sound_probability",
            "wide_probability",
            "procedural_probability",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SceneConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.duration_s <= 0:
            raise ValueError(f"SceneConfig.duration_s must be > 0 s, got {self.duration_s}")
        self._check_hazard_counts()
        if not 0 <= self.max_occluders <= 8:
            raise ValueError(f"SceneConfig.max_occluders must be in 0..8, got {self.max_occluders}")
        if min(self.room_size_min_m[:2]) <= 2 * self.wall_clearance_m:
            raise ValueError(
                f"SceneConfig.room_size_min_m {self.room_size_min_m} leaves no room for the "
                f"wall_clearance_m {self.wall_clearance_m} on both sides"
            )

    def _check_hazard_counts(self) -> None:
        weights = self.hazard_count_weights
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if not 1 <= w.size <= MAX_HAZARDS + 1 or (w < 0).any() or w.sum() <= 0:
                raise ValueError(
                    f"SceneConfig.hazard_count_weights must be 1..{MAX_HAZARDS + 1} non-negative "
                    f"weights (of 0, 1, .. hazards) with a positive sum, got {weights}"
                )
        if not 0.0 <= self.onset_offset_probability <= 1.0:
            raise ValueError(
                f"SceneConfig.onset_offset_probability must be in [0, 1], got {self.onset_offset_probability}"
            )
        if self.onset_offset_probability > 0 and weights is None:
            raise ValueError(
                "SceneConfig.onset_offset_probability needs hazard_count_weights (multi-hazard scenes)"
            )

    @classmethod
    def wide_profile(cls, **overrides: object) -> SceneConfig:
        """A config with the wide domain-randomisation profile (``WideProfile()``) and ``overrides``."""
        return cls(**{"wide": WideProfile(), **overrides})  # type: ignore[arg-type]

    @property
    def n_samples(self) -> int:
        return round(self.duration_s * self.sample_rate)

    def with_image_size(
        self, width: int, height: int, horizontal_fov_rad: float | None = None
    ) -> SceneConfig:
        """The same config with a camera of another resolution (same field of view unless given)."""
        hfov = self.intrinsics.horizontal_fov_rad if horizontal_fov_rad is None else horizontal_fov_rad
        return replace(self, intrinsics=CameraIntrinsics.from_fov(width, height, hfov))


@dataclass(frozen=True)
class _Ranges:
    """The placement and level ranges in force: the default profile's or the wide profile's."""

    wall_clearance_m: float
    mic_height_m: tuple[float, float]
    source_distance_m: tuple[float, float]
    source_height_m: tuple[float, float]
    level_dbfs: tuple[float, float]
    snr_db: tuple[float, float]

    @classmethod
    def of(cls, cfg: SceneConfig) -> _Ranges:
        src = cfg.wide if cfg.wide is not None else cfg
        return cls(
            src.wall_clearance_m,
            src.mic_height_range_m,
            src.source_distance_range_m,
            src.source_height_range_m,
            src.level_dbfs_range,
            src.snr_db_range,
        )


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


@lru_cache(maxsize=4)
def _cached_bank(sound_dir: str, class_names: tuple[str, ...], folds: tuple[int, ...] | None) -> SoundBank:
    return SoundBank.from_path(sound_dir, class_names, folds)


def _bank(cfg: SceneConfig, tax: Taxonomy) -> SoundBank | None:
    """The sound bank of ``cfg.sound_dir``: hazard classes, 'none' and 'background' folders."""
    if cfg.sound_dir is None:
        return None
    return _cached_bank(cfg.sound_dir, (*tax.names, BACKGROUND_LABEL), cfg.sound_folds)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _source_distance(rng: np.random.Generator, cfg: SceneConfig, reach_m: float) -> float:
    """A source distance [m]: uniform in the default profile; in the wide one log-uniform and
    no farther than ``reach_m`` (the room's farthest corner from the camera)."""
    bounds = _Ranges.of(cfg).source_distance_m
    if cfg.wide is None:
        return _uniform(rng, bounds)
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


def _sample_room_and_mic(rng: np.random.Generator, cfg: SceneConfig) -> tuple[ShoeboxRoom, MicPose]:
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
    ranges = _Ranges.of(cfg)
    clear = ranges.wall_clearance_m
    x = _uniform(rng, (clear, size[0] - clear))
    y = _uniform(rng, (clear, size[1] - clear))
    z = min(_uniform(rng, ranges.mic_height_m), size[2] - 0.5)
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
    lo, hi = _Ranges.of(cfg).source_height_m
    for _ in range(_PLACEMENT_TRIES):
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
    lo, hi = _Ranges.of(cfg).source_height_m
    margin = radius + 0.05
    low = np.array([margin, margin, max(margin, lo)])
    high = np.array([room.size_m[0] - margin, room.size_m[1] - margin, min(room.size_m[2] - margin, hi)])
    reach = _farthest_corner_m(room, cam)
    bounds = _Ranges.of(cfg).source_distance_m
    bounds = (max(bounds[0], min_depth_m), max(bounds[1], min_depth_m))
    for _ in range(_PLACEMENT_TRIES):
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
    heights = _Ranges.of(cfg).source_height_m
    reach = _farthest_corner_m(room, cam)
    for _ in range(_PLACEMENT_TRIES):
        distance = _source_distance(rng, cfg, reach)
        height = _uniform(rng, heights)
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


def _occluder_at_pixel(
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
    depth = _uniform(rng, (lo, hi))
    thickness = _uniform(rng, cfg.occluder_thickness_range_m)
    width = _uniform(rng, cfg.occluder_width_range_m)
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


def _free_point(
    rng: np.random.Generator, room: ShoeboxRoom, mic: MicPose, min_distance_m: float
) -> np.ndarray | None:
    """A random point in the room at least ``min_distance_m`` from the microphone (None if none found)."""
    for _ in range(_PLACEMENT_TRIES):
        candidate = np.array([rng.uniform(0.3, s - 0.3) for s in room.size_m])
        if np.linalg.norm(candidate - np.asarray(mic.position_m)) >= min_distance_m:
            return candidate
    return None


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
    cam, rot = camera_pose(mic, cfg.extrinsic)
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
    scenery += sample_far_occluders(
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
    return scenery, covered


def sample_geometry(rng: np.random.Generator, cfg: SceneConfig, class_name: str | None) -> SceneGeometry:
    """Room, pose, hazard object and occluders for one scene (``class_name`` None: no hazard)."""
    intr = cfg.intrinsics
    target = VISIBILITY_ORDER[int(rng.choice(3, p=np.asarray(cfg.visibility_mix) / sum(cfg.visibility_mix)))]
    hazard = None
    # A pose facing a nearby wall may leave no place for the hazard: draw a new room and pose.
    for _ in range(_PLACEMENT_TRIES):
        room, mic = _sample_room_and_mic(rng, cfg)
        if class_name is None:
            break
        scale = _uniform(rng, cfg.object_scale_range)
        radius = make_hazard_object(class_name, np.zeros(3), 0.0, scale, np.zeros(3)).half_extent_m
        if target == Visibility.OUT_OF_VIEW:
            point = _place_out_of_view(rng, cfg, room, mic, radius)
        else:
            gap = _COVER_GAP_M if target == Visibility.OCCLUDED else _CAMERA_GAP_M
            point = _place_in_view(rng, cfg, room, mic, radius, radius + gap)
        if point is not None:
            yaw = float(rng.uniform(-math.pi, math.pi))
            hazard = make_hazard_object(class_name, point, yaw, scale, rng.integers(-20, 21, 3))
            break
    if class_name is not None and hazard is None:
        raise RuntimeError(
            f"could not place a '{class_name}' hazard ({target.name}); "
            "widen the SceneConfig room or distance ranges"
        )

    scenery, covered = _far_scenery(rng, cfg, room, mic, hazard, target)
    cam, rot = camera_pose(mic, cfg.extrinsic)
    occluders: list[Box] = []
    count = int(rng.integers(0, cfg.max_occluders + 1))
    if hazard is not None and target == Visibility.OCCLUDED and not covered:
        count = max(count, 1)
        centre_optical = rot.T @ (hazard.centre_m - cam)
        (u, v), _ = intr.project(centre_optical)
        # In front of the hazard's bounding sphere, leaving room for the panel's thickness.
        limit = centre_optical[2] - hazard.half_extent_m - cfg.occluder_thickness_range_m[1]
        max_depth = None if cfg.wide is None else max(limit, 0.1)
        occluders.append(_occluder_at_pixel(rng, cfg, mic, u, v, True, room.size_m[2], max_depth))
    while len(occluders) < count:
        u, v = rng.uniform(0, intr.width), rng.uniform(0, intr.height)
        box = _occluder_at_pixel(rng, cfg, mic, u, v, False, room.size_m[2])
        if hazard is not None and target == Visibility.VISIBLE:
            to_hazard = hazard.centre_m - cam
            if first_hit_distance([box], cam, to_hazard) < 1.0:  # would hide the hazard's centre
                count -= 1
                continue
        occluders.append(box)

    second_point, second_class = None, None
    if class_name is not None and rng.uniform() < cfg.second_source_probability:
        names = [n for n in default_taxonomy().names[1:] if n != class_name]
        second_class = names[int(rng.integers(len(names)))]
        second_point = _free_point(rng, room, mic, _Ranges.of(cfg).source_distance_m[0])
        if second_point is None:
            second_class = None
    layout = SceneLayout(room, occluders, [hazard] if hazard is not None else [], scenery=scenery)
    return SceneGeometry(layout, mic, hazard, second_point, second_class)


def _dry_signal(
    class_name: str, rng: np.random.Generator, cfg: SceneConfig, bank: SoundBank | None
) -> np.ndarray:
    """A wide procedural clip (with ``procedural_probability``), else a real clip of the class
    (with ``real_sound_probability``, if the bank has one; augmented with ``clip_augmentation``)
    or the class's procedural model."""
    if cfg.procedural_probability > 0 and rng.uniform() < cfg.procedural_probability:
        return synthesize_procedural(class_name, rng, cfg.n_samples, cfg.sample_rate)
    if bank is not None and bank.has(class_name) and rng.uniform() < cfg.real_sound_probability:
        clip = bank.draw(class_name, rng, cfg.n_samples)
        if cfg.clip_augmentation is None:
            return clip
        partner = partial(bank.draw, class_name, rng, cfg.n_samples)
        return augment_clip(clip, cfg.sample_rate, rng, cfg.clip_augmentation, partner)
    if cfg.wide is not None and cfg.wide.signal_variation:
        return synthesize_varied(class_name, rng, cfg.n_samples, cfg.sample_rate)
    return synthesize_class(class_name, rng, cfg.n_samples, cfg.sample_rate)


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


def _scene_camera(rng: np.random.Generator, cfg: SceneConfig) -> SceneConfig:
    """``cfg`` with this scene's camera mount: tilted and rolled in the wide profile, nominal otherwise."""
    if cfg.wide is None:
        return cfg
    return replace(cfg, extrinsic=perturbed_extrinsic(rng, cfg.extrinsic, cfg.wide))


def _render_view(rng: np.random.Generator, cfg: SceneConfig, geometry: SceneGeometry) -> RenderResult:
    """The exact render of the scene, then (wide profile) a lower effective resolution and a depth range."""
    view = geometry.layout.render(
        geometry.mic, cfg.intrinsics, cfg.extrinsic, rng, cfg.render, 0 if geometry.hazard else None
    )
    return _sensor_limits(rng, cfg, view)


def _sensor_limits(rng: np.random.Generator, cfg: SceneConfig, view: RenderResult) -> RenderResult:
    """``view`` as the wide profile's camera sees it (lower resolution, depth range); as is otherwise."""
    if cfg.wide is None:
        return view
    rgb, depth = reduce_resolution(view.rgb, view.depth_m, _uniform(rng, cfg.wide.resolution_scale_range))
    depth = limit_depth_range(depth, _uniform(rng, cfg.wide.max_depth_range_m))
    return replace(view, rgb=rgb, depth_m=depth)


def _acoustics(cfg: SceneConfig) -> AcousticsConfig:
    if cfg.wide is None:
        return cfg.acoustics
    return replace(cfg.acoustics, max_rir_s=max(cfg.acoustics.max_rir_s, cfg.wide.max_rir_s))


@dataclass
class _Foreground:
    """The scene's main point source (hazard or non-hazard sound) as heard, with its label."""

    wet: np.ndarray | None  # FOA [4, N]; None for background-only scenes
    content: SceneContent
    azimuth: float = 0.0
    elevation: float = 0.0
    distance: float = 0.0
    visibility: Visibility = Visibility.OUT_OF_VIEW
    activity: np.ndarray | None = None


def _foreground(
    rng: np.random.Generator,
    cfg: SceneConfig,
    geometry: SceneGeometry,
    view: RenderResult,
    class_name: str,
    bank: SoundBank | None,
) -> _Foreground:
    """Render the hazard, or for class 0 maybe a real non-hazard sound, through the room."""
    layout, mic, n = geometry.layout, geometry.mic, cfg.n_samples
    acoustics = _acoustics(cfg)
    if geometry.hazard is not None:
        label = layout.label(mic, geometry.hazard.centre_m)
        visibility = visibility_from_render(
            mic.to_mic(geometry.hazard.centre_m), view.object_ids, cfg.intrinsics, cfg.extrinsic
        )
        dry = _dry_signal(class_name, rng, cfg, bank)
        wet = layout.render_audio(dry, [mic], geometry.hazard.centre_m, n, acoustics, rng)
        return _Foreground(
            wet,
            SceneContent.HAZARD,
            label.azimuth,
            label.elevation,
            label.distance,
            visibility,
            frame_activity(dry, cfg.sample_rate),
        )
    none_label = default_taxonomy().names[0]
    if bank is None or not bank.has(none_label) or rng.uniform() >= cfg.none_sound_probability:
        return _Foreground(None, SceneContent.BACKGROUND_ONLY)
    geometry.none_source_m = _free_point(rng, layout.room, mic, _Ranges.of(cfg).source_distance_m[0])
    if geometry.none_source_m is None:
        return _Foreground(None, SceneContent.BACKGROUND_ONLY)
    dry = bank.draw(none_label, rng, n)
    wet = layout.render_audio(dry, [mic], geometry.none_source_m, n, acoustics, rng)
    return _Foreground(wet, SceneContent.NON_HAZARD_SOUND)


def _mix_second_source(
    rng: np.random.Generator,
    cfg: SceneConfig,
    geometry: SceneGeometry,
    view: RenderResult,
    reference: np.ndarray,
    bank: SoundBank | None,
    tax: Taxonomy,
) -> tuple[np.ndarray | None, SecondSource | None]:
    """The second (audio-only) hazard's FOA at a level relative to ``reference`` [4, N], and its label."""
    if geometry.second_class is None or geometry.second_source_m is None:
        return None, None
    fs = cfg.sample_rate
    dry = _dry_signal(geometry.second_class, rng, cfg, bank)
    wet = geometry.layout.render_audio(
        dry, [geometry.mic], geometry.second_source_m, cfg.n_samples, _acoustics(cfg), rng
    )
    gain_db = _uniform(rng, cfg.second_source_gain_db_range)
    scale = math.sqrt(event_power(reference[0], fs) / max(event_power(wet[0], fs), 1e-20))
    label = geometry.layout.label(geometry.mic, geometry.second_source_m)
    visibility = direction_visibility(
        direction_to_unit(label.azimuth, label.elevation),
        label.distance,
        view.exact_depth_m,
        cfg.intrinsics,
        cfg.extrinsic,
    )
    second = SecondSource(
        tax.class_id(geometry.second_class),
        label.azimuth,
        label.elevation,
        label.distance,
        visibility,
        tuple(float(a) for a in frame_activity(dry, fs)),
    )
    return wet * scale * 10.0 ** (gain_db / 20.0), second


def _normalise_level(rng: np.random.Generator, cfg: SceneConfig, mix: np.ndarray) -> np.ndarray:
    """The mix at a W level drawn from the level range, with the wide profile's capsule errors,
    scaled down if needed so no sample exceeds _PEAK_LIMIT."""
    level = 10.0 ** (_uniform(rng, _Ranges.of(cfg).level_dbfs) / 20.0)
    mix = mix * (level / max(float(mix[0].std()), 1e-12))
    if cfg.wide is not None:
        wide = cfg.wide
        noise_dbfs = _uniform(rng, wide.self_noise_dbfs_range)
        mix = capsule_mismatch(
            mix, rng, cfg.sample_rate, wide.capsule_gain_db, wide.capsule_delay_s, noise_dbfs
        )
    peak = float(np.abs(mix).max())
    if peak > _PEAK_LIMIT:
        mix *= _PEAK_LIMIT / peak
    return mix


def generate_scene_and_geometry(
    seed: int, config: SceneConfig | None = None, taxonomy: Taxonomy | None = None
) -> tuple[Sample, SceneGeometry]:
    """One synthetic scene and the world behind it, fully determined by ``seed`` and ``config``.

    The steps draw from one generator in a fixed order, so reordering them changes every scene.
    With ``hazard_count_weights`` the scene holds a set of hazards (``_generate_hazard_set``).
    """
    tax = taxonomy or default_taxonomy()
    rng = np.random.default_rng(seed)
    cfg = _scene_profile(rng, config or SceneConfig())
    bank = _bank(cfg, tax)
    if cfg.hazard_count_weights is not None:
        return _generate_hazard_set(seed, rng, cfg, tax, bank)
    class_id = _draw_class(rng, cfg, tax)
    class_name = tax.names[class_id]
    scene_cfg = _scene_camera(rng, cfg)
    geometry = sample_geometry(rng, scene_cfg, None if class_id == 0 else class_name)
    view = _render_view(rng, scene_cfg, geometry)
    background, _ = draw_background(
        rng, cfg.n_samples, cfg.sample_rate, cfg.noise_slope_range, bank, cfg.real_background_probability
    )
    fore = _foreground(rng, scene_cfg, geometry, view, class_name, bank)
    mix, snr_db = _mix_foreground(rng, cfg, fore, background)
    second_wet, second = _mix_second_source(
        rng, scene_cfg, geometry, view, background if fore.wet is None else fore.wet, bank, tax
    )
    if second_wet is not None:
        mix = mix + second_wet
    mix = _normalise_level(rng, cfg, mix)
    sample = _labelled_sample(seed, scene_cfg, tax, class_id, geometry, view, fore, mix, snr_db, second)
    return sample, geometry


def _scene_profile(rng: np.random.Generator, cfg: SceneConfig) -> SceneConfig:
    """``cfg``, or for a share ``1 - wide_probability`` of the scenes, ``cfg`` in the default rooms.

    One generator can so cover both conditions. Draws only with ``wide`` set and ``wide_probability < 1``.
    """
    if cfg.wide is not None and cfg.wide_probability < 1.0 and rng.uniform() >= cfg.wide_probability:
        return replace(cfg, wide=None)
    return cfg


def _draw_class(rng: np.random.Generator, cfg: SceneConfig, tax: Taxonomy) -> int:
    """Class 0 (no hazard) with ``none_probability``, else a uniformly drawn hazard class."""
    if rng.uniform() < cfg.none_probability:
        return 0
    return int(rng.integers(1, tax.num_classes))


def _mix_foreground(
    rng: np.random.Generator, cfg: SceneConfig, fore: _Foreground, background: np.ndarray
) -> tuple[np.ndarray, float]:
    """The foreground over the background at an SNR drawn from the range [dB] (NaN: background only)."""
    if fore.wet is None:
        return background, float("nan")
    snr_db = _uniform(rng, _Ranges.of(cfg).snr_db)
    return fore.wet + scale_to_snr(fore.wet[0], background, snr_db, cfg.sample_rate), snr_db


def _labelled_sample(
    seed: int,
    cfg: SceneConfig,
    tax: Taxonomy,
    class_id: int,
    geometry: SceneGeometry,
    view: RenderResult,
    fore: _Foreground,
    mix: np.ndarray,
    snr_db: float,
    second: SecondSource | None,
) -> Sample:
    """The Sample of the mixed audio, the view and their labels (``cfg`` carries the scene's camera)."""
    risk = tax.risk_level(class_id, fore.distance)
    activity = fore.activity if fore.activity is not None else np.zeros(_label_frames(cfg), np.float32)
    hazards = []
    if geometry.hazard is not None:
        occlusion = hazard_occlusion(
            geometry.hazard, view.hazard_mask, geometry.mic, cfg.intrinsics, cfg.extrinsic, fore.visibility
        )
        hazards.append(
            HazardLabel(
                class_id,
                fore.azimuth,
                fore.elevation,
                fore.distance,
                fore.visibility,
                occlusion,
                activity,
                risk,
                tax.recommended_action(risk, fore.azimuth),
            )
        )
    return Sample(
        seed=seed,
        audio=mix.astype(np.float32),
        sample_rate=cfg.sample_rate,
        rgb=view.rgb,
        depth_m=view.depth_m,
        occluder_mask=view.occluder_mask,
        hazard_mask=view.hazard_mask,
        occlusion_level=view.occlusion_level,
        visibility=fore.visibility,
        class_id=class_id,
        class_name=tax.names[class_id],
        azimuth=fore.azimuth,
        elevation=fore.elevation,
        distance=fore.distance,
        risk=risk,
        action=tax.recommended_action(risk, fore.azimuth),
        intrinsics=cfg.intrinsics,
        extrinsic=cfg.extrinsic,
        snr_db=snr_db,
        second=second,
        rt60_s=geometry.layout.room.rt60_s(),
        content=fore.content,
        activity=activity,
        hazards=hazards,
    )


def _label_frames(cfg: SceneConfig) -> int:
    return frame_activity(np.zeros(cfg.n_samples), cfg.sample_rate).size


def generate_scene(seed: int, config: SceneConfig | None = None, taxonomy: Taxonomy | None = None) -> Sample:
    """One synthetic scene, fully determined by ``seed`` and ``config``."""
    return generate_scene_and_geometry(seed, config, taxonomy)[0]


# --- Scenes with a set of hazards (SceneConfig.hazard_count_weights) --------------------------

MIN_SOUNDING_S = 0.3  # a hazard that starts or stops inside the scene still sounds this long [s]
ONSET_FADE_S = 0.01  # fade in / out at such an onset or offset [s]
_SILENT_FRAMES = 2  # least silence [label frames] at a drawn onset or offset, so the labels show it
_COVER_TRIES = 8  # covering panels tried before an occluded hazard is left to chance
_GATE_TRIES = 8  # onset / offset gates tried before a hazard plays as drawn


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


def _blocks(shapes: list[Shape], cam: np.ndarray, point: np.ndarray) -> bool:
    """Whether one of ``shapes`` stands on the line of sight from ``cam`` to ``point``."""
    return bool(shapes) and first_hit_distance(shapes, cam, np.asarray(point) - cam) < 1.0


def _place_hazard(
    rng: np.random.Generator,
    cfg: SceneConfig,
    room: ShoeboxRoom,
    mic: MicPose,
    class_name: str,
    target: Visibility,
    placed: list[tuple[HazardObject, Visibility]],
) -> HazardObject | None:
    """One hazard of ``target`` visibility, clear of the hazards already ``placed`` and not hiding
    (nor hidden by, when visible) any of them; None when no try succeeds."""
    cam, _ = camera_pose(mic, cfg.extrinsic)
    for _ in range(_PLACEMENT_TRIES):
        scale = _uniform(rng, cfg.object_scale_range)
        radius = make_hazard_object(class_name, np.zeros(3), 0.0, scale, np.zeros(3)).half_extent_m
        if target == Visibility.OUT_OF_VIEW:
            point = _place_out_of_view(rng, cfg, room, mic, radius)
        else:
            gap = _COVER_GAP_M if target == Visibility.OCCLUDED else _CAMERA_GAP_M
            point = _place_in_view(rng, cfg, room, mic, radius, radius + gap)
        if point is None:
            continue
        yaw = float(rng.uniform(-math.pi, math.pi))
        hazard = make_hazard_object(class_name, point, yaw, scale, rng.integers(-20, 21, 3))
        others = [h for h, _ in placed]
        if any(np.linalg.norm(h.centre_m - point) < h.half_extent_m + radius + 0.1 for h in others):
            continue
        if target == Visibility.VISIBLE and _blocks([h.shape for h in others], cam, point):
            continue
        if any(t == Visibility.VISIBLE and _blocks([hazard.shape], cam, h.centre_m) for h, t in placed):
            continue
        return hazard
    return None


def _near_cover(
    rng: np.random.Generator, cfg: SceneConfig, mic: MicPose, hazard: HazardObject, ceiling_m: float
) -> Box:
    """A near panel on the line of sight to the hazard's centre (as ``sample_geometry`` places one)."""
    cam, rot = camera_pose(mic, cfg.extrinsic)
    centre_optical = rot.T @ (hazard.centre_m - cam)
    (u, v), _ = cfg.intrinsics.project(centre_optical)
    limit = centre_optical[2] - hazard.half_extent_m - cfg.occluder_thickness_range_m[1]
    max_depth = None if cfg.wide is None else max(limit, 0.1)
    return _occluder_at_pixel(rng, cfg, mic, u, v, True, ceiling_m, max_depth)


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
    cam, rot = camera_pose(mic, cfg.extrinsic)
    clear = [(np.asarray(mic.position_m), 1.0)] + [(h.centre_m, h.half_extent_m + 0.1) for h in hazards]
    visible = [h.centre_m for h, t in zip(hazards, targets, strict=True) if t == Visibility.VISIBLE]
    scenery: list[Shape] = []
    for k, (hazard, target) in enumerate(zip(hazards, targets, strict=True)):
        if target != Visibility.OCCLUDED or rng.uniform() >= wide.far_cover_probability:
            continue
        cover = far_cover(
            rng, room, cam, hazard.centre_m, hazard.half_extent_m, wide.far_occluder_distance_range_m, clear
        )
        if cover is not None and not any(_blocks([cover], cam, p) for p in visible):
            scenery.append(cover)
            covered[k] = True
    far = sample_far_occluders(
        rng,
        room,
        cam,
        math.atan2(rot[1, 2], rot[0, 2]),
        cfg.intrinsics.horizontal_fov_rad / 2.0,
        int(rng.integers(0, wide.max_far_occluders + 1)),
        wide.far_occluder_distance_range_m,
        clear,
    )
    scenery += [shape for shape in far if not any(_blocks([shape], cam, p) for p in visible)]
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
    mix = np.asarray(cfg.visibility_mix) / sum(cfg.visibility_mix)
    targets = [VISIBILITY_ORDER[int(rng.choice(3, p=mix))] for _ in class_names]
    for _ in range(_PLACEMENT_TRIES):
        room, mic = _sample_room_and_mic(rng, cfg)
        placed: list[tuple[HazardObject, Visibility]] = []
        for name, target in zip(class_names, targets, strict=True):
            hazard = _place_hazard(rng, cfg, room, mic, name, target, placed)
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
    cam, _ = camera_pose(mic, cfg.extrinsic)
    visible = [h.centre_m for h, t in placed if t == Visibility.VISIBLE]
    scenery, covered = _hazard_set_scenery(rng, cfg, room, mic, hazards, targets)
    occluders: list[Box] = []
    for hazard, target, far in zip(hazards, targets, covered, strict=True):
        if target != Visibility.OCCLUDED or far:
            continue
        for _ in range(_COVER_TRIES):
            box = _near_cover(rng, cfg, mic, hazard, room.size_m[2])
            if not any(_blocks([box], cam, p) for p in visible):
                occluders.append(box)
                break
    count = int(rng.integers(0, cfg.max_occluders + 1))
    for _ in range(max(count - len(occluders), 0)):
        u, v = rng.uniform(0, cfg.intrinsics.width), rng.uniform(0, cfg.intrinsics.height)
        box = _occluder_at_pixel(rng, cfg, mic, u, v, False, room.size_m[2])
        if not any(_blocks([box], cam, p) for p in visible):
            occluders.append(box)
    layout = SceneLayout(room, occluders, hazards, scenery=scenery)
    return SceneGeometry(layout, mic, hazards[0] if hazards else None, None, None), targets


def _render_hazard_set(
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


def _onset_offset(rng: np.random.Generator, cfg: SceneConfig, dry: np.ndarray) -> np.ndarray:
    """``dry`` [N], with ``onset_offset_probability`` gated to start and/or stop inside the scene.

    The gate is open for at least MIN_SOUNDING_S, closed for at least _SILENT_FRAMES label
    frames before an onset / after an offset, with ONSET_FADE_S raised-cosine fades (no clicks).
    A gate must keep at least MIN_SOUNDING_S of the clip's own sounding frames (all of them for
    a shorter sound, such as a 0.2 s horn), so the hazard stays audible; after _GATE_TRIES gates
    that do not, the clip plays as drawn."""
    duration, gap = cfg.duration_s, _SILENT_FRAMES * LABEL_FRAME_S
    if cfg.onset_offset_probability <= 0 or duration < MIN_SOUNDING_S + gap:
        return dry
    if rng.uniform() >= cfg.onset_offset_probability:
        return dry
    sounding = frame_activity(dry, cfg.sample_rate)
    needed = min(round(MIN_SOUNDING_S / LABEL_FRAME_S), int(sounding.sum()))
    for _ in range(_GATE_TRIES):
        gate = _draw_gate(rng, cfg, dry.size)
        if (sounding * frame_activity(gate, cfg.sample_rate)).sum() >= max(needed, 1):
            return dry * gate
    return dry


def _draw_gate(rng: np.random.Generator, cfg: SceneConfig, n: int) -> np.ndarray:
    """A gain [n] in [0, 1]: an onset, an offset or both inside the scene (see ``_onset_offset``)."""
    duration, gap = cfg.duration_s, _SILENT_FRAMES * LABEL_FRAME_S
    kind = int(rng.integers(3))  # 0: onset, 1: offset, 2: both
    if kind == 2 and duration < MIN_SOUNDING_S + 2 * gap:
        kind = 0
    length = _uniform(rng, (MIN_SOUNDING_S, duration - gap * (2 if kind == 2 else 1)))
    if kind == 0:
        start = duration - length
    elif kind == 1:
        start = 0.0
    else:
        start = _uniform(rng, (gap, duration - length - gap))
    fs = cfg.sample_rate
    first, last = round(start * fs), min(round((start + length) * fs), n)
    fade = min(max(1, round(ONSET_FADE_S * fs)), (last - first) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
    gate = np.zeros(n)
    gate[first:last] = 1.0
    if first > 0:
        gate[first : first + fade] = ramp
    if last < n:
        gate[last - fade : last] = ramp[::-1]
    return gate


def _none_source(
    rng: np.random.Generator, cfg: SceneConfig, geometry: SceneGeometry, bank: SoundBank | None
) -> np.ndarray | None:
    """With ``none_sound_probability``, a real non-hazard sound (bank label 'none') as heard [4, N]."""
    none_label = default_taxonomy().names[0]
    if bank is None or not bank.has(none_label) or rng.uniform() >= cfg.none_sound_probability:
        return None
    layout, mic = geometry.layout, geometry.mic
    geometry.none_source_m = _free_point(rng, layout.room, mic, _Ranges.of(cfg).source_distance_m[0])
    if geometry.none_source_m is None:
        return None
    dry = bank.draw(none_label, rng, cfg.n_samples)
    return layout.render_audio(dry, [mic], geometry.none_source_m, cfg.n_samples, _acoustics(cfg), rng)


def _mix_sources(
    background: np.ndarray, sources: list[tuple[np.ndarray, float]], sample_rate: int
) -> np.ndarray:
    """Point sources [4, N] over the background, each at its own SNR [dB] (as ``_mix_foreground``:
    the background is scaled to the first source, the others to the background)."""
    if not sources:
        return background
    first, snr_db = sources[0]
    noise = scale_to_snr(first[0], background, snr_db, sample_rate)
    noise_power = float(np.var(noise[0].astype(np.float64)))
    mix = first + noise
    for wet, snr_db in sources[1:]:
        power = max(event_power(wet[0], sample_rate), 1e-20)
        mix = mix + wet * math.sqrt(noise_power * 10.0 ** (snr_db / 10.0) / power)
    return mix


def _generate_hazard_set(
    seed: int, rng: np.random.Generator, cfg: SceneConfig, tax: Taxonomy, bank: SoundBank | None
) -> tuple[Sample, SceneGeometry]:
    """The multi-hazard branch of ``generate_scene_and_geometry`` (fixed draw order, as there)."""
    weights = np.asarray(cfg.hazard_count_weights, dtype=np.float64)
    count = int(rng.choice(weights.size, p=weights / weights.sum()))
    class_ids = [int(rng.integers(1, tax.num_classes)) for _ in range(count)]
    scene_cfg = _scene_camera(rng, cfg)
    geometry, _ = sample_hazard_set_geometry(rng, scene_cfg, [tax.names[c] for c in class_ids])
    view, seen = _render_hazard_set(rng, scene_cfg, geometry)
    background, _ = draw_background(
        rng, cfg.n_samples, cfg.sample_rate, cfg.noise_slope_range, bank, cfg.real_background_probability
    )
    layout, mic, acoustics = geometry.layout, geometry.mic, _acoustics(scene_cfg)
    sources: list[tuple[np.ndarray, float]] = []
    labels: list[HazardLabel] = []
    for class_id, hazard, seen_mask in zip(class_ids, layout.hazards, seen, strict=True):
        dry = _onset_offset(rng, scene_cfg, _dry_signal(hazard.class_name, rng, scene_cfg, bank))
        wet = layout.render_audio(dry, [mic], hazard.centre_m, cfg.n_samples, acoustics, rng)
        sources.append((wet, _uniform(rng, _Ranges.of(cfg).snr_db)))
        label = layout.label(mic, hazard.centre_m)
        visibility = _visibility_of(mic.to_mic(hazard.centre_m), seen_mask, scene_cfg)
        occlusion = hazard_occlusion(
            hazard, seen_mask, mic, scene_cfg.intrinsics, scene_cfg.extrinsic, visibility
        )
        risk = tax.risk_level(class_id, label.distance)
        labels.append(
            HazardLabel(
                class_id,
                label.azimuth,
                label.elevation,
                label.distance,
                visibility,
                occlusion,
                frame_activity(dry, cfg.sample_rate),
                risk,
                tax.recommended_action(risk, label.azimuth),
            )
        )
    distractor = _none_source(rng, scene_cfg, geometry, bank)
    if distractor is not None:
        sources.append((distractor, _uniform(rng, _Ranges.of(cfg).snr_db)))
    mix = _normalise_level(rng, cfg, _mix_sources(background, sources, cfg.sample_rate))
    if labels:
        content = SceneContent.HAZARD
    else:
        content = SceneContent.BACKGROUND_ONLY if distractor is None else SceneContent.NON_HAZARD_SOUND
    snr_db = sources[0][1] if sources else float("nan")
    return _hazard_set_sample(seed, scene_cfg, tax, geometry, view, labels, mix, snr_db, content), geometry


def _visibility_of(centre_mic: np.ndarray, seen_mask: np.ndarray, cfg: SceneConfig) -> Visibility:
    """``visibility_from_render`` with a hazard's own pixel mask (the centre pixel shows it or not)."""
    return visibility_from_render(centre_mic, seen_mask.astype(np.int16), cfg.intrinsics, cfg.extrinsic, 1)


def _hazard_set_sample(
    seed: int,
    cfg: SceneConfig,
    tax: Taxonomy,
    geometry: SceneGeometry,
    view: RenderResult,
    hazards: list[HazardLabel],
    mix: np.ndarray,
    snr_db: float,
    content: SceneContent,
) -> Sample:
    """The Sample of a hazard set; its single-hazard fields are the first hazard's (class 0 if none)."""
    if hazards:
        first = hazards[0]
    else:
        risk = tax.risk_level(0, 0.0)
        silent = np.zeros(_label_frames(cfg), np.float32)
        first = HazardLabel(
            0,
            0.0,
            0.0,
            0.0,
            Visibility.OUT_OF_VIEW,
            float("nan"),
            silent,
            risk,
            tax.recommended_action(risk, 0.0),
        )
    return Sample(
        seed=seed,
        audio=mix.astype(np.float32),
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
        rt60_s=geometry.layout.room.rt60_s(),
        content=content,
        activity=first.activity,
        hazards=hazards,
    )
