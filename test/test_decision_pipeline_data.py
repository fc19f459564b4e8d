"""Decision data from the pipeline itself: stamp-placed windows, skipped frames, the cache, the rules."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from avi_ros.bag.scenario import DEFAULT_START_NS, SensorConfig
from avi_ros.decision.checkpoint import save_decision_checkpoint
from avi_ros.decision.features import FeatureWindow, feature_size, frame_feature, frame_features
from avi_ros.decision.inference import DecisionStage
from avi_ros.decision.model import DecisionModel, DecisionModelConfig
from avi_ros.decision.rules import Situation, label_situation, rules_from_feature
from avi_ros.pipeline import Pipeline
from avi_ros.taxonomy import Action, RiskLevel, Visibility, default_taxonomy
from avi_ros.telemetry import TelemetryReading
from avi_ros.units import NS_PER_S
from training.decision_config import PipelineDataConfig
from training.decision_data import (
    KINDS,
    PipelineRuns,
    decision_script,
    processed_frames,
    replay_windows,
    run_scene,
    scene_frames,
)
from training.decision_metrics import rules_arrays

TAXONOMY = default_taxonomy()
DV = feature_size(TAXONOMY.num_classes)
SENSORS = SensorConfig(camera_rate_hz=15.0, width=64, height=48, knot_s=0.25)
PERIOD_S = 1.0 / 15.0
TINY_STAGE = DecisionModelConfig(d_model=16, layers=1, heads=2, ff_hidden=32, telemetry_hidden=16)


def _feature(value: float) -> np.ndarray:
    return np.full(DV, value, dtype=np.float32)


def _ns(t: float) -> int:
    return round(t * NS_PER_S)


def test_a_skipped_frame_leaves_its_slot_empty_instead_of_shifting_the_older_frames():
    window = FeatureWindow(4, DV, 0.1)
    for t, value in ((0.0, 1.0), (0.1, 2.0), (0.3, 4.0)):  # the frame at 0.2 s was skipped
        window.push(_feature(value), _ns(t))
    array = window.window()
    assert [float(row[0]) for row in array] == [1.0, 2.0, 0.0, 4.0]
    # Counted placement would have put the frames at 0.0 and 0.1 s one slot later.
    counted = FeatureWindow(4, DV, 0.1)
    for t, value in ((0.0, 1.0), (0.1, 2.0), (0.2, 4.0)):
        counted.push(_feature(value), _ns(t))
    assert [float(row[0]) for row in counted.window()] == [0.0, 1.0, 2.0, 4.0]


def test_the_window_is_zero_padded_at_start_up_and_forgets_frames_older_than_f_periods():
    window = FeatureWindow(3, DV, 0.1)
    window.push(_feature(1.0), _ns(5.0))
    assert [float(row[0]) for row in window.window()] == [0.0, 0.0, 1.0]
    window.push(_feature(2.0), _ns(5.31))  # jitter rounds to 3 periods later: the first frame is out
    assert [float(row[0]) for row in window.window()] == [0.0, 0.0, 2.0]
    assert len(window) == 1
    window.push(_feature(3.0), _ns(4.0))  # the clock jumped back: a fresh window
    assert [float(row[0]) for row in window.window()] == [0.0, 0.0, 3.0]


def test_processed_frames_follow_how_busy_the_node_is():
    times = np.arange(30) * PERIOD_S
    rng = np.random.default_rng(0)
    assert processed_frames(times, rng, 0.01, 0.0).all()  # always done before the next frame
    busy = processed_frames(times, rng, 0.15, 0.0)  # 2.25 periods per frame: one frame per 0.15 s
    assert busy[0] and busy.sum() == pytest.approx(30 / 2.25, abs=1.0)
    assert not (busy[1:] & busy[:-1]).any()


def test_a_walking_hazard_closes_in_on_a_standing_robot():
    siren = TAXONOMY.class_id("siren")
    still = Situation(siren, 3.0, 0.0, Visibility.VISIBLE, 0.0, 0.0)
    walking = dataclasses.replace(still, closing_speed_mps=1.0)
    assert math.isinf(label_situation(still, TAXONOMY).ttc_s)
    decision = label_situation(walking, TAXONOMY)
    assert decision.ttc_s == pytest.approx(3.0) and decision.risk == RiskLevel.HIGH


def test_the_rules_baseline_reads_the_newest_estimate_and_the_odometry_speed():
    siren = TAXONOMY.class_id("siren")
    probabilities = np.eye(TAXONOMY.num_classes)[siren]
    ahead = frame_features(probabilities, np.array([1.0, 0, 0]), 3.0, 0.9, int(Visibility.VISIBLE), 0.0)
    decision = rules_from_feature(ahead, 1.5, TAXONOMY)
    assert decision.risk == RiskLevel.HIGH and decision.action == Action.STOP  # TTC 2 s, 3 m > reverse_within
    unsure = frame_features(probabilities, np.array([1.0, 0, 0]), 3.0, 0.2, int(Visibility.VISIBLE), 0.0)
    assert rules_from_feature(unsure, 1.5, TAXONOMY).risk == RiskLevel.NONE  # below the node's threshold
    windows = np.stack([np.stack([np.zeros(DV), unsure]), np.stack([unsure, ahead])]).astype(np.float32)
    telemetry = np.zeros((2, 8), dtype=np.float32)
    telemetry[:, 6] = 1.5
    assert rules_arrays(windows, telemetry, TAXONOMY).risk.tolist() == [0, 3]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_run_keeps_its_hazard_clear_of_the_robot(kind):
    script = decision_script(3, kind, 4.0, TAXONOMY)
    assert (len(script.hazards) == 0) == (kind == "no_hazard")
    for track in script.hazards:
        for t in np.arange(track.start_s, min(track.end_s, 4.0), 0.1):
            gap = track.position(t)[:2] - np.asarray(script.robot.pose(t).position_m[:2])
            assert np.linalg.norm(gap) >= 0.79


@pytest.fixture(scope="module")
def tiny_pipeline(tiny_checkpoint):
    return Pipeline.from_checkpoint(tiny_checkpoint(TAXONOMY, 0.5), "cpu")


def test_the_windows_made_from_pipeline_runs_are_those_the_run_time_stage_builds(tiny_pipeline, tmp_path):
    """The cached per-frame features equal the node's, frame by frame, and the replayed windows
    (with frames skipped) equal the windows of a ``DecisionStage`` fed the same frames at their stamps."""
    script = decision_script(1, "approach", 1.2, TAXONOMY)
    run = run_scene(tiny_pipeline, script, SENSORS, 7, DEFAULT_START_NS, None, batch=4)
    run["kind"] = np.asarray(KINDS.index("approach"))
    frames = list(scene_frames(script, SENSORS, 7, DEFAULT_START_NS, tiny_pipeline.window_samples, TAXONOMY))
    assert len(frames) == len(run["stamps_ns"]) >= 8
    estimates = [tiny_pipeline.run(frame).top for frame, _ in frames]  # one frame at a time, as the node
    np.testing.assert_allclose(run["features"], np.stack([frame_feature(e) for e in estimates]), atol=1e-4)

    busy = dataclasses.replace(PipelineDataConfig(), processing_s=(0.1, 0.1), processing_spread=0.0)
    windows = replay_windows([run], 1, 0, busy, 4, PERIOD_S)
    assert windows["skipped"].max() >= 1 and windows["startup"][0] == 1  # skips and start-up are there
    save_decision_checkpoint(tmp_path, DecisionModel(dataclasses.replace(TINY_STAGE, frames=4), DV), TAXONOMY)
    stage = DecisionStage.from_checkpoint(tmp_path)
    index = {int(stamp): i for i, stamp in enumerate(run["stamps_ns"])}
    for row, stamp in enumerate(windows["stamp_ns"]):
        stage.step(estimates[index[int(stamp)]], TelemetryReading.absent(), int(stamp))
        np.testing.assert_allclose(windows["features"][row], stage.window.window(int(stamp)), atol=1e-4)
    np.testing.assert_array_equal(
        windows["telemetry"], run["telemetry"][[index[int(s)] for s in windows["stamp_ns"]]]
    )


def test_the_cache_is_reused_and_keyed_by_the_hazard_model_weights(tiny_checkpoint, tmp_path):
    first, second = tiny_checkpoint(TAXONOMY, 0.5), tiny_checkpoint(TAXONOMY, 0.5, {1: 3.0})
    config = PipelineDataConfig(
        model_path=str(first), duration_s=1.6, width=64, height=48, knot_s=0.25, sound_dir=None
    )
    runs = PipelineRuns(config, tmp_path)
    made = runs.runs(1, 5, held_out=False)
    directory = runs.directory(5, False)
    assert sorted(p.name for p in directory.glob("scene_*.npz")) == ["scene_00000.npz"]
    assert (directory / "key.json").is_file() and runs.model_hash in (directory / "key.json").read_text()
    again = PipelineRuns(config, tmp_path).runs(1, 5, held_out=False)  # read back, not made again
    np.testing.assert_array_equal(made[0]["features"], again[0]["features"])
    other = PipelineRuns(dataclasses.replace(config, model_path=str(second)), tmp_path)
    assert other.model_hash != runs.model_hash and other.directory(5, False) != directory
