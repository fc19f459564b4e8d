"""Benchmark of the features and the model forward; prints one JSON object.

    python bench/bench_model.py                 # CPU
    python bench/bench_model.py --device cuda   # CPU and CUDA sections
    python bench/bench_model.py --compile       # also try torch.compile (slow to compile)
    python bench/bench_model.py --threads 2     # CPU threads (default 1)

What it measures, per frame (batch 1, 1 s of 24 kHz FOA audio, 224 x 224 images):
- features: the torch FeatureExtractor against a librosa/numpy reference of the DCASE
  features (target: at least 3x faster);
- model forward of the full model (three hazard slots) with resnet18 and resnet50, eager fp32 against
  the other variants (channels-last, conv+BN folding, bf16 autocast, torch.compile), as ratios;
- the machine's matmul GFLOP/s (fp32 and bf16) with a square matmul of the same FLOP count as
  the ResNet trunk, timed in the same rounds, and each variant's time against its FLOP bound
  (counted FLOPs / matmul rate of the same precision; FLOPs from torch's FlopCounterMode, about
  the nominal 8.2 GFLOP of a 224^2 ResNet-50); target for the ResNet-50 trunk: within 1.5x.

Timings interleave the variants (one call of each per round) and report the best and the
median round, so that load from other processes on a shared machine hits every variant alike;
ratios use the best rounds. Accuracy of reduced-precision variants is reported against fp32.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's avi_ros

import librosa
import numpy as np
import torch
import torch.fx.experimental.optimization as fx_optimization
from torch.utils.flop_counter import FlopCounterMode

from avi_ros.features import FeatureConfig, FeatureExtractor
from avi_ros.models import ModelConfig, VisualEncoderConfig, build_model
from avi_ros.view_tokens import VIEW_TOKEN_CHANNELS

RESNET50_NOMINAL_GFLOP = 8.2
FLOP_BOUND_TARGET = 1.5
FEATURE_SPEEDUP_TARGET = 3.0
IMAGE_SIZE = 224


def librosa_dcase_reference(audio: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The DCASE2023 baseline's FOA features with librosa/numpy, [4, N] -> [7, T, 64] (the
    baseline's own recipe; test/test_features.py checks the torch version against the same)."""
    frames = audio.shape[1] // config.hop_length  # the baseline keeps floor(N / hop) frames
    spectra = np.stack(
        [
            librosa.stft(
                np.asfortranarray(ch),
                n_fft=config.n_fft,
                hop_length=config.hop_length,
                win_length=config.win_length,
                window="hann",
            ).T[:frames]
            for ch in audio
        ],
        axis=-1,
    )
    mel_wts = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_bins).T
    log_mel = [librosa.power_to_db(np.abs(spectra[:, :, ch]) ** 2 @ mel_wts) for ch in range(4)]
    w = spectra[:, :, 0]
    intensity = np.real(np.conj(w)[:, :, None] * spectra[:, :, 1:])
    energy = 1e-8 + (np.abs(w) ** 2 + (np.abs(spectra[:, :, 1:]) ** 2).sum(-1) / 3.0)
    iv_mel = np.transpose((intensity / energy[:, :, None]).transpose(0, 2, 1) @ mel_wts, (1, 0, 2))
    return np.concatenate([np.stack(log_mel), iv_mel], axis=0)


def interleaved_timing(
    variants: dict[str, Callable[[], object]], rounds: int, warmup: int, sync: Callable[[], None]
) -> dict[str, dict[str, float]]:
    """Best and median milliseconds of each variant over ``rounds`` interleaved rounds."""
    for _ in range(warmup):
        for run in variants.values():
            run()
    sync()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            sync()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: {"best_ms": round(min(times), 3), "median_ms": round(statistics.median(times), 3)}
        for name, times in samples.items()
    }


def counted_gflop(fn: Callable[[], object]) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def bench_features(device: torch.device, rounds: int, sync) -> dict[str, object]:
    config = FeatureConfig()
    audio = (np.random.default_rng(0).standard_normal((4, config.window_samples)) * 0.1).astype(np.float32)
    extractor = FeatureExtractor(config).to(device)
    single = torch.from_numpy(audio)[None].to(device)
    batch = single.repeat(16, 1, 1)
    with torch.inference_mode():
        difference = float(
            np.abs(extractor(single)[0].cpu().numpy() - librosa_dcase_reference(audio, config)).max()
        )
        timing = interleaved_timing(
            {
                "librosa_reference": lambda: librosa_dcase_reference(audio, config),
                "torch_batch1": lambda: extractor(single),
                "torch_batch16": lambda: extractor(batch),
            },
            rounds,
            warmup=3,
            sync=sync,
        )
    timing["torch_batch16"] = {k: round(v / 16, 3) for k, v in timing["torch_batch16"].items()}
    speedup = timing["librosa_reference"]["best_ms"] / timing["torch_batch1"]["best_ms"]
    return {
        "per_frame": timing,
        "speedup_batch1": round(speedup, 2),
        "speedup_batch16_per_frame": round(
            timing["librosa_reference"]["best_ms"] / timing["torch_batch16"]["best_ms"], 2
        ),
        "target_speedup": FEATURE_SPEEDUP_TARGET,
        "meets_target": speedup >= FEATURE_SPEEDUP_TARGET,
        "max_abs_difference_vs_librosa": difference,
    }


def reduced_precision(device: torch.device) -> tuple[torch.dtype, str]:
    if device.type == "cpu" or torch.cuda.is_bf16_supported():
        return torch.bfloat16, "bf16"
    return torch.float16, "fp16"


def model_variants(
    arch: str, device: torch.device, use_compile: bool
) -> tuple[dict[str, Callable], Callable]:
    """Forward closures: ``model/<variant>`` for the full model, ``trunk/<variant>`` for the bare
    ResNet trunk; and the eager fp32 model's forward (for FLOP counting)."""
    torch.manual_seed(0)
    config = ModelConfig(visual=VisualEncoderConfig(arch, IMAGE_SIZE))
    eager = build_model(config).eval().to(device)
    features = torch.randn(1, 7, 50, 64, device=device)
    image = torch.randn(1, 5, IMAGE_SIZE, IMAGE_SIZE, device=device)
    image_cl = image.contiguous(memory_format=torch.channels_last)
    view = torch.rand(1, config.view_grid**2, VIEW_TOKEN_CHANNELS, device=device)
    reduced, reduced_name = reduced_precision(device)

    channels_last = build_model(config).eval().to(device)
    channels_last.load_state_dict(eager.state_dict())
    channels_last.visual_encoder.to(memory_format=torch.channels_last)
    folded = build_model(config).eval().to(device)
    folded.load_state_dict(eager.state_dict())
    folded.visual_encoder = fx_optimization.fuse(folded.visual_encoder).to(memory_format=torch.channels_last)

    def autocast(module: Callable, *inputs: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with torch.autocast(device.type, dtype=reduced):
                return module(*inputs)

        return run

    variants: dict[str, Callable[[], object]] = {
        "model/eager_fp32": lambda: eager(features, image, view),
        "model/channels_last_fp32": lambda: channels_last(features, image_cl, view),
        "model/bn_folded_channels_last_fp32": lambda: folded(features, image_cl, view),
        f"model/channels_last_{reduced_name}_autocast": autocast(channels_last, features, image_cl, view),
        f"model/bn_folded_channels_last_{reduced_name}_autocast": autocast(folded, features, image_cl, view),
        "trunk/eager_fp32": lambda: eager.visual_encoder(image),
        "trunk/bn_folded_channels_last_fp32": lambda: folded.visual_encoder(image_cl),
        f"trunk/bn_folded_channels_last_{reduced_name}_autocast": autocast(folded.visual_encoder, image_cl),
    }
    if use_compile:
        compiled = torch.compile(folded)
        variants["model/compiled_channels_last_fp32"] = lambda: compiled(features, image_cl, view)
        variants[f"model/compiled_channels_last_{reduced_name}_autocast"] = autocast(
            compiled, features, image_cl, view
        )
    return variants, lambda: eager(features, image, view)


def matmul_variants(gflop: float, device: torch.device) -> tuple[dict[str, Callable], float]:
    """Square matmuls of about ``gflop`` GFLOP in fp32 and reduced precision, and their exact GFLOP.

    Timed in the same rounds as the model, they measure the machine's FLOP rate under the same
    load, and with the same FLOP count their time is directly the model's FLOP bound.
    """
    size = round((gflop * 1e9 / 2) ** (1 / 3))
    reduced, reduced_name = reduced_precision(device)
    a32, b32 = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a16, b16 = a32.to(reduced), b32.to(reduced)
    return {"matmul/fp32": lambda: a32 @ b32, f"matmul/{reduced_name}": lambda: a16 @ b16}, 2 * size**3 / 1e9


def accuracy_vs_fp32(variants: dict[str, Callable[[], object]]) -> dict[str, dict[str, float]]:
    """Largest class-probability and direction differences of each full-model variant to eager fp32."""
    reference = variants["model/eager_fp32"]()
    ref_probs = torch.softmax(reference.class_logits.float(), -1)
    out = {}
    for name, run in variants.items():
        if not name.startswith("model/"):
            continue
        result = run()
        probs = torch.softmax(result.class_logits.float(), -1)
        cosine = (result.direction.float() * reference.direction.float()).sum(-1).clamp(-1, 1)
        out[name] = {
            "max_class_prob_diff": round(float((probs - ref_probs).abs().max()), 5),
            "direction_error_deg": round(math.degrees(float(torch.acos(cosine).max())), 4),
        }
    return out


def bench_arch(arch: str, device: torch.device, args, sync) -> dict[str, object]:
    variants, eager_forward = model_variants(arch, device, args.compile)
    with torch.inference_mode():
        full_gflop = counted_gflop(eager_forward)
        trunk_gflop = counted_gflop(variants["trunk/eager_fp32"])
        matmuls, matmul_gflop = matmul_variants(trunk_gflop, device)
        timing = interleaved_timing({**variants, **matmuls}, args.rounds, warmup=2, sync=sync)
        accuracy = accuracy_vs_fp32(variants)
    models = {name: values for name, values in timing.items() if name.startswith("model/")}
    best = min(models, key=lambda name: models[name]["best_ms"])
    rates = {
        name.removeprefix("matmul/"): matmul_gflop / (timing[name]["best_ms"] * 1e-3)
        for name in timing
        if name.startswith("matmul/")
    }
    bound = {}
    for name, values in timing.items():
        if name.startswith("matmul/"):
            continue
        precision = "fp32" if name.endswith("fp32") else reduced_precision(device)[1]
        gflop = trunk_gflop if name.startswith("trunk/") else full_gflop
        bound_ms = gflop / rates[precision] * 1e3
        bound[name] = {"bound_ms": round(bound_ms, 2), "ratio": round(values["best_ms"] / bound_ms, 2)}
    best_trunk = min((v["ratio"] for k, v in bound.items() if k.startswith("trunk/")), default=math.inf)
    return {
        "counted_gflop": {"full_model": round(full_gflop, 3), "visual_trunk": round(trunk_gflop, 3)},
        "per_frame": timing,
        "best_model_variant": best,
        "speedup_best_vs_eager_fp32": round(
            models["model/eager_fp32"]["best_ms"] / models[best]["best_ms"], 2
        ),
        "accuracy_vs_eager_fp32": accuracy,
        "matmul_gflops_same_rounds": {k: round(v, 1) for k, v in rates.items()},
        "flop_bound": {
            "nominal_resnet50_gflop": RESNET50_NOMINAL_GFLOP,
            "per_variant": bound,
            "best_trunk_ratio": best_trunk,
            "target_ratio": FLOP_BOUND_TARGET,
            "trunk_meets_target": best_trunk <= FLOP_BOUND_TARGET,
        },
    }


def bench_device(device: torch.device, args) -> dict[str, object]:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return {
        "features": bench_features(device, args.rounds * 3, sync),
        "models": {arch: bench_arch(arch, device, args, sync) for arch in args.archs},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda adds a CUDA section")
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds per variant")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared machine, threads of one op wait for each other "
        "whenever another process holds a core, which makes multi-thread timings unreproducible)",
    )
    parser.add_argument("--archs", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile variants")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_model: --device cuda requested but CUDA is not available", file=sys.stderr)
        return 2
    if args.threads < 1:
        print(f"bench_model: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    report: dict[str, object] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        },
        "setup": {"batch": 1, "image": IMAGE_SIZE, "audio_seconds": 1.0, "rounds": args.rounds},
        "cpu": bench_device(torch.device("cpu"), args),
    }
    if args.device == "cuda":
        report["cuda"] = bench_device(torch.device("cuda"), args)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
