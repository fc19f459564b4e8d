"""Wide-range procedural sound families for the hazard classes that rest on few real recordings.

The real sound bank (``avi_ros.sounds``) holds 2-8 recordings of most hazard classes (two
sirens, three dogs). A model trained on them learns those recordings, not the class. Each
family here first draws the *kind* of source (a wail or a two-tone siren, a car or a truck horn,
an electric bell or a smoke detector, a drill or a grinder) and then its physical parameters
from wide ranges, so that training also hears what the few recordings do not. Scenes mix these
clips into the training split next to the real ones (``SceneConfig.procedural_probability``).

``avi_ros.data.signals`` keeps the fixed-range class models of the default scenes (their random
draws are frozen, so scenes stay the same per seed) and the signal building blocks used here;
a class without a wide family here (``footsteps``) uses its model there.

Every generator takes ``(rng, n_samples, sample_rate)`` and returns float32 [n_samples] with
peak 1 and at least one sounding event. Times are in seconds, frequencies in Hz.

Families (``PROCEDURAL_FAMILIES`` maps class names to them):
- siren: wail, yelp, piercer (very fast yelp), hi-lo and two-tone tracks within
  ``SIREN_RANGE_HZ``, electronic (clipped) or mechanical (harmonic) timbre, speaker band limits.
- car_horn: car (detuned pairs of clipped-sine disc horns), truck and air horns (chords of
  harmonic stacks with a pressure glide), shaped by 2-3 formant-like horn resonances; 1-4 honks.
- alarm_bell: electric bells (several plate partial sets), fire-alarm sounders (temporal-3,
  march time, continuous, whoop), smoke-detector beeps and chirps, mains buzzers.
- vehicle_engine: harmonics of the engine cycle (rpm / 120 Hz) where the firing orders (multiples
  of the cylinder count, i.e. of rpm * cylinders / 120 Hz) dominate, with rpm and load sweeps
  (idle, cruise, rev up, slow down), exhaust resonance and firing-modulated combustion noise.
- power_tool: drills, circular saws, jigsaws and angle grinders: motor whine at the rotation and
  commutator-slot rates, gear mesh or blade-tooth tones, load dips and contact noise.
- glass_break: an impact crack and thump, modal ringing of the pane or bottle, and a scatter of
  shards landing, each ringing a few high modes.
- dog_bark: dogs of any size (f0 and formants scale with body size): barks with an arched pitch
  contour, yelps and growls, through three formants.
- speech: babble of 1-5 talkers, each ``signals.speech`` at another speed (voice) and level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from avi_ros.data.signals import (
    Generator,
    alternating_track,
    bandpass,
    by_class_name,
    electric_bell,
    firing_frequency_hz,
    footsteps,
    lowpass,
    normalise_peak,
    phase_of,
    pulse_wave,
    resonator,
    run_generator,
    smooth_noise,
    synthesize_varied,
    wail_track,
    yelp_track,
)

SIREN_RANGE_HZ = (300.0, 2200.0)  # every siren track stays within this band [Hz]
SIREN_PATTERNS = ("wail", "yelp", "piercer", "hi-lo", "two-tone")
ENGINE_CYLINDERS = (2, 3, 4, 5, 6, 8, 10, 12)
ENGINE_RPM_RANGE = (550.0, 6500.0)
_ENGINE_MAX_HARMONIC_HZ = 3000.0  # engine-cycle harmonics above this are left out [Hz]
_ENGINE_MAX_HARMONICS = 128


def _highpass(x: np.ndarray, cutoff_hz: float, sample_rate: int, order: int = 2) -> np.ndarray:
    wn = min(max(cutoff_hz / (sample_rate / 2.0), 1e-4), 0.99)
    return sosfilt(butter(order, wn, btype="high", output="sos"), x)


def _unit(x: np.ndarray) -> np.ndarray:
    """x scaled to unit RMS (0 stays 0), so components can be mixed at chosen ratios."""
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    return x / rms if rms > 0 else x


def _smooth_gate(gate: np.ndarray, fade_n: int) -> np.ndarray:
    """A 0/1 gate with raised-cosine edges of ``fade_n`` samples (no clicks)."""
    if fade_n <= 1:
        return gate
    window = np.hanning(fade_n + 2)[1:-1]
    return np.clip(fftconvolve(gate, window / window.sum(), mode="same"), 0.0, 1.0)


def _events(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    count: int,
    length_range_s: tuple[float, float],
    gap_range_s: tuple[float, float],
) -> list[tuple[int, int]]:
    """Up to ``count`` (start, stop) sample spans of events separated by gaps; the first starts in
    the first fifth of the clip and is always kept (cut at the clip's end), later ones only whole."""
    spans = []
    start = int(rng.uniform(0.0, 0.2) * n)
    for k in range(count):
        length = max(int(rng.uniform(*length_range_s) * sample_rate), 2)
        if k > 0 and start + length > n:
            break
        spans.append((start, min(start + length, n)))
        start += length + int(rng.uniform(*gap_range_s) * sample_rate)
        if start >= n - 2:
            break
    return spans


def _pattern_gate(
    rng: np.random.Generator, n: int, sample_rate: int, pattern_s: tuple[tuple[float, float], ...]
) -> np.ndarray:
    """A repeating on/off gate [n] of (on, off) durations [s]; the pattern starts at a random time
    between 80 % into its first 'on' before the clip and a fifth into the clip, so one 'on' sounds."""
    period = sum(on + off for on, off in pattern_s)
    start = rng.uniform(-0.8 * pattern_s[0][0], 0.2 * n / sample_rate)
    tau = np.arange(n) / sample_rate - start
    phase = np.mod(tau, period)
    gate = np.zeros(n)
    t0 = 0.0
    for on, off in pattern_s:
        gate[(phase >= t0) & (phase < t0 + on)] = 1.0
        t0 += on + off
    gate[tau < 0] = 0.0
    return _smooth_gate(gate, int(0.004 * sample_rate))


# ----------------------------------------------------------------------------------------------
# siren


def siren_track(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Instantaneous frequency [Hz, n] of a random siren pattern (``SIREN_PATTERNS``), within
    ``SIREN_RANGE_HZ``. ``siren`` draws it first, so the same seed gives the track of its clip."""
    t = np.arange(n) / sample_rate
    pattern = SIREN_PATTERNS[int(rng.integers(len(SIREN_PATTERNS)))]
    offset = rng.uniform(0.0, 1.0)
    low_limit = SIREN_RANGE_HZ[0]
    if pattern == "wail":
        centre = rng.uniform(550, 1400)
        return wail_track(
            t, centre, rng.uniform(150, min(700, centre - low_limit)), rng.uniform(0.08, 0.8), offset
        )
    if pattern == "yelp":
        centre = rng.uniform(600, 1600)
        return yelp_track(
            t, centre, rng.uniform(150, min(600, centre - low_limit)), rng.uniform(2.0, 8.0), offset
        )
    if pattern == "piercer":
        return yelp_track(t, rng.uniform(900, 1700), rng.uniform(100, 400), rng.uniform(8.0, 15.0), offset)
    if pattern == "hi-lo":
        high = rng.uniform(600, 1800)
        return alternating_track(t, high, high * rng.uniform(0.6, 0.85), rng.uniform(0.5, 2.0), offset)
    low = rng.uniform(360, 900)  # two-tone: about a fourth apart, slower
    return alternating_track(t, low * rng.uniform(1.26, 1.5), low, rng.uniform(0.35, 1.2), offset)


def siren(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    freq = siren_track(rng, n, sample_rate)
    phase = phase_of(freq, sample_rate, rng)
    if rng.uniform() < 0.5:  # electronic: a clipped tone (odd harmonics, weaker than the fundamental)
        x = np.tanh(rng.uniform(1.0, 4.0) * np.sin(phase))
    else:  # mechanical rotor: a few decaying harmonics
        amps = rng.uniform(0.05, 0.5, 3) / np.arange(2, 5)
        x = np.sin(phase) + sum(a * np.sin(k * phase) for k, a in zip(range(2, 5), amps, strict=True))
    x = _highpass(x, rng.uniform(150, 280), sample_rate)  # horn speaker
    x = lowpass(x, rng.uniform(3000, 7000), sample_rate)
    x = x + rng.uniform(0.0, 0.03) * np.std(x) * rng.standard_normal(n)
    return normalise_peak(x)


# ----------------------------------------------------------------------------------------------
# horns


def _honk_envelope(
    rng: np.random.Generator, n: int, sample_rate: int, length_range_s: tuple[float, float]
) -> np.ndarray:
    envelope = np.zeros(n)
    for start, stop in _events(rng, n, sample_rate, int(rng.integers(1, 5)), length_range_s, (0.05, 0.3)):
        envelope[start:stop] = 1.0
    return _smooth_gate(envelope, int(rng.uniform(0.005, 0.03) * sample_rate))


def car_horn(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    kind = int(rng.integers(3))  # 0 car, 1 truck, 2 air horn
    vibrato = 1.0 + rng.uniform(0.001, 0.006) * np.sin(2 * math.pi * rng.uniform(3, 9) * t)
    if kind == 0:  # a low and a high disc horn, each a detuned pair of clipped sines
        base = rng.uniform(300, 560)
        ratios = [1.0, rng.uniform(1.15, 1.35)]
        lengths = (0.1, 1.2)
    else:  # chords of one to three harmonic stacks
        base = rng.uniform(150, 330) if kind == 1 else rng.uniform(200, 500)
        chord = (1.0, 1.25, 1.5, 1.2, 1.335)
        ratios = [1.0, *rng.choice(chord[1:], int(rng.integers(0, 3)), replace=False)]
        lengths = (0.2, 2.0)
    glide_s = rng.uniform(0.03, 0.15) if kind == 2 else 0.0  # air pressure builds the pitch up
    glide = 1.0 - 0.08 * np.exp(-t / glide_s) if glide_s > 0 else 1.0
    tone = np.zeros(n)
    for ratio in ratios:
        for detune in (1.0, 1.0 + rng.uniform(0.002, 0.02) * rng.choice([-1.0, 1.0])):
            phase = phase_of(base * ratio * detune * vibrato * glide, sample_rate, rng)
            if kind == 0:
                voice = np.tanh(rng.uniform(2.0, 8.0) * np.sin(phase))
            else:
                voice = pulse_wave(phase, rng.uniform(5.0, 40.0))
            tone += rng.uniform(0.5, 1.0) * _unit(voice)
    shaped = sum(
        rng.uniform(0.3, 1.0) * _unit(resonator(tone, rng.uniform(lo, hi), rng.uniform(80, 400), sample_rate))
        for lo, hi in ((400, 1200), (1200, 2500), (2500, 4000))[: int(rng.integers(2, 4))]
    )
    x = rng.uniform(0.3, 1.0) * _unit(tone) + shaped
    return normalise_peak(x * _honk_envelope(rng, n, sample_rate, lengths))


# ----------------------------------------------------------------------------------------------
# bells, alarms, beepers, buzzers

_PLATE_PARTIALS = (
    np.array([1.0, 2.32, 4.25, 6.63]),  # thin plate gong
    np.array([1.0, 2.76, 5.40, 8.93]),  # free circular plate
    np.array([1.0, 1.59, 2.14, 2.30, 2.65]),  # cup bell (membrane-like)
)
_ALARM_PATTERNS_S = {
    "temporal-3": ((0.5, 0.5), (0.5, 0.5), (0.5, 1.5)),
    "march-time": ((0.25, 0.25),),
    "continuous": ((1.0, 0.0),),
}


def _electric_bell(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    partials = _PLATE_PARTIALS[int(rng.integers(len(_PLATE_PARTIALS)))] * rng.uniform(0.97, 1.03)
    x = electric_bell(rng, n, sample_rate, rng.uniform(400, 2500), partials, (0.02, 0.15), (8, 30), 0.6)
    gate = _pattern_gate(rng, n, sample_rate, ((rng.uniform(0.5, 4.0), rng.uniform(0.2, 1.0)),))
    return x * gate


def _fire_alarm(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    name = ("temporal-3", "march-time", "continuous", "whoop")[int(rng.integers(4))]
    if name == "whoop":  # slow rising sweep, repeated
        period = rng.uniform(0.5, 3.0)
        low, high = rng.uniform(400, 700), rng.uniform(1000, 1400)
        freq = low + (high - low) * np.mod(t / period + rng.uniform(0, 1), 1.0)
        gate = np.ones(n)
    else:
        freq = np.full(n, rng.uniform(400, 1000) if rng.uniform() < 0.6 else rng.uniform(2400, 3200))
        gate = _pattern_gate(rng, n, sample_rate, _ALARM_PATTERNS_S[name])
    x = np.tanh(rng.uniform(1.5, 6.0) * np.sin(phase_of(freq, sample_rate, rng)))
    x = x + rng.uniform(0.3, 1.0) * _unit(resonator(x, rng.uniform(1500, 3500), 500, sample_rate))
    return x * gate


def _smoke_detector(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Piezo beeper at 2.8-3.6 kHz: temporal-3 alarm beeps or a short low-battery chirp."""
    carrier = rng.uniform(2800, 3600) * (1.0 + 0.01 * smooth_noise(rng, n, 20.0, sample_rate))
    phase = phase_of(carrier, sample_rate, rng)
    x = np.sin(phase) + rng.uniform(0.0, 0.2) * np.sin(2 * phase)
    if rng.uniform() < 0.6:
        on = rng.uniform(0.3, 0.6)
        pattern = ((on, on), (on, on), (on, rng.uniform(1.0, 1.6)))
    else:
        pattern = ((rng.uniform(0.03, 0.1), rng.uniform(0.3, 1.5)),)
    return x * _pattern_gate(rng, n, sample_rate, pattern)


def _buzzer(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Mains or electronic buzzer: a square-ish 50-400 Hz drive through a 1-3 kHz housing resonance."""
    f0 = rng.choice([100.0, 120.0]) if rng.uniform() < 0.5 else rng.uniform(50, 400)
    drive = np.tanh(rng.uniform(3.0, 10.0) * np.sin(phase_of(np.full(n, f0), sample_rate, rng)))
    x = _unit(drive) + rng.uniform(0.5, 2.0) * _unit(
        resonator(drive, rng.uniform(1000, 3000), rng.uniform(100, 400), sample_rate)
    )
    gate = _pattern_gate(rng, n, sample_rate, ((rng.uniform(0.15, 2.0), rng.uniform(0.1, 0.8)),))
    return x * gate


def alarm_bell(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    kinds = (_electric_bell, _fire_alarm, _smoke_detector, _buzzer)
    return normalise_peak(kinds[int(rng.integers(len(kinds)))](rng, n, sample_rate))


# ----------------------------------------------------------------------------------------------
# engines


@dataclass(frozen=True)
class EngineParams:
    """One four-stroke engine's run over a clip: rpm and load (0 coasting .. 1 full throttle)
    move from their start to their end values along a smooth S-curve over the clip."""

    cylinders: int
    rpm_start: float
    rpm_end: float
    load_start: float
    load_end: float


def draw_engine_params(rng: np.random.Generator) -> EngineParams:
    """Idle, cruise, rev up or slow down, with 2-12 cylinders, within ``ENGINE_RPM_RANGE``."""
    cylinders = int(rng.choice(ENGINE_CYLINDERS, p=[0.05, 0.1, 0.35, 0.05, 0.2, 0.15, 0.05, 0.05]))
    mode = int(rng.integers(4))
    if mode == 0:  # idle
        rpm = rng.uniform(550, 1000)
        return EngineParams(cylinders, rpm, rpm * rng.uniform(0.97, 1.03), *rng.uniform(0.05, 0.2, 2))
    if mode == 1:  # cruise
        rpm = rng.uniform(1500, 3500)
        return EngineParams(cylinders, rpm, rpm * rng.uniform(0.9, 1.1), *rng.uniform(0.3, 0.7, 2))
    low, high = rng.uniform(800, 2200), rng.uniform(2500, 6500)
    if mode == 2:  # rev up under load
        return EngineParams(cylinders, low, high, rng.uniform(0.6, 1.0), rng.uniform(0.4, 1.0))
    return EngineParams(cylinders, high, low, rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.2))  # slow down


def render_engine(params: EngineParams, rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """The engine of ``params`` over ``n`` samples, float32 peak 1.

    Harmonics of the engine cycle rpm / 120 Hz (one cycle is two turns): the firing orders
    (multiples of the cylinder count, at multiples of rpm * cylinders / 120 Hz) are strong, with
    a roll-off that load makes brighter; the other orders are weak (cylinder imbalance). Under
    them: an exhaust resonance and low-passed combustion noise pulsed by the firing.
    """
    t = np.arange(n) / sample_rate
    s = t / max(t[-1], 1e-9)
    curve = s * s * (3.0 - 2.0 * s)  # smoothstep
    rpm = params.rpm_start + (params.rpm_end - params.rpm_start) * curve
    load = params.load_start + (params.load_end - params.load_start) * curve
    rpm = rpm * (1.0 + rng.uniform(0.001, 0.005) * smooth_noise(rng, n, rng.uniform(1.0, 4.0), sample_rate))
    cycle_hz = rpm / 120.0
    cycle_phase = phase_of(cycle_hz, sample_rate, rng)
    top = min(_ENGINE_MAX_HARMONIC_HZ, 0.45 * sample_rate)
    count = int(min(_ENGINE_MAX_HARMONICS, max(top / float(cycle_hz.max()), params.cylinders)))
    orders = np.arange(1, count + 1)
    firing = orders % params.cylinders == 0
    rolloff = rng.uniform(0.3, 1.0)
    imbalance = rng.uniform(0.02, 0.12) * rng.uniform(0.3, 1.0, count)
    phases = rng.uniform(0, 2 * math.pi, count)
    x = np.zeros(n)
    rotor = np.exp(1j * cycle_phase)  # harmonic k is Im(rotor**k e^{i phi}), built by repeated products
    power = np.ones(n, dtype=np.complex128)
    for order, is_firing, weak, phi in zip(orders, firing, imbalance, phases, strict=True):
        power *= rotor
        if is_firing:
            m = order / params.cylinders  # firing harmonic number
            amp = 1.0 / (1.0 + (m - 1.0) * rolloff * (1.3 - load))
        else:
            amp = weak
        if order * cycle_hz.max() > 0.8 * top:  # fade out what an rpm sweep pushes past the top
            amp = amp * np.clip((top - order * cycle_hz) / (0.2 * top), 0.0, 1.0)
        x += amp * (power.imag * math.cos(phi) + power.real * math.sin(phi))
    firing_hz = firing_frequency_hz(rpm, params.cylinders)
    pulses = pulse_wave(phase_of(firing_hz, sample_rate, rng), rng.uniform(2.0, 8.0))
    combustion = lowpass(rng.standard_normal(n), rng.uniform(300, 1500), sample_rate) * (1.0 + pulses)
    exhaust = resonator(x, rng.uniform(60, 300), rng.uniform(40, 150), sample_rate)
    y = (
        _unit(x)
        + rng.uniform(0.2, 0.8) * _unit(exhaust)
        + rng.uniform(0.05, 0.3) * (0.3 + load) * _unit(combustion)
    )
    return normalise_peak(y)


def vehicle_engine(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    return render_engine(draw_engine_params(rng), rng, n, sample_rate)


# ----------------------------------------------------------------------------------------------
# power tools

# Motor rotation ranges [Hz] of the tool kinds (a grinder spins its disc at about 10 000 rpm).
_TOOL_SPEED_HZ = {"drill": (120, 500), "circular_saw": (70, 100), "jigsaw": (150, 400), "grinder": (140, 200)}


def _contact_gate(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """When the tool bites the material: one span from a random start to a random stop."""
    gate = np.zeros(n)
    start = int(rng.uniform(0.0, 0.5) * n)
    gate[start : max(start + 2, int(rng.uniform(0.6, 1.0) * n))] = 1.0
    return _smooth_gate(gate, int(rng.uniform(0.01, 0.08) * sample_rate))


def power_tool(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    kind = list(_TOOL_SPEED_HZ)[int(rng.integers(len(_TOOL_SPEED_HZ)))]
    contact = _contact_gate(rng, n, sample_rate) if rng.uniform() < 0.75 else np.zeros(n)
    spin_up = 1.0 - (1.0 - rng.uniform(0.1, 0.6)) * np.exp(-t / rng.uniform(0.02, 0.4))
    dip = 1.0 - rng.uniform(0.05, 0.3) * contact  # the motor slows under load
    wobble = 1.0 + rng.uniform(0.0, 0.05) * smooth_noise(rng, n, rng.uniform(1, 6), sample_rate)
    rotation = rng.uniform(*_TOOL_SPEED_HZ[kind]) * spin_up * dip * wobble
    phase = phase_of(rotation, sample_rate, rng)
    slots = int(rng.integers(8, 25))  # commutator: a whine at slots x rotation
    motor = _unit(pulse_wave(phase, rng.uniform(5.0, 40.0))) + rng.uniform(0.3, 1.0) * np.sin(slots * phase)
    if kind == "drill":  # gear mesh at teeth x the pinion's rotation
        tonal = np.sin(int(rng.integers(8, 20)) * phase)
        band, mod_hz = (rng.uniform(800, 2000), rng.uniform(4000, 7000)), rotation / rng.uniform(5, 20)
    elif kind == "circular_saw":  # blade teeth passing: a bright 2-6 kHz tone
        tonal = np.sin(int(rng.integers(24, 61)) * phase)
        band, mod_hz = (rng.uniform(500, 1500), rng.uniform(6000, 10000)), rotation
    elif kind == "jigsaw":  # the blade's stroke beats the cut noise
        tonal = np.sin(2 * phase)
        band, mod_hz = (rng.uniform(500, 1500), rng.uniform(3000, 7000)), np.full(n, rng.uniform(20, 50))
    else:  # grinder: disc whine, spark crackle
        tonal = np.sin(int(rng.integers(2, 6)) * phase)
        band, mod_hz = (rng.uniform(2000, 3500), rng.uniform(8000, 11000)), rotation
    grind = bandpass(rng.standard_normal(n), band[0], min(band[1], 0.45 * sample_rate), sample_rate)
    grind *= 1.0 + rng.uniform(0.2, 0.9) * np.sin(phase_of(mod_hz, sample_rate, rng))
    if kind == "grinder":
        sparks = (rng.uniform(size=n) < rng.uniform(0.001, 0.01)) * rng.standard_normal(n)
        grind += rng.uniform(1.0, 4.0) * _highpass(sparks, 3000, sample_rate)
    x = _unit(motor) + rng.uniform(0.2, 1.0) * tonal + rng.uniform(0.5, 2.0) * contact * _unit(grind)
    x = x + rng.uniform(0.05, 0.3) * _unit(grind)  # air and bearing noise with no contact
    return normalise_peak(x * np.clip(t / 0.01, 0, 1))


# ----------------------------------------------------------------------------------------------
# glass


def _ring(x: np.ndarray, freq_hz: float, decay_s: float, sample_rate: int) -> np.ndarray:
    """x through a mode at freq_hz whose amplitude decays by 1/e in decay_s (impulse response of
    peak about 1): a two-pole resonator of bandwidth 1 / (pi decay_s)."""
    gain = 1.0 - math.exp(-1.0 / (decay_s * sample_rate))
    return resonator(x, freq_hz, 1.0 / (math.pi * decay_s), sample_rate) / gain


def glass_break(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    x = np.zeros(n)
    onset = int(rng.uniform(0.0, 0.2) * n)
    nyquist_safe = 0.45 * sample_rate
    # Impact: a sharp crack and, for thick panes, a low thump.
    crack_n = max(int(rng.uniform(0.002, 0.012) * sample_rate), 2)
    crack = _highpass(rng.standard_normal(crack_n), 1500, sample_rate) * np.exp(
        -np.arange(crack_n) / (crack_n / 4)
    )
    thump_n = max(int(0.03 * sample_rate), 2)
    thump = lowpass(rng.standard_normal(thump_n), rng.uniform(100, 400), sample_rate)
    thump *= np.exp(-np.arange(thump_n) / (thump_n / 5)) * rng.uniform(0.0, 1.0)
    impact = np.zeros(max(crack_n, thump_n))
    impact[:crack_n] += 3.0 * _unit(crack)
    impact[:thump_n] += 2.0 * _unit(thump) * rng.uniform(0.0, 1.0)
    stop = min(onset + impact.size, n)
    x[onset:stop] += impact[: stop - onset]
    # Modal ringing of the pane (high, many modes) or a bottle (lower, fewer, longer): a bank of
    # decaying modes struck at the onset.
    strike = np.zeros(n)
    strike[onset] = 1.0
    modes = int(rng.integers(8, 31))
    low = rng.uniform(600, 2500)
    freqs = np.exp(rng.uniform(math.log(low), math.log(min(11000.0, nyquist_safe)), modes))
    decays = rng.uniform(0.01, 0.25, modes) * (low / freqs) ** 0.5
    ring = sum(
        a * _ring(strike, f, d, sample_rate)
        for f, d, a in zip(freqs, decays, rng.uniform(0.1, 1.0, modes), strict=True)
    )
    x += rng.uniform(0.3, 1.0) * 3.0 * _unit(ring)
    # Shards landing over ``spread`` seconds, fewer and softer as time goes on: each strikes one
    # of 8-16 high, short-lived modes and clicks.
    spread = rng.uniform(0.15, 1.2)
    count = int(rng.integers(20, 251))
    delays = rng.gamma(rng.uniform(1.0, 3.0), spread / 4.0, count)
    starts = onset + (delays * sample_rate).astype(int)
    amps = rng.uniform(0.2, 1.0, count) * np.exp(-delays / spread)
    groups = int(rng.integers(8, 17))
    owner = rng.integers(groups, size=count)
    keep = starts < n
    scatter = np.zeros(n)
    for g in range(groups):
        mine = keep & (owner == g)
        train = np.bincount(starts[mine], weights=amps[mine], minlength=n)
        f, d = rng.uniform(2000, min(12000.0, nyquist_safe)), rng.uniform(0.003, 0.03)
        scatter += _ring(train, f, d, sample_rate)
    clicks = np.bincount(starts[keep], weights=amps[keep], minlength=n)
    x += rng.uniform(0.5, 1.5) * _unit(scatter) + rng.uniform(0.0, 0.5) * _unit(
        _highpass(clicks, 4000, sample_rate)
    )
    return normalise_peak(_highpass(x, 300, sample_rate, order=1))


# ----------------------------------------------------------------------------------------------
# dogs


def _dog_call(
    rng: np.random.Generator,
    length: int,
    sample_rate: int,
    f0_hz: float,
    formants_hz: tuple[float, float, float],
    kind: str,
) -> np.ndarray:
    """One bark, yelp or growl [length]: a glottal pulse train along a pitch contour plus breath
    noise, through three formants, under an attack-decay envelope."""
    tb = np.arange(length) / sample_rate
    s = tb / max(tb[-1], 1e-9)
    if kind == "bark":  # pitch rises to a peak then falls
        peak = rng.uniform(0.1, 0.5)
        contour = (
            1.0
            + rng.uniform(0.1, 0.4) * np.where(s < peak, s / peak, 1.0 - (s - peak) / (1.0 - peak))
            - 0.2 * s
        )
    elif kind == "yelp":  # rising
        contour = 1.0 + rng.uniform(0.2, 0.6) * s
    else:  # growl: steady and rough
        contour = 1.0 + 0.05 * smooth_noise(rng, length, 8.0, sample_rate)
    voiced = pulse_wave(phase_of(f0_hz * contour, sample_rate, rng), rng.uniform(4.0, 12.0))
    noise_share = rng.uniform(0.5, 1.5) if kind == "growl" else rng.uniform(0.1, 0.8)
    source = _unit(voiced) + noise_share * rng.standard_normal(length)
    roughness = rng.uniform(20, 45) if kind == "growl" else rng.uniform(30, 70)
    source *= 1.0 + rng.uniform(0.1, 0.6) * np.sin(2 * math.pi * roughness * tb)
    shaped = sum(
        gain * resonator(source, f, bw, sample_rate)
        for f, bw, gain in zip(formants_hz, (200, 300, 450), (1.0, 0.6, 0.3), strict=True)
    )
    attack = rng.uniform(0.002, 0.015) if kind != "growl" else rng.uniform(0.03, 0.1)
    release = 0.4 if kind == "bark" else 0.8
    return shaped * (1.0 - np.exp(-tb / attack)) * np.exp(-tb / (release * max(tb[-1], 1e-9)))


def dog_bark(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    size = rng.uniform()  # 0: a small dog (high pitch and formants) .. 1: a large one
    scale = 1.5 - 0.8 * size
    formants = (
        rng.uniform(500, 900) * scale,
        rng.uniform(1400, 2300) * scale,
        rng.uniform(2600, 3800) * scale,
    )
    kind = ("bark", "bark", "bark", "yelp", "growl")[int(rng.integers(5))]
    if kind == "growl":
        f0, count, lengths, gaps = rng.uniform(70, 180), int(rng.integers(1, 3)), (0.4, 1.5), (0.05, 0.3)
    else:
        f0 = 1100.0 * (0.15**size) * rng.uniform(0.8, 1.2) * (1.3 if kind == "yelp" else 1.0)
        count, lengths, gaps = int(rng.integers(1, 7)), (0.06 + 0.1 * size, 0.15 + 0.25 * size), (0.08, 0.5)
    x = np.zeros(n)
    for start, stop in _events(rng, n, sample_rate, count, lengths, gaps):
        x[start:stop] += _dog_call(rng, stop - start, sample_rate, f0 * rng.uniform(0.9, 1.1), formants, kind)
    return normalise_peak(x)


# ----------------------------------------------------------------------------------------------
# speech babble


def speech(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """1-5 talkers (``signals.speech`` at +-30 % speed: children to deep voices) at levels 0 to -12 dB."""
    x = np.zeros(n)
    for _ in range(int(rng.integers(1, 6))):
        voice = synthesize_varied("speech", rng, n, sample_rate, max_speed_change=0.3)
        x += 10.0 ** (rng.uniform(-12.0, 0.0) / 20.0) * voice
    return normalise_peak(x)


PROCEDURAL_FAMILIES: dict[str, Generator] = by_class_name(
    vehicle_engine, car_horn, siren, alarm_bell, dog_bark, footsteps, glass_break, power_tool, speech
)


def synthesize_procedural(
    class_name: str, rng: np.random.Generator, n_samples: int, sample_rate: int
) -> np.ndarray:
    """A dry mono clip float32 [n_samples], peak 1, from the class's wide family."""
    clip = run_generator(PROCEDURAL_FAMILIES, "procedural family", class_name, rng, n_samples, sample_rate)
    return clip.astype(np.float32)
