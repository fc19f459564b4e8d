"""Features: parity of the torch DCASE features with a librosa reference, and the amp_phasediff kind."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch

from avi_ros.audio import SAMPLE_RATE, foa_encoding_gains
from avi_ros.features import (
    FeatureConfig,
    FeatureExtractor,
    FeatureNormalizer,
    compute_normalization_stats,
)
from avi_ros.geometry import CameraIntrinsics
from avi_ros.pipeline import Pipeline
from avi_ros.preprocess import audio_window
from avi_ros.taxonomy import default_taxonomy
from avi_ros.types import Frame
from training.data import compute_features

# Worst case seen for white noise at -20 dBFS: about 6e-6 dB on the log-mel channels and 1e-8
# on the intensity-vector channels (float32 STFTs, torch's vs numpy's FFT).
LOG_MEL_TOLERANCE_DB = 1e-3
INTENSITY_TOLERANCE = 1e-5


def librosa_dcase_reference(audio: np.ndarray) -> np.ndarray:
    """The DCASE2023 baseline's FOA features, written with librosa/numpy: [4, N] -> [7, T, 64]."""
    hop, win, n_fft, n_mels = 480, 960, 1024, 64
    frames = int(audio.shape[1] / float(hop))  # the baseline's nb_feat_frames: floor(N / hop)
    spectra = np.stack(
        [
            librosa.stft(np.asfortranarray(ch), n_fft=n_fft, hop_length=hop, win_length=win, window="hann").T[
                :frames
            ]
            for ch in audio
        ],
        axis=-1,
    )  # [T, n_freq, 4]
    mel_wts = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=n_fft, n_mels=n_mels).T
    log_mel = [librosa.power_to_db(np.abs(spectra[:, :, ch]) ** 2 @ mel_wts) for ch in range(4)]
    w = spectra[:, :, 0]
    intensity = np.real(np.conj(w)[:, :, None] * spectra[:, :, 1:])
    energy = 1e-8 + (np.abs(w) ** 2 + (np.abs(spectra[:, :, 1:]) ** 2).sum(-1) / 3.0)
    iv_mel = np.transpose((intensity / energy[:, :, None]).transpose(0, 2, 1) @ mel_wts, (1, 0, 2))
    return np.concatenate([np.stack(log_mel), iv_mel], axis=0).astype(np.float32)


def plane_wave(azimuth_rad: float, elevation_rad: float, samples: int, seed: int = 0) -> np.ndarray:
    """FOA [4, samples] of white noise arriving from one direction (ACN/SN3D)."""
    mono = np.random.default_rng(seed).standard_normal(samples) * 0.1
    return (foa_encoding_gains(azimuth_rad, elevation_rad)[:, None] * mono[None, :]).astype(np.float32)


def test_dcase_features_match_librosa_reference() -> None:
    config = FeatureConfig()
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal((2, 4, config.window_samples)) * 0.1).astype(np.float32)
    ours = FeatureExtractor(config)(torch.from_numpy(audio)).numpy()
    assert ours.shape == (2, *config.shape) == (2, 7, 50, 64)
    for batch_index in range(2):
        reference = librosa_dcase_reference(audio[batch_index])
        mel_diff = np.abs(ours[batch_index, :4] - reference[:4]).max()
        iv_diff = np.abs(ours[batch_index, 4:] - reference[4:]).max()
        assert mel_diff < LOG_MEL_TOLERANCE_DB, f"log-mel max abs difference {mel_diff} dB"
        assert iv_diff < INTENSITY_TOLERANCE, f"intensity-vector max abs difference {iv_diff}"


def test_dcase_features_of_an_odd_length_match_reference() -> None:
    audio = (np.random.default_rng(2).standard_normal((4, 10_001)) * 0.05).astype(np.float32)
    ours = FeatureExtractor(FeatureConfig())(torch.from_numpy(audio)[None])[0].numpy()
    reference = librosa_dcase_reference(audio)
    assert ours.shape == reference.shape == (7, 20, 64)  # floor(10001 / 480); ceil would give 21
    assert np.abs(ours - reference).max() < LOG_MEL_TOLERANCE_DB


def test_intensity_vector_points_at_the_source() -> None:
    """A source on the left (+y) gives a positive Y intensity and near-zero X and Z."""
    audio = plane_wave(math.radians(90.0), 0.0, SAMPLE_RATE)
    features = FeatureExtractor(FeatureConfig())(torch.from_numpy(audio)[None])[0]
    iv_y, iv_z, iv_x = (features[4 + k].mean().item() for k in range(3))
    assert iv_y > 0.0
    assert abs(iv_x) < 1e-3 * iv_y and abs(iv_z) < 1e-3 * iv_y


def test_amp_phasediff_shape_and_phase_signs() -> None:
    """Source at azimuth -90 deg: Y = -W (phase difference pi), same magnitude; Z = 0."""
    config = FeatureConfig(kind="amp_phasediff")
    audio = plane_wave(math.radians(-90.0), 0.0, config.window_samples)
    features = FeatureExtractor(config)(torch.from_numpy(audio)[None])[0].numpy()
    assert features.shape == (7, 50, 64)
    np.testing.assert_allclose(features[1], features[0], atol=1e-3)  # |Y| = |W| in dB
    phase_wy = features[4, :, 1:]  # skip the DC band
    assert np.all(np.abs(np.abs(phase_wy) - math.pi) < 1e-3)
    source_ahead = plane_wave(0.0, 0.0, config.window_samples)
    ahead = FeatureExtractor(config)(torch.from_numpy(source_ahead)[None])[0].numpy()
    assert np.all(np.abs(ahead[6, :, 1:]) < 1e-3)  # X = +W: phase difference 0


def test_feature_config_validation_and_sizes() -> None:
    config = FeatureConfig(window_seconds=0.5)
    assert config.window_samples == 12_000
    assert config.num_frames == 25
    with pytest.raises(ValueError, match="kind"):
        FeatureConfig(kind="mfcc")
    with pytest.raises(ValueError, match="unknown keys"):
        FeatureConfig.from_dict({"kind": "dcase", "hop": 10})
    assert FeatureConfig.from_dict(FeatureConfig(kind="amp_phasediff").to_dict()).kind == "amp_phasediff"


def test_features_reject_wrong_channel_count() -> None:
    with pytest.raises(ValueError, match="audio"):
        FeatureExtractor(FeatureConfig())(torch.zeros(1, 2, 24_000))


def test_normalization_stats_standardise_the_training_set() -> None:
    features = torch.randn(6, 7, 20, 64) * torch.linspace(0.5, 3.0, 64) + torch.arange(7.0)[:, None, None]
    mean, std = compute_normalization_stats(iter([features[:2], features[2:]]))
    flat = features.permute(1, 3, 0, 2).reshape(7, 64, -1).double()
    np.testing.assert_allclose(mean.numpy(), flat.mean(-1).numpy(), atol=1e-5)
    np.testing.assert_allclose(std.numpy(), flat.std(-1, unbiased=False).numpy(), rtol=1e-4)
    normalizer = FeatureNormalizer(7, 64)
    normalizer.set_stats(mean, std)
    normalised = normalizer(features)
    assert normalised.mean(dim=(0, 2)).abs().max() < 1e-4
    assert (normalised.std(dim=(0, 2), unbiased=False) - 1).abs().max() < 1e-3


def test_normalizer_rejects_bad_stats() -> None:
    normalizer = FeatureNormalizer(7, 64)
    with pytest.raises(ValueError, match="shape"):
        normalizer.set_stats(torch.zeros(7, 32), torch.ones(7, 32))
    with pytest.raises(ValueError, match="positive"):
        normalizer.set_stats(torch.zeros(7, 64), torch.zeros(7, 64))


def test_frame_count_is_floor_of_samples_over_hop_as_in_the_baseline() -> None:
    """The baseline keeps int(N / hop) frames; a window that is not a whole number of hops
    loses its partial last frame, and the label frames derived from it agree."""
    config = FeatureConfig(window_seconds=0.51)  # 12240 samples = 25.5 hops
    assert config.window_samples == 12_240
    assert config.num_frames == 25 and config.shape == (7, 25, 64)
    features = FeatureExtractor(config)(torch.zeros(1, 4, config.window_samples))
    assert features.shape == (1, *config.shape)
    assert config.num_frames // 5 == 5  # SELD label frames (time pool 5), as seld_task computes
    with pytest.raises(ValueError, match="at least one hop"):
        FeatureExtractor(config)(torch.zeros(1, 4, 479))


def _clip_with_a_loud_start(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """FOA noise whose first half second is 60 dB louder than the rest."""
    audio = rng.standard_normal((4, round(seconds * SAMPLE_RATE))).astype(np.float32) * 1e-3
    audio[:, : SAMPLE_RATE // 2] *= 1000.0
    return audio


def test_80_db_floor_is_relative_to_the_peak_of_each_window() -> None:
    """The node sees only its window: the floor must not depend on audio before it."""
    config = FeatureConfig()
    rng = np.random.default_rng(3)
    clip = _clip_with_a_loud_start(3.0, rng)
    window = audio_window(clip, SAMPLE_RATE, config)  # the last second: quiet noise only
    extractor = FeatureExtractor(config)
    features = extractor(torch.from_numpy(window)[None])[0]
    whole = extractor(torch.from_numpy(clip)[None])[0]  # what a per-file floor would see
    # Per window: the floor sits 80 dB below this window's peak, not the clip's.
    log_mel = features[:4]
    peak = log_mel.amax(dim=(1, 2))
    assert torch.all(log_mel.amin(dim=(1, 2)) >= peak - 80.0 - 1e-4)
    assert float(whole[:4].amax()) > float(peak.max()) + 40.0  # the clip's peak is far higher
    # A window with a loud start and a silent end is floored at its own peak - 80 dB.
    loud_then_silent = np.zeros((4, config.window_samples), dtype=np.float32)
    loud_then_silent[:, : SAMPLE_RATE // 4] = rng.standard_normal((4, SAMPLE_RATE // 4))
    floored = extractor(torch.from_numpy(loud_then_silent)[None])[0, :4]
    for channel in floored:
        assert float(channel.min()) == pytest.approx(float(channel.max()) - 80.0, abs=1e-4)


def test_training_and_the_node_compute_identical_features(tiny_checkpoint) -> None:
    """Training cuts audio_window and runs compute_features; the node's pipeline cuts the same
    window from its longer buffer and runs its extractor: the model sees the same numbers."""
    checkpoint = tiny_checkpoint(default_taxonomy(), window_s=1.0)
    pipeline = Pipeline.from_checkpoint(checkpoint, device="cpu")
    seen: list[torch.Tensor] = []
    extractor = pipeline.features
    pipeline.features = lambda audio: seen.append(extractor(audio)) or seen[-1]
    rng = np.random.default_rng(4)
    clip = _clip_with_a_loud_start(2.5, rng)
    size = 64
    frame = Frame(
        rgb=np.zeros((size, size, 3), dtype=np.uint8),
        depth_m=np.full((size, size), 2.0, dtype=np.float32),
        intrinsics=CameraIntrinsics.from_fov(size, size, math.radians(90.0)),
        audio=clip,
        sample_rate=SAMPLE_RATE,
    )
    pipeline.run(frame)
    window = audio_window(clip, SAMPLE_RATE, pipeline.feature_config)
    trained_on = compute_features(window[None], pipeline.feature_config, torch.device("cpu"))
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0].numpy(), trained_on.numpy())
