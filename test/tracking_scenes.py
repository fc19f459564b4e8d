"""Hand-made hazard sequences for the tracking tests: estimates built from known motions."""

from __future__ import annotations

import math

import numpy as np

from avi_ros.tracking import TruthPoint
from avi_ros.tracking.metrics import simulated_detection
from avi_ros.types import HazardEstimateData
from avi_ros.units import NS_PER_S

DT_S = 0.1  # frame period of the sequences [s] (the SELD resolution)
T0_NS = 100 * NS_PER_S  # stamp of the first frame


def estimate(
    azimuth: float, distance: float, class_id: int = 1, elevation: float = 0.0
) -> HazardEstimateData:
    """A hazard estimate at a direction [rad] and distance [m] among 4 classes; the other fields
    are fixed (``simulated_detection``)."""
    return simulated_detection(azimuth, distance, class_id, 4, elevation)


def stamp(frame: int) -> int:
    """Stamp [ns] of frame number ``frame``."""
    return T0_NS + round(frame * DT_S * NS_PER_S)


def noisy(
    rng: np.random.Generator,
    azimuth: float,
    distance: float,
    class_id: int = 1,
    azimuth_std_deg: float = 3.0,
    distance_rel_std: float = 0.1,
) -> HazardEstimateData:
    """``estimate`` with Gaussian azimuth noise [deg] and relative distance noise."""
    return estimate(
        azimuth + math.radians(azimuth_std_deg) * rng.standard_normal(),
        distance * (1.0 + distance_rel_std * rng.standard_normal()),
        class_id,
    )


def crossing_truth(
    rng: np.random.Generator, frames: int = 40, rate_rps: float = 0.6
) -> tuple[list[list[TruthPoint]], list[list[HazardEstimateData]]]:
    """Two dogs crossing in azimuth at ±``rate_rps``, one approaching from 8 m at 1 m/s, the other
    leaving from 3 m at 1 m/s: the truth per frame and noisy estimates (slot 0 is truth id 1)."""
    start = rate_rps * DT_S * frames / 2.0
    truth = [
        [
            TruthPoint(1, 1, -start + rate_rps * DT_S * k, 8.0 - DT_S * k, -1.0),
            TruthPoint(2, 1, start - rate_rps * DT_S * k, 3.0 + DT_S * k, 1.0),
        ]
        for k in range(frames)
    ]
    estimates = [[noisy(rng, t.azimuth, t.distance, azimuth_std_deg=2.0) for t in row] for row in truth]
    return truth, estimates
