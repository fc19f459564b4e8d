"""Writing and reading rosbag2 files with the avi_ros type store.

Messages here are rosbags dataclasses (not rclpy messages); they have the same field names,
so the conversion helpers of the core work on both. Every failure to open or decode a bag
becomes a ``BagError`` whose message names the file and the problem.

mcap bags are written as rosbag2 writes them (zstd chunks with CRCs, ``avi_ros.bag.mcap_storage``)
and read chunk by chunk with every chunk verified; a damaged chunk raises ``DamagedBagError``
unless the read's ``IntegrityLog`` asks to skip (and record) it. sqlite3 bags carry no
checksums; rosbags reads them as they are.
"""

from __future__ import annotations

import heapq
from collections.abc import Container, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys.store import Typestore

from avi_ros.bag.mcap_storage import CheckedMcapStorage, DamagedChunkError, IntegrityLog, VerifiedMcapReader
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
    """Topic name -> message type of a bag."""
    with _ReaderContext(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def read_bag(
    path: Path | str, topics: Iterable[str] | None = None, integrity: IntegrityLog | None = None
) -> Iterator[BagMessage]:
    """Decoded messages in time order, optionally only from ``topics``.

    Types the store does not know (a robot's custom messages) are skipped unless asked for.
    ``integrity``: where the verification of mcap chunks is recorded, and whether a damaged
    chunk is skipped; without it, a damaged chunk raises ``DamagedBagError``.
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


def _read(
    path: Path | str,
    topics: Iterable[str] | None,
    known_types: Container[str] | None,
    integrity: IntegrityLog | None,
) -> Iterator[RawBagMessage]:
    """Raw messages of the selected topics; without ``topics``, only ``known_types`` (if given)."""
    wanted = set(topics) if topics is not None else None
    with _ReaderContext(path) as reader:
        connections = [
            c
            for c in reader.connections
            if (wanted is None or c.topic in wanted)
            and (wanted is not None or known_types is None or c.msgtype in known_types)
        ]
        if wanted is not None:
            missing = wanted - {c.topic for c in connections}
            if missing:
                present = sorted(c.topic for c in reader.connections)
                raise BagError(f"{path}: topics {sorted(missing)} not in the bag; it has {present}")
        try:
            with ExitStack() as stack:
                verified = _open_verified(Path(path), stack, integrity or IntegrityLog())
                if verified is not None:
                    selected = {c.topic for c in connections}
                    merged = heapq.merge(*(r.messages(selected) for r in verified), key=lambda m: m[2])
                    for topic, msgtype, stamp_ns, data in merged:
                        yield RawBagMessage(topic, msgtype, stamp_ns, data)
                    return
            for connection, stamp_ns, raw in reader.messages(connections=connections):
                yield RawBagMessage(connection.topic, connection.msgtype, stamp_ns, bytes(raw))
        except DamagedChunkError as exc:
            raise DamagedBagError(f"{path}: {exc}") from exc
        except BagError:
            raise
        except Exception as exc:  # rosbags and mcap raise several unrelated types for damaged files
            raise BagError(f"{path}: damaged or truncated bag ({type(exc).__name__}: {exc})") from exc


def _open_verified(path: Path, stack: ExitStack, integrity: IntegrityLog) -> list[VerifiedMcapReader] | None:
    """Verifying readers of the bag's mcap files (several for a split bag); None when the bag
    cannot be verified (sqlite3, file or message compression, mcap files without chunk index)."""
    if path.is_file():
        files = [path] if path.suffix == ".mcap" else []
    else:
        info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        plain = (info.get("compression_mode") or "none").lower() == "none"
        mcap = info.get("storage_identifier") == "mcap"
        files = [path / Path(name).name for name in info["relative_file_paths"]] if mcap and plain else []
    readers = [VerifiedMcapReader(file, stack.enter_context(file.open("rb")), integrity) for file in files]
    return readers if readers and all(r.usable for r in readers) else None


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
