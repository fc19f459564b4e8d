"""The decision stage's labelling rules and label maps: time to contact, class, visibility, motion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avi_ros.decision.labels import (
    ACTION_NAMES,
    REASON_NAMES,
    RISK_NAMES,
    Reason,
    label_maps,
    reason_of_class,
)
from avi_ros.decision.rules import LabelRules, Situation, closing_speed, label_situation, time_to_contact
from avi_ros.decision.scenarios import SCENARIOS, ScenarioConfig, generate_windows
from avi_ros.taxonomy import Action, RiskLevel, Visibility, default_taxonomy

TAXONOMY = default_taxonomy()
SIREN = TAXONOMY.class_id("siren")


def _situation(
    class_name="siren", distance=5.0, azimuth=0.0, visibility=Visibility.VISIBLE, occlusion=0.0, speed=0.0
):
    return Situation(TAXONOMY.class_id(class_name), distance, azimuth, visibility, occlusion, speed)


def test_a_siren_behind_a_standing_robot_and_ahead_of_a_driving_one_differ():
    behind_standing = label_situation(_situation(azimuth=math.pi, speed=0.0), TAXONOMY)
    ahead_driving = label_situation(_situation(azimuth=0.0, speed=1.5), TAXONOMY)
    assert behind_standing.ttc_s == math.inf
    assert ahead_driving.ttc_s == pytest.approx(5.0 / 1.5)
    assert (behind_standing.risk, behind_standing.action) == (RiskLevel.MEDIUM, Action.SLOW)
    assert (ahead_driving.risk, ahead_driving.action) == (RiskLevel.HIGH, Action.STOP)
    assert behind_standing.reason == ahead_driving.reason == Reason.OBSTACLE


def test_time_to_contact_is_distance_over_the_closing_part_of_the_forward_speed():
    rules = LabelRules()
    assert closing_speed(2.0, math.radians(60)) == pytest.approx(1.0)
    assert time_to_contact(4.0, 1.0, rules) == pytest.approx(4.0)
    assert time_to_contact(4.0, 0.0, rules) == math.inf
    assert time_to_contact(4.0, -1.0, rules) == math.inf  # moving away
    # reversing towards a hazard behind closes in
    assert closing_speed(-0.5, math.pi) == pytest.approx(0.5)


def test_ttc_thresholds_grade_the_risk_of_a_low_severity_class():
    # footsteps (a person) 6 m ahead: the taxonomy alone says NONE (beyond far_m 4 m -> LOW - 2)
    slow = label_situation(_situation("footsteps", 6.0, speed=0.5), TAXONOMY)  # TTC 12 s
    medium = label_situation(_situation("footsteps", 6.0, speed=1.0), TAXONOMY)  # TTC 6 s
    fast = label_situation(_situation("footsteps", 6.0, speed=1.6), TAXONOMY)  # TTC 3.75 s
    assert [slow.risk, medium.risk, fast.risk] == [RiskLevel.NONE, RiskLevel.MEDIUM, RiskLevel.HIGH]
    assert fast.reason == Reason.HUMAN


def test_a_hidden_hazard_gets_a_larger_time_margin():
    visible = label_situation(_situation("footsteps", 5.0, speed=1.0), TAXONOMY)  # TTC 5 s > 4 s
    hidden = label_situation(
        _situation("footsteps", 5.0, visibility=Visibility.OCCLUDED, speed=1.0), TAXONOMY
    )
    assert visible.risk == RiskLevel.MEDIUM
    assert hidden.risk == RiskLevel.HIGH  # 5 s <= 4 s x 1.5


def test_not_closing_lowers_the_class_and_distance_risk_by_one_level():
    standing = label_situation(_situation("glass_break", 1.0, speed=0.0), TAXONOMY)
    assert TAXONOMY.risk_level(TAXONOMY.class_id("glass_break"), 1.0) == RiskLevel.HIGH
    assert standing.risk == RiskLevel.MEDIUM


def test_actions_follow_the_side_the_motion_and_the_distance():
    left = label_situation(
        _situation("dog_bark", 1.5, azimuth=0.4, speed=0.2), TAXONOMY
    )  # TTC 8.1 s, base MEDIUM
    right = label_situation(_situation("dog_bark", 1.5, azimuth=-0.4, speed=0.2), TAXONOMY)
    near_ahead = label_situation(_situation("siren", 1.5, azimuth=0.1, speed=1.0), TAXONOMY)
    reversing = label_situation(_situation("siren", 1.5, azimuth=math.pi, speed=-1.0), TAXONOMY)
    assert (left.risk, left.action) == (RiskLevel.MEDIUM, Action.TURN_RIGHT)
    assert right.action == Action.TURN_LEFT
    assert (near_ahead.risk, near_ahead.action) == (RiskLevel.HIGH, Action.REVERSE)
    assert (reversing.risk, reversing.action) == (RiskLevel.HIGH, Action.STOP)


def test_a_tight_space_while_moving_is_low_risk_with_its_own_reason():
    moving = label_situation(_situation("none", occlusion=0.7, speed=0.5), TAXONOMY)
    standing = label_situation(_situation("none", occlusion=0.7, speed=0.0), TAXONOMY)
    open_space = label_situation(_situation("none", occlusion=0.1, speed=0.5), TAXONOMY)
    assert (moving.risk, moving.reason, moving.action) == (RiskLevel.LOW, Reason.TIGHT_SPACE, Action.SLOW)
    assert (standing.risk, standing.reason, standing.action) == (
        RiskLevel.NONE,
        Reason.UNKNOWN,
        Action.CONTINUE,
    )
    assert open_space.risk == RiskLevel.NONE


def test_reason_map_covers_the_taxonomy_and_the_label_maps_keep_the_contract_shape():
    assert reason_of_class("speech") == reason_of_class("footsteps") == Reason.HUMAN
    for name in (
        "vehicle_engine",
        "car_horn",
        "siren",
        "alarm_bell",
        "dog_bark",
        "glass_break",
        "power_tool",
    ):
        assert reason_of_class(name) == Reason.OBSTACLE
    assert reason_of_class("none") == Reason.UNKNOWN
    maps = label_maps(TAXONOMY)
    assert maps["risk"] == list(RISK_NAMES) == ["none", "low", "medium", "high"]
    assert maps["reason"] == list(REASON_NAMES) == ["human", "obstacle", "tight_space", "unknown"]
    assert (
        maps["action"]
        == list(ACTION_NAMES)
        == ["continue", "slow", "stop", "reverse", "turn_left", "turn_right"]
    )
    assert set(maps["class_to_reason"]) == set(TAXONOMY.names)


def test_bad_rule_thresholds_are_refused():
    with pytest.raises(ValueError, match="ttc_high_s"):
        LabelRules(ttc_high_s=5.0, ttc_medium_s=4.0)
    with pytest.raises(ValueError, match="hidden_margin"):
        LabelRules(hidden_margin=0.5)


def test_generated_windows_follow_the_rules_and_the_seed():
    config = ScenarioConfig()
    windows = generate_windows(64, 7, config, TAXONOMY, 8)
    again = generate_windows(64, 7, config, TAXONOMY, 8)
    other = generate_windows(64, 8, config, TAXONOMY, 8)
    assert windows.features.shape == (64, 8, TAXONOMY.num_classes + 9)
    assert windows.telemetry.shape == (64, 8)
    np.testing.assert_array_equal(windows.features, again.features)
    assert not np.array_equal(windows.features, other.features)
    assert not set(windows.sample_id) & set(other.sample_id)
    standing = windows.scenario == SCENARIOS.index("standing")
    assert standing.any() and np.all(np.abs(windows.telemetry[standing, 6]) < 0.2)  # v ~ 0
    assert np.all(windows.risk[standing] < RiskLevel.HIGH)  # a standing robot never closes in
    no_hazard = windows.scenario == SCENARIOS.index("no_hazard")
    assert np.all(windows.class_id[no_hazard] == 0)
    assert np.all(np.isin(windows.reason[no_hazard], [Reason.TIGHT_SPACE, Reason.UNKNOWN]))
    # the per-frame direction part of the features is a unit vector
    direction = windows.features[..., TAXONOMY.num_classes : TAXONOMY.num_classes + 3]
    np.testing.assert_allclose(np.linalg.norm(direction, axis=-1), 1.0, atol=1e-5)
