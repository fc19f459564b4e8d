"""The perception node's parameters as a user types them: an integer for a double parameter is taken
(``audio.buffer_s:=5``), ``--help`` lists every parameter the node declares, and an empty
``model_path`` means the model shipped with the package (a clean configure failure without it)."""

from __future__ import annotations

import os
import shutil

import pytest
import rclpy
from node_harness import TAXONOMY
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from avi_ros import shipped_model
from avi_ros.checkpoint import METADATA_FILE, WEIGHTS_FILE
from avi_ros.ros import perception_node
from avi_ros.ros.perception_node import PerceptionNode


@pytest.fixture(scope="module")
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=100 + (os.getpid() + 7) % 100)
    yield context
    rclpy.shutdown(context=context)


def _node(context, **overrides) -> PerceptionNode:
    params = {"extrinsic.from_tf": False, "device": "cpu", "autostart": False, **overrides}
    return PerceptionNode(
        context=context, parameter_overrides=[Parameter(name, value=value) for name, value in params.items()]
    )


def test_an_integer_for_a_double_parameter_is_taken_as_a_double(ros_context):
    node = _node(ros_context, **{"audio.buffer_s": 5, "tracking.gate_deg": 40, "telemetry.max_age_s": 1})
    try:
        for name, value in (
            ("audio.buffer_s", 5.0),
            ("tracking.gate_deg", 40.0),
            ("telemetry.max_age_s", 1.0),
        ):
            parameter = node.get_parameter(name)
            assert (parameter.type_, parameter.value) == (Parameter.Type.DOUBLE, value), name
        (result,) = node.set_parameters([Parameter("audio.max_wait_s", value=2)])
        assert result.successful
        assert node.get_parameter("audio.max_wait_s").type_ == Parameter.Type.DOUBLE
        (result,) = node.set_parameters([Parameter("audio.max_wait_s", value="two")])
        assert not result.successful and "audio.max_wait_s takes a number" in result.reason
        assert node.get_parameter("audio.max_wait_s").value == 2.0
        (result,) = node.set_parameters([Parameter("audio.max_wait_s", value=11)])  # range 0..10
        assert not result.successful
        assert node.get_parameter("audio.max_wait_s").value == 2.0
    finally:
        node.destroy_node()


def test_an_integer_out_of_a_double_parameters_range_is_refused(ros_context):
    with pytest.raises(InvalidParameterValueException, match=r"audio\.buffer_s"):
        _node(ros_context, **{"audio.buffer_s": 500})  # range 0.1..60 s
    with pytest.raises(InvalidParameterValueException, match=r"audio\.buffer_s takes a number"):
        _node(ros_context, **{"audio.buffer_s": "five"})


def test_help_lists_every_parameter_the_node_declares(ros_context, capsys):
    node = _node(ros_context)
    plain = Node("plain_node_for_comparison", context=ros_context)
    try:
        declared = set(node.list_parameters([], 0).names) - set(plain.list_parameters([], 0).names)
    finally:
        node.destroy_node()
        plain.destroy_node()
    assert perception_node.main(["perception_node", "--help"]) == 0
    help_text = capsys.readouterr().out
    entries = [line for line in help_text.splitlines() if line.startswith("  ") and line[2] != " "]
    listed = {line.split(" (default ")[0].strip() for line in entries}
    assert {"decision.model_path", "telemetry.odom_topic", "audio.buffer_s"} <= declared
    assert listed == declared


# --- the shipped model ---------------------------------------------------------------------------


@pytest.fixture
def shipped_dir(tmp_path, monkeypatch, tiny_checkpoint):
    """A tiny checkpoint standing in for the shipped model; the fixture returns its directory."""
    shipped = tmp_path / "shipped"
    source = tiny_checkpoint(TAXONOMY)
    shipped.mkdir()
    for name in (WEIGHTS_FILE, METADATA_FILE):
        shutil.copy(source / name, shipped / name)
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", shipped)
    return shipped


def test_an_empty_model_path_loads_the_shipped_model(ros_context, shipped_dir):
    assert shipped_model.resolve_model_path("") == shipped_model.resolve_model_path(None) == shipped_dir
    node = _node(ros_context, model_path="")
    try:
        assert node.start(), node.configure_error
        assert node.settings.model_path == str(shipped_dir)
        assert node.pipeline.taxonomy.names == TAXONOMY.names  # the stand-in's own class names
    finally:
        node.stop()
        node.destroy_node()


def test_without_shipped_weights_an_empty_model_path_fails_configure_in_one_line(
    ros_context, tmp_path, monkeypatch
):
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", tmp_path / "not_installed")
    node = _node(ros_context)
    try:
        assert node.start() is False
        assert node.pipeline is None
        error = node.configure_error
        assert "the shipped model is missing from this install" in error and str(tmp_path) in error
        assert "\n" not in error
    finally:
        node.destroy_node()
