"""The HIGH-risk operating point of the decision stage: HIGH wherever P(HIGH) reaches a threshold,
the threshold chosen as the largest that calls a target share of the truly HIGH windows HIGH, and
stored in the checkpoint the node loads."""

from __future__ import annotations

import numpy as np
import pytest

from avi_ros.decision.checkpoint import (
    read_decision_metadata,
    save_decision_checkpoint,
    store_high_risk_threshold,
)
from avi_ros.decision.features import feature_size
from avi_ros.decision.inference import DecisionArrays, DecisionStage, risk_labels
from avi_ros.decision.model import DecisionModel, DecisionModelConfig
from avi_ros.taxonomy import RiskLevel, default_taxonomy
from training.decision_metrics import fit_high_risk_threshold

HIGH = int(RiskLevel.HIGH)
MEDIUM = int(RiskLevel.MEDIUM)

PROBABILITIES = np.array(
    [
        [0.1, 0.1, 0.6, 0.2],  # argmax MEDIUM, P(HIGH) 0.2
        [0.0, 0.1, 0.4, 0.5],  # argmax HIGH
        [0.7, 0.2, 0.05, 0.05],  # argmax NONE
    ],
    dtype=np.float32,
)


def test_without_a_threshold_the_risk_is_the_argmax():
    assert risk_labels(PROBABILITIES, None).tolist() == [MEDIUM, HIGH, 0]


def test_a_threshold_calls_high_where_p_high_reaches_it_else_the_best_other_level():
    assert risk_labels(PROBABILITIES, 0.2).tolist() == [HIGH, HIGH, 0]
    # above the argmax's own HIGH: the second row falls to its most probable other level
    assert risk_labels(PROBABILITIES, 0.6).tolist() == [MEDIUM, MEDIUM, 0]


def test_decision_arrays_keep_their_operating_point_when_rows_are_taken():
    n = len(PROBABILITIES)
    arrays = DecisionArrays(PROBABILITIES, np.ones((n, 4)), np.ones((n, 6)), np.ones(n), 0.2)
    part = arrays.rows(np.array([True, False, True]))
    assert part.high_risk_threshold == 0.2 and part.risk.tolist() == [HIGH, 0]


def test_the_fitted_threshold_is_the_largest_that_reaches_the_target_recall():
    p_high = np.array([0.9, 0.5, 0.3, 0.1, 0.8, 0.05])
    truth = np.array([HIGH, HIGH, HIGH, HIGH, MEDIUM, 0])
    assert fit_high_risk_threshold(p_high, truth, 0.75) == pytest.approx(0.3)  # 3 of 4 HIGH
    assert fit_high_risk_threshold(p_high, truth, 1.0) == pytest.approx(0.1)
    assert fit_high_risk_threshold(p_high, truth, 0.25) == pytest.approx(0.9)
    recall = np.mean(risk_labels(_as_probabilities(p_high), 0.3)[truth == HIGH] == HIGH)
    assert recall == pytest.approx(0.75)


def test_no_high_window_gives_no_threshold_and_a_bad_target_is_refused():
    assert fit_high_risk_threshold(np.array([0.4, 0.2]), np.array([0, MEDIUM]), 0.95) is None
    with pytest.raises(ValueError, match="target_recall"):
        fit_high_risk_threshold(np.array([0.4]), np.array([HIGH]), 0.0)


def test_the_threshold_round_trips_through_the_checkpoint_metadata(tmp_path):
    taxonomy = default_taxonomy()
    config = DecisionModelConfig(backbone="none", d_model=8, ff_hidden=8, layers=1, heads=1)
    save_decision_checkpoint(tmp_path, DecisionModel(config, feature_size(taxonomy.num_classes)), taxonomy)
    assert read_decision_metadata(tmp_path).high_risk_threshold is None
    store_high_risk_threshold(tmp_path, 0.125)
    assert read_decision_metadata(tmp_path).high_risk_threshold == pytest.approx(0.125)


def _as_probabilities(p_high: np.ndarray) -> np.ndarray:
    rest = (1.0 - p_high)[:, None] * np.array([[0.2, 0.3, 0.5]])
    return np.concatenate([rest, p_high[:, None]], axis=1)


def test_the_stage_the_node_runs_reads_risk_at_the_stored_threshold(tmp_path):
    """Threshold 0 calls every window HIGH, one above 1 none: ``DecisionStage.predict`` (the node's
    path) must read the checkpoint's operating point, not the argmax."""
    taxonomy = default_taxonomy()
    config = DecisionModelConfig(backbone="none", d_model=8, ff_hidden=8, layers=1, heads=1)
    save_decision_checkpoint(tmp_path, DecisionModel(config, feature_size(taxonomy.num_classes)), taxonomy)
    features = np.random.default_rng(0).normal(size=(16, config.frames, feature_size(taxonomy.num_classes)))
    telemetry = np.zeros((16, 8), dtype=np.float32)

    def risks(threshold: float) -> set[RiskLevel]:
        store_high_risk_threshold(tmp_path, threshold)
        stage = DecisionStage.from_checkpoint(tmp_path)
        return {a.risk for a in stage.predict(features, telemetry, [False] * 16, list(range(16)))}

    assert risks(0.0) == {RiskLevel.HIGH}
    assert RiskLevel.HIGH not in risks(1.01)
