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

A file cut short (a recorder killed before it wrote the summary and footer) has no chunk index.
Its records are then scanned from the start with mcap's ``StreamReader`` up to the last complete
record, and the index is rebuilt from the complete chunks found. Reading such a file is an error
(``DamagedFileError``) unless the ``IntegrityLog`` skips damage; then the complete chunks are read
and the cut is recorded with the bytes (and, given the bag's metadata, the messages) it lost.
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
from mcap.records import Channel, Chunk, ChunkIndex, DataEnd, Message, MessageIndex, Schema
from mcap.stream_reader import MAGIC_SIZE, CRCValidationError, StreamReader, breakup_chunk
from mcap.writer import MCAP0_MAGIC, CompressionType
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


@dataclass(frozen=True)
class DamagedFile:
    """A bag file that cannot be read whole: an mcap file cut short, or a database failing its checks.

    readable_bytes: where the last complete record ends [bytes]; None where bytes do not apply.
    file_bytes: the file's size [bytes].
    messages_lost: per topic, messages the bag's metadata counts that cannot be read; None when
        unknown (no metadata.yaml to count against, or a database that cannot be read).
    data_complete: every message is readable (only the index after the data is missing), so
        nothing is lost and reading it is no error.
    """

    file: Path
    reason: str
    file_bytes: int
    readable_bytes: int | None = None
    messages_lost: dict[str, int] | None = None
    data_complete: bool = False

    def describe(self) -> str:
        """One line: what is wrong, and what it cost in bytes and messages."""
        parts = [f"{self.file.name} ({self.reason})"]
        if self.readable_bytes is not None:
            lost_bytes = self.file_bytes - self.readable_bytes
            parts.append(
                f"readable to byte {self.readable_bytes} of {self.file_bytes}, {lost_bytes} bytes lost"
            )
        if self.data_complete:
            parts.append("no message lost")
        elif self.messages_lost is None:
            parts.append("messages lost: unknown")
        else:
            total = sum(self.messages_lost.values())
            per_topic = ", ".join(f"{topic} x{count}" for topic, count in sorted(self.messages_lost.items()))
            parts.append(f"messages lost: {total}" + (f" ({per_topic})" if per_topic else ""))
        return "; ".join(parts)


class DamagedFileError(Exception):
    """A damaged file (``DamagedFile``) and the read was not asked to skip damage."""

    def __init__(self, damaged: DamagedFile) -> None:
        super().__init__(f"damaged file: {damaged.describe()}")
        self.damaged = damaged


@dataclass
class IntegrityLog:
    """What verified reads of a bag found; shared by every read of one replay.

    skip_damaged: skip (and record) a damaged chunk or the lost part of a damaged file instead of
    raising ``DamagedChunkError`` / ``DamagedFileError``. A chunk or file is counted once however
    often it is read.
    """

    skip_damaged: bool = False
    verified: set[tuple[Path, int]] = field(default_factory=set)
    unverified: set[tuple[Path, int]] = field(default_factory=set)
    damaged: dict[tuple[Path, int], DamagedChunk] = field(default_factory=dict)
    damaged_files: dict[Path, DamagedFile] = field(default_factory=dict)
    checked_files: set[Path] = field(default_factory=set)  # database files already checked
    start_ns: int = 0  # the earliest chunk start seen [ns]; times are reported from here

    def record_file(self, damaged: DamagedFile) -> None:
        """Record a damaged file; ``DamagedFileError`` unless skipping or nothing was lost."""
        self.damaged_files[damaged.file] = damaged
        if not self.skip_damaged and not damaged.data_complete:
            raise DamagedFileError(damaged)

    def describe(self) -> str:
        """The summary line(s) a user reads: what was verified, what was skipped."""
        lines = []
        total = len(self.verified) + len(self.unverified) + len(self.damaged)
        if total:
            lines.append(f"chunks read: {total}, {len(self.verified)} verified by CRC")
        if self.unverified:
            lines[0] += f", {len(self.unverified)} without a CRC (not verifiable)"
        if self.damaged:
            lines[0] += f", {len(self.damaged)} damaged and skipped:"
            lines += [f"  {chunk.describe(self.start_ns)}" for chunk in self.damaged.values()]
        for damaged in self.damaged_files.values():
            read = "read in full" if damaged.data_complete else "read up to the damage"
            lines.append(f"damaged file, {read}: {damaged.describe()}")
        return "\n".join(lines)


class VerifiedMcapReader:
    """Messages of one mcap file, read chunk by chunk through its summary and verified.

    A file cut short (no footer, or a summary that does not parse) is scanned from the start
    instead: its complete chunks are indexed and ``truncation`` says what the cut lost.
    ``usable`` is False for a file without chunks (unchunked, not an mcap file at all); callers
    then read it another way.
    """

    def __init__(self, path: Path, stream: BinaryIO, log: IntegrityLog) -> None:
        self.path = path
        self._stream = stream
        self._log = log
        self._channels: dict[int, Channel] = {}
        self._schemas: dict[int, Schema] = {}
        self._indexes: list[ChunkIndex] = []
        self.message_counts: dict[str, int] = {}  # per topic, in the indexed chunks
        self.truncation: DamagedFile | None = None
        if not self._read_summary():
            self._scan()
        self._indexes.sort(key=lambda index: (index.message_start_time, index.chunk_start_offset))
        self.usable = bool(self._indexes) or self.truncation is not None
        if self._indexes:
            start = self._indexes[0].message_start_time
            log.start_ns = min(log.start_ns, start) if log.start_ns else start

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type of the file's channels."""
        return {
            channel.topic: schema.name if (schema := self._schemas.get(channel.schema_id)) else ""
            for channel in self._channels.values()
        }

    def _read_summary(self) -> bool:
        """Index the file from its summary; False when the file has no intact footer and summary."""
        if self._stream.seek(0, io.SEEK_END) < 2 * MAGIC_SIZE:
            return False
        self._stream.seek(-MAGIC_SIZE, io.SEEK_END)
        if self._stream.read(MAGIC_SIZE) != MCAP0_MAGIC:
            return False
        self._stream.seek(0)  # the reader checks the leading magic where the stream stands
        try:
            summary = SeekingReader(self._stream).get_summary()
        except Exception:  # mcap raises several unrelated types for a footer or summary it cannot parse
            return False
        if summary is not None:
            self._channels, self._schemas = dict(summary.channels), dict(summary.schemas)
            self._indexes = list(summary.chunk_indexes)
            counts = summary.statistics.channel_message_counts if summary.statistics else {}
            for channel_id, count in counts.items():
                if channel_id in self._channels:
                    topic = self._channels[channel_id].topic
                    self.message_counts[topic] = self.message_counts.get(topic, 0) + count
        return True

    def _scan(self) -> None:
        """Index the complete chunks of a file cut short, reading its records from the start."""
        size = self._stream.seek(0, io.SEEK_END)
        self._stream.seek(0)
        end = 0  # where the last complete record ends [bytes]
        pending: dict[int, int] = {}  # message index records after the last chunk: channel -> offset
        reason, data_complete = "cut short: no footer", False
        try:
            for record in StreamReader(self._stream, emit_chunks=True).records:
                position = self._stream.tell()
                if isinstance(record, MessageIndex) and self._indexes:
                    pending[record.channel_id] = end
                else:
                    if pending:  # the chunk's message indexes are complete: use them to select chunks
                        self._indexes[-1].message_index_offsets.update(pending)
                        pending = {}
                    if isinstance(record, Chunk):
                        self._indexes.append(self._scanned_chunk(record, end, position - end))
                    elif isinstance(record, Schema | Channel):
                        self._register(record)
                    elif isinstance(record, DataEnd):
                        reason, data_complete = "cut short after its data: no summary or footer", True
                        end = position
                        break
                end = position
        except Exception as exc:  # mcap raises several unrelated types where the records stop parsing
            if end == 0:
                return  # not an mcap file at all
            if not self._runs_past_the_end(end, size):
                reason = f"unreadable after its last complete record ({_reason(exc)})"
        self.truncation = DamagedFile(self.path, reason, size, end, data_complete=data_complete)

    def _runs_past_the_end(self, offset: int, size: int) -> bool:
        """Whether the record at ``offset`` is cut by the end of the file (rather than malformed)."""
        self._stream.seek(offset)
        prefix = self._stream.read(RECORD_PREFIX_BYTES)
        if len(prefix) < RECORD_PREFIX_BYTES:
            return True
        _, length = struct.unpack("<BQ", prefix)
        return offset + RECORD_PREFIX_BYTES + length > size

    def _scanned_chunk(self, chunk: Chunk, offset: int, length: int) -> ChunkIndex:
        """The index entry of a chunk found by the scan; its channels and message counts noted."""
        try:
            records = breakup_chunk(chunk, validate_crc=False)
        except Exception:  # a damaged chunk; reading it reports the damage
            records = []
        for record in records:
            if isinstance(record, Schema | Channel):
                self._register(record)
            elif isinstance(record, Message) and record.channel_id in self._channels:
                topic = self._channels[record.channel_id].topic
                self.message_counts[topic] = self.message_counts.get(topic, 0) + 1
        return ChunkIndex(
            message_start_time=chunk.message_start_time,
            message_end_time=chunk.message_end_time,
            chunk_start_offset=offset,
            chunk_length=length,
            message_index_offsets={},
            message_index_length=0,
            compression=chunk.compression,
            compressed_size=len(chunk.data),
            uncompressed_size=chunk.uncompressed_size,
        )

    def _register(self, record: Schema | Channel) -> None:
        if isinstance(record, Schema):
            self._schemas[record.id] = record
        else:
            self._channels[record.id] = record

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, message type, receive time [ns], CDR bytes) of ``topics``, in time order.

        A file cut short is first recorded in the log, which raises ``DamagedFileError`` unless
        the log skips damage or no message was lost.
        """
        if self.truncation is not None:
            self._log.record_file(self.truncation)
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
