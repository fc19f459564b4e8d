"""Model parts: encoder shapes, ImageNet weights, gradient flow through frozen parts, unfreezing by
depth, parameter counts and the config (the model's variants and slots: test_hazard_set_model.py)."""

from __future__ import annotations

import re

import pytest
import torch
from model_helpers import tiny_config
from torchvision.models import resnet18

from avi_ros.models import (
    ModelConfig,
    SeldEncoder,
    SeldEncoderConfig,
    VisualEncoder,
    VisualEncoderConfig,
    build_model,
    freeze_seld_encoder,
    parameter_counts,
    seld_depth_units,
)
from avi_ros.view_tokens import VIEW_TOKEN_CHANNELS

BATCH = 2
FRAMES, BINS = 50, 64  # 1 s of DCASE features
IMAGE = 64
CLASSES = 5


def inputs(batch: int = BATCH) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features, image and view tokens of a model of ``tiny_config`` (one slot, 4 x 4 view grid)."""
    generator = torch.Generator().manual_seed(0)
    return (
        torch.randn(batch, 7, FRAMES, BINS, generator=generator),
        torch.randn(batch, 5, IMAGE, IMAGE, generator=generator),
        torch.rand(batch, 16, VIEW_TOKEN_CHANNELS, generator=generator),
    )


def test_seld_encoder_matches_the_dcase_baseline_size_and_shapes() -> None:
    encoder = SeldEncoder(SeldEncoderConfig(accdoa_classes=13))
    assert sum(p.numel() for p in encoder.parameters()) == 737_141  # REFERENCE: about 737k
    embeddings = encoder(torch.randn(BATCH, 7, FRAMES, BINS))
    assert embeddings.shape == (BATCH, FRAMES // 5, 128)
    accdoa = encoder.accdoa(embeddings)
    assert accdoa.shape == (BATCH, FRAMES // 5, 3, 3, 13)
    assert accdoa.abs().max() <= 1.0
    assert encoder.fnn_list[-1].out_features == 117


def test_seld_encoder_without_head_refuses_accdoa() -> None:
    encoder = SeldEncoder()
    assert len(encoder.fnn_list) == 0
    with pytest.raises(RuntimeError, match="ACCDOA"):
        encoder.accdoa(torch.zeros(1, 10, 128))


@pytest.mark.parametrize(("arch", "channels"), [("resnet18", 512), ("resnet50", 2048)])
def test_visual_encoder_keeps_region_tokens(arch: str, channels: int) -> None:
    encoder = VisualEncoder(VisualEncoderConfig(arch, IMAGE))
    tokens = encoder(torch.randn(BATCH, 5, IMAGE, IMAGE))
    assert tokens.shape == (BATCH, (IMAGE // 32) ** 2, channels)
    assert encoder.conv1.in_channels == 5


def test_imagenet_weights_copy_rgb_and_average_into_extra_channels(tmp_path) -> None:
    source = resnet18(weights=None).state_dict()  # torchvision naming, as an ImageNet file has
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(source, path)
    encoder = VisualEncoder(VisualEncoderConfig("resnet18", IMAGE))
    encoder.load_imagenet_weights(path)
    conv = encoder.conv1.weight.detach()
    assert torch.equal(conv[:, :3], source["conv1.weight"])
    rgb_mean = source["conv1.weight"].mean(dim=1)
    assert torch.allclose(conv[:, 3], rgb_mean) and torch.allclose(conv[:, 4], rgb_mean)
    assert torch.equal(encoder.layer3[1].conv2.weight, source["layer3.1.conv2.weight"])
    wrong_arch = VisualEncoder(VisualEncoderConfig("resnet50", IMAGE))
    with pytest.raises(ValueError, match=re.escape("layer1.0.conv1.weight")):
        wrong_arch.load_imagenet_weights(path)


def test_fused_embedding_is_1024_dims_at_the_default_width() -> None:
    model = build_model(ModelConfig(visual=VisualEncoderConfig("resnet18", IMAGE)))
    assert model.adapter.out_dim == 1024
    assert model.head.trunk[0].in_features == 1024


def test_frozen_encoder_gets_no_gradient_and_the_rest_does() -> None:
    model = build_model(tiny_config(CLASSES, IMAGE)).train()
    assert freeze_seld_encoder(model.audio_encoder, 0.0) == []
    out = model(*inputs())
    outputs = (
        out.class_logits,
        out.direction,
        out.distance,
        out.confidence_logit,
        out.risk_logits,
        out.action_logits,
        out.visibility_logits,
    )
    sum(o.sum() for o in outputs).backward()
    assert all(p.grad is None for p in model.audio_encoder.parameters())
    for part in (model.visual_encoder, model.adapter, model.head):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_unfreeze_takes_the_top_layers_by_depth_not_parameter_order() -> None:
    encoder = SeldEncoder()
    names = [name for name, _ in seld_depth_units(encoder)]
    assert names == [
        "conv_block_list.0",
        "conv_block_list.3",
        "conv_block_list.6",
        "gru.l0",
        "gru.l1",
        "mhsa_block_list.0",
        "mhsa_block_list.1",
    ]
    # One unit of seven: the top attention layer with its LayerNorm. The last entries of
    # named_parameters() are layer_norm_list.{0,1}, which an order-based rule would pick instead.
    assert freeze_seld_encoder(encoder, 1 / 7) == ["mhsa_block_list.1"]
    trainable = {name for name, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {
        "mhsa_block_list.1.in_proj_weight",
        "mhsa_block_list.1.in_proj_bias",
        "mhsa_block_list.1.out_proj.weight",
        "mhsa_block_list.1.out_proj.bias",
        "layer_norm_list.1.weight",
        "layer_norm_list.1.bias",
    }
    assert freeze_seld_encoder(encoder, 3 / 7) == ["gru.l1", "mhsa_block_list.0", "mhsa_block_list.1"]
    gru = dict(encoder.gru.named_parameters())
    assert gru["weight_ih_l1"].requires_grad and gru["weight_hh_l1_reverse"].requires_grad
    assert not gru["weight_ih_l0"].requires_grad and not gru["bias_hh_l0_reverse"].requires_grad
    assert not any(p.requires_grad for p in encoder.conv_block_list.parameters())
    assert len(freeze_seld_encoder(encoder, 1.0)) == 7
    assert all(p.requires_grad for p in encoder.parameters())
    with pytest.raises(ValueError, match="trainable_fraction"):
        freeze_seld_encoder(encoder, 1.5)


def test_partially_unfrozen_encoder_gets_gradient_only_in_its_top_units() -> None:
    model = build_model(tiny_config(CLASSES, IMAGE)).train()
    freeze_seld_encoder(model.audio_encoder, 2 / 7)
    model(*inputs()).class_logits.sum().backward()
    encoder = model.audio_encoder
    assert encoder.mhsa_block_list[0].in_proj_weight.grad.abs().sum() > 0
    assert encoder.gru.weight_ih_l1.grad is None
    assert encoder.conv_block_list[0].conv.weight.grad is None


def test_frozen_batchnorm_keeps_its_statistics_in_training() -> None:
    model = build_model(tiny_config(CLASSES, IMAGE))
    freeze_seld_encoder(model.audio_encoder, 0.0)
    model.train()
    bn = model.audio_encoder.conv_block_list[0].bn
    assert not bn.training and model.visual_encoder.bn1.training
    before = bn.running_mean.clone()
    features, visual, view_tokens = inputs()
    model(features * 5 + 3, visual, view_tokens)
    assert torch.equal(bn.running_mean, before)


def test_parameter_counts_report_trainable_parts() -> None:
    model = build_model(tiny_config(CLASSES, IMAGE))
    freeze_seld_encoder(model.audio_encoder, 0.0)
    counts = parameter_counts(model)
    assert counts["audio_encoder"] == {"trainable": 0, "total": 705_536}  # 737,141 minus the head
    assert counts["all"]["total"] == sum(
        counts[p]["total"] for p in ("audio_encoder", "visual_encoder", "adapter", "head")
    )
    assert counts["all"]["trainable"] == counts["all"]["total"] - 705_536


def test_model_config_round_trip_and_errors() -> None:
    config = tiny_config(CLASSES, variant="concat", audio=SeldEncoderConfig(accdoa_classes=13))
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="variant"):
        ModelConfig(variant="late_fusion")
    with pytest.raises(ValueError, match="hazard_slots"):
        ModelConfig(hazard_slots=0)
    with pytest.raises(ValueError, match="view_grid"):
        ModelConfig(view_grid=0)
    with pytest.raises(ValueError, match="arch"):
        ModelConfig.from_dict({"visual": {"arch": "vgg16"}})
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({"visual": {"arch": "resnet18", "depth": 3}})


def test_a_retired_key_of_earlier_checkpoints_is_dropped_and_a_new_one_refused() -> None:
    """The single-hazard adapter's audio pooling is in the shipped model's metadata: it still loads."""
    plain = tiny_config(CLASSES).to_dict()
    earlier = {**plain, "adapter": {**plain["adapter"], "pooling": "attention"}}
    assert ModelConfig.from_dict(earlier) == tiny_config(CLASSES)
    with pytest.raises(ValueError, match=r"adapter\.pooled"):
        ModelConfig.from_dict({**plain, "adapter": {**plain["adapter"], "pooled": "attention"}})
