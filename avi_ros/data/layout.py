"""A static synthetic world (room, occluders, hazard objects) seen and heard from any robot pose.

``generate_scene`` samples one of these per training sample, but the layout is also the
lower-level API for scenarios with time-varying geometry (a moving robot, a moving source):
render RGB-D for each camera pose, FOA audio for each chunk's positions, and exact labels
in the microphone frame, all from the same objects.

Frames: world z up, room on [0, size]; the microphone frame is REP-103 and upright, turned
by ``MicPose.yaw_rad`` about world z. Units: metres, radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from avi_ros.data.acoustics import AcousticsConfig, ShoeboxRoom, convolve_foa_time_varying, foa_rir
from avi_ros.data.render import (
    Box,
    Cylinder,
    Ellipsoid,
    RenderConfig,
    RenderResult,
    RoomLook,
    Shape,
    render_rgbd,
)
from avi_ros.geometry import CameraIntrinsics, MicToCamera, unit_to_direction


@dataclass(frozen=True)
class MicPose:
    """Microphone position in the world [m] and heading [rad] (CCW about world z from +x)."""

    position_m: tuple[float, float, float]
    yaw_rad: float

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation taking microphone-frame vectors to the world frame."""
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def to_mic(self, points_world: np.ndarray) -> np.ndarray:
        """World points [..., 3] -> microphone frame [..., 3]."""
        return (np.asarray(points_world, dtype=np.float64) - np.asarray(self.position_m)) @ self.rotation

    def to_world(self, points_mic: np.ndarray) -> np.ndarray:
        """Microphone-frame points [..., 3] -> world [..., 3]."""
        return np.asarray(points_mic, dtype=np.float64) @ self.rotation.T + np.asarray(self.position_m)


def camera_pose(mic: MicPose, extrinsic: MicToCamera) -> tuple[np.ndarray, np.ndarray]:
    """Camera position in the world [3] and the optical-to-world rotation [3, 3]."""
    position = mic.to_world(np.asarray(extrinsic.translation_m))
    return position, mic.rotation @ extrinsic.optical_to_mic_rotation


@dataclass(frozen=True)
class Appearance:
    """What a hazard class looks like: a shape kind, nominal size [m] and colour (RGB 0..255)."""

    kind: str  # "box", "cylinder" or "ellipsoid"
    size_m: tuple[
        float, float, float
    ]  # box: x, y, z extents; cylinder: diameter, -, height; ellipsoid: 2*radii
    colour: tuple[int, int, int]


# Class-dependent looks, so the visual branch has something to recognise.
CLASS_APPEARANCE: dict[str, Appearance] = {
    "vehicle_engine": Appearance("box", (1.2, 0.7, 0.7), (170, 30, 30)),
    "car_horn": Appearance("box", (0.6, 0.5, 0.4), (235, 205, 40)),
    "siren": Appearance("cylinder", (0.3, 0.3, 0.5), (40, 80, 230)),
    "alarm_bell": Appearance("ellipsoid", (0.4, 0.4, 0.4), (235, 100, 20)),
    "dog_bark": Appearance("ellipsoid", (0.7, 0.35, 0.45), (130, 85, 40)),
    "footsteps": Appearance("cylinder", (0.4, 0.4, 1.2), (110, 110, 135)),
    "glass_break": Appearance("box", (0.6, 0.06, 0.6), (160, 225, 235)),
    "power_tool": Appearance("box", (0.35, 0.25, 0.3), (245, 145, 0)),
    "speech": Appearance("cylinder", (0.45, 0.45, 1.0), (50, 165, 80)),
}


@dataclass(frozen=True)
class HazardObject:
    """A sound-emitting object: its class and the shape drawn for it (centre = acoustic source)."""

    class_name: str
    shape: Shape

    @property
    def centre_m(self) -> np.ndarray:
        return np.asarray(self.shape.centre_m, dtype=np.float64)

    @property
    def half_extent_m(self) -> float:
        """Radius of a sphere that holds the shape [m] (for clearance checks)."""
        s = self.shape
        if isinstance(s, Box):
            return float(np.linalg.norm(s.size_m) / 2.0)
        if isinstance(s, Cylinder):
            return float(math.hypot(s.radius_m, s.height_m / 2.0))
        return float(max(s.radii_m))


def make_hazard_object(
    class_name: str, centre_m: np.ndarray, yaw_rad: float, scale: float, colour_jitter: np.ndarray
) -> HazardObject:
    """The class's appearance at a position, with a size ``scale`` and a colour offset (RGB)."""
    look = CLASS_APPEARANCE[class_name]
    colour = tuple(int(c) for c in np.clip(np.asarray(look.colour) + colour_jitter, 0, 255))
    centre = tuple(float(c) for c in centre_m)
    sx, sy, sz = (scale * v for v in look.size_m)
    if look.kind == "box":
        shape: Shape = Box(centre, (sx, sy, sz), yaw_rad, colour)
    elif look.kind == "cylinder":
        shape = Cylinder(centre, sx / 2.0, sz, colour)
    else:
        shape = Ellipsoid(centre, (sx / 2.0, sy / 2.0, sz / 2.0), colour)
    return HazardObject(class_name, shape)


@dataclass(frozen=True)
class SourceLabel:
    """Exact label of a source in the microphone frame: azimuth, elevation [rad], distance [m]."""

    azimuth: float
    elevation: float
    distance: float


@dataclass
class SceneLayout:
    """Room, near occluders, far scenery (shelves, pillars, cars) and hazard objects, in world coordinates.

    Near occluders and scenery both block the view; they differ in their ids in the render, so
    the near-occluder mask stays what the depth-based occlusion code is meant to find.
    """

    room: ShoeboxRoom
    occluders: list[Box] = field(default_factory=list)
    hazards: list[HazardObject] = field(default_factory=list)
    look: RoomLook = field(default_factory=RoomLook)
    scenery: list[Shape] = field(default_factory=list)

    def render(
        self,
        mic: MicPose,
        intrinsics: CameraIntrinsics,
        extrinsic: MicToCamera,
        rng: np.random.Generator,
        config: RenderConfig | None = None,
        hazard_index: int | None = 0,
    ) -> RenderResult:
        """RGB-D from the camera rigidly mounted on the microphone (``extrinsic``).

        ``hazard_index`` picks the object drawn as the hazard (None: draw none); the renderer
        marks it in ``RenderResult.hazard_mask``.
        """
        position, rotation = camera_pose(mic, extrinsic)
        hazard = self.hazards[hazard_index].shape if hazard_index is not None and self.hazards else None
        return render_rgbd(
            self.room.size_m,
            position,
            rotation,
            intrinsics,
            list(self.occluders),
            hazard,
            rng,
            config or RenderConfig(),
            self.look,
            self.scenery,
        )

    @staticmethod
    def label(mic: MicPose, source_m: np.ndarray) -> SourceLabel:
        """Exact direction and distance of a world point in the microphone frame."""
        rel = mic.to_mic(source_m)
        az, el = unit_to_direction(rel)
        return SourceLabel(float(az), float(el), float(np.linalg.norm(rel)))

    def rir(
        self, mic: MicPose, source_m: np.ndarray, config: AcousticsConfig, rng: np.random.Generator
    ) -> np.ndarray:
        """FOA room impulse response [4, L] from a world point to the microphone."""
        return foa_rir(self.room, source_m, np.asarray(mic.position_m), mic.rotation, config, rng)

    def render_audio(
        self,
        signal: np.ndarray,
        mics: list[MicPose],
        sources_m: np.ndarray,
        hop_samples: int,
        config: AcousticsConfig,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """FOA audio [4, N] of a dry mono ``signal`` [N] with time-varying geometry.

        ``mics[i]`` and ``sources_m[i]`` are the poses at sample ``i * hop_samples``; the
        response cross-fades between them. Pass one of each for a static scene.
        """
        sources = np.asarray(sources_m, dtype=np.float64).reshape(-1, 3)
        if len(mics) != len(sources):
            raise ValueError(
                f"need one source position per microphone pose, got {len(sources)} and {len(mics)}"
            )
        rirs = [self.rir(m, s, config, rng) for m, s in zip(mics, sources, strict=True)]
        return convolve_foa_time_varying(signal, rirs, hop_samples)
