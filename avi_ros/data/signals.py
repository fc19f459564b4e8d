"""Procedural dry (anechoic, mono) signal models, one per hazard class of the default taxonomy.

Each class is synthesised from a small physical/perceptual model. They work where no real
recordings are at hand, and stay in the mix next to the sound bank's clips (several classes rest
on a handful of recordings there; see ``scene_config.SceneConfig.real_sound_probability``). Every
model draws its parameters from the random generator it is given, so no two clips are alike,
while the features that tell the classes apart (pitch range, harmonicity, temporal pattern,
spectral band) stay distinct enough for a small CNN.

All generators take ``(rng, n_samples, sample_rate)`` and return float32 [n_samples] with
peak 1. Times are in seconds, frequencies in Hz. ``synthesize_varied`` adds the variety of
recordings on top of any model (speed, spectral tilt, envelope); the wide scene profile uses it.
These models draw fixed, narrow parameter ranges in a frozen order: a change to them changes the
default scenes of every seed. The wide-range families for training (more kinds of siren, horn,
alarm, engine, tool, ...) live in ``avi_ros.data.procedural``, built from the public building
blocks here (filters, pulse trains, siren frequency tracks, the firing rate, the electric bell).

Class models (one line each; ``SIGNAL_MODELS`` maps class names to them):
- vehicle_engine: low firing-rate pulse train (20-200 Hz, 4/6/8 cylinders at 700-3000 rpm, slow rpm
  drift) through a body resonance, plus low-passed rumble noise amplitude-modulated by the firing.
- car_horn: 1-3 honks of a two-tone (major-third) clipped-sine chord at 350-520 Hz with slight vibrato.
- siren: continuous tone sweeping in one of three patterns (wail: slow sine FM, yelp: fast triangle FM,
  hi-lo: two alternating pitches) around 500-1800 Hz, with a few harmonics.
- alarm_bell: electric bell: hammer strikes at 12-25 Hz exciting an inharmonic plate (partials
  1, 2.32, 4.25, 6.63 x 700-1500 Hz) with 30-120 ms decays.
- dog_bark: 1-4 short (80-250 ms) harmonic barks with a falling pitch of 350-800 Hz, breath noise
  and two formants, separated by gaps.
- footsteps: 2-3 steps per second with timing jitter; each a heel thump and a softer toe click of
  decaying noise, band-limited by a random floor surface resonance.
- glass_break: a broadband impact followed by 40-150 scattered high (2-9 kHz) short-lived tinkles
  whose density and level decay over 0.3-0.8 s.
- power_tool: a motor whine (80-400 Hz, very bright pulse train) that spins up, with a gear-mesh
  harmonic, load dips and band-passed grinding noise at 2-8 kHz.
- speech: glottal pulse train (85-255 Hz, intonation and jitter) through vowel formants that change
  every syllable (3-6 syllables/s), with fricative noise and pauses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

Generator = Callable[[np.random.Generator, int, int], np.ndarray]


def normalise_peak(x: np.ndarray) -> np.ndarray:
    """x as float32 scaled to peak 1 (a silent x stays silent)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return (x / peak if peak > 0 else x).astype(np.float32)


def pulse_wave(phase: np.ndarray, brightness: float) -> np.ndarray:
    """Smooth periodic pulse train exp(k (cos(phase) - 1)), zero-mean.

    One exponential per sample gives a harmonic spectrum whose bandwidth grows with
    ``brightness`` (k), which is much cheaper than summing harmonics.
    """
    y = np.exp(brightness * (np.cos(phase) - 1.0))
    return y - y.mean()


def phase_of(freq_hz: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Instantaneous phase [rad] of a time-varying frequency track, random start."""
    return 2.0 * math.pi * np.cumsum(freq_hz) / sample_rate + rng.uniform(0, 2 * math.pi)


def bandpass(x: np.ndarray, low_hz: float, high_hz: float, sample_rate: int, order: int = 2) -> np.ndarray:
    """Butterworth band-pass low_hz..high_hz [Hz], edges clamped inside (0, Nyquist)."""
    nyq = sample_rate / 2.0
    low = min(max(low_hz / nyq, 1e-4), 0.98)
    high = min(max(high_hz / nyq, low + 1e-3), 0.99)
    return sosfilt(butter(order, [low, high], btype="band", output="sos"), x)


def lowpass(x: np.ndarray, cutoff_hz: float, sample_rate: int, order: int = 2) -> np.ndarray:
    """Butterworth low-pass at cutoff_hz [Hz] (clamped below Nyquist)."""
    wn = min(cutoff_hz / (sample_rate / 2.0), 0.99)
    return sosfilt(butter(order, wn, output="sos"), x)


def resonator(x: np.ndarray, freq_hz: float, bandwidth_hz: float, sample_rate: int) -> np.ndarray:
    """Two-pole resonance (a formant) at freq_hz with the given -3 dB bandwidth."""
    r = math.exp(-math.pi * bandwidth_hz / sample_rate)
    theta = 2.0 * math.pi * freq_hz / sample_rate
    a = [1.0, -2.0 * r * math.cos(theta), r * r]
    return lfilter([1.0 - r], a, x)


def smooth_noise(rng: np.random.Generator, n: int, rate_hz: float, sample_rate: int) -> np.ndarray:
    """Slow random contour in about [-1, 1], varying at about rate_hz (linear interpolation of knots)."""
    knots = max(int(n / sample_rate * rate_hz) + 2, 2)
    return np.interp(np.arange(n), np.linspace(0, n - 1, knots), rng.uniform(-1, 1, knots))


def firing_frequency_hz(rpm: float | np.ndarray, cylinders: int) -> float | np.ndarray:
    """Firing rate [Hz] of a four-stroke engine: every cylinder fires once per two turns,
    so ``rpm / 60 * cylinders / 2`` (= rpm * cylinders / 120)."""
    return rpm / 60.0 * cylinders / 2.0


def vehicle_engine(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    rpm = rng.uniform(700, 3000)
    cylinders = rng.choice([4, 6, 8])
    firing_hz = firing_frequency_hz(rpm, cylinders)
    drift = 1.0 + rng.uniform(0.02, 0.08) * smooth_noise(rng, n, rng.uniform(0.5, 2.0), sample_rate)
    phase = phase_of(firing_hz * drift, sample_rate, rng)
    pulses = pulse_wave(phase, rng.uniform(3.0, 12.0))
    body = resonator(pulses, rng.uniform(80, 400), rng.uniform(60, 200), sample_rate)
    rumble = lowpass(rng.standard_normal(n), rng.uniform(150, 600), sample_rate)
    rumble *= 1.0 + 0.6 * np.cos(phase)
    x = pulses / np.std(pulses) + rng.uniform(0.5, 1.5) * body / np.std(body)
    return normalise_peak(x + rng.uniform(0.3, 1.0) * rumble / np.std(rumble))


def car_horn(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    f1 = rng.uniform(350, 520)
    ratio = rng.uniform(1.2, 1.3)
    vibrato = 1.0 + 0.004 * np.sin(2 * math.pi * rng.uniform(4, 8) * np.arange(n) / sample_rate)
    drive = rng.uniform(2.0, 6.0)
    tone = np.tanh(drive * np.sin(phase_of(f1 * vibrato, sample_rate, rng))) + np.tanh(
        drive * np.sin(phase_of(f1 * ratio * vibrato, sample_rate, rng))
    )
    envelope = np.zeros(n)
    ramp = int(0.01 * sample_rate)
    start = int(rng.uniform(0.0, 0.3) * sample_rate)
    for _ in range(rng.integers(1, 4)):
        length = int(rng.uniform(0.15, 0.7) * sample_rate)
        stop = min(start + length, n)
        if stop - start < 2 * ramp:
            break
        seg = np.ones(stop - start)
        seg[:ramp] = np.linspace(0, 1, ramp)
        seg[-ramp:] = np.linspace(1, 0, ramp)
        envelope[start:stop] = seg
        start = stop + int(rng.uniform(0.08, 0.25) * sample_rate)
    return normalise_peak(tone * envelope)


def wail_track(t: np.ndarray, centre_hz: float, depth_hz: float, rate_hz: float, offset: float) -> np.ndarray:
    """Siren wail: a slow sinusoidal sweep centre_hz +- depth_hz at rate_hz [Hz], ``offset`` [cycles]."""
    return centre_hz + depth_hz * np.sin(2 * math.pi * (rate_hz * t + offset))


def yelp_track(t: np.ndarray, centre_hz: float, depth_hz: float, rate_hz: float, offset: float) -> np.ndarray:
    """Siren yelp: a triangular sweep centre_hz +- depth_hz at rate_hz [Hz], ``offset`` [cycles]."""
    cycle = (rate_hz * t + offset) % 1.0
    return centre_hz + depth_hz * (4.0 * np.abs(cycle - 0.5) - 1.0)


def alternating_track(
    t: np.ndarray, high_hz: float, low_hz: float, rate_hz: float, offset: float
) -> np.ndarray:
    """Hi-lo / two-tone siren: high_hz for the first half of each 1 / rate_hz cycle, low_hz after."""
    half = ((rate_hz * t + offset) % 1.0) < 0.5
    return np.where(half, high_hz, low_hz)


def siren(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    pattern = rng.integers(3)
    offset = rng.uniform(0, 1)
    if pattern == 0:  # wail: slow sinusoidal sweep
        centre, depth = rng.uniform(800, 1200), rng.uniform(250, 500)
        freq = wail_track(t, centre, depth, rng.uniform(0.25, 0.6), offset)
    elif pattern == 1:  # yelp: fast triangular sweep
        centre, depth = rng.uniform(900, 1300), rng.uniform(300, 500)
        freq = yelp_track(t, centre, depth, rng.uniform(3.0, 6.0), offset)
    else:  # hi-lo: two alternating pitches
        high = rng.uniform(700, 1000)
        rate = rng.uniform(0.8, 1.6)
        freq = alternating_track(t, high, high * rng.uniform(0.7, 0.8), rate, offset)
    phase = phase_of(freq, sample_rate, rng)
    x = (
        np.sin(phase)
        + rng.uniform(0.1, 0.4) * np.sin(2 * phase)
        + rng.uniform(0.05, 0.25) * np.sin(3 * phase)
    )
    return normalise_peak(x)


_BELL_PARTIALS = np.array([1.0, 2.32, 4.25, 6.63])


def electric_bell(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    base_hz: float,
    partials: np.ndarray,
    decay_range_s: tuple[float, float],
    strike_rate_range_hz: tuple[float, float],
    ring_s: float = 0.15,
) -> np.ndarray:
    """Electric bell [n] (not normalised): a hammer striking at a random rate in
    ``strike_rate_range_hz`` (with 2 ms jitter) excites ``partials`` x ``base_hz`` [Hz], each
    ringing for ``ring_s`` [s] with a decay drawn from ``decay_range_s`` (shorter for higher partials)."""
    ring_n = int(ring_s * sample_rate)
    tr = np.arange(ring_n) / sample_rate
    order = np.arange(1, len(partials) + 1)
    decays = rng.uniform(*decay_range_s) / order**0.5
    amps = rng.uniform(0.3, 1.0, len(partials)) / order
    ring = (
        amps[:, None]
        * np.exp(-tr[None] / decays[:, None])
        * np.sin(2 * math.pi * base_hz * partials[:, None] * tr)
    ).sum(0)
    strike_period = 1.0 / rng.uniform(*strike_rate_range_hz)
    times = np.arange(rng.uniform(0, strike_period), n / sample_rate, strike_period)
    times += rng.normal(0, 0.002, times.size)
    strikes = np.zeros(n + ring_n)
    idx = np.clip((times * sample_rate).astype(int), 0, n - 1)
    np.add.at(strikes, idx, rng.uniform(0.7, 1.0, idx.size))
    return fftconvolve(strikes, ring)[:n]


def alarm_bell(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    base = rng.uniform(700, 1500)
    return normalise_peak(electric_bell(rng, n, sample_rate, base, _BELL_PARTIALS, (0.03, 0.12), (12, 25)))


def dog_bark(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    x = np.zeros(n)
    start = int(rng.uniform(0.0, 0.25) * sample_rate)
    formants = (rng.uniform(700, 1300), rng.uniform(1800, 3000))
    for _ in range(rng.integers(1, 5)):
        length = int(rng.uniform(0.08, 0.25) * sample_rate)
        if start + length > n:
            break
        tb = np.arange(length) / sample_rate
        f0 = rng.uniform(350, 800) * (1.0 - rng.uniform(0.2, 0.4) * tb / tb[-1])
        voiced = pulse_wave(phase_of(f0, sample_rate, rng), rng.uniform(4, 10))
        source = voiced / np.std(voiced) + rng.uniform(0.2, 0.6) * rng.standard_normal(length)
        source *= 1.0 + 0.3 * np.sin(2 * math.pi * rng.uniform(30, 60) * tb)  # growl roughness
        shaped = resonator(source, formants[0], 250, sample_rate) + 0.5 * resonator(
            source, formants[1], 400, sample_rate
        )
        envelope = (1.0 - np.exp(-tb / 0.004)) * np.exp(-tb / (0.4 * tb[-1]))
        x[start : start + length] += shaped * envelope
        start += length + int(rng.uniform(0.12, 0.35) * sample_rate)
    return normalise_peak(x)


def footsteps(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    impulse_n = int(0.12 * sample_rate)
    ti = np.arange(impulse_n) / sample_rate
    heel = rng.standard_normal(impulse_n) * np.exp(-ti / rng.uniform(0.01, 0.03))
    toe_delay = int(rng.uniform(0.04, 0.08) * sample_rate)
    toe = np.zeros(impulse_n)
    toe[toe_delay:] = rng.standard_normal(impulse_n - toe_delay) * np.exp(
        -ti[: impulse_n - toe_delay] / 0.008
    )
    step = heel + rng.uniform(0.2, 0.5) * toe
    surface = rng.integers(2)
    if surface == 0:  # wooden floor: resonant body
        step = resonator(step, rng.uniform(150, 500), rng.uniform(60, 150), sample_rate)
    else:  # hard floor: clicky, band-limited
        step = bandpass(step, rng.uniform(300, 800), rng.uniform(2500, 5000), sample_rate)
    interval = rng.uniform(0.35, 0.55)
    times = np.arange(rng.uniform(0.0, 0.25), n / sample_rate, interval)
    times += rng.normal(0, 0.03 * interval, times.size)
    train = np.zeros(n)
    idx = np.clip((times * sample_rate).astype(int), 0, n - 1)
    np.add.at(train, idx, rng.uniform(0.6, 1.0, idx.size))
    return normalise_peak(fftconvolve(train, step)[:n])


def glass_break(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    x = np.zeros(n)
    onset = int(rng.uniform(0.0, 0.3) * sample_rate)
    impact_n = int(rng.uniform(0.005, 0.012) * sample_rate)
    impact = rng.standard_normal(impact_n) * np.exp(-np.arange(impact_n) / (impact_n / 4))
    x[onset : onset + impact_n] += 2.0 * impact[: max(n - onset, 0)]
    spread = rng.uniform(0.3, 0.8)
    count = int(rng.integers(40, 150))
    delays = rng.exponential(spread / 3.0, count)
    tinkle_n = int(0.04 * sample_rate)
    tt = np.arange(tinkle_n) / sample_rate
    freqs = rng.uniform(2000, 9000, count)
    decays = rng.uniform(0.004, 0.03, count)
    amps = rng.uniform(0.2, 1.0, count) * np.exp(-delays / spread)
    tinkles = (
        amps[:, None]
        * np.exp(-tt[None] / decays[:, None])
        * np.sin(2 * math.pi * freqs[:, None] * tt[None] + rng.uniform(0, 2 * math.pi, count)[:, None])
    )
    starts = onset + (delays * sample_rate).astype(int)
    idx = starts[:, None] + np.arange(tinkle_n)[None]
    keep = idx < n
    np.add.at(x, idx[keep], tinkles[keep])
    return normalise_peak(bandpass(x, 1200, 11000, sample_rate, order=1))


def power_tool(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    speed = rng.uniform(80, 400)
    spin_up = rng.uniform(0.02, 0.3)
    ramp = 1.0 - (1.0 - rng.uniform(0.2, 0.6)) * np.exp(-t / spin_up)
    load = 1.0 - rng.uniform(0.0, 0.2) * np.clip(smooth_noise(rng, n, rng.uniform(1, 4), sample_rate), 0, 1)
    freq = speed * ramp * load
    phase = phase_of(freq, sample_rate, rng)
    motor = pulse_wave(phase, rng.uniform(20.0, 60.0))
    gear = np.sin(rng.integers(5, 16) * phase)
    grind = bandpass(rng.standard_normal(n), rng.uniform(2000, 3500), rng.uniform(5000, 8000), sample_rate)
    x = motor / np.std(motor) + rng.uniform(0.3, 1.0) * gear + rng.uniform(0.3, 1.2) * grind / np.std(grind)
    return normalise_peak(x * np.clip(t / 0.01, 0, 1))


# (F1, F2, F3) of the vowels a, e, i, o, u [Hz] (adult average).
_VOWELS = np.array(
    [[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240]]
)


def speech(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    f0_base = rng.uniform(85, 255)
    intonation = 1.0 - 0.1 * t / max(t[-1], 1e-6) + 0.1 * smooth_noise(rng, n, 4.0, sample_rate)
    jitter = 1.0 + 0.01 * rng.standard_normal(n)
    glottal = pulse_wave(phase_of(f0_base * intonation * jitter, sample_rate, rng), rng.uniform(5, 12))
    glottal /= np.std(glottal)
    formant_scale = rng.uniform(0.9, 1.2)
    x = np.zeros(n)
    start = int(rng.uniform(0.0, 0.15) * sample_rate)
    syllable_rate = rng.uniform(3.0, 6.0)
    while start < n:
        length = int(rng.uniform(0.6, 1.2) / syllable_rate * sample_rate)
        stop = min(start + length, n)
        seg = glottal[start:stop]
        vowel = _VOWELS[rng.integers(len(_VOWELS))] * formant_scale
        voiced = sum(
            gain * resonator(seg, f, bw, sample_rate)
            for f, bw, gain in zip(vowel, (80, 100, 150), (1.0, 0.6, 0.3), strict=True)
        )
        ts = np.arange(stop - start) / sample_rate
        envelope = np.sin(math.pi * np.clip(ts / max(ts[-1], 1e-6), 0, 1)) ** 0.7
        x[start:stop] += voiced * envelope
        if rng.uniform() < 0.35:  # fricative consonant before the next syllable
            fric_n = min(int(rng.uniform(0.04, 0.1) * sample_rate), n - stop)
            if fric_n > 0:
                fric = bandpass(rng.standard_normal(fric_n), rng.uniform(3000, 4500), 8000, sample_rate)
                x[stop : stop + fric_n] += 0.3 * np.std(x[start:stop]) / max(np.std(fric), 1e-9) * fric
                stop += fric_n
        pause = rng.uniform(0.2, 0.4) if rng.uniform() < 0.15 else rng.uniform(0.0, 0.05)
        start = stop + int(pause * sample_rate)
    return normalise_peak(x)


def by_class_name(*generators: Generator) -> dict[str, Generator]:
    """Each generator under its function's name, which is the name of the class it voices."""
    return {generator.__name__: generator for generator in generators}


def run_generator(
    generators: dict[str, Generator],
    kind: str,
    class_name: str,
    rng: np.random.Generator,
    n_samples: int,
    sample_rate: int,
) -> np.ndarray:
    """The class's generator of ``generators`` run for ``n_samples`` at ``sample_rate`` [Hz];
    ``kind`` names the table in the error of an unknown class."""
    try:
        generator = generators[class_name]
    except KeyError:
        raise KeyError(f"no {kind} for class '{class_name}'; known: {sorted(generators)}") from None
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    return generator(rng, n_samples, sample_rate)


SIGNAL_MODELS: dict[str, Generator] = by_class_name(
    vehicle_engine, car_horn, siren, alarm_bell, dog_bark, footsteps, glass_break, power_tool, speech
)


def synthesize_class(
    class_name: str, rng: np.random.Generator, n_samples: int, sample_rate: int
) -> np.ndarray:
    """Dry mono signal float32 [n_samples], peak 1, for a class of the default taxonomy."""
    return run_generator(SIGNAL_MODELS, "procedural signal model", class_name, rng, n_samples, sample_rate)


def _envelope(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Gain [n]: steady, or a sound that starts late (onset in the first half) or stops early."""
    gain = np.ones(n)
    ramp = max(int(0.005 * sample_rate), 1)
    shape = rng.uniform()
    if shape < 0.25:  # starts within the window
        onset = int(rng.uniform(0.0, 0.5) * n)
        gain[:onset] = 0.0
        gain[onset : onset + ramp] = np.linspace(0.0, 1.0, min(ramp, n - onset))
    elif shape < 0.5:  # fades out within the window
        stop = int(rng.uniform(0.5, 1.0) * n)
        fade = min(int(rng.uniform(0.02, 0.2) * sample_rate), stop)
        gain[stop:] = 0.0
        gain[stop - fade : stop] = np.linspace(1.0, 0.0, fade)
    return gain


def synthesize_varied(
    class_name: str,
    rng: np.random.Generator,
    n_samples: int,
    sample_rate: int,
    max_speed_change: float = 0.15,
) -> np.ndarray:
    """``synthesize_class`` with the variety a recording adds, float32 [n_samples], peak 1.

    Three cheap, random changes on top of the class model: a speed factor within
    +-``max_speed_change`` (pitch and tempo together, as a different engine or voice would be), a
    first-order spectral tilt (pre-emphasis coefficient -0.6..0.6: duller or brighter), and an
    envelope that lets a quarter of the sounds start late and a quarter stop early.
    """
    speed = rng.uniform(1.0 - max_speed_change, 1.0 + max_speed_change)
    long_n = math.ceil(n_samples * speed) + 2
    x = synthesize_class(class_name, rng, long_n, sample_rate).astype(np.float64)
    x = np.interp(np.arange(n_samples) * speed, np.arange(long_n), x)
    x = lfilter([1.0, -rng.uniform(-0.6, 0.6)], [1.0], x)
    return normalise_peak(x * _envelope(rng, n_samples, sample_rate))
