"""``avi-ros replay``: the node's frame assembly and pipeline over a bag. Its estimates equal what
the live node publishes for the same bag (compared on the frames both produced, so a busy machine
that makes the node skip frames changes nothing); it writes the node's output topics and a report;
it reads robot bags with other topic names; damaged bags fail with a clear error."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from estimates import estimate
from replay_helpers import SCENARIO_EXTRINSIC_XYZ, header_stamp_ns, live_node_answers, replay_on_cpu

from avi_ros.bag.bag_topics import BagTopics
from avi_ros.bag.io import BagWriter, bag_topics, read_bag
from avi_ros.bag.make_bag import MakeBagOptions, make_bag
from avi_ros.bag.replay import ReplayOptions, physics_directions, replay
from avi_ros.bag.report_scoring import compute_metrics
from avi_ros.bag.results import FrameRecord, Snapshot, SnapshotKeeper
from avi_ros.bag.static_tf import StaticTransforms
from avi_ros.cli import main
from avi_ros.geometry import CameraIntrinsics, rotation_from_rpy
from avi_ros.taxonomy import Visibility, default_taxonomy
from avi_ros.types import Frame

NS = 1_000_000_000
DURATION_S = 2.0
WINDOW_S = 0.5


@pytest.fixture(scope="module")
def checkpoint_dir(tiny_checkpoint) -> Path:
    """A tiny untrained model, biased so it always publishes a hazard (never class 'none',
    confidence ~1); which class, where and how far still depend on the input."""
    return tiny_checkpoint(default_taxonomy(), WINDOW_S, {0: -50.0}, confidence_bias=50.0)


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bag") / "scenario.mcap"
    return make_bag(MakeBagOptions(out=out, duration_s=DURATION_S, width=64, height=48)).path


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, bag, checkpoint_dir):
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("replay")
    return replay_on_cpu(bag, checkpoint_dir, out, report_frames=3), out


# --- outputs ---------------------------------------------------------------------------------


def test_frames_are_assembled_by_the_nodes_rules(replayed):
    result, _ = replayed
    frames_in_bag = math.ceil(DURATION_S * 15)
    # The first frames come before half a second of audio exists: too old, dropped and counted.
    too_early = sum(1 for k in range(frames_in_bag) if k / 15 < WINDOW_S)
    assert result.events == {"frame.audio_too_old": too_early}
    assert len(result.records) == frames_in_bag - too_early
    assert result.extrinsic.translation_m == pytest.approx(SCENARIO_EXTRINSIC_XYZ)
    assert "/tf_static" in result.extrinsic_source


def test_output_bag_holds_hazards_markers_and_masks(replayed):
    result, _ = replayed
    assert bag_topics(result.output_bag) == {
        "/hazards": "avi_ros/msg/HazardEstimateArray",
        "/markers": "visualization_msgs/msg/MarkerArray",
        "/occlusion_mask": "sensor_msgs/msg/Image",
        "/hazards/detections": "vision_msgs/msg/Detection3DArray",
    }
    by_topic: dict[str, list] = {}
    for message in read_bag(result.output_bag):
        by_topic.setdefault(message.topic, []).append(message.message)
    stamps = [r.stamp_ns for r in result.records]
    for topic in ("/hazards", "/markers", "/occlusion_mask"):
        assert len(by_topic[topic]) == len(stamps), topic
    for record, hazards, markers, mask in zip(
        result.records, by_topic["/hazards"], by_topic["/markers"], by_topic["/occlusion_mask"], strict=True
    ):
        assert header_stamp_ns(hazards.header) == header_stamp_ns(mask.header) == record.stamp_ns
        assert hazards.header.frame_id == "foa_microphone"
        assert [h.class_name for h in hazards.hazards] == [h.class_name for h in record.hazards]
        assert len(record.hazards) == 1  # the biased model always answers
        assert markers.markers[0].action == 3  # DELETEALL first
        arrow, label = markers.markers[1], markers.markers[2]
        assert (arrow.ns, label.ns) == ("hazards", "labels")
        tip = np.array([arrow.points[1].x, arrow.points[1].y, arrow.points[1].z])
        unit = tip / np.linalg.norm(tip)
        np.testing.assert_allclose(unit, record.hazards[0].direction, atol=1e-5)
        assert label.text.startswith(record.hazards[0].class_name)
        assert (mask.encoding, mask.height, mask.width) == ("mono8", 48, 64)
        assert mask.header.frame_id == "camera_color_optical_frame"


def test_report_has_frames_timeline_polar_view_and_metrics(replayed):
    result, out = replayed
    index = (out / "index.html").read_text()
    frames = sorted((out / "frames").glob("frame_*.png"))
    assert len(frames) == 3
    for picture in [*frames, out / "timeline.png", out / "polar.png"]:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
        assert picture.relative_to(out).as_posix() in index
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames_replayed"] == len(result.records)
    truth_frames = sum(1 for r in result.records if result.truth.get(r.stamp_ns))
    assert metrics["groups"]["all hazards"]["frames"] == truth_frames > 0
    quiet = metrics["groups"]["no hazard"]
    assert quiet["frames"] > 0 and quiet["false_alarm_%"] == 100.0  # the biased model always answers
    assert "class acc. %" in (out / "metrics.md").read_text()


# --- equality with the live node -------------------------------------------------------------


@pytest.mark.ros
@pytest.mark.slow
def test_replay_estimates_equal_what_the_live_node_publishes(replayed, bag, checkpoint_dir):
    pytest.importorskip("rclpy")
    result, _ = replayed
    received, events = live_node_answers(bag, checkpoint_dir, len(result.records), "replay_test")

    replayed_by_stamp = {r.stamp_ns: r for r in result.records}
    live_by_stamp = {header_stamp_ns(m.header): m for m in received}
    # The node answered at least one frame, and only frames the replay also produced; every one of
    # them must be equal. (How many it answered depends on the machine's load; not judged here.)
    assert len(live_by_stamp) >= 1, events.snapshot()
    assert set(live_by_stamp) <= set(replayed_by_stamp), events.snapshot()
    for stamp, live in live_by_stamp.items():
        offline = replayed_by_stamp[stamp].hazards
        assert len(live.hazards) == len(offline) == 1
        for got, want in zip(live.hazards, offline, strict=True):
            assert (got.class_id, got.class_name) == (want.class_id, want.class_name)
            assert (got.visibility, got.risk_level, got.recommended_action) == (
                int(want.visibility),
                int(want.risk_level),
                int(want.recommended_action),
            )
            np.testing.assert_allclose(
                got.class_probabilities, want.class_probabilities, rtol=1e-4, atol=1e-6
            )
            for name in ("azimuth", "elevation", "distance", "confidence", "occlusion_level", "audio_weight"):
                assert getattr(got, name) == pytest.approx(getattr(want, name), rel=1e-4, abs=1e-5), name


# --- robot bags and bad input ----------------------------------------------------------------


def test_robot_bag_with_its_own_topic_names_and_no_ground_truth(tmp_path, replayed, checkpoint_dir):
    robot_topics = BagTopics(
        audio="/robot/mic_array/foa",
        rgb="/robot/camera/color/image_raw",
        depth="/robot/camera/aligned_depth_to_color/image_raw",
        camera_info="/robot/camera/color/camera_info",
        ground_truth=None,
    )
    options = MakeBagOptions(
        out=tmp_path / "robot", duration_s=DURATION_S, width=64, height=48, topics=robot_topics
    )
    robot_bag = make_bag(options).path
    with pytest.raises(Exception, match=r"input topics \['/audio'.*--audio-topic"):
        replay_on_cpu(robot_bag, checkpoint_dir, tmp_path / "wrong")
    result = replay_on_cpu(robot_bag, checkpoint_dir, tmp_path / "out", topics=robot_topics, report_frames=2)
    default_result, _ = replayed
    # Same seed, same content under other names: the same estimates.
    assert [r.stamp_ns for r in result.records] == [r.stamp_ns for r in default_result.records]
    for mine, theirs in zip(result.records, default_result.records, strict=True):
        assert mine.top.class_id == theirs.top.class_id
        assert mine.top.azimuth == pytest.approx(theirs.top.azimuth, abs=1e-5)
    assert result.truth == {}
    assert "nothing to score against" in (tmp_path / "out" / "index.html").read_text()


def test_truncated_or_corrupt_bag_gives_a_clear_cli_error(tmp_path, bag, checkpoint_dir, capsys):
    truncated = tmp_path / "truncated"
    shutil.copytree(bag, truncated)
    (mcap_file,) = truncated.glob("*.mcap")
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    status = main(
        ["replay", str(truncated), "--model", str(checkpoint_dir), "--out", str(out), "--device", "cpu"]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith(f"avi-ros replay: error: {truncated}: damaged file:") and err.count("\n") == 1
    assert "cut short" in err and "--skip-damaged" in err
    assert not (out / "bag").exists()  # no half-written output bag is left behind
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not a bag at all")
    assert main(["replay", str(garbage), "--model", str(checkpoint_dir), "--out", str(out)]) == 1
    assert "garbage.mcap: cannot open as rosbag2" in capsys.readouterr().err
    assert main(["replay", str(bag), "--model", str(tmp_path / "no_model"), "--out", str(out)]) == 1
    assert "no_model" in capsys.readouterr().err


def test_a_bag_cut_short_replays_its_complete_chunks_with_skip_damaged(
    tmp_path, bag, replayed, checkpoint_dir, capsys
):
    """A recorder killed mid-recording leaves no summary: the complete chunks replay, and the summary
    says what the cut lost."""
    truncated = tmp_path / "truncated"
    shutil.copytree(bag, truncated)
    (mcap_file,) = truncated.glob("*.mcap")
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) * 3 // 4])  # inside the last chunk
    out = tmp_path / "out"
    argv = ["replay", str(truncated), "--model", str(checkpoint_dir), "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--skip-damaged", "--no-report"]) == 0
    summary = capsys.readouterr().out
    assert "cut short: no footer" in summary and "bytes lost; messages lost:" in summary
    whole, _ = replayed
    kept = [header_stamp_ns(m.message.header) for m in read_bag(out / "bag", ["/hazards"])]
    assert 0 < len(kept) < len(whole.records)
    assert kept == [r.stamp_ns for r in whole.records[: len(kept)]]


def test_replay_without_model_uses_the_shipped_model(tmp_path, bag, checkpoint_dir, monkeypatch, capsys):
    from avi_ros import shipped_model

    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", tmp_path / "not_installed")
    argv = ["replay", str(bag), "--device", "cpu", "--max-frames", "2", "--no-report"]
    assert main([*argv, "--out", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "the shipped model is missing from this install" in err and err.count("\n") == 1
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", checkpoint_dir)
    assert main([*argv, "--out", str(tmp_path / "shipped")]) == 0
    assert "replayed" in capsys.readouterr().out and (tmp_path / "shipped" / "bag").is_dir()


def test_precision_option_reaches_the_model(tmp_path, replayed, bag, checkpoint_dir, capsys):
    result, _ = replayed
    assert result.inference == "cpu fp32"  # auto keeps fp32 on the CPU
    options = ReplayOptions(
        bag=bag, model=checkpoint_dir, out=tmp_path / "bf16", device="cpu", precision="bf16", max_frames=2
    )
    reduced = replay(dataclasses.replace(options, report=False))
    assert reduced.inference == "cpu bf16" and len(reduced.records) == 2
    assert [r.stamp_ns for r in reduced.records] == [r.stamp_ns for r in result.records[:2]]
    out = tmp_path / "fp8"
    assert (
        main(["replay", str(bag), "--model", str(checkpoint_dir), "--out", str(out), "--precision", "fp8"])
        == 1
    )
    assert "--precision must be one of" in capsys.readouterr().err


# --- parts -----------------------------------------------------------------------------------


def test_static_transform_chain_gives_the_extrinsic(tmp_path):
    """foa and camera both hang off base_link: the chain is walked forwards and inverted."""
    mic_xyz, mic_yaw = np.array([0.1, 0.0, 0.9]), 0.3
    cam_xyz, cam_rpy = np.array([0.25, -0.05, 1.0]), (0.0, 0.1, -0.2)
    from scipy.spatial.transform import Rotation

    path = tmp_path / "tf"
    with BagWriter(path) as writer:
        cls = writer.message_class
        time_cls, header = cls("builtin_interfaces/msg/Time"), cls("std_msgs/msg/Header")

        def transform(parent, child, xyz, rpy):
            q = Rotation.from_euler("xyz", rpy).as_quat()
            return cls("geometry_msgs/msg/TransformStamped")(
                header=header(stamp=time_cls(sec=0, nanosec=0), frame_id=parent),
                child_frame_id=child,
                transform=cls("geometry_msgs/msg/Transform")(
                    translation=cls("geometry_msgs/msg/Vector3")(x=xyz[0], y=xyz[1], z=xyz[2]),
                    rotation=cls("geometry_msgs/msg/Quaternion")(x=q[0], y=q[1], z=q[2], w=q[3]),
                ),
            )

        tf = cls("tf2_msgs/msg/TFMessage")(
            transforms=[
                transform("base_link", "mic", mic_xyz, (0.0, 0.0, mic_yaw)),
                transform("base_link", "cam", cam_xyz, cam_rpy),
            ]
        )
        writer.write("/tf_static", 0, tf)
    transforms = StaticTransforms(m.message for m in read_bag(path))
    extrinsic = transforms.extrinsic("mic", "cam")
    mic_rot, cam_rot = rotation_from_rpy(0.0, 0.0, mic_yaw), rotation_from_rpy(*cam_rpy)
    np.testing.assert_allclose(extrinsic.translation_m, mic_rot.T @ (cam_xyz - mic_xyz), atol=1e-9)
    np.testing.assert_allclose(rotation_from_rpy(*extrinsic.rpy_rad), mic_rot.T @ cam_rot, atol=1e-9)
    assert transforms.extrinsic("mic", "elsewhere") is None
    assert transforms.frames == ["base_link", "cam", "mic"]


def test_snapshot_keeper_spreads_a_bounded_selection_over_the_stream():
    keeper = SnapshotKeeper(count=5)
    blank = np.zeros((2, 2, 3), np.uint8)
    intrinsics = CameraIntrinsics.from_fov(2, 2, 1.0)
    for index in range(1000):
        keeper.offer(lambda index=index: Snapshot(index, blank, blank[..., 0], intrinsics))
        assert len(keeper._kept) <= 10
    picked = [s.stamp_ns for s in keeper.evenly_spaced()]
    assert len(picked) == 5 and picked[0] == 0 and picked[-1] > 800
    assert all(b - a > 100 for a, b in itertools.pairwise(picked))


def test_metrics_on_a_hand_made_case():
    truth = {
        1: [estimate(3, 0.0, 4.0)],
        2: [estimate(5, 90.0, 2.0, visibility=Visibility.OCCLUDED)],
        3: [],
        10: [],
    }
    records = [
        FrameRecord(1, [estimate(3, 10.0, 5.0)], estimate(3, 10.0, 5.0), 0.0),  # right class, 10 deg off
        FrameRecord(2, [], estimate(4, 60.0, 2.5), 0.5),  # wrong class, 30 deg off, not published
        FrameRecord(3, [estimate(1, 0.0, 1.0)], estimate(1, 0.0, 1.0), 0.0),  # hazard at 2 still heard
        FrameRecord(4, [], estimate(0, 0.0, 1.0), 0.0),  # no truth at this stamp: not judged
        FrameRecord(10, [estimate(1, 0.0, 1.0)], estimate(1, 0.0, 1.0), 0.0),  # a false alarm
    ]
    metrics = compute_metrics(records, truth, window_ns=5)
    assert metrics["frames_with_truth"] == 4
    hazards = metrics["groups"]["all hazards"]
    assert hazards["frames"] == 2 and hazards["detected_%"] == 50.0 and hazards["class_accuracy_%"] == 50.0
    assert hazards["median_angular_error_deg"] == pytest.approx(20.0)
    assert hazards["median_distance_error_m"] == pytest.approx(0.75)
    assert metrics["groups"]["occluded"]["class_accuracy_%"] == 0.0
    assert metrics["groups"]["no hazard"] == {"frames": 1, "false_alarm_%": 100.0, "class_accuracy_%": 0.0}
    assert metrics["groups"]["hazard just ended"]["frames"] == 1


def unit_at(azimuth_deg: float) -> list[float]:
    return [math.cos(math.radians(azimuth_deg)), math.sin(math.radians(azimuth_deg)), 0.0]


def test_physics_column_takes_the_nearest_physics_direction_of_each_true_hazard():
    truth = {1: [estimate(3, 0.0), estimate(5, 90.0)], 2: [estimate(3, 0.0)], 3: [estimate(3, 0.0)]}
    records = [
        # physics found a source 4 deg off the first hazard and one 10 deg off the second
        FrameRecord(
            1, [], estimate(3, 0.0), 0.0, physics_directions=np.array([unit_at(100.0), unit_at(4.0)])
        ),
        FrameRecord(2, [], estimate(3, 0.0), 0.0, physics_directions=np.array([unit_at(-30.0)])),
        FrameRecord(3, [], estimate(3, 0.0), 0.0),  # silence: physics found nothing, not counted
    ]
    rows = compute_metrics(records, truth)
    assert rows["groups"]["all hazards"]["physics_median_angular_error_deg"] == pytest.approx(10.0)
    by_class = rows["hazards_by_class"]
    assert by_class[default_taxonomy().names[3]]["physics_median_angular_error_deg"] == pytest.approx(17.0)
    assert by_class[default_taxonomy().names[5]]["physics_median_angular_error_deg"] == pytest.approx(10.0)
    empty = compute_metrics(records[2:], {3: truth[3]})
    assert empty["groups"]["all hazards"]["physics_median_angular_error_deg"] is None


@pytest.mark.parametrize("azimuth_deg", [-135.0, 0.0, 60.0, 170.0])
def test_physics_directions_of_a_frame_point_at_a_plane_wave(azimuth_deg: float):
    rng = np.random.default_rng(0)
    source = rng.standard_normal(24000).astype(np.float32) * 0.1
    x, y, z = unit_at(azimuth_deg)
    audio = np.stack([source, y * source, z * source, x * source])  # ACN/SN3D: W, Y, Z, X
    blank = np.zeros((4, 4, 3), np.uint8)
    frame = Frame(blank, np.ones((4, 4), np.float32), CameraIntrinsics.from_fov(4, 4, 1.0), audio)
    found = physics_directions(frame)
    assert found.shape == (1, 3)
    assert math.degrees(math.atan2(found[0, 1], found[0, 0])) == pytest.approx(azimuth_deg, abs=1.0)
    silent = dataclasses.replace(frame, audio=np.zeros_like(audio))
    assert physics_directions(silent).shape == (0, 3)
