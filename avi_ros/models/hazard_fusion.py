"""Per-hazard fusion: K hazard queries, each looking at the image in its own heard direction.

Data flow of the ``full`` variant (d = ``AdapterConfig.d_model``, K slots, M view cells, N
visual tokens on a g x g grid):

1. Audio frames [B, T', 128] -> Linear -> [B, T', d], plus a sine code of each frame's age (100 ms
   SELD frames counted back from the window's end, so a slot can tell what sounds now from what
   has stopped; ``recency_code``). K learned queries decode them in a small
   transformer decoder (self-attention between slots, cross-attention to the frames): one
   audio embedding h_k per hazard slot [B, K, d], and its heard direction
   u_k = normalize(Linear(h_k)), a unit vector in the microphone frame.
2. Steering (``steering_window``): affinity a_km = cos(u_k, ray_m) with every view cell's ray;
   window w_km = softmax_m(kappa a_km) (learned kappa, starts at 10: a window of about
   1/sqrt(kappa) rad = 18 deg standard deviation).
   The window reads the hazard's cues: blocked fraction o_k, near depth z_k and hazard-visible
   fraction of the cells it points at, and in_view_k = max_m a_km (1: straight at a cell centre).
3. Visual tokens [B, N, C] -> Linear -> [B, N, d]; the view tokens are area-pooled from the
   G x G view grid to the g x g token grid, so each token gets its own ray and blocked/depth
   marks: keys = visual + ray_embed(ray) + mark_embed(blocked, depth, hazard visible).
4. Each slot's query h_k + ray_embed(u_k) attends over the keys with the additive bias
   kappa cos(u_k, token ray), so a hazard looks where it is heard -> v_k [B, K, d].
5. Reliability MLP(cues_k) -> softmax (w_audio_k, w_visual_k), per hazard; the embedding is
   cat(w_audio_k h_k, w_visual_k v_k) [B, K, 2d]. Visibility logits [B, K, 3] read the
   embedding and the cues.

Baselines: ``concat`` = step 1 + the mean of the projected visual tokens, cat(h_k, mean),
weights 0.5/0.5; ``audio_only`` = step 1, weights 1/0; ``visual_only`` = the queries decode
the visual tokens (+ their ray code), weights 0/1; ``oracle`` = ``full`` fed exact view tokens.
Only the steered variants (full, oracle) read the occlusion in a direction; the others report
``hazard_occlusion`` as NaN.

With ``intensity_bins`` > 0 (``ModelConfig.direction`` = "intensity") every hearing variant adds
step 1b: each slot's mask over the feature bins gives its physics direction p_k (the mask-weighted
intensity vector, ``avi_ros.models.intensity_direction``) and what the mask heard is added to h_k;
the heard direction of step 1 becomes u_k = normalize(p_k + (1 - |p_k|) tanh(Linear(h_k))), that
Linear starting at zero (``corrected_direction``), so the look is steered by physics from the
first step and stays on it wherever the masked bins are coherent.
Every parameter built is used by every forward (DDP needs that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from avi_ros.models.intensity_direction import IntensityDirection, corrected_direction
from avi_ros.taxonomy import Visibility
from avi_ros.view_tokens import VIEW_TOKEN_CHANNELS

DECODER_LAYERS = 2  # transformer decoder layers of the hazard queries
INITIAL_KAPPA = 10.0  # steering sharpness at start: window std ~ 1/sqrt(kappa) rad = 18 deg
CUES = 4  # blocked fraction, near depth, hazard-visible fraction, in-view (see steering_window)
STEERED = ("full", "oracle")


@dataclass(frozen=True)
class AdapterConfig:
    """The fusion's sizes (``ModelConfig.adapter``; the model part is still called ``adapter``):
    ``d_model``: width of the slot embeddings and projected tokens; ``heads``: attention heads of
    the decoder and of the look; ``dropout`` inside both; ``reliability_hidden``: hidden width of
    the reliability network."""

    d_model: int = 512
    heads: int = 8
    dropout: float = 0.1
    reliability_hidden: int = 32

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"adapter.d_model: {self.d_model} must be divisible by heads ({self.heads})")


class ReliabilityNet(nn.Module):
    """Cues [..., k] -> softmax weights [..., 2] = (w_audio, w_visual)."""

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, cues: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.mlp(cues), dim=-1)


@dataclass(kw_only=True)
class FusionReadings:
    """What the fusion finds per slot, which the model's output passes on: audio_weight /
    visual_weight [B, K] (sum 1); visibility_logits [B, K, 3]; hazard_occlusion [B, K] blocked
    fraction read in the slot's direction (NaN when the variant reads none); audio_direction
    [B, K, 3] unit heard direction (None without steering); physics_direction [B, K, 3] the
    mask-weighted intensity vector (not unit; None without ``intensity_bins``)."""

    audio_weight: torch.Tensor
    visual_weight: torch.Tensor
    visibility_logits: torch.Tensor
    hazard_occlusion: torch.Tensor
    audio_direction: torch.Tensor | None = None
    physics_direction: torch.Tensor | None = None


@dataclass(kw_only=True)
class FusionOutput(FusionReadings):
    """The readings and the slot embeddings [B, K, out_dim] that the head reads."""

    embedding: torch.Tensor

    def readings(self) -> dict[str, torch.Tensor | None]:
        """The ``FusionReadings`` fields by name (what the model's output carries on)."""
        return {f.name: getattr(self, f.name) for f in fields(FusionReadings)}


def steering_window(
    direction: torch.Tensor, view_tokens: torch.Tensor, kappa: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each hazard looks and what it finds there.

    direction [B, K, 3] unit (microphone frame); view_tokens [B, M, 6]; kappa > 0.
    Returns the window [B, K, M] (softmax over the cells of kappa * cos(direction, ray)) and
    the cues [B, K, 4] = (blocked fraction, near depth, hazard-visible fraction) averaged under
    the window, and in-view = the best cosine to a cell centre.
    """
    rays = F.normalize(view_tokens[..., :3], dim=-1)
    affinity = direction @ rays.transpose(1, 2)  # [B, K, M]
    window = torch.softmax(kappa * affinity, dim=-1)
    read = window @ view_tokens[..., 3:VIEW_TOKEN_CHANNELS]  # [B, K, 3]
    return window, torch.cat([read, affinity.amax(dim=-1, keepdim=True)], dim=-1)


def view_on_token_grid(view_tokens: torch.Tensor, tokens: int) -> torch.Tensor:
    """View tokens [B, M, 6] on a G x G grid -> [B, tokens, 6] on the visual encoder's g x g
    grid (area pooling; the rays are renormalised)."""
    batch, cells, channels = view_tokens.shape
    side, grid = math.isqrt(cells), math.isqrt(tokens)
    if side * side != cells or grid * grid != tokens:
        raise ValueError(f"model: view tokens ({cells}) and visual tokens ({tokens}) must be square grids")
    maps = view_tokens.transpose(1, 2).reshape(batch, channels, side, side)
    pooled = F.adaptive_avg_pool2d(maps, grid).flatten(2).transpose(1, 2)
    return torch.cat([F.normalize(pooled[..., :3], dim=-1), pooled[..., 3:]], dim=-1)


def recency_code(frames: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Fixed sine-cosine code [frames, dim] of each frame's age: frame index counted back from the
    newest (0 = the last frame), so the code of "now" is the same for any window length."""
    half = dim // 2
    freq = torch.exp(-math.log(100.0) * torch.arange(half, device=device, dtype=torch.float32) / half)
    age = torch.arange(frames - 1, -1, -1, device=device, dtype=torch.float32)[:, None] * freq
    code = torch.zeros(frames, dim, device=device, dtype=torch.float32)
    code[:, :half], code[:, half : 2 * half] = age.sin(), age.cos()
    return code.to(dtype)


def _embed(inputs: int, dim: int) -> nn.Sequential:
    """Small MLP embedding a few geometric numbers into the model width."""
    return nn.Sequential(nn.Linear(inputs, dim), nn.GELU(), nn.Linear(dim, dim))


class HazardSetFusion(nn.Module):
    """Audio frames [B, T', audio_dim] and visual tokens [B, N, visual_dim] (+ view tokens
    [B, M, 6]) -> per-slot FusionOutput (see the module doc). ``audio_dim`` / ``visual_dim`` = 0
    for the variants without that encoder; ``intensity_bins`` = F of the features for directions
    from the intensity vector (0: learned directions), corrected by a learned layer where the
    slot's bins are incoherent unless ``direction_correction`` is False."""

    def __init__(
        self,
        config: AdapterConfig,
        slots: int,
        variant: str,
        audio_dim: int,
        visual_dim: int,
        intensity_bins: int = 0,
        direction_correction: bool = True,
    ) -> None:
        super().__init__()
        d = config.d_model
        self.variant = variant
        self.steered = variant in STEERED
        self.queries = nn.Embedding(slots, d)
        layer = nn.TransformerDecoderLayer(
            d, config.heads, dim_feedforward=2 * d, dropout=config.dropout, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, DECODER_LAYERS, norm=nn.LayerNorm(d))
        self.audio_proj = nn.Linear(audio_dim, d) if audio_dim else None
        self.visual_proj = nn.Linear(visual_dim, d) if visual_dim else None
        self.ray_embed = _embed(3, d) if self.steered or variant == "visual_only" else None
        self.intensity = IntensityDirection(intensity_bins, d) if intensity_bins and audio_dim else None
        if self.steered:
            self.mark_embed = _embed(VIEW_TOKEN_CHANNELS - 3, d)
            # The heard direction that steers the look: learned, physics plus a learned correction
            # (starting at none), or physics alone (no layer).
            self.heard_direction = nn.Linear(d, 3) if self.intensity is None or direction_correction else None
            if self.intensity is not None and self.heard_direction is not None:
                nn.init.zeros_(self.heard_direction.weight)
                nn.init.zeros_(self.heard_direction.bias)
            self.log_kappa = nn.Parameter(torch.tensor(math.log(INITIAL_KAPPA)))
            self.look = nn.MultiheadAttention(d, config.heads, dropout=config.dropout, batch_first=True)
            self.look_norm = nn.LayerNorm(d)
            self.reliability = ReliabilityNet(CUES, config.reliability_hidden)
        self.out_dim = d * (2 if audio_dim and visual_dim else 1)
        self.visibility = nn.Linear(self.out_dim + (CUES if self.steered else 0), len(Visibility))

    def forward(
        self,
        audio_tokens: torch.Tensor | None,
        visual_tokens: torch.Tensor | None,
        view_tokens: torch.Tensor | None,
        spectra: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> FusionOutput:
        """``spectra``: (normalised, raw) features [B, 7, T, F], needed with ``intensity_bins``."""
        if self.variant == "visual_only":
            rays = self._view(view_tokens, visual_tokens.shape[1])[..., :3]
            keys = self.visual_proj(visual_tokens) + self.ray_embed(rays)
            return self._fixed(self._decode(keys), audio_weight=0.0)
        frames = self.audio_proj(audio_tokens)
        heard = self._decode(
            frames + recency_code(frames.shape[1], frames.shape[2], frames.device, frames.dtype)
        )
        physics = None
        if self.intensity is not None:
            if spectra is None:
                raise ValueError("model: directions from the intensity vector need the features (spectra)")
            physics, beam, _ = self.intensity(*spectra, heard)
            heard = heard + beam.to(heard.dtype)
        if self.variant == "audio_only":
            return self._fixed(heard, audio_weight=1.0, physics=physics)
        if self.variant == "concat":
            summary = self.visual_proj(visual_tokens).mean(dim=1, keepdim=True).expand_as(heard)
            return self._fixed(torch.cat([heard, summary], dim=-1), audio_weight=0.5, physics=physics)
        return self._steer(heard, visual_tokens, view_tokens, physics)

    def _decode(self, memory: torch.Tensor) -> torch.Tensor:
        queries = self.queries.weight.unsqueeze(0).expand(memory.shape[0], -1, -1)
        return self.decoder(queries.to(memory.dtype), memory)

    def _view(self, view_tokens: torch.Tensor | None, tokens: int) -> torch.Tensor:
        if view_tokens is None or view_tokens.dim() != 3 or view_tokens.shape[-1] != VIEW_TOKEN_CHANNELS:
            shape = None if view_tokens is None else tuple(view_tokens.shape)
            raise ValueError(
                f"model: variant '{self.variant}' needs view tokens "
                f"[B, M, {VIEW_TOKEN_CHANNELS}], got {shape}"
            )
        return view_on_token_grid(view_tokens.float(), tokens)

    def _steer(
        self,
        heard: torch.Tensor,
        visual_tokens: torch.Tensor,
        view_tokens: torch.Tensor | None,
        physics: torch.Tensor | None,
    ) -> FusionOutput:
        token_view = self._view(view_tokens, visual_tokens.shape[1])  # also checks view_tokens
        if self.heard_direction is None:
            heard_direction = physics.float()
        else:
            heard_direction = self.heard_direction(heard).float()
            if physics is not None:
                heard_direction = corrected_direction(physics, heard_direction)
        direction = F.normalize(heard_direction, dim=-1, eps=1e-6)
        kappa = self.log_kappa.exp()
        _, cues = steering_window(direction, view_tokens.float(), kappa)
        token_rays = token_view[..., :3]
        marks = self.mark_embed(token_view[..., 3:])
        keys = self.visual_proj(visual_tokens) + self.ray_embed(token_rays) + marks
        query = heard + self.ray_embed(direction)
        bias = kappa * (direction @ token_rays.transpose(1, 2))  # [B, K, N]
        bias = bias.repeat_interleave(self.look.num_heads, dim=0).to(query.dtype)
        seen, _ = self.look(query, keys, keys, attn_mask=bias, need_weights=False)
        seen = self.look_norm(seen)
        weights = self.reliability(cues.to(heard.dtype))  # [B, K, 2]
        embedding = torch.cat([weights[..., :1] * heard, weights[..., 1:] * seen], dim=-1)
        return FusionOutput(
            embedding=embedding,
            audio_weight=weights[..., 0],
            visual_weight=weights[..., 1],
            visibility_logits=self.visibility(torch.cat([embedding, cues.to(embedding.dtype)], dim=-1)),
            hazard_occlusion=cues[..., 0],
            audio_direction=direction,
            physics_direction=physics,
        )

    def _fixed(
        self, embedding: torch.Tensor, audio_weight: float, physics: torch.Tensor | None = None
    ) -> FusionOutput:
        shape = embedding.shape[:2]
        return FusionOutput(
            embedding=embedding,
            audio_weight=embedding.new_full(shape, audio_weight),
            visual_weight=embedding.new_full(shape, 1.0 - audio_weight),
            visibility_logits=self.visibility(embedding),
            hazard_occlusion=embedding.new_full(shape, float("nan")),
            physics_direction=physics,
        )
