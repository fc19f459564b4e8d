"""Direction from physics inside the model: each hazard slot's mask-weighted FOA intensity vector.

A first-order ambisonics array measures the direction of arrival directly: the active intensity
vector Re(W* [X, Y, Z]) of a time-frequency bin points at the source that dominates that bin, and
its length (normalised by the bin's energy, as the DCASE features do) shrinks where the field is
diffuse. The features already carry it (channels 4..6 of ``avi_ros.features``' dcase kind, in
(y, z, x) order, mel-binned and divided by the bin energy), so the model does not have to learn
geometry from data, which a 2-core CPU cannot afford (learned directions missed plane waves by
44-81 degrees; the intensity vector is exact on them).

What is learned is *which bins belong to which hazard*. For K slot embeddings h_k [B, K, d]:

1. keys(t, f) = conv(normalised features)(t, f) + a code of the frame's age + a learned code of
   the frequency bin: [B, c, T, F] (c = ``KEY_CHANNELS``);
2. a mask per slot over every bin, m_k = softmax_{t,f}(q(h_k) . keys(t, f) / sqrt(c));
3. the physics direction p_k = sum_{t,f} w m_k I / sum_{t,f} w m_k |I| [B, K, 3] (x, y, z),
   with the bin weight w(t, f) = E(t, f) |I(t, f)|: the masked, weighted intensity divided by
   its masked, weighted length, so |p_k| is the coherence of the masked bins, 1 when they all
   point one way (a plane wave), near 0 where they disagree (diffuse field, several sources).
   E is the bin's omni (W) power relative to the window's loudest bin (from the log-mel
   channel 0) and |I| its directness (the feature's intensity is divided by the bin energy, so
   its length is near 1 where one source dominates and near 0 in a diffuse field): the weights
   of ``avi_ros.doa.tf_direction``, energy times (1 - diffuseness). Without them a mask spread
   over quiet noise bins averaged their random directions in: the shipped model missed
   free-field plane waves by 13 deg (100 deg behind the robot) where its own masks, weighted,
   miss by 2 deg. The division matters too: the feature channels are mel-weighted and divided
   by the bin energy, so a raw sum is about 0.005 long and any learned correction would drown
   it (seen in training);
4. the direction of p_k is then moved from that weighted *mean* to the nearest *mode* of the same
   weighted bins (``seek_mode``: ``MODE_STEPS`` mean-shift steps with a von Mises kernel of width
   ``MODE_WIDTH_DEG`` around the current direction); its length stays the coherence of step 3. A
   mean is pulled towards reflections, diffuse noise and the other sources a mask half covers;
   the mode stays on the direct sound, as the histogram peak of ``avi_ros.doa.candidate_directions``
   does. Only at inference (``eval()``): in training the mean's gradient is what teaches a mask
   to move onto a second source, which a mode already locked on the first one hides (two slots
   trained on the mode both settled on one of two sources). Parameter-free, so it applies to
   models trained without it: on the validation split it raised the shipped model's F20 from 39.2
   to 40.6 % and cut its median azimuth error behind the robot from 8.7 to 4.9 deg
   (``docs/results/direction_mode/`` has both readings, and three seeds of the quick config);
5. what the mask heard, s_k = W sum_{t,f} m_k(t, f) keys(t, f) [B, K, d], is added to h_k, so the
   slot's class reads the same bins its direction comes from (a "beam" in feature space).

Callers turn p_k into a direction with ``corrected_direction``: normalize(p_k + (1 - |p_k|)
tanh(c_k)), c_k a learned correction whose layer starts at zero. The correction is gated by the
incoherence 1 - |p_k|: where the masked bins agree (a plane wave, |p_k| = 1) physics alone
decides, so no amount of training can pull a clear direction away from what the array measured;
where they disagree (reverberation, diffuse noise) the learned part takes over. An ungated
correction took over everywhere within 5 epochs (median error 18 deg on free-field plane waves,
against 0.4 deg for physics).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avi_ros.features import FEATURE_CHANNELS

KEY_CHANNELS = 32  # width of the per-bin keys
AGE_CODE = 16  # width of the fixed sine code of each feature frame's age
# Feature channels of the intensity vector's x, y and z components (the dcase kind stores y, z, x).
INTENSITY_CHANNELS = (6, 4, 5)
OMNI_CHANNEL = 0  # feature channel of the omni (W) log-mel spectrogram [dB]
# Added to the masked intensity length before dividing by it (silence: a zero vector, not NaN).
_STRENGTH_FLOOR = 1e-8
MODE_STEPS = 3  # mean-shift steps from a slot's mean direction to its nearest mode (0: the mean)
MODE_WIDTH_DEG = 25.0  # width of the von Mises kernel of those steps [deg]; 20-30 measured alike


def frame_age_code(frames: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed sine-cosine code [dim, frames] of each frame's age (0 = the newest frame), so a mask can
    prefer what sounds now over what has stopped, whatever the window length."""
    half = dim // 2
    freq = torch.exp(-math.log(100.0) * torch.arange(half, device=device, dtype=torch.float32) / half)
    age = torch.arange(frames - 1, -1, -1, device=device, dtype=torch.float32)[None, :] * freq[:, None]
    return torch.cat([age.sin(), age.cos()], dim=0)


def intensity_vectors(features: torch.Tensor) -> torch.Tensor:
    """Raw dcase features [B, 7, T, F] -> intensity vectors [B, T * F, 3] in (x, y, z) order."""
    return features[:, list(INTENSITY_CHANNELS)].flatten(2).transpose(1, 2).float()


def omni_power(features: torch.Tensor) -> torch.Tensor:
    """Raw dcase features [B, 7, T, F] -> each bin's omni (W) power [B, T * F] relative to the
    window's loudest bin (so 1 at the peak, 1e-8 at the log-mel's 80 dB floor)."""
    log_mel = features[:, OMNI_CHANNEL].flatten(1).float()  # dB
    return torch.pow(10.0, (log_mel - log_mel.amax(dim=1, keepdim=True)) / 10.0)


def seek_mode(
    mean: torch.Tensor,
    intensity: torch.Tensor,
    length: torch.Tensor,
    weights: torch.Tensor,
    steps: int = MODE_STEPS,
    width_deg: float = MODE_WIDTH_DEG,
) -> torch.Tensor:
    """The weighted mean direction ``mean`` [B, K, 3] (length = coherence) turned to the nearest mode
    of the bins' directions (module doc, step 4); the length is kept.

    ``intensity`` [B, N, 3]: the bins' intensity vectors, ``length`` [B, N, 1] their lengths,
    ``weights`` [B, K, N] each slot's bin weights. Each step re-weights the bins by a von Mises
    kernel exp(kappa (cos(angle to the current direction) - 1)), kappa = 1 / width^2 [rad^-2],
    and takes their weighted mean again. A zero ``mean`` (silence) stays zero.
    """
    if steps <= 0:
        return mean
    units = intensity / (length + _STRENGTH_FLOOR)  # [B, N, 3]
    concentration = 1.0 / math.radians(width_deg) ** 2
    mode = mean
    for _ in range(steps):
        centre = F.normalize(mode, dim=-1, eps=_STRENGTH_FLOOR)
        kernel = torch.exp(concentration * (centre @ units.transpose(1, 2) - 1.0))  # [B, K, N]
        local = weights * kernel
        mode = (local @ intensity) / (local @ length + _STRENGTH_FLOOR)
    return F.normalize(mode, dim=-1, eps=_STRENGTH_FLOOR) * mean.norm(dim=-1, keepdim=True)


class IntensityDirection(nn.Module):
    """Slot embeddings + features -> per-slot physics direction p_k, heard summary s_k and mask.

    ``n_bins``: frequency bins F of the features; ``slot_dim``: width d of the slot embeddings;
    ``mode_steps``: ``seek_mode``'s steps (0 reads the mean, as models were trained before it; an
    attribute, so an evaluation can compare both readings of one checkpoint).
    """

    def __init__(self, n_bins: int, slot_dim: int, mode_steps: int = MODE_STEPS) -> None:
        super().__init__()
        self.mode_steps = mode_steps
        self.keys = nn.Sequential(
            nn.Conv2d(FEATURE_CHANNELS, KEY_CHANNELS, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(KEY_CHANNELS, KEY_CHANNELS, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(KEY_CHANNELS, KEY_CHANNELS, 1),
        )
        self.age = nn.Conv1d(AGE_CODE, KEY_CHANNELS, 1)
        self.frequency = nn.Parameter(torch.zeros(KEY_CHANNELS, n_bins))
        self.query = nn.Linear(slot_dim, KEY_CHANNELS)
        self.summary = nn.Linear(KEY_CHANNELS, slot_dim)

    def forward(
        self, normalized: torch.Tensor, raw: torch.Tensor, slots: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """normalized / raw: features [B, 7, T, F] after / before FeatureNormalizer; slots [B, K, d].

        Returns (physics direction [B, K, 3] float32, summary [B, K, d], mask [B, K, T, F])."""
        batch, _, frames, bins = raw.shape
        age = self.age(frame_age_code(frames, AGE_CODE, raw.device)[None]).to(normalized.dtype)
        keys = self.keys(normalized) + age[..., None] + self.frequency[None, :, None, :].to(normalized.dtype)
        keys = keys.flatten(2)  # [B, c, T * F]
        logits = self.query(slots) @ keys / math.sqrt(KEY_CHANNELS)  # [B, K, T * F]
        mask = torch.softmax(logits.float(), dim=-1)
        intensity = intensity_vectors(raw)  # [B, T * F, 3]
        length = intensity.norm(dim=-1, keepdim=True)  # [B, T * F, 1], the bins' directness
        weighted = mask * (omni_power(raw) * length.squeeze(-1))[:, None, :]  # [B, K, T * F]
        strength = weighted @ length  # [B, K, 1]
        physics = (weighted @ intensity) / (strength + _STRENGTH_FLOOR)  # [B, K, 3], length <= 1
        if not self.training:  # training reads the mean: its gradient teaches the masks (module doc)
            physics = seek_mode(physics, intensity, length, weighted, self.mode_steps)
        summary = self.summary(mask.to(keys.dtype) @ keys.transpose(1, 2))
        return physics, summary, mask.reshape(batch, -1, frames, bins)


def corrected_direction(physics: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
    """physics [..., 3] (length <= 1, the coherence) + the learned ``correction`` [..., 3] gated by
    the incoherence 1 - |physics| and bounded by tanh; not normalised (see the module doc)."""
    physics = physics.float()
    incoherence = (1.0 - physics.norm(dim=-1, keepdim=True)).clamp(0.0, 1.0)
    return physics + incoherence * torch.tanh(correction.float())


def set_mode_steps(model: nn.Module, steps: int) -> int:
    """Read every physics direction of ``model`` with ``steps`` mode-seeking steps (0: the mask's
    weighted mean); returns how many modules were set (0: the model has no physics directions)."""
    if steps < 0:
        raise ValueError(f"mode-seeking steps must be >= 0, got {steps}")
    modules = [m for m in model.modules() if isinstance(m, IntensityDirection)]
    for module in modules:
        module.mode_steps = steps
    return len(modules)
