"""Train / validation / test splits by source recording, never by crop.

A number on the test split must mean "recordings the model never heard", so:
- every recording of a held-out package goes to test (whole packages unseen in training);
- the other recordings are split per label, ranked by a hash of their id, so that thin classes
  (two sirens) still put one recording in test while plentiful ones get about TEST_SHARE.
The assignment is a deterministic function of the catalogue; no recording is in two splits.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from avi_ros.sounds.catalogue import CatalogueRow

SPLITS = ("train", "val", "test")
# Whole packages only in test: Hedgewars has speech (15 voice packs), footsteps, power tools
# and many non-hazard sounds, none of which the training split then hears.
HELD_OUT_PACKAGES = frozenset({"hedgewars-data"})
TEST_SHARE = 0.2  # of the other recordings of each label
VAL_SHARE = 0.15


def _rank_key(recording: str) -> str:
    return hashlib.sha1(recording.encode("utf-8")).hexdigest()


def _counts(n: int) -> tuple[int, int]:
    """(test, val) recordings out of ``n`` of one label: test from 2 up, val from 4 up."""
    n_test = max(1, round(TEST_SHARE * n)) if n >= 2 else 0
    n_val = max(1, round(VAL_SHARE * n)) if n >= 4 else 0
    return n_test, n_val


def assign_splits(
    rows: Sequence[CatalogueRow], held_out: frozenset[str] = HELD_OUT_PACKAGES
) -> dict[str, str]:
    """Recording id -> split for every recording of ``rows``."""
    split: dict[str, str] = {}
    by_label: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.package in held_out:
            split[row.recording] = "test"
        else:
            by_label[row.label].add(row.recording)
    for recordings in by_label.values():
        ranked = sorted(recordings, key=_rank_key)
        n_test, n_val = _counts(len(ranked))
        for index, recording in enumerate(ranked):
            split[recording] = "test" if index < n_test else "val" if index < n_test + n_val else "train"
    return split
