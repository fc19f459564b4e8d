"""FOA channel-swap augmentation: exact rotations/reflections of the sound field with their labels,
the same transform on precomputed features, and the training rule that keeps the camera consistent."""

from __future__ import annotations

import math
from dataclasses import replace
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
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.features import FeatureConfig, FeatureExtractor
from avi_ros.geometry import angular_error_rad, direction_to_unit, unit_to_direction
from avi_ros.taxonomy import MAX_HAZARDS, RiskLevel, Visibility, default_taxonomy
from avi_ros.view_tokens import view_tokens_of
from training.augment import AcsAugmentation, acs_for_run, mirror_view_tokens
from training.config import ExperimentConfig, config_from_dict, load_config
from training.data import InputStore, build_store
from training.hazard_set_task import set_prepare_config
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


def _fit_with_acs(config_file: str, root: Path, overrides: list[str]) -> ExperimentConfig:
    """Train ``training/configs/<config_file>`` for one epoch with 16 ACS transforms, its run and
    cache under ``root`` and ``overrides`` on top; assert it completed and return its config."""
    path = Path(__file__).resolve().parents[1] / "training" / "configs" / config_file
    common = [f"output_dir={root}/{{name}}", f"data.cache_dir={root}/cache", "data.acs_transforms=16"]
    config = load_config(path, [*common, "stages.0.epochs=1", *overrides])
    assert Trainer(config, config.resolved_output_dir()).fit().status == "completed"
    return config


@pytest.mark.slow
def test_tiny_run_with_wide_scenes_and_acs_trains(tmp_path):
    """The whole path: wide-profile shards, prepared inputs with the scene metadata, ACS in the loop."""
    overrides = [
        "data.train.scenes=12",
        "data.val.scenes=6",
        "data.scene.wide={}",
        "stages.1.epochs=0",
        "calibration.enabled=false",
    ]
    config = _fit_with_acs("tiny.yaml", tmp_path, overrides)
    assert config.data.scene.wide is not None
    store = InputStore.open(next((tmp_path / "cache").glob("scenes-seed11-*/prepared-*")))
    assert {"rt60_s", "snr_db", "content"} <= set(store.tensors)
    assert bool((store.tensors["rt60_s"] > 0).all())


# --- the hazard-set task: several hazards per sample, view tokens ---------------------------------

_GRID = 6  # view tokens of a 48 x 36 image: 8 x 6 px cells, exact area means (mirror-exact)


def _plane_wave_features(direction: np.ndarray, seed: int) -> torch.Tensor:
    """dcase features [7, T, F] of noise arriving from the unit ``direction`` (ACN/SN3D W, Y, Z, X)."""
    config = FeatureConfig(kind="dcase", window_seconds=0.2)
    signal = np.random.default_rng(seed).standard_normal(config.window_samples)
    x, y, z = direction
    foa = np.stack([signal, y * signal, z * signal, x * signal])[None].astype(np.float32)
    return FeatureExtractor(config)(torch.from_numpy(foa))[0]


def _feature_direction(features: torch.Tensor) -> np.ndarray:
    """The mean intensity vector of dcase features (channels 4-6 are its Y, Z, X), as x, y, z."""
    iv_y, iv_z, iv_x = (float(features[c].mean()) for c in (4, 5, 6))
    return np.array([iv_x, iv_y, iv_z])


def _view_images(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A left-right asymmetric occluder mask, depth and hazard mask [36, 48]."""
    rng = np.random.default_rng(seed)
    mask = rng.random((36, 48)) < np.linspace(0.1, 0.8, 48)[None]
    depth = rng.uniform(0.3, 3.0, (36, 48)).astype(np.float32)
    hazard = np.zeros((36, 48), dtype=bool)
    hazard[10:20, 30:44] = True
    return mask, depth, hazard


def _tokens(mask: np.ndarray, depth: np.ndarray, hazard: np.ndarray | None) -> np.ndarray:
    cfg = SceneConfig()
    return view_tokens_of(mask, depth, cfg.intrinsics.scaled(48, 36), cfg.extrinsic, _GRID, 1.0, hazard)


# Rows: (azimuth, visibility, risk) per present hazard; the single-hazard keys carry the first.
_SET_ROWS = [
    [(3.0, Visibility.OUT_OF_VIEW, RiskLevel.MEDIUM)],  # out of view behind
    [(0.2, Visibility.VISIBLE, RiskLevel.MEDIUM), (-2.6, Visibility.OUT_OF_VIEW, RiskLevel.HIGH)],
    [],  # no hazard
    [(1.4, Visibility.OUT_OF_VIEW, RiskLevel.MEDIUM), (2.8, Visibility.OUT_OF_VIEW, RiskLevel.LOW)],
    [(-0.3, Visibility.OCCLUDED, RiskLevel.HIGH)],
]


def _set_batch() -> dict[str, torch.Tensor]:
    """A hazard-set batch as ``training.data`` prepares it (MAX_HAZARDS slots, empty ones padded)."""
    tax = default_taxonomy()
    n, k = len(_SET_ROWS), MAX_HAZARDS
    hazard_class = np.zeros((n, k), dtype=np.int64)
    hazard_direction = np.zeros((n, k, 3), dtype=np.float32)
    hazard_distance = np.zeros((n, k), dtype=np.float32)
    hazard_visibility = np.full((n, k), -1, dtype=np.int64)
    hazard_occlusion = np.full((n, k), np.nan, dtype=np.float32)
    hazard_risk = np.zeros((n, k), dtype=np.int64)
    hazard_action = np.zeros((n, k), dtype=np.int64)
    features, visual, tokens, exact = [], [], [], []
    for row, hazards in enumerate(_SET_ROWS):
        for slot, (azimuth, visibility, risk) in enumerate(hazards):
            hazard_class[row, slot] = 2 + slot
            hazard_direction[row, slot] = direction_to_unit(azimuth, 0.1)
            hazard_distance[row, slot] = 2.0 + slot
            hazard_visibility[row, slot] = int(visibility)
            hazard_occlusion[row, slot] = 0.4 if visibility == Visibility.OCCLUDED else np.nan
            hazard_risk[row, slot] = int(risk)
            hazard_action[row, slot] = int(tax.recommended_action(risk, azimuth))
        heard = hazard_direction[row, 0] if hazards else direction_to_unit(0.9, -0.4)
        features.append(_plane_wave_features(np.asarray(heard, dtype=np.float64), row))
        mask, depth, hazard = _view_images(row)
        tokens.append(_tokens(mask, depth, None))
        exact.append(_tokens(mask, depth, hazard))
        visual.append(np.random.default_rng(row).standard_normal((5, 6, 8)))
    first = [hazards[0] if hazards else None for hazards in _SET_ROWS]
    return {
        "features": torch.stack(features),
        "visual": torch.from_numpy(np.stack(visual).astype(np.float32)),
        "view_tokens": torch.from_numpy(np.stack(tokens)),
        "view_tokens_exact": torch.from_numpy(np.stack(exact)),
        "occlusion_input": torch.zeros(n),
        "class_id": torch.from_numpy(hazard_class[:, 0].copy()),
        "direction": torch.from_numpy(hazard_direction[:, 0].copy()),
        "distance": torch.from_numpy(hazard_distance[:, 0].copy()),
        "risk": torch.from_numpy(hazard_risk[:, 0].copy()),
        "action": torch.from_numpy(hazard_action[:, 0].copy()),
        "visibility": torch.tensor([int(h[1]) if h else int(Visibility.OUT_OF_VIEW) for h in first]),
        "hazard_class": torch.from_numpy(hazard_class),
        "hazard_direction": torch.from_numpy(hazard_direction),
        "hazard_distance": torch.from_numpy(hazard_distance),
        "hazard_visibility": torch.from_numpy(hazard_visibility),
        "hazard_occlusion": torch.from_numpy(hazard_occlusion),
        "hazard_risk": torch.from_numpy(hazard_risk),
        "hazard_action": torch.from_numpy(hazard_action),
        "polyphony": torch.tensor([len(h) for h in _SET_ROWS]),
    }


def _check_set_row(augment, batch, out, row) -> tuple[AcsTransform, bool]:
    """Assert one augmented hazard-set row is a consistent transform of the original; return it."""
    tax = default_taxonomy()
    (t,) = _which(batch["features"][row], out["features"][row])
    present = int(batch["polyphony"][row])
    # Every present slot moves with the sound; its action follows the new side; empty slots stay.
    for slot in range(MAX_HAZARDS):
        new = out["hazard_direction"][row, slot].numpy()
        if slot >= present:
            assert not new.any() and int(out["hazard_action"][row, slot]) == 0
            continue
        np.testing.assert_allclose(new, t.matrix @ batch["hazard_direction"][row, slot].numpy(), atol=1e-6)
        risk = RiskLevel(int(batch["hazard_risk"][row, slot]))
        expected = tax.recommended_action(risk, float(unit_to_direction(new)[0]))
        assert int(out["hazard_action"][row, slot]) == int(expected)
    if present:  # the sound itself: the intensity vector of the new features points at the new label
        error = angular_error_rad(
            _feature_direction(out["features"][row]), out["hazard_direction"][row, 0].numpy()
        )
        assert math.degrees(float(error)) < 3.0, t
        np.testing.assert_allclose(out["direction"][row].numpy(), out["hazard_direction"][row, 0].numpy())
        assert int(out["action"][row]) == int(out["hazard_action"][row, 0])
    flipped = not torch.equal(out["visual"][row], batch["visual"][row])
    visibility = batch["hazard_visibility"][row, :present].tolist()
    if any(v != Visibility.OUT_OF_VIEW for v in visibility):  # seen: identity, or mirror + mirrored view
        assert t.is_identity or t == AcsTransform(0, True, False)
        assert flipped == (not t.is_identity)
    else:
        assert not flipped
    for slot, v in enumerate(visibility):
        if v == Visibility.OUT_OF_VIEW and not t.is_identity:
            assert not augment.in_view(out["hazard_direction"][row, slot].numpy(), 3.0)
    if flipped:  # the image, and the view tokens of the mirrored images
        assert torch.equal(out["visual"][row], batch["visual"][row].flip(-1))
        mask, depth, hazard = _view_images(row)
        mirrored = [np.ascontiguousarray(image[:, ::-1]) for image in (mask, depth, hazard)]
        np.testing.assert_allclose(out["view_tokens"][row], _tokens(*mirrored[:2], None), atol=1e-6)
        np.testing.assert_allclose(out["view_tokens_exact"][row], _tokens(*mirrored), atol=1e-6)
    else:
        assert torch.equal(out["view_tokens"][row], batch["view_tokens"][row])
        assert torch.equal(out["view_tokens_exact"][row], batch["view_tokens_exact"][row])
    return t, flipped


def test_hazard_set_batches_take_the_transforms_every_hazard_allows():
    augment = _augmentation()
    batch = _set_batch()
    kept = {key: value.clone() for key, value in batch.items()}
    seen: dict[int, set] = {row: set() for row in range(len(_SET_ROWS))}
    actions_changed = 0
    for trial in range(40):
        out = augment(batch, [trial, trial + 50, trial + 99, 3, trial + 7])
        for row in range(len(_SET_ROWS)):
            t, _ = _check_set_row(augment, batch, out, row)
            seen[row].add(t)
        for key in ("hazard_class", "hazard_distance", "hazard_visibility", "hazard_risk", "polyphony"):
            assert torch.equal(out[key], batch[key]), key
        assert torch.equal(out["hazard_occlusion"].isnan(), batch["hazard_occlusion"].isnan())
        actions_changed += int((out["hazard_action"] != batch["hazard_action"]).sum())
    assert len(seen[0]) >= 4 and len(seen[2]) >= 10  # out of view behind, no hazard: many transforms
    assert seen[1] == seen[4] == {ACS_TRANSFORMS[0], AcsTransform(0, True, False)}  # seen: two choices
    assert len(seen[3]) >= 2  # two out of view: the transforms that keep both out of view
    assert actions_changed > 0  # the mirror moves the turning hazards to the other side
    for key, value in kept.items():  # the stored batch is never changed
        assert torch.equal(batch[key].nan_to_num(), value.nan_to_num()), key


def test_hazard_set_draw_is_a_pure_function_of_seed_and_indices():
    batch = _set_batch()
    indices = [5, 17, 23, 2, 40]
    first = _augmentation()(batch, indices)
    resumed = _augmentation()(batch, indices)  # a new object, as after a resume
    for key in first:
        assert torch.equal(first[key].nan_to_num(), resumed[key].nan_to_num()), key
    other = AcsAugmentation(
        16, "dcase", 1, SceneConfig().intrinsics, SceneConfig().extrinsic, default_taxonomy()
    )
    draws = [other(batch, [i, i + 1, i + 2, i + 3, i + 4]) for i in range(5)]
    assert any(not torch.equal(d["features"], first["features"]) for d in draws)


def test_mirrored_view_tokens_keep_the_camera_rays():
    tokens = torch.from_numpy(_tokens(*_view_images(0)))
    mirrored = mirror_view_tokens(tokens)
    np.testing.assert_allclose(mirrored[:, :3], tokens[:, :3], atol=1e-6)  # a symmetric camera
    assert not torch.allclose(mirrored[:, 3], tokens[:, 3])  # the asymmetric mask moved
    assert torch.equal(mirror_view_tokens(mirrored), tokens)
    with pytest.raises(ValueError, match="square grid"):
        mirror_view_tokens(torch.zeros(10, 6))


def test_a_hazard_set_config_with_acs_loads():
    tiny = Path(__file__).resolve().parents[1] / "training" / "configs" / "hazard_set_tiny.yaml"
    config = load_config(tiny, ["data.acs_transforms=16"])
    augment = acs_for_run(config)
    assert config.task == "hazard_set" and augment is not None and augment.transforms == 16


@pytest.mark.parametrize("mix", [(0.0, 0.0, 1.0), (1.0, 0.0, 0.0)])
def test_prepared_hazard_set_scenes_go_through_the_augmentation(mix):
    """Real prepared samples (``set_prepare_config``): all out of view -> rotated; all visible ->
    the identity or the mirror with the image and view tokens mirrored."""
    tiny = Path(__file__).resolve().parents[1] / "training" / "configs" / "hazard_set_tiny.yaml"
    config = load_config(tiny, ["data.acs_transforms=16", f"data.scene.visibility_mix={list(mix)}"])
    scene = replace(config.data.scene_config(), hazard_count_weights=(0.0, 0.0, 1.0))
    samples = [generate_scene(seed, scene) for seed in range(4)]
    store = build_store(samples, set_prepare_config(config), torch.device("cpu"))
    batch = store.batch(range(4))
    out = acs_for_run(config)(batch, [0, 1, 2, 3])
    moved = 0
    for row in range(4):
        (t,) = _which(batch["features"][row], out["features"][row])
        present = int(batch["polyphony"][row])
        assert present >= 1
        new, old = (
            out["hazard_direction"][row, :present].numpy(),
            batch["hazard_direction"][row, :present].numpy(),
        )
        np.testing.assert_allclose(new, old @ t.matrix.T, atol=1e-6)
        moved += int(not t.is_identity)
        if mix[0] == 1.0:
            assert t in (ACS_TRANSFORMS[0], AcsTransform(0, True, False))
            expected = (
                mirror_view_tokens(batch["view_tokens"][row]) if t.mirror else batch["view_tokens"][row]
            )
            assert torch.equal(out["view_tokens"][row], expected)
    if mix[2] == 1.0:
        assert moved >= 2  # out of view: most draws rotate


@pytest.mark.slow
def test_tiny_hazard_set_run_with_acs_trains(tmp_path):
    _fit_with_acs("hazard_set_tiny.yaml", tmp_path, ["data.scene.visibility_mix=[0.25, 0.25, 0.5]"])
