"""SceneConfig: the distributions the synthetic scenes draw from, checked once, and what one scene
takes from it (the ranges of its profile, its camera mount, its acoustics).

Lengths in metres, angles in radians, levels in dB. The wide profile (``SceneConfig.wide``, see
``avi_ros.data.domain``) replaces the default rooms, sensors and ranges; ``ProfileRanges.of`` is
the one place that picks between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.acoustics import AcousticsConfig
from avi_ros.data.clip_augment import ClipAugmentConfig
from avi_ros.data.domain import WideProfile, perturbed_extrinsic
from avi_ros.data.render import RenderConfig
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.taxonomy import MAX_HAZARDS


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
class ProfileRanges:
    """The placement and level ranges in force: the default profile's or the wide profile's."""

    wall_clearance_m: float
    mic_height_m: tuple[float, float]
    source_distance_m: tuple[float, float]
    source_height_m: tuple[float, float]
    level_dbfs: tuple[float, float]
    snr_db: tuple[float, float]

    @classmethod
    def of(cls, cfg: SceneConfig) -> ProfileRanges:
        """The wide profile's ranges when ``cfg.wide`` is set, else the config's own."""
        src = cfg.wide if cfg.wide is not None else cfg
        return cls(
            src.wall_clearance_m,
            src.mic_height_range_m,
            src.source_distance_range_m,
            src.source_height_range_m,
            src.level_dbfs_range,
            src.snr_db_range,
        )


def draw_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """One value drawn uniformly from a config range ``(low, high)`` (in the range's own unit)."""
    return float(rng.uniform(bounds[0], bounds[1]))


def scene_camera(rng: np.random.Generator, cfg: SceneConfig) -> SceneConfig:
    """``cfg`` with this scene's camera mount: tilted and rolled in the wide profile, nominal otherwise."""
    if cfg.wide is None:
        return cfg
    return replace(cfg, extrinsic=perturbed_extrinsic(rng, cfg.extrinsic, cfg.wide))


def scene_acoustics(cfg: SceneConfig) -> AcousticsConfig:
    """The room-acoustics settings of a scene: the wide profile may ask for longer room responses."""
    if cfg.wide is None:
        return cfg.acoustics
    return replace(cfg.acoustics, max_rir_s=max(cfg.acoustics.max_rir_s, cfg.wide.max_rir_s))
