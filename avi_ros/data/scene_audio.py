"""The sound of a scene: the dry sound each source plays, the background under them, their mix
at the drawn SNRs and the final level.

With ``sound_dir`` (a sound-bank split, class folders or an UrbanSound8K tree) a hazard is a real
clip with ``real_sound_probability`` and the procedural model of its class otherwise. For
training sets, ``procedural_probability`` gives a share of hazards a clip of the class's wide
procedural family instead, and ``clip_augmentation`` reshapes every real hazard clip. Under
every scene lies a background (``avi_ros.data.background``): real ambience from the bank's
``background`` label, or procedural diffuse noise, at an SNR drawn from the SNR range relative
to the scene's point source. With ``none_sound_probability`` (and a bank with a ``none`` label)
a real non-hazard sound (music, a door, birds, a click) plays as a point source, as loud as
hazards are, so that a loud sound is not taken for a hazard.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from avi_ros.data.acoustics import event_power, scale_to_snr
from avi_ros.data.background import draw_background
from avi_ros.data.clip_augment import augment_clip
from avi_ros.data.placement import free_point
from avi_ros.data.procedural import synthesize_procedural
from avi_ros.data.scene_config import ProfileRanges, SceneConfig, draw_uniform, scene_acoustics
from avi_ros.data.scene_geometry import SceneGeometry
from avi_ros.data.sensors import capsule_mismatch
from avi_ros.data.signals import synthesize_class, synthesize_varied
from avi_ros.data.sound_bank import SoundBank
from avi_ros.taxonomy import default_taxonomy

_PEAK_LIMIT = 0.99  # the mix is scaled down when a sample would exceed this (no clipping)


def dry_signal(
    class_name: str, rng: np.random.Generator, cfg: SceneConfig, bank: SoundBank | None
) -> np.ndarray:
    """A wide procedural clip (with ``procedural_probability``), else a real clip of the class
    (with ``real_sound_probability``, if the bank has one; augmented with ``clip_augmentation``)
    or the class's procedural model."""
    if cfg.procedural_probability > 0 and rng.uniform() < cfg.procedural_probability:
        return synthesize_procedural(class_name, rng, cfg.n_samples, cfg.sample_rate)
    if bank is not None and bank.has(class_name) and rng.uniform() < cfg.real_sound_probability:
        clip = bank.draw(class_name, rng, cfg.n_samples)
        if cfg.clip_augmentation is None:
            return clip
        partner = partial(bank.draw, class_name, rng, cfg.n_samples)
        return augment_clip(clip, cfg.sample_rate, rng, cfg.clip_augmentation, partner)
    if cfg.wide is not None and cfg.wide.signal_variation:
        return synthesize_varied(class_name, rng, cfg.n_samples, cfg.sample_rate)
    return synthesize_class(class_name, rng, cfg.n_samples, cfg.sample_rate)


def scene_background(rng: np.random.Generator, cfg: SceneConfig, bank: SoundBank | None) -> np.ndarray:
    """The background FOA [4, N] under every source: the bank's ambience with
    ``real_background_probability`` (when it has some), else procedural diffuse noise."""
    background, _ = draw_background(
        rng, cfg.n_samples, cfg.sample_rate, cfg.noise_slope_range, bank, cfg.real_background_probability
    )
    return background


def none_source(
    rng: np.random.Generator, cfg: SceneConfig, geometry: SceneGeometry, bank: SoundBank | None
) -> np.ndarray | None:
    """With ``none_sound_probability``, a real non-hazard sound (bank label 'none') as heard [4, N]."""
    none_label = default_taxonomy().names[0]
    if bank is None or not bank.has(none_label) or rng.uniform() >= cfg.none_sound_probability:
        return None
    layout, mic = geometry.layout, geometry.mic
    geometry.none_source_m = free_point(rng, layout.room, mic, ProfileRanges.of(cfg).source_distance_m[0])
    if geometry.none_source_m is None:
        return None
    dry = bank.draw(none_label, rng, cfg.n_samples)
    return layout.render_audio(dry, [mic], geometry.none_source_m, cfg.n_samples, scene_acoustics(cfg), rng)


def mix_sources(
    background: np.ndarray, sources: list[tuple[np.ndarray, float]], sample_rate: int
) -> np.ndarray:
    """Point sources [4, N] over the background, each at its own SNR [dB]: the background is scaled
    to the first source (measured while it sounds), the others are scaled to the background."""
    if not sources:
        return background
    first, snr_db = sources[0]
    noise = scale_to_snr(first[0], background, snr_db, sample_rate)
    noise_power = float(np.var(noise[0].astype(np.float64)))
    mix = first + noise
    for wet, snr_db in sources[1:]:
        power = max(event_power(wet[0], sample_rate), 1e-20)
        mix = mix + wet * math.sqrt(noise_power * 10.0 ** (snr_db / 10.0) / power)
    return mix


def normalise_level(rng: np.random.Generator, cfg: SceneConfig, mix: np.ndarray) -> np.ndarray:
    """The mix at a W level drawn from the level range, with the wide profile's capsule errors,
    scaled down if needed so no sample exceeds _PEAK_LIMIT."""
    level = 10.0 ** (draw_uniform(rng, ProfileRanges.of(cfg).level_dbfs) / 20.0)
    mix = mix * (level / max(float(mix[0].std()), 1e-12))
    if cfg.wide is not None:
        wide = cfg.wide
        noise_dbfs = draw_uniform(rng, wide.self_noise_dbfs_range)
        mix = capsule_mismatch(
            mix, rng, cfg.sample_rate, wide.capsule_gain_db, wide.capsule_delay_s, noise_dbfs
        )
    peak = float(np.abs(mix).max())
    if peak > _PEAK_LIMIT:
        mix *= _PEAK_LIMIT / peak
    return mix
