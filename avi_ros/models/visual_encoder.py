"""A torchvision ResNet trunk over 5-channel images (RGB, depth, occlusion mask) that keeps its
spatial feature map as tokens, so the adapter can attend over image regions.

The submodules keep torchvision's names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), so an
ImageNet state_dict loads key for key; only ``conv1`` changes shape (3 -> 5 input channels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet

from avi_ros.models.seld_encoder import read_state_dict

RESNET_BUILDERS = {"resnet18": resnet.resnet18, "resnet34": resnet.resnet34, "resnet50": resnet.resnet50}
VISUAL_CHANNELS = 5  # RGB, depth, occlusion mask (see avi_ros.vision.visual_input)
TRUNK_STRIDE = 32  # pixels per output token along each axis


@dataclass(frozen=True)
class VisualEncoderConfig:
    """``arch``: resnet18, resnet34 or resnet50. Input images are ``image_size`` pixels square."""

    arch: str = "resnet50"
    image_size: int = 224

    def __post_init__(self) -> None:
        if self.arch not in RESNET_BUILDERS:
            raise ValueError(
                f"visual_encoder.arch: expected one of {sorted(RESNET_BUILDERS)}, got '{self.arch}'"
            )
        if self.image_size < TRUNK_STRIDE or self.image_size % TRUNK_STRIDE:
            raise ValueError(
                f"visual_encoder.image_size: expected a positive multiple of {TRUNK_STRIDE}, "
                f"got {self.image_size}"
            )

    @property
    def num_tokens(self) -> int:
        return (self.image_size // TRUNK_STRIDE) ** 2


class VisualEncoder(nn.Module):
    """Images [B, 5, S, S] -> region tokens [B, (S/32)^2, C] (C = 512 for resnet18/34, 2048 for 50)."""

    def __init__(self, config: VisualEncoderConfig = VisualEncoderConfig()) -> None:
        super().__init__()
        self.config = config
        trunk = RESNET_BUILDERS[config.arch](weights=None)
        self.conv1 = nn.Conv2d(VISUAL_CHANNELS, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = trunk.bn1
        self.relu = trunk.relu
        self.maxpool = trunk.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            trunk.layer1,
            trunk.layer2,
            trunk.layer3,
            trunk.layer4,
        )
        self.out_channels = trunk.fc.in_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.flatten(2).transpose(1, 2)

    def load_imagenet_weights(self, source: str | Path | Mapping[str, torch.Tensor]) -> None:
        """Load a local torchvision ImageNet state_dict of the same architecture.

        The RGB filters of ``conv1`` are copied; the depth and mask filters start as their mean,
        so the pretrained responses are kept and the new channels begin with a sensible scale.
        The classifier (``fc.*``) is dropped. Any missing key or other shape mismatch is an error.
        """
        state = read_state_dict(source) if isinstance(source, (str, Path)) else dict(source)
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
        rgb = state.get("conv1.weight")
        if rgb is None or tuple(rgb.shape) != (64, 3, 7, 7):
            shape = None if rgb is None else tuple(rgb.shape)
            raise ValueError(
                f"ImageNet weights {source}: expected conv1.weight of shape (64, 3, 7, 7), got {shape}"
            )
        extra = rgb.mean(dim=1, keepdim=True).expand(-1, VISUAL_CHANNELS - 3, -1, -1)
        state["conv1.weight"] = torch.cat([rgb, extra], dim=1)
        own = self.state_dict()
        for key, target in own.items():
            if key not in state or tuple(state[key].shape) != tuple(target.shape):
                got = tuple(state[key].shape) if key in state else "missing"
                raise ValueError(
                    f"ImageNet weights {source} do not fit {self.config.arch}: key '{key}' is {got}, "
                    f"expected {tuple(target.shape)}"
                )
        self.load_state_dict({key: state[key] for key in own}, strict=True)
