"""The DCASE2023 Task 3 baseline SELD network (``SeldModel``) as an audio encoder.

The module names follow the baseline exactly (``conv_block_list``, ``gru``, ``mhsa_block_list``,
``layer_norm_list``, ``fnn_list``), so a baseline state_dict loads key for key with
``load_dcase_checkpoint``. ``forward`` returns the per-frame embeddings after the attention
layers [B, T', rnn_size]; the multi-ACCDOA head (``fnn_list``) exists only when
``accdoa_classes > 0`` and is used for SELD pre-training through ``accdoa``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SeldEncoderConfig:
    """Hyper-parameters of the baseline; the defaults are DCASE2023's FOA configuration.

    ``in_channels`` x ``n_bins`` is the feature map per frame (7 x 64). ``t_pool`` / ``f_pool``
    are the max-pool sizes of the three conv blocks over time and frequency.
    ``accdoa_classes`` = 0 drops the multi-ACCDOA head; 13 gives the baseline's 117 outputs.
    """

    in_channels: int = 7
    n_bins: int = 64
    n_filters: int = 64
    t_pool: tuple[int, ...] = (5, 1, 1)
    f_pool: tuple[int, ...] = (4, 4, 2)
    rnn_size: int = 128
    rnn_layers: int = 2
    attn_layers: int = 2
    attn_heads: int = 8
    fnn_size: int = 128
    fnn_layers: int = 1
    dropout: float = 0.05
    accdoa_tracks: int = 3
    accdoa_classes: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "t_pool", tuple(int(t) for t in self.t_pool))
        object.__setattr__(self, "f_pool", tuple(int(f) for f in self.f_pool))
        if len(self.t_pool) != len(self.f_pool) or not self.t_pool:
            raise ValueError("seld_encoder: t_pool and f_pool need the same, non-zero length")
        if self.n_bins // math.prod(self.f_pool) < 1:
            raise ValueError(
                f"seld_encoder.n_bins: {self.n_bins} bins vanish after frequency pooling {self.f_pool}"
            )
        if self.rnn_size % self.attn_heads:
            raise ValueError(f"seld_encoder: rnn_size {self.rnn_size} not divisible by attn_heads")

    @property
    def gru_input_size(self) -> int:
        return self.n_filters * (self.n_bins // math.prod(self.f_pool))

    @property
    def time_pool(self) -> int:
        """Feature frames per output frame (5: 20 ms frames -> 100 ms label frames)."""
        return math.prod(self.t_pool)


class ConvBlock(nn.Module):
    """Conv2d 3x3 -> BatchNorm2d -> ReLU (the baseline's ConvBlock; pooling and dropout follow it)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class SeldEncoder(nn.Module):
    """CRNN + MHSA of the DCASE2023 baseline: features [B, C, T, F] -> embeddings [B, T // 5, 128]."""

    def __init__(self, config: SeldEncoderConfig = SeldEncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.conv_block_list = nn.ModuleList()
        for index, (t_pool, f_pool) in enumerate(zip(config.t_pool, config.f_pool, strict=True)):
            in_channels = config.n_filters if index else config.in_channels
            self.conv_block_list.append(ConvBlock(in_channels, config.n_filters))
            self.conv_block_list.append(nn.MaxPool2d((t_pool, f_pool)))
            self.conv_block_list.append(nn.Dropout2d(p=config.dropout))
        self.gru = nn.GRU(
            input_size=config.gru_input_size,
            hidden_size=config.rnn_size,
            num_layers=config.rnn_layers,
            batch_first=True,
            dropout=config.dropout,
            bidirectional=True,
        )
        self.mhsa_block_list = nn.ModuleList(
            nn.MultiheadAttention(
                config.rnn_size, config.attn_heads, dropout=config.dropout, batch_first=True
            )
            for _ in range(config.attn_layers)
        )
        self.layer_norm_list = nn.ModuleList(nn.LayerNorm(config.rnn_size) for _ in range(config.attn_layers))
        self.fnn_list = nn.ModuleList()
        if config.accdoa_classes:
            width = config.rnn_size
            for _ in range(config.fnn_layers):
                self.fnn_list.append(nn.Linear(width, config.fnn_size))
                width = config.fnn_size
            self.fnn_list.append(nn.Linear(width, self.accdoa_size))

    @property
    def embedding_dim(self) -> int:
        return self.config.rnn_size

    @property
    def accdoa_size(self) -> int:
        """Outputs of the multi-ACCDOA head: tracks x 3 (xyz) x classes."""
        return self.config.accdoa_tracks * 3 * self.config.accdoa_classes

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features
        for layer in self.conv_block_list:
            x = layer(x)
        x = x.transpose(1, 2).flatten(2)  # [B, T', filters * F'], filter-major as in the baseline
        # Under autocast the convs return reduced precision, which not every GRU backend accepts;
        # the GRU is small, so it runs in its weights' dtype.
        x, _ = self.gru(x.to(self.gru.weight_ih_l0.dtype))
        x = torch.tanh(x)
        half = x.shape[-1] // 2
        x = x[..., half:] * x[..., :half]  # backward * forward direction
        for attention, norm in zip(self.mhsa_block_list, self.layer_norm_list, strict=True):
            attended, _ = attention(x, x, x, need_weights=False)
            x = norm(attended + x)
        return x

    def accdoa(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Multi-ACCDOA vectors [B, T', tracks, 3, classes] in [-1, 1] from ``forward``'s embeddings.

        The flat layout of the baseline's 117 outputs is (track, xyz, class); a track is active
        where its xyz vector is longer than 0.5.
        """
        if not self.config.accdoa_classes:
            raise RuntimeError("seld_encoder: built without a multi-ACCDOA head (accdoa_classes = 0)")
        x = embeddings
        for layer in self.fnn_list[:-1]:
            x = layer(x)
        out = torch.tanh(self.fnn_list[-1](x))
        return out.unflatten(-1, (self.config.accdoa_tracks, 3, self.config.accdoa_classes))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, or of a torch file loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state_dict (a mapping of names to tensors), got {type(state)}")
    return dict(state)


def load_dcase_checkpoint(encoder: SeldEncoder, source: str | Path | Mapping[str, torch.Tensor]) -> list[str]:
    """Copy a DCASE2023 baseline state_dict (a path or a mapping) into ``encoder``.

    Every key of the encoder must be present with the same shape; the check runs in the
    encoder's own key order and fails on the first problem, naming the key and both shapes.
    A ``module.`` prefix (DataParallel) is stripped. The baseline's head (``fnn_list.*``) is
    skipped when the encoder has none. When only the head's output layer differs in shape (the
    encoder predicts another class set, e.g. 9 classes against the baseline's 13), the trunk
    and the head's hidden layers load and the output layer is re-initialised, with a warning:
    pre-training on another class set starts from the baseline's features, not its classes.
    Any other key the encoder does not know is an error. Raises ValueError on any problem and
    loads nothing then; returns the checkpoint keys that were not loaded.
    """
    state = read_state_dict(source) if isinstance(source, (str, Path)) else dict(source)
    origin = str(source) if isinstance(source, (str, Path)) else "the given state_dict"
    if state and all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    own = encoder.state_dict()
    output_layer = _output_layer_prefix(encoder)
    head_mismatch = False
    for key, target in own.items():
        if key not in state:
            raise ValueError(f"DCASE checkpoint {origin}: missing key '{key}' (shape {tuple(target.shape)})")
        if tuple(state[key].shape) != tuple(target.shape):
            if output_layer is not None and key.startswith(output_layer):
                head_mismatch = True
                continue
            raise ValueError(
                f"DCASE checkpoint {origin}: shape mismatch at key '{key}': checkpoint "
                f"{tuple(state[key].shape)}, encoder {tuple(target.shape)}"
            )
    extra = [key for key in state if key not in own]
    unexpected = [key for key in extra if not key.startswith("fnn_list.")]
    if unexpected:
        raise ValueError(
            f"DCASE checkpoint {origin}: unexpected key '{unexpected[0]}' "
            f"({len(unexpected)} keys the encoder does not have)"
        )
    # The whole output layer (weight and bias) is re-initialised when any of it does not fit.
    reinitialised = [key for key in own if head_mismatch and key.startswith(output_layer)]
    loaded = {key: own[key] if key in reinitialised else state[key] for key in own}
    encoder.load_state_dict(loaded, strict=True)
    if reinitialised:
        layer = encoder.fnn_list[-1]
        layer.reset_parameters()
        warnings.warn(
            f"DCASE checkpoint {origin}: its multi-ACCDOA output layer has shape "
            f"{tuple(state[output_layer + 'weight'].shape)}, this encoder's {tuple(layer.weight.shape)} "
            f"({encoder.config.accdoa_tracks} tracks x 3 x {encoder.config.accdoa_classes} classes); "
            f"loaded the rest and re-initialised {output_layer.rstrip('.')}",
            stacklevel=2,
        )
    return [*extra, *reinitialised]


def _output_layer_prefix(encoder: SeldEncoder) -> str | None:
    """State-dict prefix of the multi-ACCDOA output layer (``fnn_list.N.``), None without a head."""
    if not len(encoder.fnn_list):
        return None
    return f"fnn_list.{len(encoder.fnn_list) - 1}."
