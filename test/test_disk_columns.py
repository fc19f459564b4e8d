"""Prepared splits read from disk per batch: the same rows as in memory, in the asked order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from training.data import InputStore, in_chunks, write_split
from training.disk_columns import DiskColumns, write_chunk
from training.splits import prepared_path


def _columns(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "features": rng.normal(size=(n, 7, 5, 4)).astype(np.float32),
        "class_id": rng.integers(0, 10, size=n).astype(np.int64),
        "visible": rng.integers(0, 2, size=n).astype(np.bool_),
        "visual": rng.normal(size=(n, 5, 3, 3)).astype(np.float16),
    }


def test_chunked_split_reads_the_rows_asked_in_their_order(tmp_path):
    arrays = _columns(23)
    chunks = ({k: v[i : i + 5] for k, v in arrays.items()} for i in range(0, 23, 5))
    store = write_split(chunks, tmp_path / "prepared-x")
    assert isinstance(store.tensors, DiskColumns)
    assert len(store) == 23 and len(list((tmp_path / "prepared-x").glob("chunk_*"))) == 5
    indices = [22, 3, 4, 5, 6, 0, 4, 19, 10]  # unsorted, a repeat, runs across chunk borders
    batch = store.batch(indices)
    for key, value in arrays.items():
        assert batch[key].dtype == torch.from_numpy(value).dtype
        np.testing.assert_array_equal(batch[key].numpy(), value[indices])
        np.testing.assert_array_equal(store.tensors[key].numpy(), value)
    assert not (tmp_path / ".prepared-x.tmp").exists()


def test_a_single_safetensors_file_is_a_split_too(tmp_path):
    arrays = _columns(7)
    save_file(arrays, str(tmp_path / "prepared-old.safetensors"))
    path = prepared_path(tmp_path, "prepared-old")
    assert path.name == "prepared-old.safetensors"
    batch = InputStore.open(path).batch([6, 1])
    np.testing.assert_array_equal(batch["features"].numpy(), arrays["features"][[6, 1]])
    assert prepared_path(tmp_path, "prepared-new").name == "prepared-new"


def test_bad_splits_are_refused(tmp_path):
    arrays = _columns(4)
    write_chunk(tmp_path / "split", 0, arrays)
    write_chunk(tmp_path / "split", 1, {k: v for k, v in arrays.items() if k != "visual"})
    with pytest.raises(ValueError, match="keys"):
        DiskColumns(tmp_path / "split")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no chunk"):
        DiskColumns(tmp_path / "empty")
    write_chunk(tmp_path / "ok", 0, arrays)
    with pytest.raises(IndexError):
        DiskColumns(tmp_path / "ok").rows("class_id", [4])
    with pytest.raises(ValueError, match="no samples"):
        write_split(iter(()), tmp_path / "none")


def test_in_chunks_keeps_every_item_once():
    assert [len(c) for c in in_chunks(range(600), 256)] == [256, 256, 88]
    assert [x for c in in_chunks(range(10), 3) for x in c] == list(range(10))
