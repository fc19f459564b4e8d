"""The per-frame visual feature of the decision input, and the window of the last F frames.

The decision stage reads what the package already computes per frame: the pipeline's best
hazard estimate (``PipelineResult.top``, a ``HazardEstimateData``). Its feature vector
[dv = C + 9] is, in this order:

- the class probabilities [C] (C = the taxonomy's classes, ``none`` first);
- the direction unit vector [3] (microphone frame, REP-103);
- the distance [m] divided by ``DISTANCE_SCALE_M``;
- the confidence (0..1);
- the visibility one-hot [3] (VISIBLE, OCCLUDED, OUT_OF_VIEW);
- the occlusion level (0..1).

The scenario simulator builds its training windows with ``frame_features`` too, so the training
and the node share one definition of the vector.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from avi_ros.taxonomy import Visibility
from avi_ros.types import HazardEstimateData

DISTANCE_SCALE_M = 10.0  # distances are fed in units of 10 m, so typical values are near 1
EXTRA_FEATURES = 9  # direction 3 + distance + confidence + visibility 3 + occlusion level


def feature_size(num_classes: int) -> int:
    """dv: the length of a frame's feature vector for a taxonomy of ``num_classes`` classes."""
    return num_classes + EXTRA_FEATURES


def frame_features(
    class_probabilities: np.ndarray,
    direction: np.ndarray,
    distance_m: np.ndarray,
    confidence: np.ndarray,
    visibility: np.ndarray,
    occlusion_level: np.ndarray,
) -> np.ndarray:
    """Feature vectors [..., dv] (float32) from estimates with any leading shape (module docstring).

    class_probabilities [..., C]; direction [..., 3] (any length, normalised here); distance_m,
    confidence, occlusion_level [...]; visibility [...] as ``Visibility`` values.
    """
    direction = np.asarray(direction, dtype=np.float64)
    norm = np.linalg.norm(direction, axis=-1, keepdims=True)
    unit = direction / np.maximum(norm, 1e-12)
    visibility = np.asarray(visibility, dtype=np.int64)
    if visibility.size and (visibility.min() < 0 or visibility.max() >= len(Visibility)):
        raise ValueError(f"visibility: expected values in 0..{len(Visibility) - 1}")
    one_hot = np.eye(len(Visibility))[visibility]
    parts = [
        np.asarray(class_probabilities, dtype=np.float64),
        unit,
        (np.asarray(distance_m, dtype=np.float64) / DISTANCE_SCALE_M)[..., None],
        np.asarray(confidence, dtype=np.float64)[..., None],
        one_hot,
        np.asarray(occlusion_level, dtype=np.float64)[..., None],
    ]
    return np.concatenate(parts, axis=-1).astype(np.float32)


def frame_feature(estimate: HazardEstimateData) -> np.ndarray:
    """The feature vector [dv] of one frame's hazard estimate."""
    return frame_features(
        np.asarray(estimate.class_probabilities),
        np.asarray(estimate.direction),
        np.float64(estimate.distance),
        np.float64(estimate.confidence),
        np.int64(int(estimate.visibility)),
        np.float64(estimate.occlusion_level),
    )


class FeatureWindow:
    """The feature vectors of the last ``frames`` frames, oldest first.

    Before ``frames`` frames have arrived the window is zero-padded at its start (zeros are no
    estimate: every real vector has a unit direction and a visibility one-hot).
    """

    def __init__(self, frames: int, size: int) -> None:
        if frames < 1 or size < 1:
            raise ValueError(f"feature window: expected frames >= 1 and size >= 1, got {frames}, {size}")
        self.frames = frames
        self.size = size
        self._features: deque[np.ndarray] = deque(maxlen=frames)

    def push(self, feature: np.ndarray) -> None:
        feature = np.asarray(feature, dtype=np.float32)
        if feature.shape != (self.size,):
            raise ValueError(f"frame feature: expected shape ({self.size},), got {feature.shape}")
        self._features.append(feature)

    def __len__(self) -> int:
        return len(self._features)

    def window(self) -> np.ndarray:
        """[frames, size] float32, newest last."""
        out = np.zeros((self.frames, self.size), dtype=np.float32)
        if self._features:
            out[self.frames - len(self._features) :] = np.stack(self._features)
        return out

    def reset(self) -> None:
        self._features.clear()
