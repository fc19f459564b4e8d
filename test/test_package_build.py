"""The colcon install tree has everything `ros2 run` / `ros2 launch` need, and the core
library works from a plain pip install with no ROS at all."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from subprocess_helpers import run_ok

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_PREFIX = REPO_ROOT / "install" / "avi_ros"
PY_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"


def test_install_tree_has_share_files():
    share = INSTALL_PREFIX / "share" / "avi_ros"
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "perception.launch.py").is_file()
    assert (share / "config" / "perception.yaml").is_file()


def test_generated_messages_sit_next_to_handwritten_modules():
    package = INSTALL_PREFIX / "lib" / PY_DIR / "site-packages" / "avi_ros"
    assert (package / "msg" / "__init__.py").is_file()
    assert (package / "msg" / "_hazard_estimate.py").is_file()
    for module in ("__init__.py", "taxonomy.py", "audio.py", "geometry.py", "pipeline.py"):
        assert (package / module).is_file(), module
    assert (package / "ros" / "perception_node.py").is_file()
    assert os.access(INSTALL_PREFIX / "lib" / "avi_ros" / "avi-ros", os.X_OK)


def test_perception_node_executable_is_installed_and_runs():
    node = INSTALL_PREFIX / "lib" / "avi_ros" / "perception_node"
    assert node.is_file() and os.access(node, os.X_OK)
    result = run_ok([str(node), "--help"], REPO_ROOT, timeout_s=120)
    assert "model_path" in result.stdout


def test_avi_ros_is_on_path_after_sourcing_ros_env():
    """The README's bag commands start with `avi-ros`: sourcing ros_env.sh must make it a command."""
    keep = ("HOME", "USER", "LANG", "TMPDIR", "AVI_ROS_VENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # nothing of the venv or the install tree yet
    result = run_ok(
        ["bash", "-c", "source scripts/ros_env.sh && command -v avi-ros && avi-ros --help"], REPO_ROOT, env
    )
    where, _, usage = result.stdout.partition("\n")
    assert Path(where).resolve().is_relative_to(REPO_ROOT), where
    assert "make-bag" in usage and "replay" in usage


# Imports of ROS that the core must never need; any of them raises ImportError in the probe.
_NO_ROS_PROBE = """
import importlib, importlib.abc, pkgutil, sys
BLOCKED = ("rclpy", "rosidl", "rpyutils", "rosbag2_py", "std_msgs", "sensor_msgs",
           "geometry_msgs", "builtin_interfaces", "launch")
class BlockRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith(BLOCKED):
            raise ImportError(f"{name} is blocked: the core must not import ROS")
sys.meta_path.insert(0, BlockRos())
import avi_ros
assert avi_ros.__file__.startswith(sys.argv[1]), avi_ros.__file__
skip = ("avi_ros.ros", "avi_ros.msg")
names = [m.name for m in pkgutil.walk_packages(avi_ros.__path__, "avi_ros.")
         if not m.name.startswith(skip)]
for name in names:
    importlib.import_module(name)
print(len(names), "modules imported")
"""


@pytest.mark.slow
def test_core_imports_from_plain_pip_install_without_ros(tmp_path):
    """Build the wheel pip would install, install it into an empty target, and import
    every non-ROS module with all ROS imports blocked and no ROS paths in sight."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir), str(REPO_ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheel_dir.glob("avi_ros-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "avi_ros/taxonomy.py" in names
    assert not any(n.startswith("avi_ros/msg/") for n in names), "generated msgs leaked into the wheel"
    assert "avi_ros/sounds/catalogue.csv" in names, "the sound catalogue is missing from the wheel"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], check=True
    )

    # Only the venv's third-party packages plus the wheel: no checkout, no install tree.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMENT", "COLCON", "ROS"))}
    env["PYTHONPATH"] = str(target)
    result = run_ok([sys.executable, "-c", _NO_ROS_PROBE, str(target)], tmp_path, env)
    assert "modules imported" in result.stdout
