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

The scenario simulator builds its training windows with ``frame_features`` too, and the windows
made from the pipeline's outputs (``training/decision_data.py``) go through ``FeatureWindow`` as
the node's do, so the training and the node share one definition of the vector and of the window.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from avi_ros.taxonomy import Visibility
from avi_ros.types import HazardEstimateData
from avi_ros.units import NS_PER_S

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
    """The feature vectors of the frames of the last ``frames`` camera periods, placed by their stamps.

    The window has ``frames`` slots of ``period_s`` each, the newest last: a frame goes into the
    slot ``round((reference - stamp) / period_s)`` periods before the reference stamp (the newest
    frame's, or the one ``window`` is asked for). A frame the node skipped (busy with the one
    before) leaves its slot zero, so a late frame does not shift the older ones forward; before
    ``frames`` periods have passed since the first frame the older slots are zeros too (zeros
    are no estimate: every real vector has a unit direction and a visibility one-hot). Two
    frames in one slot (a stamp jitter of half a period): the newer one wins. A stamp older than
    the newest one (the clock jumped back) starts the window afresh.
    """

    def __init__(self, frames: int, size: int, period_s: float) -> None:
        if frames < 1 or size < 1:
            raise ValueError(f"feature window: expected frames >= 1 and size >= 1, got {frames}, {size}")
        if not period_s > 0.0:
            raise ValueError(f"feature window: expected a frame period > 0 s, got {period_s}")
        self.frames = frames
        self.size = size
        self.period_ns = period_s * NS_PER_S
        self._stamps: deque[int] = deque()
        self._features: deque[np.ndarray] = deque()

    def push(self, feature: np.ndarray, stamp_ns: int) -> None:
        """Add the feature of the frame captured at ``stamp_ns`` [ns]."""
        feature = np.asarray(feature, dtype=np.float32)
        if feature.shape != (self.size,):
            raise ValueError(f"frame feature: expected shape ({self.size},), got {feature.shape}")
        stamp_ns = int(stamp_ns)
        if self._stamps and stamp_ns < self._stamps[-1]:
            self.reset()
        self._stamps.append(stamp_ns)
        self._features.append(feature)
        while self._stamps and self._slot(self._stamps[0], stamp_ns) < 0:
            self._stamps.popleft()
            self._features.popleft()

    def _slot(self, stamp_ns: int, reference_ns: int) -> int:
        return self.frames - 1 - round((reference_ns - stamp_ns) / self.period_ns)

    def __len__(self) -> int:
        return len(self._features)

    def window(self, stamp_ns: int | None = None) -> np.ndarray:
        """[frames, size] float32 at ``stamp_ns`` (default: the newest frame's stamp), newest last."""
        out = np.zeros((self.frames, self.size), dtype=np.float32)
        if not self._stamps:
            return out
        reference = self._stamps[-1] if stamp_ns is None else int(stamp_ns)
        for stamp, feature in zip(self._stamps, self._features, strict=True):  # oldest first: newer win
            slot = self._slot(stamp, reference)
            if 0 <= slot < self.frames:
                out[slot] = feature
        return out

    def reset(self) -> None:
        self._stamps.clear()
        self._features.clear()
