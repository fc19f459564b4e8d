"""ONNX Runtime against torch on this CPU, for the same model and inputs; prints one JSON object.

    python bench/bench_onnx.py                                   # the model of the training config
    python bench/bench_onnx.py --config training/configs/hazard_set_tiny.yaml
    python bench/bench_onnx.py --checkpoint runs/hazard_set/checkpoints/best
    python bench/bench_onnx.py --threads 2 --rounds 50

The model is a checkpoint (``--checkpoint``), or the architecture of a training config with random
weights (``--config``, default ``training/configs/hazard_set.yaml``, the model the package
ships), saved to a temporary checkpoint. It is exported with ``avi_ros.onnx_backend``
(``avi-ros export --onnx``) and loaded twice, as the node would: ``Pipeline.from_checkpoint`` with
backend torch (BatchNorm folded, channels-last, fp32) and with backend onnxruntime.

Two sections, batch 1, each variant timed in interleaved rounds after warm-up (best and median
round, as bench/bench_model.py does, so load from other processes hits both alike):
- ``model``: the network alone, ``pipeline.model(features, visual, third)`` on the same inputs;
- ``frame``: a whole ``Pipeline.run`` of one sensor frame (preprocessing, STFT features, network,
  output reading), which is what the node pays per frame.
``ratio_torch_over_onnxruntime`` > 1 means onnxruntime is faster. Also reported: the largest
difference between the two backends' outputs, and the export time.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's avi_ros

import numpy as np
import onnxruntime
import torch
from bench_model import interleaved_timing

from avi_ros.checkpoint import load_checkpoint, save_checkpoint
from avi_ros.geometry import CameraIntrinsics
from avi_ros.models import build_model
from avi_ros.onnx_backend import ONNX_FILE, example_inputs, export_model
from avi_ros.pipeline import Pipeline
from avi_ros.taxonomy import default_taxonomy
from avi_ros.types import Frame
from training.config import load_config

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "training" / "configs" / "hazard_set.yaml"


def random_checkpoint(config_path: Path, directory: Path) -> Path:
    """A checkpoint of the config's model and features with random weights (seed 0)."""
    config = load_config(config_path)
    torch.manual_seed(0)
    model = build_model(config.model)
    return save_checkpoint(directory, model, config.features, default_taxonomy())


def sensor_frame(pipeline: Pipeline, seed: int = 0) -> Frame:
    """A 640 x 480 RGB-D frame (something near on the left) with noise audio of the model's window."""
    rng = np.random.default_rng(seed)
    width, height = 640, 480
    depth = np.full((height, width), 3.0, dtype=np.float32)
    depth[:, : width // 3] = 0.8
    return Frame(
        rgb=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        depth_m=depth,
        intrinsics=CameraIntrinsics.from_fov(width, height, math.radians(70.0)),
        audio=rng.normal(0.0, 0.1, (4, pipeline.window_samples)).astype(np.float32),
        sample_rate=pipeline.feature_config.sample_rate,
    )


def max_output_difference(torch_pipeline: Pipeline, onnx_pipeline: Pipeline) -> float:
    inputs = list(example_inputs(torch_pipeline.metadata, batch=1, seed=1).values())
    with torch.inference_mode():
        expected = torch_pipeline.model(*inputs)
    got = onnx_pipeline.model(*inputs)
    worst = 0.0
    for name in onnx_pipeline.model.info.outputs:
        a, b = getattr(got, name).numpy(), getattr(expected, name).float().numpy()
        finite = ~np.isnan(b)
        worst = max(worst, float(np.max(np.abs(a[finite] - b[finite]), initial=0.0)))
    return worst


def with_ratio(timing: dict[str, dict[str, float]]) -> dict[str, object]:
    ratio = timing["torch"]["best_ms"] / timing["onnxruntime"]["best_ms"]
    return {**timing, "ratio_torch_over_onnxruntime": round(ratio, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint directory to benchmark")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="training config (its model, random weights)"
    )
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads of both backends (default 1, as replay: multi-thread timings on a shared "
        "machine are not reproducible)",
    )
    args = parser.parse_args()
    if args.threads < 1 or args.rounds < 1:
        print("bench_onnx: --threads and --rounds must be at least 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)  # OnnxModel takes its intra-op threads from torch
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.checkpoint is None:
            checkpoint = random_checkpoint(args.config, Path(tmp) / "ckpt")
            onnx_path = checkpoint / ONNX_FILE
        else:
            checkpoint, onnx_path = args.checkpoint, Path(tmp) / ONNX_FILE
        model, metadata = load_checkpoint(checkpoint)
        export_started = time.perf_counter()
        export_model(model, metadata, onnx_path)
        export_s = time.perf_counter() - export_started
        torch_pipeline = Pipeline.from_checkpoint(checkpoint, device="cpu", precision="fp32")
        onnx_pipeline = Pipeline.from_checkpoint(onnx_path, device="cpu", backend="onnxruntime")
        inputs = list(example_inputs(metadata, batch=1).values())
        frame = sensor_frame(torch_pipeline)

        def torch_model() -> object:
            with torch.inference_mode():
                return torch_pipeline.model(*inputs)

        model_timing = interleaved_timing(
            {"torch": torch_model, "onnxruntime": lambda: onnx_pipeline.model(*inputs)},
            args.rounds,
            args.warmup,
            sync=lambda: None,
        )
        frame_timing = interleaved_timing(
            {"torch": lambda: torch_pipeline.run(frame), "onnxruntime": lambda: onnx_pipeline.run(frame)},
            args.rounds,
            args.warmup,
            sync=lambda: None,
        )
        config, info = metadata.model_config, onnx_pipeline.model.info
        report = {
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "threads": args.threads,
                "torch": torch.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            "model": {
                "source": str(args.checkpoint or args.config),
                "variant": config.variant,
                "hazard_slots": config.hazard_slots,
                "direction": config.direction,
                "visual": f"{config.visual.arch} {config.visual.image_size} px",
                "window_s": metadata.feature_config.window_seconds,
                "inputs": {name: " x ".join(map(str, shape)) for name, shape in info.inputs.items()},
                "onnx_mb": round(onnx_path.stat().st_size / 1e6, 2),
                "export_s": round(export_s, 1),
            },
            "setup": {"batch": 1, "rounds": args.rounds, "warmup": args.warmup},
            "max_abs_output_difference": max_output_difference(torch_pipeline, onnx_pipeline),
            "model_forward": with_ratio(model_timing),
            "frame": with_ratio(frame_timing),
            "wall_s": round(time.perf_counter() - started, 1),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
