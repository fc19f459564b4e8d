"""The decision model (SIM v0): a window of frame features + telemetry -> risk, reason, action, confidence.

Input: features [B, F, dv] (``avi_ros.decision.features``) and telemetry [B, 8]
(``avi_ros.telemetry``). The trainable projectors map each frame's feature to d
(Linear-GELU-Linear), the telemetry (scaled by ``TELEMETRY_SCALE``) through an MLP 8 -> d, and
add a learned task token. Segment pooling averages the F projected frames in K equal segments
(K visual tokens). The prefix ``[K visual, 1 telemetry, 1 task]`` goes through the backbone,
whose output at the last position (the task token, which under a causal mask has seen the
whole prefix) feeds the heads: risk (4), reason (4), action (6) logits and a confidence logit.

Backbones (``DecisionModelConfig.backbone``):

- ``transformer`` (default): a small causal transformer (pre-norm, learned positions), trained
  from scratch: no weights can be downloaded here;
- ``hf_local``: a decoder-only language model loaded with ``transformers.AutoModel`` from a
  local directory (``local_files_only=True``), frozen (``requires_grad`` off, always in eval
  mode); d becomes its hidden size and only the projectors and heads train. A meaningful frozen
  backbone needs real pretrained weights the user supplies;
- ``none``: an MLP over the flattened pooled prefix (the ablation without a sequence model).

``telemetry: zero`` is the baseline that ignores the robot's motion: the same model with the
telemetry zeroed inside ``forward``, in training and at inference alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from avi_ros.config_io import build, to_plain
from avi_ros.decision.labels import ACTION_NAMES, REASON_NAMES, RISK_NAMES
from avi_ros.telemetry import TELEMETRY_SIZE

BACKBONES = ("none", "transformer", "hf_local")
TELEMETRY_MODES = ("full", "zero")
# Typical magnitudes of (ax, ay, az, gx, gy, gz, v, w): m/s², rad/s, m/s, rad/s. Dividing by them
# keeps the telemetry near unit scale without statistics, so zeros (missing) stay zeros.
TELEMETRY_SCALE = (2.0, 2.0, 9.81, 1.0, 1.0, 1.0, 1.5, 1.0)


@dataclass(frozen=True)
class DecisionModelConfig:
    """Shape of the decision model.

    frames (F) per window, pooled to tokens (K) visual tokens (F divisible by K); d_model: the
    token width d (``hf_local`` uses the backbone's hidden size instead); layers / heads /
    ff_hidden / dropout: the ``transformer`` backbone (``none`` uses ff_hidden and dropout);
    telemetry_hidden: the telemetry MLP's hidden width; hf_path: the local model directory of
    ``hf_local``; telemetry: ``full`` or ``zero`` (the baseline without the robot's motion);
    frame_period_s: the camera period [s] the F frames are placed by (``features.FeatureWindow``):
    the window spans F of them, whatever frames the node skipped in between.
    """

    frames: int = 8
    tokens: int = 4
    d_model: int = 64
    backbone: Literal["none", "transformer", "hf_local"] = "transformer"
    layers: int = 2
    heads: int = 4
    ff_hidden: int = 128
    dropout: float = 0.1
    telemetry_hidden: int = 64
    hf_path: str | None = None
    telemetry: Literal["full", "zero"] = "full"
    frame_period_s: float = 1.0 / 15.0  # the demo camera's 15 Hz

    def __post_init__(self) -> None:
        if self.frames < 1 or self.tokens < 1 or self.frames % self.tokens:
            raise ValueError(
                f"frames / tokens: expected F >= 1 divisible by K >= 1, got F={self.frames}, K={self.tokens}"
            )
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone: expected one of {list(BACKBONES)}, got '{self.backbone}'")
        if self.telemetry not in TELEMETRY_MODES:
            raise ValueError(f"telemetry: expected one of {list(TELEMETRY_MODES)}, got '{self.telemetry}'")
        for name in ("d_model", "layers", "heads", "ff_hidden", "telemetry_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(self, name)}")
        if self.backbone == "transformer" and self.d_model % self.heads:
            raise ValueError(f"d_model: expected a multiple of heads ({self.heads}), got {self.d_model}")
        if not self.frame_period_s > 0.0:
            raise ValueError(f"frame_period_s: expected a camera period > 0 s, got {self.frame_period_s}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a value in [0, 1), got {self.dropout}")
        if self.backbone == "hf_local" and not self.hf_path:
            raise ValueError("hf_path: expected the local model directory when backbone is 'hf_local'")

    @property
    def prefix_length(self) -> int:
        """K visual tokens + 1 telemetry token + 1 task token."""
        return self.tokens + 2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for checkpoint metadata (``avi_ros.config_io``)."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionModelConfig:
        """Inverse of ``to_dict``; a ConfigError (ValueError) names the first bad key."""
        return build(cls, dict(data), "model_config")


class DecisionOutput(NamedTuple):
    """Logits: risk [B, 4], reason [B, 4], action [B, 6], confidence [B] (sigmoid -> 0..1)."""

    risk: torch.Tensor
    reason: torch.Tensor
    action: torch.Tensor
    confidence: torch.Tensor


def segment_pool(tokens: torch.Tensor, segments: int) -> torch.Tensor:
    """[B, F, d] -> [B, K, d]: the mean of each of K consecutive, equal segments of the F frames."""
    batch, frames, width = tokens.shape
    if frames % segments:
        raise ValueError(f"segment_pool: {frames} frames do not split into {segments} equal segments")
    return tokens.reshape(batch, segments, frames // segments, width).mean(dim=2)


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.Linear(hidden, outputs))


class DecisionProjector(nn.Module):
    """Features and telemetry -> the prefix [B, K + 2, d] (module docstring)."""

    def __init__(self, config: DecisionModelConfig, feature_size: int, width: int) -> None:
        super().__init__()
        self.config = config
        self.visual = _mlp(feature_size, width, width)
        self.telemetry = _mlp(TELEMETRY_SIZE, config.telemetry_hidden, width)
        self.task_token = nn.Parameter(torch.randn(width) * 0.02)
        self.register_buffer("telemetry_scale", torch.tensor(TELEMETRY_SCALE), persistent=False)

    def forward(self, features: torch.Tensor, telemetry: torch.Tensor) -> torch.Tensor:
        visual = segment_pool(self.visual(features), self.config.tokens)
        if self.config.telemetry == "zero":
            telemetry = torch.zeros_like(telemetry)
        motion = self.telemetry(telemetry / self.telemetry_scale).unsqueeze(1)
        task = self.task_token.expand(features.shape[0], 1, -1)
        return torch.cat([visual, motion, task.to(visual.dtype)], dim=1)


class TransformerBackbone(nn.Module):
    """A small causal pre-norm transformer with learned positions; returns the last position [B, d]."""

    def __init__(self, config: DecisionModelConfig) -> None:
        super().__init__()
        length, width = config.prefix_length, config.d_model
        self.position = nn.Parameter(torch.randn(1, length, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width,
            config.heads,
            config.ff_hidden,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.register_buffer(
            "causal_mask", nn.Transformer.generate_square_subsequent_mask(length), persistent=False
        )

    def forward(self, prefix: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(prefix + self.position, mask=self.causal_mask, is_causal=True)
        return self.norm(hidden[:, -1])


class MlpBackbone(nn.Module):
    """No sequence model: an MLP over the flattened prefix [B, (K + 2)·d] -> [B, d]."""

    def __init__(self, config: DecisionModelConfig) -> None:
        super().__init__()
        width = config.d_model
        self.net = nn.Sequential(
            nn.Linear(config.prefix_length * width, config.ff_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ff_hidden, width),
            nn.LayerNorm(width),
        )

    def forward(self, prefix: torch.Tensor) -> torch.Tensor:
        return self.net(prefix.flatten(1))


class HfBackbone(nn.Module):
    """A frozen decoder-only model from a local directory (``transformers``, no download)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        try:
            from transformers import AutoModel
        except ImportError as exc:  # a real dependency (requirements.txt), but say what to do
            raise ImportError(
                "backbone 'hf_local' needs transformers: pip install -r requirements.txt"
            ) from exc
        try:
            self.lm = AutoModel.from_pretrained(path, local_files_only=True)
        except OSError as exc:
            raise FileNotFoundError(
                f"hf_path '{path}': no local model there ({exc}); give a directory written by "
                "save_pretrained (nothing is downloaded)"
            ) from exc
        if getattr(self.lm.config, "is_encoder_decoder", False):
            raise ValueError(f"hf_path '{path}': expected a decoder-only model, got an encoder-decoder")
        self.hidden_size = int(self.lm.config.hidden_size)
        self.lm.requires_grad_(False)
        self.lm.eval()

    def train(self, mode: bool = True) -> HfBackbone:
        """Frozen: the language model stays in eval mode (no dropout) whatever the caller asks."""
        super().train(mode)
        self.lm.eval()
        return self

    def forward(self, prefix: torch.Tensor) -> torch.Tensor:
        return self.lm(inputs_embeds=prefix).last_hidden_state[:, -1]


class DecisionHeads(nn.Module):
    """Risk, reason, action and confidence read out of the last position's state [B, d]."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.risk = nn.Linear(width, len(RISK_NAMES))
        self.reason = nn.Linear(width, len(REASON_NAMES))
        self.action = nn.Linear(width, len(ACTION_NAMES))
        self.confidence = nn.Linear(width, 1)

    def forward(self, state: torch.Tensor) -> DecisionOutput:
        state = self.norm(state)
        return DecisionOutput(
            self.risk(state), self.reason(state), self.action(state), self.confidence(state).squeeze(-1)
        )


class DecisionModel(nn.Module):
    """Projector -> backbone -> heads (module docstring). ``width`` is d as actually used."""

    def __init__(self, config: DecisionModelConfig, feature_size: int) -> None:
        super().__init__()
        self.config = config
        self.feature_size = feature_size
        if config.backbone == "hf_local":
            assert config.hf_path is not None  # checked by the config
            self.backbone: nn.Module = HfBackbone(config.hf_path)
            self.width = self.backbone.hidden_size
        else:
            self.backbone = (
                TransformerBackbone(config) if config.backbone == "transformer" else MlpBackbone(config)
            )
            self.width = config.d_model
        self.projector = DecisionProjector(config, feature_size, self.width)
        self.heads = DecisionHeads(self.width)

    @property
    def backbone_frozen(self) -> bool:
        return self.config.backbone == "hf_local"

    def forward(self, features: torch.Tensor, telemetry: torch.Tensor) -> DecisionOutput:
        """features [B, F, dv], telemetry [B, 8] -> DecisionOutput."""
        if features.shape[1:] != (self.config.frames, self.feature_size):
            raise ValueError(
                f"features: expected [B, {self.config.frames}, {self.feature_size}], "
                f"got {list(features.shape)}"
            )
        return self.heads(self.backbone(self.projector(features, telemetry)))

    def trainable_parts(self) -> dict[str, nn.Module]:
        """``adapter`` (projectors, and the backbone unless frozen) and ``head``: the optimiser's groups."""
        adapter: nn.Module = self.projector
        if not self.backbone_frozen:
            adapter = nn.ModuleList([self.projector, self.backbone])
        return {"adapter": adapter, "head": self.heads}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What a checkpoint holds: everything but a frozen backbone (which loads from its own directory)."""
        state = self.state_dict()
        if self.backbone_frozen:
            state = {k: v for k, v in state.items() if not k.startswith("backbone.")}
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of ``trainable_state_dict``; raises on any missing or unexpected key."""
        result = self.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not (self.backbone_frozen and k.startswith("backbone."))]
        if missing or result.unexpected_keys:
            raise KeyError(
                f"decision weights do not fit: missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}"
            )


def parameter_counts(model: DecisionModel) -> dict[str, int]:
    """{"trainable": n, "total": n} parameters."""
    return {
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in model.parameters()),
    }


def check_frozen(model: DecisionModel) -> dict[str, int]:
    """The parameter counts; for a frozen backbone asserts 0 < trainable < total (the contract)."""
    counts = parameter_counts(model)
    if model.backbone_frozen and not 0 < counts["trainable"] < counts["total"]:
        raise AssertionError(
            f"frozen backbone: expected 0 < trainable < total parameters, got {counts['trainable']} of "
            f"{counts['total']}"
        )
    return counts
