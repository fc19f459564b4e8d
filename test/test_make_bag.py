"""``avi-ros make-bag``: a scenario bag that any rosbag2 reader can decode, at the promised rates,
with exact ground truth, identical for the same seed; and clear errors for bad requests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from avi_ros.bag.bag_topics import BagTopics
from avi_ros.bag.io import read_bag, read_raw
from avi_ros.bag.make_bag import MakeBagOptions, make_bag
from avi_ros.bag.scenario import DEFAULT_START_NS, load_scenario
from avi_ros.cli import main
from avi_ros.sensor_decoding import decode_color_message, decode_depth_message, decode_foa_message
from avi_ros.taxonomy import Visibility
from avi_ros.telemetry import TelemetryBuffer
from avi_ros.topics import OutputTopics, TelemetryTopics, absolute_topic, absolute_topics
from avi_ros.tracking.ego_motion import odometry_twist

NS = 1_000_000_000
DURATION_S = 1.5  # covers 0.8 s of background, then the first hazard (the engine) appearing
TOPICS = BagTopics()


def _make(tmp_path: Path, name: str, **overrides) -> Path:
    options = MakeBagOptions(out=tmp_path / name, duration_s=DURATION_S, width=64, height=48, **overrides)
    return make_bag(options).path


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    return _make(tmp_path_factory.mktemp("bags"), "scenario.mcap")


def test_bag_topics_are_the_nodes_names_made_absolute():
    assert (TOPICS.audio, TOPICS.rgb, TOPICS.depth, TOPICS.camera_info) == (
        "/audio",
        "/rgb/image_raw",
        "/depth/image_raw",
        "/rgb/camera_info",
    )
    robot = BagTopics(audio="robot/mic", ground_truth=None)
    assert (robot.audio, robot.rgb, robot.ground_truth) == ("/robot/mic", "/rgb/image_raw", None)
    assert absolute_topics(OutputTopics()) == OutputTopics(
        "/hazards", "/markers", "/occlusion_mask", "/hazard_assessment"
    )


def test_out_name_with_mcap_suffix_writes_a_rosbag2_directory(bag):
    assert bag.name == "scenario" and (bag / "metadata.yaml").is_file()
    assert len(list(bag.glob("*.mcap"))) == 1


def test_mcap_reader_sees_the_registered_schemas_and_decodes_them(bag):
    (mcap_file,) = bag.glob("*.mcap")
    with mcap_file.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        schemas = {s.name: s for s in summary.schemas.values()}
        topic_types = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        assert set(topic_types.values()) == {
            "avi_ros/msg/FoaAudio",
            "sensor_msgs/msg/Image",
            "sensor_msgs/msg/CameraInfo",
            "avi_ros/msg/HazardEstimateArray",
            "tf2_msgs/msg/TFMessage",
            "nav_msgs/msg/Odometry",
            "sensor_msgs/msg/Imu",
        }
        assert all(s.encoding == "ros2msg" for s in schemas.values())
        assert "uint8 OUT_OF_VIEW=2" in schemas["avi_ros/msg/HazardEstimateArray"].data.decode()
        decoded = {}
        for _, channel, _, message in reader.iter_decoded_messages(
            topics=[TOPICS.audio, TOPICS.ground_truth]
        ):
            decoded.setdefault(channel.topic, []).append(message)
    audio = decoded[TOPICS.audio][0]
    assert (audio.format, audio.sample_rate, audio.channel_count) == ("float32", 24000, 4)
    assert (audio.channel_order, audio.normalization, audio.frame_sample_count) == ("ACN", "SN3D", 480)
    assert len(audio.data) == 480 * 4 * 4
    last_truth = decoded[TOPICS.ground_truth][-1]
    assert [h.class_name for h in last_truth.hazards] == ["vehicle_engine"]


def test_rates_stamps_and_receive_order(bag):
    messages = list(read_bag(bag))
    receive = [m.stamp_ns for m in messages]
    assert receive == sorted(receive)
    by_topic: dict[str, list] = {}
    for m in messages:
        by_topic.setdefault(m.topic, []).append(m)
    audio = by_topic[TOPICS.audio]
    assert len(audio) == round(DURATION_S / 0.02)
    stamps = np.array([a.message.header.stamp.sec * NS + a.message.header.stamp.nanosec for a in audio])
    assert stamps[0] == DEFAULT_START_NS
    np.testing.assert_array_equal(np.diff(stamps), 20_000_000)  # contiguous 20 ms chunks
    assert all(a.stamp_ns == s + 20_000_000 for a, s in zip(audio, stamps, strict=True))  # sent when complete
    frames = math.ceil(DURATION_S * 15.0)
    for topic in (TOPICS.rgb, TOPICS.depth, TOPICS.camera_info, TOPICS.ground_truth):
        assert len(by_topic[topic]) == frames, topic
    rgb_stamps = [m.message.header.stamp for m in by_topic[TOPICS.rgb]]
    depth_stamps = [m.message.header.stamp for m in by_topic[TOPICS.depth]]
    assert rgb_stamps == depth_stamps  # one capture, one stamp
    assert len(by_topic[TOPICS.tf_static]) == 1
    odometry = by_topic["/odom"]
    assert len(odometry) == round(DURATION_S / 0.02)  # 50 Hz, received at its stamp
    assert all(
        m.stamp_ns == m.message.header.stamp.sec * NS + m.message.header.stamp.nanosec for m in odometry
    )
    imu = by_topic["/imu/data"]
    assert len(imu) == round(DURATION_S / 0.01)  # 100 Hz, received at its stamp
    assert all(m.stamp_ns == m.message.header.stamp.sec * NS + m.message.header.stamp.nanosec for m in imu)


def test_payloads_decode_with_the_nodes_decoders(bag):
    messages = {m.topic: m.message for m in read_bag(bag, topics=[TOPICS.audio, TOPICS.rgb, TOPICS.depth])}
    audio_msg, rgb_msg, depth_msg = messages[TOPICS.audio], messages[TOPICS.rgb], messages[TOPICS.depth]
    assert (audio_msg.sample_rate, audio_msg.channel_count) == (24000, 4)
    assert (audio_msg.channel_order, audio_msg.normalization) == ("ACN", "SN3D")
    chunk = decode_foa_message(audio_msg)
    assert chunk.audio.shape == (4, 480) and np.abs(chunk.audio).max() > 0
    rgb = decode_color_message(rgb_msg)
    depth = decode_depth_message(depth_msg)
    assert rgb.shape == (48, 64, 3) and depth_msg.encoding == "16UC1"
    valid = depth[depth > 0]
    assert valid.min() > 0.3 and valid.max() < 15.0  # metres inside the 12 x 8 m room


def test_ground_truth_is_the_scripts_exact_geometry(bag):
    truth = [m.message for m in read_bag(bag, topics=[TOPICS.ground_truth])]
    script = load_scenario("corridor")
    for message in truth:
        t = (message.header.stamp.sec * NS + message.header.stamp.nanosec - DEFAULT_START_NS) / NS
        tracks = script.active_hazards(t)
        assert [h.class_name for h in message.hazards] == [track.class_name for track in tracks]
        for hazard, active in zip(message.hazards, tracks, strict=True):
            mic = script.robot.pose(t)
            relative = mic.to_mic(active.position(t))
            assert hazard.distance == pytest.approx(np.linalg.norm(relative), rel=1e-5)
            assert hazard.azimuth == pytest.approx(math.atan2(relative[1], relative[0]), abs=1e-5)
            assert hazard.visibility == Visibility.VISIBLE  # the engine is in plain view
            assert hazard.class_probabilities[hazard.class_id] == 1.0
            assert hazard.track_id == 1  # the script's first hazard
            first = hazard.first_seen.sec * NS + hazard.first_seen.nanosec
            assert first == DEFAULT_START_NS + round(active.start_s * NS)
            assert hazard.range_rate == pytest.approx(-2.0 / 7.0, abs=0.02)  # the robot drives at it
    assert message.header.frame_id == "foa_microphone"


def test_odometry_is_the_robots_scripted_motion(bag):
    odometry = [m.message for m in read_bag(bag, topics=["/odom"])]
    script = load_scenario("corridor")
    for message in odometry[::10]:
        t = (message.header.stamp.sec * NS + message.header.stamp.nanosec - DEFAULT_START_NS) / NS
        assert (message.header.frame_id, message.child_frame_id) == ("odom", "base_link")
        assert message.twist.twist.linear.x == pytest.approx(2.0 / 7.0)  # 2 m in 7 s, straight ahead
        assert message.twist.twist.angular.z == 0.0
        assert message.pose.pose.position.x == pytest.approx(script.robot.pose(t).position_m[0])
    turning = script.robot.yaw_rate(15.0)
    assert turning == pytest.approx(1.05 / 2.5)  # the odometry of the turn at 14.5-17 s


def test_corridor_engine_drives_past_approaching_in_view_then_leaving():
    script = load_scenario("corridor")
    engine = script.hazards[0]
    assert engine.class_name == "vehicle_engine"
    speed = np.linalg.norm(engine.position(4.0) - engine.position(3.5)) / 0.5
    assert 6.0 <= speed <= 10.0
    approaching = [script.rates(engine, t)[0] for t in np.arange(3.1, 4.0, 0.1)]
    leaving = [script.rates(engine, t)[0] for t in np.arange(4.4, 4.85, 0.1)]
    assert max(approaching) < -3.0 and min(leaving) > 3.0
    relative = script.robot.pose(3.3).to_mic(engine.position(3.3))
    assert abs(math.atan2(relative[1], relative[0])) < math.radians(30.0)  # in view while it approaches
    relative = script.robot.pose(4.7).to_mic(engine.position(4.7))
    assert abs(math.atan2(relative[1], relative[0])) > math.radians(120.0)  # behind the robot as it leaves


def test_same_seed_same_bag_other_seed_other_sounds(tmp_path):
    first = [m.data for m in read_raw(_make(tmp_path, "a", seed=3), topics=[TOPICS.audio, TOPICS.rgb])]
    second = [m.data for m in read_raw(_make(tmp_path, "b", seed=3), topics=[TOPICS.audio, TOPICS.rgb])]
    other = [m.data for m in read_raw(_make(tmp_path, "c", seed=4), topics=[TOPICS.audio])]
    assert first == second
    assert [d for d in first if d in other] == []  # every audio chunk differs (noise is drawn anew)


def test_sqlite3_storage_and_32fc1_depth(tmp_path):
    bag = _make(tmp_path, "robot.db3", depth_encoding="32FC1", audio_format="int16")
    assert len(list(bag.glob("*.db3"))) == 1
    depth = next(m.message for m in read_bag(bag, topics=[TOPICS.depth]))
    audio = next(m.message for m in read_bag(bag, topics=[TOPICS.audio]))
    assert depth.encoding == "32FC1" and audio.format == "int16"
    metres = decode_depth_message(depth)
    assert np.nanmax(metres) < 15.0


def test_cli_errors_name_the_problem(tmp_path, capsys):
    existing = tmp_path / "taken"
    existing.mkdir()
    assert main(["make-bag", "--out", str(existing)]) == 1
    assert "taken already exists" in capsys.readouterr().err
    assert main(["make-bag", "--out", str(tmp_path / "x.db3"), "--storage", "mcap"]) == 1
    assert "implies sqlite3" in capsys.readouterr().err
    assert main(["make-bag", "--out", str(tmp_path / "y"), "--scenario", "moon"]) == 1
    assert "unknown scenario 'moon'; known: ['corridor', 'workshop']" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
    assert main(["make-bag", "--out", str(tmp_path / "z"), "--camera-rate", "500"]) == 1
    assert "camera rate must be in [1, 60] Hz" in capsys.readouterr().err


def test_imu_is_the_robots_scripted_motion_with_gravity():
    """The whole corridor at a low camera rate: the IMU's yaw rate is the odometry's, its forward
    acceleration integrates to the odometry's speed changes, and it turns centripetally."""
    script = load_scenario("corridor")
    times = np.arange(-1.0, 24.0, 0.01)  # from before the start: the first speed step is at 0 s
    readings = [script.robot.imu(t) for t in times]
    acceleration = np.array([a for a, _ in readings])
    angular = np.array([w for _, w in readings])
    speeds = np.array([script.robot.forward_speed(t) for t in times])
    yaw_rates = np.array([script.robot.yaw_rate(t) for t in times])
    np.testing.assert_allclose(angular[:, 2], yaw_rates)
    np.testing.assert_allclose(acceleration[:, 2], 9.81)
    np.testing.assert_allclose(acceleration[:, 1], speeds * yaw_rates)
    # Integrated over the drive's start and stop (0 and 7 s), the forward acceleration is the
    # speed the odometry gains, then loses.
    gained = np.sum(acceleration[times < 3.5, 0]) * 0.01
    lost = np.sum(acceleration[(times >= 3.5) & (times < 10.0), 0]) * 0.01
    assert gained == pytest.approx(2.0 / 7.0, abs=0.01) and lost == pytest.approx(-2.0 / 7.0, abs=0.01)


def test_imu_messages_are_the_paths_in_the_base_frame(bag):
    script = load_scenario("corridor")
    for message in [m.message for m in read_bag(bag, topics=["/imu/data"])][::10]:
        t = (message.header.stamp.sec * NS + message.header.stamp.nanosec - DEFAULT_START_NS) / NS
        acceleration, angular = script.robot.imu(t)
        assert message.header.frame_id == "base_link"
        a, w = message.linear_acceleration, message.angular_velocity
        assert (a.x, a.y, a.z) == pytest.approx(acceleration) and (w.x, w.y, w.z) == pytest.approx(angular)
        assert message.orientation_covariance[0] == -1.0  # no orientation estimate


def test_the_bags_telemetry_reaches_the_decision_stage_at_every_camera_frame(bag):
    """The bag's IMU and odometry are on the topics the node subscribes by default, and aligned as
    the node aligns them (``TelemetryBuffer``), neither part is missing at any camera frame."""
    buffer = TelemetryBuffer()
    imu_topic, odom_topic = (absolute_topic(t) for t in (TelemetryTopics().imu, TelemetryTopics().odom))
    camera = []
    for m in read_bag(bag, topics=[imu_topic, odom_topic, TOPICS.rgb]):
        stamp = m.message.header.stamp.sec * NS + m.message.header.stamp.nanosec
        if m.topic == imu_topic:
            a, w = m.message.linear_acceleration, m.message.angular_velocity
            assert buffer.add_imu(stamp, (a.x, a.y, a.z), (w.x, w.y, w.z))
        elif m.topic == odom_topic:
            assert buffer.add_odometry(stamp, *odometry_twist(m.message))
        else:
            camera.append(stamp)
    readings = [buffer.reading(stamp) for stamp in camera]
    assert camera and not any(r.missing for r in readings)
    assert readings[-1].vector[2] == pytest.approx(9.81)  # gravity on the IMU's z
    assert readings[-1].vector[6] == pytest.approx(2.0 / 7.0)  # the odometry's forward speed
