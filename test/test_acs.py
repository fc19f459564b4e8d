"""FOA channel-swap augmentation: exact rotations/reflections of the sound field with their labels,
the same transform on precomputed features, and the training rule that keeps the camera consistent."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data.acoustics import AcousticsConfig, ShoeboxRoom, convolve_foa, foa_rir
from avi_ros.data.acs import (
    ACS_TRANSFORMS,
    AcsTransform,
    transform_features,
    transform_foa,
    transform_vectors,
)
from avi_ros.data.layout import MicPose, SceneLayout
from avi_ros.data.scene import SceneConfig
from avi_ros.features import FeatureConfig, FeatureExtractor
from avi_ros.geometry import angular_error_rad, direction_to_unit, unit_to_direction
from avi_ros.taxonomy import RiskLevel, Visibility, default_taxonomy
from training.augment import AcsAugmentation, acs_for_run
from training.config import config_from_dict, load_config
from training.data import InputStore
from training.trainer import Trainer
from training.typed_config import ConfigError


def _intensity_direction(foa: np.ndarray) -> np.ndarray:
    w, y, z, x = foa
    return np.array([np.sum(w * x), np.sum(w * y), np.sum(w * z)])


def test_the_16_transforms_are_distinct_rotations_and_reflections():
    matrices = [t.matrix for t in ACS_TRANSFORMS]
    assert len({m.tobytes() for m in matrices}) == 16
    assert ACS_TRANSFORMS[0].is_identity and np.array_equal(matrices[0], np.eye(3))
    for t, m in zip(ACS_TRANSFORMS, matrices, strict=True):
        np.testing.assert_allclose(m @ m.T, np.eye(3))
        assert m[2, 2] == (-1 if t.flip_z else 1)  # z stays vertical
    assert all(not t.flip_z for t in ACS_TRANSFORMS[:8])
    # The (azimuth, elevation) rule agrees with the matrix.
    az, el = 0.7, -0.3
    for t in ACS_TRANSFORMS:
        new_az, new_el = t.direction(az, el)
        np.testing.assert_allclose(
            direction_to_unit(new_az, new_el), t.matrix @ direction_to_unit(az, el), atol=1e-12
        )


@pytest.mark.parametrize("reverberant", [False, True])
def test_rotated_audio_points_at_the_transformed_label(reverberant):
    """A source rendered at a known direction; after each transform the intensity vector points at
    the transformed label (direct path: within 1 degree; a reverberant room: within 10)."""
    room = ShoeboxRoom((7.0, 6.0, 3.0), (0.6,) * 6)
    mic = MicPose((3.0, 2.5, 1.2), math.radians(20.0))
    layout = SceneLayout(room)
    source = np.array([5.0, 4.2, 1.9])
    label = layout.label(mic, source)
    rng = np.random.default_rng(0)
    acoustics = AcousticsConfig(direct_path_only=not reverberant, max_order=3)
    foa = convolve_foa(
        rng.standard_normal(SAMPLE_RATE),
        foa_rir(room, source, np.asarray(mic.position_m), mic.rotation, acoustics, rng),
    )
    tolerance = 10.0 if reverberant else 1.0
    for t in ACS_TRANSFORMS:
        az, el = t.direction(label.azimuth, label.elevation)
        error = angular_error_rad(_intensity_direction(transform_foa(foa, t)), direction_to_unit(az, el))
        assert math.degrees(float(error)) < tolerance, t
    np.testing.assert_array_equal(transform_foa(foa, ACS_TRANSFORMS[0]), foa)
    assert transform_foa(foa, ACS_TRANSFORMS[5])[0] is not foa[0]  # a copy, never in place


@pytest.mark.parametrize("kind", ["dcase", "amp_phasediff"])
def test_feature_transform_equals_features_of_the_transformed_audio(kind):
    config = FeatureConfig(kind=kind, window_seconds=0.2)
    extractor = FeatureExtractor(config)
    rng = np.random.default_rng(1)
    gains = np.array([1.0, 0.4, -0.3, 0.7])[:, None]
    audio = gains * rng.standard_normal((1, config.window_samples)) + 0.1 * rng.standard_normal(
        (4, config.window_samples)
    )
    audio = torch.from_numpy(audio[None].astype(np.float32))
    features = extractor(audio)
    for t in ACS_TRANSFORMS[1:]:
        expected = extractor(transform_foa(audio, t))
        got = transform_features(features, t, kind)
        difference = (got - expected).abs()
        if kind == "amp_phasediff":  # phases: compare on the circle
            difference[:, 4:] = torch.remainder(difference[:, 4:] + math.pi, 2 * math.pi) - math.pi
            difference = difference.abs()
        assert float(difference.max()) < 1e-3, t
    with pytest.raises(ValueError, match="feature kind"):
        transform_features(features, ACS_TRANSFORMS[1], "mfcc")


def test_vectors_transform_along_the_requested_axis():
    target = np.zeros((2, 3, 3, 4))  # [frames, tracks, xyz, classes]
    target[:, 0, :, 1] = direction_to_unit(0.5, 0.2)
    t = AcsTransform(1, True, False)
    out = transform_vectors(target, t, axis=-2)
    np.testing.assert_allclose(
        out[:, 0, :, 1], np.broadcast_to(t.matrix @ direction_to_unit(0.5, 0.2), (2, 3))
    )
    assert not out[:, 1:].any() and not out[..., 0].any()


def _batch(n: int = 6) -> dict[str, torch.Tensor]:
    """Samples: class 0; visible; occluded; out of view behind; out of view at the side; visible."""
    tax = default_taxonomy()
    rng = np.random.default_rng(2)
    azimuths = [0.0, 0.2, -0.3, 3.0, 1.4, -0.1]
    class_ids = [0, 3, 5, 1, 7, 2]
    visibility = [
        Visibility.OUT_OF_VIEW,
        Visibility.VISIBLE,
        Visibility.OCCLUDED,
        Visibility.OUT_OF_VIEW,
        Visibility.OUT_OF_VIEW,
        Visibility.VISIBLE,
    ]
    direction = np.stack(
        [
            np.zeros(3) if c == 0 else direction_to_unit(a, 0.1)
            for a, c in zip(azimuths, class_ids, strict=True)
        ]
    )
    risk = [int(tax.risk_level(c, 2.0)) for c in class_ids]
    return {
        "features": torch.from_numpy(rng.standard_normal((n, 7, 5, 8)).astype(np.float32)),
        "visual": torch.from_numpy(rng.standard_normal((n, 5, 6, 8)).astype(np.float32)),
        "occlusion_input": torch.zeros(n),
        "class_id": torch.tensor(class_ids),
        "direction": torch.from_numpy(direction.astype(np.float32)),
        "distance": torch.full((n,), 3.0),
        "risk": torch.tensor(risk),
        "action": torch.tensor(
            [int(tax.recommended_action(RiskLevel(r), a)) for r, a in zip(risk, azimuths, strict=True)]
        ),
        "visibility": torch.tensor([int(v) for v in visibility]),
    }


def _augmentation(transforms: int = 16) -> AcsAugmentation:
    cfg = SceneConfig()
    return AcsAugmentation(transforms, "dcase", 0, cfg.intrinsics, cfg.extrinsic, default_taxonomy())


def _which(original: torch.Tensor, augmented: torch.Tensor) -> list[AcsTransform]:
    return [t for t in ACS_TRANSFORMS if torch.allclose(transform_features(original, t, "dcase"), augmented)]


def test_training_augmentation_keeps_the_camera_view_consistent():
    augment = _augmentation()
    tax = default_taxonomy()
    batch = _batch()
    kept = {key: value.clone() for key, value in batch.items()}
    seen: dict[int, set] = {row: set() for row in range(6)}
    for trial in range(60):
        out = augment(batch, [trial, trial + 100, 7, 8, 9, 10])
        for row in range(6):
            (t,) = _which(batch["features"][row], out["features"][row])
            seen[row].add(t)
            flipped = torch.equal(out["visual"][row], batch["visual"][row].flip(-1))
            assert flipped or torch.equal(out["visual"][row], batch["visual"][row])
            new_direction = out["direction"][row].numpy()
            if row == 0:  # class 0: any transform, no direction to move
                assert not new_direction.any() and not flipped
                continue
            np.testing.assert_allclose(new_direction, t.matrix @ batch["direction"][row].numpy(), atol=1e-6)
            azimuth = float(unit_to_direction(new_direction)[0])
            assert int(out["action"][row]) == int(
                tax.recommended_action(RiskLevel(int(batch["risk"][row])), azimuth)
            )
            if int(batch["visibility"][row]) == Visibility.OUT_OF_VIEW:
                assert not flipped and (t.is_identity or not augment.in_view(new_direction, 3.0))
            else:  # seen by the camera: the identity, or the mirror with the mirrored image
                assert t.is_identity or (t == AcsTransform(0, True, False) and flipped)
                assert flipped == (not t.is_identity)
    assert len(seen[0]) >= 10  # class 0 takes all kinds of transform
    assert len(seen[1]) == 2 and len(seen[3]) >= 4  # visible: identity + mirror; behind: many
    for key, value in kept.items():  # the stored batch is never changed
        assert torch.equal(batch[key], value), key
    again = augment(batch, [0, 100, 7, 8, 9, 10])
    first = augment(batch, [0, 100, 7, 8, 9, 10])
    assert all(torch.equal(again[k], first[k]) for k in again)  # a pure function of the indices


def test_audio_only_batches_take_any_transform_and_the_targets_follow():
    augment = _augmentation(8)
    rng = np.random.default_rng(3)
    features = torch.from_numpy(rng.standard_normal((4, 7, 5, 8)).astype(np.float32))
    target = np.zeros((4, 2, 3, 3, 9), dtype=np.float32)
    target[:, :, 0, :, 4] = direction_to_unit(0.4, 0.3)
    batch = {"features": features, "accdoa_target": torch.from_numpy(target)}
    used = set()
    for trial in range(20):
        out = augment(batch, [trial, 1, 2, 3])
        for row in range(4):
            (t,) = _which(features[row], out["features"][row])
            assert not t.flip_z  # 8 transforms: the elevation is kept
            used.add(t)
            expected = transform_vectors(batch["accdoa_target"][row], t, axis=-2)
            assert torch.allclose(out["accdoa_target"][row], expected)
    assert len(used) == 8


def test_store_applies_the_augmentation_only_where_it_is_attached():
    batch = _batch()
    store = InputStore(batch)
    augmented = store.with_augmentation(_augmentation())
    indices = list(range(6))
    assert all(torch.equal(store.batch(indices)[k], batch[k]) for k in batch)
    changed = [
        not torch.equal(augmented.batch([i] * 6)["features"][0], batch["features"][i]) for i in range(6)
    ]
    assert any(changed) and augmented.tensors is store.tensors


def test_config_selects_acs_and_names_a_bad_value():
    assert acs_for_run(config_from_dict({})) is None
    run = config_from_dict({"data": {"acs_transforms": 16, "scene": {"wide": {}}}})
    augment = acs_for_run(run)
    assert augment is not None and augment.transforms == 16
    assert augment.view_margin_rad > math.radians(10.0)  # widened by the wide profile's camera tilt
    with pytest.raises(ConfigError, match="acs_transforms"):
        config_from_dict({"data": {"acs_transforms": 5}})


@pytest.mark.slow
def test_tiny_run_with_wide_scenes_and_acs_trains(tmp_path):
    """The whole path: wide-profile shards, prepared inputs with the scene metadata, ACS in the loop."""
    tiny = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny.yaml"
    overrides = [
        f"output_dir={tmp_path}/{{name}}",
        f"data.cache_dir={tmp_path}/cache",
        "data.train.scenes=12",
        "data.val.scenes=6",
        "data.acs_transforms=16",
        "data.scene.wide={}",
        "stages.0.epochs=1",
        "stages.1.epochs=0",
        "calibration.enabled=false",
    ]
    config = load_config(tiny, overrides)
    assert config.data.scene.wide is not None
    result = Trainer(config, config.resolved_output_dir()).fit()
    assert result.status == "completed"
    store = InputStore.load(next((tmp_path / "cache").glob("scenes-seed11-*/prepared-*.safetensors")))
    assert {"rt60_s", "snr_db", "content"} <= set(store.tensors)
    assert bool((store.tensors["rt60_s"] > 0).all())
