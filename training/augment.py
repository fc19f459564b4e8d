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

A sample with several hazards (the hazard-set task: ``training.data.HAZARD_KEYS``, and the
single hazard of ``class_id``/``direction`` beside them) takes the intersection of the rules of
its hazards: any transform that keeps every out-of-view hazard out of view while none is seen,
otherwise the identity or the mirror (if it keeps the out-of-view ones out of view).

Labels follow: the direction of the single hazard and of every present hazard slot and the
multi-ACCDOA target are transformed, the actions are recomputed from the new azimuths (turning
away from a hazard depends on its side); distance, risk, visibility and occlusion do not change.
The mirror also mirrors the view tokens (``VIEW_KEYS``): the grid's columns swap and the rays
are reflected (y -> -y), so every token still says what is blocked along its ray. The draw for
a batch depends only on the run's seed and the batch's sample indices, so a resumed run repeats
it exactly.
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
from training.data import VIEW_KEYS

# Angular margin [rad] around the camera's field of view within which a transformed hazard
# direction still counts as "in view" (it could show at the image border).
VIEW_MARGIN_RAD = math.radians(10.0)
_MIRROR = AcsTransform(0, True, False)
_MATRIX = {t: t.matrix for t in ACS_TRANSFORMS}  # each transform's 3x3 signed permutation
# A hazard the rule must respect: (visibility, unit direction in the microphone frame, distance [m]).
Hazard = tuple[int, np.ndarray, float]
# Batch keys that a transform may change (copied before they are written).
_CHANGED_KEYS = (
    "features",
    "direction",
    "accdoa_target",
    "action",
    "hazard_direction",
    "hazard_action",
    "visual",
    *VIEW_KEYS,
)


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
        return bool(self._in_view_all(np.asarray(direction)[None], distance_m)[0])

    def _in_view_all(self, directions: np.ndarray, distance_m: float) -> np.ndarray:
        """``in_view`` of unit directions [N, 3] at one distance [m] -> bool [N]."""
        point = self.extrinsic.mic_to_optical(directions * max(distance_m, 0.1))
        intr = self.intrinsics
        half_h = math.atan(intr.width / 2.0 / intr.fx) + self.view_margin_rad
        half_v = math.atan(intr.height / 2.0 / intr.fy) + self.view_margin_rad
        x, y, z = np.abs(point[:, 0]), np.abs(point[:, 1]), point[:, 2]
        return (z > 0) & (np.arctan2(x, z) < half_h) & (np.arctan2(y, z) < half_v)

    def allowed(self, hazards: Sequence[Hazard] | None) -> list[tuple[AcsTransform, bool]]:
        """The (transform, flip the image) choices for one sample: the intersection of the rules
        of its ``hazards`` (None: an audio-only sample; empty: no hazard, any transform).

        While a hazard is seen (visible or occluded): the identity, or the mirror with the flipped
        image where the camera is mirror-symmetric. Otherwise any candidate. Either way, a
        transform other than the identity must keep every out-of-view hazard out of view.
        """
        if hazards is None:
            return [(t, False) for t in self.candidates]
        if any(visibility != Visibility.OUT_OF_VIEW for visibility, _, _ in hazards):
            choices = [(ACS_TRANSFORMS[0], False)]
            if _mirror_symmetric(self.extrinsic, self.intrinsics):
                choices.append((_MIRROR, True))
        else:
            choices = [(t, False) for t in self.candidates]
        keep = np.ones(len(choices), dtype=bool)
        matrices = np.stack([_MATRIX[t] for t, _ in choices])  # [choices, 3, 3]
        for visibility, direction, distance_m in hazards:
            if visibility == Visibility.OUT_OF_VIEW:
                keep &= ~self._in_view_all(matrices @ direction, distance_m)
        return [choice for choice, ok in zip(choices, keep, strict=True) if ok or choice[0].is_identity]

    def __call__(self, batch: dict[str, torch.Tensor], indices: Sequence[int]) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, len(indices), *(int(i) for i in indices)])
        draws = []
        for row in range(len(indices)):
            choices = self.allowed(None if "visual" not in batch else _hazards_of_row(batch, row))
            draws.append(choices[int(rng.integers(len(choices)))])
        out = dict(batch)
        for key in _CHANGED_KEYS:
            if key in out:
                out[key] = out[key].clone()
        for transform in dict.fromkeys(t for t, _ in draws if not t.is_identity):  # first-drawn order
            rows = torch.tensor([row for row, (t, _) in enumerate(draws) if t == transform])
            self._transform_rows(batch, out, rows, transform)
        flipped = torch.tensor([row for row, (_, flip) in enumerate(draws) if flip], dtype=torch.long)
        if len(flipped):
            out["visual"][flipped] = batch["visual"][flipped].flip(-1)
            for key in VIEW_KEYS:
                if key in out:
                    out[key][flipped] = mirror_view_tokens(batch[key][flipped])
        return out

    def _transform_rows(
        self,
        batch: dict[str, torch.Tensor],
        out: dict[str, torch.Tensor],
        rows: torch.Tensor,
        t: AcsTransform,
    ) -> None:
        """Write ``t`` applied to the sound and the direction labels of ``rows`` of ``batch`` into
        ``out``. Empty slots and class-0 samples have zero directions, which stay zero."""
        out["features"][rows] = transform_features(batch["features"][rows], t, self.feature_kind)
        if "accdoa_target" in out:
            out["accdoa_target"][rows] = transform_vectors(batch["accdoa_target"][rows], t, axis=-2)
        if "direction" in out:
            out["direction"][rows] = transform_vectors(batch["direction"][rows], t)
            if "action" in out:
                for row in rows.tolist():
                    if "class_id" not in batch or int(batch["class_id"][row]) != 0:
                        out["action"][row] = self._action(int(batch["risk"][row]), out["direction"][row])
        if "hazard_direction" in out:
            out["hazard_direction"][rows] = transform_vectors(batch["hazard_direction"][rows], t)
            if "hazard_action" in out:
                for row in rows.tolist():
                    for slot in _present_slots(batch, row):
                        risk = int(batch["hazard_risk"][row, slot])
                        out["hazard_action"][row, slot] = self._action(
                            risk, out["hazard_direction"][row, slot]
                        )

    def _action(self, risk: int, direction: torch.Tensor) -> int:
        """The taxonomy's action for a hazard of ``risk`` at the (transformed) unit ``direction``."""
        azimuth, _ = unit_to_direction(direction.numpy().astype(np.float64))
        return int(self.taxonomy.recommended_action(RiskLevel(risk), float(azimuth)))


def _hazards_of_row(batch: dict[str, torch.Tensor], row: int) -> list[Hazard]:
    """The hazards of one audio-visual sample that a transform must respect: the single hazard
    (``class_id`` > 0) and every present hazard slot (``hazard_class`` > 0)."""
    hazards: list[Hazard] = []
    if "class_id" not in batch or int(batch["class_id"][row]) != 0:
        direction = batch["direction"][row] if "direction" in batch else torch.zeros(3)
        distance = float(batch["distance"][row]) if "distance" in batch else 0.0
        hazards.append((int(batch["visibility"][row]), direction.numpy().astype(np.float64), distance))
    for slot in _present_slots(batch, row):
        hazards.append(
            (
                int(batch["hazard_visibility"][row, slot]),
                batch["hazard_direction"][row, slot].numpy().astype(np.float64),
                float(batch["hazard_distance"][row, slot]),
            )
        )
    return hazards


def _present_slots(batch: dict[str, torch.Tensor], row: int) -> list[int]:
    """The hazard slots of one sample that hold a hazard (``hazard_class`` > 0); none without a set."""
    if "hazard_class" not in batch:
        return []
    return torch.nonzero(batch["hazard_class"][row] > 0).flatten().tolist()


def mirror_view_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """View tokens [..., G * G, 6] (``avi_ros.view_tokens``, row-major cells) of the left-right
    mirrored scene: the columns of the grid swap (the image flips) and each ray is reflected
    (y -> -y), so with a mirror-symmetric camera every cell keeps its own ray and gets its mirror
    cell's content."""
    *lead, cells, channels = tokens.shape
    grid = math.isqrt(cells)
    if grid * grid != cells:
        raise ValueError(f"view tokens: expected a square grid of cells, got {cells}")
    mirrored = tokens.reshape(*lead, grid, grid, channels).flip(-2).reshape(*lead, cells, channels)
    mirrored[..., 1] = -mirrored[..., 1]  # flip() copied, so this never writes into ``tokens``
    return mirrored


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
