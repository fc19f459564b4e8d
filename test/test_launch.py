"""launch/perception.launch.py brings the node up active and publishing (launch_pytest).

launch, launch_ros and launch_pytest come with a full ROS 2 install (they are not on PyPI),
and the node must be installed (colcon build) for ``ros2 launch`` to find it; elsewhere the
module is skipped.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

launch_pytest = pytest.importorskip(
    "launch_pytest", reason="launch_pytest (a full ROS 2 install) is needed to test perception.launch.py"
)

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from lifecycle_msgs.msg import State  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402
from model_helpers import tiny_model  # noqa: E402

from avi_ros.checkpoint import save_checkpoint  # noqa: E402
from avi_ros.features import FeatureConfig  # noqa: E402
from avi_ros.taxonomy import default_taxonomy  # noqa: E402
from avi_ros.topics import OutputTopics  # noqa: E402
from launch import LaunchDescription  # noqa: E402

OUTPUTS = OutputTopics()  # the node's output topics, as it names them

pytestmark = [pytest.mark.ros, pytest.mark.slow]

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "perception.launch.py"
NAMESPACE = "launch_test"


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory) -> Path:
    taxonomy = default_taxonomy()
    model = tiny_model(taxonomy.num_classes)
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt"), model, FeatureConfig(window_seconds=0.5), taxonomy
    )


@launch_pytest.fixture
def launch_description(checkpoint_dir):
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={
            "namespace": NAMESPACE,
            "model_path": str(checkpoint_dir),
            "device": "cpu",
            "rviz": "false",
        }.items(),
    )
    return LaunchDescription([include, launch_pytest.actions.ReadyToTest()])


@pytest.fixture
def ros_node():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0")))
    node = rclpy.create_node("launch_test_probe", context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


@pytest.mark.launch(fixture=launch_description)
def test_launched_node_becomes_active_and_reports_diagnostics(ros_node):
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=ros_node.context)
    executor.add_node(ros_node)
    client = ros_node.create_client(GetState, f"/{NAMESPACE}/perception_node/get_state")
    assert client.wait_for_service(timeout_sec=60.0), "perception_node's lifecycle services never appeared"

    deadline = time.monotonic() + 60.0
    state = None
    while time.monotonic() < deadline:
        future = client.call_async(GetState.Request())
        executor.spin_until_future_complete(future, timeout_sec=5.0)
        state = future.result().current_state.id if future.result() else None
        if state == State.PRIMARY_STATE_ACTIVE:
            break
        time.sleep(0.5)
    assert state == State.PRIMARY_STATE_ACTIVE

    received: list[DiagnosticArray] = []
    ros_node.create_subscription(DiagnosticArray, OUTPUTS.diagnostics, received.append, 10)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and not any(
        "perception_node" in status.name for msg in received for status in msg.status
    ):
        executor.spin_once(timeout_sec=0.2)
    assert any("perception_node" in status.name for msg in received for status in msg.status)
    executor.remove_node(ros_node)
