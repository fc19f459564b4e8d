"""Real recordings by class, used instead of the procedural signals when the user has some.

Two sources are understood:
- a folder with one subfolder per taxonomy class (``<root>/siren/*.wav``, ...);
- an UrbanSound8K tree, whose classes are mapped onto the taxonomy by
  ``urbansound8k.TO_TAXONOMY`` (only the given folds are used, to keep test folds unseen).
Classes without recordings fall back to their procedural model in the scene generator.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.urbansound8k import TO_TAXONOMY, is_urbansound8k_root, load_audio_mono, read_metadata

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


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
        for clip in read_metadata(root):
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
        """A random clip of the class, randomly cropped (or zero-padded at a random offset) to
        ``n_samples``; float32, peak 1. Raises KeyError if the bank has no clip of that class."""
        if class_name not in self.clips:
            raise KeyError(f"sound bank has no clips of class '{class_name}'; it has {sorted(self.clips)}")
        paths = self.clips[class_name]
        audio = self._load(paths[int(rng.integers(len(paths)))])
        if audio.size >= n_samples:
            start = int(rng.integers(audio.size - n_samples + 1))
            out = audio[start : start + n_samples].astype(np.float32)
        else:
            out = np.zeros(n_samples, dtype=np.float32)
            start = int(rng.integers(n_samples - audio.size + 1))
            out[start : start + audio.size] = audio
        peak = float(np.abs(out).max())
        return out / peak if peak > 0 else out
