"""The replay report: annotated frames, a top-down polar view, a timeline, tracks and metrics tables.

``write_report`` composes the report's rooms into one folder that a browser opens without a
server:

- ``index.html`` (``report_html``): the summary, the metrics tables, the timeline, the tracks,
  the polar view, the frames;
- ``frames/frame_NNN.png`` (``report_frames``): the RGB image with the occlusion mask tinted, an
  arrow and a label per published hazard, every true hazard as a ring, and beside it a top-down
  polar view of the same instant;
- ``timeline.png``, ``polar.png`` and ``tracks.png`` (``report_figures``): estimates against the
  truth over time (azimuth unwrapped), from above, and by track id (azimuth wrapped, the band
  around ±180 drawn at both edges);
- ``metrics.json`` and ``metrics.md`` (``report_scoring``, tables by ``report_html``): every true
  hazard against the estimate paired with it, by visibility; hazards published per frame against
  the true ones; when the truth carries track ids, the tracking scores (MOTA, ID switches per
  track-minute, onset and offset latency, azimuth error, range-rate sign) of the published tracks
  and of the ``NearestNeighbourTracker`` baseline run on the same untracked hazards with the same
  yaw rates.

Angles are shown in degrees, azimuth counter-clockwise from the robot's forward axis
(REP-103: +90 is left).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tqdm import tqdm

from avi_ros.bag.report_figures import polar_figure, timeline_figure, tracks_figure
from avi_ros.bag.report_frames import annotate_frame, frame_figure
from avi_ros.bag.report_html import index_html, metrics_markdown
from avi_ros.bag.report_scoring import compute_metrics, tracking_scores
from avi_ros.bag.results import ReplayResult
from avi_ros.units import NS_PER_S


def write_report(result: ReplayResult, out: Path, progress: bool = False) -> Path:
    """Write the report for ``result`` into ``out``; returns the path of index.html."""
    out = Path(out)
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    records = result.records
    by_stamp = {r.stamp_ns: r for r in records}
    # Times count from the bag's first frame (the truth has every frame), as the scenario does.
    origin = min([records[0].stamp_ns, *result.truth])
    fov = result.snapshots[0].intrinsics.horizontal_fov_rad if result.snapshots else math.radians(70.0)
    window_ns = round(result.window_s * NS_PER_S)
    metrics = compute_metrics(records, result.truth, window_ns) if result.truth else {}
    if metrics:
        metrics["tracking"] = tracking_scores(records, result.truth, result.tracking)
    result.metrics = metrics
    if metrics:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (out / "metrics.md").write_text(metrics_markdown(metrics))
    timeline_figure(records, result.truth, result.class_names, origin, out / "timeline.png")
    polar_figure(records, result.truth, fov, origin, out / "polar.png")
    tracks_figure(records, result.truth, origin, out / "tracks.png")
    snapshots = (
        tqdm(result.snapshots, desc="report frames", unit="frame", disable=None)
        if progress
        else result.snapshots
    )
    frame_files = []
    for index, snapshot in enumerate(snapshots):
        record = by_stamp[snapshot.stamp_ns]
        truth = result.truth.get(snapshot.stamp_ns) if result.truth else None
        time_s = (snapshot.stamp_ns - origin) / NS_PER_S
        annotated = annotate_frame(snapshot, record, truth, result.extrinsic, time_s)
        name = f"frames/frame_{index:03d}.png"
        frame_figure(annotated, record, truth, fov, out / name)
        frame_files.append((name, time_s))
    index_path = out / "index.html"
    index_path.write_text(index_html(result, metrics, frame_files))
    result.report_index = index_path
    return index_path
