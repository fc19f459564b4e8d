"""Direction of arrival from first-order ambisonics by physics: the active intensity vector.

A first-order ambisonic (FOA) signal carries the pressure (W) and the pressure gradient (X, Y, Z)
at one point. Per short-time Fourier bin the *active intensity*

    I(t, f) = Re(W*(t, f) [X(t, f), Y(t, f), Z(t, f)])            (x, y, z order)

points at the source that dominates that bin (Merimaa and Pulkki, "Spatial impulse response
rendering", J. Audio Eng. Soc. 53(12), 2005; Pulkki, "Spatial sound reproduction with directional
audio coding", JAES 55(6), 2007). With SN3D normalisation, a plane wave of spectrum S from the unit
direction u gives W = S and [X, Y, Z] = S u, so I = |S|^2 u and the energy density

    E(t, f) = (|W|^2 + |X|^2 + |Y|^2 + |Z|^2) / 2                  (= |S|^2 for a plane wave)

equals |I|; the factor rho c of the physical quantities is absorbed into these units. The
*diffuseness*, averaged over a few neighbouring bins (``DIFFUSENESS_FRAMES`` frames x
``DIFFUSENESS_BINS`` bins, a moving average written <.>),

    psi(t, f) = 1 - |<I>| / <E>                                    (0..1)

is 0 for one plane wave and tends to 1 in an isotropic (diffuse) field, where the channels are
independent with first-order variance 1/3 of W and <I> averages to zero; a finite average leaves
a residual of about 1 / sqrt(3 x frames x bins), so independent noise reads psi near 0.8 with the
defaults.

Estimators (all on ACN/SN3D [4, samples]; other conventions via ``channel_order`` and
``normalization``, converted by ``avi_ros.audio.to_acn_sn3d`` as at every edge of the package):
- ``broadband_direction``: the sum of I over the frames and the bins of a band (default
  ``DEFAULT_BAND_HZ``): an energy-weighted average direction, the classic broadband estimate;
- ``tf_direction``: per-bin unit vectors I / |I| weighted by (1 - psi) E^p, keeping only bins
  with psi at most a threshold, so reverberant and noisy bins count less than direct sound. p = 1
  is the textbook energy weighting; the default ``DEFAULT_ENERGY_EXPONENT`` = 0.25 keeps a few
  loud bins (a tone's partials, which a room's standing waves bend) from outvoting the rest: in
  ``bench/bench_direction.py`` scenes (200 rendered rooms, RT60 0.2..3 s, SNR -5..20 dB) it cut
  the median azimuth error from 12.4 to 8.2 deg, at 0.4 instead of 0.1 deg in the free field;
- ``candidate_directions``: up to K peaks of the weighted histogram of per-bin directions on an
  azimuth x elevation grid (for several sources in different bins);
- ``feature_direction``: the same physics read from the package's own feature tensor (channels
  4..6 of ``avi_ros.features`` ``dcase`` features: the mel-binned, energy-normalised intensity in
  y, z, x order), so evaluation can report a physics baseline from cached features.

Frames follow REP-103 (x forward, y left, z up); azimuth is counter-clockwise from +x in
[-pi, pi], elevation positive upward, both in radians (reports convert to degrees). The input
level is the RMS of W in dB relative to full scale (a full-scale square wave is 0 dBFS, a
full-scale sine -3 dBFS).

numpy and scipy only: no torch and no ROS, so the node, ``avi-ros predict``, the benchmarks and
evaluation can all call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter
from scipy.signal import ShortTimeFFT
from scipy.signal.windows import hann

from avi_ros.audio import FOA_CHANNELS, to_acn_sn3d
from avi_ros.geometry import direction_to_unit, unit_to_direction

DEFAULT_N_FFT = 1024  # STFT length [samples]: 43 ms at 24 kHz, 23 Hz bins
DEFAULT_HOP = 512  # STFT hop [samples]
# Band of the estimates [Hz]: below it room modes and handling noise, above it the spatial
# aliasing of real tetrahedral arrays.
DEFAULT_BAND_HZ = (100.0, 8000.0)
DIFFUSENESS_FRAMES = 5  # moving-average length of the diffuseness over time [STFT frames]
DIFFUSENESS_BINS = 3  # ... and over frequency [STFT bins]
DEFAULT_DIFFUSENESS_THRESHOLD = 0.5  # tf_direction keeps bins at most this diffuse
DEFAULT_ENERGY_EXPONENT = 0.25  # p of the bin weights (1 - psi) E^p (module docstring)
MIN_LEVEL_DBFS = -160.0  # level reported for digital silence (below any 24-bit signal)
_EPS = 1e-20  # power floor: keeps silent bins from dividing by zero
# Feature channels of avi_ros.features "dcase": 0..3 log-mel W, Y, Z, X; 4..6 intensity (y, z, x).
FEATURE_INTENSITY_CHANNELS = slice(4, 7)
_FEATURE_YZX_TO_XYZ = [2, 0, 1]


@dataclass(frozen=True)
class DirectionEstimate:
    """A direction of arrival and how much to trust it.

    ``azimuth_rad`` / ``elevation_rad``: REP-103, NaN when the input holds no directional energy
    (silence, a mono file); ``vector``: unit vector [3] (x, y, z), NaN likewise; ``confidence``:
    1 - the energy-weighted mean diffuseness of the bins used (0 diffuse or silent .. 1 one plane
    wave); ``level_dbfs``: RMS of W [dBFS], NaN where unknown (features carry no absolute level).
    """

    azimuth_rad: float
    elevation_rad: float
    vector: np.ndarray
    confidence: float
    level_dbfs: float

    @property
    def azimuth_deg(self) -> float:
        return math.degrees(self.azimuth_rad)

    @property
    def elevation_deg(self) -> float:
        return math.degrees(self.elevation_rad)

    @property
    def known(self) -> bool:
        """Whether there is a direction at all (not silence or a mono signal)."""
        return math.isfinite(self.azimuth_rad)

    @classmethod
    def of_vector(cls, vector: np.ndarray, confidence: float, level_dbfs: float) -> DirectionEstimate:
        """From any vector [3], normalised; a zero or non-finite one gives NaN angles and 0 confidence."""
        v = np.asarray(vector, dtype=np.float64)
        norm = float(np.linalg.norm(v))
        if not (math.isfinite(norm) and norm > 0.0):
            nan = float("nan")
            return cls(nan, nan, np.full(3, nan), 0.0, level_dbfs)
        unit = v / norm
        azimuth, elevation = unit_to_direction(unit)
        return cls(float(azimuth), float(elevation), unit, float(np.clip(confidence, 0.0, 1.0)), level_dbfs)


def as_acn_sn3d(foa: np.ndarray, channel_order: str = "ACN", normalization: str = "SN3D") -> np.ndarray:
    """FOA [4, samples] in any supported convention -> float64 ACN/SN3D (``to_acn_sn3d``).

    Raises ``avi_ros.audio.AudioFormatError`` (a ValueError) for an unknown convention or a
    channel count other than 4.
    """
    audio = np.asarray(foa)
    if audio.ndim != 2:
        raise ValueError(f"FOA audio must be [4, samples], got shape {audio.shape}")
    if (channel_order, normalization) == ("ACN", "SN3D") and audio.shape[0] == FOA_CHANNELS:
        return audio.astype(np.float64, copy=False)
    return to_acn_sn3d(audio.astype(np.float32), channel_order, normalization).astype(np.float64)


def level_dbfs(foa: np.ndarray) -> float:
    """RMS of W (channel 0 of ACN) [dBFS]; ``MIN_LEVEL_DBFS`` for silence."""
    w = np.asarray(foa[0], dtype=np.float64)
    power = float(np.mean(np.square(w))) if w.size else 0.0
    if power <= 0.0:
        return MIN_LEVEL_DBFS
    return max(10.0 * math.log10(power), MIN_LEVEL_DBFS)


def intensity_field(
    foa: np.ndarray,
    sample_rate: int,
    n_fft: int = DEFAULT_N_FFT,
    hop: int = DEFAULT_HOP,
    channel_order: str = "ACN",
    normalization: str = "SN3D",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Active intensity and energy density of every STFT bin.

    Returns ``(intensity [3, T, F] in x, y, z order, energy [T, F], frequencies [F] in Hz)``
    (see the module docstring for the formulas; a periodic Hann window of ``n_fft`` samples,
    ``hop`` samples apart, covering the whole signal). Both share the units of |W|^2.
    """
    if n_fft <= 0 or hop <= 0:
        raise ValueError(f"n_fft and hop must be positive, got {n_fft} and {hop}")
    audio = as_acn_sn3d(foa, channel_order, normalization)
    n_fft = min(n_fft, max(audio.shape[1], 2))
    stft = ShortTimeFFT(hann(n_fft, sym=False), hop=min(hop, n_fft), fs=sample_rate, mfft=n_fft)
    spec = stft.stft(audio, axis=-1).transpose(0, 2, 1)  # [4, T, F] complex; W, Y, Z, X
    w, y, z, x = spec
    intensity = np.stack([(np.conj(w) * c).real for c in (x, y, z)])
    energy = 0.5 * (np.abs(spec) ** 2).sum(axis=0)
    return intensity, energy, stft.f


def diffuseness(
    intensity: np.ndarray,
    energy: np.ndarray,
    frames: int = DIFFUSENESS_FRAMES,
    bins: int = DIFFUSENESS_BINS,
) -> np.ndarray:
    """psi [T, F] = 1 - |<I>| / <E>, averaged over ``frames`` x ``bins`` neighbours (0..1).

    ``intensity`` [3, T, F] and ``energy`` [T, F] as ``intensity_field`` returns them. Silent
    bins (no energy) read 1: they hold no direction.
    """
    size = (max(frames, 1), max(bins, 1))
    mean_i = np.stack([uniform_filter(c, size=size, mode="nearest") for c in intensity])
    mean_e = uniform_filter(energy, size=size, mode="nearest")
    ratio = np.linalg.norm(mean_i, axis=0) / np.maximum(mean_e, _EPS)
    return np.clip(1.0 - ratio, 0.0, 1.0)


def _band(frequencies: np.ndarray, band_hz: tuple[float, float]) -> np.ndarray:
    low, high = band_hz
    if not 0.0 <= low < high:
        raise ValueError(f"band must be (low, high) with 0 <= low < high [Hz], got {band_hz}")
    keep = (frequencies >= low) & (frequencies <= high)
    if not keep.any():
        raise ValueError(f"no STFT bin lies in the band {band_hz} Hz (bins up to {frequencies[-1]:.0f} Hz)")
    return keep


@dataclass(frozen=True)
class _Analysis:
    """Intensity [3, T, F], energy [T, F] and diffuseness [T, F] of the bins in the band."""

    intensity: np.ndarray
    energy: np.ndarray
    psi: np.ndarray
    level_dbfs: float

    def confidence(self) -> float:
        """1 - the energy-weighted mean diffuseness of the bins; 0 for silence."""
        total = float(self.energy.sum())
        if total <= _EPS:
            return 0.0
        return 1.0 - float((self.energy * self.psi).sum()) / total


def _analyse(
    foa: np.ndarray,
    sample_rate: int,
    band_hz: tuple[float, float],
    n_fft: int,
    hop: int,
    channel_order: str,
    normalization: str,
) -> _Analysis:
    audio = as_acn_sn3d(foa, channel_order, normalization)
    intensity, energy, freqs = intensity_field(audio, sample_rate, n_fft, hop)
    psi = diffuseness(intensity, energy)
    keep = _band(freqs, band_hz)
    return _Analysis(intensity[:, :, keep], energy[:, keep], psi[:, keep], level_dbfs(audio))


def broadband_direction(
    foa: np.ndarray,
    sample_rate: int,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    n_fft: int = DEFAULT_N_FFT,
    hop: int = DEFAULT_HOP,
    channel_order: str = "ACN",
    normalization: str = "SN3D",
) -> DirectionEstimate:
    """Direction of the intensity summed over every frame and every bin in ``band_hz`` [Hz].

    Loud bins weigh in proportion to their energy; the confidence is 1 - their mean diffuseness.
    """
    analysis = _analyse(foa, sample_rate, band_hz, n_fft, hop, channel_order, normalization)
    return DirectionEstimate.of_vector(
        analysis.intensity.sum(axis=(1, 2)), analysis.confidence(), analysis.level_dbfs
    )


def _bin_weights(
    analysis: _Analysis, diffuseness_threshold: float, energy_exponent: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin unit vectors [3, T, F], weights (1 - psi) E^p [T, F] and the mask of bins used
    (psi at most the threshold, some intensity); weights are zero outside the mask."""
    norm = np.linalg.norm(analysis.intensity, axis=0)
    units = analysis.intensity / np.maximum(norm, _EPS)
    used = (analysis.psi <= diffuseness_threshold) & (norm > 0)
    weights = (1.0 - analysis.psi) * analysis.energy**energy_exponent * used
    return units, weights, used


def tf_direction(
    foa: np.ndarray,
    sample_rate: int,
    diffuseness_threshold: float = DEFAULT_DIFFUSENESS_THRESHOLD,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    n_fft: int = DEFAULT_N_FFT,
    hop: int = DEFAULT_HOP,
    channel_order: str = "ACN",
    normalization: str = "SN3D",
    energy_exponent: float = DEFAULT_ENERGY_EXPONENT,
) -> DirectionEstimate:
    """Direction from the bins dominated by one source: unit vectors weighted by (1 - psi) E^p.

    ``energy_exponent`` is p (1: energy weighting; see the module docstring for the default).
    Bins more diffuse than ``diffuseness_threshold`` (0..1) are left out; when none is left (a
    diffuse field, silence) it falls back to ``broadband_direction``'s sum. The confidence is
    1 - the mean diffuseness of *every* bin in the band (those kept would flatter a diffuse field:
    they passed the threshold), as for ``broadband_direction``.
    """
    analysis = _analyse(foa, sample_rate, band_hz, n_fft, hop, channel_order, normalization)
    units, weights, _ = _bin_weights(analysis, diffuseness_threshold, energy_exponent)
    vector = (units * weights).sum(axis=(1, 2))
    if float(weights.sum()) <= _EPS:
        vector = analysis.intensity.sum(axis=(1, 2))
    return DirectionEstimate.of_vector(vector, analysis.confidence(), analysis.level_dbfs)


def candidate_directions(
    foa: np.ndarray,
    sample_rate: int,
    max_sources: int = 3,
    min_separation_deg: float = 30.0,
    min_relative_weight: float = 0.1,
    diffuseness_threshold: float = DEFAULT_DIFFUSENESS_THRESHOLD,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    grid_deg: float = 5.0,
    n_fft: int = DEFAULT_N_FFT,
    hop: int = DEFAULT_HOP,
    channel_order: str = "ACN",
    normalization: str = "SN3D",
    energy_exponent: float = DEFAULT_ENERGY_EXPONENT,
) -> list[DirectionEstimate]:
    """Up to ``max_sources`` directions: peaks of the (1 - psi) E^p-weighted direction histogram.

    The per-bin directions of ``tf_direction`` fill an azimuth x elevation grid of ``grid_deg``
    cells, smoothed by a Gaussian of one cell (wrapping in azimuth). Peaks are taken greedily,
    strongest first: each is refined to the weighted mean of the bins within half of
    ``min_separation_deg`` of it, and every cell within ``min_separation_deg`` is then cleared. A
    peak under ``min_relative_weight`` x the strongest ends the search. Each estimate's confidence
    is its share of the band: the (1 - psi) E of its own bins over the E of every bin in the band
    (about 1 for one plane wave, about the energy fraction of each of several sources; the shares
    add up to at most the overall 1 - mean diffuseness). Strongest first; empty for silence.
    """
    if max_sources < 1:
        raise ValueError(f"max_sources must be >= 1, got {max_sources}")
    analysis = _analyse(foa, sample_rate, band_hz, n_fft, hop, channel_order, normalization)
    units, weights, used = _bin_weights(analysis, diffuseness_threshold, energy_exponent)
    if not used.any():
        return []
    vectors, bin_weights = units[:, used].T, weights[used]  # [N, 3], [N]
    shares = ((1.0 - analysis.psi) * analysis.energy)[used]  # [N], in units of E
    azimuth, elevation = unit_to_direction(vectors)
    az_edges = np.linspace(-math.pi, math.pi, round(360.0 / grid_deg) + 1)
    el_edges = np.linspace(-math.pi / 2, math.pi / 2, round(180.0 / grid_deg) + 1)
    histogram, _, _ = np.histogram2d(azimuth, elevation, bins=(az_edges, el_edges), weights=bin_weights)
    histogram = gaussian_filter(histogram, sigma=1.0, mode=("wrap", "nearest"))
    az_centres = 0.5 * (az_edges[1:] + az_edges[:-1])
    el_centres = 0.5 * (el_edges[1:] + el_edges[:-1])
    cells = direction_to_unit(*np.meshgrid(az_centres, el_centres, indexing="ij"))  # [A, E, 3]
    cos_separation = math.cos(math.radians(min_separation_deg))
    cos_refine = math.cos(math.radians(min_separation_deg / 2.0))
    total_energy = max(float(analysis.energy.sum()), _EPS)
    peaks: list[DirectionEstimate] = []
    strongest = float(histogram.max())
    while len(peaks) < max_sources:
        index = np.unravel_index(int(np.argmax(histogram)), histogram.shape)
        if float(histogram[index]) < min_relative_weight * strongest or histogram[index] <= 0.0:
            break
        near = vectors @ cells[index] >= cos_refine
        if not near.any():
            near = vectors @ cells[index] >= cos_separation
        peaks.append(
            DirectionEstimate.of_vector(
                (vectors[near] * bin_weights[near, None]).sum(axis=0) if near.any() else cells[index],
                float(shares[near].sum()) / total_energy,
                analysis.level_dbfs,
            )
        )
        histogram[cells @ cells[index] >= cos_separation] = 0.0
    return peaks


def feature_direction_vectors(features: np.ndarray, n_bins: int | None = None) -> np.ndarray:
    """Physics direction vectors [..., 3] (x, y, z, not normalised) of feature tensors [..., 7, T, F].

    Sums channels 4..6 of ``avi_ros.features`` ``dcase`` features (the intensity normalised by
    the energy of each STFT bin, mel-binned, in y, z, x order) over frames and the first
    ``n_bins`` mel bins (all when None). The raw features are meant: the model's
    ``FeatureNormalizer`` shifts these channels by a per-bin mean, which would bias the sum.
    Because every bin is normalised by its own energy, each bin counts by how directional it is
    (|I| / E), not by its loudness.
    """
    array = np.asarray(features, dtype=np.float64)
    if array.ndim < 3 or array.shape[-3] != 7:
        raise ValueError(f"features must be [..., 7, T, F] (dcase kind), got shape {array.shape}")
    intensity = array[..., FEATURE_INTENSITY_CHANNELS, :, : (n_bins or array.shape[-1])]
    return intensity.sum(axis=(-2, -1))[..., _FEATURE_YZX_TO_XYZ]


def feature_direction(features: np.ndarray, n_bins: int | None = None) -> DirectionEstimate:
    """``feature_direction_vectors`` of one window [7, T, F] as a DirectionEstimate.

    Its confidence is |sum of the per-cell intensity vectors| / sum of their lengths (1 when every
    mel cell points the same way, near 0 for a diffuse field), the counterpart of 1 - diffuseness
    that these features allow; the level is NaN (log-mel features carry no absolute level).
    """
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 3:
        raise ValueError(f"features of one window must be [7, T, F], got shape {array.shape}")
    vector = feature_direction_vectors(array, n_bins)
    cells = array[FEATURE_INTENSITY_CHANNELS, :, : (n_bins or array.shape[-1])]
    total = float(np.linalg.norm(cells, axis=0).sum())
    coherence = float(np.linalg.norm(vector)) / total if total > 0 else 0.0
    return DirectionEstimate.of_vector(vector, coherence, float("nan"))
