"""A torch Dataset over cached scene shards.

It returns the raw arrays (audio, RGB, depth, masks) and the labels of each sample; the
training code turns them into features with the same core code the node uses, so nothing
here can drift from run time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from avi_ros.data.shards import ShardReader
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.taxonomy import Taxonomy


class SceneShardDataset(Dataset):
    """Map-style dataset of a directory written by ``write_shards`` / ``python -m avi_ros.data.synthesize``.

    Each item is a dict of numpy arrays: ``audio`` float32 [4, N] (ACN/SN3D), ``rgb`` uint8
    [H, W, 3], ``depth_m`` float32 [H, W], ``occluder_mask`` / ``hazard_mask`` bool [H, W], and the
    labels of ``shards.LABEL_FIELDS`` as 0-d arrays (angles rad, distance m). The default
    collate function stacks them into tensors.
    """

    def __init__(self, root: str | Path) -> None:
        self.reader = ShardReader(root)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.reader[index]

    @property
    def taxonomy(self) -> Taxonomy:
        return self.reader.taxonomy

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.reader.config.intrinsics

    @property
    def extrinsic(self) -> MicToCamera:
        return self.reader.config.extrinsic

    @property
    def sample_rate(self) -> int:
        return self.reader.config.sample_rate
