"""Model parts: shapes, baselines, gradient flow through frozen parts, unfreezing by depth."""

from __future__ import annotations

import re

import pytest
import torch
from torchvision.models import resnet18

from avi_ros.models import (
    VARIANTS,
    AdapterConfig,
    HeadConfig,
    ModelConfig,
    SeldEncoder,
    SeldEncoderConfig,
    VisualEncoder,
    VisualEncoderConfig,
    build_model,
    freeze_seld_encoder,
    parameter_counts,
    read_outputs,
    seld_depth_units,
)
from avi_ros.taxonomy import Visibility

BATCH = 2
FRAMES, BINS = 50, 64  # 1 s of DCASE features
IMAGE = 64


def tiny_config(variant: str = "full", **overrides) -> ModelConfig:
    parts = {
        "visual": VisualEncoderConfig("resnet18", IMAGE),
        "adapter": AdapterConfig(d_model=32, heads=4),
        "head": HeadConfig(hidden=32),
    }
    return ModelConfig(num_classes=5, variant=variant, **{**parts, **overrides})


def inputs(batch: int = BATCH) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (
        torch.randn(batch, 7, FRAMES, BINS, generator=generator),
        torch.randn(batch, 5, IMAGE, IMAGE, generator=generator),
        torch.rand(batch, generator=generator),
        torch.tensor([int(Visibility.VISIBLE), int(Visibility.OCCLUDED)][:batch]),
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


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_and_runs(variant: str) -> None:
    model = build_model(tiny_config(variant)).eval()
    features, visual, level, visibility = inputs()
    with torch.no_grad():
        out = model(features, visual, level, visibility)
    assert out.class_logits.shape == (BATCH, 5)
    assert out.risk_logits.shape == (BATCH, 4) and out.action_logits.shape == (BATCH, 6)
    assert torch.allclose(out.direction.norm(dim=-1), torch.ones(BATCH), atol=1e-5)
    assert (out.distance > 0).all()
    confidence = read_outputs(out).confidence
    assert ((confidence > 0) & (confidence < 1)).all()
    assert torch.allclose(out.audio_weight + out.visual_weight, torch.ones(BATCH), atol=1e-6)
    assert out.accdoa is None
    expected_weights = {"audio_only": (1.0, 0.0), "visual_only": (0.0, 1.0), "concat": (0.5, 0.5)}
    if variant in expected_weights:
        assert out.audio_weight.tolist() == [expected_weights[variant][0]] * BATCH
        assert out.visual_weight.tolist() == [expected_weights[variant][1]] * BATCH
    has_audio, has_visual = model.audio_encoder is not None, model.visual_encoder is not None
    assert (has_audio, has_visual) == (variant != "visual_only", variant != "audio_only")


def test_fused_embedding_is_1024_dims_at_the_default_width() -> None:
    model = build_model(ModelConfig(visual=VisualEncoderConfig("resnet18", IMAGE)))
    assert model.adapter.out_dim == 1024
    assert model.head.trunk[0].in_features == 1024


def test_reliability_weights_follow_the_occlusion_level() -> None:
    model = build_model(tiny_config()).eval()
    features, visual, _, _ = inputs()
    with torch.no_grad():
        clear = model(features, visual, torch.zeros(BATCH))
        blocked = model(features, visual, torch.ones(BATCH))
    assert not torch.allclose(clear.audio_weight, blocked.audio_weight)


def test_oracle_needs_and_uses_the_true_visibility() -> None:
    model = build_model(tiny_config("oracle")).eval()
    features, visual, level, _ = inputs()
    with pytest.raises(ValueError, match="visibility"):
        model(features, visual, level)
    with torch.no_grad():
        seen = model(features, visual, level, torch.full((BATCH,), int(Visibility.VISIBLE)))
        hidden = model(features, visual, level, torch.full((BATCH,), int(Visibility.OCCLUDED)))
    assert not torch.allclose(seen.audio_weight, hidden.audio_weight)


def test_accdoa_output_when_the_head_is_enabled() -> None:
    model = build_model(tiny_config(audio=SeldEncoderConfig(accdoa_classes=13))).eval()
    features, visual, level, _ = inputs()
    with torch.no_grad():
        out = model(features, visual, level)
    assert out.accdoa.shape == (BATCH, FRAMES // 5, 3, 3, 13)


def test_attention_and_mean_pooling_both_work() -> None:
    features, visual, level, _ = inputs()
    for pooling in ("attention", "mean"):
        config = tiny_config(adapter=AdapterConfig(d_model=32, heads=4, pooling=pooling))
        model = build_model(config).eval()
        assert (model.adapter.audio_pool.score is None) == (pooling == "mean")
        assert model(features, visual, level).class_logits.shape == (BATCH, 5)


def test_frozen_encoder_gets_no_gradient_and_the_rest_does() -> None:
    model = build_model(tiny_config()).train()
    assert freeze_seld_encoder(model.audio_encoder, 0.0) == []
    features, visual, level, _ = inputs()
    out = model(features, visual, level)
    outputs = (
        out.class_logits,
        out.direction,
        out.distance,
        out.confidence_logit,
        out.risk_logits,
        out.action_logits,
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
    model = build_model(tiny_config()).train()
    freeze_seld_encoder(model.audio_encoder, 2 / 7)
    features, visual, level, _ = inputs()
    model(features, visual, level).class_logits.sum().backward()
    encoder = model.audio_encoder
    assert encoder.mhsa_block_list[0].in_proj_weight.grad.abs().sum() > 0
    assert encoder.gru.weight_ih_l1.grad is None
    assert encoder.conv_block_list[0].conv.weight.grad is None


def test_frozen_batchnorm_keeps_its_statistics_in_training() -> None:
    model = build_model(tiny_config())
    freeze_seld_encoder(model.audio_encoder, 0.0)
    model.train()
    bn = model.audio_encoder.conv_block_list[0].bn
    assert not bn.training and model.visual_encoder.bn1.training
    before = bn.running_mean.clone()
    features, visual, level, _ = inputs()
    model(features * 5 + 3, visual, level)
    assert torch.equal(bn.running_mean, before)


def test_parameter_counts_report_trainable_parts() -> None:
    model = build_model(tiny_config())
    freeze_seld_encoder(model.audio_encoder, 0.0)
    counts = parameter_counts(model)
    assert counts["audio_encoder"] == {"trainable": 0, "total": 705_536}  # 737,141 minus the head
    assert counts["all"]["total"] == sum(
        counts[p]["total"] for p in ("audio_encoder", "visual_encoder", "adapter", "head")
    )
    assert counts["all"]["trainable"] == counts["all"]["total"] - 705_536


def test_model_config_round_trip_and_errors() -> None:
    config = tiny_config("concat", audio=SeldEncoderConfig(accdoa_classes=13))
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="variant"):
        ModelConfig(variant="late_fusion")
    with pytest.raises(ValueError, match="arch"):
        ModelConfig.from_dict({"visual": {"arch": "vgg16"}})
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({"visual": {"arch": "resnet18", "depth": 3}})
