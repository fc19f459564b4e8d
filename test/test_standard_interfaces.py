"""Standard ROS interfaces beside the package's own messages, without the packages installed:
hazards -> vision_msgs/Detection3DArray (hypotheses, covariance, ids), audio_common_msgs ->
the FOA intake, the published layouts round-tripped through a real bag, and the replay writing
detections into its output bag."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avi_ros.audio import encode_pcm, foa_encoding_gains
from avi_ros.bag.io import BagWriter, bag_topics, read_bag
from avi_ros.bag.make_bag import MakeBagOptions, make_bag
from avi_ros.bag.messages import MessageFactory
from avi_ros.bag.replay import ReplayOptions, replay
from avi_ros.bag.typestore import STANDARD_DEFINITIONS, RosbagsConstructors, avi_ros_typestore
from avi_ros.geometry import direction_to_unit, rotation_from_rpy
from avi_ros.interop.audio_common import AudioCommonInfo, foa_audio_view
from avi_ros.interop.detections import (
    DEFAULT_UNCERTAINTY,
    ORIENTATION_VARIANCE,
    RigidTransform,
    detection_array_message,
    hazard_detection,
    hazard_detections,
    transform_detection,
)
from avi_ros.sensor_decoding import SensorInputError, decode_foa_message
from avi_ros.taxonomy import Action, RiskLevel, Visibility, default_taxonomy
from avi_ros.types import HazardEstimateData

NAMES = ("none", "car", "dog", "alarm", "voice")
SAMPLE_RATE = 48_000


def hazard(
    probabilities=(0.05, 0.1, 0.6, 0.25, 0.0),
    azimuth=0.4,
    elevation=0.1,
    distance=4.0,
    visibility=Visibility.VISIBLE,
    track_id=7,
) -> HazardEstimateData:
    probs = np.asarray(probabilities, dtype=np.float32)
    class_id = int(np.argmax(probs)) if probs.size else 2
    return HazardEstimateData(
        class_id=class_id,
        class_name=NAMES[class_id] if probs.size == len(NAMES) else "dog",
        class_probabilities=probs,
        azimuth=azimuth,
        elevation=elevation,
        distance=distance,
        direction=direction_to_unit(azimuth, elevation),
        confidence=0.9,
        occlusion_level=0.2,
        visibility=visibility,
        audio_weight=0.5,
        visual_weight=0.5,
        risk_level=RiskLevel.MEDIUM,
        recommended_action=Action.SLOW,
        track_id=track_id,
    )


# --- detections ------------------------------------------------------------------------------


def test_hypotheses_are_the_classes_by_score_without_background_or_negligible_ones():
    detection = hazard_detection(hazard(), NAMES)
    assert [h.class_id for h in detection.hypotheses] == ["dog", "alarm", "car"]
    assert [h.score for h in detection.hypotheses] == pytest.approx([0.6, 0.25, 0.1])
    assert detection.id == "7"
    assert hazard_detection(hazard(track_id=0), NAMES).id == ""


def test_a_hazard_without_class_probabilities_has_its_class_with_its_confidence():
    detection = hazard_detection(hazard(probabilities=()), NAMES)
    assert [(h.class_id, h.score) for h in detection.hypotheses] == [("dog", pytest.approx(0.9))]


def test_position_and_covariance_follow_direction_distance_and_visibility():
    estimate = hazard(azimuth=0.7, elevation=-0.2, distance=5.0)
    u = direction_to_unit(0.7, -0.2)
    visible = hazard_detection(estimate, NAMES)
    np.testing.assert_allclose(visible.position_m, 5.0 * u)
    assert visible.covariance.shape == (6, 6)
    np.testing.assert_allclose(visible.covariance, visible.covariance.T)
    position = visible.covariance[:3, :3]
    spread = DEFAULT_UNCERTAINTY.visible
    # Along the line of sight: the range variance; across it: (distance * angular std)^2.
    assert u @ position @ u == pytest.approx(spread.range_std_m(5.0) ** 2)
    across = np.cross(u, [0.0, 0.0, 1.0])
    across /= np.linalg.norm(across)
    assert across @ position @ across == pytest.approx((5.0 * math.radians(spread.angular_std_deg)) ** 2)
    np.testing.assert_allclose(visible.covariance[3:, 3:], np.eye(3) * ORIENTATION_VARIANCE)
    assert not visible.covariance[:3, 3:].any()
    heard = hazard_detection(
        hazard(azimuth=0.7, elevation=-0.2, distance=5.0, visibility=Visibility.OUT_OF_VIEW), NAMES
    )
    heard_position = heard.covariance[:3, :3]
    assert u @ heard_position @ u > 4 * (u @ position @ u)  # heard, not seen: wide along the range
    assert across @ heard_position @ across > across @ position @ across
    occluded = hazard_detection(hazard(distance=5.0, visibility=Visibility.OCCLUDED), NAMES)
    assert np.trace(position) < np.trace(occluded.covariance[:3, :3]) < np.trace(heard_position)


def test_a_transform_moves_the_position_and_rotates_the_covariance():
    detection = hazard_detection(hazard(visibility=Visibility.OCCLUDED), NAMES)
    rotation = rotation_from_rpy(0.1, -0.2, 1.2)
    transform = RigidTransform(rotation, np.array([0.3, -0.1, 0.8]))
    moved = transform_detection(detection, transform)
    np.testing.assert_allclose(moved.position_m, rotation @ detection.position_m + [0.3, -0.1, 0.8])
    np.testing.assert_allclose(moved.covariance[:3, :3], rotation @ detection.covariance[:3, :3] @ rotation.T)
    # The spread along the line of sight is the same quantity in either frame.
    u = detection.position_m / np.linalg.norm(detection.position_m)
    assert (rotation @ u) @ moved.covariance[:3, :3] @ (rotation @ u) == pytest.approx(
        u @ detection.covariance[:3, :3] @ u
    )
    assert (moved.id, moved.hypotheses) == (detection.id, detection.hypotheses)


class _Xyz:
    def __init__(self, **values: float) -> None:
        self.__dict__.update(values)


def test_a_tf_transform_message_gives_its_rotation_matrix():
    half = 0.5 * math.pi / 2  # 90 degrees about z
    message = _Xyz(
        translation=_Xyz(x=1.0, y=2.0, z=3.0),
        rotation=_Xyz(x=0.0, y=0.0, z=math.sin(half), w=math.cos(half)),
    )
    transform = RigidTransform.from_message(message)
    np.testing.assert_allclose(transform.rotation @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(transform.translation_m, [1.0, 2.0, 3.0])


# --- the published layouts, through a real bag -------------------------------------------------


def test_standard_definitions_have_the_published_fields():
    store = avi_ros_typestore()

    def fields(msgtype: str) -> list[str]:
        return [name for name, _ in store.fielddefs[msgtype][1]]

    assert fields("vision_msgs/msg/Detection3DArray") == ["header", "detections"]
    assert fields("vision_msgs/msg/Detection3D") == ["header", "results", "bbox", "id"]
    assert fields("vision_msgs/msg/ObjectHypothesisWithPose") == ["hypothesis", "pose"]
    assert fields("vision_msgs/msg/ObjectHypothesis") == ["class_id", "score"]
    assert fields("vision_msgs/msg/BoundingBox3D") == ["center", "size"]
    assert fields("audio_common_msgs/msg/AudioDataStamped") == ["header", "audio"]
    assert fields("audio_common_msgs/msg/AudioData") == ["data"]
    assert fields("audio_common_msgs/msg/AudioInfo") == [
        "channels",
        "sample_rate",
        "sample_format",
        "bitrate",
        "coding_format",
    ]
    assert set(STANDARD_DEFINITIONS) <= set(store.types)


def test_detections_and_audio_common_round_trip_through_a_bag(tmp_path):
    factory = MessageFactory()
    new = RosbagsConstructors()
    stamp = 12 * 1_000_000_000 + 345
    hazards = [
        hazard(),
        hazard(probabilities=(0.0, 0.7, 0.1, 0.2, 0.0), track_id=0, visibility=Visibility.OCCLUDED),
    ]
    detections = hazard_detections(hazards, NAMES)
    array = detection_array_message(new, factory.header(stamp, "foa_microphone"), detections)
    audio = np.stack([np.linspace(-0.5, 0.5, 960, dtype=np.float32) * g for g in (1.0, 0.5, -0.25, 0.75)])
    chunk = new["audio_common_msgs/msg/AudioDataStamped"](
        header=factory.header(stamp, "foa_microphone"),
        audio=new["audio_common_msgs/msg/AudioData"](data=encode_pcm(audio, "int16")),
    )
    info = new["audio_common_msgs/msg/AudioInfo"](
        channels=4, sample_rate=SAMPLE_RATE, sample_format="S16LE", bitrate=0, coding_format="wave"
    )
    path = tmp_path / "bag"
    with BagWriter(path) as writer:
        writer.write("/hazards/detections", stamp, array)
        writer.write("/audio", stamp, chunk)
        writer.write("/audio_info", stamp, info)
    assert bag_topics(path) == {
        "/hazards/detections": "vision_msgs/msg/Detection3DArray",
        "/audio": "audio_common_msgs/msg/AudioDataStamped",
        "/audio_info": "audio_common_msgs/msg/AudioInfo",
    }
    read = {m.topic: m.message for m in read_bag(path)}
    back = read["/hazards/detections"]
    assert back.header.frame_id == "foa_microphone"
    assert [d.id for d in back.detections] == ["7", ""]
    for message, detection in zip(back.detections, detections, strict=True):
        assert [r.hypothesis.class_id for r in message.results] == [h.class_id for h in detection.hypotheses]
        scores = [r.hypothesis.score for r in message.results]
        assert scores == sorted(scores, reverse=True)
        pose = message.results[0].pose
        np.testing.assert_allclose(pose.covariance.reshape(6, 6), detection.covariance)
        center = message.bbox.center.position
        np.testing.assert_allclose([center.x, center.y, center.z], detection.position_m)
        assert message.bbox.center.orientation.w == 1.0 and message.bbox.size.x > 0.0
    view = foa_audio_view(read["/audio"], AudioCommonInfo.from_message(read["/audio_info"]), "ACN", "SN3D")
    decoded = decode_foa_message(view)
    assert decoded.resampled and decoded.audio.shape == (4, 960 // 2)  # 48 kHz -> 24 kHz
    assert view.header.stamp.sec == 12 and view.header.stamp.nanosec == 345


# --- audio_common -> FOA ---------------------------------------------------------------------


class _Stamped:
    def __init__(self, data: bytes) -> None:
        self.header = _Xyz(stamp=_Xyz(sec=1, nanosec=0), frame_id="mic")
        self.audio = _Xyz(data=data)


def plane_wave(azimuth: float, samples: int = 2400) -> np.ndarray:
    signal = np.sin(2 * np.pi * 500 * np.arange(samples) / 24_000).astype(np.float32) * 0.5
    return foa_encoding_gains(azimuth, 0.0)[:, None] * signal


def test_fuma_audio_common_input_becomes_the_same_acn_sn3d_chunk():
    acn = plane_wave(1.0)
    # The same wave in FuMa order and normalisation: W/sqrt(2), X, Y, Z.
    fuma = np.stack([acn[0] / math.sqrt(2.0), acn[3], acn[1], acn[2]])
    info = AudioCommonInfo(channels=4, sample_rate=24_000, sample_format="F32LE", coding_format="wave")
    view = foa_audio_view(_Stamped(encode_pcm(fuma, "float32")), info, "FuMa", "FuMa")
    chunk = decode_foa_message(view)
    np.testing.assert_allclose(chunk.audio, acn, atol=1e-6)
    n3d = np.concatenate([acn[:1], acn[1:] * math.sqrt(3.0)])
    view = foa_audio_view(
        _Stamped(encode_pcm(n3d, "int32")), info.__class__(4, 24_000, "S32LE"), "ACN", "N3D"
    )
    np.testing.assert_allclose(decode_foa_message(view).audio, acn, atol=1e-6)


@pytest.mark.parametrize(
    ("info", "says"),
    [
        (None, "no audio_common_msgs/AudioInfo"),
        (AudioCommonInfo(4, 48_000, "S16LE", "mp3"), "coding_format 'mp3'"),
        (AudioCommonInfo(4, 48_000, "S24LE", "wave"), "sample_format 'S24LE'"),
    ],
)
def test_audio_common_chunks_that_cannot_be_read_are_bad_format(info, says):
    with pytest.raises(SensorInputError, match=says) as raised:
        foa_audio_view(_Stamped(b"\0" * 32), info, "ACN", "SN3D")
    assert raised.value.reason == "audio.bad_format"


# --- replay ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, tiny_checkpoint):
    torch.set_num_threads(2)
    checkpoint = tiny_checkpoint(default_taxonomy(), 0.5, {0: -50.0}, confidence_bias=50.0)
    bag = make_bag(
        MakeBagOptions(out=tmp_path_factory.mktemp("bag") / "s.mcap", duration_s=1.0, width=64, height=48)
    )
    out: Path = tmp_path_factory.mktemp("replay")
    options = ReplayOptions(bag=bag.path, model=checkpoint, out=out, device="cpu", report=False)
    return replay(options)


def test_replay_writes_the_hazards_as_detections_into_its_output_bag(replayed):
    by_topic: dict[str, list] = {}
    for message in read_bag(replayed.output_bag, ["/hazards", "/hazards/detections"]):
        by_topic.setdefault(message.topic, []).append(message.message)
    assert len(by_topic["/hazards/detections"]) == len(by_topic["/hazards"]) == len(replayed.records) > 0
    names = default_taxonomy().names
    for hazards, detections in zip(by_topic["/hazards"], by_topic["/hazards/detections"], strict=True):
        assert detections.header.stamp == hazards.header.stamp
        assert detections.header.frame_id == hazards.header.frame_id == "foa_microphone"
        assert len(detections.detections) == len(hazards.hazards) == 1
        estimate, detection = hazards.hazards[0], detections.detections[0]
        assert detection.id == (str(estimate.track_id) if estimate.track_id else "")
        best = detection.results[0].hypothesis
        assert best.class_id == estimate.class_name
        assert best.score == pytest.approx(float(estimate.class_probabilities[names.index(best.class_id)]))
        position = detection.bbox.center.position
        direction = np.array([estimate.direction.x, estimate.direction.y, estimate.direction.z])
        np.testing.assert_allclose(
            [position.x, position.y, position.z], estimate.distance * direction, rtol=1e-5, atol=1e-6
        )
