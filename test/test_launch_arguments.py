"""launch/perception.launch.py: its arguments reach the node as the node's own parameters, and the
node process gets Fast DDS's large-data transports unless told otherwise.

Runs everywhere: launch and launch_ros (a full ROS 2 install, not on PyPI) are replaced by
stand-ins that record what the launch file builds, so the file's own logic runs without them.
test_launch.py starts the real thing where launch_pytest is installed.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from avi_ros import events
from avi_ros.onnx_backend import BACKENDS
from avi_ros.topics import SENSOR_STREAMS, SensorTopics

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO_ROOT / "launch" / "perception.launch.py"
PARAMS_FILE = REPO_ROOT / "config" / "perception.yaml"


class _Recorded:
    """A launch action or substitution: keeps its arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Recorded):
    def perform(self, context: dict[str, str]) -> str:
        return context[self.args[0]]


def _stub_modules() -> dict[str, types.ModuleType]:
    modules = {name: types.ModuleType(name) for name in ("launch", "launch_ros")}
    for name in ("launch.actions", "launch.launch_context", "launch.substitutions", "launch_ros.actions"):
        modules[name] = types.ModuleType(name)
    modules["launch"].LaunchDescription = _Recorded
    modules["launch.actions"].DeclareLaunchArgument = _Recorded
    modules["launch.actions"].OpaqueFunction = _Recorded
    modules["launch.actions"].LogInfo = _Recorded
    modules["launch.launch_context"].LaunchContext = dict
    modules["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    modules["launch_ros.actions"].LifecycleNode = _Recorded
    modules["launch_ros.actions"].Node = _Recorded
    return modules


@pytest.fixture
def launch_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    for name, module in _stub_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("perception_launch_under_test", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _declared(module: types.ModuleType) -> dict[str, str]:
    description = module.generate_launch_description()
    return {a.kwargs.get("name", a.args[0]): a.kwargs["default_value"] for a in description.args[0][:-1]}


def _node_parameters() -> set[str]:
    """Dotted names of every node parameter, from config/perception.yaml (kept equal to the node)."""
    tree = yaml.safe_load(PARAMS_FILE.read_text())["/**"]["ros__parameters"]

    def flatten(prefix: str, value: Any) -> set[str]:
        if isinstance(value, dict):
            return {name for key, sub in value.items() for name in flatten(f"{prefix}{key}.", sub)}
        return {prefix.rstrip(".")}

    return flatten("", tree)


def _actions(module: types.ModuleType, **arguments: str) -> list[_Recorded]:
    """What the launch file starts for ``arguments`` (the rest at their defaults)."""
    context = {**_declared(module), **arguments}
    return module.generate_launch_description().args[0][-1].kwargs["function"](context)


def _node_overrides(module: types.ModuleType, **arguments: str) -> dict[str, Any]:
    context = {**_declared(module), **arguments}
    node = _actions(module, **arguments)[0]
    assert node.kwargs["executable"] == "perception_node"
    params_file, overrides = node.kwargs["parameters"]
    assert params_file == context["params_file"]
    return overrides


def test_autostart_is_a_launch_argument_that_defaults_to_true(launch_module) -> None:
    assert _declared(launch_module)["autostart"] == "true"
    assert _node_overrides(launch_module)["autostart"] is True
    assert _node_overrides(launch_module, autostart="false")["autostart"] is False


def test_every_parameter_the_launch_file_sets_is_a_node_parameter(launch_module) -> None:
    names = _node_parameters() | {"use_sim_time"}  # use_sim_time: every ROS 2 node has it
    overrides = _node_overrides(
        launch_module, model_path="/tmp/checkpoint", backend="onnxruntime", publish_mic_tf="false"
    )
    assert overrides["model_path"] == "/tmp/checkpoint"
    assert overrides["backend"] == "onnxruntime"
    assert set(overrides) <= names, set(overrides) - names
    assert "autostart" in names


def test_without_a_model_path_the_node_gets_the_empty_one_that_means_the_shipped_model(launch_module) -> None:
    assert _declared(launch_module)["model_path"] == ""
    assert "model_path" not in _node_overrides(launch_module)  # the params file's value stands
    assert yaml.safe_load(PARAMS_FILE.read_text())["/**"]["ros__parameters"]["model_path"] == ""


def _choices(module: types.ModuleType) -> dict[str, tuple[str, ...]]:
    """name -> allowed values, for the arguments declared with ``choices``."""
    description = module.generate_launch_description()
    declared = description.args[0][:-1]
    return {a.kwargs.get("name", a.args[0]): a.kwargs["choices"] for a in declared if a.kwargs.get("choices")}


def test_backend_offers_the_node_backends_and_without_it_the_params_file_chooses(launch_module) -> None:
    assert set(_choices(launch_module)["backend"]) == {"", *BACKENDS}
    assert _declared(launch_module)["backend"] == ""
    assert "backend" not in _node_overrides(launch_module)  # the params file's value stands
    assert yaml.safe_load(PARAMS_FILE.read_text())["/**"]["ros__parameters"]["backend"] in BACKENDS
    for backend in BACKENDS:
        assert _node_overrides(launch_module, backend=backend)["backend"] == backend


def test_every_default_is_one_of_its_choices(launch_module) -> None:
    """launch refuses a DeclareLaunchArgument whose default is not among its choices."""
    declared = _declared(launch_module)
    for name, choices in _choices(launch_module).items():
        assert declared[name] in choices, name


def test_the_docstring_lists_every_declared_argument(launch_module) -> None:
    listed = launch_module.__doc__.split("--show-args``):", 1)[1].split("\n\n", 1)[0]
    for name in _declared(launch_module):
        assert name in listed, name


def _node_remaps(module: types.ModuleType, **arguments: str) -> list[tuple[str, str]]:
    context = {**_declared(module), **arguments}
    node = module.generate_launch_description().args[0][-1].kwargs["function"](context)[0]
    return node.kwargs["remappings"]


def test_the_topic_remaps_come_from_the_sensor_topics_table(launch_module) -> None:
    """One ``<stream>_topic`` argument per input stream of ``SensorTopics``, defaulting to its topic,
    and it remaps exactly that topic of the node."""
    inputs = SensorTopics().by_stream()
    declared = _declared(launch_module)
    assert {name: declared[name] for name in declared if name.endswith("_topic")} == {
        f"{stream}_topic": topic for stream, topic in inputs.items()
    }
    assert _node_remaps(launch_module) == [(topic, topic) for topic in inputs.values()]
    remaps = dict(_node_remaps(launch_module, depth_topic="/camera/aligned_depth/image_raw"))
    assert remaps[inputs["depth"]] == "/camera/aligned_depth/image_raw"
    assert tuple(inputs) == SENSOR_STREAMS == (events.AUDIO, events.RGB, events.DEPTH, events.CAMERA_INFO)


def test_the_parameter_file_names_the_node_topics() -> None:
    """config/perception.yaml names the RGB-D topics its ``image.queue_depth`` applies to: the
    node's own, so a renamed topic cannot leave the file stale."""
    text = PARAMS_FILE.read_text()
    rgb, depth, camera_info = SensorTopics().rgbd
    assert f"Subscription queue depth of {rgb}, {depth} and {camera_info}" in text


# --- the node's DDS transport ------------------------------------------------------------------

TRANSPORTS = "FASTDDS_BUILTIN_TRANSPORTS"


@pytest.fixture
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A shell that set neither the Fast DDS transports nor the RMW (Fast DDS, the default)."""
    monkeypatch.delenv(TRANSPORTS, raising=False)
    monkeypatch.delenv("RMW_IMPLEMENTATION", raising=False)
    return monkeypatch


def _node_env(module: types.ModuleType, **arguments: str) -> dict[str, str]:
    node = _actions(module, **arguments)[0]
    assert node.kwargs["executable"] == "perception_node"
    return node.kwargs["additional_env"]


def test_the_node_gets_the_large_data_transport_by_default(launch_module, plain_environment) -> None:
    assert _declared(launch_module)["large_data_transport"] == "true"
    assert _node_env(launch_module) == {TRANSPORTS: "LARGE_DATA"}
    logs = [a.kwargs["msg"] for a in _actions(launch_module) if "msg" in a.kwargs]
    assert any("camera driver" in text and f"{TRANSPORTS}=LARGE_DATA" in text for text in logs), logs


def test_large_data_transport_false_leaves_the_environment_alone(launch_module, plain_environment) -> None:
    assert _node_env(launch_module, large_data_transport="false") == {}
    assert not [a for a in _actions(launch_module, large_data_transport="false") if "msg" in a.kwargs]


def test_transports_the_user_chose_stand(launch_module, plain_environment) -> None:
    """A user's own FASTDDS_BUILTIN_TRANSPORTS reaches the node unchanged (it inherits the shell's)."""
    plain_environment.setenv(TRANSPORTS, "UDPv4")
    assert _node_env(launch_module) == {}


@pytest.mark.parametrize(
    ("rmw", "expected"),
    [
        ("rmw_fastrtps_cpp", {TRANSPORTS: "LARGE_DATA"}),
        ("rmw_fastrtps_dynamic_cpp", {TRANSPORTS: "LARGE_DATA"}),
        ("rmw_cyclonedds_cpp", {}),
        ("rmw_zenoh_cpp", {}),
    ],
)
def test_only_fast_dds_gets_its_transport_variable(launch_module, plain_environment, rmw, expected) -> None:
    plain_environment.setenv("RMW_IMPLEMENTATION", rmw)
    assert _node_env(launch_module) == expected
