"""Tracks in ``avi-ros replay``: the node's tracker configuration from its parameters YAML, one
update per frame with the bag's odometry yaw rate, trails in /markers, the tracks figure and the
tracking scores of the report, and the same track ids as the live node on the same bag.

The tiny checkpoint publishes one hazard per frame wherever the untrained model points;
``tracking.gate_deg`` 180 makes every frame's hazard continue the one track, so the expected ids
follow from ``min_hits`` alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from replay_helpers import header_stamp_ns, live_node_answers, replay_on_cpu
from tracking_scenes import estimate

from avi_ros.bag.io import BagMessage, BagWriter, read_bag
from avi_ros.bag.make_bag import MakeBagOptions, make_bag
from avi_ros.bag.messages import MessageFactory
from avi_ros.bag.report_scoring import BASELINE_ROW, TRACKER_ROW, tracking_scores
from avi_ros.bag.results import FrameRecord
from avi_ros.cli import main
from avi_ros.hazard_markers import MARKER_LINE_STRIP, TRACK_NAMESPACE
from avi_ros.taxonomy import default_taxonomy
from avi_ros.tracking import HazardTracker, RobotMotion, TrackerConfig
from avi_ros.tracking.settings import tracker_config_from_params_file
from avi_ros.types import HazardEstimateData, TrackState

MIN_HITS = 2
TRACKING = {"gate_deg": 180.0, "min_hits": MIN_HITS}


@pytest.fixture(scope="module")
def checkpoint_dir(tiny_checkpoint) -> Path:
    return tiny_checkpoint(default_taxonomy(), 0.5, {0: -50.0}, confidence_bias=50.0)


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    """A scenario bag without odometry: the tests that need a yaw rate add their own ``/odom``."""
    out = tmp_path_factory.mktemp("bag") / "scenario.mcap"
    options = MakeBagOptions(out=out, duration_s=1.5, width=64, height=48, odometry_topic=None)
    return make_bag(options).path


@pytest.fixture(scope="module")
def params_file(tmp_path_factory, repo_root) -> Path:
    """The node's own parameters file with the tracking settings of this module."""
    document = yaml.safe_load((repo_root / "config" / "perception.yaml").read_text())
    document["/**"]["ros__parameters"]["tracking"].update(TRACKING)
    path = tmp_path_factory.mktemp("params") / "perception.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, bag, checkpoint_dir, params_file):
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("replay")
    tracking = tracker_config_from_params_file(params_file)
    # Without odometry, as the live node of the last test (whose odometry would race its frames).
    return replay_on_cpu(
        bag, checkpoint_dir, out, report_frames=2, tracking=tracking, odometry_topic=None
    ), out


def test_params_file_gives_the_nodes_tracking_settings(params_file, repo_root, tmp_path):
    assert tracker_config_from_params_file(params_file) == TrackerConfig(**TRACKING)
    assert tracker_config_from_params_file(repo_root / "config" / "perception.yaml") == TrackerConfig()
    off = tmp_path / "off.yaml"
    off.write_text("perception_node:\n  ros__parameters:\n    tracking.enabled: false\n")
    assert tracker_config_from_params_file(off) is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    tracking:\n      min_hits: 0\n")
    with pytest.raises(ValueError, match=r"tracking\.min_hits"):
        tracker_config_from_params_file(bad)
    bad.write_text("/**:\n  ros__parameters:\n    tracking:\n      min_hits: 2.5\n")
    with pytest.raises(ValueError, match=r"tracking\.min_hits"):
        tracker_config_from_params_file(bad)


def test_bad_params_file_is_a_clear_cli_error(tmp_path, bag, checkpoint_dir, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    tracking:\n      gate_deg: -3.0\n")
    args = ["replay", str(bag), "--model", str(checkpoint_dir), "--out", str(tmp_path / "o"), "--params-file"]
    assert main([*args, str(bad)]) != 0
    assert "tracking.gate_deg" in capsys.readouterr().err


def test_each_frame_is_tracked_once_in_stamp_order_and_published_with_trails(replayed):
    result, _ = replayed
    ids = [[h.track_id for h in r.hazards] for r in result.records]
    assert ids == [[1]] * len(ids)  # published from the first frame, tentative until MIN_HITS
    states = [[h.track_state for h in r.hazards] for r in result.records]
    assert states == [[TrackState.TENTATIVE]] * (MIN_HITS - 1) + [[TrackState.CONFIRMED]] * (
        len(ids) - MIN_HITS + 1
    )
    # The published hazards are the tracker's output on the pipeline's hazards, frame by frame.
    tracker = HazardTracker(result.tracking)
    for record in result.records:
        again = tracker.update(record.untracked, record.stamp_ns, record.motion)
        assert [(h.track_id, h.track_state, h.first_seen_ns) for h in again] == [
            (h.track_id, h.track_state, h.first_seen_ns) for h in record.hazards
        ]
    first = result.records[0].stamp_ns
    assert result.records[-1].hazards[0].first_seen_ns == first
    published = {}
    for message in read_bag(result.output_bag):
        published.setdefault(message.topic, []).append(message.message)
    assert [[h.track_id for h in m.hazards] for m in published["/hazards"]] == ids
    assert [[h.track_state for h in m.hazards] for m in published["/hazards"]] == states
    for k, markers in enumerate(published["/markers"]):
        arrow = next(m for m in markers.markers if m.ns == "hazards")
        trails = [m for m in markers.markers if m.ns == TRACK_NAMESPACE]
        assert arrow.id == (ids[k][0] or -1)
        if k >= MIN_HITS - 1:
            assert [(t.id, t.type) for t in trails] == [(1, MARKER_LINE_STRIP)]
            assert len(trails[0].points) == min(k + 1, len(trails[0].points))
        else:
            assert trails == []


def test_report_draws_the_tracks(replayed):
    result, out = replayed
    picture = out / "tracks.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
    assert "tracks.png" in (out / "index.html").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    # The scenario's true hazards carry track ids (1 up), so both rows are scored on every
    # replayed frame's true hazards.
    true_ids = {h.track_id for hazards in result.truth.values() for h in hazards}
    assert true_ids and min(true_ids) >= 1
    assert set(metrics["tracking"]) == {TRACKER_ROW, BASELINE_ROW}
    scored = sum(len(result.truth.get(record.stamp_ns, [])) for record in result.records)
    assert scored > 0
    for row in metrics["tracking"].values():
        assert row["truth_count"] == scored


def test_odometry_in_the_bag_reaches_the_tracker(tmp_path, bag, checkpoint_dir):
    """A copy of the bag with a driving, turning robot's odometry: each frame's motion is the odometry's."""
    with_odom = tmp_path / "odom.mcap"
    factory = MessageFactory()
    new = factory.new
    messages = [m for m in read_bag(bag) if m.topic != "/odom"]  # the scenario's own odometry, if any
    stamps = [m.stamp_ns for m in messages]
    for k, stamp in enumerate(range(min(stamps), max(stamps), 50_000_000)):
        twist = new["geometry_msgs/msg/Twist"](
            linear=new["geometry_msgs/msg/Vector3"](x=0.75),
            angular=new["geometry_msgs/msg/Vector3"](z=0.25 if k % 2 else 0.5),
        )
        odom = new["nav_msgs/msg/Odometry"](
            header=factory.header(stamp, "odom"),
            child_frame_id="base_link",
            twist=new["geometry_msgs/msg/TwistWithCovariance"](twist=twist),
        )
        messages.append(BagMessage("/odom", "nav_msgs/msg/Odometry", stamp, odom))
    with BagWriter(with_odom) as writer:
        for message in sorted(messages, key=lambda m: m.stamp_ns):
            writer.write(message.topic, message.stamp_ns, message.message)
    result = replay_on_cpu(with_odom, checkpoint_dir, tmp_path / "out", report=False)
    motions = [r.motion for r in result.records]
    assert set(motions) <= {RobotMotion(0.75, 0.25), RobotMotion(0.75, 0.5)} and len(motions) > 0
    without = replay_on_cpu(with_odom, checkpoint_dir, tmp_path / "out2", report=False, odometry_topic=None)
    assert {r.motion for r in without.records} == {None}


def _truth(track_id: int, azimuth_deg: float, range_rate: float = -1.0) -> HazardEstimateData:
    """A hazard of class 3 at 4 m (``tracking_scenes.estimate``) with a track id and range rate."""
    return dataclasses.replace(
        estimate(math.radians(azimuth_deg), 4.0, class_id=3), track_id=track_id, range_rate=range_rate
    )


def test_tracking_scores_compare_the_tracker_with_the_baseline_when_truth_has_ids():
    rng = np.random.default_rng(0)
    config = TrackerConfig(min_hits=2)
    tracker = HazardTracker(config)
    records, truth = [], {}
    for k in range(40):
        stamp = (k + 1) * 100_000_000
        truth[stamp] = [_truth(5, 30.0), _truth(6, 50.0)]
        # Two sources 20 deg apart, noisy, sometimes missed: the baseline swaps their ids.
        untracked = [_truth(0, a + rng.normal(0.0, 8.0)) for a in (30.0, 50.0) if rng.random() > 0.1]
        records.append(
            FrameRecord(
                stamp,
                tracker.update(untracked, stamp),
                untracked[0] if untracked else _truth(0, 0.0),
                0.0,
                untracked,
            )
        )
    rows = tracking_scores(records, truth, config)
    assert set(rows) == {TRACKER_ROW, BASELINE_ROW}
    assert rows[TRACKER_ROW]["truth_count"] == rows[BASELINE_ROW]["truth_count"] == 80
    assert rows[TRACKER_ROW]["id_switches"] < rows[BASELINE_ROW]["id_switches"]
    json.dumps(rows, allow_nan=False)  # NaN becomes None: the file is standard JSON
    assert tracking_scores(records, {s: [_truth(0, 30.0)] for s in truth}, config) == {}
    assert set(tracking_scores(records, truth, None)) == {BASELINE_ROW}


# --- the same tracks as the live node ---------------------------------------------------------


@pytest.mark.ros
@pytest.mark.slow
def test_replay_track_ids_equal_what_the_live_node_publishes(replayed, bag, checkpoint_dir):
    """Compared on the frames the node answered: the node tracks only those (a busy node skips
    frames), so its ids must equal the tracker run over the replay's hazards of those frames; on
    the frames before the node's first skip they are the replay's own ids."""
    pytest.importorskip("rclpy")
    result, _ = replayed
    tracking = {f"tracking.{k}": v for k, v in TRACKING.items()}
    received, events = live_node_answers(
        bag, checkpoint_dir, len(result.records), "replay_tracks", {**tracking, "telemetry.odom_topic": ""}
    )

    live = {header_stamp_ns(m.header): [h.track_id for h in m.hazards] for m in received}
    records = {r.stamp_ns: r for r in result.records}
    assert live and set(live) <= set(records), events.snapshot()
    tracker = HazardTracker(result.tracking)
    for stamp in sorted(live):
        record = records[stamp]
        expected = [h.track_id for h in tracker.update(record.untracked, stamp, record.motion)]
        assert live[stamp] == expected, stamp
    replay_order = [r.stamp_ns for r in result.records]
    answered = sorted(live)
    prefix = next(
        (k for k, (a, b) in enumerate(zip(answered, replay_order, strict=False)) if a != b),
        min(len(answered), len(replay_order)),
    )
    for stamp in answered[:prefix]:
        assert live[stamp] == [h.track_id for h in records[stamp].hazards], stamp
