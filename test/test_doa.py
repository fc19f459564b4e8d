"""Physics direction of arrival (avi_ros.doa): plane waves from every direction in every convention,
diffuse fields, two sources, left/right, and the same physics read from the feature tensor."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from avi_ros.audio import foa_encoding_gains
from avi_ros.data.acoustics import diffuse_noise
from avi_ros.doa import (
    MIN_LEVEL_DBFS,
    broadband_direction,
    candidate_directions,
    diffuseness,
    feature_direction,
    feature_direction_vectors,
    intensity_field,
    tf_direction,
)
from avi_ros.geometry import angular_error_rad, direction_to_unit

RATE = 24_000
AZIMUTHS_DEG = np.arange(-180.0, 180.0, 10.0)  # 36 azimuths
ELEVATIONS_DEG = (-60.0, -30.0, 0.0, 30.0, 60.0)


def white_noise(seconds: float, seed: int) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(round(seconds * RATE))


def harmonic_tone(seconds: float, f0_hz: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return 0.1 * sum(np.sin(2 * np.pi * k * f0_hz * t) / k for k in range(1, 16))


def encode(signal: np.ndarray, azimuth_deg: float, elevation_deg: float, convention: str) -> np.ndarray:
    """A plane wave [4, N] in ``convention`` (the inverse of avi_ros.audio.to_acn_sn3d)."""
    acn = foa_encoding_gains(math.radians(azimuth_deg), math.radians(elevation_deg))[:, None] * signal
    if convention == "ACN/SN3D":
        return acn
    if convention == "ACN/N3D":
        return np.concatenate([acn[:1], acn[1:] * math.sqrt(3.0)])
    w, y, z, x = acn
    return np.stack([w / math.sqrt(2.0), x, y, z])  # FuMa/FuMa: W/sqrt(2), X, Y, Z


def error_deg(estimate, azimuth_deg: float, elevation_deg: float) -> float:
    truth = direction_to_unit(math.radians(azimuth_deg), math.radians(elevation_deg))
    return math.degrees(float(angular_error_rad(estimate.vector, truth)))


@pytest.mark.parametrize("convention", ["ACN/SN3D", "ACN/N3D", "FuMa/FuMa"])
@pytest.mark.parametrize("kind", ["white_noise", "harmonic_tone"])
def test_free_field_plane_waves_from_every_direction_within_one_degree(convention, kind):
    order, normalization = convention.split("/")
    signal = white_noise(0.5, seed=1) if kind == "white_noise" else harmonic_tone(0.5)
    worst = {"broadband": 0.0, "tf": 0.0}
    for elevation in ELEVATIONS_DEG:
        for azimuth in AZIMUTHS_DEG:
            foa = encode(signal, azimuth, elevation, convention)
            broad = broadband_direction(foa, RATE, channel_order=order, normalization=normalization)
            tf = tf_direction(foa, RATE, channel_order=order, normalization=normalization)
            worst["broadband"] = max(worst["broadband"], error_deg(broad, azimuth, elevation))
            worst["tf"] = max(worst["tf"], error_deg(tf, azimuth, elevation))
            assert tf.confidence > 0.95 and broad.confidence > 0.95
    assert worst["broadband"] < 1.0 and worst["tf"] < 1.0, worst


def test_intensity_of_a_plane_wave_equals_its_energy_and_points_at_it():
    foa = encode(white_noise(0.3, seed=2), 30.0, 20.0, "ACN/SN3D")
    intensity, energy, freqs = intensity_field(foa, RATE, n_fft=512, hop=256)
    assert intensity.shape == (3, *energy.shape) and energy.shape[1] == freqs.size == 257
    np.testing.assert_allclose(np.linalg.norm(intensity, axis=0), energy, rtol=1e-6, atol=1e-12)
    unit = intensity[:, energy > 1e-6 * energy.max()] / energy[energy > 1e-6 * energy.max()]
    np.testing.assert_allclose(
        unit.T, np.tile(direction_to_unit(math.radians(30), math.radians(20)), (unit.shape[1], 1)), atol=1e-6
    )
    assert float(diffuseness(intensity, energy)[energy > 1e-6 * energy.max()].max()) < 1e-6


def test_a_diffuse_field_reads_diffuse_and_a_plane_wave_in_it_does_not():
    noise = diffuse_noise(np.random.default_rng(3), RATE, RATE, spectral_slope=0.0)  # 1 s, W variance 1
    intensity, energy, _ = intensity_field(noise, RATE)
    psi = diffuseness(intensity, energy)
    assert float(np.average(psi, weights=energy)) > 0.7
    assert broadband_direction(noise, RATE).confidence < 0.3
    assert tf_direction(noise, RATE).confidence < 0.3
    # A plane wave 20 dB above the same field: low diffuseness, right direction.
    wave = encode(white_noise(1.0, seed=4) / 0.1 * 10.0, -45.0, 0.0, "ACN/SN3D")
    estimate = tf_direction(wave + noise, RATE)
    assert estimate.confidence > 0.8
    assert error_deg(estimate, -45.0, 0.0) < 3.0


def band_noise(seconds: float, low_hz: float, high_hz: float, seed: int) -> np.ndarray:
    """White noise with every FFT bin outside [low_hz, high_hz] zeroed (disjoint bands stay disjoint)."""
    n = round(seconds * RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0.0
    return np.fft.irfft(spectrum, n)


def test_two_sources_in_disjoint_bands_give_both_directions():
    low = encode(band_noise(1.0, 200.0, 1500.0, seed=5), 40.0, 0.0, "ACN/SN3D")
    high = encode(band_noise(1.0, 3000.0, 7000.0, seed=6), -120.0, 20.0, "ACN/SN3D")
    candidates = candidate_directions(low + high, RATE, max_sources=3)
    assert len(candidates) == 2
    found = sorted(candidates, key=lambda c: c.azimuth_deg)
    assert error_deg(found[0], -120.0, 20.0) < 3.0
    assert error_deg(found[1], 40.0, 0.0) < 3.0
    shares = [c.confidence for c in candidates]  # each source's share of the band's energy
    assert min(shares) > 0.2 and 0.8 < sum(shares) <= 1.0
    # One source gives one candidate.
    (single,) = candidate_directions(low, RATE, max_sources=3)
    assert error_deg(single, 40.0, 0.0) < 1.0


@pytest.mark.parametrize("convention", ["ACN/SN3D", "FuMa/FuMa"])
def test_a_source_on_the_left_reads_plus_90_and_on_the_right_minus_90(convention):
    order, normalization = convention.split("/")
    left = tf_direction(
        encode(white_noise(0.5, 7), 90.0, 0.0, convention),
        RATE,
        channel_order=order,
        normalization=normalization,
    )
    right = tf_direction(
        encode(white_noise(0.5, 7), -90.0, 0.0, convention),
        RATE,
        channel_order=order,
        normalization=normalization,
    )
    assert left.azimuth_deg == pytest.approx(90.0, abs=0.5) and left.vector[1] > 0.99
    assert right.azimuth_deg == pytest.approx(-90.0, abs=0.5) and right.vector[1] < -0.99
    ahead = tf_direction(encode(white_noise(0.5, 7), 0.0, 0.0, "ACN/SN3D"), RATE)
    assert ahead.vector[0] > 0.99  # REP-103: +x forward


def test_level_and_silence():
    signal = np.full(RATE, 0.1)  # RMS 0.1: -20 dBFS
    assert broadband_direction(encode(signal, 0.0, 0.0, "ACN/SN3D"), RATE).level_dbfs == pytest.approx(
        -20.0, abs=0.01
    )
    silent = tf_direction(np.zeros((4, RATE)), RATE)
    assert not silent.known and silent.confidence == 0.0 and silent.level_dbfs == MIN_LEVEL_DBFS
    mono = np.zeros((4, RATE))
    mono[0] = white_noise(1.0, 8)  # W only: no direction
    assert not tf_direction(mono, RATE).known and candidate_directions(mono, RATE) == []


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="channels"):
        tf_direction(np.zeros((3, RATE)), RATE)
    with pytest.raises(ValueError, match="channel order"):
        tf_direction(np.zeros((4, RATE)), RATE, channel_order="XYZ")
    with pytest.raises(ValueError, match="band"):
        broadband_direction(np.zeros((4, RATE)), RATE, band_hz=(9000.0, 100.0))


def test_the_feature_tensor_gives_the_same_direction():
    torch = pytest.importorskip("torch")
    from avi_ros.features import FeatureConfig, FeatureExtractor

    extractor = FeatureExtractor(FeatureConfig())
    azimuths = (-150.0, -90.0, 0.0, 60.0, 135.0)
    batch = np.stack([encode(white_noise(1.0, 9), az, 15.0, "ACN/SN3D") for az in azimuths]).astype(
        np.float32
    )
    with torch.no_grad():
        features = extractor(torch.from_numpy(batch)).numpy()
    vectors = feature_direction_vectors(features)
    assert vectors.shape == (len(azimuths), 3)
    for azimuth, window, vector in zip(azimuths, features, vectors, strict=True):
        estimate = feature_direction(window)
        assert error_deg(estimate, azimuth, 15.0) < 1.0
        np.testing.assert_allclose(estimate.vector, vector / np.linalg.norm(vector), atol=1e-9)
        assert estimate.confidence > 0.99 and math.isnan(estimate.level_dbfs)
    noise = diffuse_noise(np.random.default_rng(10), RATE, RATE, 0.0).astype(np.float32)
    with torch.no_grad():
        diffuse = extractor(torch.from_numpy(noise[None])).numpy()[0]
    assert feature_direction(diffuse).confidence < 0.3
    with pytest.raises(ValueError, match="7, T, F"):
        feature_direction_vectors(np.zeros((4, 10, 64)))


def test_doa_imports_neither_torch_nor_ros():
    code = "import sys, avi_ros.doa; bad = {'torch', 'rclpy'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
