"""Command line: generate synthetic occluded-hazard scenes into cached shards.

    python -m avi_ros.data.synthesize --out DIR --n N --seed S [--sound-dir DIR] [--workers W]
        [--procedural-probability P] [--augment-clips]
        [--image-size W H] [--hfov-deg DEG] [--wide] [--contact-sheet PNG]
        [--hazard-count-weights W0 W1 ...] [--onset-offset-probability P]

Exits non-zero with a one-line message on bad arguments or input.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from avi_ros.data.clip_augment import ClipAugmentConfig
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.shards import sample_seed, write_shards
from avi_ros.taxonomy import MAX_HAZARDS, default_taxonomy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m avi_ros.data.synthesize", description="Generate synthetic FOA + RGB-D hazard scenes."
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory (index.json + shards)")
    parser.add_argument("--n", required=True, type=int, help="number of scenes")
    parser.add_argument("--seed", type=int, default=0, help="base seed; scene i uses a seed derived from it")
    parser.add_argument(
        "--sound-dir",
        type=Path,
        help="real clips: a sound-bank split (BANK/train), class subfolders or an UrbanSound8K tree",
    )
    parser.add_argument(
        "--real-sound-probability",
        type=float,
        default=SceneConfig.real_sound_probability,
        help="chance that a hazard the bank has a clip of is a real clip (else procedural)",
    )
    parser.add_argument(
        "--procedural-probability",
        type=float,
        default=SceneConfig.procedural_probability,
        help="training sets only: share of hazards drawn from the wide procedural families",
    )
    parser.add_argument(
        "--augment-clips",
        action="store_true",
        help="training sets only: waveform augmentation of the real hazard clips (avi_ros.data.clip_augment)",
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="wide domain randomisation: rooms 2 m to 40 m, RT60 0.2-4 s, sensor errors, far occluders",
    )
    parser.add_argument("--sound-folds", type=int, nargs="+", help="UrbanSound8K folds to draw clips from")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--shard-size", type=int, default=128, help="scenes per shard")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), default=(640, 480))
    parser.add_argument("--hfov-deg", type=float, default=70.0, help="horizontal field of view [deg]")
    parser.add_argument("--duration", type=float, default=1.0, help="audio length per scene [s]")
    parser.add_argument("--none-probability", type=float, default=0.1, help="share of background-only scenes")
    parser.add_argument(
        "--visibility-mix",
        type=float,
        nargs=3,
        metavar=("VISIBLE", "OCCLUDED", "OUT_OF_VIEW"),
        default=(0.4, 0.35, 0.25),
        help="relative frequency of the visibility states",
    )
    parser.add_argument(
        "--hazard-count-weights",
        type=float,
        nargs="+",
        metavar="W",
        help=f"scenes with several hazards: relative weights of 0, 1, .. {MAX_HAZARDS} hazards per scene "
        "(e.g. 0.15 0.35 0.3 0.2); replaces --none-probability",
    )
    parser.add_argument(
        "--onset-offset-probability",
        type=float,
        default=0.0,
        help="with --hazard-count-weights: chance that a hazard starts and/or stops inside the scene",
    )
    parser.add_argument(
        "--contact-sheet", type=Path, help="also write a PNG contact sheet of the first scenes"
    )
    parser.add_argument("--contact-sheet-count", type=int, default=6, help="scenes on the contact sheet")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> SceneConfig:
    width, height = args.image_size
    if width <= 0 or height <= 0:
        raise ValueError(f"--image-size must be positive, got {width} {height}")
    if not 0.0 < args.hfov_deg < 180.0:
        raise ValueError(f"--hfov-deg must be in (0, 180), got {args.hfov_deg}")
    if args.sound_dir is not None and not args.sound_dir.is_dir():
        raise ValueError(f"--sound-dir {args.sound_dir} is not a directory")
    if not 0.0 <= args.real_sound_probability <= 1.0:
        raise ValueError(f"--real-sound-probability must be in [0, 1], got {args.real_sound_probability}")
    if not 0.0 <= args.procedural_probability <= 1.0:
        raise ValueError(f"--procedural-probability must be in [0, 1], got {args.procedural_probability}")
    config = replace(
        SceneConfig.wide_profile() if args.wide else SceneConfig(),
        real_sound_probability=args.real_sound_probability,
        procedural_probability=args.procedural_probability,
        clip_augmentation=ClipAugmentConfig() if args.augment_clips else None,
        duration_s=args.duration,
        none_probability=args.none_probability,
        visibility_mix=tuple(args.visibility_mix),
        sound_dir=str(args.sound_dir) if args.sound_dir is not None else None,
        sound_folds=tuple(args.sound_folds) if args.sound_folds else None,
        hazard_count_weights=tuple(args.hazard_count_weights) if args.hazard_count_weights else None,
        onset_offset_probability=args.onset_offset_probability,
    )
    return config.with_image_size(width, height, math.radians(args.hfov_deg))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.n <= 0:
            raise ValueError(f"--n must be positive, got {args.n}")
        config = config_from_args(args)
        with tqdm(total=args.n, unit="scene", disable=True if args.no_progress else None) as bar:
            index = write_shards(
                args.out, args.n, args.seed, config, args.workers, args.shard_size, on_progress=bar.update
            )
        print(f"wrote {args.n} scenes: {index}")
        if args.contact_sheet is not None:
            from avi_ros.data.contact_sheet import write_contact_sheet

            count = min(args.contact_sheet_count, args.n)
            samples = [generate_scene(sample_seed(args.seed, i), config) for i in range(count)]
            print(
                f"contact sheet: {write_contact_sheet(samples, args.contact_sheet, default_taxonomy().names)}"
            )
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        print(f"synthesize: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
