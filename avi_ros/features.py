"""Audio features for the SELD encoder, computed in torch so they run batched on any device.

Two kinds, chosen by ``FeatureConfig.kind``:

- ``"dcase"``: the DCASE2023 Task 3 baseline features for FOA: 4 log-mel spectrograms plus
  3 intensity-vector channels, 7 x T x 64. STFT hop 480, Hann window 960 padded to n_fft 1024,
  librosa's (Slaney) mel filterbank, ``power_to_db`` with ``ref=1``, ``amin=1e-10``,
  ``top_db=80`` applied per channel over the window (see "The 80 dB floor" below).
- ``"amp_phasediff"``: the seed's alternative: 4 log power spectra (dB) on a linear frequency
  axis plus the phase differences W->Y, W->Z, W->X [rad]. The linear axis is split into
  ``n_bins`` equal bands; the cross-spectrum is averaged inside a band before taking its angle,
  so the phase never wraps inside a band. With the default 64 bands both kinds have the same
  shape and feed the same encoder.

Frames: like the baseline, a signal of N samples gives floor(N / hop) frames (the STFT is
centred, so frame t covers samples around t * hop; the partial frame at the end is dropped).

The 80 dB floor: ``power_to_db``'s ``top_db`` clips each spectrum at 80 dB below its peak. The
baseline takes that peak over a whole recording; here it is the peak of the model's input
window (1 s by default), in training and in the node alike. A streaming node never sees the
whole recording, so a per-file floor cannot be reproduced at inference; taking it per window
everywhere keeps what the model is trained on identical to what it sees. Only bins more than
80 dB below the recording's peak differ from the baseline's per-file features (the baseline
raises them to that floor; here they keep their value down to the window's floor; up to 0.9 dB
was seen in a comparison with the baseline code); every other value is the same. DCASE weights
(``load_dcase_checkpoint``) were trained on per-file features: they see this small difference.

Per channel-bin standardisation (as the DCASE baseline does with training-set statistics) is a
separate module, ``FeatureNormalizer``, owned by the model, so its statistics travel with the
weights; ``compute_normalization_stats`` computes them for training.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from avi_ros.audio import FOA_CHANNELS, SAMPLE_RATE
from avi_ros.config_io import build, to_plain

FEATURE_KINDS = ("dcase", "amp_phasediff")
FEATURE_CHANNELS = 7  # 4 spectra + 3 directional channels, for both kinds.

# power_to_db constants of the DCASE baseline (librosa defaults).
_AMIN = 1e-10
_TOP_DB = 80.0
# Added to the intensity-vector energy normaliser, as in the DCASE baseline.
_IV_EPS = 1e-8


@dataclass(frozen=True)
class FeatureConfig:
    """What the feature extractor computes; saved in every checkpoint.

    ``window_seconds`` is the audio the model sees per estimate; ``hop_length``, ``win_length``
    and ``n_fft`` are in samples at ``sample_rate`` [Hz]; ``n_bins`` is the number of mel bins
    (dcase) or linear bands (amp_phasediff).
    """

    kind: str = "dcase"
    sample_rate: int = SAMPLE_RATE
    window_seconds: float = 1.0
    hop_length: int = 480
    win_length: int = 960
    n_fft: int = 1024
    n_bins: int = 64

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature_config.kind: expected one of {FEATURE_KINDS}, got '{self.kind}'")
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_bins <= 0:
            raise ValueError("feature_config: sample_rate, hop_length and n_bins must be positive")
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(
                f"feature_config.win_length: expected 0 < win_length <= n_fft ({self.n_fft}), "
                f"got {self.win_length}"
            )
        if self.window_samples < self.hop_length:
            raise ValueError(
                f"feature_config.window_seconds: {self.window_seconds} s is shorter than one hop "
                f"({self.hop_length} samples)"
            )
        if self.kind == "amp_phasediff" and self.n_bins > self.n_fft // 2 + 1:
            raise ValueError(
                f"feature_config.n_bins: at most n_fft // 2 + 1 = {self.n_fft // 2 + 1} linear bands, "
                f"got {self.n_bins}"
            )

    @property
    def channels(self) -> int:
        return FEATURE_CHANNELS

    @property
    def window_samples(self) -> int:
        """Audio samples per model input (at ``sample_rate``)."""
        return round(self.window_seconds * self.sample_rate)

    @property
    def num_frames(self) -> int:
        """Feature frames T per window: floor(samples / hop), as the DCASE baseline keeps."""
        return self.window_samples // self.hop_length

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, T, F) of one window's features."""
        return (self.channels, self.num_frames, self.n_bins)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for checkpoint metadata (``avi_ros.config_io``)."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Inverse of ``to_dict``; a ConfigError (ValueError) names the first bad key."""
        return build(cls, data, "feature_config")


def mel_filterbank(config: FeatureConfig) -> np.ndarray:
    """librosa's Slaney mel filterbank as a [n_fft // 2 + 1, n_bins] matrix (the baseline's ``mel_wts``)."""
    import librosa  # imported here: it takes seconds, and only the dcase kind needs it

    return librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_bins).T.astype(
        np.float32
    )


def linear_band_matrix(config: FeatureConfig) -> np.ndarray:
    """[n_fft // 2 + 1, n_bins] matrix averaging the STFT bins into equal-width linear bands."""
    n_freq = config.n_fft // 2 + 1
    edges = np.round(np.linspace(0, n_freq, config.n_bins + 1)).astype(int)
    matrix = np.zeros((n_freq, config.n_bins), dtype=np.float32)
    for band, (lo, hi) in enumerate(itertools.pairwise(edges)):
        matrix[lo:hi, band] = 1.0 / (hi - lo)
    return matrix


def power_to_db(power: torch.Tensor) -> torch.Tensor:
    """librosa.power_to_db(ref=1, amin=1e-10, top_db=80) over the last two dims [T, F] of each map.

    The floor is 80 dB below the peak of each map, i.e. of one channel of one input window.
    """
    log_spec = 10.0 * torch.log10(power.clamp_min(_AMIN))
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(log_spec, peak - _TOP_DB)


class FeatureExtractor(nn.Module):
    """FOA audio [B, 4, N] (ACN/SN3D, float, ``sample_rate``) -> features [B, 7, T, F].

    T is ``floor(N / hop_length)`` (at least one hop of audio is needed); with
    N = ``config.window_samples`` it is ``config.num_frames``. The 80 dB floor of the log
    spectra is relative to each input's own peak (see the module docstring).
    Always runs in float32 (an enclosing autocast is switched off), since log spectra and the
    intensity normalisation lose too much in half precision.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig()) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("window", torch.hann_window(config.win_length, periodic=True), persistent=False)
        bands = mel_filterbank(config) if config.kind == "dcase" else linear_band_matrix(config)
        self.register_buffer("bands", torch.from_numpy(bands), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 3 or audio.shape[1] != FOA_CHANNELS:
            raise ValueError(
                f"features: expected audio [B, {FOA_CHANNELS}, samples], got {tuple(audio.shape)}"
            )
        batch, channels, samples = audio.shape
        if samples < self.config.hop_length:
            raise ValueError(
                f"features: {samples} samples give no frame; "
                f"at least one hop ({self.config.hop_length} samples) is needed"
            )
        with torch.autocast(device_type=audio.device.type, enabled=False):
            spec = self._stft(audio.float().reshape(batch * channels, samples))
            spec = spec.reshape(batch, channels, *spec.shape[-2:])  # [B, 4, T, n_freq], complex
            if self.config.kind == "dcase":
                return self._dcase(spec)
            return self._amp_phasediff(spec)

    def _stft(self, signals: torch.Tensor) -> torch.Tensor:
        """Complex STFT [n, T, n_freq] of signals [n, samples], keeping the first floor(N / hop) frames."""
        cfg = self.config
        spec = torch.stft(
            signals,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        frames = signals.shape[-1] // cfg.hop_length
        return spec[..., :frames].transpose(-1, -2)

    def _dcase(self, spec: torch.Tensor) -> torch.Tensor:
        power = spec.real.square() + spec.imag.square()  # [B, 4, T, n_freq]
        log_mel = power_to_db(power @ self.bands)
        w = spec[:, :1]
        intensity = (w.conj() * spec[:, 1:]).real  # Re(W* [Y, Z, X])
        energy = _IV_EPS + power[:, :1] + power[:, 1:].sum(dim=1, keepdim=True) / 3.0
        intensity_mel = (intensity / energy) @ self.bands
        return torch.cat([log_mel, intensity_mel], dim=1)

    def _amp_phasediff(self, spec: torch.Tensor) -> torch.Tensor:
        power = spec.real.square() + spec.imag.square()
        log_power = power_to_db(power @ self.bands)
        cross = spec[:, 1:] * spec[:, :1].conj()  # phase(Y, Z, X) - phase(W) per bin
        band_real = cross.real @ self.bands
        band_imag = cross.imag @ self.bands
        return torch.cat([log_power, torch.atan2(band_imag, band_real)], dim=1)


class FeatureNormalizer(nn.Module):
    """Per channel-bin standardisation (x - mean) / std with statistics stored as buffers [C, F].

    Starts as the identity; ``set_stats`` installs training-set statistics, which are then saved
    in the checkpoint's weights and metadata.
    """

    def __init__(self, channels: int = FEATURE_CHANNELS, n_bins: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, n_bins))
        self.register_buffer("std", torch.ones(channels, n_bins))

    def set_stats(self, mean: torch.Tensor | np.ndarray, std: torch.Tensor | np.ndarray) -> None:
        mean_t = torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.as_tensor(std, dtype=torch.float32)
        if mean_t.shape != self.mean.shape or std_t.shape != self.std.shape:
            raise ValueError(
                f"normalisation stats: expected mean and std of shape {tuple(self.mean.shape)}, "
                f"got {tuple(mean_t.shape)} and {tuple(std_t.shape)}"
            )
        if not bool((std_t > 0).all()) or not bool(torch.isfinite(mean_t).all()):
            raise ValueError("normalisation stats: std must be positive and mean finite")
        self.mean.copy_(mean_t)
        self.std.copy_(std_t)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean[:, None, :]) / self.std[:, None, :]


def compute_normalization_stats(
    batches: torch.Tensor | Iterable[torch.Tensor], min_std: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std [C, F] over every frame of features [B, C, T, F] (one tensor or an iterable).

    Accumulates in float64 so long training sets do not lose precision; ``min_std`` keeps
    constant bins (e.g. silent bands) from dividing by zero.
    """
    if isinstance(batches, torch.Tensor):
        batches = [batches]
    total = sum_x = sum_x2 = None
    for batch in batches:
        if batch.dim() != 4:
            raise ValueError(f"normalisation stats: expected features [B, C, T, F], got {tuple(batch.shape)}")
        x = batch.detach().to(torch.float64)
        count = x.shape[0] * x.shape[2]
        if total is None:
            total, sum_x, sum_x2 = 0, torch.zeros_like(x[0, :, 0]), torch.zeros_like(x[0, :, 0])
        total += count
        sum_x += x.sum(dim=(0, 2))
        sum_x2 += x.square().sum(dim=(0, 2))
    if not total:
        raise ValueError("normalisation stats: no feature frames given")
    mean = sum_x / total
    var = (sum_x2 / total - mean.square()).clamp_min(0.0)
    return mean.float(), var.sqrt().clamp_min(min_std).float()
