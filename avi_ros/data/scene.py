"""Random occluded-hazard scenes: FOA audio + RGB-D + exact labels, reproducible from a seed.

``generate_scene(seed, config)`` samples a room, a robot pose, a hazard (class, position,
look), 0-3 occluder boxes and the sensor imperfections, then renders the camera view and
the FOA room acoustics of the same geometry. The same seed always gives the same sample: the
steps draw from one generator in a fixed order, so reordering them changes every scene.

Hazard sets. With ``SceneConfig.hazard_count_weights`` a scene holds 0..MAX_HAZARDS hazards
(repeated classes allowed), each with its own visibility, position, sound, SNR and (with
``onset_offset_probability``) onset/offset, plus an optional non-hazard sound; ``Sample.hazards``
labels them all and the single-hazard fields are the first one's. Without it the scenes are
those of the single-hazard generator: one hazard (or a class-0 negative) and, with
``second_source_probability``, an audio-only second source.

The steps live by concept: ``scene_config`` (SceneConfig), ``scene_geometry`` and ``placement``
(where things stand), ``scene_view`` (the camera), ``scene_audio`` (the sounds and their mix),
``scene_labels`` (the labels and the Sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from avi_ros.data.acoustics import event_power
from avi_ros.data.background import BACKGROUND_LABEL
from avi_ros.data.render import RenderResult
from avi_ros.data.scene_audio import dry_signal, mix_sources, none_source, normalise_level, scene_background
from avi_ros.data.scene_config import ProfileRanges, SceneConfig, draw_uniform, scene_acoustics, scene_camera
from avi_ros.data.scene_geometry import SceneGeometry, sample_geometry, sample_hazard_set_geometry
from avi_ros.data.scene_labels import (
    LABEL_FRAME_S,
    HazardLabel,
    Sample,
    SceneContent,
    SecondSource,
    frame_activity,
    hazard_label,
    hazard_occlusion,
    scene_sample,
    visibility_from_render,
    visibility_of_mask,
)
from avi_ros.data.scene_view import render_hazard_set, render_view
from avi_ros.data.sound_bank import SoundBank
from avi_ros.geometry import direction_to_unit
from avi_ros.occlusion import direction_visibility
from avi_ros.taxonomy import Taxonomy, default_taxonomy


def generate_scene(seed: int, config: SceneConfig | None = None, taxonomy: Taxonomy | None = None) -> Sample:
    """One synthetic scene, fully determined by ``seed`` and ``config``."""
    return generate_scene_and_geometry(seed, config, taxonomy)[0]


def generate_scene_and_geometry(
    seed: int, config: SceneConfig | None = None, taxonomy: Taxonomy | None = None
) -> tuple[Sample, SceneGeometry]:
    """One synthetic scene and the world behind it, fully determined by ``seed`` and ``config``.

    The steps draw from one generator in a fixed order, so reordering them changes every scene.
    With ``hazard_count_weights`` the scene holds a set of hazards (``_generate_hazard_set``),
    else at most one (``_generate_single``).
    """
    tax = taxonomy or default_taxonomy()
    rng = np.random.default_rng(seed)
    cfg = _scene_profile(rng, config or SceneConfig())
    bank = _bank(cfg, tax)
    if cfg.hazard_count_weights is not None:
        return _generate_hazard_set(seed, rng, cfg, tax, bank)
    return _generate_single(seed, rng, cfg, tax, bank)


def _scene_profile(rng: np.random.Generator, cfg: SceneConfig) -> SceneConfig:
    """``cfg``, or for a share ``1 - wide_probability`` of the scenes, ``cfg`` in the default rooms.

    One generator can so cover both conditions. Draws only with ``wide`` set and ``wide_probability < 1``.
    """
    if cfg.wide is not None and cfg.wide_probability < 1.0 and rng.uniform() >= cfg.wide_probability:
        return replace(cfg, wide=None)
    return cfg


@lru_cache(maxsize=4)
def _cached_bank(sound_dir: str, class_names: tuple[str, ...], folds: tuple[int, ...] | None) -> SoundBank:
    return SoundBank.from_path(sound_dir, class_names, folds)


def _bank(cfg: SceneConfig, tax: Taxonomy) -> SoundBank | None:
    """The sound bank of ``cfg.sound_dir``: hazard classes, 'none' and 'background' folders."""
    if cfg.sound_dir is None:
        return None
    return _cached_bank(cfg.sound_dir, (*tax.names, BACKGROUND_LABEL), cfg.sound_folds)


# --- Single-hazard scenes (SceneConfig.hazard_count_weights None) -----------------------------


def _generate_single(
    seed: int, rng: np.random.Generator, cfg: SceneConfig, tax: Taxonomy, bank: SoundBank | None
) -> tuple[Sample, SceneGeometry]:
    """The single-hazard scene (one hazard or a class-0 negative, maybe an audio-only second source)."""
    class_id = _draw_class(rng, cfg, tax)
    scene_cfg = scene_camera(rng, cfg)
    geometry = sample_geometry(rng, scene_cfg, None if class_id == 0 else tax.names[class_id])
    view = render_view(rng, scene_cfg, geometry)
    background = scene_background(rng, cfg, bank)
    fore = _foreground(rng, scene_cfg, geometry, view, class_id, tax, bank)
    mix, snr_db = _mix_foreground(rng, cfg, fore, background)
    second_wet, second = _mix_second_source(
        rng, scene_cfg, geometry, view, background if fore.wet is None else fore.wet, bank, tax
    )
    if second_wet is not None:
        mix = mix + second_wet
    mix = normalise_level(rng, cfg, mix)
    hazards = [] if fore.hazard is None else [fore.hazard]
    rt60_s = geometry.layout.room.rt60_s()
    sample = scene_sample(seed, scene_cfg, tax, view, rt60_s, hazards, mix, snr_db, fore.content, second)
    return sample, geometry


def _draw_class(rng: np.random.Generator, cfg: SceneConfig, tax: Taxonomy) -> int:
    """Class 0 (no hazard) with ``none_probability``, else a uniformly drawn hazard class."""
    if rng.uniform() < cfg.none_probability:
        return 0
    return int(rng.integers(1, tax.num_classes))


@dataclass
class _Foreground:
    """The scene's main point source (hazard or non-hazard sound) as heard, with the hazard's label."""

    wet: np.ndarray | None  # FOA [4, N]; None for background-only scenes
    content: SceneContent
    hazard: HazardLabel | None = None  # None for class-0 scenes


def _foreground(
    rng: np.random.Generator,
    cfg: SceneConfig,
    geometry: SceneGeometry,
    view: RenderResult,
    class_id: int,
    tax: Taxonomy,
    bank: SoundBank | None,
) -> _Foreground:
    """Render the hazard, or for class 0 maybe a real non-hazard sound, through the room."""
    layout, mic, hazard = geometry.layout, geometry.mic, geometry.hazard
    if hazard is None:
        wet = none_source(rng, cfg, geometry, bank)
        if wet is None:
            return _Foreground(None, SceneContent.BACKGROUND_ONLY)
        return _Foreground(wet, SceneContent.NON_HAZARD_SOUND)
    visibility = visibility_from_render(
        mic.to_mic(hazard.centre_m), view.object_ids, cfg.intrinsics, cfg.extrinsic
    )
    dry = dry_signal(tax.names[class_id], rng, cfg, bank)
    wet = layout.render_audio(dry, [mic], hazard.centre_m, cfg.n_samples, scene_acoustics(cfg), rng)
    occlusion = hazard_occlusion(hazard, view.hazard_mask, mic, cfg.intrinsics, cfg.extrinsic, visibility)
    activity = frame_activity(dry, cfg.sample_rate)
    label = hazard_label(tax, class_id, layout.label(mic, hazard.centre_m), visibility, occlusion, activity)
    return _Foreground(wet, SceneContent.HAZARD, label)


def _mix_foreground(
    rng: np.random.Generator, cfg: SceneConfig, fore: _Foreground, background: np.ndarray
) -> tuple[np.ndarray, float]:
    """The foreground over the background at an SNR drawn from the range [dB] (NaN: background only)."""
    if fore.wet is None:
        return background, float("nan")
    snr_db = draw_uniform(rng, ProfileRanges.of(cfg).snr_db)
    return mix_sources(background, [(fore.wet, snr_db)], cfg.sample_rate), snr_db


def _mix_second_source(
    rng: np.random.Generator,
    cfg: SceneConfig,
    geometry: SceneGeometry,
    view: RenderResult,
    reference: np.ndarray,
    bank: SoundBank | None,
    tax: Taxonomy,
) -> tuple[np.ndarray | None, SecondSource | None]:
    """The second (audio-only) hazard's FOA at a level relative to ``reference`` [4, N], and its label."""
    if geometry.second_class is None or geometry.second_source_m is None:
        return None, None
    fs = cfg.sample_rate
    dry = dry_signal(geometry.second_class, rng, cfg, bank)
    wet = geometry.layout.render_audio(
        dry, [geometry.mic], geometry.second_source_m, cfg.n_samples, scene_acoustics(cfg), rng
    )
    gain_db = draw_uniform(rng, cfg.second_source_gain_db_range)
    scale = math.sqrt(event_power(reference[0], fs) / max(event_power(wet[0], fs), 1e-20))
    label = geometry.layout.label(geometry.mic, geometry.second_source_m)
    visibility = direction_visibility(
        direction_to_unit(label.azimuth, label.elevation),
        label.distance,
        view.exact_depth_m,
        cfg.intrinsics,
        cfg.extrinsic,
    )
    second = SecondSource(
        tax.class_id(geometry.second_class),
        label.azimuth,
        label.elevation,
        label.distance,
        visibility,
        tuple(float(a) for a in frame_activity(dry, fs)),
    )
    return wet * scale * 10.0 ** (gain_db / 20.0), second


# --- Scenes with a set of hazards (SceneConfig.hazard_count_weights) --------------------------

MIN_SOUNDING_S = 0.3  # a hazard that starts or stops inside the scene still sounds this long [s]
ONSET_FADE_S = 0.01  # fade in / out at such an onset or offset [s]
_SILENT_FRAMES = 2  # least silence [label frames] at a drawn onset or offset, so the labels show it
_GATE_TRIES = 8  # onset / offset gates tried before a hazard plays as drawn


def _generate_hazard_set(
    seed: int, rng: np.random.Generator, cfg: SceneConfig, tax: Taxonomy, bank: SoundBank | None
) -> tuple[Sample, SceneGeometry]:
    """The scene of a hazard set: 0..MAX_HAZARDS hazards, each with its own class, visibility,
    position, sound, SNR and maybe onset/offset, then maybe a real non-hazard sound."""
    weights = np.asarray(cfg.hazard_count_weights, dtype=np.float64)
    count = int(rng.choice(weights.size, p=weights / weights.sum()))
    class_ids = [int(rng.integers(1, tax.num_classes)) for _ in range(count)]
    scene_cfg = scene_camera(rng, cfg)
    geometry, _ = sample_hazard_set_geometry(rng, scene_cfg, [tax.names[c] for c in class_ids])
    view, seen = render_hazard_set(rng, scene_cfg, geometry)
    background = scene_background(rng, cfg, bank)
    layout, mic, acoustics = geometry.layout, geometry.mic, scene_acoustics(scene_cfg)
    sources: list[tuple[np.ndarray, float]] = []
    labels: list[HazardLabel] = []
    for class_id, hazard, seen_mask in zip(class_ids, layout.hazards, seen, strict=True):
        dry = _onset_offset(rng, scene_cfg, dry_signal(hazard.class_name, rng, scene_cfg, bank))
        wet = layout.render_audio(dry, [mic], hazard.centre_m, cfg.n_samples, acoustics, rng)
        sources.append((wet, draw_uniform(rng, ProfileRanges.of(cfg).snr_db)))
        visibility = visibility_of_mask(mic.to_mic(hazard.centre_m), seen_mask, scene_cfg)
        occlusion = hazard_occlusion(
            hazard, seen_mask, mic, scene_cfg.intrinsics, scene_cfg.extrinsic, visibility
        )
        source = layout.label(mic, hazard.centre_m)
        activity = frame_activity(dry, cfg.sample_rate)
        labels.append(hazard_label(tax, class_id, source, visibility, occlusion, activity))
    distractor = none_source(rng, scene_cfg, geometry, bank)
    if distractor is not None:
        sources.append((distractor, draw_uniform(rng, ProfileRanges.of(cfg).snr_db)))
    mix = normalise_level(rng, cfg, mix_sources(background, sources, cfg.sample_rate))
    if labels:
        content = SceneContent.HAZARD
    else:
        content = SceneContent.BACKGROUND_ONLY if distractor is None else SceneContent.NON_HAZARD_SOUND
    snr_db = sources[0][1] if sources else float("nan")
    rt60_s = layout.room.rt60_s()
    return scene_sample(seed, scene_cfg, tax, view, rt60_s, labels, mix, snr_db, content), geometry


def _onset_offset(rng: np.random.Generator, cfg: SceneConfig, dry: np.ndarray) -> np.ndarray:
    """``dry`` [N], with ``onset_offset_probability`` gated to start and/or stop inside the scene.

    The gate is open for at least MIN_SOUNDING_S, closed for at least _SILENT_FRAMES label
    frames before an onset / after an offset, with ONSET_FADE_S raised-cosine fades (no clicks).
    A gate must keep at least MIN_SOUNDING_S of the clip's own sounding frames (all of them for
    a shorter sound, such as a 0.2 s horn), so the hazard stays audible; after _GATE_TRIES gates
    that do not, the clip plays as drawn."""
    duration, gap = cfg.duration_s, _SILENT_FRAMES * LABEL_FRAME_S
    if cfg.onset_offset_probability <= 0 or duration < MIN_SOUNDING_S + gap:
        return dry
    if rng.uniform() >= cfg.onset_offset_probability:
        return dry
    sounding = frame_activity(dry, cfg.sample_rate)
    needed = min(round(MIN_SOUNDING_S / LABEL_FRAME_S), int(sounding.sum()))
    for _ in range(_GATE_TRIES):
        gate = _draw_gate(rng, cfg, dry.size)
        if (sounding * frame_activity(gate, cfg.sample_rate)).sum() >= max(needed, 1):
            return dry * gate
    return dry


def _draw_gate(rng: np.random.Generator, cfg: SceneConfig, n: int) -> np.ndarray:
    """A gain [n] in [0, 1]: an onset, an offset or both inside the scene (see ``_onset_offset``)."""
    duration, gap = cfg.duration_s, _SILENT_FRAMES * LABEL_FRAME_S
    kind = int(rng.integers(3))  # 0: onset, 1: offset, 2: both
    if kind == 2 and duration < MIN_SOUNDING_S + 2 * gap:
        kind = 0
    length = draw_uniform(rng, (MIN_SOUNDING_S, duration - gap * (2 if kind == 2 else 1)))
    if kind == 0:
        start = duration - length
    elif kind == 1:
        start = 0.0
    else:
        start = draw_uniform(rng, (gap, duration - length - gap))
    fs = cfg.sample_rate
    first, last = round(start * fs), min(round((start + length) * fs), n)
    fade = min(max(1, round(ONSET_FADE_S * fs)), (last - first) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
    gate = np.zeros(n)
    gate[first:last] = 1.0
    if first > 0:
        gate[first : first + fade] = ramp
    if last < n:
        gate[last - fade : last] = ramp[::-1]
    return gate
