"""Tiny models and state dicts that several test modules build: a model whose answer is known (one
slot by default, three for ``set_model``), a state_dict in the DCASE2023 SELD baseline's layout, and
the overrides that make a SELD pre-training run test-sized."""

from __future__ import annotations

from pathlib import Path

import torch

from avi_ros.models.builder import build_model
from avi_ros.models.config import ModelConfig
from avi_ros.models.hazard_fusion import AdapterConfig
from avi_ros.models.head import HeadConfig
from avi_ros.models.visual_encoder import VisualEncoderConfig
from avi_ros.taxonomy import default_taxonomy

SET_SLOTS = 3  # hazard slots of ``set_model``


def tiny_config(num_classes: int, image_size: int = 32, **overrides: object) -> ModelConfig:
    """A tiny model's config: ResNet-18 at ``image_size`` px, d_model 32, head width 32,
    one hazard slot on a 4 x 4 view grid; ``overrides`` add or replace ModelConfig fields."""
    fields = {
        "hazard_slots": 1,
        "view_grid": 4,
        "visual": VisualEncoderConfig(arch="resnet18", image_size=image_size),
        "adapter": AdapterConfig(d_model=32),
        "head": HeadConfig(hidden=32),
    }
    return ModelConfig(num_classes=num_classes, **{**fields, **overrides})


def tiny_model(
    num_classes: int,
    class_bias: dict[int, float] | None = None,
    confidence_bias: float | None = None,
    **config: object,
):
    """A tiny untrained model of ``tiny_config(num_classes, **config)``. ``class_bias`` sets those
    entries of the class-logit bias (class id -> value) and ``confidence_bias`` fills the
    confidence bias, so a test can make the model's answer known (e.g. never class ``none``,
    confidence ~1) whatever the input."""
    torch.manual_seed(0)
    model = build_model(tiny_config(num_classes, **config))
    with torch.no_grad():
        for class_id, value in (class_bias or {}).items():
            model.head.class_logits.bias[class_id] = value
        if confidence_bias is not None:
            model.head.confidence.bias.fill_(confidence_bias)
    return model


def set_model(class_bias: dict[int, float] | None = None, confidence_bias: float | None = None):
    """A tiny model of the default taxonomy with 3 slots (4 x 4 view tokens), biased as
    ``tiny_model`` says."""
    return tiny_model(default_taxonomy().num_classes, class_bias, confidence_bias, hazard_slots=SET_SLOTS)


def dcase_baseline_state_dict(classes: int = 13, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict with the DCASE2023 SeldModel's names and shapes (FOA, 7 x 64 features),
    written out key by key from the baseline's layout, with random values."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    state: dict[str, torch.Tensor] = {}
    for index, in_channels in ((0, 7), (3, 64), (6, 64)):
        prefix = f"conv_block_list.{index}"
        state[f"{prefix}.conv.weight"] = rand(64, in_channels, 3, 3)
        state[f"{prefix}.conv.bias"] = rand(64)
        state[f"{prefix}.bn.weight"] = rand(64)
        state[f"{prefix}.bn.bias"] = rand(64)
        state[f"{prefix}.bn.running_mean"] = rand(64)
        state[f"{prefix}.bn.running_var"] = rand(64).abs() + 0.1
        state[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(1234)
    for layer, input_size in ((0, 128), (1, 256)):
        for suffix in ("", "_reverse"):
            state[f"gru.weight_ih_l{layer}{suffix}"] = rand(3 * 128, input_size)
            state[f"gru.weight_hh_l{layer}{suffix}"] = rand(3 * 128, 128)
            state[f"gru.bias_ih_l{layer}{suffix}"] = rand(3 * 128)
            state[f"gru.bias_hh_l{layer}{suffix}"] = rand(3 * 128)
    for index in (0, 1):
        state[f"mhsa_block_list.{index}.in_proj_weight"] = rand(3 * 128, 128)
        state[f"mhsa_block_list.{index}.in_proj_bias"] = rand(3 * 128)
        state[f"mhsa_block_list.{index}.out_proj.weight"] = rand(128, 128)
        state[f"mhsa_block_list.{index}.out_proj.bias"] = rand(128)
        state[f"layer_norm_list.{index}.weight"] = rand(128)
        state[f"layer_norm_list.{index}.bias"] = rand(128)
    state["fnn_list.0.weight"] = rand(128, 128)
    state["fnn_list.0.bias"] = rand(128)
    state["fnn_list.1.weight"] = rand(3 * 3 * classes, 128)
    state["fnn_list.1.bias"] = rand(3 * 3 * classes)
    return state


def tiny_seld_overrides(
    output_dir: str, cache_dir: Path, scenes: tuple[int, int], max_order: int, batch_size: int
) -> list[str]:
    """Overrides of seld_pretrain.yaml for a test-sized run: ``scenes`` (training, validation)
    rendered with image sources up to ``max_order`` and no late tail, tiny.yaml's encoder sizes,
    two epochs of ``batch_size``, one CPU thread, no progress bars."""
    return [
        f"output_dir={output_dir}",
        f"data.cache_dir={cache_dir}",
        f"data.train.scenes={scenes[0]}",
        f"data.val.scenes={scenes[1]}",
        "data.generation_workers=1",
        f"data.scene.acoustics.max_order={max_order}",
        "data.scene.acoustics.late_tail=false",
        "model.audio.n_filters=8",
        "model.audio.rnn_size=16",
        "model.audio.attn_heads=2",
        "stages.0.epochs=2",
        "stages.0.warmup_steps=0",
        f"optim.batch_size={batch_size}",
        "runtime.device=cpu",
        "runtime.threads=1",
        "runtime.progress=false",
    ]
