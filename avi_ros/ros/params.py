"""Every parameter of the perception node: name, default, description, bounds; read into a dataclass.

One table declares them all, so ``ros2 param describe`` explains each one, and
``config/perception.yaml`` lists the same names (a test keeps the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from avi_ros.audio import CHANNEL_ORDERS, NORMALIZATIONS
from avi_ros.checkpoint import HOW_TO_MAKE_ONE
from avi_ros.frame_assembly import AssemblyConfig, AudioRingConfig
from avi_ros.hazard_markers import LENGTH_MODES, MarkerStyle
from avi_ros.interop.audio_common import AUDIO_INPUT_TYPES, FOA_INPUT
from avi_ros.onnx_backend import BACKENDS
from avi_ros.pipeline import PRECISIONS
from avi_ros.ros.diagnostics import IMAGE_AGE_WINDOW, LATE_IMAGE_MS, LATE_SHARE_WARN
from avi_ros.ros.qos import RELIABILITY_CHOICES
from avi_ros.topics import FrameIds
from avi_ros.tracking import TrackerConfig
from avi_ros.tracking.settings import ENABLED, PARAMETER_FIELDS, PREFIX, tracker_config
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD

TRAIN_HINT = HOW_TO_MAKE_ONE  # the package's model: its SELD pre-training, then the model itself
FRAMES = FrameIds()
TRACKER = TrackerConfig()  # the defaults of the tracking.* parameters


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model_path",
        "",
        "Checkpoint directory (weights + metadata) of a trained model; empty: the model shipped with "
        f"the package. Produce one with: {TRAIN_HINT}",
    ),
    ParamSpec("device", "auto", "Inference device: auto (CUDA if available), cpu, or cuda:N."),
    ParamSpec(
        "precision",
        "auto",
        "Inference precision: auto (bf16/fp16 autocast on CUDA, fp32 on CPU), fp32, bf16 or fp16. "
        "bf16 on a CPU with bf16 units (AVX-512-bf16, AMX) is about 2x faster than fp32 at a "
        "class-probability difference near 3e-4 (bench/bench_model.py).",
        choices=PRECISIONS,
    ),
    ParamSpec(
        "backend",
        "torch",
        "Inference backend: torch (the checkpoint's weights) or onnxruntime (its exported graph, "
        "model.onnx in the model_path directory or model_path naming the .onnx file; export with "
        "avi-ros export --onnx; fp32 only).",
        choices=BACKENDS,
    ),
    ParamSpec(
        "cpu_threads",
        0,
        "torch intra-op threads for CPU work; 0 = one fewer than the machine's cores (at least 1), "
        "leaving a core to the executor and the sensor callbacks.",
        0,
        256,
    ),
    ParamSpec(
        "confidence_threshold",
        DEFAULT_CONFIDENCE_THRESHOLD,
        "Hazards below this calibrated confidence are not published [0..1].",
        0.0,
        1.0,
    ),
    ParamSpec(
        "audio.buffer_s", 4.0, "Audio kept in the ring buffer [s]; >= model window + max wait.", 0.1, 60.0
    ),
    ParamSpec(
        "audio.max_wait_s",
        0.3,
        "How long a synchronised RGB-D frame waits for its audio window before it is dropped [s]. "
        "Frames wait side by side (a newer frame never pushes out a waiting one); the newest "
        "complete frame is inferred.",
        0.0,
        10.0,
    ),
    ParamSpec(
        "audio.max_gap_fill_s",
        0.1,
        "Gaps in the audio up to this long are zero-filled; longer gaps drop the frames that span them [s].",
        0.0,
        5.0,
    ),
    ParamSpec(
        "audio.stamp_jitter_s",
        0.002,
        "Audio chunk stamps within this of the expected time are taken as contiguous [s].",
        0.0,
        0.1,
    ),
    ParamSpec(
        "audio.queue_depth",
        50,
        "Subscription queue depth of the audio topic [messages]. Holds the chunks that arrive while the "
        "executor is busy: 50 is 1 s of 20 ms chunks (the sensor-data profile's 5 loses audio under load).",
        1,
        1000,
    ),
    ParamSpec(
        "image.queue_depth",
        5,
        "Subscription queue depth of the RGB, depth and camera_info topics [messages] (the sensor-data "
        "profile's 5). Small: only the newest frame is processed; the synchroniser keeps sync.queue_size.",
        1,
        100,
    ),
    ParamSpec(
        "image.late_ms",
        LATE_IMAGE_MS,
        "An RGB or depth image that arrives this much later (stamp to arrival) than the fastest images "
        f"is late [ms]; when {LATE_SHARE_WARN:.0%} of the last {IMAGE_AGE_WINDOW} are late, /diagnostics "
        "warns and names the DDS transport (FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA for the camera driver "
        "and this node).",
        1.0,
        10000.0,
    ),
    ParamSpec(
        "time_jump_reset_s",
        1.0,
        "A stamp (or /clock) this far behind the newest one means time went backwards (bag loop): "
        "the audio buffer, the waiting frames and the RGB-D synchroniser queues reset [s].",
        0.01,
        3600.0,
    ),
    ParamSpec("sync.slop_s", 0.05, "RGB/depth/camera_info stamps within this are one frame [s].", 1e-4, 10.0),
    ParamSpec("sync.queue_size", 10, "Messages per input kept for RGB-D synchronisation.", 1, 1000),
    ParamSpec(
        "frames.microphone",
        FRAMES.microphone,
        "TF frame of the microphone array (REP-103); frame_id of hazards and markers.",
    ),
    ParamSpec(
        "frames.camera",
        FRAMES.camera,
        "TF frame of the camera body (REP-103, x forward; not the optical frame), for the tf2 lookup.",
    ),
    ParamSpec(
        "extrinsic.xyz",
        [0.0, 0.0, 0.0],
        "Camera body origin in the microphone frame [m] (x, y, z).",
    ),
    ParamSpec(
        "extrinsic.rpy",
        [0.0, 0.0, 0.0],
        "Camera body orientation in the microphone frame [rad] (roll, pitch, yaw).",
    ),
    ParamSpec(
        "extrinsic.from_tf",
        True,
        "Where tf2_ros is installed, look up frames.microphone -> frames.camera at configure "
        "and use it instead of extrinsic.xyz/rpy.",
    ),
    ParamSpec("extrinsic.tf_timeout_s", 2.0, "How long the tf2 lookup may wait at configure [s].", 0.0, 60.0),
    ParamSpec(
        "qos_reliability",
        "best_effort",
        "Reliability of the sensor subscriptions (REP-2003): best_effort (receives from any publisher) "
        "or reliable.",
        choices=tuple(RELIABILITY_CHOICES),
    ),
    ParamSpec(
        "publish_markers",
        True,
        "Publish RViz markers (arrows + labels) on 'markers', while someone subscribes to it.",
    ),
    ParamSpec(
        "publish_mask",
        True,
        "Publish the occlusion mask (mono8) on 'occlusion_mask', while someone subscribes to it.",
    ),
    ParamSpec(
        "publish_detections",
        True,
        "Also publish the hazards as vision_msgs/Detection3DArray on 'hazards/detections' (class "
        "hypotheses, position with covariance, track id), where vision_msgs is installed.",
    ),
    ParamSpec(
        "target_frame",
        "",
        "TF frame the detections are published in, through tf2 where it is installed (the hazards "
        "stay in frames.microphone); empty or unavailable: frames.microphone.",
    ),
    ParamSpec(
        "audio.input_type",
        FOA_INPUT,
        "Audio input on 'audio': foa (avi_ros/FoaAudio) or audio_common (audio_common_msgs/"
        "AudioDataStamped, described by AudioInfo on 'audio_info'; where the package is missing, "
        "the node says so and reads FoaAudio).",
        choices=AUDIO_INPUT_TYPES,
    ),
    ParamSpec(
        "audio.channel_order",
        "ACN",
        "Ambisonic channel order of audio_common input (its messages do not say).",
        choices=CHANNEL_ORDERS,
    ),
    ParamSpec(
        "audio.normalization",
        "SN3D",
        "Ambisonic normalisation of audio_common input (its messages do not say).",
        choices=NORMALIZATIONS,
    ),
    ParamSpec(
        "markers.length_mode",
        "distance",
        "Arrow length from the estimated distance, or from the confidence.",
        choices=LENGTH_MODES,
    ),
    ParamSpec("markers.lifetime_s", 0.5, "How long RViz shows a marker without a refresh [s].", 0.0, 60.0),
    ParamSpec("markers.max_length_m", 5.0, "Longest arrow [m].", 0.1, 100.0),
    ParamSpec(
        "tracking.enabled",
        True,
        "Give each hazard a track (track_id, track_state, first_seen, track_age, angular_velocity, "
        "range_rate) and draw the confirmed tracks' trails in 'markers'; false: every hazard is "
        "published untracked (track_id 0, TRACK_NONE).",
    ),
    ParamSpec(
        "tracking.min_hits",
        TRACKER.min_hits,
        "Frames a hazard must be matched in before its track is confirmed; from its first frame until "
        "then it is published with its id as TRACK_TENTATIVE, and keeps the id when confirmed [frames].",
        1,
        100,
    ),
    ParamSpec(
        "tracking.max_missed_s",
        TRACKER.max_missed_s,
        "A track (tentative or confirmed) without a detection for this long ends; a detection back "
        "within it keeps the id [s].",
        0.01,
        60.0,
    ),
    ParamSpec(
        "tracking.gate_deg",
        TRACKER.gate_deg,
        "Widest angle a detection may lie beyond a track's predicted region (5-sigma azimuth spread) [deg].",
        1.0,
        180.0,
    ),
    ParamSpec(
        "tracking.reset_gap_s",
        TRACKER.reset_gap_s,
        "A longer gap between two inferred frames (or a stamp going back) clears the tracks; ids "
        "keep increasing [s].",
        0.01,
        3600.0,
    ),
    ParamSpec(
        "tracking.publish_filtered",
        TRACKER.publish_filtered,
        "Publish a tracked hazard's filtered direction and distance instead of the frame's estimate.",
    ),
    ParamSpec("diagnostics_period_s", 1.0, "Period of the /diagnostics status [s].", 0.05, 60.0),
    ParamSpec(
        "autostart", True, "Configure and activate at start-up; false waits for lifecycle transitions."
    ),
)


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    description = spec.description
    if spec.choices:
        description += f" One of: {', '.join(spec.choices)}."
    descriptor = ParameterDescriptor(description=description)
    if spec.minimum is not None and spec.maximum is not None:
        if isinstance(spec.default, bool) or not isinstance(spec.default, int | float):
            raise TypeError(f"parameter {spec.name}: a range needs a numeric default")
        if isinstance(spec.default, int):
            descriptor.integer_range = [
                IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum))
            ]
        else:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(spec.minimum), to_value=float(spec.maximum))
            ]
    return descriptor


def usage(specs: tuple[ParamSpec, ...] = PARAMETERS) -> str:
    """Command-line help listing ``specs`` (pass every table the node declares), for ``--help``."""
    lines = [
        "usage: ros2 run avi_ros perception_node --ros-args [-p NAME:=VALUE ...]",
        "       ros2 launch avi_ros perception.launch.py [model_path:=DIR]",
        "",
        "parameters (defaults in config/perception.yaml):",
    ]
    for spec in specs:
        lines.append(f"  {spec.name} (default {spec.default!r})")
        lines.append(f"      {_descriptor(spec).description}")
    return "\n".join(lines)


def declare_parameters(node: Node, specs: tuple[ParamSpec, ...] = PARAMETERS) -> None:
    """Declare ``specs`` (the node's own table by default) with their descriptions and ranges.

    A parameter with a float default also takes an integer (``audio.buffer_s:=5``, which rclpy
    parses as an integer and would refuse for a double), stored as a double within its range;
    any other type is refused, as rclpy refuses it for a statically typed parameter.
    """
    doubles = {spec.name for spec in specs if isinstance(spec.default, float)}
    if doubles:
        node.add_pre_set_parameters_callback(lambda parameters: _integers_as_doubles(parameters, doubles))
        node.add_on_set_parameters_callback(lambda parameters: _numbers_only(parameters, doubles))
    for spec in specs:
        descriptor = _descriptor(spec)
        descriptor.dynamic_typing = spec.name in doubles  # the callbacks above keep it a double
        parameter = node.declare_parameter(spec.name, spec.default, descriptor)
        if spec.name in doubles and parameter.type_ == Parameter.Type.INTEGER:
            # rclpy calls no pre-set callback for a declaration: convert (and range-check) here.
            (result,) = node.set_parameters([Parameter(spec.name, value=float(parameter.value))])
            if not result.successful:
                raise InvalidParameterValueException(spec.name, parameter.value, result.reason)


def _integers_as_doubles(parameters: list[Parameter], doubles: set[str]) -> list[Parameter]:
    return [
        Parameter(p.name, value=float(p.value))
        if p.name in doubles and p.type_ == Parameter.Type.INTEGER
        else p
        for p in parameters
    ]


def _numbers_only(parameters: list[Parameter], doubles: set[str]) -> SetParametersResult:
    for p in parameters:
        # An integer only arrives from a declaration, which converts it right after.
        if p.name in doubles and p.type_ not in (Parameter.Type.DOUBLE, Parameter.Type.INTEGER):
            return SetParametersResult(
                successful=False, reason=f"parameter {p.name} takes a number, got {p.value!r}"
            )
    return SetParametersResult(successful=True)


@dataclass(frozen=True)
class NodeSettings:
    """The parameters, validated, in the shapes the core wants."""

    model_path: str
    device: str
    precision: str
    backend: str
    cpu_threads: int
    confidence_threshold: float
    assembly: AssemblyConfig
    audio_queue_depth: int
    image_queue_depth: int
    late_image_ms: float
    sync_slop_s: float
    sync_queue_size: int
    microphone_frame: str
    camera_frame: str
    extrinsic_xyz: tuple[float, float, float]
    extrinsic_rpy: tuple[float, float, float]
    extrinsic_from_tf: bool
    tf_timeout_s: float
    qos_reliability: str
    publish_markers: bool
    publish_mask: bool
    publish_detections: bool
    target_frame: str  # "": the microphone frame
    audio_input_type: str
    audio_channel_order: str
    audio_normalization: str
    marker_style: MarkerStyle
    diagnostics_period_s: float
    tracker: TrackerConfig | None  # None: tracking.enabled is false


def _triple(name: str, value: Any) -> tuple[float, float, float]:
    values = [float(v) for v in value]
    if len(values) != 3:
        raise ValueError(f"parameter {name} needs 3 values, got {len(values)}")
    return values[0], values[1], values[2]


def read_settings(node: Node) -> NodeSettings:
    """Read and validate every parameter; raises ValueError naming the parameter."""
    p = {spec.name: node.get_parameter(spec.name).value for spec in PARAMETERS}
    for spec in PARAMETERS:
        if spec.choices and p[spec.name] not in spec.choices:
            raise ValueError(f"parameter {spec.name} must be one of {spec.choices}, got '{p[spec.name]}'")
    device = str(p["device"])
    if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ValueError(f"parameter device must be auto, cpu or cuda:N, got '{device}'")
    jump = float(p["time_jump_reset_s"])
    ring = AudioRingConfig(
        capacity_s=float(p["audio.buffer_s"]),
        max_gap_fill_s=float(p["audio.max_gap_fill_s"]),
        stamp_jitter_s=float(p["audio.stamp_jitter_s"]),
        backwards_reset_s=jump,
    )
    return NodeSettings(
        model_path=str(p["model_path"]),
        device=device,
        precision=str(p["precision"]),
        backend=str(p["backend"]),
        cpu_threads=int(p["cpu_threads"]),
        confidence_threshold=float(p["confidence_threshold"]),
        assembly=AssemblyConfig(
            ring=ring, max_audio_wait_s=float(p["audio.max_wait_s"]), backwards_reset_s=jump
        ),
        audio_queue_depth=int(p["audio.queue_depth"]),
        image_queue_depth=int(p["image.queue_depth"]),
        late_image_ms=float(p["image.late_ms"]),
        sync_slop_s=float(p["sync.slop_s"]),
        sync_queue_size=int(p["sync.queue_size"]),
        microphone_frame=str(p["frames.microphone"]),
        camera_frame=str(p["frames.camera"]),
        extrinsic_xyz=_triple("extrinsic.xyz", p["extrinsic.xyz"]),
        extrinsic_rpy=_triple("extrinsic.rpy", p["extrinsic.rpy"]),
        extrinsic_from_tf=bool(p["extrinsic.from_tf"]),
        tf_timeout_s=float(p["extrinsic.tf_timeout_s"]),
        qos_reliability=str(p["qos_reliability"]),
        publish_markers=bool(p["publish_markers"]),
        publish_mask=bool(p["publish_mask"]),
        publish_detections=bool(p["publish_detections"]),
        target_frame=str(p["target_frame"]),
        audio_input_type=str(p["audio.input_type"]),
        audio_channel_order=str(p["audio.channel_order"]),
        audio_normalization=str(p["audio.normalization"]),
        marker_style=MarkerStyle(
            length_mode=str(p["markers.length_mode"]),
            lifetime_s=float(p["markers.lifetime_s"]),
            max_length_m=float(p["markers.max_length_m"]),
        ),
        diagnostics_period_s=float(p["diagnostics_period_s"]),
        tracker=tracker_config({name: p[PREFIX + name] for name in (ENABLED, *PARAMETER_FIELDS)}),
    )
