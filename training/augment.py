"""FOA channel-swap augmentation (ACS) of training batches, kept consistent with the camera.

``avi_ros.data.acs`` rotates and reflects a first-order sound field exactly, by permuting and
negating channels, and maps the labels with it. Applied to precomputed features, it multiplies
the directions a small training set covers by up to 16 at no cost (``data.acs_transforms``).

An audio-visual sample cannot take every transform. The image is tied to the true direction:
rotating the sound of a dog the camera sees by 90 degrees would teach the model that a dog in
the middle of the image barks from the left. So the rule, per sample, is:

- audio-only batches (SELD pre-training, no ``visual`` input) and class-0 samples (no hazard in
  the image to contradict): any of the configured transforms;
- out-of-view hazards: the transforms after which the hazard is still out of view (judged with
  the run's camera and a margin that covers the wide profile's tilt), so nothing the image shows
  contradicts the new direction;
- visible and occluded hazards: the identity, or the left-right mirror (azimuth -> -azimuth)
  together with a horizontal flip of the image, depth and mask, which is the same scene seen in
  a mirror; offered only when the camera mount is left-right symmetric (no sideways offset, roll
  or yaw), otherwise only the identity.

Labels follow: the direction and the multi-ACCDOA target are transformed, the action is
recomputed from the new azimuth (turning away from a hazard depends on its side); distance,
risk, visibility and occlusion do not change. The draw for a batch depends only on the run's
seed and the batch's sample indices, so a resumed run repeats it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from avi_ros.data.acs import ACS_TRANSFORMS, AcsTransform, transform_features, transform_vectors
from avi_ros.geometry import CameraIntrinsics, MicToCamera, unit_to_direction
from avi_ros.taxonomy import RiskLevel, Taxonomy, Visibility, default_taxonomy
from training.config import ExperimentConfig

# Angular margin [rad] around the camera's field of view within which a transformed hazard
# direction still counts as "in view" (it could show at the image border).
VIEW_MARGIN_RAD = math.radians(10.0)
_MIRROR = AcsTransform(0, True, False)


def _mirror_symmetric(extrinsic: MicToCamera, intrinsics: CameraIntrinsics) -> bool:
    """Whether mirroring the world left-right (y -> -y) mirrors the image about its vertical centre line."""
    roll, _, yaw = extrinsic.rpy_rad
    centred = abs(intrinsics.cx - (intrinsics.width - 1) / 2.0) <= 0.5
    return abs(extrinsic.translation_m[1]) < 1e-9 and abs(roll) < 1e-9 and abs(yaw) < 1e-9 and centred


@dataclass(frozen=True)
class AcsAugmentation:
    """A ``BatchAugmentation`` (see ``training.data.InputStore``) drawing one ACS transform per sample.

    transforms: 8 (elevation kept) or 16. feature_kind: ``FeatureConfig.kind`` of the features.
    intrinsics / extrinsic: the run's camera, for the out-of-view test and the mirror rule.
    view_margin_rad: margin added to the half field of view in that test [rad].
    """

    transforms: int
    feature_kind: str
    seed: int
    intrinsics: CameraIntrinsics
    extrinsic: MicToCamera
    taxonomy: Taxonomy
    view_margin_rad: float = VIEW_MARGIN_RAD

    def __post_init__(self) -> None:
        if self.transforms not in (8, 16):
            raise ValueError(f"acs_transforms: expected 8 or 16, got {self.transforms}")

    @property
    def candidates(self) -> tuple[AcsTransform, ...]:
        return ACS_TRANSFORMS[: self.transforms]

    def in_view(self, direction: np.ndarray, distance_m: float) -> bool:
        """Whether a source at ``direction`` (unit, microphone frame) and ``distance_m`` could show
        in the image: within the field of view widened by ``view_margin_rad`` on every side."""
        point = self.extrinsic.mic_to_optical(np.asarray(direction) * max(distance_m, 0.1))
        if point[2] <= 0:
            return False
        intr = self.intrinsics
        half_h = math.atan(intr.width / 2.0 / intr.fx) + self.view_margin_rad
        half_v = math.atan(intr.height / 2.0 / intr.fy) + self.view_margin_rad
        return math.atan2(abs(point[0]), point[2]) < half_h and math.atan2(abs(point[1]), point[2]) < half_v

    def allowed(
        self, visibility: int | None, class_id: int, direction: np.ndarray, distance_m: float
    ) -> list[tuple[AcsTransform, bool]]:
        """The (transform, flip the image) choices for one sample (``visibility`` None: audio only)."""
        if visibility is None or class_id == 0:
            return [(t, False) for t in self.candidates]
        if visibility == Visibility.OUT_OF_VIEW:
            return [
                (t, False)
                for t in self.candidates
                if t.is_identity or not self.in_view(transform_vectors(direction, t), distance_m)
            ]
        choices = [(ACS_TRANSFORMS[0], False)]
        if _mirror_symmetric(self.extrinsic, self.intrinsics):
            choices.append((_MIRROR, True))
        return choices

    def __call__(self, batch: dict[str, torch.Tensor], indices: Sequence[int]) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, len(indices), *(int(i) for i in indices)])
        audio_only = "visual" not in batch
        out = dict(batch)
        for key in ("features", "direction", "accdoa_target", "action", "visual"):
            if key in out:
                out[key] = out[key].clone()
        for row in range(len(indices)):
            visibility = None if audio_only else int(batch["visibility"][row])
            class_id = int(batch["class_id"][row]) if "class_id" in batch else 1
            direction = (
                batch["direction"][row].numpy().astype(np.float64) if "direction" in batch else np.zeros(3)
            )
            distance = float(batch["distance"][row]) if "distance" in batch else 0.0
            choices = self.allowed(visibility, class_id, direction, distance)
            transform, flip = choices[int(rng.integers(len(choices)))]
            if transform.is_identity:
                continue
            out["features"][row] = transform_features(batch["features"][row], transform, self.feature_kind)
            if "accdoa_target" in out:
                out["accdoa_target"][row] = transform_vectors(batch["accdoa_target"][row], transform, axis=-2)
            if "direction" in out and class_id != 0:
                new_direction = transform_vectors(batch["direction"][row], transform)
                out["direction"][row] = new_direction
                if "action" in out:
                    azimuth, _ = unit_to_direction(new_direction.numpy())
                    risk = RiskLevel(int(batch["risk"][row]))
                    out["action"][row] = int(self.taxonomy.recommended_action(risk, float(azimuth)))
            if flip:
                out["visual"][row] = batch["visual"][row].flip(-1)
        return out


def acs_for_run(config: ExperimentConfig) -> AcsAugmentation | None:
    """The training split's augmentation for ``data.acs_transforms`` (0: None, no augmentation).

    The out-of-view margin grows by the scene profile's largest camera tilt or roll, so a hazard
    that a tilted camera might see is never rotated.
    """
    data = config.data
    if data.acs_transforms == 0:
        return None
    scene = data.scene_config()
    tilt = 0.0
    if scene.wide is not None:
        tilt = max(abs(v) for v in (*scene.wide.camera_pitch_range_rad, *scene.wide.camera_roll_range_rad))
    return AcsAugmentation(
        data.acs_transforms,
        config.features.kind,
        config.seed,
        scene.intrinsics,
        scene.extrinsic,
        default_taxonomy(),
        VIEW_MARGIN_RAD + tilt,
    )
