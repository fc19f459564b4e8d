"""Several hazards per frame reach every output: the pipeline of a three-slot model publishes every confident
slot (most confident first, ``top`` the best), the message, markers and echo carry them all, the
report's metrics, frames and timeline show them, ``avi-ros predict`` lists them, and a scenario
with overlapping hazards gives their exact truth through make-bag, replay and report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from estimates import estimate
from model_helpers import SET_SLOTS as SLOTS
from model_helpers import set_model, tiny_model

from avi_ros.bag.io import read_bag
from avi_ros.bag.make_bag import MakeBagOptions, make_bag
from avi_ros.bag.replay import ReplayOptions, replay
from avi_ros.bag.report import write_report
from avi_ros.bag.report_scoring import compute_metrics, score_frame, timeline_azimuths
from avi_ros.bag.results import FrameRecord, ReplayResult, Snapshot
from avi_ros.bag.scenario import ScenarioRenderer, SensorConfig, load_scenario
from avi_ros.checkpoint import save_checkpoint
from avi_ros.data.scenario_script import HazardTrack, ScenarioScript
from avi_ros.features import FeatureConfig
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.hazard_markers import MARKER_DELETEALL, MarkerStyle, hazard_marker_specs
from avi_ros.models.output_arrays import read_set_outputs
from avi_ros.pipeline import Pipeline
from avi_ros.predict import format_table, predict_file
from avi_ros.taxonomy import MAX_HAZARDS, Visibility, default_taxonomy
from avi_ros.types import Frame, HazardEstimateData

TAXONOMY = default_taxonomy()
RATE = 24_000
WINDOW_S = 0.5


@pytest.fixture(scope="module")
def confident_checkpoint(tmp_path_factory) -> Path:
    """Every slot is a hazard (never ``none``) with confidence ~1."""
    model = set_model({0: -50.0}, confidence_bias=50.0)
    return save_checkpoint(
        tmp_path_factory.mktemp("set"), model, FeatureConfig(window_seconds=WINDOW_S), TAXONOMY
    )


def frame(seed: int = 0, size: tuple[int, int] = (48, 64)) -> Frame:
    rng = np.random.default_rng(seed)
    height, width = size
    depth = np.full(size, 3.0, dtype=np.float32)
    depth[:, : width // 3] = 0.6  # a near obstacle on the left: blocked view tokens there
    return Frame(
        rgb=rng.integers(0, 255, (height, width, 3), dtype=np.uint8),
        depth_m=depth,
        intrinsics=CameraIntrinsics.from_fov(width, height, math.radians(70.0)),
        audio=(0.1 * rng.standard_normal((4, round(WINDOW_S * RATE)))).astype(np.float32),
        sample_rate=RATE,
    )


# --- the pipeline ----------------------------------------------------------------------------


def test_set_pipeline_publishes_every_confident_slot_most_confident_first(confident_checkpoint):
    pipeline = Pipeline.from_checkpoint(confident_checkpoint, device="cpu")
    assert pipeline.is_hazard_set
    view = frame()
    result = pipeline.run(view)
    assert len(result.hazards) == SLOTS
    confidences = [h.confidence for h in result.hazards]
    assert confidences == sorted(confidences, reverse=True)
    assert result.top is result.hazards[0]

    # The slots are the model's own, fed the frame's view tokens (intrinsics + the extrinsic).
    inputs = pipeline.preprocess(
        view.rgb, view.depth_m, view.audio, view.sample_rate, view.intrinsics, pipeline.extrinsic
    )
    assert inputs.view_tokens is not None and inputs.view_tokens[:, 3].max() > 0.5  # blocked cells
    with torch.inference_mode():
        out = pipeline.model(
            pipeline.features(torch.from_numpy(inputs.audio[None])),
            torch.from_numpy(inputs.visual[None]),
            torch.from_numpy(inputs.view_tokens[None]),
        )
    arrays = read_set_outputs(out)
    expected = sorted(
        zip(arrays.confidence[0], arrays.audio_weight[0], arrays.direction[0], strict=True),
        key=lambda slot: -slot[0],
    )
    for hazard, (confidence, audio_weight, direction) in zip(result.hazards, expected, strict=True):
        assert hazard.confidence == pytest.approx(float(confidence), abs=1e-4)
        assert hazard.audio_weight == pytest.approx(float(audio_weight), abs=1e-4)
        np.testing.assert_allclose(hazard.direction, direction / np.linalg.norm(direction), atol=1e-4)
        assert hazard.audio_weight + hazard.visual_weight == pytest.approx(1.0, abs=1e-4)
    # Slots answer apart: not one estimate copied three times.
    assert len({round(h.azimuth, 4) for h in result.hazards}) == SLOTS


def test_set_pipeline_below_threshold_or_empty_keeps_a_best_guess():
    quiet = Pipeline.from_model(
        set_model({0: -50.0}, confidence_bias=-50.0),
        FeatureConfig(window_seconds=WINDOW_S),
        TAXONOMY,
        device="cpu",
    )
    result = quiet.run(frame())
    assert result.hazards == [] and result.top.class_id != 0  # the best non-empty slot, unpublished

    empty = Pipeline.from_model(
        set_model({0: 50.0}, confidence_bias=50.0),
        FeatureConfig(window_seconds=WINDOW_S),
        TAXONOMY,
        device="cpu",
    )
    batch = empty.run_batch([frame(1), frame(2)])
    assert [r.hazards for r in batch] == [[], []]
    assert all(r.top.class_id == 0 for r in batch)  # every slot empty: the most confident one


@pytest.mark.parametrize("slots", [1, SLOTS])
def test_the_oracle_is_refused_with_a_reason(slots):
    """It reads the exact view tokens (true occluders), which sensor frames do not give."""
    oracle = tiny_model(TAXONOMY.num_classes, variant="oracle", hazard_slots=slots)
    with pytest.raises(ValueError, match="oracle baseline reads the exact view tokens"):
        Pipeline.from_model(oracle, FeatureConfig(window_seconds=WINDOW_S), TAXONOMY, device="cpu")


# --- messages, markers and echo --------------------------------------------------------------


def multi_hazard_result() -> list[HazardEstimateData]:
    return [
        estimate(3, 20.0, confidence=0.95),
        estimate(5, -40.0, confidence=0.8, visibility=Visibility.OCCLUDED),
        estimate(9, 160.0, confidence=0.6),
    ]


def test_every_hazard_gets_its_own_markers():
    hazards = multi_hazard_result()
    specs = hazard_marker_specs(hazards, MarkerStyle())
    assert specs[0].action == MARKER_DELETEALL
    keys = [(s.namespace, s.marker_id) for s in specs[1:]]
    assert len(keys) == 2 * len(hazards) and len(set(keys)) == len(keys)  # RViz keeps all of them
    assert [s.text.split()[0] for s in specs[1:] if s.namespace == "labels"] == [
        h.class_name for h in hazards
    ]


@pytest.mark.ros
def test_message_and_echo_carry_every_hazard():
    from avi_ros.ros import conversions
    from avi_ros.ros.echo import describe, hazards_record

    hazards = multi_hazard_result()
    header = conversions.make_header(1_000_000_000, "foa_microphone")
    message = conversions.hazards_to_msg(hazards, header)
    assert [h.class_name for h in message.hazards] == [h.class_name for h in hazards]
    markers = conversions.hazard_markers(hazards, header, MarkerStyle()).markers
    ids = [(m.ns, m.id) for m in markers[1:]]
    assert len(ids) == 6 and len(set(ids)) == 6
    record = hazards_record(message)
    assert [h["visibility"] for h in record["hazards"]] == ["VISIBLE", "OCCLUDED", "VISIBLE"]
    line = describe(record)
    assert all(h.class_name in line for h in hazards) and line.count(";") == 2


# --- the report ------------------------------------------------------------------------------


def test_each_true_hazard_is_scored_against_its_own_estimate():
    truths = [estimate(5, -40.0, visibility=Visibility.OCCLUDED), estimate(3, 20.0)]
    record = FrameRecord(0, [estimate(3, 25.0), estimate(5, -30.0)], estimate(3, 25.0), 0.1)
    dog, engine = score_frame(record, truths)
    assert dog.estimate.class_id == 5 and engine.estimate.class_id == 3
    assert dog.published and engine.published
    # Three true hazards, one estimate: the other two are missed, not paired twice.
    lonely = FrameRecord(1, [estimate(9, 150.0)], estimate(9, 150.0), 0.1)
    scored = score_frame(lonely, [*truths, estimate(9, 160.0)])
    assert [s.estimate is not None for s in scored] == [False, False, True]

    truth = {0: truths, 1: [*truths, estimate(9, 160.0)], 2: []}
    metrics = compute_metrics([record, lonely, FrameRecord(2, [], estimate(0, 0.0), 0.0)], truth)
    everything = metrics["groups"]["all hazards"]
    assert everything["frames"] == 5  # true hazards
    assert everything["detected_%"] == 60.0 and everything["class_accuracy_%"] == 60.0
    assert metrics["groups"]["occluded"]["frames"] == 2
    counts = metrics["hazard_counts"]
    assert counts["2"] == {
        "frames": 1,
        "published_mean": 2.0,
        "count_right_%": 100.0,
        "too_many_%": 0.0,
        "too_few_%": 0.0,
    }
    assert counts["3"]["too_few_%"] == 100.0 and counts["0"]["count_right_%"] == 100.0
    # Per class, each true hazard of a scenario has its own detection rate.
    by_class = metrics["hazards_by_class"]
    names = {h.class_name: h.class_id for h in (*truths, estimate(9, 160.0))}
    assert set(by_class) == set(names)
    assert [by_class[name]["frames"] for name in sorted(names)] == [
        sum(1 for frame in truth.values() for h in frame if h.class_name == name) for name in sorted(names)
    ]
    dog_name = next(name for name, class_id in names.items() if class_id == 5)
    nine_name = next(name for name, class_id in names.items() if class_id == 9)
    assert by_class[dog_name]["detected_%"] == 50.0  # published in frame 0, missed in frame 1
    assert by_class[nine_name]["detected_%"] == 100.0


def test_single_hazard_metrics_compare_the_best_guess_with_the_truth():
    """One true hazard and a single-hazard model: the pair is always (top, truth), published or not."""
    records = [
        FrameRecord(0, [], estimate(4, 60.0, confidence=0.3), 0.0),  # unpublished, wrong class: still scored
        FrameRecord(1, [estimate(3, 10.0)], estimate(3, 10.0), 0.0),
    ]
    truth = {0: [estimate(3, 30.0)], 1: [estimate(3, 0.0)]}
    row = compute_metrics(records, truth)["groups"]["all hazards"]
    assert row["frames"] == 2 and row["detected_%"] == 50.0 and row["class_accuracy_%"] == 50.0
    assert row["mean_angular_error_deg"] == pytest.approx(20.0, abs=0.01)  # 30 and 10 deg


def test_timeline_draws_one_line_per_true_hazard_and_one_marker_per_published_hazard():
    records, truth = [], {}
    for i in range(6):
        published = [estimate(3, 20.0 + i), estimate(5, 178.0)] if i < 4 else []
        records.append(
            FrameRecord(i, published, published[0] if published else estimate(0, 0.0, confidence=0.1), 0.0)
        )
        truth[i] = [estimate(5, -176.0 + i), estimate(3, 18.0 + i)] if i < 5 else []
    lines = timeline_azimuths(records, truth)
    assert lines.truth.shape == (2, 6) and sorted(lines.truth_class.tolist()) == [3, 5]
    assert np.isnan(lines.truth[:, 5]).all()
    assert lines.frame.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 5]
    assert lines.published.tolist() == [True] * 8 + [False, False]
    dog = lines.truth[lines.truth_class.tolist().index(5)]
    # The dog estimate at +178 sits beside its truth near -176 (unwrapped), 6 deg away, not 354.
    dog_marks = lines.azimuth[(lines.class_id == 5)]
    np.testing.assert_allclose(dog_marks - dog[:4], [-6.0, -7.0, -8.0, -9.0], atol=1e-9)


def test_report_shows_every_hazard(tmp_path):
    stamps = [k * 100_000_000 for k in range(8)]
    records, truth, snapshots = [], {}, []
    intrinsics = CameraIntrinsics.from_fov(64, 48, math.radians(70.0))
    for k, stamp in enumerate(stamps):
        published = [
            estimate(3, 10.0),
            estimate(5, -25.0, confidence=0.7, visibility=Visibility.OCCLUDED),
            estimate(9, 170.0, confidence=0.6),
        ][: k % 4]
        top = published[0] if published else estimate(0, 0.0, confidence=0.2)
        records.append(FrameRecord(stamp, published, top, 0.3))
        truth[stamp] = [
            estimate(3, 12.0),
            estimate(5, -20.0, visibility=Visibility.OCCLUDED),
            estimate(9, 165.0, visibility=Visibility.OUT_OF_VIEW),
        ][: min(k, 3)]
        snapshots.append(
            Snapshot(stamp, np.full((48, 64, 3), 90, np.uint8), np.zeros((48, 64), np.uint8), intrinsics)
        )
    result = ReplayResult(
        records=records,
        truth=truth,
        snapshots=snapshots[3:5],
        events={},
        extrinsic=MicToCamera(),
        extrinsic_source="test",
        class_names=list(TAXONOMY.names),
        window_s=WINDOW_S,
        bag=tmp_path / "bag",
        output_bag=tmp_path / "out_bag",
    )
    index = write_report(result, tmp_path / "report")
    out = index.parent
    for picture in [out / "timeline.png", out / "polar.png", *sorted((out / "frames").glob("*.png"))]:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
    assert len(list((out / "frames").glob("*.png"))) == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["hazard_counts"]) == ["0", "1", "2", "3"]
    assert metrics["groups"]["all hazards"]["frames"] == sum(len(t) for t in truth.values())
    html = index.read_text()
    assert "true hazards" in html and "count right %" in (out / "metrics.md").read_text()


# --- predict ---------------------------------------------------------------------------------


def test_predict_lists_every_hazard_of_a_window(tmp_path, confident_checkpoint):
    import soundfile as sf

    audio = (0.05 * np.random.default_rng(3).standard_normal((4, round(1.5 * RATE)))).astype(np.float32)
    path = tmp_path / "three.wav"
    sf.write(str(path), audio.T, RATE, subtype="FLOAT")
    pipeline = Pipeline.from_checkpoint(confident_checkpoint, device="cpu")
    report = predict_file(path, pipeline, "set", hop_s=0.5)
    assert len(report.windows) == 3
    for window in report.windows:
        assert len(window.hazards) == SLOTS and window.hazard
        assert window.top.class_name == window.hazards[0].class_name
        confidences = [h.confidence for h in window.hazards]
        assert confidences == sorted(confidences, reverse=True)
    rows = [line.split() for line in format_table(report).splitlines()[1:]]
    assert len(rows) == 3 * SLOTS and all(row[8] == "yes" for row in rows)
    assert [row[1] for row in rows] == [e for e in ("0.50", "1.00", "1.50") for _ in range(SLOTS)]
    windows = report.to_dict()["windows"]
    assert [len(w["hazards"]) for w in windows] == [SLOTS] * 3
    assert windows[0]["hazards"][0]["class"] == windows[0]["class"]  # the top is the first hazard
    assert all(-180.0 <= h["azimuth_deg"] <= 180.0 for w in windows for h in w["hazards"])


# --- scenario, make-bag and replay -----------------------------------------------------------


def test_overlapping_tracks_are_all_active_and_all_in_the_truth():
    script = load_scenario("workshop")
    assert [t.class_name for t in script.active_hazards(5.0)] == ["power_tool", "dog_bark", "speech"]
    assert script.active_hazards(10.5) == []
    renderer = ScenarioRenderer(script, SensorConfig(width=64, height=48))
    truth = renderer.render_frame(5.0).truth
    assert [h.class_name for h in truth] == ["power_tool", "dog_bark", "speech"]
    assert [h.visibility for h in truth] == [Visibility.VISIBLE, Visibility.OCCLUDED, Visibility.OUT_OF_VIEW]
    mic = script.robot.pose(5.0)
    for hazard, track in zip(truth, script.active_hazards(5.0), strict=True):
        assert hazard.distance == pytest.approx(np.linalg.norm(mic.to_mic(track.position(5.0))), rel=1e-6)
    # The corridor's hazards take turns: one at a time, as before.
    corridor = load_scenario("corridor")
    assert max(len(corridor.active_hazards(t)) for t in np.arange(0.0, 24.0, 0.1)) == 1


def test_more_simultaneous_hazards_than_a_frame_reports_are_refused():
    base = load_scenario("workshop")
    track = HazardTrack("siren", 4.0, 6.0, ((0.0, 6.0, 2.0, 1.0),))
    with pytest.raises(ValueError, match=f"more than {MAX_HAZARDS} hazards sound at 4.0 s"):
        ScenarioScript(
            base.name,
            base.description,
            base.duration_s,
            base.room,
            base.occluders,
            base.robot,
            (*base.hazards, track),
        )


def test_replay_of_overlapping_hazards_writes_every_hazard_and_the_report(tmp_path, confident_checkpoint):
    bag = make_bag(
        MakeBagOptions(
            out=tmp_path / "workshop.mcap",
            scenario="workshop",
            duration_s=4.2,
            width=64,
            height=48,
            camera_rate_hz=5.0,
        )
    ).path
    truth_sizes = [len(m.message.hazards) for m in read_bag(bag, topics=["/ground_truth/hazards"])]
    assert max(truth_sizes) == 3 and 2 in truth_sizes
    torch.set_num_threads(1)
    result = replay(
        ReplayOptions(
            bag=bag, model=confident_checkpoint, out=tmp_path / "replay", device="cpu", report_frames=2
        )
    )
    assert result.records and all(len(r.hazards) == SLOTS for r in result.records)
    published = [m.message for m in read_bag(result.output_bag, topics=["/hazards"])]
    markers = [m.message for m in read_bag(result.output_bag, topics=["/markers"])]
    assert [len(m.hazards) for m in published] == [SLOTS] * len(result.records)
    for message in markers:
        ids = [(m.ns, m.id) for m in message.markers[1:] if m.ns in ("hazards", "labels")]  # tracks apart
        assert len(ids) == 2 * SLOTS and len(set(ids)) == len(ids)
    out = tmp_path / "replay"
    metrics = json.loads((out / "metrics.json").read_text())
    assert "3" in metrics["hazard_counts"] and metrics["hazard_counts"]["3"]["count_right_%"] == 100.0
    assert (out / "timeline.png").stat().st_size > 10_000
