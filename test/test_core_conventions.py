"""Conventions of the shared core: ambisonics, PCM, geometry (REP-103) and taxonomy rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avi_ros.audio import (
    AudioFormatError,
    decode_pcm,
    encode_pcm,
    foa_encoding_gains,
    resample,
    to_acn_sn3d,
)
from avi_ros.geometry import (
    CameraIntrinsics,
    MicToCamera,
    angular_error_rad,
    direction_to_unit,
    unit_to_direction,
)
from avi_ros.taxonomy import Action, RiskLevel, Taxonomy, default_taxonomy


def test_foa_gains_follow_acn_sn3d():
    # A source on the left (+y, azimuth +90 deg) excites Y only among the dipoles.
    np.testing.assert_allclose(foa_encoding_gains(math.pi / 2, 0.0), [1, 1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(foa_encoding_gains(0.0, math.pi / 2), [1, 0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(foa_encoding_gains(0.0, 0.0), [1, 0, 0, 1], atol=1e-12)


def test_fuma_and_n3d_convert_to_the_same_acn_sn3d_signal():
    rng = np.random.default_rng(1)
    mono = rng.standard_normal(64).astype(np.float32)
    az, el = 0.7, -0.3
    acn_sn3d = foa_encoding_gains(az, el)[:, None] * mono
    w, y, z, x = acn_sn3d
    fuma = np.stack([w / math.sqrt(2.0), x, y, z])
    n3d = np.stack([w, y * math.sqrt(3.0), z * math.sqrt(3.0), x * math.sqrt(3.0)])
    np.testing.assert_allclose(to_acn_sn3d(fuma, "FuMa", "FuMa"), acn_sn3d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_acn_sn3d(n3d, "ACN", "N3D"), acn_sn3d, rtol=1e-5, atol=1e-6)
    with pytest.raises(AudioFormatError, match="channel order"):
        to_acn_sn3d(acn_sn3d, "SID", "SN3D")


@pytest.mark.parametrize("fmt", ["float32", "int16", "int32"])
def test_pcm_round_trip(fmt):
    audio = (np.random.default_rng(2).uniform(-0.9, 0.9, (4, 100))).astype(np.float32)
    decoded = decode_pcm(encode_pcm(audio, fmt), fmt, 4)
    assert decoded.shape == (4, 100) and decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, audio, atol=1e-4 if fmt == "int16" else 1e-6)


@pytest.mark.parametrize(
    ("data", "fmt", "reason"),
    [
        (b"", "float32", "empty"),
        (b"\x00" * 15, "float32", "truncated"),
        (b"\x00" * 16, "float64", "bad_format"),
        (np.full(4, np.nan, dtype="<f4").tobytes(), "float32", "non_finite"),
    ],
)
def test_decode_pcm_names_the_problem(data, fmt, reason):
    with pytest.raises(AudioFormatError) as err:
        decode_pcm(data, fmt, 4)
    assert err.value.reason == reason


def test_resample_changes_length_by_the_rate_ratio():
    audio = np.random.default_rng(3).standard_normal((4, 48000)).astype(np.float32)
    assert resample(audio, 48000, 24000).shape == (4, 24000)
    assert resample(audio, 24000, 24000) is audio


def test_direction_round_trip_and_angular_error():
    az, el = np.array([-3.0, 0.0, 1.2]), np.array([0.4, -1.0, 0.0])
    back_az, back_el = unit_to_direction(direction_to_unit(az, el) * 3.0)
    np.testing.assert_allclose(back_az, az, atol=1e-12)
    np.testing.assert_allclose(back_el, el, atol=1e-12)
    assert angular_error_rad([1, 0, 0], [0, 1, 0]) == pytest.approx(math.pi / 2)


def test_camera_looking_forward_projects_ahead_to_the_centre_and_left_to_the_left():
    k = CameraIntrinsics.from_fov(640, 480, math.radians(70.0))
    extrinsic = MicToCamera(translation_m=(0.1, 0.0, 0.2))
    ahead = extrinsic.mic_to_optical(np.array([5.1, 0.0, 0.2]))
    (u, v), inside = k.project(ahead)
    assert inside and u == pytest.approx(k.cx) and v == pytest.approx(k.cy)
    (u_left, _), _ = k.project(extrinsic.mic_to_optical(np.array([5.0, 1.0, 0.2])))
    assert u_left < k.cx  # +y (left, REP-103) is to the left of the image
    np.testing.assert_allclose(extrinsic.optical_to_mic(ahead), [5.1, 0.0, 0.2], atol=1e-12)
    (_, _), behind = k.project(extrinsic.mic_to_optical(np.array([-5.0, 0.0, 0.0])))
    assert not behind


def test_risk_and_action_rules():
    taxonomy = default_taxonomy()
    siren = taxonomy.class_id("siren")
    assert taxonomy.risk_level(0, 0.5) == RiskLevel.NONE
    assert taxonomy.risk_level(siren, 2.0) == RiskLevel.HIGH
    assert taxonomy.risk_level(siren, 10.0) == RiskLevel.MEDIUM
    assert taxonomy.risk_level(siren, 50.0) == RiskLevel.LOW
    assert Taxonomy.recommended_action(RiskLevel.MEDIUM, math.radians(45)) == Action.TURN_RIGHT
    assert Taxonomy.recommended_action(RiskLevel.MEDIUM, math.radians(-45)) == Action.TURN_LEFT
    assert Taxonomy.recommended_action(RiskLevel.HIGH, 0.0) == Action.REVERSE
    assert Taxonomy.recommended_action(RiskLevel.HIGH, math.pi) == Action.STOP
    assert Taxonomy.from_dict(taxonomy.to_dict()) == taxonomy
    with pytest.raises(ValueError, match="class 0"):
        Taxonomy(taxonomy.classes[1:])
