"""Bad input to ``avi-ros`` and ``training/train.py``: each case exits non-zero with one clear line
that names the problem and the way out, never a traceback.

Damaged bags: every mcap chunk is written with a CRC and verified when read. By default a damaged
chunk fails the replay (exit 1, naming the chunk, its bag time and the messages it held);
``--skip-damaged`` replays the rest and lists what it skipped in the summary and the report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from avi_ros.bag.make_bag import MakeBagOptions, make_bag
from avi_ros.cli import main
from avi_ros.taxonomy import default_taxonomy

REPO_ROOT = Path(__file__).resolve().parents[1]
DAMAGE_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bag") / "scenario.mcap"
    return make_bag(MakeBagOptions(out=out, duration_s=2.0, width=64, height=48)).path


@pytest.fixture(scope="module")
def checkpoint_dir(tiny_checkpoint) -> Path:
    """A tiny model that always answers (never class 'none', confidence ~1)."""
    return tiny_checkpoint(default_taxonomy(), 0.5, {0: -50.0}, confidence_bias=50.0)


def _replay(bag: Path, checkpoint: Path, out: Path, *extra: str) -> int:
    command = ["replay", str(bag), "--model", str(checkpoint), "--out", str(out), "--device", "cpu"]
    return main([*command, *extra])


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"avi-ros {command}: error: ")]
    assert len(lines) == 1, err
    return lines[0]


# --- input topics of the wrong type ----------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "topic", "found", "expected"),
    [
        ("--audio-topic", "/rgb/image_raw", "sensor_msgs/msg/Image", "avi_ros/msg/FoaAudio"),
        ("--rgb-topic", "/audio", "avi_ros/msg/FoaAudio", "sensor_msgs/msg/Image"),
        ("--depth-topic", "/rgb/camera_info", "sensor_msgs/msg/CameraInfo", "sensor_msgs/msg/Image"),
        ("--camera-info-topic", "/depth/image_raw", "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"),
        ("--ground-truth-topic", "/audio", "avi_ros/msg/FoaAudio", "avi_ros/msg/HazardEstimateArray"),
    ],
)
def test_an_input_topic_of_the_wrong_type_is_named_with_both_types(
    tmp_path, bag, checkpoint_dir, capsys, option, topic, found, expected
):
    assert _replay(bag, checkpoint_dir, tmp_path / "out", option, topic) == 1
    line = _error_line(capsys, "replay")
    assert f"{option} {topic} carries {found}, not {expected}" in line
    assert "rgbd.unmatched" not in line
    assert not (tmp_path / "out").exists()


# --- damaged bags ----------------------------------------------------------------------------


def test_bags_are_written_with_compressed_chunks_and_crcs(bag):
    (mcap_file,) = bag.glob("*.mcap")
    with mcap_file.open("rb") as stream:
        summary = make_reader(stream).get_summary()
    assert len(summary.chunk_indexes) >= 2
    assert {index.compression for index in summary.chunk_indexes} == {"zstd"}
    assert all(index.compressed_size < index.uncompressed_size for index in summary.chunk_indexes)
    with mcap_file.open("rb") as stream:  # the official reader checks every chunk's CRC
        count = sum(1 for _ in make_reader(stream, validate_crcs=True).iter_messages())
    assert count == summary.statistics.message_count


def _damage_the_middle(bag: Path, copy: Path) -> Path:
    """A copy of ``bag`` with 64 KiB of random bytes written over the middle of its mcap file."""
    shutil.copytree(bag, copy)
    (mcap_file,) = copy.glob("*.mcap")
    data = bytearray(mcap_file.read_bytes())
    start = len(data) // 2 - DAMAGE_BYTES // 2
    with mcap_file.open("rb") as stream:
        chunks = make_reader(stream).get_summary().chunk_indexes
    assert any(c.chunk_start_offset < start < c.chunk_start_offset + c.chunk_length for c in chunks)
    data[start : start + DAMAGE_BYTES] = np.random.default_rng(0).bytes(DAMAGE_BYTES)
    mcap_file.write_bytes(bytes(data))
    return copy


def test_a_damaged_chunk_fails_the_replay_naming_it(tmp_path, bag, checkpoint_dir, capsys):
    damaged = _damage_the_middle(bag, tmp_path / "damaged")
    out = tmp_path / "out"
    assert _replay(damaged, checkpoint_dir, out) == 1
    line = _error_line(capsys, "replay")
    assert re.search(r"damaged chunk in scenario\.mcap bytes \d+-\d+ .*bag time [\d.]+-[\d.]+ s", line), line
    assert "messages lost: /audio x" in line and "--skip-damaged" in line
    assert not (out / "bag").exists()


def test_skip_damaged_replays_the_rest_and_reports_what_it_skipped(tmp_path, bag, checkpoint_dir, capsys):
    damaged = _damage_the_middle(bag, tmp_path / "damaged")
    # The damaged chunk may hold /tf_static, so the extrinsic is given.
    extrinsic = ["--extrinsic", "0.05", "0", "0.1", "0", "0", "0"]
    assert _replay(damaged, checkpoint_dir, tmp_path / "whole", *extrinsic, "--no-report") == 1
    capsys.readouterr()
    assert _replay(damaged, checkpoint_dir, tmp_path / "out", *extrinsic, "--skip-damaged") == 0
    summary = capsys.readouterr().out
    assert re.search(r"chunks read: (\d+), \1 verified by CRC", summary) is None  # not all verified
    assert re.search(r"chunks read: \d+, \d+ verified by CRC, 1 damaged and skipped:", summary), summary
    assert "messages lost: /audio x" in summary
    index = (tmp_path / "out" / "index.html").read_text()
    assert "1 damaged and skipped" in index


# --- extrinsic, model, ROS -------------------------------------------------------------------


def test_frames_missing_from_tf_static_are_named_and_the_default_needs_a_flag(
    tmp_path, bag, checkpoint_dir, capsys
):
    assert _replay(bag, checkpoint_dir, tmp_path / "a", "--microphone-frame", "wrong_mic") == 1
    line = _error_line(capsys, "replay")
    assert "/tf_static does not link wrong_mic -> camera_link" in line
    assert "['base_link', 'camera_color_optical_frame', 'camera_link', 'foa_microphone']" in line
    assert "--allow-default-extrinsic" in line
    accepted = ["--microphone-frame", "wrong_mic", "--allow-default-extrinsic", "--max-frames", "1"]
    assert _replay(bag, checkpoint_dir, tmp_path / "b", *accepted, "--no-report") == 0
    assert "extrinsic from the default, camera at the microphone" in capsys.readouterr().out


def test_a_bag_without_tf_static_needs_the_extrinsic(tmp_path, checkpoint_dir, capsys):
    options = MakeBagOptions(out=tmp_path / "bare", duration_s=0.7, width=32, height=24, tf_static=False)
    bare = make_bag(options).path
    assert _replay(bare, checkpoint_dir, tmp_path / "out") == 1
    line = _error_line(capsys, "replay")
    assert "the bag has no /tf_static" in line and "--extrinsic X Y Z ROLL PITCH YAW" in line


def test_a_model_file_instead_of_its_directory_is_explained(tmp_path, bag, checkpoint_dir, capsys):
    weights = checkpoint_dir / "model.safetensors"
    assert _replay(bag, weights, tmp_path / "out") == 1
    line = _error_line(capsys, "replay")
    assert "--model expects the checkpoint directory (holding model.safetensors and metadata.json)" in line
    assert f"not the file {weights}" in line
    assert f"try --model {checkpoint_dir}" in line


# Run the CLI in a Python where ``import rclpy`` fails, as on a pip install without ROS.
WITHOUT_ROS = """
import sys
class NoRos:
    def find_spec(self, name, path=None, target=None):
        if name == "rclpy" or name.startswith("rclpy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoRos())
from avi_ros.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["play", "any.mcap"], ["echo", "--count", "1"]])
def test_play_and_echo_without_ros_say_how_to_get_it(command):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_ROS, *command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])},
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    expected = f"avi-ros {command[0]}: error: this command needs ROS 2, and No module named 'rclpy'"
    assert expected in done.stderr
    assert "source scripts/ros_env.sh" in done.stderr and "make setup" in done.stderr


# --- training overrides ----------------------------------------------------------------------


def test_the_override_hint_of_train_py_names_a_key_that_exists(tmp_path, capsys):
    sys.path.insert(0, str(REPO_ROOT))
    from training.config import load_config
    from training.train import main as train_main

    config = REPO_ROOT / "training" / "configs" / "demo.yaml"
    assert train_main(["--config", str(config), "batch_size"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    hint = re.search(r"e\.g\. (\S+=\S+)", err)
    assert hint is not None, err
    load_config(config, [hint.group(1)])  # the suggested override is a real key
