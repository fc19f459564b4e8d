"""The perception node over real rclpy pub/sub (no launch): synthetic sensors in, hazards out.

One node (with a tiny checkpoint) and one test publisher share an isolated rclpy context on
a module-specific DDS domain, spun in a background thread by the executor ``main`` uses.
Stamps only ever move forward across the tests of the module (except where a test makes
time jump back on purpose), because the node keeps its buffers between tests.

No outcome depends on the machine's speed: every wait is for an event, with a deadline that
only matters when the event never comes, and the wait bounds given to the node are far longer
than any delay a loaded CI machine adds.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from avi_ros.msg import FoaAudio
from node_harness import (
    MIC_FRAME,
    NS,
    TARGET_CLASS,
    TAXONOMY,
    Harness,
    make_node,
    started_harness,
    unstarted_node,
    wait_for,
)
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from visualization_msgs.msg import Marker

from avi_ros import shipped_model
from avi_ros.audio import encode_pcm
from avi_ros.ros import conversions
from avi_ros.ros.assessment import NODE_DECISION_PARAMETERS
from avi_ros.ros.diagnostics import diagnostic_values
from avi_ros.ros.params import PARAMETERS
from avi_ros.ros.perception_node import PerceptionNode

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def harness(ros_context, beeper_checkpoint, node_scene):
    h = started_harness(ros_context, beeper_checkpoint, node_scene)
    yield h
    h.close()


# --- the answer ------------------------------------------------------------------------------


def test_node_answers_with_hazards_stamped_and_named_from_the_checkpoint(harness):
    stamp = harness.send_frame()
    answer = harness.assert_answers(stamp)
    assert answer.header.frame_id == MIC_FRAME
    assert len(answer.hazards) == 1
    hazard = answer.hazards[0]
    assert hazard.class_id == TARGET_CLASS and hazard.class_name == "test_beeper"
    assert len(hazard.class_probabilities) == TAXONOMY.num_classes
    assert math.isclose(sum(hazard.class_probabilities), 1.0, rel_tol=1e-4)
    assert hazard.confidence > 0.99
    direction = np.array([hazard.direction.x, hazard.direction.y, hazard.direction.z])
    assert math.isclose(float(np.linalg.norm(direction)), 1.0, rel_tol=1e-4)
    assert math.isclose(hazard.azimuth, math.atan2(direction[1], direction[0]), abs_tol=1e-4)


def test_markers_and_mask_follow_each_answer(harness):
    stamp = harness.send_frame()
    answer = harness.assert_answers(stamp)

    def markers_for_stamp():
        return [m for m in harness.markers if conversions.stamp_to_ns(m.markers[0].header.stamp) == stamp]

    assert wait_for(lambda: len(markers_for_stamp()) == 1)
    markers = markers_for_stamp()[0].markers
    assert markers[0].action == Marker.DELETEALL
    arrow, label = markers[1], markers[2]
    assert arrow.type == Marker.ARROW and arrow.header.frame_id == MIC_FRAME
    assert (arrow.points[0].x, arrow.points[0].y, arrow.points[0].z) == (0.0, 0.0, 0.0)
    tip = np.array([arrow.points[1].x, arrow.points[1].y, arrow.points[1].z])
    hazard = answer.hazards[0]
    expected_length = float(np.clip(hazard.distance, 0.3, 5.0))
    assert math.isclose(float(np.linalg.norm(tip)), expected_length, rel_tol=1e-4)
    np.testing.assert_allclose(
        tip / np.linalg.norm(tip), [hazard.direction.x, hazard.direction.y, hazard.direction.z], atol=1e-5
    )
    assert arrow.lifetime.sec + arrow.lifetime.nanosec * 1e-9 > 0.0
    assert label.type == Marker.TEXT_VIEW_FACING and label.text.startswith("test_beeper ")

    assert wait_for(lambda: any(conversions.stamp_to_ns(m.header.stamp) == stamp for m in harness.masks))
    mask = next(m for m in harness.masks if conversions.stamp_to_ns(m.header.stamp) == stamp)
    assert mask.encoding == "mono8" and (mask.height, mask.width) == (48, 64)
    assert set(np.unique(np.frombuffer(mask.data, np.uint8))) <= {0, 255}


def test_diagnostics_report_inputs_latency_cpu_and_processed_frames(harness):
    for _ in range(3):
        harness.assert_answers(harness.send_frame())
    assert wait_for(lambda: int(harness.diagnostic("frames_processed") or 0) >= 3)
    values = diagnostic_values(harness.diagnostics[-1])
    assert float(values["inference_ms.p50"]) > 0.0
    assert float(values["inference_ms.p95"]) >= float(values["inference_ms.p50"])
    assert float(values["stamp_age_ms.p50"]) > 0.0 and float(values["end_to_end_ms.p50"]) > 0.0
    assert int(values["messages_in.audio"]) >= 3 * 50 and int(values["messages_in.rgb"]) >= 3
    assert float(values["cpu_percent.process"]) >= 0.0 and "cpu_percent.inference_thread" in values


def test_only_the_newest_frame_is_processed_when_frames_arrive_faster_than_inference(harness):
    stamps = [harness.advance(0.05) for _ in range(8)]
    harness.streamer.publish_audio_until(stamps[-1] + 30_000_000)
    for stamp in stamps:
        harness.streamer.publish_rgbd(stamp)
    harness.assert_answers(stamps[-1])
    answered = [s for s in stamps if harness.answer_for(s) is not None]
    assert answered[-1] == stamps[-1]
    assert len(answered) <= len(stamps)


def test_deactivate_stops_answers_and_activate_resumes(harness):
    assert harness.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    ignored = harness.send_frame()
    time.sleep(0.5)
    assert harness.answer_for(ignored) is None
    assert harness.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    harness.wait_until_connected()
    harness.assert_answers(harness.send_frame())


# --- bad input -------------------------------------------------------------------------------


def raw_audio(harness, stamp_ns, **fields) -> FoaAudio:
    audio = harness.streamer.audio_chunk(0)
    msg = conversions.foa_to_msg(audio, stamp_ns, MIC_FRAME)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def send_bad_audio(**fields):
    def send(harness):
        harness.raw_audio.publish(raw_audio(harness, harness.now_ns + 5 * NS, **fields))

    return send


def send_bad_rgbd(part: str, **fields):
    def send(harness):
        stamp = harness.advance(0.5)
        rgb, depth, info = harness.streamer.rgbd_msgs(stamp)
        target = {"rgb": rgb, "depth": depth, "camera_info": info}[part]
        for name, value in fields.items():
            setattr(target, name, value)
        harness.streamer.publish_audio_until(stamp + 30_000_000)
        harness.streamer.info_pub.publish(info)
        harness.streamer.depth_pub.publish(depth)
        harness.streamer.rgb_pub.publish(rgb)

    return send


def send_duplicate_audio(harness):
    harness.assert_answers(harness.send_frame())
    harness.raw_audio.publish(harness.streamer.last_audio_msg)


def send_audio_with_a_gap(harness):
    harness.assert_answers(harness.send_frame())
    stamp = harness.advance(1.0)
    harness.streamer.skip_audio_until(stamp - NS // 4)  # the audio just before the frame never comes
    harness.send_frame(stamp)


def send_48khz_audio(harness):
    """A frame whose audio comes at 48 kHz: resampled, and the frame is still answered."""
    stamp = harness.advance(1.0)
    t = harness.streamer.next_chunk_stamp_ns
    while t < stamp + 30_000_000:
        chunk = np.repeat(harness.streamer.audio_chunk(0), 2, axis=1)  # 960 samples = 20 ms at 48 kHz
        harness.raw_audio.publish(conversions.foa_to_msg(chunk, t, MIC_FRAME, sample_rate=48_000))
        t += 20_000_000
    harness.streamer.start_audio_at(t)
    harness.streamer.publish_rgbd(stamp)


def send_audio_stamped_beyond_a_second(harness):
    msg = raw_audio(harness, harness.now_ns + 5 * NS)
    msg.header.stamp.nanosec = 4_294_967_295
    harness.raw_audio.publish(msg)


def send_camera_info_with_nan_in_p(harness):
    """P is not used (K is): the frame is answered, and the broken calibration is counted."""
    send_bad_rgbd("camera_info", p=[float("nan")] * 12)(harness)
    harness.assert_answers(harness.now_ns)


def send_time_backwards(harness):
    """A bag that loops: every stream jumps 500 s back; the node resets and carries on."""
    harness.now_ns -= 500 * NS
    harness.streamer.start_audio_at(harness.now_ns - 2 * NS)
    harness.send_frame()


BAD_INPUTS = {
    "wrong channel count": (
        send_bad_audio(
            channel_count=2, data=encode_pcm(np.zeros((2, 480)), "float32"), frame_sample_count=480
        ),
        "audio.bad_channels",
    ),
    "unknown sample format": (send_bad_audio(format="float64"), "audio.bad_format"),
    "NaN samples": (
        send_bad_audio(data=encode_pcm(np.full((4, 480), np.nan), "float32")),
        "audio.non_finite",
    ),
    "empty audio": (send_bad_audio(data=b"", frame_sample_count=0), "audio.empty"),
    "truncated audio": (
        send_bad_audio(data=encode_pcm(np.zeros((4, 480)), "float32")[:-3]),
        "audio.truncated",
    ),
    "sample count disagrees": (send_bad_audio(frame_sample_count=100), "audio.size_mismatch"),
    "unknown ambisonic order": (send_bad_audio(channel_order="SID"), "audio.bad_format"),
    "duplicate audio stamp": (send_duplicate_audio, "audio.duplicate"),
    "audio gap beyond the fill bound": (send_audio_with_a_gap, "frame.audio_gap"),
    "48 kHz audio": (send_48khz_audio, "audio.resampled"),
    "unsupported rgb encoding": (send_bad_rgbd("rgb", encoding="yuv422"), "rgb.unsupported_encoding"),
    "rgb data shorter than step*height": (send_bad_rgbd("rgb", step=64 * 3 + 8), "rgb.truncated"),
    "colour image on the depth topic": (send_bad_rgbd("depth", encoding="rgb8"), "depth.encoding_mismatch"),
    "depth and rgb sizes differ": (
        send_bad_rgbd("depth", height=24, data=np.zeros((24, 64), np.uint16).tobytes()),
        "rgbd.size_mismatch",
    ),
    "uncalibrated camera_info": (send_bad_rgbd("camera_info", k=[0.0] * 9), "camera_info.uncalibrated"),
    # Found by fuzzing (issue 12): the first one ended the process, the others were not counted.
    "sample rate 48000001 Hz": (send_bad_audio(sample_rate=48_000_001), "audio.bad_rate"),
    "sample rate 1 Hz": (send_bad_audio(sample_rate=1), "audio.bad_rate"),
    "audio at amplitude 1e20": (
        send_bad_audio(data=encode_pcm(np.full((4, 480), 1e20), "float32")),
        "audio.out_of_range",
    ),
    "nanosec 4294967295": (send_audio_stamped_beyond_a_second, "audio.bad_stamp"),
    "1 x 10000 rgb image": (
        send_bad_rgbd("rgb", height=1, width=10_000, step=30_000, data=bytes(30_000)),
        "rgb.bad_shape",
    ),
    "focal length 1e-30": (
        send_bad_rgbd("camera_info", k=[1e-30, 0.0, 32.0, 0.0, 1e-30, 24.0, 0.0, 0.0, 1.0]),
        "camera_info.bad_focal",
    ),
    "NaN in camera_info P": (send_camera_info_with_nan_in_p, "camera_info.unused_calibration_invalid"),
    "time jumps backwards": (send_time_backwards, "frame.time_backwards"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_counted_in_diagnostics_and_the_node_keeps_working(harness, case):
    send, reason = BAD_INPUTS[case]
    before = harness.node.events[reason]
    send(harness)
    assert wait_for(lambda: harness.node.events[reason] > before), (
        f"{reason} did not move; events {harness.node.events.snapshot()}"
    )
    count = harness.node.events[reason]
    group = "dropped" if reason.startswith("frame.") else "bad"
    assert wait_for(lambda: int(harness.diagnostic(f"{group}.{reason}") or 0) >= count)
    harness.assert_answers(harness.send_frame())  # still alive and answering


def test_a_bag_loop_with_camera_info_at_twice_the_image_rate_keeps_the_node_answering(harness):
    """camera_info at twice the image rate fills its synchroniser queue with unmatched stamps; when
    the bag loops (no /clock) every new camera_info was evicted on arrival and still matched: a
    KeyError that ended the process, or with the poisoned queue first, no answer ever again."""
    for _ in range(3):
        stamp = harness.send_frame()
        harness.assert_answers(stamp)
        for k in range(1, 6):  # extra camera_info between frames, never matched
            _, _, info = harness.streamer.rgbd_msgs(stamp + k * 100_000_000)
            harness.streamer.info_pub.publish(info)
    harness.now_ns -= 30 * NS  # the bag starts again
    harness.streamer.start_audio_at(harness.now_ns - 2 * NS)
    for _ in range(3):
        harness.assert_answers(harness.send_frame())
    assert not any(k.startswith("internal_error.") for k in harness.node.events.snapshot())


def test_an_exception_in_a_callback_or_the_worker_is_counted_and_the_node_goes_on(harness, monkeypatch):
    intake = harness.node.intake
    real_add_audio = intake.add_audio

    def broken_once(*args):
        monkeypatch.setattr(intake, "add_audio", real_add_audio)
        raise RuntimeError("injected")

    monkeypatch.setattr(intake, "add_audio", broken_once)
    harness.raw_audio.publish(raw_audio(harness, harness.now_ns + 5 * NS))
    assert wait_for(lambda: harness.node.events["internal_error.RuntimeError"] == 1)

    real_markers = conversions.hazard_markers

    def markers_broken_once(*args):
        monkeypatch.setattr(conversions, "hazard_markers", real_markers)
        raise ZeroDivisionError("injected")

    monkeypatch.setattr(conversions, "hazard_markers", markers_broken_once)
    harness.send_frame()
    assert wait_for(lambda: harness.node.events["internal_error.ZeroDivisionError"] == 1)
    harness.assert_answers(harness.send_frame())
    assert wait_for(lambda: harness.diagnostic("error.internal_error.ZeroDivisionError") == "1")
    assert int(harness.diagnostic("errors")) >= 2


def test_resampled_audio_still_gives_an_answer(harness):
    send_48khz_audio(harness)
    harness.assert_answers(harness.now_ns)


def test_params_file_lists_every_declared_parameter_with_its_default(repo_root):
    document = yaml.safe_load((repo_root / "config" / "perception.yaml").read_text())
    flat: dict[str, object] = {}

    def flatten(prefix: str, tree: dict) -> None:
        for key, value in tree.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                flatten(f"{name}.", value)
            else:
                flat[name] = value

    flatten("", document["/**"]["ros__parameters"])
    declared = (*PARAMETERS, *NODE_DECISION_PARAMETERS)
    assert flat == {spec.name: spec.default for spec in declared}
    assert all(spec.description for spec in declared)


def test_every_parameter_is_declared_with_a_description(harness):
    for spec in PARAMETERS:
        descriptor = harness.node.describe_parameter(spec.name)
        assert descriptor.description, spec.name


# --- start-up --------------------------------------------------------------------------------


def test_missing_model_path_fails_configure_with_the_way_to_make_one(ros_context, monkeypatch, tmp_path):
    """No model_path and no shipped weights (an install that lost them)."""
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", tmp_path / "no_shipped_model")
    node = PerceptionNode(
        context=ros_context, parameter_overrides=[Parameter("extrinsic.from_tf", value=False)]
    )
    try:
        assert node.start() is False
        assert "model_path" in node.configure_error
        assert "training/train.py --config training/configs/hazard_set.yaml" in node.configure_error
    finally:
        node.destroy_node()


@pytest.mark.slow
def test_invalid_model_path_stops_the_executable_with_a_message(tmp_path):
    missing = tmp_path / "no_such_checkpoint"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    env["ROS_DOMAIN_ID"] = str(100 + (os.getpid() + 1) % 100)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "avi_ros.ros.perception_node",
            "--ros-args",
            "-p",
            f"model_path:={missing}",
            "-p",
            "extrinsic.from_tf:=false",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=repo,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert str(missing) in output
    assert "python training/train.py --config training/configs/hazard_set.yaml" in output


def test_autostart_false_waits_unconfigured_until_told(ros_context, beeper_checkpoint):
    with unstarted_node(ros_context, beeper_checkpoint, namespace="manual") as node:
        assert node.autostart is False
        assert node.pipeline is None  # nothing loaded before the configure transition
        assert node.start()
        assert node.pipeline is not None and node.pipeline.taxonomy.names == TAXONOMY.names


def test_precision_parameter_reaches_the_pipeline(ros_context, beeper_checkpoint):
    with unstarted_node(ros_context, beeper_checkpoint, precision="bf16", namespace="bf16") as node:
        assert node.start(), node.configure_error
        assert node.pipeline.precision == "bf16"
    with unstarted_node(ros_context, beeper_checkpoint, precision="fp8", namespace="fp8") as node:
        assert node.start() is False
        assert "precision" in node.configure_error and "fp8" in node.configure_error


def test_markers_and_mask_are_not_built_without_a_subscriber(
    ros_context, beeper_checkpoint, node_scene, monkeypatch
):
    built = []
    real_markers, real_image = conversions.hazard_markers, conversions.image_to_msg

    def markers(*args):
        built.append("markers")
        return real_markers(*args)

    def image(pixels, encoding, header):
        if encoding == "mono8":  # the mask (the test's streamer builds rgb8 images)
            built.append("mask")
        return real_image(pixels, encoding, header)

    monkeypatch.setattr(conversions, "hazard_markers", markers)
    monkeypatch.setattr(conversions, "image_to_msg", image)
    node = make_node(ros_context, beeper_checkpoint, namespace="unwatched")
    assert node.start(), node.configure_error
    h = Harness(ros_context, node, node_scene, namespace="unwatched", record_optional=False)
    try:
        for _ in range(2):
            h.assert_answers(h.send_frame())
        assert built == []
    finally:
        h.close()


# --- simulated time --------------------------------------------------------------------------


@pytest.mark.slow
def test_use_sim_time_stamps_and_waits_follow_the_clock_topic(ros_context, beeper_checkpoint, node_scene):
    # The wait bound is what this test checks: keep it shorter than the one-second sim ticks.
    node = make_node(
        ros_context, beeper_checkpoint, use_sim_time=True, namespace="sim", **{"audio.max_wait_s": 0.3}
    )
    assert node.start(), node.configure_error
    h = Harness(ros_context, node, node_scene, namespace="sim")
    clock = h.client.create_publisher(Clock, "/clock", 10)
    try:
        sim_ns = 5000 * NS
        h.now_ns = sim_ns
        h.streamer.start_audio_at(sim_ns - 2 * NS)

        def tick(stamp_ns: int) -> None:
            clock.publish(Clock(clock=conversions.ns_to_stamp(stamp_ns)))
            assert wait_for(lambda: node.get_clock().now().nanoseconds == stamp_ns)

        tick(sim_ns)
        stamp = h.send_frame(sim_ns)
        h.assert_answers(stamp)

        # A frame without audio: one wall second passes but sim time stands still, so it waits...
        waiting = sim_ns + NS
        h.streamer.publish_rgbd(waiting)
        time.sleep(1.0)
        assert node.events["frame.audio_timeout"] == 0
        # ...and once the sim clock moves past the wait bound, it is dropped.
        tick(waiting + NS)
        assert wait_for(lambda: node.events["frame.audio_timeout"] == 1)
        # A looping bag: /clock jumps back, and the node resets its buffers.
        tick(sim_ns - 100 * NS)
        assert wait_for(lambda: node.events["clock.time_backwards"] == 1)
        assert node.assembler.ring.empty
    finally:
        h.close()
