"""The replay report's overview figures (matplotlib), each written to a PNG and returned:

- ``timeline.png``: azimuth and class of every published hazard (one marker each), confidence and
  the hazard count over time, estimates against truth, with the truth's visibility shaded.
  Several simultaneous true hazards are joined into one line per hazard
  (``report_scoring.LINK_DEG``). Azimuth is unwrapped (``report_scoring.timeline_azimuths``), tick
  labels are wrapped;
- ``polar.png``: every published hazard and every true hazard's path seen from above;
- ``tracks.png``: azimuth over time of every published hazard, one colour per track id (the
  colour RViz draws its trail in; hollow while the track is tentative), untracked hazards in
  grey, the true hazards as lines. Azimuth is
  wrapped to [-180, 180) and the band within ``SEAM_MARGIN_DEG`` of ±180 is drawn again beyond
  each edge (``seam_copies``): a line that crosses ±180 leaves at one edge and comes back at the
  other, and a track at +178 is drawn beside its truth at -175, not only at the opposite edge.

Every plot over time shares one time axis (``time_limits``: from the first to the last frame
with a record or a truth, in seconds since the report's origin), so the figures line up; the
polar view colours its estimates on the same range. Angles are shown in degrees, azimuth
counter-clockwise from the robot's forward axis (REP-103: +90 is left).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MultipleLocator

from avi_ros.bag.report_scoring import link_tracks, timeline_azimuths, unwrap_deg, wrap_deg
from avi_ros.bag.results import FrameRecord
from avi_ros.hazard_markers import track_color
from avi_ros.taxonomy import Visibility
from avi_ros.types import HazardEstimateData, TrackState
from avi_ros.units import NS_PER_S

VISIBILITY_SHADE = {
    Visibility.VISIBLE: "#b7e4c7",
    Visibility.OCCLUDED: "#ffd6a5",
    Visibility.OUT_OF_VIEW: "#d9d9d9",
}
MIXED_SHADE = "#d7c9f0"  # a frame whose true hazards differ in visibility
SEAM_MARGIN_DEG = 20.0  # tracks.png draws this much of the circle again beyond ±180 [deg]


def polar_axes(ax: Any, max_range_m: float, horizontal_fov_rad: float) -> None:
    """Top-down polar axes: forward (+x) up, left (+90 deg) to the left, range in metres."""
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(1)  # counter-clockwise: REP-103 azimuth
    ax.set_thetagrids(
        [0, 45, 90, 135, 180, 225, 270, 315],
        ["0° ahead", "45°", "+90° left", "135°", "180°", "-135°", "-90° right", "-45°"],
        fontsize=8,
    )
    ax.set_rlim(0, max_range_m)
    half = horizontal_fov_rad / 2.0
    ax.fill_between(np.linspace(-half, half, 30), 0, max_range_m, color="#fff3b0", alpha=0.6, zorder=0)
    ax.plot([0], [0], marker="^", color="black", markersize=9, zorder=5)
    ax.set_title("top-down view (camera field of view shaded)", fontsize=9)


def _times(records: list[FrameRecord], origin_ns: int) -> np.ndarray:
    """Frame times [s] since ``origin_ns``."""
    return np.array([(r.stamp_ns - origin_ns) / NS_PER_S for r in records])


def time_limits(
    records: list[FrameRecord], truth: dict[int, list[HazardEstimateData]], origin_ns: int
) -> tuple[float, float]:
    """The time axis [s since ``origin_ns``] of every figure: from the earliest to the latest
    stamp of a record or a truth frame, half a frame period beyond each end."""
    stamps = np.array(sorted({r.stamp_ns for r in records} | set(truth)), dtype=np.float64)
    if not stamps.size:
        return -0.5, 0.5
    times = (stamps - origin_ns) / NS_PER_S
    half = float(np.median(np.diff(times))) / 2.0 if times.size > 1 else 0.5
    return float(times[0]) - half, float(times[-1]) + half


def _azimuth_tick(value_deg: float) -> str:
    """Tick label of an unwrapped azimuth: its wrapped value (both ends of the circle are ±180)."""
    wrapped = float(wrap_deg(value_deg))
    return "±180" if wrapped == -180.0 else f"{wrapped:+.0f}"


def _frame_shade(hazards: list[HazardEstimateData]) -> str:
    """Background colour of a frame with true hazards: their visibility, or MIXED_SHADE when they differ."""
    visibilities = {h.visibility for h in hazards}
    return VISIBILITY_SHADE[visibilities.pop()] if len(visibilities) == 1 else MIXED_SHADE


def timeline_figure(
    records: list[FrameRecord],
    truth: dict[int, list[HazardEstimateData]],
    class_names: list[str],
    origin_ns: int,
    path: Path,
) -> Figure:
    """Azimuth and class of every hazard, confidence and hazard counts over time; truth in black,
    its visibility shaded; written to ``path`` (and returned)."""
    times = _times(records, origin_ns)
    figure = Figure(figsize=(11, 9.5), dpi=100)
    ax_az, ax_cls, ax_conf, ax_count = figure.subplots(
        4, 1, sharex=True, gridspec_kw={"height_ratios": (3.0, 2.2, 2.0, 1.2)}
    )
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.1
    for t, record in zip(times, records, strict=True):
        hazards = truth.get(record.stamp_ns)
        if hazards:
            for ax in (ax_az, ax_cls, ax_conf, ax_count):
                ax.axvspan(t - period / 2, t + period / 2, color=_frame_shade(hazards), lw=0)
    lines = timeline_azimuths(records, truth)
    colours = colormaps["tab10"](lines.class_id % 10)
    when = times[lines.frame]
    for track in lines.truth:
        ax_az.plot(times, track, "k-", lw=2.5)
    for ax, values in ((ax_az, lines.azimuth), (ax_cls, lines.class_id)):
        kept, hidden = lines.published, ~lines.published
        ax.scatter(when[kept], values[kept], c=colours[kept], s=14, zorder=3)
        ax.scatter(
            when[hidden], values[hidden], facecolors="none", edgecolors=colours[hidden], s=14, zorder=3
        )
    shown = np.concatenate([lines.truth[~np.isnan(lines.truth)], lines.azimuth])
    low, high = (float(shown.min()), float(shown.max())) if shown.size else (-180.0, 180.0)
    ax_az.set_ylim(min(low, -180.0) - 5.0, max(high, 180.0) + 5.0)
    ax_az.yaxis.set_major_locator(MultipleLocator(90))
    ax_az.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _azimuth_tick(value)))
    ax_az.set_ylabel("azimuth [deg]\n(+90 = left, unwrapped)")
    # Explicit handles: a scatter's own handle is invisible when it drew no point.
    estimate = {"ls": "none", "marker": "o", "ms": 5, "mec": "grey"}
    handles = [
        Line2D([], [], color="black", lw=2.5, label="truth (one line per hazard)"),
        Line2D([], [], mfc="grey", label="published hazard (colour: class)", **estimate),
        Line2D([], [], mfc="none", label="none published: best guess", **estimate),
    ]
    silent = np.array([0.0 if not truth.get(r.stamp_ns) else np.nan for r in records])
    for track, class_id in zip(lines.truth, lines.truth_class, strict=True):
        ax_cls.plot(times, np.where(np.isnan(track), np.nan, class_id), "k-", lw=2.5, drawstyle="steps-mid")
    ax_cls.plot(times, silent, "k-", lw=2.5, drawstyle="steps-mid")
    ax_cls.set_yticks(range(len(class_names)))
    ax_cls.set_yticklabels(class_names, fontsize=8)
    ax_cls.set_ylabel("class")
    ax_conf.plot(times, [r.top.confidence for r in records], "-", color="tab:blue", label="top confidence")
    several = [(t, h) for t, r in zip(times, records, strict=True) if len(r.hazards) > 1 for h in r.hazards]
    if several:
        ax_conf.scatter(
            [t for t, _ in several],
            [h.confidence for _, h in several],
            c=colormaps["tab10"](np.array([h.class_id for _, h in several]) % 10),
            s=8,
            label="confidence of each hazard (several published)",
        )
    ax_conf.plot(
        times, [r.occlusion_level for r in records], "-", color="tab:purple", label="occlusion level"
    )
    ax_conf.plot(
        times, [r.top.audio_weight for r in records], "--", color="tab:green", label="top audio weight"
    )
    ax_conf.set_ylim(-0.05, 1.05)
    ax_conf.legend(loc="upper right", fontsize=8)
    true_count = [len(truth.get(r.stamp_ns) or []) for r in records]
    ax_count.plot(times, true_count, "k-", lw=2.5, drawstyle="steps-mid", label="true")
    ax_count.plot(
        times,
        [len(r.hazards) for r in records],
        "-",
        color="tab:red",
        drawstyle="steps-mid",
        label="published",
    )
    ax_count.set_ylim(-0.3, max([*true_count, *(len(r.hazards) for r in records), 1]) + 0.3)
    ax_count.yaxis.set_major_locator(MultipleLocator(1))
    ax_count.set_ylabel("hazards")
    ax_count.legend(loc="upper right", ncol=2, fontsize=8)
    ax_count.set_xlabel("time since the first camera frame [s]")
    ax_count.set_xlim(*time_limits(records, truth, origin_ns))  # shared by the four panels
    shades = {f"truth {v.name.lower().replace('_', ' ')}": c for v, c in VISIBILITY_SHADE.items()}
    shades["truth: visibilities differ"] = MIXED_SHADE
    # Above the azimuth panel, beside the estimate legend: inside a panel it would hide a line.
    ax_az.add_artist(
        ax_az.legend(
            [Rectangle((0, 0), 1, 1, color=c) for c in shades.values()],
            list(shades),
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncol=2,
            fontsize=8,
            frameon=False,
        )
    )
    ax_az.legend(
        handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, fontsize=8, frameon=False
    )
    figure.suptitle("estimates against ground truth (shading: the truth's visibility)")
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path)
    return figure


def polar_figure(
    records: list[FrameRecord],
    truth: dict[int, list[HazardEstimateData]],
    horizontal_fov_rad: float,
    origin_ns: int,
    path: Path,
) -> Figure:
    """Every published estimate and every true hazard's path, from above, estimates coloured by
    time; written to ``path`` (and returned)."""
    times = _times(records, origin_ns)
    figure = Figure(figsize=(6, 6.6), dpi=100)
    ax = figure.add_subplot(projection="polar")
    distances = [h.distance for r in records for h in r.hazards] + [
        h.distance for hs in truth.values() for h in hs
    ]
    polar_axes(ax, max(6.0, float(np.percentile(distances, 98))) if distances else 6.0, horizontal_fov_rad)
    truth_points = [(h, t) for r, t in zip(records, times, strict=True) for h in truth.get(r.stamp_ns) or []]
    if truth_points:
        ax.scatter(
            [h.azimuth for h, _ in truth_points],
            [h.distance for h, _ in truth_points],
            c="black",
            s=6,
            label="truth",
        )
    estimates = [(h, t) for r, t in zip(records, times, strict=True) for h in r.hazards]
    if estimates:
        points = ax.scatter(
            [h.azimuth for h, _ in estimates],
            [h.distance for h, _ in estimates],
            c=[t for _, t in estimates],
            cmap="viridis",
            norm=Normalize(*time_limits(records, truth, origin_ns)),
            s=12,
            label="estimates",
        )
        # Below the plot: at its right the colour bar would cover the "-90° right" label.
        figure.colorbar(points, ax=ax, orientation="horizontal", shrink=0.6, pad=0.08, label="time [s]")
    figure.legend(loc="lower left", fontsize=8, bbox_to_anchor=(0.02, 0.02))
    figure.savefig(path)
    return figure


def seam_copies(azimuth_deg: np.ndarray, line: bool, margin_deg: float = SEAM_MARGIN_DEG) -> list[np.ndarray]:
    """Azimuths [deg] (NaN: no value) as drawn on a wrapped azimuth axis whose limits reach
    ``margin_deg`` beyond ±180: one copy per whole turn that reaches into those limits.

    A line (``line=True``) is first made continuous (``unwrap_deg``), so where it crosses ±180
    it runs on past the edge, where the axes clip it, and its next copy comes in at the other
    edge; separate points are each wrapped to [-180, 180). Either way what lies within
    ``margin_deg`` of ±180 is drawn at both edges. Copies may reach outside the limits: the axes
    clip them.
    """
    base = unwrap_deg(azimuth_deg) if line else wrap_deg(azimuth_deg)
    finite = base[~np.isnan(base)]
    if not finite.size:
        return []
    limit = 180.0 + margin_deg
    first = math.ceil((-limit - float(finite.max())) / 360.0)
    last = math.floor((limit - float(finite.min())) / 360.0)
    return [base + 360.0 * turn for turn in range(first, last + 1)]


def tracks_figure(
    records: list[FrameRecord], truth: dict[int, list[HazardEstimateData]], origin_ns: int, path: Path
) -> Figure:
    """Azimuth over time of every published hazard, coloured by track id (grey: untracked), with
    the true hazards as lines (one per true track id, or per linked hazard when the truth has no
    ids); azimuth wrapped, the band within ``SEAM_MARGIN_DEG`` of ±180 drawn at both edges
    (``seam_copies``); written to ``path`` (and returned)."""
    figure = Figure(figsize=(11, 4.5), dpi=100)
    ax = figure.subplots()
    limit = 180.0 + SEAM_MARGIN_DEG
    for low, high in ((-limit, -180.0), (180.0, limit)):
        ax.axhspan(low, high, color="#eeeeee", lw=0, zorder=0)
    by_id: dict[int, list[tuple[float, float]]] = {}
    for record in records:
        for h in truth.get(record.stamp_ns) or []:
            if h.track_id:
                by_id.setdefault(h.track_id, []).append(
                    ((record.stamp_ns - origin_ns) / NS_PER_S, math.degrees(h.azimuth))
                )
    if by_id:
        truth_lines = [np.array(points).T for points in by_id.values()]
    else:
        times = _times(records, origin_ns)
        truth_lines = [(times, np.array(row)) for row in link_tracks(records, truth)[0]]
    for times, azimuths in truth_lines:
        for copy in seam_copies(np.asarray(azimuths), line=True):
            ax.plot(times, copy, "-", color="black", lw=2.0, alpha=0.6)
    points = [
        ((r.stamp_ns - origin_ns) / NS_PER_S, math.degrees(h.azimuth), h.track_id, h.track_state)
        for r in records
        for h in r.hazards
    ]
    untracked = np.array([(t, a) for t, a, i, _ in points if not i]).reshape(-1, 2)
    for copy in seam_copies(untracked[:, 1], line=False):
        ax.scatter(untracked[:, 0], copy, c="lightgrey", edgecolors="grey", s=12, zorder=2)
    for tentative in (False, True):
        tracked = [(t, a, i) for t, a, i, k in points if i and (k == TrackState.TENTATIVE) == tentative]
        if not tracked:
            continue
        times, azimuths = np.array([t for t, _, _ in tracked]), np.array([a for _, a, _ in tracked])
        colours = np.array([track_color(i)[:3] for _, _, i in tracked])
        face = "none" if tentative else colours
        for copy in seam_copies(azimuths, line=False):
            ax.scatter(times, copy, c=face, edgecolors=colours, s=16, zorder=3)
    for track_id in sorted({i for _, _, i, _ in points if i}):
        first = next((t, a) for t, a, i, _ in points if i == track_id)
        ax.annotate(f"#{track_id}", first, textcoords="offset points", xytext=(2, 4), fontsize=7)
    ax.set_xlim(*time_limits(records, truth, origin_ns))
    ax.set_ylim(-limit, limit)
    ax.yaxis.set_major_locator(MultipleLocator(90))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _azimuth_tick(value)))
    ax.set_ylabel("azimuth [deg] (+90 = left;\ngrey: repeated across ±180)")
    ax.set_xlabel("time since the first camera frame [s]")
    dot = {"ls": "none", "marker": "o", "ms": 5}
    ax.legend(
        handles=[
            Line2D([], [], color="black", lw=2.0, alpha=0.6, label="truth (one line per true hazard)"),
            Line2D(
                [], [], mfc=track_color(1)[:3], mec="none", label="published, colour: track id (#id)", **dot
            ),
            Line2D([], [], mfc="none", mec=track_color(1)[:3], label="tentative track", **dot),
            Line2D([], [], mfc="lightgrey", mec="grey", label="published untracked (id 0)", **dot),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    figure.tight_layout()
    figure.savefig(path)
    return figure
