"""The scoring primitives the training metrics and the bag report share."""

from __future__ import annotations

import numpy as np
import pytest

from avi_ros.scoring import accuracy, angular_errors_deg


def test_accuracy_is_the_share_of_equal_labels_and_none_without_samples() -> None:
    assert accuracy(np.array([1, 2, 3, 0]), np.array([1, 2, 0, 0])) == pytest.approx(0.75)
    assert accuracy(np.array([]), np.array([])) is None


def test_angular_errors_are_great_circle_degrees_for_any_vector_length() -> None:
    predicted = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -3.0]])
    true = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(angular_errors_deg(predicted, true), [0.0, 90.0, 180.0], atol=1e-9)
    assert angular_errors_deg(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0,)
