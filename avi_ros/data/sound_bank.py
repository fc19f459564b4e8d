"""Real recordings by class, used instead of the procedural signals when the user has some.

Two sources are understood:
- a folder with one subfolder per taxonomy class (``<root>/siren/*.wav``, ...);
- an UrbanSound8K tree, whose classes are mapped onto the taxonomy by
  ``urbansound8k.TO_TAXONOMY`` (only the given folds are used, to keep test folds unseen).
Classes without recordings fall back to their procedural model in the scene generator.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.urbansound8k import (
    TO_TAXONOMY,
    is_urbansound8k_root,
    load_audio_mono,
    read_urbansound8k_clips,
)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def bank_digest(folder: Path) -> str:
    """Short hash (8 hex digits) of the recordings under a bank folder (relative path and size):
    caches of scenes rendered from them key on it, so a rebuilt bank never reuses old scenes."""
    entries = sorted(
        f"{p.relative_to(folder).as_posix()}:{p.stat().st_size}"
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS
    )
    return hashlib.sha1("\n".join(entries).encode()).hexdigest()[:8]


class SoundBank:
    """Clip paths per taxonomy class, with a bounded cache of decoded audio."""

    def __init__(
        self, clips: dict[str, list[Path]], sample_rate: int = SAMPLE_RATE, max_cached_clips: int = 256
    ) -> None:
        self.clips = {name: sorted(paths) for name, paths in clips.items() if paths}
        self.sample_rate = sample_rate
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._max_cached = max_cached_clips

    @classmethod
    def from_folder(cls, root: str | Path, class_names: Iterable[str]) -> SoundBank:
        """Subfolders named like taxonomy classes; other subfolders are ignored."""
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"sound folder not found: {root}")
        clips = {}
        for name in class_names:
            folder = root / name
            if folder.is_dir():
                clips[name] = [p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS]
        bank = cls(clips)
        if not bank.clips:
            raise ValueError(
                f"{root} has no audio in subfolders named after the classes {sorted(class_names)} "
                f"(extensions {AUDIO_EXTENSIONS})"
            )
        return bank

    @classmethod
    def from_urbansound8k(cls, root: str | Path, folds: Sequence[int] | None = None) -> SoundBank:
        """UrbanSound8K clips of the mapped classes, restricted to ``folds`` (default: all)."""
        clips: dict[str, list[Path]] = {}
        for clip in read_urbansound8k_clips(root):
            target = TO_TAXONOMY.get(clip.class_name)
            if target is not None and (folds is None or clip.fold in folds):
                clips.setdefault(target, []).append(clip.path)
        bank = cls(clips)
        if not bank.clips:
            raise ValueError(
                f"{root}: no UrbanSound8K clips of the classes {sorted(TO_TAXONOMY)} in folds {folds}"
            )
        return bank

    @classmethod
    def from_path(
        cls, root: str | Path, class_names: Iterable[str], folds: Sequence[int] | None = None
    ) -> SoundBank:
        """An UrbanSound8K tree if ``root`` has its metadata, otherwise a class-named folder."""
        if is_urbansound8k_root(root):
            return cls.from_urbansound8k(root, folds)
        return cls.from_folder(root, class_names)

    def has(self, class_name: str) -> bool:
        return class_name in self.clips

    def _load(self, path: Path) -> np.ndarray:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        audio = load_audio_mono(path, self.sample_rate)
        self._cache[path] = audio
        if len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return audio

    def draw(self, class_name: str, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        """A random clip of the class, cropped (or zero-padded at a random offset) to ``n_samples``;
        float32, peak 1. Raises KeyError if the bank has no clip of that class.

        A crop of a long recording always holds part of the sound itself (``active_crop_start``):
        a crop of a pause, normalised to peak 1, would be silence or room tone labelled as the
        class, which teaches the model to report hazards it cannot hear."""
        if class_name not in self.clips:
            raise KeyError(f"sound bank has no clips of class '{class_name}'; it has {sorted(self.clips)}")
        paths = self.clips[class_name]
        audio = self._load(paths[int(rng.integers(len(paths)))])
        if audio.size >= n_samples:
            start = active_crop_start(audio, rng, n_samples, self.sample_rate)
            out = audio[start : start + n_samples].astype(np.float32)
        else:
            out = np.zeros(n_samples, dtype=np.float32)
            start = int(rng.integers(n_samples - audio.size + 1))
            out[start : start + audio.size] = audio
        peak = float(np.abs(out).max())
        return out / peak if peak > 0 else out


ACTIVE_FRAME_S = 0.1  # envelope resolution of the crop choice [s]
ACTIVE_RANGE_DB = 30.0  # a frame "sounds" when within this of the clip's loudest frame [dB]


def active_crop_start(audio: np.ndarray, rng: np.random.Generator, n_samples: int, sample_rate: int) -> int:
    """Start [samples] of a random ``n_samples`` crop of ``audio`` that contains at least one frame
    within ``ACTIVE_RANGE_DB`` of the clip's loudest ``ACTIVE_FRAME_S`` frame."""
    hop = max(1, round(ACTIVE_FRAME_S * sample_rate))
    frames = audio.size // hop
    if frames == 0 or audio.size == n_samples:
        return int(rng.integers(audio.size - n_samples + 1))
    rms = np.sqrt(np.mean(audio[: frames * hop].astype(np.float64).reshape(frames, hop) ** 2, axis=1))
    active = np.flatnonzero(rms >= rms.max() * 10.0 ** (-ACTIVE_RANGE_DB / 20.0))
    frame = int(active[rng.integers(active.size)]) if rms.max() > 0 else 0
    lo = max(0, (frame + 1) * hop - n_samples)
    hi = min(frame * hop, audio.size - n_samples)
    return int(rng.integers(lo, max(lo, hi) + 1))
