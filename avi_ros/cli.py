"""``avi-ros``: the package's command line (``make-bag``, ``replay``, ``play``, ``echo``, ``predict``,
``export``).

Also runnable as ``python -m avi_ros.cli``. ``make-bag`` and ``replay`` need no ROS;
``play`` and ``echo`` import rclpy only when they run. Bad input ends with exit status 1 (2 for usage
errors) and one line on stderr that names the problem.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from avi_ros.audio import CHANNEL_ORDERS, NORMALIZATIONS
from avi_ros.bag.bag_topics import BagFrames, BagTopics
from avi_ros.bag.io import BagError
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD

EXIT_ERROR = 1
HOW_TO_GET_ROS = (
    "source a ROS 2 distribution (e.g. 'source /opt/ros/jazzy/setup.bash'), or in a source checkout run "
    "'make setup' and then 'source scripts/ros_env.sh'"
)


def _make_bag_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make-bag",
        help="write a synthetic moving-robot scenario as a rosbag2 bag",
        description="Write the node's input topics (FOA audio, RGB, depth, camera_info) and a ground-truth "
        "HazardEstimateArray topic for a scripted scenario. --out demo.mcap writes the rosbag2 directory "
        "demo/ (mcap); demo.db3 or --storage sqlite3 writes sqlite3.",
    )
    p.add_argument(
        "--out", required=True, type=Path, help="bag to write (directory; .mcap/.db3 picks storage)"
    )
    p.add_argument("--scenario", default="corridor", help="scripted scenario (corridor, workshop)")
    p.add_argument("--seed", type=int, default=0, help="random seed (sounds, noise); same seed, same bag")
    p.add_argument("--duration", type=float, default=None, help="cut the scenario to this many seconds")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default=None, help="rosbag2 storage plugin")
    p.add_argument("--camera-rate", type=float, default=15.0, help="RGB-D frame rate [Hz], 15-30")
    p.add_argument("--width", type=int, default=320, help="image width [px]")
    p.add_argument("--height", type=int, default=240, help="image height [px]")
    p.add_argument(
        "--depth-encoding", choices=["16UC1", "32FC1"], default="16UC1", help="depth image encoding"
    )
    p.add_argument(
        "--audio-format", choices=["float32", "int16", "int32"], default="float32", help="FoaAudio format"
    )
    p.add_argument("--no-tf-static", action="store_true", help="do not write /tf_static")


def _replay_parser(sub: argparse._SubParsersAction) -> None:
    defaults, frames = BagTopics(), BagFrames()
    p = sub.add_parser(
        "replay",
        help="run the node's frame assembly and model over a bag; write an output bag and a report",
        description="Offline replay: the same frame assembly and pipeline as the perception node, driven by "
        "the bag's receive times. Works on bags recorded on a robot: name its topics with the --*-topic "
        "options (FoaAudio audio, raw sensor_msgs/Image RGB and 16UC1/32FC1 depth, CameraInfo).",
    )
    p.add_argument("bag", type=Path, help="input bag (rosbag2 directory, or .mcap/.db3)")
    _model_argument(p)
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output directory (output bag in bag/, report index.html + PNGs)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda:N")
    p.add_argument(
        "--precision",
        default="auto",
        help="auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, bf16 (faster on CPUs with bf16 units) or fp16",
    )
    _backend_argument(p)
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is fastest for one frame at a time)"
    )
    p.add_argument("--audio-topic", default=defaults.audio, help="avi_ros/FoaAudio topic")
    p.add_argument("--rgb-topic", default=defaults.rgb, help="colour sensor_msgs/Image topic")
    p.add_argument("--depth-topic", default=defaults.depth, help="depth Image topic (16UC1 mm or 32FC1 m)")
    p.add_argument(
        "--camera-info-topic", default=defaults.camera_info, help="CameraInfo of the colour camera"
    )
    p.add_argument(
        "--ground-truth-topic",
        default=defaults.ground_truth,
        help="HazardEstimateArray ground truth; ignored when the bag has no such topic ('' to disable)",
    )
    p.add_argument("--slop", type=float, default=0.05, help="RGB-D sync slop [s]")
    p.add_argument(
        "--confidence-threshold",
        type=float,
        default=DEFAULT_CONFIDENCE_THRESHOLD,
        help="publish hazards at or above this confidence",
    )
    p.add_argument(
        "--extrinsic",
        type=float,
        nargs=6,
        metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW"),
        help="camera body pose in the microphone frame [m, rad]; default: from the bag's /tf_static",
    )
    p.add_argument(
        "--microphone-frame", default=frames.microphone, help="microphone TF frame (for /tf_static)"
    )
    p.add_argument("--camera-frame", default=frames.camera, help="camera body TF frame (for /tf_static)")
    p.add_argument(
        "--allow-default-extrinsic",
        action="store_true",
        help="when neither --extrinsic nor /tf_static gives the extrinsic, assume the camera at the "
        "microphone instead of failing",
    )
    p.add_argument(
        "--skip-damaged",
        action="store_true",
        help="read past damage instead of failing: mcap chunks that fail verification (CRC, compression), "
        "the lost end of an mcap file cut short (a killed recorder), a sqlite3 database that fails its "
        "checks; the summary and the report list what was skipped and the messages and bytes it lost",
    )
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap", help="output bag storage")
    p.add_argument("--no-report", action="store_true", help="write only the output bag")
    p.add_argument(
        "--report-frames", type=int, default=12, help="number of annotated PNG frames in the report"
    )
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="the node's parameters YAML (config/perception.yaml layout): its tracking.* settings are "
        "used; default: the node's defaults",
    )


def _play_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="publish a bag through rclpy with its original timing (for systems without ros2 bag)",
        description="Publish every topic of a bag (raw CDR, no re-encoding) at its recorded times. "
        "Arguments after --ros-args go to rclpy.",
    )
    p.add_argument("bag", type=Path, help="input bag (rosbag2 directory, or .mcap/.db3)")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    p.add_argument("--clock", action="store_true", help="also publish /clock (for use_sim_time)")
    p.add_argument("--clock-rate", type=float, default=40.0, help="/clock rate [Hz]")
    p.add_argument("--loop", action="store_true", help="play again from the start, forever")
    p.add_argument("--topics", nargs="+", default=None, help="play only these topics")
    p.add_argument("--remap", action="append", default=[], metavar="FROM:=TO", help="publish FROM as TO")
    p.add_argument(
        "--wait-for",
        action="append",
        default=[],
        metavar="TOPIC",
        help="wait until TOPIC has a subscriber before playing (repeatable)",
    )
    p.add_argument("--wait-timeout", type=float, default=60.0, help="seconds to wait for --wait-for")


def _echo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "echo",
        help="print the hazards a perception node publishes (for systems without ros2 topic echo)",
        description="One line per HazardEstimateArray; --jsonl also appends each message to a file.",
    )
    p.add_argument("--topic", default="/hazards", help="HazardEstimateArray topic")
    p.add_argument("--count", type=int, default=None, help="stop after this many messages")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--jsonl", type=Path, default=None, help="append every message to this JSON-lines file")
    p.add_argument("--quiet", action="store_true", help="do not print (with --jsonl)")
    p.add_argument(
        "--kind",
        choices=("hazards", "assessments"),
        default="hazards",
        help="hazards: HazardEstimateArray; assessments: the decision stage's HazardAssessment",
    )


def _predict_parser(sub: argparse._SubParsersAction) -> None:
    from avi_ros.predict import DEFAULT_MIC_WINDOW_S, OUTPUT_HELP

    p = sub.add_parser(
        "predict",
        help="what the model hears in an audio file (class, direction), beside a physics mic check",
        description="Read a 4-channel FOA file (ACN/SN3D by default) or a mono file (direction then "
        "unknown) in blocks, cut it into windows of the model's length and print, per window as it is "
        "computed, every hazard the node would publish (else its best guess): class probabilities, "
        "confidence, direction and distance, as the node would estimate them with a camera that sees "
        "nothing; beside them, the physics direction from the FOA intensity vector, its confidence and "
        "the input level. Mic check: a source on the robot's left must read azimuth about +90 "
        "(phys_az), on its right about -90; a mirror image means a wrong --channel-order, "
        "--normalization or mounting. --mic-check prints only the physics and needs no model.",
        epilog=OUTPUT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, help="audio file (WAV, FLAC, OGG, ...): 4-channel FOA or mono")
    _model_argument(p)
    p.add_argument("--hop", type=float, default=0.5, help="seconds between the ends of successive windows")
    p.add_argument("--channel-order", choices=CHANNEL_ORDERS, default="ACN", help="FOA channel order")
    p.add_argument("--normalization", choices=NORMALIZATIONS, default="SN3D", help="FOA normalisation")
    p.add_argument("--json", type=Path, default=None, help="also write every window to this JSON file")
    p.add_argument("--all-classes", action="store_true", help="print one probability column per class")
    p.add_argument(
        "--confidence-threshold",
        type=float,
        default=DEFAULT_CONFIDENCE_THRESHOLD,
        help="'hazard': not none, at least this confident",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda:N (checked before the model loads)")
    _backend_argument(p)
    p.add_argument(
        "--mic-check",
        action="store_true",
        help="physics only: direction, confidence and level per window, no model loaded",
    )
    p.add_argument(
        "--window",
        type=float,
        default=DEFAULT_MIC_WINDOW_S,
        help="window length for --mic-check [s] (with a model, the model's own window)",
    )


def _model_argument(p: argparse.ArgumentParser) -> None:
    """--model of the commands that load a model (replay, predict, export)."""
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="checkpoint directory (model.safetensors + metadata.json); default: the model shipped with "
        "the package",
    )


def _backend_argument(p: argparse.ArgumentParser) -> None:
    from avi_ros.onnx_backend import BACKENDS

    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="torch: the checkpoint's weights; onnxruntime: its exported graph (--model may then be "
        "the checkpoint directory holding model.onnx or the .onnx file; see avi-ros export --onnx)",
    )


def _export_parser(sub: argparse._SubParsersAction) -> None:
    from avi_ros.onnx_backend import DEFAULT_OPSET, ONNX_FILE

    p = sub.add_parser(
        "export",
        help="write the model as an ONNX graph (dynamic batch) for onnxruntime or TensorRT",
        description="Export the network of a checkpoint (features, image and view tokens in; the "
        "model's outputs out, under their own names; the STFT features stay outside) with a dynamic "
        f"batch axis, and a JSON sidecar ({ONNX_FILE}.json: input/output names and shapes, the "
        "checkpoint's metadata). Run it with --backend onnxruntime, or build a TensorRT engine: "
        f"trtexec --onnx={ONNX_FILE} --saveEngine=model.engine --fp16 with --minShapes/--optShapes/"
        "--maxShapes named by the input names of the sidecar.",
    )
    formats = p.add_mutually_exclusive_group(required=True)
    formats.add_argument("--onnx", action="store_true", help="write an ONNX graph (the one format so far)")
    _model_argument(p)
    p.add_argument(
        "--out", type=Path, default=None, help=f"ONNX file to write; default: {ONNX_FILE} in the checkpoint"
    )
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (at least {DEFAULT_OPSET})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avi-ros", description="avi_ros tools: scenario bags, offline replay, live play, hazard echo."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _make_bag_parser(sub)
    _replay_parser(sub)
    _play_parser(sub)
    _echo_parser(sub)
    _predict_parser(sub)
    _export_parser(sub)
    return parser


def _parse_remaps(pairs: list[str]) -> dict[str, str]:
    remap = {}
    for pair in pairs:
        source, sep, target = pair.partition(":=")
        if not sep or not source or not target:
            raise ValueError(f"--remap expects FROM:=TO, got '{pair}'")
        remap[source] = target
    return remap


def _run_make_bag(args: argparse.Namespace) -> int:
    from avi_ros.bag.make_bag import MakeBagOptions, make_bag

    options = MakeBagOptions(
        out=args.out,
        scenario=args.scenario,
        seed=args.seed,
        duration_s=args.duration,
        storage=args.storage,
        camera_rate_hz=args.camera_rate,
        width=args.width,
        height=args.height,
        depth_encoding=args.depth_encoding,
        audio_format=args.audio_format,
        tf_static=not args.no_tf_static,
    )
    summary = make_bag(options, progress=True)
    print(summary.describe())
    return 0


def _run_replay(args: argparse.Namespace) -> int:
    from avi_ros.bag.replay import ReplayOptions, replay
    from avi_ros.geometry import MicToCamera
    from avi_ros.onnx_backend import resolve_model_input
    from avi_ros.tracking import TrackerConfig
    from avi_ros.tracking.settings import tracker_config_from_params_file

    topics = BagTopics(
        audio=args.audio_topic,
        rgb=args.rgb_topic,
        depth=args.depth_topic,
        camera_info=args.camera_info_topic,
        ground_truth=args.ground_truth_topic or None,
    )
    extrinsic = None
    if args.extrinsic is not None:
        x, y, z, roll, pitch, yaw = args.extrinsic
        extrinsic = MicToCamera((x, y, z), (roll, pitch, yaw))
    options = ReplayOptions(
        bag=args.bag,
        model=resolve_model_input(args.model, args.backend),
        out=args.out,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        topics=topics,
        slop_s=args.slop,
        confidence_threshold=args.confidence_threshold,
        extrinsic=extrinsic,
        frames=BagFrames(microphone=args.microphone_frame, camera=args.camera_frame),
        allow_default_extrinsic=args.allow_default_extrinsic,
        skip_damaged=args.skip_damaged,
        storage=args.storage,
        report=not args.no_report,
        report_frames=args.report_frames,
        max_frames=args.max_frames,
        threads=args.threads,
        tracking=tracker_config_from_params_file(args.params_file) if args.params_file else TrackerConfig(),
    )
    summary = replay(options, progress=True)
    print(summary.describe())
    return 0


def _ros_module(name: str) -> ModuleType:
    """Import the rclpy side of a command; RuntimeError saying how to get ROS 2 when it is missing.

    Any module missing here (rclpy, the message packages, the generated ``avi_ros.msg``) means
    that this Python does not see a ROS 2 installation.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"this command needs ROS 2, and {exc}; {HOW_TO_GET_ROS}") from exc


def _run_play(args: argparse.Namespace, ros_args: list[str]) -> int:
    from avi_ros.bag.paths import resolve_bag_input

    play = _ros_module("avi_ros.ros.play")
    options = play.PlayOptions(
        rate=args.rate,
        clock=args.clock,
        clock_rate_hz=args.clock_rate,
        loop=args.loop,
        topics=tuple(args.topics) if args.topics else None,
        remap=_parse_remaps(args.remap),
        wait_for=tuple(args.wait_for),
        wait_timeout_s=args.wait_timeout,
    )
    stats = play.run_play(resolve_bag_input(args.bag), options, ros_args)
    total = sum(stats.published.values())
    print(
        f"published {total} messages on {len(stats.published)} topics in {stats.wall_duration_s:.1f} s "
        f"(latest message {stats.max_lateness_s * 1e3:.1f} ms behind schedule)"
    )
    return 0


def _run_echo(args: argparse.Namespace, ros_args: list[str]) -> int:
    echo = _ros_module("avi_ros.ros.echo")
    if args.count is not None and args.count < 1:
        raise ValueError(f"--count must be >= 1, got {args.count}")
    received = echo.run_echo(
        args.topic, args.count, args.timeout, args.jsonl, args.quiet, ros_args, kind=args.kind
    )
    print(f"received {received} messages on {args.topic}", file=sys.stderr)
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from avi_ros.predict import PredictOptions, run_predict

    run_predict(
        PredictOptions(
            file=args.file,
            model=args.model,
            hop_s=args.hop,
            channel_order=args.channel_order,
            normalization=args.normalization,
            json=args.json,
            all_classes=args.all_classes,
            confidence_threshold=args.confidence_threshold,
            device=args.device,
            backend=args.backend,
            mic_check=args.mic_check,
            window_s=args.window,
        )
    )
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from avi_ros.onnx_backend import export_checkpoint, sidecar_path
    from avi_ros.shipped_model import resolve_model_path

    path = export_checkpoint(resolve_model_path(args.model), args.out, args.opset)
    print(f"wrote {path} and {sidecar_path(path)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``avi-ros``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        at = argv.index("--ros-args")
        argv, ros_args = argv[:at], argv[at:]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "make-bag":
            return _run_make_bag(args)
        if args.command == "replay":
            return _run_replay(args)
        if args.command == "echo":
            return _run_echo(args, ros_args)
        if args.command == "predict":
            return _run_predict(args)
        if args.command == "export":
            return _run_export(args)
        return _run_play(args, ros_args)
    except (BagError, OSError, RuntimeError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"avi-ros {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
