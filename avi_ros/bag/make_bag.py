"""``avi-ros make-bag``: write a scenario as the rosbag2 bag a robot would have recorded.

Topics (receive time = when a driver would publish: an audio chunk when its last sample is
captured, an RGB-D frame ``CAMERA_LATENCY_S`` after capture):

- ``/audio`` avi_ros/msg/FoaAudio, one chunk every ``audio_chunk_s`` (20 ms);
- ``/rgb/image_raw`` rgb8, ``/depth/image_raw`` 16UC1 [mm] or 32FC1 [m] and
  ``/rgb/camera_info``, all with the same stamp, at ``camera_rate_hz``;
- ``/ground_truth/hazards`` avi_ros/msg/HazardEstimateArray with the exact hazards at each
  RGB-D stamp (confidence 1, one-hot class probabilities, and each true hazard's track id,
  first-seen stamp, range rate and angular velocity: see ``avi_ros.bag.scenario``);
- ``/odom`` nav_msgs/Odometry of the robot's scripted path every ``ODOMETRY_PERIOD_S`` (optional):
  pose in ``odom``, twist (forward speed, yaw rate) in the base frame, exact;
- ``/imu/data`` sensor_msgs/Imu of the same path every ``IMU_PERIOD_S`` (optional), in the base
  frame (an IMU aligned with the base, REP-145): linear acceleration with gravity and angular
  velocity from ``RobotPath.imu``, orientation unknown (its covariance[0] is -1);
- ``/tf_static`` base_link -> foa_mic -> camera_link -> the optical frame (optional).

The avi_ros message definitions are stored in the bag, so any rosbag2 reader decodes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from avi_ros.audio import PCM_DTYPES, SAMPLE_RATE
from avi_ros.bag.bag_topics import BagFrames, BagTopics
from avi_ros.bag.io import BagWriter
from avi_ros.bag.messages import MessageFactory
from avi_ros.bag.paths import bag_output_path, removed_on_failure
from avi_ros.bag.scenario import (
    DEFAULT_START_NS,
    ScenarioRenderer,
    SensorConfig,
    load_scenario,
)
from avi_ros.geometry import OPTICAL_TO_BODY
from avi_ros.message_builders import DEPTH_ENCODINGS
from avi_ros.topics import TelemetryTopics, absolute_topic
from avi_ros.units import NS_PER_S

CAMERA_LATENCY_S = 0.01
ODOMETRY_PERIOD_S = 0.02  # 50 Hz, a typical wheel-odometry rate
IMU_PERIOD_S = 0.01  # 100 Hz, a typical IMU rate
END_OF_TIME_NS = 2**63 - 1


@dataclass(frozen=True)
class MakeBagOptions:
    """What ``make-bag`` writes; see the module docstring. ``out`` follows ``bag_output_path``."""

    out: Path
    scenario: str = "corridor"
    seed: int = 0
    duration_s: float | None = None
    storage: str | None = None
    camera_rate_hz: float = 15.0
    width: int = 320
    height: int = 240
    depth_encoding: str = "16UC1"
    audio_format: str = "float32"
    tf_static: bool = True
    odometry_topic: str | None = absolute_topic(TelemetryTopics().odom)
    imu_topic: str | None = absolute_topic(TelemetryTopics().imu)
    topics: BagTopics = field(default_factory=BagTopics)
    frames: BagFrames = field(default_factory=BagFrames)

    def __post_init__(self) -> None:
        if self.depth_encoding not in DEPTH_ENCODINGS:
            raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got '{self.depth_encoding}'")
        if self.audio_format not in PCM_DTYPES:
            raise ValueError(f"audio format must be one of {list(PCM_DTYPES)}, got '{self.audio_format}'")


@dataclass
class BagSummary:
    """What ``make_bag`` wrote: the bag directory, its storage, the scenario and messages per topic."""

    path: Path
    storage: str
    scenario: str
    duration_s: float
    counts: dict[str, int]

    def describe(self) -> str:
        topics = ", ".join(f"{t} x{n}" for t, n in self.counts.items())
        return (
            f"wrote {self.path} ({self.storage}): scenario {self.scenario}, {self.duration_s:.1f} s; {topics}"
        )


def _static_transforms(renderer: ScenarioRenderer, frames: BagFrames) -> list:
    """(parent, child, translation, quaternion xyzw) of the robot's fixed frames."""
    extrinsic = renderer.sensors.extrinsic
    mic_height = renderer.script.robot.mic_height_m
    camera_rotation = Rotation.from_euler("xyz", extrinsic.rpy_rad)
    return [
        (frames.base, frames.microphone, np.array([0.0, 0.0, mic_height]), np.array([0.0, 0.0, 0.0, 1.0])),
        (frames.microphone, frames.camera, np.asarray(extrinsic.translation_m), camera_rotation.as_quat()),
        (frames.camera, frames.optical, np.zeros(3), Rotation.from_matrix(OPTICAL_TO_BODY).as_quat()),
    ]


def _odometry(
    factory: MessageFactory, renderer: ScenarioRenderer, t: float, stamp_ns: int, base: str
) -> object:
    """The robot's exact odometry at ``t`` [s]: pose of ``base`` in ``odom``, twist in ``base``."""
    new, robot = factory.new, renderer.script.robot
    pose = robot.pose(t)
    half_yaw = pose.yaw_rad / 2.0
    return new["nav_msgs/msg/Odometry"](
        header=factory.header(stamp_ns, BagFrames().odom),
        child_frame_id=base,
        pose=new["geometry_msgs/msg/PoseWithCovariance"](
            pose=new["geometry_msgs/msg/Pose"](
                position=new["geometry_msgs/msg/Point"](x=pose.position_m[0], y=pose.position_m[1], z=0.0),
                orientation=new["geometry_msgs/msg/Quaternion"](z=math.sin(half_yaw), w=math.cos(half_yaw)),
            )
        ),
        twist=new["geometry_msgs/msg/TwistWithCovariance"](
            twist=new["geometry_msgs/msg/Twist"](
                linear=new["geometry_msgs/msg/Vector3"](x=robot.forward_speed(t)),
                angular=new["geometry_msgs/msg/Vector3"](z=robot.yaw_rate(t)),
            )
        ),
    )


def _imu(factory: MessageFactory, renderer: ScenarioRenderer, t: float, stamp_ns: int, base: str) -> object:
    """The robot's exact IMU reading at ``t`` [s] in ``base`` (``RobotPath.imu``); no orientation."""
    new = factory.new
    acceleration, angular = renderer.script.robot.imu(t)
    no_orientation = np.zeros(9)
    no_orientation[0] = -1.0  # REP-145 / sensor_msgs/Imu: the orientation is not estimated
    return new["sensor_msgs/msg/Imu"](
        header=factory.header(stamp_ns, base),
        orientation=new["geometry_msgs/msg/Quaternion"](w=1.0),
        orientation_covariance=no_orientation,
        angular_velocity=new["geometry_msgs/msg/Vector3"](x=angular[0], y=angular[1], z=angular[2]),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=new["geometry_msgs/msg/Vector3"](
            x=acceleration[0], y=acceleration[1], z=acceleration[2]
        ),
        linear_acceleration_covariance=np.zeros(9),
    )


@dataclass
class _Stream:
    """A periodic stream of the bag: message ``k`` is received at ``first_ns + k * period_ns``
    and made by ``make(k, receive_ns)``; ``count`` messages in all."""

    topic: str
    first_ns: int
    period_ns: int
    count: int
    make: Callable[[int, int], object]
    sent: int = 0

    @property
    def next_ns(self) -> int | None:
        """Receive time of the next message [ns], None when all are sent."""
        return self.first_ns + self.sent * self.period_ns if self.sent < self.count else None


def make_bag(options: MakeBagOptions, progress: bool = False) -> BagSummary:
    """Render the scenario and write its bag; returns what was written."""
    path, storage = bag_output_path(options.out, options.storage)
    sensors = SensorConfig(camera_rate_hz=options.camera_rate_hz, width=options.width, height=options.height)
    renderer = ScenarioRenderer(load_scenario(options.scenario), sensors, options.seed, options.duration_s)
    topics, frames = options.topics, options.frames
    audio = renderer.render_audio()
    chunk = sensors.chunk_samples
    chunk_ns = chunk * NS_PER_S // SAMPLE_RATE
    n_chunks = audio.shape[1] // chunk
    intrinsics = sensors.intrinsics
    latency_ns = round(CAMERA_LATENCY_S * NS_PER_S)
    counts: dict[str, int] = {}

    with removed_on_failure(path), BagWriter(path, storage=storage) as writer:
        factory = MessageFactory()

        def write(topic: str, receive_ns: int, message: object) -> None:
            writer.write(topic, receive_ns, message)
            counts[topic] = counts.get(topic, 0) + 1

        if options.tf_static:
            write(
                topics.tf_static,
                DEFAULT_START_NS,
                factory.static_transforms(DEFAULT_START_NS, _static_transforms(renderer, frames)),
            )

        def telemetry_stream(topic: str | None, period_s: float, message: Callable) -> _Stream | None:
            if topic is None:
                return None
            period_ns = round(period_s * NS_PER_S)

            def make(k: int, receive_ns: int) -> object:
                return message(factory, renderer, k * period_s, receive_ns, frames.base)

            return _Stream(
                topic, DEFAULT_START_NS, period_ns, math.ceil(renderer.duration_s / period_s), make
            )

        def audio_chunk(k: int, receive_ns: int) -> object:
            samples = audio[:, k * chunk : (k + 1) * chunk]
            return factory.foa_audio(receive_ns - chunk_ns, frames.microphone, samples, options.audio_format)

        # On equal receive times the telemetry goes first, then the audio.
        streams = [
            stream
            for stream in (
                telemetry_stream(options.odometry_topic, ODOMETRY_PERIOD_S, _odometry),
                telemetry_stream(options.imu_topic, IMU_PERIOD_S, _imu),
                _Stream(topics.audio, DEFAULT_START_NS + chunk_ns, chunk_ns, n_chunks, audio_chunk),
            )
            if stream is not None
        ]

        def write_streams_until(receive_ns: int) -> None:
            """Audio chunks and telemetry received up to ``receive_ns``, in receive order."""
            while True:
                due = [s for s in streams if s.next_ns is not None and s.next_ns <= receive_ns]
                if not due:
                    return
                stream = min(due, key=lambda s: s.next_ns or 0)  # the first of equals: list order
                at = stream.first_ns + stream.sent * stream.period_ns
                write(stream.topic, at, stream.make(stream.sent, at))
                stream.sent += 1

        frame_iter = renderer.frames()
        if progress:
            frame_iter = tqdm(
                frame_iter,
                total=len(renderer.frame_times),
                desc="rendering frames",
                unit="frame",
                disable=None,  # only on a terminal
            )
        for camera_frame in frame_iter:
            stamp = DEFAULT_START_NS + round(camera_frame.time_s * NS_PER_S)
            receive = stamp + latency_ns
            write_streams_until(receive)
            write(topics.rgb, receive, factory.rgb_image(stamp, frames.optical, camera_frame.rgb))
            write(
                topics.depth,
                receive,
                factory.depth_image(stamp, frames.optical, camera_frame.depth_m, options.depth_encoding),
            )
            write(topics.camera_info, receive, factory.camera_info(stamp, frames.optical, intrinsics))
            if topics.ground_truth:
                truth = factory.hazard_array(stamp, frames.microphone, camera_frame.truth)
                write(topics.ground_truth, receive, truth)
        write_streams_until(END_OF_TIME_NS)
    script = renderer.script
    return BagSummary(path, storage, f"{script.name} ({script.description})", renderer.duration_s, counts)
