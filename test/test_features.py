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

# Worst case seen for white noise at -20 dBFS: about 6e-6 dB on the log-mel channels and 1e-8
# on the intensity-vector channels (float32 STFTs, torch's vs numpy's FFT).
LOG_MEL_TOLERANCE_DB = 1e-3
INTENSITY_TOLERANCE = 1e-5


def librosa_dcase_reference(audio: np.ndarray) -> np.ndarray:
    """The DCASE2023 baseline's FOA features, written with librosa/numpy: [4, N] -> [7, T, 64]."""
    hop, win, n_fft, n_mels = 480, 960, 1024, 64
    frames = math.ceil(audio.shape[1] / hop)
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
    assert ours.shape == reference.shape == (7, 21, 64)
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
