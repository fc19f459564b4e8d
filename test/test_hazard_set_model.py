"""The model with K hazard slots (K = 1: one hazard per frame): shapes of every variant, per-hazard
steering and weights, DCASE weights, checkpoints, freezing and the numpy reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_helpers import dcase_baseline_state_dict
from scipy.signal import butter, sosfilt

from avi_ros.audio import foa_encoding_gains
from avi_ros.checkpoint import load_checkpoint, save_checkpoint
from avi_ros.data.acoustics import diffuse_noise
from avi_ros.features import FeatureConfig, FeatureExtractor
from avi_ros.geometry import direction_to_unit
from avi_ros.models import (
    VARIANTS,
    AdapterConfig,
    HazardSetArrays,
    HazardSetModel,
    HeadConfig,
    ModelConfig,
    SeldEncoderConfig,
    VisualEncoderConfig,
    build_model,
    freeze_seld_encoder,
    load_pretrained,
    parameter_counts,
    read_set_outputs,
    steering_window,
)
from avi_ros.models.intensity_direction import (
    IntensityDirection,
    corrected_direction,
    intensity_vectors,
    set_mode_steps,
)
from avi_ros.taxonomy import Visibility, default_taxonomy

TAXONOMY = default_taxonomy()
BATCH, SLOTS, GRID, IMAGE = 2, 3, 4, 64
LEFT, RIGHT = [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]  # microphone frame: y left


def tiny_config(variant: str = "full", **overrides) -> ModelConfig:
    parts = {
        "visual": VisualEncoderConfig("resnet18", IMAGE),
        "adapter": AdapterConfig(d_model=32, heads=4),
        "head": HeadConfig(hidden=32),
        "hazard_slots": SLOTS,
        "view_grid": GRID,
    }
    return ModelConfig(num_classes=TAXONOMY.num_classes, variant=variant, **{**parts, **overrides})


def view_tokens(blocked_left: float = 1.0, blocked_right: float = 0.0) -> torch.Tensor:
    """[BATCH, GRID^2, 6]: a camera looking along +x (rays fanning +-60 deg in y and z); the left
    half (y > 0) has ``blocked_left``, the right half ``blocked_right``, blocked at 0.4 of the range."""
    angles = torch.linspace(-1.0, 1.0, GRID)
    y = -angles[None, :].expand(GRID, GRID)  # columns left to right = y from + to -
    z = -angles[:, None].expand(GRID, GRID)  # rows top to bottom = z from + to -
    rays = F.normalize(torch.stack([torch.ones_like(y), y, z], dim=-1), dim=-1).reshape(-1, 3)
    blocked = torch.where(rays[:, 1] > 0, blocked_left, blocked_right)
    tokens = torch.cat([rays, blocked[:, None], 0.4 * (blocked[:, None] > 0), torch.zeros(GRID * GRID, 1)], 1)
    return tokens.expand(BATCH, -1, -1).clone()


def inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (
        torch.randn(BATCH, 7, 50, 64, generator=generator),
        torch.randn(BATCH, 5, IMAGE, IMAGE, generator=generator),
        view_tokens(),
    )


@pytest.mark.parametrize("slots", [1, SLOTS])
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_gives_a_set_of_hazards(variant: str, slots: int) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(variant, hazard_slots=slots))
    assert isinstance(model, HazardSetModel)
    out = model(*inputs())
    n = TAXONOMY.num_classes
    assert out.class_logits.shape == (BATCH, slots, n)
    assert out.direction.shape == (BATCH, slots, 3)
    torch.testing.assert_close(out.direction.norm(dim=-1), torch.ones(BATCH, slots))
    for name in ("distance", "confidence_logit", "audio_weight", "visual_weight", "hazard_occlusion"):
        assert getattr(out, name).shape == (BATCH, slots), name
    assert out.risk_logits.shape == (BATCH, slots, 4) and out.action_logits.shape == (BATCH, slots, 6)
    assert out.visibility_logits.shape == (BATCH, slots, len(Visibility))
    assert (out.distance > 0).all()
    torch.testing.assert_close(out.audio_weight + out.visual_weight, torch.ones(BATCH, slots))
    expected_audio = {"audio_only": 1.0, "visual_only": 0.0, "concat": 0.5}.get(variant)
    if expected_audio is None:  # steered: learned per hazard, read from the view
        assert ((out.hazard_occlusion >= 0) & (out.hazard_occlusion <= 1)).all()
        assert out.audio_direction.shape == (BATCH, slots, 3)
    else:
        assert (out.audio_weight == expected_audio).all()
        assert out.hazard_occlusion.isnan().all() and out.audio_direction is None


@pytest.mark.parametrize("variant", ["full", "concat", "visual_only"])
def test_every_parameter_gets_a_gradient_from_the_head_outputs(variant: str) -> None:
    """DistributedDataParallel requires it: no parameter may sit outside the loss's graph."""
    model = build_model(tiny_config(variant))
    out = model(*inputs())
    heads = ("class_logits", "direction", "distance", "confidence_logit", "risk_logits", "action_logits")
    loss = sum(getattr(out, name).sum() for name in (*heads, "visibility_logits"))
    loss.backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("variant", ["full", "oracle", "visual_only"])
def test_view_token_variants_refuse_to_run_without_them(variant: str) -> None:
    features, visual, _ = inputs()
    with pytest.raises(ValueError, match="view tokens"):
        build_model(tiny_config(variant))(features, visual, None)


def test_the_steering_window_reads_the_blocked_fraction_in_its_own_direction() -> None:
    directions = torch.tensor([[LEFT, RIGHT, [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]]).expand(BATCH, -1, -1)
    window, cues = steering_window(directions, view_tokens(), kappa=10.0)
    torch.testing.assert_close(window.sum(-1), torch.ones(BATCH, 4))
    blocked, near_depth, hazard_visible, in_view = cues.unbind(-1)
    assert (blocked[:, 0] > 0.9).all() and (blocked[:, 1] < 0.1).all()  # left blocked, right clear
    assert (near_depth[:, 0] > near_depth[:, 1]).all()
    assert (hazard_visible == 0).all()
    assert (in_view[:, 2] > 0.9).all() and (in_view[:, 3] < 0).all()  # ahead in view, behind not


def test_each_slot_of_the_full_model_reads_the_occlusion_where_it_hears_its_hazard() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    heard = model.adapter.heard_direction
    features, visual, tokens = inputs()
    readings = {}
    for side, direction in (("left", LEFT), ("right", RIGHT)):
        with torch.no_grad():
            heard.weight.zero_()
            heard.bias.copy_(torch.tensor(direction))
            readings[side] = model(features, visual, tokens)
    assert (readings["left"].hazard_occlusion > 0.9).all()
    assert (readings["right"].hazard_occlusion < 0.1).all()
    torch.testing.assert_close(readings["left"].audio_direction[0, 0], torch.tensor(LEFT))
    # The reliability network sees that difference, per hazard.
    assert not torch.allclose(readings["left"].audio_weight, readings["right"].audio_weight)


def test_dcase_weights_load_into_the_set_models_audio_encoder(tmp_path) -> None:
    path = tmp_path / "dcase_baseline.pt"
    state = dcase_baseline_state_dict()
    torch.save(state, path)
    model = build_model(tiny_config(audio=SeldEncoderConfig(accdoa_classes=13)))
    load_pretrained(model, dcase_checkpoint=path)
    own = model.audio_encoder.state_dict()
    for key, value in state.items():
        assert torch.equal(own[key], value), key
    assert model(*inputs()).accdoa.shape == (BATCH, 10, 3, 3, 13)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config())
    model.set_normalization(torch.randn(7, 64), torch.rand(7, 64) + 0.5)
    model.train()
    with torch.no_grad():
        model(*inputs())  # moves the BatchNorm statistics away from their initial values
    model.eval()
    directory = save_checkpoint(tmp_path / "ckpt", model, FeatureConfig(), TAXONOMY)
    loaded, metadata = load_checkpoint(directory)
    assert isinstance(loaded, HazardSetModel) and metadata.model_config == model.config
    with torch.no_grad():
        before, after = model(*inputs()), loaded(*inputs())
    for name, value in vars(before).items():
        if value is not None:
            torch.testing.assert_close(getattr(after, name), value, rtol=0, atol=0, equal_nan=True)


def test_freezing_and_parameter_counts_work_on_the_set_model() -> None:
    model = build_model(tiny_config())
    freeze_seld_encoder(model.audio_encoder, 0.0)
    model.train()
    assert not model.audio_encoder.conv_block_list[0].bn.training
    counts = parameter_counts(model)
    assert counts["audio_encoder"]["trainable"] == 0 and counts["adapter"]["trainable"] > 0
    assert (
        sum(counts[part]["total"] for part in ("audio_encoder", "visual_encoder", "adapter", "head"))
        == (counts["all"]["total"])
    )


def test_hazard_slots_config_round_trip_and_at_least_one_slot() -> None:
    config = tiny_config(hazard_slots=1)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig().hazard_slots == 3  # the package's model: as many as the scenes' hazard labels
    for slots in (0, -1):
        with pytest.raises(ValueError, match="hazard_slots"):
            tiny_config(hazard_slots=slots)


def test_set_outputs_read_into_numpy_per_slot() -> None:
    model = build_model(tiny_config()).eval()
    with torch.no_grad():
        out = model(*inputs())
    arrays = read_set_outputs(out)
    assert len(arrays) == BATCH and arrays.num_slots == SLOTS
    assert arrays.class_id.shape == arrays.visibility.shape == (BATCH, SLOTS)
    np.testing.assert_allclose(arrays.class_probabilities.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(arrays.visibility, out.visibility_logits.argmax(-1).numpy())
    slot = arrays.slot(1)
    np.testing.assert_array_equal(slot.class_id, arrays.class_id[:, 1])
    np.testing.assert_array_equal(slot.confidence, arrays.confidence[:, 1])
    np.testing.assert_array_equal(slot.audio_weight, arrays.audio_weight[:, 1])
    both = HazardSetArrays.concatenate([arrays, arrays])
    assert len(both) == 2 * BATCH and both.hazard_occlusion.shape == (2 * BATCH, SLOTS)


# --- directions from the intensity vector (ModelConfig.direction = "intensity") -----------------


def plane_wave_features(azimuth_deg: float, elevation_deg: float = 0.0, seed: int = 0) -> torch.Tensor:
    """dcase features [1, 7, T, F] of white noise from one direction (free field, ACN/SN3D)."""
    config = FeatureConfig()
    mono = np.random.default_rng(seed).standard_normal(config.window_samples) * 0.1
    gains = foa_encoding_gains(np.radians(azimuth_deg), np.radians(elevation_deg))
    audio = torch.from_numpy((gains[:, None] * mono[None, :]).astype(np.float32))[None]
    return FeatureExtractor(config)(audio)


@pytest.mark.parametrize("variant", ["full", "audio_only", "concat", "oracle"])
def test_intensity_direction_points_at_a_plane_wave_before_any_training(variant: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(variant, direction="intensity")).eval()
    for azimuth in (-135.0, -90.0, 0.0, 45.0, 90.0, 180.0):
        features = plane_wave_features(azimuth, 20.0)
        with torch.no_grad():
            out = model(features, torch.randn(1, 5, IMAGE, IMAGE), view_tokens()[:1])
        expected = torch.from_numpy(direction_to_unit(np.radians(azimuth), np.radians(20.0))).float()
        error = torch.rad2deg(torch.arccos((out.direction[0] @ expected).clamp(-1, 1)))
        assert float(error.max()) < 2.0, f"{variant} at {azimuth} deg: slot errors {error.tolist()}"
        # The physics vector's length is the coherence of the masked bins: 1 for a plane wave.
        assert torch.allclose(out.physics_direction[0].norm(dim=-1), torch.ones(SLOTS), atol=0.02)
        if out.audio_direction is not None:  # the look is steered by physics too
            steer_error = torch.rad2deg(torch.arccos((out.audio_direction[0] @ expected).clamp(-1, 1)))
            assert float(steer_error.max()) < 2.0


def test_the_physics_direction_weights_bins_by_energy_and_directness() -> None:
    """A plane wave that sounds for a quarter of the window in diffuse noise, read by a mask
    spread evenly over every bin (what an untrained slot does): the energy-and-directness
    weighting keeps the direction on the source; the unweighted mean of the same bins (the old
    physics, which missed plane waves by 13 deg in the direction benchmark) wanders off it."""
    config = FeatureConfig()
    rng = np.random.default_rng(3)
    mono = np.zeros(config.window_samples)
    mono[: config.window_samples // 4] = rng.standard_normal(config.window_samples // 4) * 0.1
    gains = foa_encoding_gains(np.radians(150.0), 0.0)
    noise = diffuse_noise(rng, config.window_samples, config.sample_rate, 1.0) * 0.01
    audio = torch.from_numpy((gains[:, None] * mono[None, :] + noise).astype(np.float32))[None]
    features = FeatureExtractor(config)(audio)
    module = IntensityDirection(features.shape[-1], slot_dim=8)
    with torch.no_grad():
        module.query.weight.zero_()  # every logit 0: the mask is uniform over the bins
        module.query.bias.zero_()
        physics, _, _ = module(features, features, torch.zeros(1, 1, 8))
    truth = torch.from_numpy(direction_to_unit(np.radians(150.0), 0.0)).float()
    weighted_error = torch.rad2deg(torch.arccos(F.normalize(physics[0, 0], dim=-1) @ truth))
    unweighted = F.normalize(intensity_vectors(features).mean(dim=1)[0], dim=-1)
    unweighted_error = torch.rad2deg(torch.arccos(unweighted @ truth))
    assert float(weighted_error) < 3.0, float(weighted_error)
    assert float(unweighted_error) > 3 * float(weighted_error), (
        float(unweighted_error),
        float(weighted_error),
    )


def test_learned_directions_do_not_point_at_a_plane_wave_untrained() -> None:
    """The control of the test above: the head alone has no idea where a sound is before training."""
    torch.manual_seed(0)
    model = build_model(tiny_config("audio_only")).eval()
    errors = []
    for azimuth in (-135.0, -90.0, 0.0, 45.0, 90.0, 180.0):
        with torch.no_grad():
            out = model(plane_wave_features(azimuth), None, None)
        expected = torch.from_numpy(direction_to_unit(np.radians(azimuth), 0.0)).float()
        errors.append(float(torch.rad2deg(torch.arccos((out.direction[0, 0] @ expected).clamp(-1, 1)))))
    assert np.median(errors) > 20.0


def test_intensity_masks_train_and_separate_two_sources() -> None:
    """Two sources in disjoint frequency bands: a few steps on the direction loss teach the slot
    masks to pick one band each, so each slot points at its own source (physics alone, averaging
    every bin, points between them)."""
    torch.manual_seed(0)
    config = FeatureConfig()
    rng = np.random.default_rng(3)
    samples = config.window_samples
    low = sosfilt(
        butter(8, [150, 900], "bandpass", fs=config.sample_rate, output="sos"), rng.standard_normal(samples)
    )
    high = sosfilt(
        butter(8, [4000, 9000], "bandpass", fs=config.sample_rate, output="sos"), rng.standard_normal(samples)
    )
    directions = [(60.0, 0.0), (-100.0, 0.0)]
    foa = sum(
        foa_encoding_gains(np.radians(az), np.radians(el))[:, None] * (sig / np.std(sig) * 0.1)[None, :]
        for (az, el), sig in zip(directions, (low, high), strict=True)
    )
    features = FeatureExtractor(config)(torch.from_numpy(foa.astype(np.float32))[None])
    target = torch.stack(
        [torch.from_numpy(direction_to_unit(np.radians(a), np.radians(e))) for a, e in directions]
    ).float()
    model = build_model(tiny_config("audio_only", direction="intensity", hazard_slots=2))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        out = model(features, None, None)
        loss = (out.direction[0] - target).norm(dim=-1).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        physics = F.normalize(model(features, None, None).physics_direction[0], dim=-1)
    errors = torch.rad2deg(torch.arccos((physics * target).sum(-1).clamp(-1, 1)))
    assert float(errors.max()) < 15.0, f"mask-weighted intensity errors {errors.tolist()}"


def two_band_features(directions: list[tuple[float, float]], levels: tuple[float, float]) -> torch.Tensor:
    """dcase features [1, 7, T, F] of two noises, 150-900 Hz and 4-9 kHz, from ``directions``
    (azimuth, elevation) [deg], at RMS ``levels``."""
    config = FeatureConfig()
    rng = np.random.default_rng(3)
    bands = ([150, 900], [4000, 9000])
    signals = [
        sosfilt(
            butter(8, band, "bandpass", fs=config.sample_rate, output="sos"),
            rng.standard_normal(config.window_samples),
        )
        for band in bands
    ]
    foa = sum(
        foa_encoding_gains(np.radians(az), np.radians(el))[:, None] * (sig / np.std(sig) * level)[None, :]
        for (az, el), sig, level in zip(directions, signals, levels, strict=True)
    )
    return FeatureExtractor(config)(torch.from_numpy(foa.astype(np.float32))[None])


def test_mode_seeking_reads_one_source_where_the_mean_lies_between_two() -> None:
    """A mask spread over two sources (an untrained slot): the weighted mean lies between them; in
    eval() the mode-seeking steps move it onto one source and keep its length (the coherence);
    with 0 steps, or in training, the module reads the mean. Silence stays a zero vector."""
    directions = [(30.0, 0.0), (110.0, 0.0)]
    features = two_band_features(directions, (0.05, 0.1))
    module = IntensityDirection(features.shape[-1], slot_dim=8).eval()
    slots = torch.zeros(1, 1, 8)
    with torch.no_grad():
        module.query.weight.zero_()  # a uniform mask over every bin
        module.query.bias.zero_()
        mode, _, _ = module(features, features, slots)
        trained_reading, _, _ = module.train()(features, features, slots)
        assert set_mode_steps(module.eval(), 0) == 1
        mean, _, _ = module(features, features, slots)
    sources = torch.stack(
        [torch.from_numpy(direction_to_unit(np.radians(a), np.radians(e))) for a, e in directions]
    )

    def nearest_source_deg(vector: torch.Tensor) -> float:
        cosines = sources.float() @ F.normalize(vector, dim=-1)
        return float(torch.rad2deg(torch.arccos(cosines.max().clamp(-1, 1))))

    assert nearest_source_deg(mean[0, 0]) > 20.0, nearest_source_deg(mean[0, 0])
    assert nearest_source_deg(mode[0, 0]) < 3.0, nearest_source_deg(mode[0, 0])
    assert torch.allclose(mode.norm(dim=-1), mean.norm(dim=-1))
    assert torch.allclose(trained_reading, mean)
    silence = torch.zeros_like(features)
    set_mode_steps(module, 3)
    with torch.no_grad():
        quiet, _, _ = module(silence, silence, slots)
    assert torch.equal(quiet, torch.zeros_like(quiet))
    with pytest.raises(ValueError, match="steps"):
        set_mode_steps(module, -1)


def test_intensity_direction_config_errors() -> None:
    with pytest.raises(ValueError, match=r"model\.direction"):
        tiny_config(direction="physics")
    with pytest.raises(ValueError, match="hears"):
        tiny_config("visual_only", direction="intensity")
    with pytest.raises(ValueError, match="intensity-vector channels"):
        tiny_config(direction="intensity").check_features(FeatureConfig(kind="amp_phasediff"))
    with pytest.raises(ValueError, match="direction_correction"):
        tiny_config(direction="learned", direction_correction=False)


@pytest.mark.parametrize("variant", ["full", "audio_only"])
def test_without_the_correction_the_direction_is_the_physics_alone(variant: str) -> None:
    """``direction_correction: false``: no learned direction layer anywhere (head, steering), every
    parameter still trains, and each slot's direction is its mask-weighted intensity vector."""
    torch.manual_seed(0)
    model = build_model(tiny_config(variant, direction="intensity", direction_correction=False))
    assert model.head.direction is None and getattr(model.adapter, "heard_direction", None) is None
    features = plane_wave_features(-120.0, 10.0)
    out = model(features, torch.randn(1, 5, IMAGE, IMAGE), view_tokens()[:1])
    torch.testing.assert_close(out.direction, F.normalize(out.physics_direction, dim=-1), atol=1e-5, rtol=0)
    heads = ("class_logits", "direction", "distance", "confidence_logit", "risk_logits", "action_logits")
    sum(getattr(out, name).sum() for name in (*heads, "visibility_logits")).backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []  # DDP needs it


def test_silence_gives_a_defined_direction_with_intensity_directions() -> None:
    """Silent audio has no intensity vector; a fresh intensity model (zero correction) must still
    give unit directions (straight ahead), so the pipeline's warm-up on silence does not fail."""
    torch.manual_seed(0)
    model = build_model(tiny_config("audio_only", direction="intensity")).eval()
    silence = FeatureExtractor(FeatureConfig())(torch.zeros(1, 4, FeatureConfig().window_samples))
    with torch.no_grad():
        out = model(silence, None, None)
    assert torch.allclose(out.direction[0], torch.tensor([1.0, 0.0, 0.0]).expand(SLOTS, 3), atol=1e-6)


def test_a_trained_correction_cannot_pull_a_plane_wave_off_its_direction() -> None:
    """The learned correction is gated by the incoherence of the masked bins: a plane wave (coherent
    everywhere) keeps the physics direction however large the correction has grown, while an
    incoherent input (two sources) lets it act."""
    torch.manual_seed(0)
    model = build_model(tiny_config("full", direction="intensity")).eval()
    with torch.no_grad():
        model.head.direction.bias.copy_(torch.tensor([0.0, 50.0, 0.0]))  # a huge pull to the left
        model.adapter.heard_direction.bias.copy_(torch.tensor([0.0, 50.0, 0.0]))
        out = model(plane_wave_features(-120.0), torch.randn(1, 5, IMAGE, IMAGE), view_tokens()[:1])
    expected = torch.from_numpy(direction_to_unit(np.radians(-120.0), 0.0)).float()
    assert float(torch.rad2deg(torch.arccos((out.direction[0] @ expected).clamp(-1, 1))).max()) < 2.0
    assert float(torch.rad2deg(torch.arccos((out.audio_direction[0] @ expected).clamp(-1, 1))).max()) < 2.0
    physics = torch.tensor([[0.3, 0.0, 0.0]])
    corrected = corrected_direction(physics, torch.tensor([[0.0, 50.0, 0.0]]))
    assert torch.allclose(corrected, torch.tensor([[0.3, 0.7, 0.0]]), atol=1e-4)
