"""Scenes rendered from one split of the real sound bank, for out-of-domain calibration and evaluation.

The bank (``python -m avi_ros.sounds build``) holds ``BANK/<split>/<label>/*.flac``, split by
source recording, with a ``BANK/manifest.json`` naming each clip's split, label and recording.
Pointing the scene generator's ``SceneConfig.sound_dir`` at ``BANK/val`` or ``BANK/test`` gives
scenes whose sounds are recordings the model never trained on, rendered through the run's own
camera and occluders. Every hazard of a class the split has is a real clip and every background
is the split's real ambience where it has some (``real_sound_probability`` and
``real_background_probability`` set to 1). ``background_only`` scenes (class ``none``, no
non-hazard sound either) measure false alarms. Two acoustic conditions are defined:

- ``default``: the run's rooms (like the generator's defaults, unless the run trained wide);
- ``reverberant_noisy``: the wide domain-randomisation profile (``avi_ros.data.domain``) with its
  RT60 drawn in [1.5, 4] s and its SNR in [-10, 5) dB; samples whose recorded ``rt60_s`` is not
  above 1.5 s (a room too small to reach it) or whose SNR is not below 5 dB are dropped.

Hazard scenes of a class the split holds no recording of are left out of every condition: the
generator renders them with procedural sounds, which say nothing about real recordings.

Shards go to ``<cache_dir>/<split directory>-<bank digest>``: the digest covers the bank
folder's file list and sizes, so a rebuilt bank never reuses scenes rendered from the old one.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from avi_ros.data.domain import WideProfile
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.scene_labels import SceneContent
from avi_ros.data.shards import INDEX_NAME
from avi_ros.data.sound_bank import AUDIO_EXTENSIONS, SoundBank, bank_digest
from avi_ros.sounds.build import MANIFEST
from avi_ros.taxonomy import Taxonomy
from training.config import ExperimentConfig, SplitConfig, resolve_bank_split
from training.data import InputStore, PrepareConfig
from training.splits import ensure_scenes, prepared_split, split_directory
from training.typed_config import ConfigError

CONDITIONS = ("default", "reverberant_noisy")
RT60_MIN_S = 1.5  # "reverberant": RT60 above this [s]
SNR_MAX_DB = 5.0  # "noisy": hazard-to-background ratio below this [dB]
REVERBERANT_RT60_S = (RT60_MIN_S, 4.0)  # RT60 range [s] of the wide profile's rooms
REVERBERANT_SNR_DB = (-10.0, SNR_MAX_DB)  # SNR range [dB] of the reverberant, noisy scenes


def check_held_out_seed(config: ExperimentConfig | None, seed: int, seed_option: str = "--seed") -> None:
    """A ConfigError naming ``seed_option`` when ``seed`` is the config's training or validation seed."""
    if config is not None and seed in (config.data.train.seed, config.data.val.seed):
        raise ConfigError(
            f"{seed_option} {seed}: expected a seed other than the training and validation seeds"
        )


def held_out_scenes(
    config: ExperimentConfig, scenes: int, seed: int, seed_option: str = "--seed"
) -> tuple[Path, str]:
    """The run's own scenes (its rooms, mixes and probabilities) with every recorded sound drawn
    from the bank's **test** split, generated once under the run's cache: the held-out split of
    the study, ``training/evaluate.py --scenes`` and the shipped model's card. Returns the shard
    directory and a note on its sounds (procedural when the bank has no test split); a training or
    validation ``seed`` is refused, naming the command-line ``seed_option`` that gave it."""
    check_held_out_seed(config, seed, seed_option)
    scene = config.data.scene_config()
    bank_test = resolve_bank_split(config.data.sound_bank, "test")
    if bank_test is not None:
        scene = replace(scene, sound_dir=str(bank_test))
        note = f"real test recordings of {bank_test}"
    else:
        note = "procedural sounds (no sound bank)"
    split = SplitConfig(scenes, seed)
    directory = split_directory(config.data.cache_dir, split, scene)
    ensure_scenes(directory, split, scene, config.data.generation_workers, progress=True)
    return directory, note


def condition_scene(
    base: SceneConfig, sound_dir: str | Path, condition: str, background_only: bool = False
) -> SceneConfig:
    """``base`` drawing every sound it can from ``sound_dir``, in the rooms of ``condition`` (see
    module doc); with ``background_only`` every scene is of class ``none`` with background only."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition: expected one of {CONDITIONS}, got '{condition}'")
    scene = replace(
        base,
        sound_dir=str(Path(sound_dir).resolve()),
        sound_folds=None,
        real_sound_probability=1.0,
        real_background_probability=1.0,
    )
    if background_only:
        scene = replace(scene, none_probability=1.0, none_sound_probability=0.0)
    if condition == "reverberant_noisy":
        wide = base.wide if base.wide is not None else WideProfile()
        wide = replace(wide, rt60_range_s=REVERBERANT_RT60_S, snr_db_range=REVERBERANT_SNR_DB)
        return replace(scene, wide=wide, wide_probability=1.0)
    return replace(scene, wide=None)  # the default rooms, whatever profile the model trained on


def check_bank_split(sound_dir: str | Path) -> Path:
    """``sound_dir`` as a Path, or a ValueError saying why it is not a bank split folder."""
    sound_dir = Path(sound_dir)
    if not sound_dir.is_dir():
        raise FileNotFoundError(
            f"sound folder {sound_dir} does not exist (build the bank with: make sounds, then use BANK/val "
            "or BANK/test)"
        )
    if not any(p.suffix.lower() in AUDIO_EXTENSIONS for p in sound_dir.glob("*/*")):
        raise ValueError(f"{sound_dir} has no audio in <label>/ subfolders; expected a bank split folder")
    return sound_dir


def real_scene_directory(
    sound_dir: str | Path,
    condition: str,
    split: SplitConfig,
    base: SceneConfig,
    cache_dir: str | Path,
    workers: int = 1,
    progress: bool = False,
    background_only: bool = False,
) -> Path:
    """Generate (or reuse) ``split.scenes`` scenes of ``condition`` from ``sound_dir``; their directory."""
    sound_dir = check_bank_split(sound_dir)
    scene = condition_scene(base, sound_dir, condition, background_only)
    directory = split_directory(cache_dir, split, scene)
    directory = directory.with_name(f"{directory.name}-{bank_digest(sound_dir)}")
    return ensure_scenes(directory, split, scene, workers, progress)


def shard_column(directory: Path, name: str) -> np.ndarray | None:
    """One per-sample label column of a shard directory (e.g. ``snr_db``), or None if not stored."""
    index = json.loads((directory / INDEX_NAME).read_text(encoding="utf-8"))
    parts = [directory / shard["dir"] / f"{name}.npy" for shard in index["shards"]]
    if not all(part.is_file() for part in parts):
        return None
    return np.concatenate([np.load(part) for part in parts])


def recorded_class_ids(
    sound_dir: str | Path, names: list[str], folds: tuple[int, ...] | None = None
) -> set[int]:
    """Class ids (0 included) whose sounds ``sound_dir`` actually holds: a bank split, class
    folders or an UrbanSound8K tree (restricted to ``folds``), as the scene generator reads it.

    The generator falls back to procedural sounds for a class without recordings; those scenes
    would not measure anything about real recordings.
    """
    bank = SoundBank.from_path(sound_dir, names, folds)
    return {0} | {class_id for class_id, name in enumerate(names) if bank.has(name)}


def condition_mask(directory: Path, condition: str) -> np.ndarray:
    """bool [N]: the samples of a shard directory that meet ``condition``.

    Every condition drops hazard samples of classes the bank split has no recording of
    (``recorded_class_ids``). Hazard samples of ``reverberant_noisy`` need an SNR below
    SNR_MAX_DB, and every sample a recorded RT60 above RT60_MIN_S where the shards record one.
    """
    index = json.loads((directory / INDEX_NAME).read_text(encoding="utf-8"))
    scene = index["config"]
    folds = tuple(scene["sound_folds"]) if scene.get("sound_folds") else None
    recorded = recorded_class_ids(scene["sound_dir"], Taxonomy.from_dict(index["taxonomy"]).names, folds)
    class_id = shard_column(directory, "class_id")
    keep = np.isin(class_id, sorted(recorded))
    if condition == "default":
        return keep
    snr = shard_column(directory, "snr_db")
    if snr is not None:
        with np.errstate(invalid="ignore"):
            keep &= (class_id == 0) | (snr < SNR_MAX_DB)
    rt60 = shard_column(directory, "rt60_s")
    if rt60 is not None:
        keep &= rt60 > RT60_MIN_S
    return keep


def real_store(
    directory: Path, condition: str, prepare: PrepareConfig, device: torch.device, progress: bool = False
) -> InputStore:
    """The prepared inputs of the samples of ``directory`` that meet ``condition``."""
    store = content_store(directory, condition, prepare, device, progress)
    if store is None:
        raise ValueError(f"{directory}: no sample meets the '{condition}' condition")
    return store


def content_store(
    directory: Path,
    condition: str,
    prepare: PrepareConfig,
    device: torch.device,
    progress: bool = False,
    content: SceneContent | None = None,
) -> InputStore | None:
    """Like ``real_store``, restricted to scenes holding ``content`` when given; None when no sample
    qualifies or the shards do not record the content."""
    store = prepared_split(directory, prepare, device, progress)
    mask = condition_mask(directory, condition)
    if content is not None:
        recorded = shard_column(directory, "content")
        if recorded is None:
            return None
        mask &= recorded == int(content)
    if not mask.any():
        return None
    if mask.all():
        return store
    return InputStore(store.batch(np.flatnonzero(mask).tolist()))


def bank_counts(sound_dir: str | Path) -> tuple[dict[str, int], str]:
    """({label: count}, unit) for one split folder of the bank.

    Counts distinct source recordings from ``manifest.json`` beside the split folder when there is
    one (unit ``"recordings"``), else audio files per label folder (unit ``"clips"``).
    """
    sound_dir = check_bank_split(sound_dir)
    manifest = sound_dir.parent / MANIFEST
    if manifest.is_file():
        try:
            clips = json.loads(manifest.read_text(encoding="utf-8"))["clips"]
            recordings = {(c["label"], c["recording"]) for c in clips if c["split"] == sound_dir.name}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{manifest}: not a sound-bank manifest: {exc}") from exc
        return dict(Counter(label for label, _ in recordings)), "recordings"
    counts = {
        folder.name: sum(1 for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        for folder in sorted(sound_dir.iterdir())
        if folder.is_dir()
    }
    return counts, "clips"
