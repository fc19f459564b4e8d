"""Scripted moving-robot scenarios rendered with the synthetic scene generator.

A scenario is a short story in a room: the robot drives, stops and turns; hazards appear,
walk behind an obstacle and sound from outside the camera's view. Everything is rendered
from the same world with ``avi_ros.data.layout``: the camera view for every frame at the
robot's pose of that instant, and FOA room acoustics whose responses follow the robot and
the source (a response every ``knot_s``, cross-faded). Ground truth (class, direction and
distance in the microphone frame, visibility, risk, action) is exact, and so are the track
fields of each true hazard: ``track_id`` (the hazard's index in the script + 1, stable over
the scenario), ``first_seen_ns`` (its start), ``track_age_s``, ``range_rate`` and
``angular_velocity`` (``ScenarioScript.rates`` in ``avi_ros.data.scenario_script``: the robot's
own turning and driving removed from the angular velocity, the convention of ``avi_ros.tracking``).

Dry sounds are procedural (``avi_ros.data.signals``) unless a ``SoundBank`` is given: then
each hazard sounds with real clips of its class, drawn ``clip_s`` at a time and concatenated
for its whole duration, as the training scenes draw them.

The cross-faded knot responses do not model the Doppler shift: a source's propagation delay
steps from knot to knot instead of gliding, so a vehicle at 15 m/s (a ±4 % pitch shift, about
0.8 semitone) keeps its pitch, and the delay step between two knots (``v * knot_s / c``: 4 ms
at 15 m/s and 0.1 s knots) shows up as a short comb filter in the cross-fade.

The geometry of a scenario is fixed by its script; the seed draws the sounds, the noise and
the sensor imperfections, so the same seed gives the same bag.

Occluders follow the training distribution of ``avi_ros.data.scene``: thin panels that end
up within about a metre of the camera, which the depth-based occlusion mask recognises.
Hazard tracks may overlap in time: every hazard sounding at an instant is in the audio, drawn
in the frame and listed in its ground truth (up to ``MAX_HAZARDS`` at once).

Units: seconds, metres, radians; stamps in nanoseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.acoustics import ShoeboxRoom, diffuse_noise, event_power
from avi_ros.data.layout import HazardObject, MicPose, SceneLayout, make_hazard_object
from avi_ros.data.render import FIRST_SCENERY_ID, HAZARD_ID, Box
from avi_ros.data.scenario_script import HazardTrack, RobotPath, ScenarioScript
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_labels import visibility_from_render
from avi_ros.data.signals import synthesize_class
from avi_ros.data.sound_bank import SoundBank
from avi_ros.geometry import CameraIntrinsics, MicToCamera, direction_to_unit
from avi_ros.taxonomy import Taxonomy, Visibility, default_taxonomy
from avi_ros.types import HazardEstimateData, TrackState
from avi_ros.units import NS_PER_S

# The bag's clock starts here (2025-01-01T00:00:00Z), so stamps look like a real recording.
DEFAULT_START_NS = 1_735_689_600 * NS_PER_S


def corridor() -> ScenarioScript:
    """24 s in a 16 x 8 m hall with a panel obstacle at (7.8, 4.0).

    0-7 s the robot drives forward at 0.29 m/s. An engine idles far ahead-left, in view
    (0.8-3 s), then drives past the robot on its left at 7.5 m/s: approaching in view until
    about 4.2 s, then leaving behind it, out of view, until it stops at 4.9 s. 7.5-14 s the robot
    waits 0.8 m behind the panel while a dog walks from the right, in view, behind the panel
    (occluded); 14.5-17 s it turns 60 degrees left, and from 16 s a siren sounds behind it, out
    of view. Gaps between the hazards hold background noise only.
    """
    panel = Box((7.8, 4.0, 0.7), (0.08, 0.45, 1.4), 0.0, (120, 110, 100))
    return ScenarioScript(
        name="corridor",
        description="engine idling in view then driving past, dog walking behind a panel, siren behind it",
        duration_s=24.0,
        room=ShoeboxRoom((16.0, 8.0, 3.0), (0.25, 0.25, 0.3, 0.3, 0.1, 0.4)),
        occluders=(panel,),
        robot=RobotPath(
            waypoints=(
                (0.0, 5.0, 4.0, 0.0),
                (7.0, 7.0, 4.0, 0.0),
                (14.5, 7.0, 4.0, 0.0),
                (17.0, 7.0, 4.0, 1.05),
            ),
            mic_height_m=0.9,
        ),
        hazards=(
            HazardTrack(
                "vehicle_engine",
                0.8,
                4.9,
                ((0.0, 15.2, 5.6, 0.35), (3.0, 15.2, 5.6, 0.35), (4.9, 0.95, 5.6, 0.35)),
                18.0,
            ),
            HazardTrack("dog_bark", 7.5, 14.0, ((7.5, 10.5, 2.3, 0.3), (11.5, 10.5, 4.0, 0.3)), 15.0),
            HazardTrack("siren", 16.0, 23.0, ((16.0, 5.7, 1.7, 1.5), (23.0, 6.3, 1.7, 1.5)), 15.0),
        ),
    )


def workshop() -> ScenarioScript:
    """11 s in a 12 x 8 m workshop with a panel 0.7 m ahead-left of the robot; hazards overlap.

    A power tool runs ahead-right in view (0.5-9 s), a dog barks behind the panel (occluded,
    2-8 s) and a voice speaks behind the robot (out of view, 3.5-10 s): three at once from 3.5
    to 8 s. The robot stands still, then turns 40 degrees left (6-8 s), which takes the power
    tool out of the camera's view while it still runs.
    """
    panel = Box((4.3, 4.5, 0.7), (0.08, 0.6, 1.4), 0.0, (120, 110, 100))
    return ScenarioScript(
        name="workshop",
        description="power tool in view, dog behind a panel and a voice behind the robot, all at once",
        duration_s=11.0,
        room=ShoeboxRoom((12.0, 8.0, 3.0), (0.3, 0.3, 0.25, 0.25, 0.1, 0.45)),
        occluders=(panel,),
        robot=RobotPath(
            waypoints=((0.0, 3.6, 4.0, 0.0), (6.0, 3.6, 4.0, 0.0), (8.0, 3.6, 4.0, 0.7)),
            mic_height_m=0.9,
        ),
        hazards=(
            HazardTrack("power_tool", 0.5, 9.0, ((0.0, 8.0, 2.8, 0.6), (9.0, 8.0, 2.8, 0.6)), 15.0),
            HazardTrack("dog_bark", 2.0, 8.0, ((2.0, 7.5, 5.6, 0.3), (8.0, 7.5, 6.2, 0.3)), 15.0),
            HazardTrack("speech", 3.5, 10.0, ((3.5, 1.5, 4.6, 1.6), (10.0, 1.5, 4.6, 1.6)), 15.0),
        ),
    )


SCENARIOS: dict[str, Callable[[], ScenarioScript]] = {"corridor": corridor, "workshop": workshop}


def load_scenario(name: str) -> ScenarioScript:
    """The script of a named scenario; KeyError naming the known ones."""
    try:
        return SCENARIOS[name]()
    except KeyError:
        raise KeyError(f"unknown scenario '{name}'; known: {sorted(SCENARIOS)}") from None


@dataclass(frozen=True)
class SensorConfig:
    """The robot's sensors as the bag records them.

    camera_rate_hz: RGB-D frame rate [Hz]; width/height [px]; horizontal_fov_rad like the
    training camera (70 degrees). audio_chunk_s: FoaAudio chunk length [s]. knot_s: how
    often the acoustic response is recomputed along the motion [s]. clip_s: the dry sound
    of a hazard is drawn in clips of this length, like the training scenes [s].
    """

    camera_rate_hz: float = 15.0
    width: int = 320
    height: int = 240
    horizontal_fov_rad: float = math.radians(70.0)
    audio_chunk_s: float = 0.02
    knot_s: float = 0.05
    clip_s: float = 1.0
    extrinsic: MicToCamera = field(default_factory=lambda: SceneConfig().extrinsic)

    def __post_init__(self) -> None:
        if not 1.0 <= self.camera_rate_hz <= 60.0:
            raise ValueError(f"camera rate must be in [1, 60] Hz, got {self.camera_rate_hz}")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"image size must be at least 16 x 16 px, got {self.width} x {self.height}")
        chunk = self.audio_chunk_s * SAMPLE_RATE
        if not 0.0 < self.audio_chunk_s <= 0.5 or abs(chunk - round(chunk)) > 1e-6:
            raise ValueError(
                f"audio chunk must be a whole number of samples up to 0.5 s, got {self.audio_chunk_s} s"
            )

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return CameraIntrinsics.from_fov(self.width, self.height, self.horizontal_fov_rad)

    @property
    def chunk_samples(self) -> int:
        return round(self.audio_chunk_s * SAMPLE_RATE)


@dataclass
class CameraFrame:
    """One rendered RGB-D frame and its exact ground truth.

    time_s: seconds since the scenario start. depth_m: float32 [H, W] with sensor noise
    (0 = no reading). truth: every sounding hazard, in script order (empty between hazards).
    """

    time_s: float
    rgb: np.ndarray
    depth_m: np.ndarray
    occlusion_level: float
    truth: list[HazardEstimateData]


class ScenarioRenderer:
    """Renders a script's FOA audio and camera frames, deterministic in ``seed``."""

    def __init__(
        self,
        script: ScenarioScript,
        sensors: SensorConfig = SensorConfig(),
        seed: int = 0,
        duration_s: float | None = None,
        taxonomy: Taxonomy | None = None,
        bank: SoundBank | None = None,
    ) -> None:
        """``bank``: real clips for the hazards' dry sounds (a class it lacks stays procedural)."""
        if duration_s is not None and not duration_s > 0.0:
            raise ValueError(f"duration must be > 0 s, got {duration_s}")
        self.script = script
        self.sensors = sensors
        self.duration_s = min(duration_s or script.duration_s, script.duration_s)
        self.taxonomy = taxonomy or default_taxonomy()
        self.bank = bank
        for track in script.hazards:
            self.taxonomy.class_id(track.class_name)  # KeyError naming the known classes
        training_scenes = SceneConfig()  # the acoustics and sensor noise the model was trained with
        self.acoustics, self.render_config = training_scenes.acoustics, training_scenes.render
        audio_seed, render_seed = np.random.SeedSequence(seed).spawn(2)
        self._audio_rng = np.random.default_rng(audio_seed)
        self._render_rng = np.random.default_rng(render_seed)

    @property
    def n_samples(self) -> int:
        return round(self.duration_s * SAMPLE_RATE)

    @property
    def frame_times(self) -> np.ndarray:
        """Capture times of the camera frames [s]."""
        return np.arange(0.0, self.duration_s, 1.0 / self.sensors.camera_rate_hz)

    def render_audio(self) -> np.ndarray:
        """The whole scenario's FOA audio, float32 [4, n_samples], ACN/SN3D at 24 kHz.

        Diffuse background noise at ``noise_dbfs`` plus every hazard at its SNR (measured
        with ``event_power`` while it sounds, like the training scenes).
        """
        rng = self._audio_rng
        fs = SAMPLE_RATE
        noise = diffuse_noise(rng, self.n_samples, fs, spectral_slope=1.0)
        noise *= 10.0 ** (self.script.noise_dbfs / 20.0)
        mix = noise.copy()
        noise_power = float(np.mean(noise[0] ** 2))
        for track in self.script.hazards:
            start = round(track.start_s * fs)
            stop = min(round(track.end_s * fs), self.n_samples)
            if start >= stop:
                continue
            wet = self._render_track(track, start, stop, rng)
            gain = math.sqrt(
                noise_power * 10.0 ** (track.snr_db / 10.0) / max(event_power(wet[0], fs), 1e-20)
            )
            mix[:, start:stop] += gain * wet
        peak = float(np.abs(mix).max())
        if peak > 0.99:
            mix *= 0.99 / peak
        return mix.astype(np.float32)

    def _render_track(
        self, track: HazardTrack, start: int, stop: int, rng: np.random.Generator
    ) -> np.ndarray:
        """One hazard's wet FOA signal [4, stop - start] along the robot's and its own motion."""
        fs = SAMPLE_RATE
        clip = round(self.sensors.clip_s * fs)
        n = stop - start
        dry = np.concatenate(
            [self._dry_clip(track.class_name, rng, clip) for _ in range(math.ceil(n / clip))]
        )[:n]
        fade = min(round(0.01 * fs), n // 2)
        if fade > 0:  # soft onset and end, so a hazard does not click in
            ramp = np.linspace(0.0, 1.0, fade)
            dry[:fade] *= ramp
            dry[n - fade :] *= ramp[::-1]
        hop = max(round(self.sensors.knot_s * fs), 1)
        knot_times = (start + np.arange(0, n, hop)) / fs
        mics = [self.script.robot.pose(t) for t in knot_times]
        sources = np.stack([track.position(t) for t in knot_times])
        layout = SceneLayout(self.script.room, list(self.script.occluders), [])
        return layout.render_audio(dry, mics, sources, hop, self.acoustics, rng)

    def _dry_clip(self, class_name: str, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` samples of the class: a real clip (cropped or zero-padded, peak 1) when the bank
        has the class, a procedural one otherwise."""
        if self.bank is not None and self.bank.has(class_name):
            return self.bank.draw(class_name, rng, n)
        return synthesize_class(class_name, rng, n, SAMPLE_RATE)

    def frames(self) -> Iterator[CameraFrame]:
        """Camera frames in time order, rendered at the robot's pose of each capture time."""
        for t in self.frame_times:
            yield self.render_frame(float(t))

    def render_frame(self, t: float) -> CameraFrame:
        """The camera frame at ``t`` [s] with every sounding hazard drawn and in its truth.

        The renderer marks one object as the hazard; further hazards are drawn as far objects
        with their own ids, so each one's exact visibility is read from the same render.
        """
        mic = self.script.robot.pose(t)
        track_ids = self.script.active_track_ids(t)
        tracks = [self.script.hazards[i - 1] for i in track_ids]
        objects = [self._hazard_object(track, t) for track in tracks]
        layout = SceneLayout(
            self.script.room, list(self.script.occluders), objects[:1], scenery=[o.shape for o in objects[1:]]
        )
        view = layout.render(
            mic,
            self.sensors.intrinsics,
            self.sensors.extrinsic,
            self._render_rng,
            self.render_config,
            0 if objects else None,
        )
        truth = []
        for index, (track_id, hazard) in enumerate(zip(track_ids, objects, strict=True)):
            object_id = HAZARD_ID if index == 0 else FIRST_SCENERY_ID + index - 1
            visibility = visibility_from_render(
                mic.to_mic(hazard.centre_m),
                view.object_ids,
                self.sensors.intrinsics,
                self.sensors.extrinsic,
                object_id,
            )
            truth.append(self._truth(track_id, t, mic, hazard, visibility, view.occlusion_level))
        return CameraFrame(t, view.rgb, view.depth_m, view.occlusion_level, truth)

    def _hazard_object(self, track: HazardTrack, t: float) -> HazardObject:
        return make_hazard_object(track.class_name, track.position(t), track.heading(t), 1.0, np.zeros(3))

    def _truth(
        self,
        track_id: int,
        t: float,
        mic: MicPose,
        hazard: HazardObject,
        visibility: Visibility,
        occlusion: float,
    ) -> HazardEstimateData:
        track = self.script.hazards[track_id - 1]
        label = SceneLayout.label(mic, hazard.centre_m)
        range_rate, angular_velocity = self.script.rates(track, t)
        class_id = self.taxonomy.class_id(track.class_name)
        probabilities = np.zeros(self.taxonomy.num_classes, dtype=np.float32)
        probabilities[class_id] = 1.0
        risk = self.taxonomy.risk_level(class_id, label.distance)
        return HazardEstimateData(
            class_id=class_id,
            class_name=track.class_name,
            class_probabilities=probabilities,
            azimuth=label.azimuth,
            elevation=label.elevation,
            distance=label.distance,
            direction=direction_to_unit(label.azimuth, label.elevation),
            confidence=1.0,
            occlusion_level=occlusion,
            visibility=visibility,
            audio_weight=0.0,
            visual_weight=0.0,
            risk_level=risk,
            recommended_action=self.taxonomy.recommended_action(risk, label.azimuth),
            track_id=track_id,
            track_state=TrackState.CONFIRMED,
            first_seen_ns=DEFAULT_START_NS + round(track.start_s * NS_PER_S),
            track_age_s=t - track.start_s,
            angular_velocity=angular_velocity,
            range_rate=range_rate,
        )
