"""The replay report's pictures follow the azimuth convention (REP-103: counter-clockwise from ahead,
positive = left): the timeline unwraps azimuth around the truth, out-of-view arrows point to the
hazard's side, every arrow colour is in the legend, and the polar view's labels stay clear of its
colour bar."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from estimates import estimate
from matplotlib.backends.backend_agg import FigureCanvasAgg

from avi_ros.bag.report_figures import (
    SEAM_MARGIN_DEG,
    polar_figure,
    seam_copies,
    timeline_figure,
    tracks_figure,
)
from avi_ros.bag.report_frames import RISK_LEGEND, RISK_RGB, compass_tip, frame_figure, hazard_pixel, side_of
from avi_ros.bag.report_scoring import nearest_turn_deg, timeline_azimuths, unwrap_deg, wrap_deg
from avi_ros.bag.results import FrameRecord
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.taxonomy import Action, RiskLevel, Visibility, default_taxonomy
from avi_ros.types import HazardEstimateData, TrackState


def _hazard(azimuth_deg: float, risk: RiskLevel = RiskLevel.HIGH) -> HazardEstimateData:
    """Class 3 at 3 m, out of view, with ``risk`` and the STOP it calls for."""
    return estimate(
        3, azimuth_deg, visibility=Visibility.OUT_OF_VIEW, risk_level=risk, recommended_action=Action.STOP
    )


# --- timeline --------------------------------------------------------------------------------


def test_an_estimate_across_180_is_drawn_beside_its_truth():
    """The issue's case: estimate +178, truth -174. Drawn 8 deg apart, not 352."""
    records = [FrameRecord(10, [_hazard(178.0)], _hazard(178.0), 0.0)]
    lines = timeline_azimuths(records, {10: [_hazard(-174.0)]})
    assert lines.truth[0, 0] == pytest.approx(-174.0)
    assert lines.azimuth[0] == pytest.approx(-182.0)


def test_the_truth_line_is_continuous_and_estimates_follow_it_through_gaps():
    truths = [170.0, 178.0, None, -174.0, -166.0]  # crosses +-180; one frame without truth
    estimates = [-175.0, 179.0, -178.0, 177.0, -160.0]
    records = [FrameRecord(i, [], _hazard(e), 0.0) for i, e in enumerate(estimates)]
    truth = {i: [_hazard(t)] for i, t in enumerate(truths) if t is not None}
    lines = timeline_azimuths(records, truth)
    (truth_az,) = lines.truth  # one hazard: one track, continued across the silent frame
    estimate_az = lines.azimuth
    assert lines.frame.tolist() == [0, 1, 2, 3, 4] and not lines.published.any()
    np.testing.assert_allclose(truth_az, [170.0, 178.0, np.nan, 186.0, 194.0], atol=1e-9)
    np.testing.assert_allclose(estimate_az, [185.0, 179.0, 182.0, 177.0, 200.0], atol=1e-9)
    np.testing.assert_allclose(wrap_deg(estimate_az), wrap_deg(np.array(estimates)), atol=1e-9)


def test_angle_helpers():
    np.testing.assert_allclose(wrap_deg([180.0, -180.0, 190.0, -540.0]), [-180.0, -180.0, -170.0, -180.0])
    unwrapped = unwrap_deg(np.array([np.nan, 350.0, 10.0, np.nan, 30.0]))
    np.testing.assert_allclose(unwrapped, [np.nan, 350.0, 370.0, np.nan, 390.0])
    np.testing.assert_allclose(nearest_turn_deg([10.0, 10.0], [np.nan, 350.0]), [10.0, 370.0])


# --- tracks figure ---------------------------------------------------------------------------


def _drawn(figure) -> tuple[list[np.ndarray], np.ndarray]:
    """What the tracks panel shows inside its limits: each truth line's (time [s], azimuth [deg])
    vertices, and every published point's (time, azimuth)."""
    (ax,) = figure.axes
    low, high = ax.get_ylim()
    lines = [np.asarray(line.get_xydata(), dtype=np.float64) for line in ax.lines]
    points = np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
    inside = (points[:, 1] >= low) & (points[:, 1] <= high)
    return lines, np.asarray(points[inside], dtype=np.float64)


def test_a_track_across_180_is_drawn_beside_its_truth_in_the_tracks_figure(tmp_path):
    """The issue's case: the track at +178 while its truth is at -175 is drawn 7 deg from it, not at
    the opposite edge, and no line is drawn across the panel where the truth crosses +-180."""
    truth_deg = [170.0, 174.0, 178.0, -178.0, -175.0, -171.0]  # crosses +-180 after the third frame
    track_deg = [165.0, 170.0, 174.0, 177.0, 178.0, -178.0]  # lags its truth by a few degrees
    records, truth = [], {}
    for k, (t, e) in enumerate(zip(truth_deg, track_deg, strict=True)):
        stamp = k * 100_000_000
        published = [dataclasses.replace(_hazard(a), track_id=i) for a, i in ((e, 7), (30.0, 8))]
        records.append(FrameRecord(stamp, published, published[0], 0.0))
        truth[stamp] = [dataclasses.replace(_hazard(t), track_id=1)]
    figure = tracks_figure(records, truth, 0, tmp_path / "tracks.png")
    assert figure.axes[0].get_ylim() == pytest.approx((-180.0 - SEAM_MARGIN_DEG, 180.0 + SEAM_MARGIN_DEG))
    lines, points = _drawn(figure)
    for line in lines:  # consecutive vertices stay close: the crossing leaves the panel, not spans it
        assert np.all(np.abs(np.diff(line[:, 1])) < 10.0)
    at = 0.4  # [s]: the truth at -175, the track at +178
    truth_there = np.concatenate([line[np.isclose(line[:, 0], at), 1] for line in lines])
    track_there = points[np.isclose(points[:, 0], at) & (np.abs(points[:, 1]) > 90.0), 1]
    gaps = np.abs(track_there[:, None] - truth_there[None, :])
    assert gaps.min() == pytest.approx(7.0)  # drawn side by side (at +178 and +185, or -182 and -175)
    assert sorted(truth_there) == pytest.approx([-175.0, 185.0])  # at both edges
    assert sorted(track_there) == pytest.approx([-182.0, 178.0])
    # Away from the seam a point is drawn once, at its azimuth.
    mid = points[np.abs(points[:, 1]) < 180.0 - SEAM_MARGIN_DEG]
    np.testing.assert_allclose(mid, [[k / 10.0, 30.0] for k in range(6)], atol=1e-9)


def test_tentative_tracks_are_drawn_hollow_and_confirmed_ones_filled(tmp_path):
    states = [TrackState.TENTATIVE, TrackState.TENTATIVE, TrackState.CONFIRMED]
    records = [
        FrameRecord(k, [dataclasses.replace(_hazard(10.0), track_id=3, track_state=s)], _hazard(10.0), 0.0)
        for k, s in enumerate(states)
    ]
    figure = tracks_figure(records, {}, 0, tmp_path / "tracks.png")
    (ax,) = figure.axes
    drawn = [c for c in ax.collections if len(c.get_offsets())]
    hollow = [c for c in drawn if len(c.get_facecolors()) == 0]
    filled = [c for c in drawn if len(c.get_facecolors()) > 0]
    assert [len(c.get_offsets()) for c in hollow] == [2] and [len(c.get_offsets()) for c in filled] == [1]


def test_every_time_plot_shares_one_time_axis(tmp_path):
    """The truth runs from 0 s, the records (the model needs a full window first) from 1 s: the
    timeline's panels and the tracks figure show the same span, the truth's whole length."""
    truth = {k * 100_000_000: [dataclasses.replace(_hazard(20.0), track_id=1)] for k in range(30)}
    records = [FrameRecord(k * 100_000_000, [_hazard(22.0)], _hazard(22.0), 0.0) for k in range(10, 30)]
    names = default_taxonomy().names
    timeline = timeline_figure(records, truth, names, 0, tmp_path / "timeline.png")
    tracks = tracks_figure(records, truth, 0, tmp_path / "tracks.png")
    limits = {tuple(round(x, 9) for x in ax.get_xlim()) for ax in [*timeline.axes, *tracks.axes]}
    assert limits == {(-0.05, 2.95)}


def test_seam_copies_repeat_only_what_lies_near_the_seam():
    (single,) = seam_copies(np.array([0.0, 90.0, -90.0]), line=False)
    np.testing.assert_allclose(single, [0.0, 90.0, -90.0])
    points = seam_copies(np.array([175.0, 0.0]), line=False, margin_deg=20.0)
    np.testing.assert_allclose(np.concatenate(points), [-185.0, -360.0, 175.0, 0.0])
    # A line is unwrapped first: 170 -> -170 continues to 190, and comes in again at -190.
    line = seam_copies(np.array([170.0, np.nan, -170.0]), line=True, margin_deg=20.0)
    np.testing.assert_allclose(np.stack(line), [[-190.0, np.nan, -170.0], [170.0, np.nan, 190.0]])
    assert seam_copies(np.array([np.nan]), line=True) == []


# --- which side ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("azimuth_deg", "side"),
    [
        (0.0, "ahead"),
        (30.0, "left"),
        (-30.0, "right"),
        (120.0, "behind-left"),
        (-174.0, "behind-right"),
        (180.0, "behind"),
    ],
)
def test_side_names_follow_rep103(azimuth_deg, side):
    assert side_of(math.radians(azimuth_deg)) == side


def test_out_of_view_arrows_point_to_the_hazards_side():
    centre = (100, 100)
    up, left, right, down = (compass_tip(math.radians(a), centre, 50.0) for a in (0.0, 90.0, -90.0, 180.0))
    assert up == (100, 50) and left == (50, 100) and right == (150, 100) and down == (100, 150)
    # +178 (behind, a hair left) and -174 (behind, a little right): both point down, on their sides.
    behind_left, behind_right = (compass_tip(math.radians(a), centre, 50.0) for a in (178.0, -174.0))
    assert behind_left[1] > 145 and behind_right[1] > 145
    assert behind_left[0] < 100 < behind_right[0]


def test_a_hazard_on_the_left_lands_left_of_the_image_centre():
    intrinsics = CameraIntrinsics.from_fov(320, 240, math.radians(70.0))
    u_left, _ = hazard_pixel(_hazard(20.0), intrinsics, MicToCamera())
    u_right, _ = hazard_pixel(_hazard(-20.0), intrinsics, MicToCamera())
    assert u_left < intrinsics.cx < u_right
    assert hazard_pixel(_hazard(150.0), intrinsics, MicToCamera()) is None


# --- legends and layout ----------------------------------------------------------------------


def test_every_arrow_colour_is_in_the_frame_legend(tmp_path):
    assert set(RISK_LEGEND) == set(RISK_RGB) == set(RiskLevel)
    hazards = [_hazard(az, risk) for az, risk in zip((10.0, 40.0, -40.0, 170.0), RiskLevel, strict=True)]
    record = FrameRecord(0, hazards, hazards[0], 0.0)
    picture = np.zeros((48, 64, 3), np.uint8)
    figure = frame_figure(picture, record, [_hazard(-174.0)], math.radians(70.0), tmp_path / "frame.png")
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert labels == ["ground truth", *(RISK_LEGEND[risk] for risk in RiskLevel)]
    assert "estimate, no risk" in labels  # the grey arrows


def test_the_polar_views_side_labels_stay_clear_of_the_colour_bar(tmp_path):
    records = [FrameRecord(i, [_hazard(a)], _hazard(a), 0.0) for i, a in enumerate(range(-170, 180, 20))]
    figure = polar_figure(records, {}, math.radians(70.0), 0, tmp_path / "polar.png")
    renderer = FigureCanvasAgg(figure).get_renderer()
    polar, colour_bar = figure.axes
    (right,) = [t for t in polar.xaxis.get_ticklabels() if t.get_text() == "-90° right"]
    (left,) = [t for t in polar.xaxis.get_ticklabels() if t.get_text() == "+90° left"]
    bar = colour_bar.get_tightbbox(renderer)
    for label in (right, left):
        box = label.get_window_extent(renderer)
        assert not box.overlaps(bar), label.get_text()
        assert box.x0 >= 0 and box.x1 <= figure.bbox.width  # inside the picture
