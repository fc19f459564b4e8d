"""The "wide" scene profile: domain randomisation of rooms, placement and sensors.

The default ``SceneConfig`` draws one family of rooms (4-12 m, moderate reverberation, a camera
0.8-1.5 m above the floor, hazards 2-7 m away). Real recordings come from everywhere else too,
and a model trained on one family does not survive the others (issue 10: 25 % accuracy in
reverberant, noisy rooms). ``WideProfile`` spreads every one of those choices over what a robot
meets:

- rooms: 2 x 2 m offices to 40 m halls and 20 m corridors, with a Sabine RT60 of 0.2-4 s drawn
  log-uniformly (within what each room can reach) and the wall absorption derived from it;
- placement: microphone 0.2-2 m above the floor, sources 0.5-15 m away (log-uniform, within
  what the room allows), level -50..-10 dBFS, SNR -10..+30 dB;
- microphone: per-capsule gain (+-1 dB) and delay mismatch and self-noise (``sensors``);
- camera: tilt and roll, a lower effective resolution, a maximum depth range (``sensors``);
- far occluders: shelves, pillars and parked cars 2-10 m away (``scenery``), which may also be
  what hides an occluded hazard;
- procedural signals with random pitch, spectral tilt and envelope (``signals.vary_signal``).

Enable it with ``SceneConfig.wide_profile()`` or, in a training config, ``data.scene.wide: {}``
(any key of ``WideProfile`` can be overridden there). When it is set, its ranges replace the
default profile's room, absorption, clearance, microphone-height, distance, height, level and
SNR ranges; everything else (camera, occluder panels, visibility mix, sounds) stays shared.

Units: metres, seconds, radians, dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from avi_ros.data.acoustics import ShoeboxRoom
from avi_ros.geometry import MicToCamera

ROOM_KINDS = ("room", "hall", "corridor")
SABINE_CONSTANT_S_PER_M = 0.161  # RT60 = 0.161 V / A  [s], V in m^3, A in m^2 sabins
ABSORPTION_BOUNDS = (0.01, 0.95)  # the most and least reflective walls drawn


@dataclass(frozen=True)
class WideProfile:
    """Domain-randomisation ranges (see the module docstring). Lengths in metres, times in s.

    room_kind_weights: relative frequency of (room/office, hall, corridor).
    wall_absorption_spread: each wall's absorption lies within +-spread (relative) of the room's mean.
    max_rir_s: RIR length cap, long enough for a 4 s RT60 to matter within a 1 s scene.
    capsule_gain_db / capsule_delay_s: largest per-capsule gain [dB] and delay [s] error.
    self_noise_dbfs_range: capsule self-noise RMS [dBFS], one draw per scene.
    camera_pitch_range_rad / camera_roll_range_rad: added to the nominal extrinsic.
    resolution_scale_range: effective sensor resolution relative to the stored image size.
    max_depth_range_m: depth readings farther than this (drawn per scene) are invalid (0).
    max_far_occluders: shelves, pillars and cars per scene (0..max), far_occluder_distance_range_m away.
    far_cover_probability: share of occluded hazards hidden by a far object instead of a near panel.
    signal_variation: randomise pitch, tilt and envelope of the procedural signals.
    """

    room_kind_weights: tuple[float, float, float] = (0.4, 0.35, 0.25)
    room_size_min_m: tuple[float, float, float] = (2.0, 2.0, 2.4)
    room_size_max_m: tuple[float, float, float] = (10.0, 8.0, 3.5)
    hall_size_min_m: tuple[float, float, float] = (12.0, 10.0, 4.0)
    hall_size_max_m: tuple[float, float, float] = (40.0, 30.0, 12.0)
    corridor_length_range_m: tuple[float, float] = (8.0, 20.0)
    corridor_width_range_m: tuple[float, float] = (1.5, 3.0)
    corridor_height_range_m: tuple[float, float] = (2.4, 4.0)
    rt60_range_s: tuple[float, float] = (0.2, 4.0)
    wall_absorption_spread: float = 0.5
    wall_clearance_m: float = 0.3
    mic_height_range_m: tuple[float, float] = (0.2, 2.0)
    source_distance_range_m: tuple[float, float] = (0.5, 15.0)
    source_height_range_m: tuple[float, float] = (0.1, 3.0)
    level_dbfs_range: tuple[float, float] = (-50.0, -10.0)
    snr_db_range: tuple[float, float] = (-10.0, 30.0)
    max_rir_s: float = 1.0
    capsule_gain_db: float = 1.0
    capsule_delay_s: float = 10e-6
    self_noise_dbfs_range: tuple[float, float] = (-100.0, -75.0)
    camera_pitch_range_rad: tuple[float, float] = (-0.26, 0.26)
    camera_roll_range_rad: tuple[float, float] = (-0.05, 0.05)
    resolution_scale_range: tuple[float, float] = (0.35, 1.0)
    max_depth_range_m: tuple[float, float] = (4.0, 12.0)
    max_far_occluders: int = 3
    far_occluder_distance_range_m: tuple[float, float] = (2.0, 10.0)
    far_cover_probability: float = 0.5
    signal_variation: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if "_range" in f.name:
                lo, hi = value
                if lo > hi:
                    raise ValueError(f"WideProfile.{f.name}: lower bound {lo} exceeds upper bound {hi}")
            elif isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"WideProfile.{f.name}: expected a value >= 0, got {value}")
        for kind in ("room", "hall"):
            lo, hi = getattr(self, f"{kind}_size_min_m"), getattr(self, f"{kind}_size_max_m")
            if min(lo) <= 0 or any(a > b for a, b in zip(lo, hi, strict=True)):
                raise ValueError(f"WideProfile.{kind}_size_min_m {lo}: expected positive sizes <= {hi}")
        weights = np.asarray(self.room_kind_weights, dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"WideProfile.room_kind_weights: expected 3 non-negative weights, got {weights}")
        for name in ("rt60_range_s", "source_distance_range_m", "resolution_scale_range"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"WideProfile.{name}: expected positive values, got {getattr(self, name)}")
        if self.resolution_scale_range[1] > 1.0:
            raise ValueError(
                f"WideProfile.resolution_scale_range: expected scales <= 1, got {self.resolution_scale_range}"
            )
        if not 0.0 <= self.far_cover_probability <= 1.0:
            raise ValueError(
                "WideProfile.far_cover_probability: expected a value in [0, 1], "
                f"got {self.far_cover_probability}"
            )
        narrowest = min(*self.room_size_min_m[:2], self.corridor_width_range_m[0])
        if 2 * self.wall_clearance_m >= narrowest:
            raise ValueError(
                f"WideProfile.wall_clearance_m {self.wall_clearance_m} leaves no room in a "
                f"{narrowest} m wide room"
            )


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _room_size(rng: np.random.Generator, wide: WideProfile) -> tuple[float, float, float]:
    weights = np.asarray(wide.room_kind_weights, dtype=np.float64)
    kind = ROOM_KINDS[int(rng.choice(len(ROOM_KINDS), p=weights / weights.sum()))]
    if kind == "corridor":
        length = float(rng.uniform(*wide.corridor_length_range_m))
        width = float(rng.uniform(*wide.corridor_width_range_m))
        height = float(rng.uniform(*wide.corridor_height_range_m))
        return (length, width, height) if rng.uniform() < 0.5 else (width, length, height)
    lo, hi = (
        (wide.room_size_min_m, wide.room_size_max_m)
        if kind == "room"
        else (wide.hall_size_min_m, wide.hall_size_max_m)
    )
    return tuple(float(rng.uniform(a, b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def _wall_areas(size_m: tuple[float, float, float]) -> np.ndarray:
    """Areas [m^2] of the six walls in ``acoustics.WALL_NAMES`` order."""
    lx, ly, lz = size_m
    return np.array([ly * lz, ly * lz, lx * lz, lx * lz, lx * ly, lx * ly])


def rt60_bounds_s(size_m: tuple[float, float, float]) -> tuple[float, float]:
    """The Sabine RT60 [s] of a room with every wall at the most and at the least absorbent bound."""
    volume = float(np.prod(size_m))
    area = float(_wall_areas(size_m).sum())
    lo_a, hi_a = ABSORPTION_BOUNDS
    return SABINE_CONSTANT_S_PER_M * volume / (area * hi_a), SABINE_CONSTANT_S_PER_M * volume / (area * lo_a)


def absorption_for_rt60(
    size_m: tuple[float, float, float], rt60_s: float, spread: float, rng: np.random.Generator
) -> tuple[float, ...]:
    """Six wall absorptions whose Sabine RT60 is ``rt60_s`` (up to the ABSORPTION_BOUNDS clip).

    Each wall gets the room's mean absorption times a random factor in [1 - spread, 1 + spread],
    rescaled so that the total absorption area (and so the RT60) is the one asked for.
    """
    areas = _wall_areas(size_m)
    total = SABINE_CONSTANT_S_PER_M * float(np.prod(size_m)) / rt60_s  # m^2 sabins
    factors = rng.uniform(1.0 - spread, 1.0 + spread, size=6)
    absorption = factors * total / float(np.sum(areas * factors))
    return tuple(float(a) for a in np.clip(absorption, *ABSORPTION_BOUNDS))


def sample_wide_room(rng: np.random.Generator, wide: WideProfile) -> ShoeboxRoom:
    """A room of a random kind and size whose RT60 is drawn log-uniformly in what it can reach.

    A 40 m hall cannot sound like a 0.2 s booth, nor a carpeted office like a 4 s church: the
    RT60 is drawn in the intersection of ``wide.rt60_range_s`` with the room's own bounds
    (``rt60_bounds_s``); when they do not meet, the nearest bound is used.
    """
    size = _room_size(rng, wide)
    room_lo, room_hi = rt60_bounds_s(size)
    lo, hi = max(wide.rt60_range_s[0], room_lo), min(wide.rt60_range_s[1], room_hi)
    rt60 = _log_uniform(rng, lo, hi) if lo < hi else float(np.clip(wide.rt60_range_s[0], room_lo, room_hi))
    absorption = absorption_for_rt60(size, rt60, wide.wall_absorption_spread, rng)
    return ShoeboxRoom(size, absorption)  # type: ignore[arg-type]


def perturbed_extrinsic(rng: np.random.Generator, nominal: MicToCamera, wide: WideProfile) -> MicToCamera:
    """The nominal camera mount tilted (pitch) and rolled by random amounts [rad]."""
    roll, pitch, yaw = nominal.rpy_rad
    return MicToCamera(
        nominal.translation_m,
        (
            roll + float(rng.uniform(*wide.camera_roll_range_rad)),
            pitch + float(rng.uniform(*wide.camera_pitch_range_rad)),
            yaw,
        ),
    )


def draw_distance(rng: np.random.Generator, bounds: tuple[float, float], reach_m: float) -> float:
    """A source distance [m], log-uniform in ``bounds`` cut to ``reach_m`` (what the room allows).

    Log-uniform keeps near sources (a dog at 1 m) as frequent as far ones (a car at 12 m) per
    octave of distance, which is how level and direct-to-reverberant ratio change.
    """
    lo, hi = bounds
    hi = min(hi, reach_m)
    if hi <= lo:
        return lo
    return _log_uniform(rng, lo, hi)
