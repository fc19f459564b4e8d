"""Sensor data -> model inputs: the one preprocessing sequence of the node, the replay and training.

A ``Preprocessor`` is bound to a checkpoint's metadata (its feature config, the occlusion
settings it was trained with and its image size), as torchvision binds ``transforms`` to its
weights, so a model is never fed inputs prepared another way than it was trained on. For one
RGB-D image and its audio it runs, in this order:
1. ``compute_occlusion`` on the depth image: the occlusion mask and level;
2. ``visual_input``: the 5-channel image (RGB, depth, mask) at the model's image size;
3. ``audio_window``: the last ``window_samples`` of audio at the feature sample rate;
4. with a ``view_grid`` (the model's; SELD pre-training has none) and a camera: ``view_tokens_of``
   the mask and depth.
``Pipeline.run_batch`` and ``training.data.prepare_sample`` both call it; the audio features
themselves are computed on the model's device (``avi_ros.features.FeatureExtractor``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from avi_ros.audio import FOA_CHANNELS, resample
from avi_ros.features import FeatureConfig
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.occlusion import OcclusionConfig, OcclusionResult, compute_occlusion
from avi_ros.view_tokens import view_tokens_of
from avi_ros.vision import visual_input

if TYPE_CHECKING:
    from avi_ros.checkpoint import CheckpointMetadata


def audio_window(audio: np.ndarray, sample_rate: int, config: FeatureConfig) -> np.ndarray:
    """The last ``config.window_samples`` of FOA audio [4, N] at ``config.sample_rate``, float32.

    Other rates are resampled first; a short window is zero-padded at its start, so the newest
    sample always sits at the end.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] != FOA_CHANNELS:
        raise ValueError(f"frame audio must be float [{FOA_CHANNELS}, samples], got shape {audio.shape}")
    if sample_rate != config.sample_rate:
        audio = resample(audio, sample_rate, config.sample_rate)
    needed = config.window_samples
    window = audio[:, -needed:]
    if window.shape[1] < needed:
        window = np.pad(window, ((0, 0), (needed - window.shape[1], 0)))
    return np.ascontiguousarray(window, dtype=np.float32)


def occlusion_config_of(metadata: CheckpointMetadata) -> OcclusionConfig:
    """The occlusion settings a checkpoint was trained with (``extra["occlusion"]``), else the default."""
    saved = metadata.extra.get("occlusion")
    if saved is None:
        return OcclusionConfig()
    try:
        return OcclusionConfig(**saved)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint extra.occlusion is not a valid OcclusionConfig: {exc}") from exc


@dataclass(frozen=True)
class ModelInputs:
    """What the model is fed for one view, before the audio features.

    audio: float32 [4, window_samples] at the feature sample rate (ACN/SN3D).
    visual: float32 [5, image_size, image_size]. occlusion: the mask [H, W] and level in [0, 1].
    view_tokens: float32 [view_grid^2, 6] (``avi_ros.view_tokens``), None without a view grid or camera.
    """

    audio: np.ndarray
    visual: np.ndarray
    occlusion: OcclusionResult
    view_tokens: np.ndarray | None = None


@dataclass(frozen=True)
class Preprocessor:
    """The preprocessing a model was trained with (see module doc).

    image_size: side [px] of the square visual input. features: the audio feature config (its
    sample rate and window). occlusion: how depth becomes the occlusion mask. view_grid: side of
    the view-token grid the model reads; 0 computes no view tokens (SELD pre-training).
    """

    image_size: int
    features: FeatureConfig
    occlusion: OcclusionConfig
    view_grid: int = 0

    @classmethod
    def from_metadata(
        cls, metadata: CheckpointMetadata, occlusion: OcclusionConfig | None = None
    ) -> Preprocessor:
        """The preprocessing of a checkpoint; ``occlusion`` overrides the one it was trained with."""
        config = metadata.model_config
        return cls(
            image_size=config.visual.image_size,
            features=metadata.feature_config,
            occlusion=occlusion or occlusion_config_of(metadata),
            view_grid=config.view_grid,
        )

    def __call__(
        self,
        rgb: np.ndarray,
        depth_m: np.ndarray,
        audio: np.ndarray,
        sample_rate: int,
        intrinsics: CameraIntrinsics | None = None,
        extrinsic: MicToCamera | None = None,
    ) -> ModelInputs:
        """rgb uint8 [H, W, 3], depth_m float [H, W] in metres (0, NaN, inf: no reading), audio
        float [4, N] at ``sample_rate`` Hz -> the model's inputs for that view.

        intrinsics (of this H x W image) and extrinsic (None: camera at the microphones, same
        axes) give the view tokens when ``view_grid`` > 0.
        """
        depth = np.asarray(depth_m, dtype=np.float32)
        occlusion = compute_occlusion(depth, self.occlusion)
        view_tokens = None
        if self.view_grid > 0 and intrinsics is not None:
            view_tokens = view_tokens_of(
                occlusion.mask,
                depth,
                intrinsics,
                extrinsic or MicToCamera(),
                self.view_grid,
                self.occlusion.near_range_m,
            )
        return ModelInputs(
            audio=audio_window(audio, sample_rate, self.features),
            visual=visual_input(rgb, depth, occlusion.mask, self.image_size),
            occlusion=occlusion,
            view_tokens=view_tokens,
        )
