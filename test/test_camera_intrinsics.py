"""CameraIntrinsics: the field of view it is built from is the one it reports."""

from __future__ import annotations

import math

import pytest

from avi_ros.geometry import CameraIntrinsics


@pytest.mark.parametrize("fov_deg", [30.0, 70.0, 120.0])
def test_horizontal_fov_is_the_inverse_of_from_fov(fov_deg: float) -> None:
    intrinsics = CameraIntrinsics.from_fov(640, 480, math.radians(fov_deg))
    assert intrinsics.horizontal_fov_rad == pytest.approx(math.radians(fov_deg), rel=1e-12)
    assert intrinsics.scaled(320, 240).horizontal_fov_rad == pytest.approx(math.radians(fov_deg), rel=1e-12)
