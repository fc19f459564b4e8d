"""``avi-ros replay``: the perception node's frame assembly, pipeline and tracker, driven by a bag.

Messages are read in the bag's receive-time order and go through the same core parts the
live node uses: ``avi_ros.sensor_decoding`` for every payload, the ``ApproximateTimeSync``
rule for RGB + depth + camera_info, the ``FrameAssembler`` for the audio window ending at
the RGB stamp, ``Pipeline.run``, and the ``HazardTracker`` with the node's ``tracking.*``
configuration (``--params-file``), updated once per frame in stamp order with the speed and yaw
rate of the bag's odometry (``nav_msgs/Odometry``, aligned by the node's ``TelemetryBuffer``; none when
the bag has no odometry topic). The assembler's clock is the bag's receive time, as the node's
is ROS time under ``use_sim_time``. Unlike the live node, the replay is never busy when a frame
completes, so it processes every frame the node could have processed (a node that skips frames
tracks over fewer frames, so its track ids can differ from the replay's after the first skip).

Outputs: a rosbag2 bag with the node's output topics (``/hazards``, ``/markers``,
``/occlusion_mask``, and ``/hazards/detections``: the hazards as vision_msgs/Detection3DArray in
the microphone frame, as ``avi_ros.interop.detections`` builds them for the node), and, unless
disabled, the report of ``avi_ros.bag.report``. Bags
recorded on a robot work when they carry FoaAudio, raw RGB and depth images and
CameraInfo; their topic names are options, and a topic of another type is refused by name.

Every mcap chunk read is verified (CRC, compression, index), an mcap file cut short (a recorder
killed before it wrote the summary) is read up to its last complete chunk, and a sqlite3 database
is checked (``avi_ros.bag.sqlite_check``). Damage fails the replay, or with ``skip_damaged`` is
skipped and listed, with the bytes and messages it lost, in the summary and the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from avi_ros.bag.bag_topics import INPUT_TYPES, BagFrames, BagTopics
from avi_ros.bag.io import BagError, BagMessage, BagWriter, DamagedBagError, bag_topics, read_bag
from avi_ros.bag.mcap_storage import IntegrityLog
from avi_ros.bag.messages import MessageFactory
from avi_ros.bag.paths import removed_on_failure, resolve_bag_input
from avi_ros.bag.report import write_report
from avi_ros.bag.results import FrameRecord, ReplayResult, Snapshot, SnapshotKeeper
from avi_ros.bag.static_tf import StaticTransforms
from avi_ros.checkpoint import METADATA_FILE, WEIGHTS_FILE
from avi_ros.doa import candidate_directions
from avi_ros.events import stream_key
from avi_ros.frame_assembly import ApproximateTimeSync, AssemblyConfig, EventCounter, FrameAssembler
from avi_ros.geometry import MicToCamera
from avi_ros.hazard_markers import MarkerStyle, hazard_marker_specs, track_marker_specs
from avi_ros.interop.detections import detection_array_message, hazard_detections
from avi_ros.message_builders import hazard_from_message, marker_array_message
from avi_ros.onnx_backend import BACKENDS
from avi_ros.pipeline import PRECISIONS, Pipeline
from avi_ros.sensor_decoding import SensorInputError, checked_stamp_ns, stamp_to_ns
from avi_ros.sensor_intake import SensorIntake
from avi_ros.telemetry import ODOM, TelemetryBuffer
from avi_ros.topics import (
    RGBD_STREAMS,
    OutputTopics,
    StandardTopics,
    TelemetryTopics,
    absolute_topic,
    absolute_topics,
)
from avi_ros.tracking import HazardTracker, TrackerConfig, TrackView
from avi_ros.tracking.ego_motion import RobotMotion, odometry_twist, robot_motion
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD, Frame, HazardEstimateData, PipelineResult

ODOMETRY_TYPE = "nav_msgs/msg/Odometry"


@dataclass(frozen=True)
class ReplayOptions:
    """What ``replay`` reads, how it runs the model, and what it writes.

    extrinsic: microphone -> camera body pose; None reads it from the bag's /tf_static
        (``frames.microphone`` -> ``frames.camera``). When the bag has no such link, replay
        fails naming the frames it has, unless ``allow_default_extrinsic`` accepts the node's
        default (camera at the microphone).
    skip_damaged: read past damage (mcap chunks that fail verification, the lost end of an mcap
        file cut short, a sqlite3 database that fails its checks) and report it instead of failing.
    slop_s, queue_size, assembly, confidence_threshold, precision, marker_style: as the node's
        parameters (precision: auto, fp32, bf16 or fp16; see ``avi_ros.pipeline``).
    backend: "torch", or "onnxruntime" for the exported graph (``model`` may then be the
        ``.onnx`` file; see ``avi_ros.onnx_backend``), as the node's ``backend`` parameter.
    output_topics: the node's output topics, absolute, as the output bag stores them.
    detections_topic: where the hazards go as vision_msgs/Detection3DArray (the node's
        ``hazards/detections``, absolute); None writes none.
    tracking: the node's tracker configuration (``tracker_config_from_params_file`` reads it from
        the node's parameters YAML); None: hazards are published untracked, as the node with
        ``tracking.enabled: false``.
    odometry_topic: the bag's ``nav_msgs/Odometry`` topic whose motion the tracker removes
        (the node's ``telemetry.odom_topic``); ignored when the bag has none or it is None.
    report_frames: how many annotated frames the report shows (evenly spaced in time).
    threads: torch CPU threads. One frame at a time is latency-bound; on a small CPU shared with
        other work, one thread avoids OpenMP stalls (measured 15 ms vs 300-800 ms per frame
        with two threads on the 2-core demo machine under load).
    """

    bag: Path
    model: Path
    out: Path
    device: str = "auto"
    precision: str = "auto"
    backend: str = "torch"
    topics: BagTopics = field(default_factory=BagTopics)
    output_topics: OutputTopics = field(default_factory=lambda: absolute_topics(OutputTopics()))
    detections_topic: str | None = absolute_topics(StandardTopics()).detections
    frames: BagFrames = field(default_factory=BagFrames)
    extrinsic: MicToCamera | None = None
    allow_default_extrinsic: bool = False
    skip_damaged: bool = False
    slop_s: float = 0.05
    queue_size: int = 10
    assembly: AssemblyConfig = field(default_factory=AssemblyConfig)
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    marker_style: MarkerStyle = field(default_factory=MarkerStyle)
    tracking: TrackerConfig | None = field(default_factory=TrackerConfig)
    odometry_topic: str | None = absolute_topic(TelemetryTopics().odom)
    storage: str = "mcap"
    report: bool = True
    report_frames: int = 12
    max_frames: int | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {PRECISIONS}, got '{self.precision}'")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend must be one of {BACKENDS}, got '{self.backend}'")
        if self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")
        if self.report_frames < 1:
            raise ValueError(f"--report-frames must be >= 1, got {self.report_frames}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"--max-frames must be >= 1, got {self.max_frames}")


class BagFrontEnd:
    """Bag messages -> complete Frames, with the node's intake, sync rule and assembler.

    ``feed`` takes one message and returns the newest complete frame, if one is ready.
    Bad payloads are counted in ``events`` under the node's reason keys and skipped.
    Odometry messages (``odometry_topic``, when given) go into ``telemetry`` as the node's
    ``TelemetryInput`` puts them, so ``motion(stamp_ns)`` is the node's.
    """

    def __init__(
        self,
        window_samples: int,
        topics: BagTopics,
        slop_s: float = 0.05,
        queue_size: int = 10,
        assembly: AssemblyConfig | None = None,
        odometry_topic: str | None = None,
    ) -> None:
        self.topics = topics
        self.odometry_topic = odometry_topic
        self.events = EventCounter()
        self.telemetry = TelemetryBuffer(events=self.events)
        self.assembler = FrameAssembler(window_samples, assembly or AssemblyConfig(), self.events)
        self.intake = SensorIntake(self.assembler, self.events)
        self.sync = ApproximateTimeSync(RGBD_STREAMS, queue_size, slop_s, self._on_rgbd, self.events)
        self._index = {topic: index for index, topic in enumerate(topics.rgbd)}
        self._now_ns = 0

    @property
    def read_topics(self) -> list[str]:
        """The topics ``feed`` takes: the inputs, then the odometry when there is one."""
        return [*self.topics.inputs, *([self.odometry_topic] if self.odometry_topic else [])]

    def motion(self, stamp_ns: int) -> RobotMotion | None:
        """The robot's odometry at a frame stamp, None without odometry (the node's rule)."""
        return robot_motion(self.telemetry.reading(stamp_ns)) if self.odometry_topic else None

    def feed(self, message: BagMessage) -> Frame | None:
        self._now_ns = message.stamp_ns
        msg = message.message
        if message.topic == self.odometry_topic:
            self._add_odometry(msg)
            return None
        if message.topic == self.topics.audio:
            self.intake.add_audio(msg, self._now_ns)
        elif message.topic in self._index:
            self.sync.add(self._index[message.topic], stamp_to_ns(msg.header.stamp), msg)
        self.assembler.expire(self._now_ns)
        return self.assembler.take_ready(timeout_s=0.0)

    def _on_rgbd(self, rgb_msg: Any, depth_msg: Any, info_msg: Any) -> None:
        self.intake.add_rgbd(rgb_msg, depth_msg, info_msg, self._now_ns)

    def _add_odometry(self, msg: Any) -> None:
        try:
            stamp_ns = checked_stamp_ns(msg.header.stamp)
        except SensorInputError as exc:
            self.events.record(stream_key(ODOM, exc.reason), f"{ODOM}: {exc}")
            return
        self.telemetry.add_odometry(stamp_ns, *odometry_twist(msg))


class ReplayTracking:
    """The node's tracking of each frame's hazards, for the replay: one ``HazardTracker`` (or none
    when tracking is off) updated once per frame in stamp order."""

    def __init__(self, config: TrackerConfig | None, events: EventCounter) -> None:
        self.tracker = HazardTracker(config, events) if config is not None else None

    def update(
        self, hazards: list[HazardEstimateData], stamp_ns: int, motion: RobotMotion | None
    ) -> tuple[list[HazardEstimateData], list[TrackView]]:
        """The hazards with their track fields, and the confirmed tracks after this frame."""
        if self.tracker is None:
            return hazards, []
        return self.tracker.update(hazards, stamp_ns, motion), self.tracker.tracks()


def resolve_extrinsic(
    bag: Path, options: ReplayOptions, available: dict[str, str], integrity: IntegrityLog | None = None
) -> tuple[MicToCamera, str]:
    """The extrinsic the pipeline uses, and where it came from (for the summary).

    BagError naming the bag's frames when /tf_static does not link the two frames, unless
    ``options.allow_default_extrinsic``.
    """
    if options.extrinsic is not None:
        return options.extrinsic, "the options"
    tf_topic = options.topics.tf_static
    microphone, camera = options.frames.microphone, options.frames.camera
    if tf_topic in available:
        transforms = StaticTransforms(m.message for m in read_bag(bag, [tf_topic], integrity))
        found = transforms.extrinsic(microphone, camera)
        if found is not None:
            return found, f"{tf_topic} ({microphone} -> {camera})"
        why = f"{tf_topic} does not link {microphone} -> {camera}; its frames are {transforms.frames}"
    else:
        why = f"the bag has no {tf_topic}"
    if options.allow_default_extrinsic:
        return MicToCamera(), f"the default, camera at the microphone ({why})"
    raise BagError(
        f"{bag}: no microphone -> camera extrinsic: {why}. Name the frames with --microphone-frame and "
        "--camera-frame, give --extrinsic X Y Z ROLL PITCH YAW, or accept the camera at the microphone "
        "with --allow-default-extrinsic"
    )


def run_bag(
    bag: Path,
    pipeline: Pipeline,
    front_end: BagFrontEnd,
    max_frames: int | None = None,
    integrity: IntegrityLog | None = None,
) -> Iterator[tuple[BagMessage, Frame, PipelineResult]]:
    """Every frame the node's assembly completes from ``bag``, with the pipeline's result.

    Yields (the message that completed the frame, the frame, the result). ``integrity`` as
    for ``read_bag``.
    """
    done = 0
    for message in read_bag(bag, front_end.read_topics, integrity):
        frame = front_end.feed(message)
        if frame is None:
            continue
        yield message, frame, pipeline.run(frame)
        done += 1
        if max_frames is not None and done >= max_frames:
            return


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_input_topics(bag: Path, topics: BagTopics) -> dict[str, str]:
    """The bag's topics; BagError naming the options when an input is missing or of the wrong type."""
    available = bag_topics(bag)
    missing = [t for t in topics.inputs if t not in available]
    if missing:
        raise BagError(
            f"{bag}: input topics {missing} not in the bag; it has {sorted(available)} "
            "(name them with --audio-topic, --rgb-topic, --depth-topic, --camera-info-topic)"
        )
    wrong = []
    for name, topic, expected in topics.typed_inputs():
        found = available.get(topic)
        if found is not None and found != expected:
            candidates = sorted(t for t, msgtype in available.items() if msgtype == expected)
            wrong.append(
                f"--{name.replace('_', '-')}-topic {topic} carries {found}, not {expected} "
                f"(the bag's {expected} topics: {candidates or 'none'})"
            )
    if wrong:
        raise BagError(f"{bag}: " + "; ".join(wrong))
    return available


def _check_model_directory(model: Path) -> None:
    """ValueError when ``--model`` names a file of a checkpoint instead of its directory."""
    if Path(model).is_file():
        raise ValueError(
            f"--model expects the checkpoint directory (holding {WEIGHTS_FILE} and {METADATA_FILE}), "
            f"not the file {model}; try --model {Path(model).parent}"
        )


def physics_directions(frame: Frame) -> np.ndarray:
    """The physics baseline of one frame: unit vectors [K, 3] (microphone frame) of the up to three
    sources that the FOA intensity vectors of its audio window point at (``FrameRecord``)."""
    estimates = candidate_directions(frame.audio, frame.sample_rate)
    return np.array([e.vector for e in estimates if e.known], dtype=np.float64).reshape(-1, 3)


def _write_outputs(
    bag: Path,
    pipeline: Pipeline,
    front_end: BagFrontEnd,
    options: ReplayOptions,
    output_bag: Path,
    integrity: IntegrityLog,
    progress: bool,
    with_physics: bool,
) -> tuple[list[FrameRecord], list[Snapshot]]:
    """Run every frame and write the node's outputs; returns the records and report snapshots.
    ``with_physics``: also find each frame's physics directions (only a bag with truth scores them)."""
    records: list[FrameRecord] = []
    keeper = SnapshotKeeper(options.report_frames)
    factory, style, outputs = MessageFactory(), options.marker_style, options.output_topics
    tracking = ReplayTracking(options.tracking, front_end.events)
    frames = run_bag(bag, pipeline, front_end, options.max_frames, integrity)
    if progress:
        frames = tqdm(frames, desc="replaying frames", unit="frame", disable=None)  # only on a terminal
    with removed_on_failure(output_bag), BagWriter(output_bag, storage=options.storage) as writer:
        for message, frame, result in frames:
            stamp, receive = frame.stamp_ns, message.stamp_ns
            motion = front_end.motion(stamp)
            hazards, tracks = tracking.update(result.hazards, stamp, motion)
            mic_frame = front_end.intake.microphone_frame_id or options.frames.microphone
            image_frame = front_end.intake.image_frame_id or options.frames.optical
            writer.write(outputs.hazards, receive, factory.hazard_array(stamp, mic_frame, hazards))
            specs = hazard_marker_specs(hazards, style) + track_marker_specs(tracks, style)
            header = factory.header(stamp, mic_frame)
            writer.write(outputs.markers, receive, marker_array_message(factory.new, header, specs))
            if options.detections_topic:
                detections = hazard_detections(hazards, pipeline.taxonomy.names)
                message = detection_array_message(factory.new, header, detections)
                writer.write(options.detections_topic, receive, message)
            writer.write(
                outputs.mask, receive, factory.mono8_image(stamp, image_frame, result.occlusion_mask)
            )
            untracked = result.hazards if tracking.tracker is not None else []
            physics = physics_directions(frame) if with_physics else np.zeros((0, 3))
            records.append(
                FrameRecord(stamp, hazards, result.top, result.occlusion_level, untracked, motion, physics)
            )
            keeper.offer(
                lambda frame=frame, result=result: Snapshot(
                    frame.stamp_ns, frame.rgb, result.occlusion_mask, frame.intrinsics
                )
            )
    if not records:
        raise BagError(
            f"{bag}: no frame could be assembled (drops: {front_end.events.snapshot() or 'none'}); "
            "check that the audio covers the image stamps and the topics are the right ones"
        )
    return records, keeper.evenly_spaced()


def replay(options: ReplayOptions, progress: bool = False) -> ReplayResult:
    """Replay ``options.bag`` through the model; write the output bag and the report.

    Every mcap chunk read is verified; a damaged one fails the replay unless
    ``options.skip_damaged``, and the result's ``integrity`` says what was skipped.
    """
    bag = resolve_bag_input(options.bag)
    if options.backend == "torch":  # onnxruntime also takes the .onnx file
        _check_model_directory(options.model)
    available = _check_input_topics(bag, options.topics)
    out = Path(options.out)
    output_bag = out / "bag"
    if output_bag.exists():
        raise BagError(f"{output_bag} already exists; remove it or choose another --out")
    integrity = IntegrityLog(skip_damaged=options.skip_damaged)
    try:
        extrinsic, extrinsic_source = resolve_extrinsic(bag, options, available, integrity)
        with torch_threads(options.threads):
            pipeline = Pipeline.from_checkpoint(
                options.model,
                options.device,
                options.confidence_threshold,
                extrinsic=extrinsic,
                precision=options.precision,
                backend=options.backend,
            )
            odometry = (
                options.odometry_topic
                if available.get(options.odometry_topic or "") == ODOMETRY_TYPE
                else None
            )
            front_end = BagFrontEnd(
                pipeline.window_samples,
                options.topics,
                options.slop_s,
                options.queue_size,
                options.assembly,
                odometry,
            )
            out.mkdir(parents=True, exist_ok=True)
            records, snapshots = _write_outputs(
                bag,
                pipeline,
                front_end,
                options,
                output_bag,
                integrity,
                progress,
                with_physics=has_truth(options.topics.ground_truth, available),
            )
        truth = read_truth(bag, options.topics.ground_truth, available, integrity)
    except DamagedBagError as exc:
        raise DamagedBagError(f"{exc}; --skip-damaged replays the rest and reports what it skipped") from exc
    result = ReplayResult(
        records=records,
        truth=truth,
        snapshots=snapshots,
        events=front_end.events.snapshot(),
        extrinsic=extrinsic,
        extrinsic_source=extrinsic_source,
        class_names=pipeline.taxonomy.names,
        window_s=pipeline.window_samples / pipeline.feature_config.sample_rate,
        bag=bag,
        output_bag=output_bag,
        inference=f"{pipeline.device} {pipeline.precision}"
        + ("" if pipeline.backend == "torch" else f" {pipeline.backend}"),
        integrity=integrity,
        tracking=options.tracking,
    )
    if options.report:
        write_report(result, out, progress=progress)
    return result


def has_truth(topic: str | None, available: dict[str, str]) -> bool:
    """Whether the bag holds the ground-truth ``topic`` with its type (a HazardEstimateArray)."""
    return bool(topic) and available.get(topic) == INPUT_TYPES["ground_truth"]


def read_truth(
    bag: Path, topic: str | None, available: dict[str, str], integrity: IntegrityLog | None = None
) -> dict[int, list[HazardEstimateData]]:
    """Ground-truth hazards by stamp [ns], from a HazardEstimateArray topic if the bag has one."""
    if not has_truth(topic, available):
        return {}
    return {
        stamp_to_ns(m.message.header.stamp): [hazard_from_message(h) for h in m.message.hazards]
        for m in read_bag(bag, [topic], integrity)
    }
