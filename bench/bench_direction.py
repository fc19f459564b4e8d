"""Direction benchmark: physics (FOA intensity vector) against a model, by sector and condition.

    python bench/bench_direction.py [--quick] [--checkpoint DIR] [--sounds DIR] \
        [--out docs/results/direction] [--name direction]

Every scene is one window (the model's length, 1 s without a model) of one class's sound from a
known direction: 36 azimuths (every 10 deg) and elevations up to +-30 deg, every hazard class of
the default taxonomy (procedural sounds from ``avi_ros.data.signals``; with ``--sounds`` a real
bank as ``avi_ros.data.sound_bank`` reads it, procedural where it has no clip of a class), in two
conditions:
- **free field**: a plane wave (``avi_ros.audio.foa_encoding_gains``) in diffuse noise;
- **room**: the package's own room renderer (``avi_ros.data.acoustics.foa_rir``: image sources
  of a shoebox room plus a diffuse late tail) with uniform wall absorption set by Sabine's formula
  for an RT60 drawn log-uniformly in 0.2..3 s, source 1..4 m away, in diffuse noise.
The noise (``diffuse_noise``, pink) stands at an SNR drawn uniformly in -5..20 dB
(``scale_to_snr``: against the sound's W channel while it sounds).

Estimators: ``physics`` is ``avi_ros.doa.tf_direction`` on the window; ``model`` (with
``--checkpoint``) runs the window through ``Pipeline.run_batch`` with a camera that sees nothing,
exactly as ``avi-ros predict`` does, and takes the most confident hazard (``PipelineResult.top``).

Reported: the median absolute azimuth error [deg] by sector of the true azimuth (front |az| <= 45,
left 45..135, right -135..-45, behind |az| >= 135), over all, and the median great-circle error
[deg], for each condition, RT60 band and SNR band. Writes ``<out>/<name>.json`` and
``<out>/<name>.md`` and prints the JSON. ``--quick`` (one elevation and one class per azimuth,
cycling; two draws per condition) runs in under a minute on a laptop core.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avi_ros.audio import SAMPLE_RATE, foa_encoding_gains
from avi_ros.data.acoustics import (
    AcousticsConfig,
    ShoeboxRoom,
    convolve_foa,
    diffuse_noise,
    foa_rir,
    scale_to_snr,
)
from avi_ros.data.signals import synthesize_class
from avi_ros.data.sound_bank import SoundBank
from avi_ros.doa import tf_direction
from avi_ros.geometry import angular_error_rad, direction_to_unit
from avi_ros.taxonomy import default_taxonomy

AZIMUTHS_DEG = np.arange(-180, 180, 10)  # 36 azimuths
ELEVATIONS_DEG = (-30, -15, 0, 15, 30)
QUICK_ELEVATIONS_DEG = (-30, 0, 30)
RT60_RANGE_S = (0.2, 3.0)
SNR_RANGE_DB = (-5.0, 20.0)
DISTANCE_RANGE_M = (1.0, 4.0)
ROOM_SIZE_RANGE_M = ((5.0, 12.0), (4.0, 10.0), (2.6, 4.5))  # x, y, z
NOISE_SLOPE = 1.0  # pink diffuse noise
SECTORS = ("front", "left", "right", "behind")
RT60_BANDS_S = ((0.2, 0.6), (0.6, 1.5), (1.5, 3.0))
SNR_BANDS_DB = ((-5.0, 5.0), (5.0, 20.0))
MODEL_BATCH = 16


@dataclass(frozen=True)
class Scene:
    """One benchmark window: the true direction [deg], the class, the condition and the audio [4, N]."""

    azimuth_deg: float
    elevation_deg: float
    class_name: str
    condition: str  # "free field" or "room"
    rt60_s: float  # NaN in the free field
    snr_db: float
    audio: np.ndarray


def sector(azimuth_deg: float) -> str:
    """front |az| <= 45, left 45 < az < 135, right -135 < az < -45, behind |az| >= 135 [deg]."""
    if abs(azimuth_deg) <= 45.0:
        return "front"
    if abs(azimuth_deg) >= 135.0:
        return "behind"
    return "left" if azimuth_deg > 0 else "right"


def azimuth_error_deg(estimate_deg: float, truth_deg: float) -> float:
    """|estimate - truth| wrapped to 0..180 [deg]; NaN stays NaN (no estimate)."""
    return abs((estimate_deg - truth_deg + 180.0) % 360.0 - 180.0)


def _dry(class_name: str, rng: np.random.Generator, n: int, bank: SoundBank | None) -> np.ndarray:
    if bank is not None and bank.has(class_name):
        return bank.draw(class_name, rng, n).astype(np.float64)
    return synthesize_class(class_name, rng, n, SAMPLE_RATE).astype(np.float64)


def _room_for(rt60_s: float, rng: np.random.Generator) -> ShoeboxRoom:
    """A random shoebox whose uniform absorption gives ``rt60_s`` by Sabine (0.161 V / (S a))."""
    size = tuple(float(rng.uniform(lo, hi)) for lo, hi in ROOM_SIZE_RANGE_M)
    lx, ly, lz = size
    surface = 2.0 * (lx * ly + lx * lz + ly * lz)
    absorption = float(np.clip(0.161 * lx * ly * lz / (surface * rt60_s), 0.01, 0.99))
    return ShoeboxRoom(size_m=size, absorption=(absorption,) * 6)


def _render_room(
    dry: np.ndarray, direction: np.ndarray, rt60_s: float, rng: np.random.Generator
) -> np.ndarray:
    """The dry sound from ``direction`` (microphone frame = room frame) in a room of ``rt60_s``."""
    while True:
        room = _room_for(rt60_s, rng)
        mic = np.array([rng.uniform(1.0, s - 1.0) for s in room.size_m[:2]] + [rng.uniform(1.0, 1.6)])
        source = mic + float(rng.uniform(*DISTANCE_RANGE_M)) * direction
        if room.contains(source, margin_m=0.3):
            break
    config = AcousticsConfig(max_rir_s=min(max(rt60_s, 0.3), 1.0))
    return convolve_foa(dry, foa_rir(room, source, mic, np.eye(3), config, rng))


def make_scene(
    azimuth_deg: float,
    elevation_deg: float,
    class_name: str,
    condition: str,
    n_samples: int,
    rng: np.random.Generator,
    bank: SoundBank | None,
) -> Scene:
    """Render one scene (see the module docstring); ``rng`` draws the sound, room, RT60 and SNR."""
    dry = _dry(class_name, rng, n_samples, bank)
    direction = direction_to_unit(math.radians(azimuth_deg), math.radians(elevation_deg))
    rt60 = float("nan")
    if condition == "room":
        rt60 = float(np.exp(rng.uniform(*np.log(RT60_RANGE_S))))
        foreground = _render_room(dry, direction, rt60, rng)
    else:
        gains = foa_encoding_gains(math.radians(azimuth_deg), math.radians(elevation_deg))
        foreground = gains[:, None] * dry
    snr = float(rng.uniform(*SNR_RANGE_DB))
    noise = scale_to_snr(
        foreground[0], diffuse_noise(rng, n_samples, SAMPLE_RATE, NOISE_SLOPE), snr, SAMPLE_RATE
    )
    audio = foreground + noise
    audio *= 0.5 / max(float(np.abs(audio).max()), 1e-12)  # -6 dB peak, as a recording would be
    return Scene(azimuth_deg, elevation_deg, class_name, condition, rt60, snr, audio.astype(np.float32))


def scene_plan(quick: bool) -> list[tuple[float, float, str, str]]:
    """(azimuth, elevation, class, condition) of every scene: every azimuth in both conditions;
    quick: one elevation and one class per azimuth (cycling) and two draws, else every
    combination of elevation and class."""
    classes = [name for name in default_taxonomy().names if name != "none"]
    plan = []
    for condition in ("free field", "room"):
        for index, azimuth in enumerate(AZIMUTHS_DEG):
            if quick:
                for draw in range(2):
                    k = 2 * index + draw
                    elevation = QUICK_ELEVATIONS_DEG[k % len(QUICK_ELEVATIONS_DEG)]
                    plan.append((float(azimuth), float(elevation), classes[k % len(classes)], condition))
            else:
                for elevation in ELEVATIONS_DEG:
                    for class_name in classes:
                        plan.append((float(azimuth), float(elevation), class_name, condition))
    return plan


def _model_directions(pipeline, scenes: list[Scene]) -> list[np.ndarray]:
    """The most confident hazard's unit vector per scene, through the predict path."""
    from avi_ros.predict import blank_camera_frame

    size = max(pipeline.image_size, 8)
    out = []
    for first in range(0, len(scenes), MODEL_BATCH):
        frames = [blank_camera_frame(s.audio, SAMPLE_RATE, size) for s in scenes[first : first + MODEL_BATCH]]
        out += [np.asarray(result.top.direction, dtype=np.float64) for result in pipeline.run_batch(frames)]
    return out


def _median(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return round(float(np.median(finite)), 2) if finite else None


def summarise(rows: list[dict], estimators: list[str]) -> dict[str, dict]:
    """Per group (condition, RT60 band, SNR band) and estimator: median azimuth error by sector,
    over all, and the median great-circle error [deg], with the scene counts."""
    groups: dict[str, list[dict]] = {
        "free field": [r for r in rows if r["condition"] == "free field"],
        "room": [r for r in rows if r["condition"] == "room"],
    }
    for lo, hi in RT60_BANDS_S:
        groups[f"room, RT60 {lo:g}-{hi:g} s"] = [r for r in groups["room"] if lo <= r["rt60_s"] < hi + 1e-9]
    for lo, hi in SNR_BANDS_DB:
        groups[f"all, SNR {lo:g}..{hi:g} dB"] = [r for r in rows if lo <= r["snr_db"] < hi + 1e-9]
    summary = {}
    for name, members in groups.items():
        entry: dict[str, dict] = {"scenes": {s: sum(r["sector"] == s for r in members) for s in SECTORS}}
        entry["scenes"]["all"] = len(members)
        for estimator in estimators:
            by_sector = {
                s: _median([r[f"{estimator}_az_err"] for r in members if r["sector"] == s]) for s in SECTORS
            }
            by_sector["all"] = _median([r[f"{estimator}_az_err"] for r in members])
            by_sector["great_circle"] = _median([r[f"{estimator}_err"] for r in members])
            entry[estimator] = by_sector
        summary[name] = entry
    return summary


def markdown(result: dict) -> str:
    """The summary as a Markdown table, one row per group and estimator."""
    estimators = result["estimators"]
    notes = [
        f"`python bench/bench_direction.py {' '.join(result['argv'])}`",
        f"({result['scenes']} scenes, sounds: {result['sounds']}, "
        f"{result['seconds']:.0f} s on {result['machine']}).",
        "Sectors of the true azimuth: front |az| <= 45, left 45..135, right -135..-45, behind >= 135 deg;",
        "`3-D` is the median great-circle error. Physics: `avi_ros.doa.tf_direction`.",
    ]
    if result.get("checkpoint"):
        notes.append(f"Model: `{result['checkpoint']}`, most confident hazard.")
        if result.get("direction_mode_steps") is not None:
            notes.append(f"Physics directions read with {result['direction_mode_steps']} mode-seeking steps.")
    lines = [
        "# Direction benchmark: median azimuth error [deg] by sector",
        "",
        " ".join(notes),
        "",
        "| condition | estimator | front | left | right | behind | all | 3-D | scenes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group, entry in result["summary"].items():
        for estimator in estimators:
            e = entry[estimator]
            cells = [e[s] for s in (*SECTORS, "all", "great_circle")]
            text = " | ".join("n/a" if v is None else f"{v:.1f}" for v in cells)
            lines.append(f"| {group} | {estimator} | {text} | {entry['scenes']['all']} |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    pipeline = None
    n_samples = SAMPLE_RATE
    if args.checkpoint is not None:
        from avi_ros.models.intensity_direction import set_mode_steps
        from avi_ros.pipeline import Pipeline
        from avi_ros.predict import check_device

        check_device(args.device)
        pipeline = Pipeline.from_checkpoint(args.checkpoint, device=args.device)
        if args.direction_mode_steps is not None and not set_mode_steps(
            pipeline.model, args.direction_mode_steps
        ):
            raise ValueError(
                "--direction-mode-steps: the model learns its directions; there is no mode to read"
            )
        if pipeline.feature_config.sample_rate != SAMPLE_RATE:
            raise ValueError(f"the benchmark renders at {SAMPLE_RATE} Hz; the model expects another rate")
        n_samples = pipeline.window_samples
    names = [name for name in default_taxonomy().names if name != "none"]
    bank = SoundBank.from_path(args.sounds, names) if args.sounds is not None else None
    rng = np.random.default_rng(args.seed)
    scenes = [make_scene(*plan, n_samples, rng, bank) for plan in scene_plan(args.quick)]
    estimates = {"physics": [tf_direction(s.audio, SAMPLE_RATE).vector for s in scenes]}
    if pipeline is not None:
        estimates["model"] = _model_directions(pipeline, scenes)
    rows = []
    for index, scene in enumerate(scenes):
        truth = direction_to_unit(math.radians(scene.azimuth_deg), math.radians(scene.elevation_deg))
        row = {
            "azimuth_deg": scene.azimuth_deg,
            "elevation_deg": scene.elevation_deg,
            "class": scene.class_name,
            "condition": scene.condition,
            "rt60_s": scene.rt60_s,
            "snr_db": scene.snr_db,
            "sector": sector(scene.azimuth_deg),
        }
        for estimator, vectors in estimates.items():
            vector = vectors[index]
            estimated_az = math.degrees(math.atan2(vector[1], vector[0]))
            row[f"{estimator}_az_err"] = azimuth_error_deg(estimated_az, scene.azimuth_deg)
            row[f"{estimator}_err"] = math.degrees(float(angular_error_rad(vector, truth)))
        rows.append(row)
    return {
        "argv": sys.argv[1:],
        "quick": args.quick,
        "seed": args.seed,
        "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
        "direction_mode_steps": args.direction_mode_steps,
        "sounds": "procedural" if args.sounds is None else str(args.sounds),
        "estimators": list(estimates),
        "scenes": len(scenes),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
        "summary": summarise(rows, list(estimates)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small sweep that runs in under a minute")
    parser.add_argument("--checkpoint", type=Path, default=None, help="also score this model")
    parser.add_argument("--device", default="cpu", help="the model's device: auto, cpu or cuda:N")
    parser.add_argument(
        "--sounds", type=Path, default=None, help="real sound bank (class folders or UrbanSound8K)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same scenes")
    parser.add_argument("--out", type=Path, default=Path("docs/results/direction"), help="output folder")
    parser.add_argument("--name", default="direction", help="file stem of the JSON and Markdown outputs")
    steps_help = "mode-seeking steps of the model's physics directions (0: the mask's mean)"
    parser.add_argument("--direction-mode-steps", type=int, metavar="N", help=steps_help)
    args = parser.parse_args()
    try:
        result = run(args)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        print(f"bench_direction: error: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / f"{args.name}.md").write_text(markdown(result), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
