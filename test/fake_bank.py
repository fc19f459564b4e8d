"""A tiny sound bank in the layout of ``avi_ros.sounds.build`` (``BANK/<split>/<label>/*.flac`` and
``BANK/manifest.json``), and a tiny scene config, for the calibration and evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from avi_ros.audio import SAMPLE_RATE

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "tiny.yaml"
# label -> (recordings, clips per recording) in each split.
LAYOUT = {"siren": (2, 2), "dog_bark": (1, 3), "vehicle_engine": (1, 1), "none": (1, 1), "background": (1, 1)}


def _clip(rng: np.random.Generator, label: str, seconds: float = 1.2) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    if label in ("siren", "vehicle_engine"):
        pitch = 600.0 if label == "siren" else 90.0
        return (0.3 * np.sin(2 * np.pi * pitch * (1 + 0.2 * np.sin(2 * np.pi * 2 * t)) * t)).astype(
            np.float32
        )
    return (0.1 * rng.standard_normal(t.size) * np.exp(-3 * (t % 0.4))).astype(np.float32)


def make_bank(root: Path, splits: tuple[str, ...] = ("val", "test"), manifest: bool = True) -> Path:
    """Write the bank under ``root``; returns ``root``."""
    rng = np.random.default_rng(0)
    clips = []
    for split in splits:
        for label, (recordings, per_recording) in LAYOUT.items():
            for r in range(recordings):
                for c in range(per_recording):
                    relative = Path(split) / label / f"{split}{label}{r}__clip{c}.flac"
                    (root / relative).parent.mkdir(parents=True, exist_ok=True)
                    sf.write(str(root / relative), _clip(rng, label), SAMPLE_RATE)
                    clips.append(
                        {
                            "file": relative.as_posix(),
                            "split": split,
                            "label": label,
                            "recording": f"{split}{label}{r}",
                        }
                    )
    if manifest:
        (root / "manifest.json").write_text(json.dumps({"sample_rate": SAMPLE_RATE, "clips": clips}))
    return root


def tiny_scene_config(path: Path, none_probability: float = 0.5, **scene: object) -> Path:
    """tiny.yaml with more background-only scenes (so a none-biased model is both right and wrong)."""
    data = yaml.safe_load(TINY.read_text())
    data["data"]["scene"] = {**data["data"]["scene"], "none_probability": none_probability, **scene}
    path.write_text(yaml.safe_dump(data))
    return path
