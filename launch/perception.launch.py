"""Launch the avi_ros perception node, a static transform for the microphone array and, optionally, RViz.

    ros2 launch avi_ros perception.launch.py [model_path:=/path/to/checkpoint] [rviz:=true]

Without ``model_path`` (here or in ``params_file``) the node loads the model shipped with the package.
``backend:=onnxruntime`` runs the exported graph (``avi-ros export --onnx`` writes model.onnx into
the checkpoint directory; needs the onnxruntime package) instead of the torch weights.

Arguments (``ros2 launch avi_ros perception.launch.py --show-args``):
    namespace, params_file, model_path, backend, device, use_sim_time, autostart, rviz,
    microphone_frame, base_frame, mic_xyz, mic_rpy, publish_mic_tf, large_data_transport,
    and the topic remaps audio_topic, rgb_topic, depth_topic, camera_info_topic.

``autostart:=false`` starts the lifecycle node unconfigured, for a lifecycle manager (or
``ros2 lifecycle set``) to configure and activate it.

Camera images (0.9 MB at 640x480 rgb8) are large for Fast DDS's default transports, which
deliver about half of them late or not at all. The node process therefore gets
``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` (shared memory on one host, TCP between hosts; Fast DDS
>= 2.13, ROS 2 Jazzy and later), unless ``large_data_transport:=false``, the variable is already
set, or ``RMW_IMPLEMENTATION`` names another RMW. The camera driver's process needs the same
variable: this file does not start it.

The static transform base_frame -> microphone_frame is published only where tf2_ros is
installed. The paths below are relative to this file, so the same launch file works from
the install tree (share/avi_ros/launch) and from a source checkout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.launch_context import LaunchContext
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from avi_ros.topics import SensorTopics
from launch import LaunchDescription

INPUTS = SensorTopics()  # the node's input topics; each stream gets a ``<stream>_topic`` remap argument
TOPIC_HELP = {
    "audio": "FoaAudio input topic.",
    "rgb": "RGB image input topic.",
    "depth": "Depth image input topic (16UC1 mm or 32FC1 m).",
    "camera_info": "CameraInfo of the RGB camera.",
}
SHARE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_PARAMS = SHARE_DIR / "config" / "perception.yaml"
RVIZ_CONFIG = SHARE_DIR / "config" / "avi_ros.rviz"
FASTDDS_TRANSPORTS = "FASTDDS_BUILTIN_TRANSPORTS"  # read by Fast DDS when the node's participant starts
FASTDDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")  # "" (unset) is Fast DDS too: the default

ARGUMENTS = (
    ("namespace", "", "Namespace of the node (topics resolve inside it)."),
    ("params_file", str(DEFAULT_PARAMS), "YAML file with the node's parameters."),
    (
        "model_path",
        "",
        "Checkpoint directory; overrides params_file when set. Empty in both: the shipped model.",
    ),
    (
        "backend",
        "",
        "Inference backend: torch (the checkpoint's weights) or onnxruntime (its exported model.onnx); "
        "overrides params_file when set.",
    ),
    ("device", "auto", "Inference device: auto, cpu or cuda:N."),
    ("use_sim_time", "false", "Use /clock (bag replay)."),
    (
        "autostart",
        "true",
        "Configure and activate the node at start-up; false leaves the transitions to a lifecycle manager.",
    ),
    ("rviz", "false", "Start RViz with config/avi_ros.rviz."),
    ("microphone_frame", "foa_microphone", "TF frame of the microphone array (frame_id of the hazards)."),
    ("base_frame", "base_link", "Parent frame of the static microphone transform."),
    ("mic_xyz", "0 0 0", "Microphone position in base_frame [m]: 'x y z'."),
    ("mic_rpy", "0 0 0", "Microphone orientation in base_frame [rad]: 'roll pitch yaw'."),
    ("publish_mic_tf", "true", "Publish base_frame -> microphone_frame (needs tf2_ros)."),
    (
        "large_data_transport",
        "true",
        f"Start the node with {FASTDDS_TRANSPORTS}=LARGE_DATA (Fast DDS only; not when already set). "
        "Set it for the camera driver too.",
    ),
    *(
        (f"{stream}_topic", topic, f"{TOPIC_HELP[stream]} (remaps {topic})")
        for stream, topic in INPUTS.by_stream().items()
    ),
)
# The allowed values of the arguments that have a fixed set; "" keeps params_file's value.
# backend: avi_ros.onnx_backend.BACKENDS (not imported: that module loads torch).
CHOICES = {"backend": ("", "torch", "onnxruntime")}


def _is_true(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _three_numbers(name: str, text: str) -> list[str]:
    values = text.replace(",", " ").split()
    if len(values) != 3:
        raise ValueError(f"launch argument {name} needs three numbers, got '{text}'")
    return [str(float(v)) for v in values]


def transport_env(enabled: bool, environment: Mapping[str, str]) -> dict[str, str]:
    """The node's extra environment: Fast DDS's LARGE_DATA transports, or nothing when ``enabled``
    is false, the user already chose the transports, or the RMW is not Fast DDS."""
    rmw = environment.get("RMW_IMPLEMENTATION", "")
    if not enabled or FASTDDS_TRANSPORTS in environment or (rmw and rmw not in FASTDDS_RMWS):
        return {}
    return {FASTDDS_TRANSPORTS: "LARGE_DATA"}


def _tf2_installed() -> bool:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return False
    try:
        get_package_prefix("tf2_ros")
    except PackageNotFoundError:
        return False
    return True


def _actions(context: LaunchContext) -> list:
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    namespace = arg["namespace"]
    use_sim_time = _is_true(arg["use_sim_time"])
    overrides = {
        "device": arg["device"],
        "use_sim_time": use_sim_time,
        "autostart": _is_true(arg["autostart"]),
        "frames.microphone": arg["microphone_frame"],
    }
    for name in ("model_path", "backend"):  # empty: the params file's value stands
        if arg[name]:
            overrides[name] = arg[name]
    node_env = transport_env(_is_true(arg["large_data_transport"]), os.environ)
    actions = [
        LifecycleNode(
            package="avi_ros",
            executable="perception_node",
            name="perception_node",
            namespace=namespace,
            parameters=[arg["params_file"], overrides],
            remappings=[(topic, arg[f"{stream}_topic"]) for stream, topic in INPUTS.by_stream().items()],
            additional_env=node_env,
            output="screen",
            emulate_tty=True,
        )
    ]
    if node_env:
        actions.append(
            LogInfo(
                msg=f"perception_node runs with {FASTDDS_TRANSPORTS}=LARGE_DATA; start the camera driver "
                "with it too, or its images arrive late (see /diagnostics)"
            )
        )
    if _is_true(arg["publish_mic_tf"]) and _tf2_installed():
        x, y, z = _three_numbers("mic_xyz", arg["mic_xyz"])
        roll, pitch, yaw = _three_numbers("mic_rpy", arg["mic_rpy"])
        actions.append(
            Node(
                package="tf2_ros",
                executable="static_transform_publisher",
                name="microphone_static_tf",
                namespace=namespace,
                arguments=[
                    *("--x", x, "--y", y, "--z", z),
                    *("--roll", roll, "--pitch", pitch, "--yaw", yaw),
                    *("--frame-id", arg["base_frame"], "--child-frame-id", arg["microphone_frame"]),
                ],
                parameters=[{"use_sim_time": use_sim_time}],
            )
        )
    if _is_true(arg["rviz"]):
        actions.append(
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                namespace=namespace,
                arguments=["-d", str(RVIZ_CONFIG), "--fixed-frame", arg["microphone_frame"]],
                parameters=[{"use_sim_time": use_sim_time}],
                remappings=[(INPUTS.rgb, arg["rgb_topic"])],
                output="screen",
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text, choices=CHOICES.get(name))
        for name, default, text in ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_actions)])
