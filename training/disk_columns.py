"""A prepared split read from disk row by row, so training holds a batch in memory, not the split.

A prepared split is one safetensors file, or a directory of chunk files (``chunk_00000.safetensors``,
... each with the same keys and a slice of the samples) written by ``write_chunk``. Every tensor in
the format is one contiguous C-order block, so row ``i`` of a column is ``row_bytes`` at a known
offset: ``DiskColumns.rows`` reads exactly those bytes with ``os.pread`` (consecutive rows in one
read). Nothing is memory-mapped: mapped pages would count in the process's resident memory as an
epoch touches them, which is what streaming is meant to avoid; the kernel's page cache still
keeps a split that fits in RAM fast to read again.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

CHUNK_PATTERN = "chunk_*.safetensors"
# safetensors dtype names -> numpy dtypes (the ones prepared splits hold, and the other common ones).
_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


@dataclass(frozen=True)
class _Block:
    """One tensor of one file: where its bytes start, its dtype and its shape."""

    start: int  # byte offset of row 0 in the file
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


def _read_header(path: Path) -> dict[str, _Block]:
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    blocks = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if entry["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor '{key}' has dtype {entry['dtype']}, which a split cannot hold")
        blocks[key] = _Block(
            8 + length + entry["data_offsets"][0], np.dtype(_DTYPES[entry["dtype"]]), tuple(entry["shape"])
        )
    return blocks


def chunk_paths(path: Path) -> list[Path]:
    """The files of a prepared split: ``path`` itself, or the chunk files of the directory ``path``."""
    if path.is_dir():
        chunks = sorted(path.glob(CHUNK_PATTERN))
        if not chunks:
            raise FileNotFoundError(f"{path}: no {CHUNK_PATTERN} files; prepare the split again")
        return chunks
    return [path]


def write_chunk(directory: Path, index: int, arrays: Mapping[str, np.ndarray]) -> None:
    """Write one chunk of a split (every array with the same leading sample axis), atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"chunk_{index:05d}.safetensors"
    tmp = target.with_name(f".{target.name}.tmp")
    save_file({key: np.ascontiguousarray(value) for key, value in arrays.items()}, str(tmp))
    tmp.replace(target)


class DiskColumns(Mapping[str, torch.Tensor]):
    """The columns of a prepared split on disk (see the module docstring).

    As a mapping, ``columns[key]`` reads a whole column (for labels and small splits);
    ``rows(key, indices)`` reads only the given samples, in the given order.
    """

    def __init__(self, path: Path) -> None:
        self.paths = chunk_paths(path)
        self._blocks = [_read_header(p) for p in self.paths]
        keys = set(self._blocks[0])
        for chunk_path, blocks in zip(self.paths, self._blocks, strict=True):
            if set(blocks) != keys:
                raise ValueError(
                    f"{chunk_path}: keys {sorted(blocks)} differ from {sorted(keys)} of {self.paths[0]}"
                )
            if len({b.shape[0] for b in blocks.values()}) != 1:
                raise ValueError(f"{chunk_path}: tensors of different lengths")
        self._keys = sorted(keys)
        sizes = [next(iter(blocks.values())).shape[0] for blocks in self._blocks]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # first row of each chunk

    @property
    def num_rows(self) -> int:
        return int(self._starts[-1])

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.rows(key, range(self.num_rows))

    def rows(self, key: str, indices: Sequence[int]) -> torch.Tensor:
        """Rows ``indices`` of column ``key`` as a tensor [len(indices), ...], read from disk."""
        if key not in self._blocks[0]:
            raise KeyError(key)
        wanted = np.asarray(indices, dtype=np.int64)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= self.num_rows):
            raise IndexError(f"row index out of range for a split of {self.num_rows} samples")
        order = np.unique(wanted)  # sorted, so neighbouring rows are read at once
        first = self._blocks[0][key]
        out = np.empty((len(order), *first.shape[1:]), dtype=first.dtype)
        chunk_of = np.searchsorted(self._starts, order, side="right") - 1
        position = 0
        for chunk in np.unique(chunk_of):
            block = self._blocks[chunk][key]
            local = order[chunk_of == chunk] - self._starts[chunk]
            with self.paths[chunk].open("rb") as file:
                for run in np.split(local, np.flatnonzero(np.diff(local) != 1) + 1):
                    data = os.pread(
                        file.fileno(), block.row_bytes * len(run), block.start + block.row_bytes * int(run[0])
                    )
                    out[position : position + len(run)] = np.frombuffer(data, dtype=block.dtype).reshape(
                        len(run), *block.shape[1:]
                    )
                    position += len(run)
        return torch.from_numpy(out[np.searchsorted(order, wanted)])
