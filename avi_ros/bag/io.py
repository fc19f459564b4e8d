"""Writing and reading rosbag2 files with the avi_ros type store.

Messages here are rosbags dataclasses (not rclpy messages); they have the same field names,
so the conversion helpers of the core work on both. Every failure to open or decode a bag
becomes a ``BagError`` whose message names the file and the problem.

mcap bags are written as rosbag2 writes them (zstd chunks with CRCs, ``avi_ros.bag.mcap_storage``)
and read chunk by chunk with every chunk verified; a damaged chunk, or a file cut short (read up
to its last complete chunk), raises ``DamagedBagError`` unless the read's ``IntegrityLog`` asks to
skip (and record) the damage. sqlite3 bags carry no checksums: their database is checked
(``avi_ros.bag.sqlite_check``) and reported the same way.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Container, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys.store import Typestore

from avi_ros.bag.mcap_storage import (
    CheckedMcapStorage,
    DamagedChunkError,
    DamagedFile,
    DamagedFileError,
    IntegrityLog,
    VerifiedMcapReader,
)
from avi_ros.bag.sqlite_check import check_sqlite_bag
from avi_ros.bag.typestore import avi_ros_typestore

STORAGE_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 9  # rosbag2 metadata version written by Jazzy and later.


class BagError(RuntimeError):
    """A bag that cannot be written, opened or decoded."""


class DamagedBagError(BagError):
    """A chunk of the bag failed verification (its CRC, its compression or its header)."""


class _Rosbag2Writer(Writer):
    """rosbags' writer with mcap files written as rosbag2 writes them (zstd chunks, CRCs)."""

    STORAGE_PLUGINS = MappingProxyType({**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: CheckedMcapStorage})


@dataclass(frozen=True)
class BagMessage:
    """One decoded message; ``stamp_ns`` is the bag's receive time [ns]."""

    topic: str
    msgtype: str
    stamp_ns: int
    message: Any


@dataclass(frozen=True)
class RawBagMessage:
    """One message as stored: CDR bytes (with encapsulation header), as rmw publishes them raw."""

    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes


class BagWriter:
    """Context manager that writes typed messages to a new rosbag2 directory.

    Topics are created on first use with the message type given, so callers never manage
    rosbags connections themselves.
    """

    def __init__(self, path: Path | str, storage: str = "mcap") -> None:
        if storage not in STORAGE_PLUGINS:
            raise BagError(f"unknown storage '{storage}'; expected one of {list(STORAGE_PLUGINS)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} already exists; rosbag2 writes a new directory")
        self._store = avi_ros_typestore()
        self._writer = _Rosbag2Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGE_PLUGINS[storage])
        self._connections: dict[str, Any] = {}

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._writer.close()

    def message_class(self, msgtype: str) -> type:
        """The rosbags dataclass for a type name such as ``avi_ros/msg/FoaAudio``."""
        return self._store.types[msgtype]

    def write(self, topic: str, stamp_ns: int, message: Any) -> None:
        """Serialise ``message`` (a rosbags dataclass) to ``topic`` at receive time ``stamp_ns``."""
        msgtype = message.__msgtype__
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self._store)
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise BagError(f"topic {topic} already carries {connection.msgtype}, not {msgtype}")
        self._writer.write(connection, int(stamp_ns), self._store.serialize_cdr(message, msgtype))


def bag_topics(path: Path | str) -> dict[str, str]:
    """Topic name -> message type of a bag (of an mcap bag cut short too: its complete chunks)."""
    with ExitStack() as stack:
        verified = _open_verified(Path(path), stack, IntegrityLog())
        if verified is not None:
            return _verified_topics(verified, _metadata(Path(path)))
        reader = stack.enter_context(_ReaderContext(path))
        return {c.topic: c.msgtype for c in reader.connections}


def read_bag(
    path: Path | str, topics: Iterable[str] | None = None, integrity: IntegrityLog | None = None
) -> Iterator[BagMessage]:
    """Decoded messages in time order, optionally only from ``topics``.

    Types the store does not know (a robot's custom messages) are skipped unless asked for.
    ``integrity``: where the verification of mcap chunks and bag files is recorded, and whether
    damage (a chunk, an mcap file cut short, a database failing its checks) is skipped; without
    it, damage raises ``DamagedBagError``.
    """
    store = avi_ros_typestore()
    for raw in _read(path, topics, known_types=store.types, integrity=integrity):
        message = _decode(path, store, raw)
        yield BagMessage(raw.topic, raw.msgtype, raw.stamp_ns, message)


def read_raw(
    path: Path | str, topics: Iterable[str] | None = None, integrity: IntegrityLog | None = None
) -> Iterator[RawBagMessage]:
    """Undecoded messages in time order, from every topic or only ``topics``.

    For republishing (``avi-ros play``): no type store is needed, so a robot's custom types
    pass through untouched. ``integrity`` as for ``read_bag``.
    """
    return _read(path, topics, known_types=None, integrity=integrity)


def _selected_topics(
    path: Path | str,
    available: dict[str, str],
    topics: Iterable[str] | None,
    known_types: Container[str] | None,
) -> set[str]:
    """The topics to read: ``topics`` (BagError naming what the bag has when one is missing), or
    without them every topic of a ``known_types`` type (every topic when that is None)."""
    if topics is None:
        return {t for t, msgtype in available.items() if known_types is None or msgtype in known_types}
    wanted = set(topics)
    missing = wanted - set(available)
    if missing:
        raise BagError(f"{path}: topics {sorted(missing)} not in the bag; it has {sorted(available)}")
    return wanted


def _read(
    path: Path | str,
    topics: Iterable[str] | None,
    known_types: Container[str] | None,
    integrity: IntegrityLog | None,
) -> Iterator[RawBagMessage]:
    """Raw messages of the selected topics; without ``topics``, only ``known_types`` (if given)."""
    integrity = integrity or IntegrityLog()
    try:
        with ExitStack() as stack:
            verified = _open_verified(Path(path), stack, integrity)
            if verified is not None:
                available = _verified_topics(verified, _metadata(Path(path)))
                selected = _selected_topics(path, available, topics, known_types)
                merged = heapq.merge(*(r.messages(selected) for r in verified), key=lambda m: m[2])
                for topic, msgtype, stamp_ns, data in merged:
                    yield RawBagMessage(topic, msgtype, stamp_ns, data)
                return
            databases = _sqlite_files(Path(path))
            _check_databases(Path(path), databases, integrity)
            reader = stack.enter_context(_ReaderContext(path))
            available = {c.topic: c.msgtype for c in reader.connections}
            selected = _selected_topics(path, available, topics, known_types)
            yield from _read_rosbags(reader, selected, databases, integrity)
    except (DamagedChunkError, DamagedFileError) as exc:
        raise DamagedBagError(f"{path}: {exc}") from exc
    except BagError:
        raise
    except Exception as exc:  # rosbags and mcap raise several unrelated types for damaged files
        raise BagError(f"{path}: damaged or truncated bag ({type(exc).__name__}: {exc})") from exc


def _check_databases(path: Path, databases: list[Path], integrity: IntegrityLog) -> None:
    """Check each database of a sqlite3 bag once per log (``check_sqlite_bag``) and record the
    damage found; ``DamagedFileError`` unless the log skips damage."""
    expected = _message_counts(_metadata(path)) if len(databases) == 1 else None
    for database in databases:
        if database not in integrity.checked_files:
            integrity.checked_files.add(database)
            for damaged in check_sqlite_bag(database, expected):
                integrity.record_file(damaged)


def _read_rosbags(
    reader: Reader, selected: set[str], databases: list[Path], integrity: IntegrityLog
) -> Iterator[RawBagMessage]:
    """Messages through rosbags' reader; a sqlite3 bag (``databases``), when skipping damage, is
    read up to the first row that cannot be read."""
    connections = [c for c in reader.connections if c.topic in selected]
    read = 0
    try:
        for connection, stamp_ns, raw in reader.messages(connections=connections):
            yield RawBagMessage(connection.topic, connection.msgtype, stamp_ns, bytes(raw))
            read += 1
    except sqlite3.DatabaseError as exc:
        if not (integrity.skip_damaged and databases):
            raise
        reason = f"a row cannot be read after {read} messages of the selected topics ({exc})"
        integrity.record_file(DamagedFile(databases[0], reason, databases[0].stat().st_size))


def _metadata(path: Path) -> dict[str, Any] | None:
    """The bag's ``rosbag2_bagfile_information`` (metadata.yaml), None for a bare file or when absent
    (a recorder killed before writing it)."""
    if path.is_file() or not (path / "metadata.yaml").is_file():
        return None
    return yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


def _sqlite_files(path: Path) -> list[Path]:
    """The database files of a sqlite3 bag; empty for any other storage."""
    if path.is_file():
        return [path] if path.suffix == ".db3" else []
    info = _metadata(path)
    if info is None or info.get("storage_identifier") != "sqlite3":
        return []
    return [path / Path(name).name for name in info["relative_file_paths"]]


def _message_counts(info: dict[str, Any] | None) -> dict[str, int] | None:
    """Messages per topic as metadata.yaml counts them; None without metadata."""
    if info is None:
        return None
    return {
        entry["topic_metadata"]["name"]: int(entry["message_count"])
        for entry in info.get("topics_with_message_count") or []
    }


def _open_verified(path: Path, stack: ExitStack, integrity: IntegrityLog) -> list[VerifiedMcapReader] | None:
    """Verifying readers of the bag's mcap files (several for a split bag); None when the bag
    cannot be verified (sqlite3, file or message compression, mcap files without chunks).

    A bag directory without metadata.yaml (a recorder killed before writing it) is read from its
    mcap files. When a file is cut short, the messages it lost are counted against metadata.yaml.
    """
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    info = _metadata(path)
    if path.is_file():
        files = [path] if path.suffix == ".mcap" else []
    elif info is None:
        files = sorted(path.glob("*.mcap"))
    else:
        plain = (info.get("compression_mode") or "none").lower() == "none"
        mcap = info.get("storage_identifier") == "mcap"
        files = [path / Path(name).name for name in info["relative_file_paths"]] if mcap and plain else []
    readers = [VerifiedMcapReader(file, stack.enter_context(file.open("rb")), integrity) for file in files]
    if not readers or not all(r.usable for r in readers):
        return None
    expected = _message_counts(info)
    cut = [r for r in readers if r.truncation is not None and not r.truncation.data_complete]
    if cut and expected is not None:
        found: dict[str, int] = {}
        for reader in readers:
            for topic, count in reader.message_counts.items():
                found[topic] = found.get(topic, 0) + count
        lost = {topic: count - found.get(topic, 0) for topic, count in expected.items()}
        # A split bag's metadata counts the whole bag: the loss is put on its first file cut short.
        cut[0].truncation = replace(cut[0].truncation, messages_lost={t: n for t, n in lost.items() if n > 0})
    return readers


def _verified_topics(readers: list[VerifiedMcapReader], info: dict[str, Any] | None) -> dict[str, str]:
    """Topic -> type of the files' channels and of metadata.yaml (which lists the topics of a file cut
    before their channels were written)."""
    listed = {
        entry["topic_metadata"]["name"]: entry["topic_metadata"]["type"]
        for entry in (info or {}).get("topics_with_message_count") or []
    }
    return listed | {topic: msgtype for reader in readers for topic, msgtype in reader.topics.items()}


def _decode(path: Path | str, store: Typestore, raw: RawBagMessage) -> Any:
    try:
        return store.deserialize_cdr(raw.data, raw.msgtype)
    except Exception as exc:
        raise BagError(
            f"{path}: cannot decode a {raw.msgtype} message on {raw.topic} ({type(exc).__name__}: {exc})"
        ) from exc


class _ReaderContext:
    """Opens a rosbags Reader and turns its failures into BagError."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._reader: Reader | None = None

    def __enter__(self) -> Reader:
        if not self.path.exists():
            raise BagError(f"{self.path}: no such bag")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as exc:
            raise BagError(f"{self.path}: cannot open as rosbag2 ({type(exc).__name__}: {exc})") from exc
        return self._reader

    def __exit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.close()
