"""Scoring primitives shared by the training metrics (``training.metrics``) and the bag replay
report (``avi_ros.bag.report``), so a class accuracy or an angular error means the same number
in both. They live in the core because the core may not import training.
"""

from __future__ import annotations

import numpy as np

from avi_ros.geometry import angular_error_rad


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Fraction of equal labels; None for no samples."""
    if len(y_true) == 0:
        return None
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def angular_errors_deg(direction_pred: np.ndarray, direction_true: np.ndarray) -> np.ndarray:
    """Great-circle errors [deg] between direction vectors [N, 3] (any length)."""
    if len(direction_true) == 0:
        return np.zeros(0)
    return np.degrees(angular_error_rad(direction_pred, direction_true))
