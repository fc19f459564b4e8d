"""rosbag2 files written with the avi_ros type store read back intact, through rosbags and
through mcap's own reader; every mcap chunk is verified when read, and damaged bags give an error
that names the file (and the chunk), or have the damaged chunks skipped and recorded."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from avi_ros.bag.io import BagError, BagWriter, DamagedBagError, bag_topics, read_bag
from avi_ros.bag.mcap_storage import IntegrityLog, VerifiedMcapReader
from avi_ros.bag.typestore import avi_ros_typestore


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
            track_id=7,
            track_state=hazard_cls.TRACK_CONFIRMED,
            first_seen=time_cls(sec=1, nanosec=500),
            track_age=1.0,
            angular_velocity=-0.2,
            range_rate=-1.5,
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
    assert (hazard.track_id, hazard.first_seen.sec, hazard.first_seen.nanosec) == (7, 1, 500)
    assert (hazard.angular_velocity, hazard.range_rate) == pytest.approx((-0.2, -1.5))


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


def test_missing_or_garbage_bags_give_a_clear_error(tmp_path):
    with pytest.raises(BagError, match="no such bag"):
        list(read_bag(tmp_path / "missing"))
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not a bag at all")
    with pytest.raises(BagError, match=r"garbage\.mcap"):
        list(read_bag(garbage))


# --- verified reading ------------------------------------------------------------------------

CHUNKY_MESSAGES = 40  # 64 KiB each: several 768 KiB chunks


def _write_chunky_bag(path: Path) -> None:
    """Incompressible payloads, so the bag spans several chunks."""
    rng = np.random.default_rng(0)
    with BagWriter(path) as writer:
        string = writer.message_class("std_msgs/msg/String")
        for i in range(CHUNKY_MESSAGES):
            writer.write("/blob", i * 10_000_000, string(data=rng.bytes(32 * 1024).hex()))


def _chunk_indexes(bag: Path) -> list:
    (mcap_file,) = bag.glob("*.mcap")
    with mcap_file.open("rb") as stream:
        return sorted(make_reader(stream).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)


def test_a_damaged_chunk_is_an_error_or_is_skipped_and_recorded(tmp_path):
    bag = tmp_path / "bag"
    _write_chunky_bag(bag)
    chunks = _chunk_indexes(bag)
    assert len(chunks) >= 3 and {c.compression for c in chunks} == {"zstd"}
    (mcap_file,) = bag.glob("*.mcap")
    data = bytearray(mcap_file.read_bytes())
    second = chunks[1]
    flip = second.chunk_start_offset + second.chunk_length // 2  # inside its compressed data
    data[flip] ^= 0xFF
    mcap_file.write_bytes(bytes(data))

    with pytest.raises(DamagedBagError, match=r"damaged chunk in bag\.mcap bytes \d+-\d+ \(.*\), bag time"):
        list(read_bag(bag))
    log = IntegrityLog(skip_damaged=True)
    kept = [m.message.data for m in read_bag(bag, integrity=log)]
    (damaged,) = log.damaged.values()
    assert damaged.offset == second.chunk_start_offset and damaged.lost is not None
    assert len(kept) + damaged.lost["/blob"] == CHUNKY_MESSAGES
    assert len(log.verified) == len(chunks) - 1 and not log.unverified
    assert "1 damaged and skipped" in log.describe()


def test_an_intact_mcap_file_is_indexed_from_its_summary_not_scanned(tmp_path):
    """The summary path must work on a whole file: a damaged chunk in the middle of a file with its
    footer is then found through the chunk index (a scan from the start read nothing here)."""
    bag = tmp_path / "bag"
    _write_chunky_bag(bag)
    (mcap_file,) = bag.glob("*.mcap")
    with mcap_file.open("rb") as stream:
        reader = VerifiedMcapReader(mcap_file, stream, IntegrityLog())
        assert reader.truncation is None and reader.usable
        assert len(reader.topics) >= 1 and sum(reader.message_counts.values()) == CHUNKY_MESSAGES


def test_chunks_without_a_crc_are_read_and_counted_as_unverified(tmp_path):
    """Bags from other writers (rosbags' own, ros2 bag with CRCs off) still read; nothing is claimed."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = avi_ros_typestore()
    bag = tmp_path / "plain"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/text", "std_msgs/msg/String", typestore=store)
        for i in range(3):
            message = store.types["std_msgs/msg/String"](data=f"m{i}")
            writer.write(connection, i, store.serialize_cdr(message, "std_msgs/msg/String"))
    log = IntegrityLog()
    assert [m.message.data for m in read_bag(bag, integrity=log)] == ["m0", "m1", "m2"]
    assert (len(log.verified), len(log.unverified), log.damaged) == (0, 1, {})
    assert "1 without a CRC (not verifiable)" in log.describe()
    sqlite = tmp_path / "sqlite"
    _write_sample_bag(sqlite, "sqlite3")
    log = IntegrityLog()
    assert len(list(read_bag(sqlite, integrity=log))) == 4
    assert log.describe() == ""  # sqlite3 has no checksums to verify


# --- bags cut short (a recorder killed before it wrote the summary) -----------------------------


def _cut_copy(bag: Path, copy: Path, cut: int) -> Path:
    """A copy of ``bag`` whose mcap file ends at byte ``cut``."""
    shutil.copytree(bag, copy)
    (mcap_file,) = copy.glob("*.mcap")
    mcap_file.write_bytes(mcap_file.read_bytes()[:cut])
    return copy


@pytest.mark.parametrize(
    ("where", "complete"),
    [
        ("inside the first chunk", 0),
        ("in the middle of the second chunk", 1),
        ("one byte before the end of the third chunk", 2),
        ("at the start of the third chunk", 2),
    ],
)
def test_a_bag_cut_short_reads_exactly_its_complete_chunks_and_counts_the_loss(tmp_path, where, complete):
    bag = tmp_path / "bag"
    _write_chunky_bag(bag)
    chunks = _chunk_indexes(bag)
    assert len(chunks) >= 4
    cut = {
        "inside the first chunk": chunks[0].chunk_start_offset + 10,
        "in the middle of the second chunk": chunks[1].chunk_start_offset + chunks[1].chunk_length // 2,
        "one byte before the end of the third chunk": chunks[2].chunk_start_offset
        + chunks[2].chunk_length
        - 1,
        "at the start of the third chunk": chunks[2].chunk_start_offset,
    }[where]
    whole = list(read_bag(bag))
    last_complete_ns = chunks[complete - 1].message_end_time if complete else -1
    expected = [(m.stamp_ns, m.message.data) for m in whole if m.stamp_ns <= last_complete_ns]
    lost = CHUNKY_MESSAGES - len(expected)
    readable = chunks[complete].chunk_start_offset  # a chunk's message indexes end where the next starts
    cut_bag = _cut_copy(bag, tmp_path / "cut", cut)

    with pytest.raises(
        DamagedBagError, match=r"bag\.mcap \(cut short: no footer\).*messages lost: " + str(lost)
    ):
        list(read_bag(cut_bag))
    log = IntegrityLog(skip_damaged=True)
    assert [(m.stamp_ns, m.message.data) for m in read_bag(cut_bag, integrity=log)] == expected
    (damaged,) = log.damaged_files.values()
    assert (damaged.readable_bytes, damaged.file_bytes) == (readable, cut)
    assert damaged.messages_lost == ({"/blob": lost} if lost else {})
    assert f"{cut - readable} bytes lost; messages lost: {lost} (/blob x{lost})" in log.describe()
    assert len(log.verified) == complete  # the complete chunks are CRC-checked as in a whole bag
    assert bag_topics(cut_bag) == {"/blob": "std_msgs/msg/String"}  # from metadata.yaml if need be


def test_a_bag_cut_short_without_metadata_yaml_is_read_from_its_mcap_file(tmp_path):
    """A killed recorder also leaves no metadata.yaml: the loss in messages is then unknown."""
    bag = tmp_path / "bag"
    _write_chunky_bag(bag)
    chunks = _chunk_indexes(bag)
    cut_bag = _cut_copy(bag, tmp_path / "cut", chunks[1].chunk_start_offset + 100)
    (cut_bag / "metadata.yaml").unlink()
    log = IntegrityLog(skip_damaged=True)
    kept = list(read_bag(cut_bag, integrity=log))
    assert len(kept) == sum(1 for m in read_bag(bag) if m.stamp_ns <= chunks[0].message_end_time)
    assert "100 bytes lost; messages lost: unknown" in log.describe()


def test_a_bag_cut_inside_its_summary_lost_nothing_and_reads_without_error(tmp_path):
    bag = tmp_path / "bag"
    _write_chunky_bag(bag)
    (mcap_file,) = bag.glob("*.mcap")
    cut_bag = _cut_copy(bag, tmp_path / "cut", mcap_file.stat().st_size - 40)  # inside the footer
    log = IntegrityLog()
    assert [m.message.data for m in read_bag(cut_bag, integrity=log)] == [
        m.message.data for m in read_bag(bag)
    ]
    (damaged,) = log.damaged_files.values()
    assert damaged.data_complete and "no message lost" in log.describe()


def test_a_corrupt_sqlite3_bag_gives_a_clear_error(tmp_path):
    bag = tmp_path / "sqlite"
    _write_sample_bag(bag, "sqlite3")
    (database,) = bag.glob("*.db3")
    with sqlite3.connect(database) as db:
        (topics_page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'metadata'").fetchone()
    data = bytearray(database.read_bytes())
    page_bytes = 4096
    start = (topics_page - 1) * page_bytes
    data[start : start + 8] = bytes(b ^ 0xFF for b in data[start : start + 8])  # a b-tree page header
    database.write_bytes(bytes(data))
    with pytest.raises(DamagedBagError, match=r"sqlite\.db3 \(not a readable sqlite3 database \(.*malformed"):
        list(read_bag(bag))


def test_a_sqlite3_bag_missing_rows_is_an_error_or_is_read_and_counted(tmp_path):
    bag = tmp_path / "sqlite"
    _write_sample_bag(bag, "sqlite3")
    (database,) = bag.glob("*.db3")
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM messages WHERE timestamp = 1000000000")  # the second /audio message
    with pytest.raises(
        DamagedBagError, match=r"1 of the messages metadata.yaml counts are not in the database"
    ):
        list(read_bag(bag))
    log = IntegrityLog(skip_damaged=True)
    audio = [m.message.header.stamp.sec for m in read_bag(bag, integrity=log) if m.topic == "/audio"]
    assert audio == [0, 2]
    (damaged,) = log.damaged_files.values()
    assert damaged.messages_lost == {"/audio": 1}
    assert "messages lost: 1 (/audio x1)" in log.describe()
