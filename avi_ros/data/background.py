"""The sound bed under every scene: real ambience from the sound bank, or procedural diffuse noise.

A model that has only heard white-to-brown noise under its hazards takes the first gust of real
wind for an engine (issue 10: every silent frame with recorded ambience became a hazard). So a
scene's background is, with ``SceneConfig.real_background_probability``, a recording of the
bank's ``background`` label (wind, rain, water, traffic hum, crowd, room tone) and otherwise the
procedural diffuse noise of ``acoustics.diffuse_noise``.

A mono ambience recording has no direction of its own. It is spread as a sum of
``AMBIENCE_DIRECTIONS`` plane waves from random directions, each an independent random crop of
a background clip, which gives an enveloping, roughly diffuse FOA field with the recording's
spectrum and texture (gusts, drops, passing cars), unlike a single point source. Either kind is
returned at unit mean power of W; ``acoustics.scale_to_snr`` sets its level under the scene.
"""

from __future__ import annotations

import math

import numpy as np

from avi_ros.audio import foa_encoding_gains
from avi_ros.data.acoustics import diffuse_noise
from avi_ros.data.sound_bank import SoundBank

BACKGROUND_LABEL = "background"  # bank label of real ambience
AMBIENCE_DIRECTIONS = 6  # plane waves spreading one mono recording around the microphone


def loop_to_fill(clip: np.ndarray) -> np.ndarray:
    """A clip drawn from the bank, with the zero padding of a too-short clip replaced by repeats.

    ``SoundBank.draw`` pads a clip shorter than the scene with zeros; ambience must not stop, so
    the recorded span (first to last non-zero sample) is repeated over the whole length.
    """
    support = np.flatnonzero(clip)
    if support.size == 0 or (support[0] == 0 and support[-1] == clip.size - 1):
        return clip
    segment = clip[support[0] : support[-1] + 1]
    return np.resize(segment, clip.size).astype(clip.dtype, copy=False)


def real_ambience(rng: np.random.Generator, bank: SoundBank, n_samples: int) -> np.ndarray:
    """FOA [4, n_samples] (ACN/SN3D) of bank ambience around the microphone, W mean power 1."""
    azimuth = rng.uniform(-math.pi, math.pi, AMBIENCE_DIRECTIONS)
    elevation = np.arcsin(rng.uniform(-1.0, 1.0, AMBIENCE_DIRECTIONS))  # uniform on the sphere
    gains = foa_encoding_gains(azimuth, elevation) * rng.uniform(0.5, 1.0, (AMBIENCE_DIRECTIONS, 1))
    field = np.zeros((4, n_samples))
    for k in range(AMBIENCE_DIRECTIONS):
        crop = loop_to_fill(bank.draw(BACKGROUND_LABEL, rng, n_samples)).astype(np.float64)
        field += gains[k][:, None] * crop[None, :]
    power = float(np.mean(field[0] ** 2))
    return field / math.sqrt(power) if power > 0 else field


def draw_background(
    rng: np.random.Generator,
    n_samples: int,
    sample_rate: int,
    noise_slope_range: tuple[float, float],
    bank: SoundBank | None,
    real_probability: float,
) -> tuple[np.ndarray, bool]:
    """The scene's background [4, n_samples] with W mean power about 1, and whether it is real.

    Real ambience needs a bank with a ``background`` label; otherwise (and with probability
    1 - ``real_probability``) it is diffuse noise with a spectral slope in ``noise_slope_range``
    (0 white, 1 pink, 2 brown).
    """
    if bank is not None and bank.has(BACKGROUND_LABEL) and rng.uniform() < real_probability:
        return real_ambience(rng, bank, n_samples), True
    slope = float(rng.uniform(*noise_slope_range))
    return diffuse_noise(rng, n_samples, sample_rate, slope), False
