"""The replay report's annotated camera frames: the RGB image with the occlusion mask tinted, an
arrow and a label per published hazard (class, confidence, distance, visibility, action), every
true hazard as a ring, and beside it a top-down polar view of the same instant.

A hazard the camera cannot see gets a compass arrow from the image centre: up is ahead, left is
left, down is behind (REP-103 azimuth: counter-clockwise from the robot's forward axis, +90 is
left). Arrows are coloured by risk, as RViz draws its markers.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from avi_ros.bag.report_figures import polar_axes
from avi_ros.bag.report_scoring import wrap_deg
from avi_ros.bag.results import FrameRecord, Snapshot
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.taxonomy import RiskLevel
from avi_ros.types import HazardEstimateData

# Risk -> RGB (0-255) for drawing, matching the RViz marker colours.
RISK_RGB = {
    RiskLevel.NONE: (150, 150, 150),
    RiskLevel.LOW: (30, 200, 50),
    RiskLevel.MEDIUM: (255, 165, 0),
    RiskLevel.HIGH: (240, 25, 25),
}
RISK_LEGEND = {
    RiskLevel.NONE: "estimate, no risk",
    RiskLevel.LOW: "estimate, low risk",
    RiskLevel.MEDIUM: "estimate, medium risk",
    RiskLevel.HIGH: "estimate, high risk",
}
TRUTH_RGB = (255, 255, 255)
MASK_RGB = np.array([255, 40, 200], dtype=np.float32)
DRAW_SCALE = 2  # frames are enlarged so the labels stay legible
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.5


def side_of(azimuth_rad: float) -> str:
    """Where an azimuth (REP-103: counter-clockwise from ahead, positive = left) points, in words."""
    degrees = float(wrap_deg(math.degrees(azimuth_rad)))
    if abs(degrees) < 1.0:
        return "ahead"
    if abs(degrees) > 179.0:
        return "behind"
    side = "left" if degrees > 0 else "right"
    return f"behind-{side}" if abs(degrees) > 90.0 else side


def compass_tip(azimuth_rad: float, centre: tuple[int, int], length_px: float) -> tuple[int, int]:
    """Image point of a compass arrow from ``centre``: ahead is up, left is left, behind is down."""
    u = centre[0] - length_px * math.sin(azimuth_rad)
    v = centre[1] - length_px * math.cos(azimuth_rad)
    return round(u), round(v)


def hazard_pixel(
    hazard: HazardEstimateData, intrinsics: CameraIntrinsics, extrinsic: MicToCamera
) -> tuple[float, float] | None:
    """The pixel (u, v) where the hazard's point falls, or None when it is out of view."""
    point = np.asarray(hazard.direction, dtype=np.float64) * max(float(hazard.distance), 0.1)
    (u, v), inside = intrinsics.project(extrinsic.mic_to_optical(point))
    return (float(u), float(v)) if bool(inside) else None


def _label(hazard: HazardEstimateData) -> str:
    return (
        f"{hazard.class_name} {hazard.confidence:.2f} | {hazard.distance:.1f} m | "
        f"{hazard.visibility.name.lower().replace('_', ' ')} | {hazard.recommended_action.name.lower()}"
    )


def _text(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """Text on a dark translucent band, readable on any background; ``origin`` is its baseline start."""
    (width, height), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    x, y = origin
    x0, y0 = max(x - 3, 0), max(y - height - 4, 0)
    x1, y1 = min(x + width + 3, image.shape[1]), min(y + baseline + 2, image.shape[0])
    band = image[y0:y1, x0:x1]
    band[:] = (0.35 * band).astype(np.uint8)
    cv2.putText(image, text, (x, y), FONT, FONT_SCALE, colour, 1, cv2.LINE_AA)


def _arrow(
    image: np.ndarray, base: tuple[int, int], tip: tuple[int, int], colour: tuple[int, int, int]
) -> None:
    cv2.arrowedLine(image, base, tip, (0, 0, 0), 6, cv2.LINE_AA, tipLength=0.08)
    cv2.arrowedLine(image, base, tip, colour, 3, cv2.LINE_AA, tipLength=0.08)


def annotate_frame(
    snapshot: Snapshot,
    record: FrameRecord,
    truth: list[HazardEstimateData] | None,
    extrinsic: MicToCamera,
    time_s: float,
) -> np.ndarray:
    """The RGB frame (enlarged) with the mask tinted, estimate arrows + labels and the truth ring.

    A hazard in view gets an arrow from the bottom centre to its pixel; one out of view gets a
    compass arrow from the image centre (``compass_tip``), the truth's a thin white one on top.
    """
    image = snapshot.rgb.astype(np.float32)
    blocked = snapshot.occlusion_mask > 0
    image[blocked] = 0.65 * image[blocked] + 0.35 * MASK_RGB
    scale = DRAW_SCALE
    image = cv2.resize(image.astype(np.uint8), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    height, width = image.shape[:2]
    base, centre = (width // 2, height - 8), (width // 2, height // 2)
    compass_px = 0.3 * min(width, height)
    shown = record.hazards or []
    for row, hazard in enumerate(shown):
        colour = RISK_RGB[RiskLevel(int(hazard.risk_level))]
        pixel = hazard_pixel(hazard, snapshot.intrinsics, extrinsic)
        if pixel is not None:
            _arrow(image, base, (round(pixel[0] * scale), round(pixel[1] * scale)), colour)
            where = ""
        else:
            _arrow(image, centre, compass_tip(hazard.azimuth, centre, compass_px), colour)
            where = f" (out of view, {side_of(hazard.azimuth)}, {math.degrees(hazard.azimuth):+.0f} deg)"
        _text(image, _label(hazard) + where, (8, 44 + 20 * row), colour)
    out_of_view = 0
    for hazard in truth or []:  # after the estimates, so a truth arrow stays visible on top
        pixel = hazard_pixel(hazard, snapshot.intrinsics, extrinsic)
        if pixel is not None:
            ring = (round(pixel[0] * scale), round(pixel[1] * scale))
            cv2.circle(image, ring, 18, TRUTH_RGB, 2, cv2.LINE_AA)
            _text(image, f"truth: {hazard.class_name}", (ring[0] - 40, ring[1] + 34), TRUTH_RGB)
        else:
            cv2.circle(image, centre, 5, TRUTH_RGB, -1, cv2.LINE_AA)
            tip = compass_tip(hazard.azimuth, centre, compass_px)
            cv2.arrowedLine(image, centre, tip, TRUTH_RGB, 1, cv2.LINE_AA, tipLength=0.12)
            _text(
                image,
                f"truth: {hazard.class_name} out of view "
                f"({side_of(hazard.azimuth)}, {math.degrees(hazard.azimuth):+.0f} deg)",
                (8, height - 34 - 20 * out_of_view),
                TRUTH_RGB,
            )
            out_of_view += 1
    if not shown:
        _text(
            image,
            f"no hazard published (best guess: {record.top.class_name} {record.top.confidence:.2f})",
            (8, 44),
            (220, 220, 220),
        )
    _text(
        image,
        f"t = {time_s:5.1f} s | occlusion {100 * record.occlusion_level:.0f}% | "
        f"audio w {record.top.audio_weight:.2f} / visual w {record.top.visual_weight:.2f}",
        (8, 20),
        (255, 255, 255),
    )
    return image


def frame_figure(
    annotated: np.ndarray,
    record: FrameRecord,
    truth: list[HazardEstimateData] | None,
    horizontal_fov_rad: float,
    path: Path,
) -> Figure:
    """The annotated frame and its polar view side by side, written to ``path`` (and returned)."""
    figure = Figure(figsize=(11.5, 4.4), dpi=100)
    ax_image = figure.add_axes((0.0, 0.0, 0.6, 1.0))
    ax_image.imshow(annotated)
    ax_image.axis("off")
    ax_polar = figure.add_axes((0.62, 0.2, 0.33, 0.68), projection="polar")
    distances = [h.distance for h in [*record.hazards, *(truth or [])]]
    polar_axes(ax_polar, max(6.0, *distances) if distances else 6.0, horizontal_fov_rad)
    for hazard in truth or []:
        ax_polar.plot(hazard.azimuth, hazard.distance, "o", mfc="none", mec="black", ms=14, mew=2)
    for hazard in record.hazards:
        colour = np.array(RISK_RGB[RiskLevel(int(hazard.risk_level))]) / 255.0
        ax_polar.annotate(
            "",
            xy=(hazard.azimuth, hazard.distance),
            xytext=(0, 0),
            arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 2.5},
        )
        ax_polar.text(hazard.azimuth, hazard.distance, f" {hazard.class_name}", fontsize=8)
    handles = [
        Line2D([], [], marker="o", ls="none", mfc="none", mec="black", ms=9, mew=2, label="ground truth")
    ]
    handles += [
        Line2D([], [], color=np.array(RISK_RGB[risk]) / 255.0, lw=2.5, marker=">", label=RISK_LEGEND[risk])
        for risk in RiskLevel
    ]
    figure.legend(
        handles=handles, loc="lower left", bbox_to_anchor=(0.6, 0.0), ncol=3, fontsize=7, frameon=False
    )
    figure.text(0.965, 0.5, "range [m]", rotation=90, va="center", fontsize=8)
    figure.savefig(path)
    return figure
