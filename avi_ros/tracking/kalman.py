"""A constant-velocity Kalman filter of one coordinate: the state (position, rate).

A track runs two of them, one on its azimuth [rad] and one on the log of its distance
[log m]. The two are independent (block-diagonal covariance), so two 2 × 2 filters cost less
than one 4 × 4 and say the same. Process noise is the white-noise-acceleration model
(Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking and Navigation*,
2001, §6.2.2): ``Q = q [[dt³/3, dt²/2], [dt²/2, dt]]`` with ``q`` the acceleration's power
spectral density [unit²/s³].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def wrap_angle(angle_rad: float) -> float:
    """The same angle in [-π, π) [rad]."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def _identity(value: float) -> float:
    return value


class ConstantVelocityFilter:
    """State ``(position, rate)`` with covariance ``P`` [2 × 2]; ``wrap`` maps positions and
    innovations onto their range (``wrap_angle`` for an azimuth, identity otherwise).
    """

    def __init__(
        self,
        position: float,
        position_std: float,
        rate_std: float,
        acceleration_psd: float,
        wrap: Callable[[float], float] = _identity,
    ) -> None:
        self.wrap = wrap
        self.acceleration_psd = acceleration_psd
        self.state = np.array([wrap(position), 0.0])
        self.covariance = np.diag([position_std**2, rate_std**2])

    @property
    def position(self) -> float:
        return float(self.state[0])

    @property
    def rate(self) -> float:
        return float(self.state[1])

    @property
    def position_std(self) -> float:
        return math.sqrt(float(self.covariance[0, 0]))

    def predict(self, dt_s: float) -> None:
        """Advance by ``dt_s`` [s] at the current rate."""
        transition = np.array([[1.0, dt_s], [0.0, 1.0]])
        q = self.acceleration_psd
        noise = q * np.array([[dt_s**3 / 3.0, dt_s**2 / 2.0], [dt_s**2 / 2.0, dt_s]])
        self.state = transition @ self.state
        self.state[0] = self.wrap(self.state[0])
        self.covariance = transition @ self.covariance @ transition.T + noise

    def shift(self, position_shift: float) -> None:
        """Move the position by a known amount without changing the rate (the frame moved: the
        robot turned or drove)."""
        self.state[0] = self.wrap(self.state[0] + position_shift)

    def innovation(self, measurement: float) -> float:
        """Measurement minus predicted position, wrapped."""
        return self.wrap(measurement - self.state[0])

    def update(self, measurement: float, measurement_std: float) -> None:
        """Fuse one position measurement with standard deviation ``measurement_std``."""
        residual = self.innovation(measurement)
        variance = float(self.covariance[0, 0]) + measurement_std**2
        gain = self.covariance[:, 0] / variance
        self.state = self.state + gain * residual
        self.state[0] = self.wrap(self.state[0])
        self.covariance = self.covariance - np.outer(gain, self.covariance[0, :])
