"""Constant-velocity Kalman filters of a hazard: one in the horizontal plane, measured in polar
form, that predicts where the hazard will be (``PlanarConstantVelocityFilter``), and one of a
single coordinate (``ConstantVelocityFilter``) for the rates the tracker publishes.

The planar filter's state is the hazard's position and velocity ``(x, y, vx, vy)`` [m, m/s] in the robot frame
(x forward, y left, REP-103), the velocity being the hazard's own (the robot's motion is moved
out by ``move``). A hazard that walks or drives straight moves at constant velocity in these
coordinates, whereas its azimuth and distance accelerate hard when it passes close to the robot
(a source 1 m away at 10 m/s sweeps 50 degrees in 0.1 s): a constant-velocity model on the
azimuth itself predicts such a pass badly, so the track loses its detections and is reborn under
a new id. The measurement is the detection's azimuth [rad] and the log of its horizontal
distance [log m] (the log makes the distance noise, which grows with the distance, about
constant), linearised at the prediction (an extended Kalman filter). Process noise is the
white-noise-acceleration model (Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to
Tracking and Navigation*, 2001, §6.2.2) on each axis: ``Q = q [[dt³/3, dt²/2], [dt²/2, dt]]``
with ``q`` the acceleration's power spectral density [m²/s³].
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
    """One coordinate's state ``(position, rate)`` with covariance ``P`` [2 × 2], the same
    white-noise-acceleration model with ``acceleration_psd`` [unit²/s³]; ``wrap`` maps positions
    and innovations onto their range (``wrap_angle`` for an azimuth, identity otherwise).

    The tracker runs one on a hazard's azimuth and one on the log of its distance for the rates it
    publishes: where the hazard's path turns in the robot's view (it walks around the robot, or
    the robot drives past it), the planar filter's velocity lags behind the turn, which shows as a
    spurious angular velocity or a range rate of the wrong sign; each coordinate alone changes
    smoothly there."""

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

    def predict(self, dt_s: float) -> None:
        """Advance by ``dt_s`` [s] at the current rate."""
        transition = np.array([[1.0, dt_s], [0.0, 1.0]])
        q = self.acceleration_psd
        noise = q * np.array([[dt_s**3 / 3.0, dt_s**2 / 2.0], [dt_s**2 / 2.0, dt_s]])
        self.state = transition @ self.state
        self.state[0] = self.wrap(self.state[0])
        self.covariance = transition @ self.covariance @ transition.T + noise

    def shift(self, position_shift: float) -> None:
        """Move the position by a known amount without changing the rate (the robot moved)."""
        self.state[0] = self.wrap(self.state[0] + position_shift)

    def update(self, measurement: float, measurement_std: float) -> None:
        """Fuse one position measurement with standard deviation ``measurement_std``."""
        variance = float(self.covariance[0, 0]) + measurement_std**2
        gain = self.covariance[:, 0] / variance
        self.state = self.state + gain * self.wrap(measurement - self.state[0])
        self.state[0] = self.wrap(self.state[0])
        self.covariance = self.covariance - np.outer(gain, self.covariance[0, :])


class PlanarConstantVelocityFilter:
    """State ``(x, y, vx, vy)`` [m, m/s] with covariance ``P`` [4 × 4]; measurements are
    ``(azimuth [rad], ln horizontal distance [log m])`` with standard deviations ``measurement_std``.
    ``min_distance_m`` bounds the distance used in the measurement model [m], so that a hazard
    predicted onto the microphone still has a finite Jacobian."""

    def __init__(
        self,
        azimuth: float,
        log_distance: float,
        measurement_std: tuple[float, float],
        initial_speed_std_mps: float,
        acceleration_psd: float,
        min_distance_m: float,
    ) -> None:
        self.acceleration_psd = acceleration_psd
        self.min_distance_m = min_distance_m
        self.noise = np.diag(np.square(measurement_std))
        distance = math.exp(log_distance)
        x, y = distance * math.cos(azimuth), distance * math.sin(azimuth)
        self.state = np.array([x, y, 0.0, 0.0])
        # The detection's spread carried into x, y: d(x, y) / d(azimuth, ln distance) = [[-y, x], [x, y]].
        jacobian = np.array([[-y, x], [x, y]])
        self.covariance = np.zeros((4, 4))
        self.covariance[:2, :2] = jacobian @ self.noise @ jacobian.T
        self.covariance[2:, 2:] = np.eye(2) * initial_speed_std_mps**2

    @property
    def distance(self) -> float:
        """Horizontal distance [m], at least ``min_distance_m``."""
        return max(math.hypot(self.state[0], self.state[1]), self.min_distance_m)

    @property
    def azimuth(self) -> float:
        return math.atan2(self.state[1], self.state[0])

    def predict(self, dt_s: float) -> None:
        """Advance by ``dt_s`` [s] at the current velocity."""
        transition = np.eye(4)
        transition[0, 2] = transition[1, 3] = dt_s
        block = self.acceleration_psd * np.array([[dt_s**3 / 3.0, dt_s**2 / 2.0], [dt_s**2 / 2.0, dt_s]])
        noise = np.kron(block, np.eye(2))  # (x, y, vx, vy) order: the block per axis
        self.state = transition @ self.state
        self.covariance = transition @ self.covariance @ transition.T + noise

    def move(self, dx_m: float, dy_m: float, turn_rad: float) -> None:
        """Express the state in the next robot frame: the robot moved by (dx, dy) [m] in the old
        frame and turned by ``turn_rad`` [rad, CCW]. Position and velocity turn by −turn; the
        shift is known exactly, so the covariance only turns."""
        cos_t, sin_t = math.cos(turn_rad), math.sin(turn_rad)
        rotation = np.array([[cos_t, sin_t], [-sin_t, cos_t]])
        full = np.kron(np.eye(2), rotation)
        self.state = full @ (self.state - np.array([dx_m, dy_m, 0.0, 0.0]))
        self.covariance = full @ self.covariance @ full.T

    def _jacobian(self) -> np.ndarray:
        """d(azimuth, ln distance) / d(x, y, vx, vy) at the current state [2 × 4]."""
        x, y = self.state[:2]
        r2 = self.distance**2
        return np.array([[-y / r2, x / r2, 0.0, 0.0], [x / r2, y / r2, 0.0, 0.0]])

    def innovations(self, azimuths: np.ndarray, log_distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measurements minus their prediction [n × 2] (azimuth wrapped [rad], ln distance
        [log m]) and the innovation covariance S [2 × 2, rad² and (log m)²] they share: what the
        association's gate and cost read."""
        predicted = np.array([self.azimuth, math.log(self.distance)])
        residuals = np.stack([np.asarray(azimuths, float), np.asarray(log_distances, float)], axis=-1)
        residuals = residuals - predicted
        residuals[:, 0] = (residuals[:, 0] + math.pi) % (2.0 * math.pi) - math.pi
        jacobian = self._jacobian()
        return residuals, jacobian @ self.covariance @ jacobian.T + self.noise

    def update(self, azimuth: float, log_distance: float) -> None:
        """Fuse one measurement (azimuth [rad], ln horizontal distance [log m])."""
        residuals, innovation_cov = self.innovations(np.array([azimuth]), np.array([log_distance]))
        jacobian = self._jacobian()
        gain = self.covariance @ jacobian.T @ np.linalg.inv(innovation_cov)
        self.state = self.state + gain @ residuals[0]
        self.covariance = (np.eye(4) - gain @ jacobian) @ self.covariance
        self.covariance = 0.5 * (self.covariance + self.covariance.T)
