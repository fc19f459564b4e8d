"""mcap files as rosbag2 writes them, and reading them back with every chunk verified.

Writing: a storage plug-in for the rosbags ``Writer`` built on the official ``mcap`` writer,
with the rosbag2 mcap plug-in's defaults: zstd-compressed chunks of 768 KiB, a CRC-32 of each
chunk's uncompressed bytes, of the data section and of the summary, and the ``ros2`` profile,
``rosbag2`` metadata record and ``offered_qos_profiles`` channel metadata that ``ros2 bag``
reads. (The rosbags writer leaves every CRC at 0, so a damaged chunk could not be detected.)

Reading: ``VerifiedMcapReader`` reads chunks through the summary's chunk index, checks each
chunk's header against its index entry, decompresses it and checks its CRC. A chunk that
fails is either an error (``DamagedChunkError``) or, when the caller's ``IntegrityLog`` says
so, skipped and recorded with the messages it held (from the chunk's message index). Chunks
written without a CRC (by rosbags, or ``ros2 bag record`` with CRCs off) are counted as
unverified. Messages come out in receive-time order, as from rosbags' reader.
"""

from __future__ import annotations

import heapq
import io
import itertools
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.reader import SeekingReader
from mcap.records import Chunk, ChunkIndex, Message
from mcap.stream_reader import CRCValidationError, breakup_chunk
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter
from rosbags.interfaces import MessageDefinitionFormat
from rosbags.rosbag2 import CompressionMode

from avi_ros import __version__
from avi_ros.units import NS_PER_S

CHUNK_SIZE_BYTES = 768 * 1024  # rosbag2_storage_mcap's default chunk size (uncompressed)
RECORD_PREFIX_BYTES = 9  # opcode (1) + record length (8)
MESSAGE_INDEX_HEAD = struct.Struct("<BQHI")  # opcode, record length, channel id, records length
MESSAGE_INDEX_ENTRY_BYTES = 16  # log time (8) + offset (8)


class CheckedMcapStorage:
    """rosbags storage writer (``StorageWriter`` protocol): one zstd-chunked mcap file with CRCs.

    ``compression`` is the rosbags mode; chunk compression is always on, so only ``NONE`` and
    ``STORAGE`` (what rosbag2 calls mcap's own chunk compression) are accepted.
    """

    def __init__(self, path: Path, compression: CompressionMode) -> None:
        if compression not in (CompressionMode.NONE, CompressionMode.STORAGE):
            raise ValueError(f"mcap storage compresses its chunks itself; got compression mode {compression}")
        self.path = path / f"{path.name}.mcap"
        self._stream: BinaryIO = self.path.open("xb")
        self._writer = McapWriter(
            self._stream,
            chunk_size=CHUNK_SIZE_BYTES,
            compression=CompressionType.ZSTD,
            enable_crcs=True,
            enable_data_crcs=True,
        )
        self._writer.start(profile="ros2", library=f"avi_ros-{__version__}")
        self._schemas: dict[str, int] = {}
        self._channels: dict[int, int] = {}  # rosbags connection id -> mcap channel id

    def add_msgtype(self, connection: Any) -> None:
        """Register the schema (message definition) of ``connection.msgtype``."""
        encoding = "ros2msg" if connection.msgdef.format == MessageDefinitionFormat.MSG else "ros2idl"
        self._schemas[connection.msgtype] = self._writer.register_schema(
            name=connection.msgtype, encoding=encoding, data=connection.msgdef.data.encode()
        )

    def add_connection(self, connection: Any, offered_qos_profiles: str) -> None:
        """Register a channel (topic) with rosbag2's channel metadata."""
        self._channels[connection.id] = self._writer.register_channel(
            topic=connection.topic,
            message_encoding=connection.ext.serialization_format,
            schema_id=self._schemas[connection.msgtype],
            metadata={"offered_qos_profiles": offered_qos_profiles, "topic_type_hash": connection.digest},
        )

    def write(self, connection: Any, timestamp: int, data: bytes | memoryview) -> None:
        """Append one serialised message received at ``timestamp`` [ns]."""
        self._writer.add_message(
            self._channels[connection.id], log_time=timestamp, data=bytes(data), publish_time=timestamp
        )

    def close(self, version: int, metadata: str) -> None:
        """Write the rosbag2 metadata record, the indexes and the summary; close the file."""
        del version  # the rosbag2 version lives inside ``metadata``
        self._writer.add_metadata("rosbag2", {"serialized_metadata": metadata})
        self._writer.finish()
        self._stream.close()

    def abort(self) -> None:
        """Close without a summary (the caller removes the half-written bag)."""
        self._stream.close()


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DamagedChunk:
    """A chunk that failed verification: where it is, what time it covered and what it held.

    lost: messages per topic, from the chunk's message index; None when that index is damaged too.
    """

    file: Path
    offset: int
    length: int
    start_ns: int
    end_ns: int
    reason: str
    lost: dict[str, int] | None

    def describe(self, origin_ns: int) -> str:
        """One line; times in seconds since ``origin_ns`` (the bag's first message)."""
        span = f"{(self.start_ns - origin_ns) / NS_PER_S:.2f}-{(self.end_ns - origin_ns) / NS_PER_S:.2f} s"
        lost = (
            ", ".join(f"{topic} x{count}" for topic, count in sorted(self.lost.items()))
            if self.lost is not None
            else "unknown (its message index is damaged too)"
        )
        return (
            f"{self.file.name} bytes {self.offset}-{self.offset + self.length} ({self.reason}), "
            f"bag time {span}; messages lost: {lost}"
        )


class DamagedChunkError(Exception):
    """A chunk failed verification and the read was not asked to skip damaged chunks."""

    def __init__(self, chunk: DamagedChunk, origin_ns: int) -> None:
        super().__init__(f"damaged chunk in {chunk.describe(origin_ns)}")
        self.chunk = chunk


@dataclass
class IntegrityLog:
    """What verified reads of a bag found; shared by every read of one replay.

    skip_damaged: skip (and record) a damaged chunk instead of raising ``DamagedChunkError``.
    A chunk is counted once however often it is read.
    """

    skip_damaged: bool = False
    verified: set[tuple[Path, int]] = field(default_factory=set)
    unverified: set[tuple[Path, int]] = field(default_factory=set)
    damaged: dict[tuple[Path, int], DamagedChunk] = field(default_factory=dict)
    start_ns: int = 0  # the earliest chunk start seen [ns]; times are reported from here

    def describe(self) -> str:
        """The summary line(s) a user reads: what was verified, what was skipped."""
        total = len(self.verified) + len(self.unverified) + len(self.damaged)
        if not total:
            return ""
        lines = [f"chunks read: {total}, {len(self.verified)} verified by CRC"]
        if self.unverified:
            lines[0] += f", {len(self.unverified)} without a CRC (not verifiable)"
        if self.damaged:
            lines[0] += f", {len(self.damaged)} damaged and skipped:"
            lines += [f"  {chunk.describe(self.start_ns)}" for chunk in self.damaged.values()]
        return "\n".join(lines)


class VerifiedMcapReader:
    """Messages of one mcap file, read chunk by chunk through its summary and verified.

    ``usable`` is False for a file without chunk indexes (unchunked, or no summary); callers
    then read it another way.
    """

    def __init__(self, path: Path, stream: BinaryIO, log: IntegrityLog) -> None:
        self.path = path
        self._stream = stream
        self._log = log
        summary = SeekingReader(stream).get_summary()
        self._channels = summary.channels if summary is not None else {}
        self._schemas = summary.schemas if summary is not None else {}
        self._indexes = sorted(
            summary.chunk_indexes if summary is not None else [],
            key=lambda index: (index.message_start_time, index.chunk_start_offset),
        )
        self.usable = bool(self._indexes)
        if self._indexes:
            start = self._indexes[0].message_start_time
            log.start_ns = min(log.start_ns, start) if log.start_ns else start

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, message type, receive time [ns], CDR bytes) of ``topics``, in time order."""
        wanted = {cid for cid, channel in self._channels.items() if channel.topic in topics}
        indexes = [
            index
            for index in self._indexes
            if not index.message_index_offsets or wanted & set(index.message_index_offsets)
        ]
        heap: list[tuple[int, int, Message]] = []
        order = itertools.count()
        position = 0
        while position < len(indexes) or heap:
            # Load every chunk that may hold a message before the earliest one loaded.
            while position < len(indexes) and (
                not heap or indexes[position].message_start_time <= heap[0][0]
            ):
                for message in self._chunk_messages(indexes[position], wanted):
                    heapq.heappush(heap, (message.log_time, next(order), message))
                position += 1
            if heap:
                _, _, message = heapq.heappop(heap)
                channel = self._channels[message.channel_id]
                schema = self._schemas.get(channel.schema_id)
                yield channel.topic, schema.name if schema else "", message.log_time, message.data

    def _chunk_messages(self, index: ChunkIndex, wanted: set[int]) -> list[Message]:
        key = (self.path, index.chunk_start_offset)
        try:
            chunk = self._read_chunk(index)
            records = breakup_chunk(chunk, validate_crc=True)
        except Exception as exc:  # zstd, lz4, CRC and parse errors all mean one thing: damaged
            damaged = DamagedChunk(
                self.path,
                index.chunk_start_offset,
                index.chunk_length,
                index.message_start_time,
                index.message_end_time,
                _reason(exc),
                self._lost_messages(index),
            )
            self._log.damaged[key] = damaged
            if not self._log.skip_damaged:
                raise DamagedChunkError(damaged, self._log.start_ns) from exc
            return []
        (self._log.verified if chunk.uncompressed_crc else self._log.unverified).add(key)
        return [r for r in records if isinstance(r, Message) and r.channel_id in wanted]

    def _read_chunk(self, index: ChunkIndex) -> Chunk:
        """The chunk record at ``index``, read within its indexed length and checked against it."""
        self._stream.seek(index.chunk_start_offset)
        record = self._stream.read(index.chunk_length)
        if len(record) != index.chunk_length:
            raise ValueError("the file ends inside the chunk")
        opcode, length = struct.unpack_from("<BQ", record)
        if opcode != Opcode.CHUNK or length != index.chunk_length - RECORD_PREFIX_BYTES:
            raise ValueError("no chunk record at the indexed offset")
        chunk = Chunk.read(ReadDataStream(io.BytesIO(record[RECORD_PREFIX_BYTES:])))
        header = (chunk.compression, len(chunk.data), chunk.uncompressed_size)
        if header != (index.compression, index.compressed_size, index.uncompressed_size):
            raise ValueError("the chunk header disagrees with its index entry")
        return chunk

    def _lost_messages(self, index: ChunkIndex) -> dict[str, int] | None:
        """Messages per topic in a chunk, from its message index records; None if unreadable."""
        lost: dict[str, int] = {}
        for channel_id, offset in index.message_index_offsets.items():
            self._stream.seek(offset)
            head = self._stream.read(MESSAGE_INDEX_HEAD.size)
            if len(head) != MESSAGE_INDEX_HEAD.size:
                return None
            opcode, length, found_id, entries_bytes = MESSAGE_INDEX_HEAD.unpack(head)
            valid = (
                opcode == Opcode.MESSAGE_INDEX
                and found_id == channel_id
                and length == 6 + entries_bytes
                and entries_bytes % MESSAGE_INDEX_ENTRY_BYTES == 0
                and channel_id in self._channels
            )
            if not valid:
                return None
            topic = self._channels[channel_id].topic
            lost[topic] = lost.get(topic, 0) + entries_bytes // MESSAGE_INDEX_ENTRY_BYTES
        return lost


def _reason(exc: Exception) -> str:
    if isinstance(exc, CRCValidationError):
        return "CRC mismatch"
    name = type(exc).__name__
    return f"{name}: {exc}" if str(exc) else name
