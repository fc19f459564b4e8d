"""A PNG contact sheet of synthetic samples, for a person to check the generator by eye.

One row per sample: RGB (with the label direction projected as a cross when it is in view),
depth, the occluder mask (and the hazard's pixels), and a polar plot of the source azimuth
(radius = distance), with the camera's field of view shaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from avi_ros.data.scene_labels import Sample
from avi_ros.geometry import direction_to_unit

_VIS_COLOURS = {"VISIBLE": "tab:green", "OCCLUDED": "tab:orange", "OUT_OF_VIEW": "tab:red"}


def write_contact_sheet(samples: Sequence[Sample], path: str | Path, class_names: Sequence[str]) -> Path:
    """Draw ``samples`` into a PNG at ``path`` and return the path."""
    if not samples:
        raise ValueError("contact sheet needs at least one sample")
    rows = len(samples)
    fig = plt.figure(figsize=(13, 3.1 * rows))
    for r, s in enumerate(samples):
        title = class_names[s.class_id]
        ax = fig.add_subplot(rows, 4, 4 * r + 1)
        ax.imshow(s.rgb)
        if s.class_id != 0:
            point = s.extrinsic.mic_to_optical(direction_to_unit(s.azimuth, s.elevation) * s.distance)
            (u, v), inside = s.intrinsics.project(point)
            if bool(inside):
                ax.plot([u], [v], marker="+", color="magenta", markersize=14, mew=2)
            title += f"  {s.visibility.name}"
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax = fig.add_subplot(rows, 4, 4 * r + 2)
        shown = ax.imshow(np.where(s.depth_m > 0, s.depth_m, np.nan), cmap="viridis")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label="m")
        ax.set_title("depth", fontsize=9)
        ax.axis("off")
        ax = fig.add_subplot(rows, 4, 4 * r + 3)
        overlay = np.zeros((*s.occluder_mask.shape, 3))
        overlay[s.occluder_mask] = (1.0, 1.0, 1.0)
        overlay[s.hazard_mask] = (0.9, 0.2, 0.2)
        ax.imshow(overlay)
        ax.set_title(f"occluders {100 * s.occlusion_level:.0f}% (red: hazard)", fontsize=9)
        ax.axis("off")
        ax = fig.add_subplot(rows, 4, 4 * r + 4, projection="polar")
        ax.set_theta_zero_location("N")  # +x (forward) up, azimuth counter-clockwise = to the left
        half_fov = math.atan(s.intrinsics.width / 2.0 / s.intrinsics.fx)
        ax.fill_between(np.linspace(-half_fov, half_fov, 20), 0, 8, color="tab:blue", alpha=0.15)
        if s.class_id != 0:
            ax.plot([s.azimuth], [s.distance], "o", color=_VIS_COLOURS[s.visibility.name], markersize=9)
        if s.second is not None:
            ax.plot([s.second.azimuth], [s.second.distance], "x", color="black", markersize=8)
        ax.set_rmax(8)
        ax.set_title(
            f"az {math.degrees(s.azimuth):.0f}° el {math.degrees(s.elevation):.0f}° d {s.distance:.1f} m",
            fontsize=9,
        )
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
