"""UrbanSound8K: metadata, the ten official folds, and fold-aware splits.

Layout: ``<root>/metadata/UrbanSound8K.csv`` (columns slice_file_name, fsID, start, end,
salience, fold, classID, class) and ``<root>/audio/fold1 .. fold10``. Slices cut from the
same Freesound recording (fsID) share a fold, so only whole-fold splits are free of leakage;
``fold_split`` checks that no recording crosses a split and refuses otherwise.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avi_ros.audio import SAMPLE_RATE, resample

METADATA_RELPATH = Path("metadata") / "UrbanSound8K.csv"
NUM_FOLDS = 10
URBANSOUND8K_CLASSES = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)
# UrbanSound8K classes that are hazards of the default taxonomy; the others have no counterpart.
TO_TAXONOMY = {
    "car_horn": "car_horn",
    "dog_bark": "dog_bark",
    "drilling": "power_tool",
    "jackhammer": "power_tool",
    "engine_idling": "vehicle_engine",
    "siren": "siren",
}
_COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")


@dataclass(frozen=True)
class UrbanSoundClip:
    """One slice: its file, fold (1..10), class, source recording id and times within it [s]."""

    path: Path
    fold: int
    class_id: int
    class_name: str
    fs_id: int
    start_s: float
    end_s: float
    salience: int


def is_urbansound8k_root(root: str | Path) -> bool:
    return (Path(root) / METADATA_RELPATH).is_file()


def read_urbansound8k_clips(root: str | Path, check_files: bool = True) -> list[UrbanSoundClip]:
    """All clips listed in the metadata CSV; raises ValueError naming a missing column or bad row."""
    root = Path(root)
    meta = root / METADATA_RELPATH
    if not meta.is_file():
        raise FileNotFoundError(f"UrbanSound8K metadata not found: {meta}")
    clips = []
    with meta.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{meta}: missing columns {missing}; expected {list(_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            try:
                fold = int(row["fold"])
                clip = UrbanSoundClip(
                    path=root / "audio" / f"fold{fold}" / row["slice_file_name"],
                    fold=fold,
                    class_id=int(row["classID"]),
                    class_name=row["class"],
                    fs_id=int(row["fsID"]),
                    start_s=float(row["start"]),
                    end_s=float(row["end"]),
                    salience=int(row["salience"]),
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{meta}:{line}: malformed row {row}: {exc}") from exc
            if not 1 <= fold <= NUM_FOLDS:
                raise ValueError(f"{meta}:{line}: fold {fold} outside 1..{NUM_FOLDS}")
            if check_files and not clip.path.is_file():
                raise FileNotFoundError(f"{meta}:{line}: audio file missing: {clip.path}")
            clips.append(clip)
    return clips


@dataclass
class FoldSplit:
    """Clips of the training, validation and test folds."""

    train: list[UrbanSoundClip]
    val: list[UrbanSoundClip]
    test: list[UrbanSoundClip]


def fold_split(
    clips: Sequence[UrbanSoundClip], test_folds: Sequence[int], val_folds: Sequence[int] = ()
) -> FoldSplit:
    """Split by whole folds: test_folds, val_folds, and every other fold for training.

    Raises ValueError if the fold lists overlap or if one Freesound recording (fsID) has
    slices in two splits, which would leak near-identical audio from training into testing.
    """
    test, val = set(test_folds), set(val_folds)
    for fold in test | val:
        if not 1 <= fold <= NUM_FOLDS:
            raise ValueError(f"fold {fold} outside 1..{NUM_FOLDS}")
    if test & val:
        raise ValueError(f"folds {sorted(test & val)} are both test and validation folds")
    split = FoldSplit(
        train=[c for c in clips if c.fold not in test | val],
        val=[c for c in clips if c.fold in val],
        test=[c for c in clips if c.fold in test],
    )
    owners: dict[int, str] = {}
    for name in ("train", "val", "test"):
        for clip in getattr(split, name):
            other = owners.setdefault(clip.fs_id, name)
            if other != name:
                raise ValueError(f"leak: recording fsID {clip.fs_id} has slices in both {other} and {name}")
    return split


def cross_validation_splits(clips: Sequence[UrbanSoundClip], with_val: bool = True) -> Iterator[FoldSplit]:
    """The official 10-fold protocol: fold k tests, fold k+1 (mod 10) validates if ``with_val``."""
    for k in range(1, NUM_FOLDS + 1):
        yield fold_split(clips, [k], [k % NUM_FOLDS + 1] if with_val else [])


def load_audio_mono(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any soundfile-readable file -> float32 mono [samples] at ``sample_rate`` Hz (channels averaged)."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise ValueError(f"cannot read audio file {path}: {exc}") from exc
    mono = data.mean(axis=1)[None, :]
    return resample(mono, int(rate), sample_rate)[0].astype(np.float32)


def load_clip(clip: UrbanSoundClip, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A clip's audio, float32 mono at ``sample_rate`` Hz."""
    return load_audio_mono(clip.path, sample_rate)
