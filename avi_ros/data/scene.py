"""Random occluded-hazard scenes: FOA audio + RGB-D + exact labels, reproducible from a seed.

``generate_scene(seed, config)`` samples a room, a robot pose, a hazard (class, position,
look), 0-3 occluder boxes and the sensor imperfections, then renders the camera view and
the FOA room acoustics of the same geometry. The same seed always gives the same sample.

Geometric guarantees that the occlusion code relies on (with the default config):
occluders are upright boxes facing the camera whose every visible surface lies closer than
``occluder_depth_range_m[1] + occluder_thickness_range_m[1]`` (< 1 m), while walls, floor,
ceiling and hazards stay farther (camera >= 0.8 m above the floor and >= 1.5 m from walls,
hazards >= 2 m away in optical depth). So the near-obstacle mask of ``avi_ros.occlusion``
with ``near_range_m = 1`` should recover the occluder mask.

Labels are in the microphone frame (REP-103): azimuth, elevation [rad], distance [m] of the
hazard's centre (its acoustic source). Class 0 ('none') samples hold background noise only;
their direction fields are 0 and their visibility is OUT_OF_VIEW (no hazard to see).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.acoustics import AcousticsConfig, ShoeboxRoom, diffuse_noise, event_power
from avi_ros.data.layout import HazardObject, MicPose, SceneLayout, camera_pose, make_hazard_object
from avi_ros.data.render import HAZARD_ID, Box, RenderConfig, first_hit_distance
from avi_ros.data.signals import synthesize_class
from avi_ros.data.sound_bank import SoundBank
from avi_ros.geometry import CameraIntrinsics, MicToCamera, direction_to_unit
from avi_ros.occlusion import direction_visibility
from avi_ros.taxonomy import Action, RiskLevel, Taxonomy, Visibility, default_taxonomy

VISIBILITY_ORDER = (Visibility.VISIBLE, Visibility.OCCLUDED, Visibility.OUT_OF_VIEW)
_PLACEMENT_TRIES = 64


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
    none_probability: share of class-0 (background only) samples.
    snr_db_range: hazard-to-background ratio, measured while the hazard sounds (acoustics.event_power).
    level_dbfs_range: RMS of the W channel of the final mix.
    sound_dir: folder of real clips (class subfolders or an UrbanSound8K tree) used instead of
        the procedural signals for the classes it has; sound_folds restricts UrbanSound8K folds.
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
        if not 0.0 <= self.none_probability <= 1.0:
            raise ValueError(f"SceneConfig.none_probability must be in [0, 1], got {self.none_probability}")
        if self.duration_s <= 0:
            raise ValueError(f"SceneConfig.duration_s must be > 0 s, got {self.duration_s}")
        if not 0 <= self.max_occluders <= 8:
            raise ValueError(f"SceneConfig.max_occluders must be in 0..8, got {self.max_occluders}")
        if min(self.room_size_min_m[:2]) <= 2 * self.wall_clearance_m:
            raise ValueError(
                f"SceneConfig.room_size_min_m {self.room_size_min_m} leaves no room for the "
                f"wall_clearance_m {self.wall_clearance_m} on both sides"
            )

    @property
    def n_samples(self) -> int:
        return round(self.duration_s * self.sample_rate)

    def with_image_size(
        self, width: int, height: int, horizontal_fov_rad: float | None = None
    ) -> SceneConfig:
        """The same config with a camera of another resolution (same field of view unless given)."""
        hfov = horizontal_fov_rad
        if hfov is None:
            hfov = 2.0 * math.atan(self.intrinsics.width / 2.0 / self.intrinsics.fx)
        return replace(self, intrinsics=CameraIntrinsics.from_fov(width, height, hfov))


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


@dataclass
class Sample:
    """One synthetic scene.

    audio: float32 [4, N], ACN/SN3D at ``sample_rate`` Hz. rgb: uint8 [H, W, 3].
    depth_m: float32 [H, W] metres with sensor noise and dropouts (0 = no reading).
    occluder_mask / hazard_mask: bool [H, W], exact. occlusion_level: occluder pixel fraction.
    azimuth, elevation [rad], distance [m]: hazard centre in the microphone frame (REP-103).
    snr_db: NaN for class 0.
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

    @property
    def direction(self) -> np.ndarray:
        """Unit vector [3] of the hazard in the microphone frame (zeros for class 0)."""
        if self.class_id == 0:
            return np.zeros(3)
        return direction_to_unit(self.azimuth, self.elevation)


@dataclass
class SceneGeometry:
    """The sampled world and pose behind a Sample (for inspection and for moving scenarios)."""

    layout: SceneLayout
    mic: MicPose
    hazard: HazardObject | None
    second_source_m: np.ndarray | None
    second_class: str | None


@lru_cache(maxsize=4)
def _cached_bank(sound_dir: str, class_names: tuple[str, ...], folds: tuple[int, ...] | None) -> SoundBank:
    return SoundBank.from_path(sound_dir, class_names, folds)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _horizontal_fov(intrinsics: CameraIntrinsics) -> float:
    return 2.0 * math.atan(intrinsics.width / 2.0 / intrinsics.fx)


def _sample_room_and_mic(rng: np.random.Generator, cfg: SceneConfig) -> tuple[ShoeboxRoom, MicPose]:
    size = tuple(
        float(rng.uniform(lo, hi)) for lo, hi in zip(cfg.room_size_min_m, cfg.room_size_max_m, strict=True)
    )
    absorption = tuple(float(a) for a in rng.uniform(*cfg.absorption_range, size=6))
    room = ShoeboxRoom(size, absorption)  # type: ignore[arg-type]
    clear = cfg.wall_clearance_m
    x = _uniform(rng, (clear, size[0] - clear))
    y = _uniform(rng, (clear, size[1] - clear))
    z = min(_uniform(rng, cfg.mic_height_range_m), size[2] - 0.5)
    return room, MicPose((x, y, z), float(rng.uniform(-math.pi, math.pi)))


def _place_in_view(
    rng: np.random.Generator, cfg: SceneConfig, room: ShoeboxRoom, mic: MicPose, radius: float
) -> np.ndarray | None:
    """A world point seen by the camera, well inside the image, at an optical depth in the distance range."""
    intr = cfg.intrinsics
    cam, rot = camera_pose(mic, cfg.extrinsic)
    for _ in range(_PLACEMENT_TRIES):
        u = rng.uniform(0.15, 0.85) * intr.width
        v = rng.uniform(0.15, 0.85) * intr.height
        depth = _uniform(rng, cfg.source_distance_range_m)
        ray = np.array([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, 1.0])
        point = cam + rot @ (ray * depth)
        lo, hi = cfg.source_height_range_m
        if lo <= point[2] <= hi and room.contains(point, radius + 0.05):
            return point
    return None


def _place_out_of_view(
    rng: np.random.Generator, cfg: SceneConfig, room: ShoeboxRoom, mic: MicPose, radius: float
) -> np.ndarray | None:
    """A world point whose whole object lies outside the horizontal field of view."""
    cam, rot = camera_pose(mic, cfg.extrinsic)
    heading = math.atan2(rot[1, 2], rot[0, 2])
    half_fov = _horizontal_fov(cfg.intrinsics) / 2.0
    for _ in range(_PLACEMENT_TRIES):
        distance = _uniform(rng, cfg.source_distance_range_m)
        height = _uniform(rng, cfg.source_height_range_m)
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
        if room.contains(point, radius + 0.05):
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
) -> Box:
    """An upright box facing the camera whose front face meets the ray of pixel (u, v).

    With ``cover`` the box is shifted sideways by less than half its width and rises above the
    ray, so that pixel is surely hidden; otherwise its height is random.
    """
    intr = cfg.intrinsics
    cam, rot = camera_pose(mic, cfg.extrinsic)
    forward = rot[:, 2].copy()
    forward[2] = 0.0
    forward /= np.linalg.norm(forward)
    right = np.array([forward[1], -forward[0], 0.0])
    depth = _uniform(rng, cfg.occluder_depth_range_m)
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
        place = _place_out_of_view if target == Visibility.OUT_OF_VIEW else _place_in_view
        point = place(rng, cfg, room, mic, radius)
        if point is not None:
            yaw = float(rng.uniform(-math.pi, math.pi))
            hazard = make_hazard_object(class_name, point, yaw, scale, rng.integers(-20, 21, 3))
            break
    if class_name is not None and hazard is None:
        raise RuntimeError(
            f"could not place a '{class_name}' hazard ({target.name}); "
            "widen the SceneConfig room or distance ranges"
        )

    cam, rot = camera_pose(mic, cfg.extrinsic)
    occluders: list[Box] = []
    count = int(rng.integers(0, cfg.max_occluders + 1))
    if hazard is not None and target == Visibility.OCCLUDED:
        count = max(count, 1)
        (u, v), _ = intr.project(rot.T @ (hazard.centre_m - cam))
        occluders.append(_occluder_at_pixel(rng, cfg, mic, u, v, True, room.size_m[2]))
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
        for _ in range(_PLACEMENT_TRIES):
            candidate = np.array([rng.uniform(0.3, s - 0.3) for s in room.size_m])
            if np.linalg.norm(candidate - np.asarray(mic.position_m)) >= cfg.source_distance_range_m[0]:
                second_point = candidate
                break
        if second_point is None:
            second_class = None
    layout = SceneLayout(room, occluders, [hazard] if hazard is not None else [])
    return SceneGeometry(layout, mic, hazard, second_point, second_class)


def _dry_signal(
    class_name: str, rng: np.random.Generator, cfg: SceneConfig, bank: SoundBank | None
) -> np.ndarray:
    if bank is not None and bank.has(class_name):
        return bank.draw(class_name, rng, cfg.n_samples)
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


def _visibility_from_render(
    centre_mic: np.ndarray, ids: np.ndarray, hazard_id: int, cfg: SceneConfig
) -> Visibility:
    """``visibility_from_render`` with the camera of ``cfg`` (kept for avi_ros.bag.scenario)."""
    return visibility_from_render(centre_mic, ids, cfg.intrinsics, cfg.extrinsic, hazard_id)


def generate_scene(seed: int, config: SceneConfig | None = None, taxonomy: Taxonomy | None = None) -> Sample:
    """One synthetic scene, fully determined by ``seed`` and ``config``."""
    cfg = config or SceneConfig()
    tax = taxonomy or default_taxonomy()
    rng = np.random.default_rng(seed)
    bank = None
    if cfg.sound_dir is not None:
        bank = _cached_bank(cfg.sound_dir, tuple(tax.names[1:]), cfg.sound_folds)

    is_none = rng.uniform() < cfg.none_probability
    class_id = 0 if is_none else int(rng.integers(1, tax.num_classes))
    class_name = tax.names[class_id]
    geometry = sample_geometry(rng, cfg, None if is_none else class_name)
    layout, mic = geometry.layout, geometry.mic
    view = layout.render(mic, cfg.intrinsics, cfg.extrinsic, rng, cfg.render, 0 if geometry.hazard else None)
    n = cfg.n_samples
    fs = cfg.sample_rate
    noise = diffuse_noise(rng, n, fs, _uniform(rng, cfg.noise_slope_range))
    wet = np.zeros_like(noise)
    if geometry.hazard is None:
        mix = noise
        snr_db = float("nan")
        azimuth = elevation = distance = 0.0
        visibility = Visibility.OUT_OF_VIEW
    else:
        label = layout.label(mic, geometry.hazard.centre_m)
        azimuth, elevation, distance = label.azimuth, label.elevation, label.distance
        visibility = visibility_from_render(
            mic.to_mic(geometry.hazard.centre_m), view.object_ids, cfg.intrinsics, cfg.extrinsic
        )
        dry = _dry_signal(class_name, rng, cfg, bank)
        wet = layout.render_audio(dry, [mic], geometry.hazard.centre_m, n, cfg.acoustics, rng)
        snr_db = _uniform(rng, cfg.snr_db_range)
        noise *= math.sqrt(event_power(wet[0], fs) / 10.0 ** (snr_db / 10.0))
        mix = wet + noise

    second = None
    if geometry.second_class is not None and geometry.second_source_m is not None:
        dry2 = _dry_signal(geometry.second_class, rng, cfg, bank)
        wet2 = layout.render_audio(dry2, [mic], geometry.second_source_m, n, cfg.acoustics, rng)
        gain_db = _uniform(rng, cfg.second_source_gain_db_range)
        scale = math.sqrt(event_power(wet[0], fs) / max(event_power(wet2[0], fs), 1e-20))
        mix = mix + wet2 * scale * 10.0 ** (gain_db / 20.0)
        label2 = layout.label(mic, geometry.second_source_m)
        vis2 = direction_visibility(
            direction_to_unit(label2.azimuth, label2.elevation),
            label2.distance,
            view.exact_depth_m,
            cfg.intrinsics,
            cfg.extrinsic,
        )
        second = SecondSource(
            tax.class_id(geometry.second_class), label2.azimuth, label2.elevation, label2.distance, vis2
        )

    level = 10.0 ** (_uniform(rng, cfg.level_dbfs_range) / 20.0)
    mix *= level / max(float(mix[0].std()), 1e-12)
    peak = float(np.abs(mix).max())
    if peak > 0.99:
        mix *= 0.99 / peak
    risk = tax.risk_level(class_id, distance)
    return Sample(
        seed=seed,
        audio=mix.astype(np.float32),
        sample_rate=fs,
        rgb=view.rgb,
        depth_m=view.depth_m,
        occluder_mask=view.occluder_mask,
        hazard_mask=view.hazard_mask,
        occlusion_level=view.occlusion_level,
        visibility=visibility,
        class_id=class_id,
        class_name=class_name,
        azimuth=azimuth,
        elevation=elevation,
        distance=distance,
        risk=risk,
        action=tax.recommended_action(risk, azimuth),
        intrinsics=cfg.intrinsics,
        extrinsic=cfg.extrinsic,
        snr_db=snr_db,
        second=second,
    )
