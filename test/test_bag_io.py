"""rosbag2 files written with the avi_ros type store read back intact, through rosbags and
through mcap's own reader, and damaged bags give an error that names the file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from avi_ros.bag.io import BagError, BagWriter, bag_topics, read_bag


def _write_sample_bag(path: Path, storage: str) -> None:
    with BagWriter(path, storage=storage) as writer:
        header_cls = writer.message_class("std_msgs/msg/Header")
        time_cls = writer.message_class("builtin_interfaces/msg/Time")
        audio_cls = writer.message_class("avi_ros/msg/FoaAudio")
        hazards_cls = writer.message_class("avi_ros/msg/HazardEstimateArray")
        hazard_cls = writer.message_class("avi_ros/msg/HazardEstimate")
        vector_cls = writer.message_class("geometry_msgs/msg/Vector3")
        for i in range(3):
            header = header_cls(stamp=time_cls(sec=i, nanosec=5), frame_id="foa_mic")
            audio = audio_cls(
                header=header,
                format="int16",
                sample_rate=24000,
                channel_count=4,
                frame_sample_count=2,
                channel_order="ACN",
                normalization="SN3D",
                data=np.arange(16, dtype=np.uint8) + i,
            )
            writer.write("/audio", i * 1_000_000_000, audio)
        hazard = hazard_cls(
            class_id=3,
            class_name="siren",
            class_probabilities=np.array([0.1, 0.9], dtype=np.float32),
            azimuth=0.5,
            elevation=0.0,
            distance=4.0,
            direction=vector_cls(x=1.0, y=0.0, z=0.0),
            confidence=0.9,
            occlusion_level=0.2,
            visibility=hazard_cls.OCCLUDED,
            audio_weight=0.6,
            visual_weight=0.4,
            risk_level=hazard_cls.RISK_HIGH,
            recommended_action=hazard_cls.STOP,
        )
        writer.write("/hazards", 2_000_000_000, hazards_cls(header=header, hazards=[hazard]))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_round_trip(tmp_path, storage):
    bag = tmp_path / "bag"
    _write_sample_bag(bag, storage)

    assert bag_topics(bag) == {
        "/audio": "avi_ros/msg/FoaAudio",
        "/hazards": "avi_ros/msg/HazardEstimateArray",
    }
    messages = list(read_bag(bag))
    assert [m.topic for m in messages] == ["/audio", "/audio", "/audio", "/hazards"]
    audio = [m.message for m in messages if m.topic == "/audio"]
    assert [a.header.stamp.sec for a in audio] == [0, 1, 2]
    np.testing.assert_array_equal(audio[2].data, np.arange(16, dtype=np.uint8) + 2)
    (hazard,) = messages[-1].message.hazards
    assert (hazard.class_name, hazard.visibility, hazard.recommended_action) == ("siren", 1, 2)
    assert hazard.class_probabilities.tolist() == pytest.approx([0.1, 0.9])


def test_mcap_reader_sees_registered_schemas(tmp_path):
    bag = tmp_path / "bag"
    _write_sample_bag(bag, "mcap")
    (mcap_file,) = bag.glob("*.mcap")
    with mcap_file.open("rb") as stream:
        summary = make_reader(stream).get_summary()
    schemas = {s.name: s for s in summary.schemas.values()}
    assert set(schemas) == {"avi_ros/msg/FoaAudio", "avi_ros/msg/HazardEstimateArray"}
    definition = schemas["avi_ros/msg/HazardEstimateArray"].data.decode()
    assert schemas["avi_ros/msg/FoaAudio"].encoding == "ros2msg"
    assert "MSG: avi_ros/HazardEstimate" in definition and "uint8 OUT_OF_VIEW=2" in definition


def test_selecting_a_missing_topic_names_what_the_bag_has(tmp_path):
    bag = tmp_path / "bag"
    _write_sample_bag(bag, "mcap")
    with pytest.raises(BagError, match=r"\['/camera'\] not in the bag; it has \['/audio', '/hazards'\]"):
        list(read_bag(bag, topics=["/camera"]))


def test_damaged_bags_give_a_clear_error(tmp_path):
    with pytest.raises(BagError, match="no such bag"):
        list(read_bag(tmp_path / "missing"))
    bag = tmp_path / "bag"
    _write_sample_bag(bag, "mcap")
    (mcap_file,) = bag.glob("*.mcap")
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match=re.escape(str(bag))):
        list(read_bag(bag))
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not a bag at all")
    with pytest.raises(BagError, match=r"garbage\.mcap"):
        list(read_bag(garbage))
