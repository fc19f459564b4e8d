"""Convert the catalogued clips into the sound bank: 24 kHz mono FLAC by split and label.

Layout under ``<cache>/bank``::

    <split>/<label>/<recording>__<clip>.flac    split in train/val/test
    manifest.json                               clip -> split, label, recording, package, licence
    ATTRIBUTION                                 credits, as the licences require

so ``SoundBank.from_folder(bank / split, names)`` loads one split, including the ``none`` and
``background`` folders. Whole clips are stored (the scene generator crops at random), with
leading and trailing silence trimmed; clips shorter than MIN_DURATION_S are skipped.
A rebuild converts only clips whose FLAC is missing and removes files no longer catalogued.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from avi_ros.audio import SAMPLE_RATE, resample
from avi_ros.data.urbansound8k import load_audio_mono
from avi_ros.sounds.attribution import attribution_text
from avi_ros.sounds.catalogue import CatalogueRow
from avi_ros.sounds.splits import assign_splits

MIN_DURATION_S = 0.3
# Frames quieter than this relative to the loudest 10 ms frame count as silence [dB].
SILENCE_DB = -50.0
TRIM_FRAME_S = 0.01
MANIFEST = "manifest.json"
SKIPPED = "skipped.txt"  # one skipped clip per line, with the reason; absent when none was skipped
ATTRIBUTION = "ATTRIBUTION"


@dataclass
class BuildSummary:
    """What a build produced: clips and distinct recordings per (split, label), and what it skipped."""

    clips: Counter[tuple[str, str]] = field(default_factory=Counter)
    recordings: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    converted: int = 0
    skipped: list[str] = field(default_factory=list)

    def add(self, split: str, label: str, recording: str) -> None:
        self.clips[(split, label)] += 1
        self.recordings.setdefault((split, label), set()).add(recording)

    def skipped_line(self, bank: Path) -> str:
        """One line for the build's output: how many clips were skipped and where the list is
        (a per-clip line repeats on every build, since too-short clips are never cached)."""
        if not self.skipped:
            return ""
        return f"skipped {len(self.skipped)} clips (too short or unreadable); the list is in {bank / SKIPPED}"

    def table(self) -> str:
        """Per-label clips/recordings in each split, as aligned text."""
        labels = sorted({label for _, label in self.clips})
        lines = [f"{'label':<16}" + "".join(f"{s + ' clips/rec':>20}" for s in ("train", "val", "test"))]
        for label in labels:
            cells = [
                f"{self.clips[(s, label)]:>5} / {len(self.recordings.get((s, label), ())):<4}"
                for s in ("train", "val", "test")
            ]
            lines.append(f"{label:<16}" + "".join(f"{c:>20}" for c in cells))
        return "\n".join(lines)


def read_source(row: CatalogueRow, package_root: Path) -> np.ndarray:
    """The clip as float32 mono at SAMPLE_RATE; raises ValueError if it is missing or unreadable."""
    path = package_root / row.file_path
    if not path.is_file():
        raise ValueError(f"{row.package}: no file {row.file_path}")
    if row.member is None:
        return load_audio_mono(path, SAMPLE_RATE)
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(row.member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{row.package}: cannot read {row.path}: {exc}") from exc
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise ValueError(f"{row.package}: cannot decode {row.path}: {exc}") from exc
    return resample(audio.mean(axis=1)[None, :], int(rate), SAMPLE_RATE)[0].astype(np.float32)


def trim_silence(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` without the leading and trailing frames SILENCE_DB below its loudest frame."""
    frame = max(1, int(TRIM_FRAME_S * sample_rate))
    n_frames = audio.size // frame
    if n_frames == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    if rms.max() <= 0.0:
        return audio[:0]
    loud = np.flatnonzero(rms >= rms.max() * 10.0 ** (SILENCE_DB / 20.0))
    return audio[loud[0] * frame : min(audio.size, (loud[-1] + 1) * frame)]


def bank_file(row: CatalogueRow, split: str) -> Path:
    """Path of a clip relative to the bank root."""
    return Path(split) / row.label / f"{row.recording}__{row.clip_name}.flac"


def _convert(row: CatalogueRow, package_root: Path, target: Path) -> float | None:
    """Write the trimmed FLAC; its duration [s], or None when it is too short to keep."""
    audio = trim_silence(read_source(row, package_root))
    if audio.size < MIN_DURATION_S * SAMPLE_RATE:
        return None
    peak = float(np.abs(audio).max())
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.flac")
    sf.write(str(partial), audio / peak * 0.9 if peak > 1.0 else audio, SAMPLE_RATE, subtype="PCM_16")
    partial.replace(target)
    return audio.size / SAMPLE_RATE


def _old_durations(bank: Path) -> dict[str, float]:
    try:
        manifest = json.loads((bank / MANIFEST).read_text(encoding="utf-8"))
        return {clip["file"]: float(clip["duration_s"]) for clip in manifest["clips"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def build_bank(rows: Sequence[CatalogueRow], roots: Mapping[str, Path], bank: Path) -> BuildSummary:
    """Convert the rows whose package is in ``roots`` (package -> extracted root) into ``bank``.

    Splits are assigned over all ``rows`` (so they do not depend on which packages were fetched).
    Unreadable or too-short clips are skipped and listed in the summary and in the bank's
    ``SKIPPED`` file.
    """
    split_of = assign_splits(rows)
    old = _old_durations(bank)
    summary = BuildSummary()
    entries = []
    for row in rows:
        if row.package not in roots:
            continue
        split = split_of[row.recording]
        relative = bank_file(row, split)
        target = bank / relative
        duration = old.get(relative.as_posix()) if target.is_file() else None
        if duration is None:
            try:
                duration = _convert(row, roots[row.package], target)
            except ValueError as exc:
                summary.skipped.append(str(exc))
                continue
            if duration is None:
                summary.skipped.append(f"{row.package}: {row.path} is shorter than {MIN_DURATION_S} s")
                continue
            summary.converted += 1
        summary.add(split, row.label, row.recording)
        entries.append(
            {
                "file": relative.as_posix(),
                "split": split,
                "label": row.label,
                "recording": row.recording,
                "package": row.package,
                "path": row.path,
                "licence": row.licence,
                "credit": row.credit,
                "duration_s": round(duration, 3),
            }
        )
    bank.mkdir(parents=True, exist_ok=True)
    _remove_stale(bank, {entry["file"] for entry in entries})
    used = [row for row in rows if row.package in roots]
    manifest = {"sample_rate": SAMPLE_RATE, "clips": entries}
    (bank / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (bank / ATTRIBUTION).write_text(attribution_text(used), encoding="utf-8")
    if summary.skipped:
        (bank / SKIPPED).write_text("".join(f"{reason}\n" for reason in summary.skipped), encoding="utf-8")
    else:
        (bank / SKIPPED).unlink(missing_ok=True)
    return summary


def _remove_stale(bank: Path, keep: set[str]) -> None:
    """Delete FLAC files of the bank that the current catalogue no longer produces."""
    for path in bank.glob("*/*/*.flac"):
        if path.relative_to(bank).as_posix() not in keep:
            path.unlink()
