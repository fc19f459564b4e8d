"""The occlusion-aware adapter: fuses audio frames and image-region tokens into one embedding.

Steps (full model):
1. Project audio frames [B, T', 128] and visual tokens [B, N, C] to d (512); visual tokens get a
   fixed 2-D sine position code, so attention knows where in the image a region lies.
2. Pool the audio over time (learned attention pooling by default, mean by config) and average
   the visual tokens: one summary vector per stream.
3. Cross-attention, each stream keeping its own modality's content: the audio summary queries
   the visual tokens (which regions match what is heard) to form the visual stream, and the
   visual summary queries the audio frames (which moments match what is seen) to form the audio
   stream; both with a residual from the stream's own summary and LayerNorm.
4. A reliability network maps the reliability input (the occlusion level, plus the one-hot
   true visibility for the oracle) to softmax weights (w_audio, w_visual) summing to 1; each
   stream is scaled by its weight and the two are concatenated: 2 d = 1024 dims.

Baselines switch parts off: ``cross_attention=False`` and ``reliability_inputs=0`` give plain
concatenation with fixed weights 0.5 / 0.5; a missing stream gives a single-stream embedding of
d dims with weights 1 / 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

POOLING_MODES = ("attention", "mean")


@dataclass(frozen=True)
class AdapterConfig:
    """``d_model``: width of each stream; ``heads``: cross-attention heads; ``pooling``: audio
    pooling over time (attention or mean); ``reliability_hidden``: hidden width of the
    reliability network."""

    d_model: int = 512
    heads: int = 8
    pooling: str = "attention"
    dropout: float = 0.1
    reliability_hidden: int = 32

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"adapter.pooling: expected one of {POOLING_MODES}, got '{self.pooling}'")
        if self.d_model % self.heads or self.d_model % 4:
            raise ValueError(
                f"adapter.d_model: {self.d_model} must be divisible by heads ({self.heads}) and 4"
            )


@dataclass
class AdapterOutput:
    """``embedding`` [B, out_dim]; ``audio_weight`` and ``visual_weight`` [B] in [0, 1]."""

    embedding: torch.Tensor
    audio_weight: torch.Tensor
    visual_weight: torch.Tensor


class TimePooling(nn.Module):
    """[B, T, d] -> [B, d]: softmax-weighted sum with learned per-frame scores, or the mean."""

    def __init__(self, dim: int, mode: str = "attention") -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1) if mode == "attention" else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.score is None:
            return tokens.mean(dim=1)
        weights = torch.softmax(self.score(tokens), dim=1)  # [B, T, 1]
        return (weights * tokens).sum(dim=1)


def sine_position_code(grid: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Fixed 2-D sine-cosine code [grid * grid, dim] for a square token grid (row-major)."""
    quarter = dim // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
    pos = torch.arange(grid, device=device, dtype=torch.float32)[:, None] * freq  # [grid, quarter]
    rows = torch.cat([pos.sin(), pos.cos()], dim=1)[:, None, :].expand(grid, grid, 2 * quarter)
    cols = torch.cat([pos.sin(), pos.cos()], dim=1)[None, :, :].expand(grid, grid, 2 * quarter)
    return torch.cat([rows, cols], dim=-1).reshape(grid * grid, 4 * quarter).to(dtype)


class CrossAttention(nn.Module):
    """One query vector attends over tokens: LayerNorm(residual + MHA(query, tokens, tokens)).

    The residual is the summary of the tokens' own modality, so the output keeps that
    modality's content while the other modality's query decides where to look.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(query[:, None], tokens, tokens, need_weights=False)
        return self.norm(residual + attended[:, 0])


class ReliabilityNet(nn.Module):
    """Reliability input [B, k] -> softmax weights [B, 2] = (w_audio, w_visual)."""

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, reliability_input: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.mlp(reliability_input), dim=-1)


class OcclusionAwareAdapter(nn.Module):
    """Fuses audio frames [B, T', audio_dim] and visual tokens [B, N, visual_dim] (see module doc).

    ``audio_dim`` or ``visual_dim`` = 0 removes that stream; ``reliability_inputs`` = 0 removes
    the reliability network.
    """

    def __init__(
        self,
        config: AdapterConfig,
        audio_dim: int,
        visual_dim: int,
        cross_attention: bool = True,
        reliability_inputs: int = 1,
    ) -> None:
        super().__init__()
        if not audio_dim and not visual_dim:
            raise ValueError("adapter: needs at least one of the audio and visual streams")
        both = bool(audio_dim and visual_dim)
        if (cross_attention or reliability_inputs) and not both:
            raise ValueError("adapter: cross-attention and reliability weighting need both streams")
        self.config = config
        d = config.d_model
        self.audio_proj = nn.Linear(audio_dim, d) if audio_dim else None
        self.audio_pool = TimePooling(d, config.pooling) if audio_dim else None
        self.visual_proj = nn.Linear(visual_dim, d) if visual_dim else None
        self.audio_to_visual = CrossAttention(d, config.heads, config.dropout) if cross_attention else None
        self.visual_to_audio = CrossAttention(d, config.heads, config.dropout) if cross_attention else None
        self.reliability = (
            ReliabilityNet(reliability_inputs, config.reliability_hidden) if reliability_inputs else None
        )
        self.out_dim = d * (2 if both else 1)

    def forward(
        self,
        audio_tokens: torch.Tensor | None,
        visual_tokens: torch.Tensor | None,
        reliability_input: torch.Tensor | None = None,
    ) -> AdapterOutput:
        audio = visual = None
        if self.audio_proj is not None:
            audio = self.audio_proj(audio_tokens)
            audio_summary = self.audio_pool(audio)
        if self.visual_proj is not None:
            visual = self.visual_proj(visual_tokens)
            grid = math.isqrt(visual.shape[1])
            if grid * grid == visual.shape[1]:
                visual = visual + sine_position_code(grid, visual.shape[-1], visual.device, visual.dtype)
            visual_summary = visual.mean(dim=1)
        if visual is None:
            return self._single(audio_summary, audio_is_present=True)
        if audio is None:
            return self._single(visual_summary, audio_is_present=False)

        if self.audio_to_visual is not None:
            visual_stream = self.audio_to_visual(audio_summary, visual, residual=visual_summary)
            audio_stream = self.visual_to_audio(visual_summary, audio, residual=audio_summary)
        else:
            audio_stream, visual_stream = audio_summary, visual_summary
        if self.reliability is None:
            half = audio_stream.new_full((audio_stream.shape[0],), 0.5)
            return AdapterOutput(torch.cat([audio_stream, visual_stream], dim=-1), half, half)
        if reliability_input is None:
            raise ValueError("adapter: the reliability network needs its input (occlusion level)")
        weights = self.reliability(reliability_input.to(audio_stream.dtype))
        w_audio, w_visual = weights[:, 0], weights[:, 1]
        embedding = torch.cat([w_audio[:, None] * audio_stream, w_visual[:, None] * visual_stream], dim=-1)
        return AdapterOutput(embedding, w_audio, w_visual)

    @staticmethod
    def _single(summary: torch.Tensor, audio_is_present: bool) -> AdapterOutput:
        ones = summary.new_ones(summary.shape[0])
        zeros = summary.new_zeros(summary.shape[0])
        if audio_is_present:
            return AdapterOutput(summary, ones, zeros)
        return AdapterOutput(summary, zeros, ones)
