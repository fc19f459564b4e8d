"""package.xml follows the ROS conventions that `rosdep install` and `colcon test` rely on.

rosdep itself needs the rosdistro index from the network, so the keys are checked against
test/data/rosdep_keys_verified.txt: keys verified by hand against ros/rosdistro, each with
where its rule was found.
"""

from __future__ import annotations

import configparser
import re
import xml.etree.ElementTree as ET
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VERIFIED_KEYS = REPO_ROOT / "test" / "data" / "rosdep_keys_verified.txt"
DEPENDENCY_TAGS = (
    "depend",
    "build_depend",
    "build_export_depend",
    "buildtool_depend",
    "buildtool_export_depend",
    "exec_depend",
    "test_depend",
    "doc_depend",
)


def _package_keys() -> dict[str, list[str]]:
    """tag -> rosdep keys declared in package.xml."""
    root = ET.parse(REPO_ROOT / "package.xml").getroot()
    return {tag: [element.text.strip() for element in root.iter(tag)] for tag in DEPENDENCY_TAGS}


def _verified_keys() -> dict[str, str]:
    """key -> where it was verified."""
    keys = {}
    for line in VERIFIED_KEYS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, source = line.split(maxsplit=1)
            keys[key] = source
    return keys


def test_every_rosdep_key_of_package_xml_was_verified() -> None:
    verified = _verified_keys()
    unverified = {key for keys in _package_keys().values() for key in keys} - set(verified)
    assert not unverified, (
        f"package.xml keys not in {VERIFIED_KEYS.name}: {sorted(unverified)}. Check each against "
        "ros/rosdistro (rosdep/python.yaml, rosdep/base.yaml, <distro>/distribution.yaml) first."
    )


def test_verified_list_names_a_source_for_each_key() -> None:
    for key, source in _verified_keys().items():
        assert re.search(r"rosdep/(python|base)\.yaml|distribution\.yaml", source), key


def test_pip_only_dependencies_are_not_rosdep_keys_but_pinned_in_requirements() -> None:
    """These have no rosdep rule (rosdep install fails on them); pip installs them."""
    keys = {key for keys in _package_keys().values() for key in keys}
    requirements = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8")
    for package in ("librosa", "safetensors", "mcap", "pyroomacoustics"):
        assert not any(package in key for key in keys), package
        assert re.search(rf"^{package}==", requirements, re.MULTILINE), package


def test_declared_ros_packages_match_what_the_code_uses() -> None:
    exec_keys = set(_package_keys()["exec_depend"])
    assert {"tf2_msgs", "rviz2", "tf2_ros", "rclpy"} <= exec_keys
    assert "cv_bridge" not in exec_keys  # never imported: images are decoded by avi_ros itself
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (REPO_ROOT / "avi_ros").rglob("*.py"))
    assert not re.search(r"^\s*(from|import)\s+cv_bridge", sources, re.MULTILINE)


def test_every_message_package_the_code_names_is_a_run_dependency() -> None:
    """Message classes are looked up by name (``vision_msgs/msg/Detection3DArray``) or imported
    (``from sensor_msgs.msg import Image``); each package must reach the robot with the node,
    the optional ones (vision_msgs, audio_common_msgs) included."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (REPO_ROOT / "avi_ros").rglob("*.py"))
    named = set(re.findall(r"\b([a-z][a-z0-9_]*)/(?:msg|srv)/[A-Z]", sources))
    imported = set(re.findall(r"^\s*from\s+([a-z][a-z0-9_]*)\.(?:msg|srv)\s+import", sources, re.MULTILINE))
    used = (named | imported) - {"avi_ros", "pkg"}  # pkg: the placeholder of docstrings
    keys = _package_keys()
    declared = set(keys["exec_depend"]) | set(keys["depend"])
    assert {"vision_msgs", "audio_common_msgs", "sensor_msgs"} <= used
    assert not used - declared, sorted(used - declared)


def _requirement_pins() -> dict[str, str]:
    """name -> ``name==version`` of requirements.txt."""
    lines = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return {line.split("==")[0]: line.strip() for line in lines if "==" in line and not line.startswith("#")}


def test_the_onnx_extra_of_setup_cfg_pins_what_requirements_txt_pins() -> None:
    """``pip install .[onnx]`` brings the optional ONNX path (export and onnxruntime backend) at the
    versions its tests ran with; the core's install_requires leaves both out."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
    extra = config["options.extras_require"]["onnx"].split()
    pins = _requirement_pins()
    assert extra == [pins["onnx"], pins["onnxruntime"]]
    assert not {"onnx", "onnxruntime"} & set(config["options"]["install_requires"].split())


def test_cmake_registers_the_pytest_suite_for_colcon_test() -> None:
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    testing = cmake.split("if(BUILD_TESTING)", 1)[1].split("endif()", 1)[0]
    assert "find_package(ament_cmake_pytest" in testing
    assert re.search(r"ament_add_pytest_test\(\w+ test\b", testing)
    assert "ament_cmake_pytest" in _package_keys()["test_depend"]
    requirements = (REPO_ROOT / "requirements-ros.txt").read_text(encoding="utf-8")
    assert re.search(r"^ros-ament-cmake-pytest==", requirements, re.MULTILINE)
