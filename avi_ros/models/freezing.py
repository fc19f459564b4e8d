"""Freeze the SELD encoder and unfreeze its top layers by depth, and count trainable parameters.

Depth runs from the input upwards: conv block 1 < conv block 2 < conv block 3 < GRU layer 1 <
GRU layer 2 < attention layer 1 (+ its LayerNorm) < attention layer 2 (+ LayerNorm) < ACCDOA
head. Unfreezing "the top 25 %" takes whole units from the top of this list, whatever order
``named_parameters`` happens to return.
"""

from __future__ import annotations

import re

from torch import nn

from avi_ros.models.seld_encoder import ConvBlock, SeldEncoder

MODEL_PARTS = ("audio_encoder", "visual_encoder", "adapter", "head")
_GRU_LAYER = re.compile(r"_l(\d+)(_reverse)?$")


def seld_depth_units(encoder: SeldEncoder) -> list[tuple[str, list[nn.Parameter]]]:
    """(name, parameters) of each depth unit of the encoder, from the input upwards."""
    units: list[tuple[str, list[nn.Parameter]]] = []
    for index, block in enumerate(encoder.conv_block_list):
        if isinstance(block, ConvBlock):
            units.append((f"conv_block_list.{index}", list(block.parameters())))
    gru_layers: dict[int, list[nn.Parameter]] = {}
    for name, param in encoder.gru.named_parameters():
        match = _GRU_LAYER.search(name)
        if match is None:
            raise RuntimeError(f"freezing: unexpected GRU parameter name '{name}'")
        gru_layers.setdefault(int(match.group(1)), []).append(param)
    units.extend((f"gru.l{layer}", gru_layers[layer]) for layer in sorted(gru_layers))
    for index, (attention, norm) in enumerate(
        zip(encoder.mhsa_block_list, encoder.layer_norm_list, strict=True)
    ):
        units.append((f"mhsa_block_list.{index}", [*attention.parameters(), *norm.parameters()]))
    if len(encoder.fnn_list):
        units.append(("fnn_list", list(encoder.fnn_list.parameters())))
    return units


def freeze_seld_encoder(encoder: SeldEncoder, trainable_fraction: float = 0.0) -> list[str]:
    """Freeze the encoder, then unfreeze the top ``round(fraction * units)`` depth units.

    Returns the names of the trainable units, bottom first. Frozen BatchNorm layers also stop
    updating their running statistics once the model's ``train()`` calls
    ``keep_frozen_batchnorm_in_eval``.
    """
    if not 0.0 <= trainable_fraction <= 1.0:
        raise ValueError(f"trainable_fraction: expected a value in [0, 1], got {trainable_fraction}")
    units = seld_depth_units(encoder)
    for param in encoder.parameters():
        param.requires_grad_(False)
    count = round(trainable_fraction * len(units))
    trainable = units[len(units) - count :]
    for _, params in trainable:
        for param in params:
            param.requires_grad_(True)
    keep_frozen_batchnorm_in_eval(encoder)
    return [name for name, _ in trainable]


def keep_frozen_batchnorm_in_eval(module: nn.Module) -> None:
    """Put BatchNorm layers whose parameters are all frozen into eval mode (fixed statistics)."""
    for child in module.modules():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            params = list(child.parameters())
            if params and not any(p.requires_grad for p in params):
                child.eval()


def parameter_counts(model: nn.Module) -> dict[str, dict[str, int]]:
    """{part: {"trainable": n, "total": n}} for each part of the model (``MODEL_PARTS``), plus "all"."""
    counts: dict[str, dict[str, int]] = {}
    for part in MODEL_PARTS:
        module = getattr(model, part, None)
        params = list(module.parameters()) if module is not None else []
        counts[part] = {
            "trainable": sum(p.numel() for p in params if p.requires_grad),
            "total": sum(p.numel() for p in params),
        }
    counts["all"] = {
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in model.parameters()),
    }
    return counts
