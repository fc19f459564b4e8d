"""``training/track_eval.py``: held-out moving scenes through a checkpoint and three trackers, cached
scenes reused, single-hazard and hazard-set checkpoints, exact truth scored as perfect, bad input
refused with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_helpers import set_model

from avi_ros.audio import SAMPLE_RATE, foa_encoding_gains
from avi_ros.checkpoint import save_checkpoint
from avi_ros.features import FeatureConfig
from avi_ros.taxonomy import Visibility, default_taxonomy
from avi_ros.tracking import TruthPoint
from avi_ros.types import HazardEstimateData
from training import track_eval

TAXONOMY = default_taxonomy()
TINY = ["--scenes", "2", "--camera-rate", "5", "--width", "32", "--height", "24", "--threads", "1"]


@pytest.fixture(scope="module")
def single_checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint(TAXONOMY, class_bias={0: -50.0}, confidence_bias=50.0)  # always a hazard


def run(checkpoint: Path, out: Path, *extra: str) -> int:
    return track_eval.main(["--checkpoint", str(checkpoint), "--seed", "3", "--out", str(out), *TINY, *extra])


def test_writes_metrics_of_every_tracker_and_reuses_the_cached_scenes(
    tmp_path, single_checkpoint, monkeypatch
):
    assert run(single_checkpoint, tmp_path / "out") == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics["trackers"]) == set(track_eval.TRACKERS)
    assert metrics["frames_scored"] > 0 and metrics["hazards_published"] == metrics["frames_scored"]
    assert metrics["hazard_set"] is False
    for scores in metrics["trackers"].values():
        for key in ("mota", "id_switches_per_track_minute", "onset_latency_s", "offset_latency_s"):
            assert key in scores
        assert "azimuth_error_moving_deg" in scores and "angular_velocity_error_deg_s" in scores
        assert scores["truth_count"] > 0 and scores["mota"] is not None
    markdown = (tmp_path / "out" / "metrics.md").read_text()
    assert "| MOTA |" in markdown and "nearest_neighbour" in markdown and "≤ 0.3" in markdown
    directions = metrics["one_hazard_direction"]
    assert (
        directions["all"]["frames"] > 0 and directions["all"]["physics_azimuth_error_median_deg"] is not None
    )
    assert set(directions) == {"all", "front", "left", "right", "behind"}
    assert "| behind |" in markdown and "physics on those frames" in markdown
    cached = sorted((tmp_path / "out" / "scenes").glob("moving-*/scene_*.npz"))
    assert len(cached) == 2

    def no_render(*args: object) -> None:
        raise AssertionError("a cached scene was rendered again")

    monkeypatch.setattr(track_eval, "render_scene", no_render)
    assert run(single_checkpoint, tmp_path / "again", "--cache-dir", str(tmp_path / "out" / "scenes")) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["trackers"] == metrics["trackers"]


def test_several_seeds_write_each_and_their_mean_and_std(tmp_path, single_checkpoint):
    out = tmp_path / "seeds"
    argv = ["--checkpoint", str(single_checkpoint), "--out", str(out), *TINY, "--scenes", "1"]
    assert track_eval.main([*argv, "--seed", "3", "4"]) == 0
    runs = [json.loads((out / f"seed{seed}" / "metrics.json").read_text()) for seed in (3, 4)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [3, 4]
    mota = [r["trackers"]["tracker"]["mota"] for r in runs]
    assert summary["trackers"]["tracker"]["mota"] == {
        "mean": pytest.approx(np.mean(mota)),
        "std": pytest.approx(np.std(mota, ddof=1)),
        "n": 2,
    }
    assert "±" in (out / "summary.md").read_text()
    (out / "summary.json").unlink()
    assert track_eval.main([*argv, "--seed", "3", "4", "--summarize-only"]) == 0
    assert json.loads((out / "summary.json").read_text()) == summary
    assert track_eval.main([*argv, "--seed", "3", "9", "--summarize-only"]) == 2  # seed 9 never ran


@pytest.mark.parametrize("answer", ["every_slot", "nothing"])
def test_hazard_set_checkpoint(tmp_path, answer):
    """A hazard-set model forced to fill every slot publishes 3 hazards a frame; one forced to
    class none publishes nothing, so every true hazard is missed and nothing is false."""
    class_bias = {0: -50.0} if answer == "every_slot" else {0: 50.0}
    model = set_model(class_bias, confidence_bias=50.0)
    checkpoint = save_checkpoint(tmp_path / "set", model, FeatureConfig(window_seconds=0.5), TAXONOMY)
    assert run(checkpoint, tmp_path / "out", "--scenes", "1") == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["hazard_set"] is True and metrics["frames_scored"] > 0
    per_frame = 3 if answer == "every_slot" else 0
    assert metrics["hazards_published"] == per_frame * metrics["frames_scored"]
    assert set(metrics["trackers"]) == set(track_eval.TRACKERS)
    for scores in metrics["trackers"].values():
        assert scores["truth_count"] > 0
        if answer == "nothing":
            assert scores["false_positives"] == 0
            assert scores["false_negatives"] == scores["truth_count"]


def test_bad_input_exits_2_with_one_line(tmp_path, capsys, single_checkpoint):
    assert run(tmp_path / "missing", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing does not exist" in err
    assert run(single_checkpoint, tmp_path / "out", "--scenes", "0") == 2
    assert "--scenes must be >= 1" in capsys.readouterr().err
    assert run(single_checkpoint, tmp_path / "out", "--sound-dir", str(tmp_path / "nobank")) == 2
    assert "nobank does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def estimate(truth, class_id: int) -> HazardEstimateData:
    """A perfect estimate of a true hazard (its exact direction and distance)."""
    return HazardEstimateData(
        class_id=class_id,
        class_name=TAXONOMY.names[class_id],
        class_probabilities=np.eye(TAXONOMY.num_classes, dtype=np.float32)[class_id],
        azimuth=truth.azimuth,
        elevation=truth.elevation,
        distance=truth.distance,
        direction=np.zeros(3),
        confidence=1.0,
        occlusion_level=0.0,
        visibility=Visibility.VISIBLE,
        audio_weight=0.5,
        visual_weight=0.5,
        risk_level=0,
        recommended_action=0,
    )


def test_exact_estimates_score_as_perfect_tracks_and_odometry_fixes_angular_velocity():
    """The scene truth fed back as estimates: the tracker follows every hazard with one id from its
    first frame, the range-rate signs are right, and with the odometry (speed and yaw rate) its
    angular velocity is the hazard's own motion."""
    settings = track_eval.SceneSettings(5, 10.0, 32, 24, 0.1, "procedural")
    scenes = [track_eval.render_scene(index, settings, None) for index in range(3)]
    frames = [
        scene.tracker_frame(
            f, index, [estimate(truth, truth.class_id) for truth, _, _ in scene.truths(f, index)]
        )
        for index, scene in enumerate(scenes)
        for f in range(len(scene.times_s))
    ]
    turning = max(abs(float(rate)) for scene in scenes for rate in scene.yaw_rates)
    result = track_eval.score_frames(frames, 0.1)
    tracked = result["tracker"]
    assert tracked["mota"] > 0.9 and tracked["id_switches"] == 0
    assert tracked["onset_latency_s"] == 0.0  # published as tentative on its first frame
    assert tracked["azimuth_error_deg"] == pytest.approx(0.0, abs=1e-6)
    # Most phases right; the filter lags on the shortest ones (a vehicle leaving for 0.3 s).
    assert tracked["range_rate_sign_accuracy"] >= 0.75 and tracked["range_rate_phases"] > 3
    assert turning > 0.1  # the robot turns in these scenes
    without = result["tracker_no_odometry"]["angular_velocity_error_deg_s"]
    assert tracked["angular_velocity_error_deg_s"] < without / 3.0  # ego-motion compensation
    rotation_only = result["tracker_rotation_only"]["angular_velocity_error_deg_s"]
    assert tracked["angular_velocity_error_deg_s"] < rotation_only  # the robot's driving removed too
    assert result["nearest_neighbour"]["onset_latency_s"] == 0.0  # ids at once, no confirmation


def test_one_hazard_directions_put_the_model_beside_physics_by_sector():
    """Plane waves: physics reads them exactly. From +100 deg (left) the model's published hazard
    nearest the truth counts (10 deg off; the one at -30 deg is ignored); frames with two truths
    are left out; from 170 deg (behind) the model published nothing, so only physics answers."""
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE // 2) * 0.1

    def plane_wave(azimuth_deg: float) -> np.ndarray:
        gains = foa_encoding_gains(np.radians(azimuth_deg), 0.0)
        return (gains[:, None] * noise[None]).astype(np.float32)

    left = TruthPoint(1, 3, np.radians(100.0), 4.0)
    near = estimate(TruthPoint(1, 3, np.radians(90.0), 4.0), 3)
    far = estimate(TruthPoint(1, 3, np.radians(-30.0), 4.0), 3)
    directions = track_eval.OneHazardDirections()
    directions.observe(plane_wave(100.0), [left], [far, near])
    directions.observe(plane_wave(100.0), [left, TruthPoint(2, 4, 0.0, 2.0)], [near])  # left out
    directions.observe(plane_wave(170.0), [TruthPoint(3, 3, np.radians(170.0), 4.0)], [])
    result = directions.result()
    assert result["all"]["frames"] == 2 and result["all"]["model_located"] == 1
    assert result["left"]["frames"] == 1 and result["left"]["model_located"] == 1
    assert result["left"]["model_azimuth_error_median_deg"] == pytest.approx(10.0, abs=1e-6)
    assert result["left"]["physics_azimuth_error_located_median_deg"] < 1.0
    assert result["behind"]["frames"] == 1 and result["behind"]["model_located"] == 0
    assert result["behind"]["model_azimuth_error_median_deg"] is None
    assert result["behind"]["physics_azimuth_error_median_deg"] < 1.0
    assert result["front"]["frames"] == 0 and result["right"]["frames"] == 0
