"""The replay report's tables (``metrics.md`` and the HTML tables) and its ``index.html``: the
summary, the metrics tables, the timeline, the tracks, the polar view and the frames, in one page
that a browser opens without a server."""

from __future__ import annotations

import html
from typing import Any

from avi_ros.bag.results import ReplayResult

METRIC_COLUMNS = (
    ("frames", "hazards / frames"),
    ("detected_%", "detected %"),
    ("false_alarm_%", "false alarms %"),
    ("class_accuracy_%", "class acc. %"),
    ("median_angular_error_deg", "median ang. err. °"),
    ("mean_angular_error_deg", "mean ang. err. °"),
    ("physics_median_angular_error_deg", "physics: median ang. err. °"),
    ("median_distance_error_m", "median dist. err. m"),
    ("risk_accuracy_%", "risk acc. %"),
    ("action_accuracy_%", "action acc. %"),
)

COUNT_COLUMNS = (
    ("frames", "frames"),
    ("published_mean", "published per frame"),
    ("count_right_%", "count right %"),
    ("too_many_%", "too many %"),
    ("too_few_%", "too few %"),
)

TRACKING_COLUMNS = (
    ("mota", "MOTA"),
    ("id_switches_per_track_minute", "ID switches / track-min"),
    ("onset_latency_s", "onset latency s (median)"),
    ("offset_latency_s", "offset latency s (median)"),
    ("azimuth_error_deg", "az. err. ° (median)"),
    ("range_rate_sign_accuracy", "range-rate sign right"),
    ("false_negatives", "FN"),
    ("false_positives", "FP"),
    ("id_switches", "ID switches"),
    ("truth_count", "true hazard-frames"),
)


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def _markdown_table(first: str, columns: tuple[tuple[str, str], ...], rows: dict[str, Any]) -> list[str]:
    head = f"| {first} | " + " | ".join(title for _, title in columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    body = [
        f"| {name} | " + " | ".join(_cell(row.get(key)) for key, _ in columns) + " |"
        for name, row in rows.items()
    ]
    return [head, rule, *body]


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """``metrics.md``: the groups table, the hazard-count table and, when scored, the tracks table."""
    lines = _markdown_table("group", METRIC_COLUMNS, metrics["groups"])
    lines += ["", *_markdown_table("true hazards in the frame", COUNT_COLUMNS, metrics["hazard_counts"])]
    if metrics.get("tracking"):
        lines += ["", *_markdown_table("tracks", TRACKING_COLUMNS, metrics["tracking"])]
    return "\n".join(lines) + "\n"


def _html_table(first: str, columns: tuple[tuple[str, str], ...], rows: dict[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{_cell(row.get(key))}</td>" for key, _ in columns)
        + "</tr>"
        for name, row in rows.items()
    )
    return f"<table><tr><th>{html.escape(first)}</th>{head}</tr>{body}</table>"


def metrics_html(metrics: dict[str, Any]) -> str:
    """The same tables as ``metrics_markdown``, as HTML with a line of explanation each."""
    tracking = (
        "<p>Tracks against the true hazards' ids (CLEAR MOT; a hit is within 20&deg; and of the true "
        "class):</p>" + _html_table("tracks", TRACKING_COLUMNS, metrics["tracking"])
        if metrics.get("tracking")
        else ""
    )
    return (
        _html_table("group", METRIC_COLUMNS, metrics["groups"])
        + "<p>Hazards published per frame, by the number of true hazards in it:</p>"
        + _html_table("true hazards", COUNT_COLUMNS, metrics["hazard_counts"])
        + tracking
    )


def index_html(result: ReplayResult, metrics: dict[str, Any], frame_files: list[tuple[str, float]]) -> str:
    """The report's page; ``frame_files``: (path relative to the page, time [s]) of each frame picture."""
    events = ", ".join(f"{k}: {v}" for k, v in result.events.items()) or "none"
    table = (
        metrics_html(metrics)
        if metrics
        else "<p>The bag has no ground-truth topic, so there is nothing to score against.</p>"
    )
    checked = result.integrity.describe()
    integrity = f"<p>Bag integrity:</p><pre>{html.escape(checked)}</pre>" if checked else ""
    gallery = "".join(
        f'<figure><a href="{name}"><img src="{name}" width="880"></a>'
        f"<figcaption>t = {t:.1f} s</figcaption></figure>"
        for name, t in frame_files
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>avi_ros replay report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #bbb; padding: 4px 8px; text-align: right; }}
figure {{ display: inline-block; margin: 0.5em; }} code {{ background: #eee; }}
</style></head><body>
<h1>avi_ros replay report</h1>
<p>Bag <code>{html.escape(str(result.bag))}</code>: {len(result.records)} frames through the perception node's
frame assembly and pipeline. Output bag: <code>{html.escape(str(result.output_bag))}</code>.<br>
Microphone &rarr; camera extrinsic from {html.escape(result.extrinsic_source)}.
Dropped or bad input (node reason keys): {html.escape(events)}.</p>
{integrity}
<h2>Metrics against ground truth</h2>
<p>Every true hazard against the estimate it is paired with at the same stamp (the published hazard of its
class nearest in direction; the best guess when nothing is published), so with one hazard at a time this is
the model's best guess against the exact scenario truth. "Frames" counts true hazards; "detected" means its
estimate was published (class not <i>none</i>, confidence above the threshold). "Hazard just ended": frames
without a hazard whose {result.window_s:.1f} s audio window still holds the end of one.</p>
{table}
<h2>Timeline</h2>
<p>Black: ground truth, one line per true hazard. Dots: every published hazard, coloured by class
(hollow: nothing published, the best guess below the confidence threshold). Azimuth is unwrapped around the
truth, so the vertical distance between a dot and the nearest line is the error even across &plusmn;180&deg;.
Shading: the truth's visibility (green visible, orange occluded, grey out of view, lilac when simultaneous
hazards differ). Bottom: hazards published against true hazards per frame.</p>
<img src="timeline.png" width="1100">
<h2>Tracks</h2>
<p>Azimuth of every published hazard over time, one colour per track id (the colour of its trail in RViz;
<code>#id</code> at its first frame; hollow while the track is tentative), grey when untracked
(<code>track_id</code> 0: tracking off). Black lines: the true hazards. The grey bands beyond
&plusmn;180&deg; repeat the other edge, so a hazard passing behind the robot stays beside its truth.
Every plot over time shares one time axis.</p>
<img src="tracks.png" width="1100">
<h2>Top-down view</h2>
<p>Robot at the centre, forward up, left to the left (REP-103 azimuth);
the camera's field of view is shaded.</p>
<img src="polar.png" width="600">
<h2>Frames</h2>
<p>Arrows: published estimates, coloured by risk (grey none, green low, amber medium, red high); white rings:
the true hazards; magenta tint: the occlusion mask computed from depth. A hazard out of the camera's view
gets a compass arrow from the image centre (up ahead, left left, down behind), the truth's in white.</p>
{gallery}
</body></html>
"""
