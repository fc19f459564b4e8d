"""The hazard model's metrics on hand-made frames: DCASE2024-style set metrics and the single-hazard
view; the plots and study tables made from them."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from avi_ros.geometry import direction_to_unit
from avi_ros.taxonomy import Visibility
from avi_ros.types import DEFAULT_CONFIDENCE_THRESHOLD
from training import plots
from training.metrics import SetPredictions, evaluate_hazard_sets, mean_and_std
from training.plots import binned_weight, plot_weight_vs_occlusion
from training.set_report import metric_table, study_table

CLASSES = ["none", "car", "dog", "voice"]
CAR, DOG, VOICE = 1, 2, 3
VISIBLE, OCCLUDED, OUT = int(Visibility.VISIBLE), int(Visibility.OCCLUDED), int(Visibility.OUT_OF_VIEW)
SLOTS = 3


def _truth(class_id, azimuth_deg, distance_m=2.0, visibility=VISIBLE, occlusion=0.0):
    return dict(
        class_id=class_id,
        azimuth_deg=azimuth_deg,
        distance_m=distance_m,
        visibility=visibility,
        extra=occlusion,
    )


def _guess(class_id, azimuth_deg, distance_m=2.0, confidence=0.9, visibility=VISIBLE, audio_weight=0.5):
    return dict(
        class_id=class_id,
        azimuth_deg=azimuth_deg,
        distance_m=distance_m,
        visibility=visibility,
        extra=audio_weight,
    ), confidence


def _fill(frames):
    """Per-frame lists of hazard dicts -> slot arrays [F, SLOTS, ...] (empty slots: class 0, zeros)."""
    n = len(frames)
    class_id = np.zeros((n, SLOTS), np.int64)
    direction = np.zeros((n, SLOTS, 3))
    distance = np.zeros((n, SLOTS))
    visibility = np.full((n, SLOTS), -1, np.int64)
    extra = np.full((n, SLOTS), np.nan)
    for f, hazards in enumerate(frames):
        for k, h in enumerate(hazards):
            class_id[f, k] = h["class_id"]
            direction[f, k] = direction_to_unit(math.radians(h["azimuth_deg"]), 0.0)
            distance[f, k] = h["distance_m"]
            visibility[f, k] = h["visibility"]
            extra[f, k] = h["extra"]
    return class_id, direction, distance, visibility, extra


def _outputs_and_labels(truth_frames, guess_frames) -> tuple[SimpleNamespace, dict[str, np.ndarray]]:
    """A HazardSetArrays stand-in and the prepared labels of hand-made frames."""
    class_true, direction_true, distance_true, visibility_true, occlusion = _fill(truth_frames)
    class_pred, direction_pred, distance_pred, visibility_pred, audio_weight = _fill(
        [[g for g, _ in frame] for frame in guess_frames]
    )
    confidence = np.zeros((len(guess_frames), SLOTS))
    for f, frame in enumerate(guess_frames):
        for k, (_, c) in enumerate(frame):
            confidence[f, k] = c
    outputs = SimpleNamespace(
        class_id=class_pred,
        confidence=confidence,
        direction=direction_pred,
        distance=distance_pred,
        visibility=np.maximum(visibility_pred, 0),
        audio_weight=np.nan_to_num(audio_weight),
    )
    labels = {
        "hazard_class": class_true,
        "hazard_direction": direction_true,
        "hazard_distance": distance_true,
        "hazard_visibility": visibility_true,
        "hazard_occlusion": occlusion,
    }
    return outputs, labels


def _evaluate(truth_frames, guess_frames):
    return evaluate_hazard_sets(*_outputs_and_labels(truth_frames, guess_frames), class_names=CLASSES)


def _counts(group):
    return group["true_positives"], group["false_positives"], group["false_negatives"]


def test_a_perfect_prediction_scores_f_one_and_zero_errors():
    truth = [[_truth(CAR, 10.0, 3.0), _truth(DOG, -60.0, 5.0)], [_truth(VOICE, 170.0, 1.0)]]
    guess = [[_guess(DOG, -60.0, 5.0), _guess(CAR, 10.0, 3.0)], [_guess(VOICE, 170.0, 1.0)]]
    overall = _evaluate(truth, guess).metrics["set"]
    assert _counts(overall) == (3, 0, 0)
    assert overall["f20"] == pytest.approx(1.0) and overall["f20_micro"] == pytest.approx(1.0)
    assert overall["le_deg"] == pytest.approx(0.0, abs=1e-5) and overall["rde"] == pytest.approx(0.0)
    assert overall["recall"] == 1.0 and overall["precision"] == 1.0


def test_a_25_degree_miss_is_a_false_positive_and_a_false_negative_but_19_is_a_hit():
    far = _evaluate([[_truth(CAR, 0.0)]], [[_guess(CAR, 25.0)]]).metrics["set"]
    assert _counts(far) == (0, 1, 1)
    assert far["f20"] == 0.0 and far["recall"] == 0.0
    assert far["le_deg"] == pytest.approx(25.0)  # LE keeps every matched pair, hit or not
    near = _evaluate([[_truth(CAR, 0.0)]], [[_guess(CAR, 19.0)]]).metrics["set"]
    assert _counts(near) == (1, 0, 0) and near["le_deg"] == pytest.approx(19.0)


def test_a_wrong_class_is_a_miss_of_one_class_and_a_false_alarm_of_the_other():
    result = _evaluate([[_truth(CAR, 0.0)]], [[_guess(DOG, 0.0)]]).metrics["set"]
    assert _counts(result) == (0, 1, 1)
    assert result["per_class_f20"] == {"car": 0.0, "dog": 0.0, "voice": None}
    assert result["per_class_hazards"] == {"car": 1, "dog": 0, "voice": 0}  # the dog was only guessed
    assert result["le_deg"] is None and result["rde"] is None  # no same-class pair


def test_a_relative_distance_error_above_one_fails_the_hit():
    over = _evaluate([[_truth(CAR, 0.0, 2.0)]], [[_guess(CAR, 0.0, 4.5)]]).metrics["set"]
    assert _counts(over) == (0, 1, 1) and over["rde"] == pytest.approx(1.25)
    at_limit = _evaluate([[_truth(CAR, 0.0, 2.0)]], [[_guess(CAR, 0.0, 4.0)]]).metrics["set"]
    assert _counts(at_limit) == (1, 0, 0) and at_limit["rde"] == pytest.approx(1.0)


def test_a_prediction_below_the_confidence_threshold_is_not_reported():
    below = DEFAULT_CONFIDENCE_THRESHOLD - 0.01
    result = _evaluate([[_truth(CAR, 0.0)]], [[_guess(CAR, 0.0, confidence=below)]]).metrics["set"]
    assert _counts(result) == (0, 0, 1)
    at = _evaluate([[_truth(CAR, 0.0)]], [[_guess(CAR, 0.0, confidence=DEFAULT_CONFIDENCE_THRESHOLD)]])
    assert _counts(at.metrics["set"]) == (1, 0, 0)


def test_two_hazards_of_one_class_are_matched_by_angle():
    truth = [[_truth(CAR, 0.0), _truth(CAR, 90.0)]]
    guess = [[_guess(CAR, 88.0), _guess(CAR, 2.0)]]
    result = _evaluate(truth, guess).metrics["set"]
    assert _counts(result) == (2, 0, 0)
    assert result["le_deg"] == pytest.approx(2.0)


def test_macro_f_averages_classes_and_micro_pools_counts():
    truth = [[_truth(CAR, 0.0)], [_truth(CAR, 50.0)], [_truth(DOG, 0.0)]]
    guess = [[_guess(CAR, 0.0)], [_guess(CAR, 50.0)], []]
    result = _evaluate(truth, guess).metrics["set"]
    assert result["f20"] == pytest.approx(0.5)  # car 1.0, dog 0.0; voice is absent and not averaged
    assert result["f20_micro"] == pytest.approx(2 / (2 + 0.5))


def test_the_order_of_slots_does_not_change_any_figure():
    truth = [
        [_truth(CAR, 0.0, 2.0, VISIBLE), _truth(DOG, 100.0, 4.0, OCCLUDED), _truth(CAR, -30.0, 3.0, OUT)]
    ]
    guess = [[_guess(CAR, -27.0, 3.5), _guess(DOG, 125.0, 4.0, visibility=OCCLUDED), _guess(CAR, 4.0, 2.2)]]
    reference = _evaluate(truth, guess)
    shuffled = _evaluate([truth[0][::-1]], [[guess[0][1], guess[0][2], guess[0][0]]])
    assert shuffled.metrics == reference.metrics


def test_polyphony_groups_take_every_count_of_their_frames():
    truth = [
        [],
        [_truth(CAR, 0.0)],
        [_truth(CAR, 0.0), _truth(DOG, 90.0), _truth(VOICE, -90.0)],
    ]
    guess = [
        [_guess(VOICE, 30.0)],  # false alarm on an empty frame
        [_guess(CAR, 1.0)],
        [_guess(CAR, 0.0), _guess(DOG, 90.0)],  # voice missed
    ]
    metrics = _evaluate(truth, guess).metrics
    assert _counts(metrics["polyphony_0"]) == (0, 1, 0) and metrics["polyphony_0"]["f20"] == 0.0
    assert _counts(metrics["polyphony_1"]) == (1, 0, 0) and metrics["polyphony_1"]["f20"] == 1.0
    assert _counts(metrics["polyphony_2"]) == (0, 0, 0) and metrics["polyphony_2"]["f20"] is None
    assert metrics["polyphony_2"]["frames"] == 0
    assert _counts(metrics["polyphony_3"]) == (2, 0, 1)
    assert metrics["polyphony_3"]["f20"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert metrics["polyphony_3"]["le_deg"] == pytest.approx(0.0, abs=1e-5)
    assert _counts(metrics["set"]) == (3, 1, 1)


def test_false_positives_go_to_the_predicted_visibility_and_hits_to_the_true_one():
    truth = [[_truth(CAR, 0.0, visibility=OCCLUDED), _truth(DOG, 90.0, visibility=VISIBLE)]]
    guess = [
        [
            _guess(CAR, 3.0, visibility=VISIBLE),  # hit: counted for the true visibility, occluded
            _guess(VOICE, -90.0, visibility=VISIBLE),  # false alarm: predicted visible
        ]
    ]
    metrics = _evaluate(truth, guess).metrics
    assert _counts(metrics["visibility_occluded"]) == (1, 0, 0)
    assert metrics["visibility_occluded"]["le_deg"] == pytest.approx(3.0)
    assert _counts(metrics["visibility_visible"]) == (0, 1, 1)  # voice false alarm + dog missed
    assert _counts(metrics["visibility_out_of_view"]) == (0, 0, 0)


def test_a_failed_pair_splits_between_the_true_and_the_predicted_visibility():
    truth = [[_truth(CAR, 0.0, visibility=OCCLUDED)]]
    guess = [[_guess(CAR, 40.0, visibility=OUT)]]
    metrics = _evaluate(truth, guess).metrics
    assert _counts(metrics["visibility_occluded"]) == (0, 0, 1)
    assert _counts(metrics["visibility_out_of_view"]) == (0, 1, 0)
    assert metrics["visibility_occluded"]["le_deg"] == pytest.approx(40.0)


def test_single_hazard_figures_read_the_most_confident_non_empty_slot():
    truth = [[], [_truth(CAR, 0.0)], [_truth(DOG, 0.0)], [_truth(CAR, 0.0), _truth(DOG, 90.0)]]
    guess = [
        [],  # nothing reported on an empty frame: right
        [_guess(DOG, 50.0, confidence=0.3), _guess(CAR, 10.0, confidence=0.6)],  # top = car, 10 deg
        [_guess(VOICE, -30.0, confidence=0.2)],  # top = voice (below threshold, still the top): wrong
        [_guess(CAR, 0.0)],  # two hazards: not a single-hazard frame
    ]
    single = _evaluate(truth, guess).metrics["single_hazard"]
    assert single["frames"] == 3
    assert single["accuracy"] == pytest.approx(2 / 3)
    assert single["located_frames"] == 2
    assert single["azimuth_error_median_deg"] == pytest.approx((10.0 + 30.0) / 2)


def test_the_single_hazard_view_scores_the_top_slot_as_a_one_answer_model():
    """A one-answer model's figures: a false alarm on the empty frame, a right class 90 deg off, a
    wrong class; a frame's direction counts only where both a hazard and an answer exist."""
    truth = [[], [_truth(CAR, 0.0)], [_truth(DOG, 0.0)]]
    guess = [
        [_guess(CAR, 180.0, confidence=0.9)],
        [_guess(CAR, 90.0, confidence=0.8)],
        [_guess(CAR, 0.0, 2.0, 0.7)],
    ]
    single = _evaluate(truth, guess).metrics["single_hazard"]
    assert single["frames"] == 3 and single["accuracy"] == pytest.approx(1 / 3)
    assert single["false_alarm_rate"] == 1.0  # the empty frame's top slot is published
    assert single["located_frames"] == 2
    assert single["azimuth_error_median_deg"] == pytest.approx((90.0 + 0.0) / 2)
    # The confidence says "a hazard is there": one bin per confidence, |present - confidence| = 0.9,
    # 0.2, 0.3; the empty frame is the most confident, so the confidence ranks every frame wrongly.
    assert single["ece"] == pytest.approx((0.9 + 0.2 + 0.3) / 3)
    assert single["confidence_auroc"] == pytest.approx(0.0)
    assert single["macro_f1"] == pytest.approx((0.0 + 0.5 + 0.0) / 3)  # none, car, dog


def test_weight_pairs_hold_the_matched_hazards_in_view():
    truth = [[_truth(CAR, 0.0, occlusion=0.8), _truth(DOG, 90.0, occlusion=float("nan"), visibility=OUT)]]
    guess = [[_guess(DOG, 95.0, audio_weight=0.9), _guess(CAR, 60.0, audio_weight=0.7)]]
    pairs = _evaluate(truth, guess).weight_pairs
    np.testing.assert_allclose(pairs, [[0.8, 0.7]])  # the car's pair failed the angle but is matched


def test_the_evaluation_unpacks_and_names_classes_by_id_without_names():
    outputs, labels = _outputs_and_labels([[_truth(DOG, 0.0)]], [[_guess(DOG, 0.0)]])
    metrics, flat, pairs = evaluate_hazard_sets(outputs, labels)
    assert metrics["set"]["per_class_f20"] == {"1": None, "2": 1.0}
    assert flat["set/f20"] == 1.0 and pairs.shape == (1, 2)
    with pytest.raises(ValueError, match="hazard_class"):
        evaluate_hazard_sets(outputs, labels, class_names=["none", "car"])


def test_flat_metrics_have_the_logging_names():
    truth = [
        [_truth(CAR, 0.0, visibility=OCCLUDED)],
        [_truth(CAR, 0.0), _truth(DOG, 9.0), _truth(VOICE, 50.0)],
    ]
    guess = [[_guess(CAR, 0.0)], [_guess(CAR, 0.0), _guess(DOG, 9.0), _guess(VOICE, 50.0)]]
    flat = _evaluate(truth, guess).flat
    for key in (
        "set/f20",
        "set/le_deg",
        "set/rde",
        "visibility_occluded/f20",
        "polyphony_3/f20",
        "single_hazard/accuracy",
    ):
        assert key in flat and isinstance(flat[key], float), key
    assert flat["polyphony_3/f20"] == 1.0
    assert "visibility_out_of_view/f20" not in flat  # None: nothing to score


def test_mismatched_shapes_are_rejected():
    good = SetPredictions.from_outputs(*_outputs_and_labels([[_truth(CAR, 0.0)]], [[_guess(CAR, 0.0)]]))
    with pytest.raises(ValueError, match="distance_pred"):
        SetPredictions(**{**vars(good), "distance_pred": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="class_true"):
        SetPredictions(**{**vars(good), "class_true": np.zeros(3, np.int64)})


def test_the_weight_plot_is_written_for_one_or_several_variants(tmp_path, monkeypatch):
    figures = []
    save = plots._save

    def keep(fig, path):
        figures.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    rng = np.random.default_rng(0)
    occlusion = rng.uniform(0.0, 1.0, 200)
    rising = np.stack([occlusion, 0.3 + 0.6 * occlusion], axis=1)
    flat = np.stack([occlusion, np.full(200, 0.7)], axis=1)
    single = plot_weight_vs_occlusion(rising, tmp_path / "one.png")
    several = plot_weight_vs_occlusion(
        {"full": [rising[:100], rising[100:]], "concat": flat, "empty": []}, tmp_path / "plots" / "all.png"
    )
    for path in (single, several):
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    # What is drawn: one scatter of every hazard and one binned-mean line per variant, the seeds of
    # a variant pooled; the rising weight rises bin by bin, the flat one stays at 0.7.
    (one,), (all_axes,) = figures[0].axes, figures[1].axes
    assert [line.get_label() for line in one.lines] == ["model (n=200)"]
    assert [line.get_label() for line in all_axes.lines] == ["full (n=200)", "concat (n=200)", "empty (n=0)"]
    assert [len(c.get_offsets()) for c in all_axes.collections] == [200, 200, 0]
    full, concat, _ = all_axes.lines
    centres = np.linspace(0.1, 0.9, 5)
    np.testing.assert_allclose(full.get_xdata(), centres)
    np.testing.assert_allclose(full.get_ydata(), 0.3 + 0.6 * centres, atol=0.05)
    np.testing.assert_allclose(one.lines[0].get_ydata(), full.get_ydata())
    np.testing.assert_allclose(concat.get_ydata(), np.full(5, 0.7))


def test_binned_weight_averages_each_occlusion_bin():
    pairs = np.array([[0.0, 0.2], [0.1, 0.4], [0.5, 0.6], [1.0, 0.9]])
    centres, mean, count = binned_weight(pairs, bins=2)
    np.testing.assert_allclose(centres, [0.25, 0.75])
    np.testing.assert_allclose(mean, [0.3, 0.75])
    assert count.tolist() == [2, 2]


def test_the_study_table_shows_mean_and_std_of_each_variant_and_group():
    def run(f20, le_deg, rde, occluded_f20=None):
        flat = {"set/f20": f20, "set/le_deg": le_deg, "set/rde": rde}
        return flat if occluded_f20 is None else {**flat, "visibility_occluded/f20": occluded_f20}

    summary = {
        "full": mean_and_std([run(0.70, 8.0, 0.20, 0.60), run(0.74, 10.0, 0.30, 0.64)]),
        "concat": mean_and_std([run(0.60, 12.0, 0.25)]),
    }
    lines = metric_table(summary, "f20", groups=("set", "visibility_occluded")).splitlines()
    assert lines[0] == "| F20 [%] | set | occluded |"
    # 72.0 ± std(70, 74) = 2.83 (Bessel); occluded 62.0 ± 2.83
    assert lines[2] == "| full (n=2) | 72.0 ± 2.8 | 62.0 ± 2.8 |"
    assert lines[3] == "| concat (n=1) | 60.0 ± 0.0 | — |"
    both = study_table(summary, groups=("set",))
    assert "| full (n=2) | 9.0 ± 1.4 |" in both and "| full (n=2) | 0.25 ± 0.07 |" in both


def test_direction_group_puts_the_physics_baseline_beside_the_model_by_sector() -> None:
    """One-hazard frames in each sector; the model is off by 10 deg in front and 40 deg behind, the
    physics baseline by 2 deg everywhere; a frame the model misses has only a physics error; a
    two-hazard frame is left out."""
    truth = [
        [_truth(CAR, 0.0)],
        [_truth(CAR, 90.0, visibility=OUT)],
        [_truth(DOG, -90.0, visibility=OUT)],
        [_truth(DOG, 170.0, visibility=OUT)],
        [_truth(VOICE, -170.0, visibility=OUT)],
        [_truth(CAR, 10.0), _truth(DOG, -60.0)],
    ]
    guesses = [
        [_guess(CAR, 10.0)],
        [_guess(CAR, 95.0)],
        [],
        [_guess(DOG, -150.0)],
        [_guess(VOICE, 150.0)],
        [_guess(CAR, 10.0), _guess(DOG, -60.0)],
    ]
    physics_azimuth = [2.0, 92.0, -92.0, 172.0, -172.0, 100.0]
    physics = np.stack([direction_to_unit(math.radians(a), 0.0) for a in physics_azimuth]) * 0.3
    outputs, labels = _outputs_and_labels(truth, guesses)
    direction = evaluate_hazard_sets(outputs, labels, 0.5, CLASSES, physics_direction=physics).metrics[
        "direction"
    ]
    assert direction["all"]["frames"] == 5 and direction["all"]["model_located"] == 4
    assert direction["front"]["model_azimuth_error_median_deg"] == pytest.approx(10.0)
    assert direction["left"]["model_azimuth_error_median_deg"] == pytest.approx(5.0)
    assert direction["right"]["frames"] == 1 and direction["right"]["model_located"] == 0
    assert direction["right"]["model_azimuth_error_median_deg"] is None
    assert direction["right"]["physics_azimuth_error_located_median_deg"] is None  # no model answer
    assert direction["behind"]["physics_azimuth_error_located_median_deg"] == pytest.approx(2.0)
    assert direction["behind"]["frames"] == 2
    assert direction["behind"]["model_azimuth_error_median_deg"] == pytest.approx(40.0)
    for sector in ("front", "left", "right", "behind"):
        assert direction[sector]["physics_azimuth_error_median_deg"] == pytest.approx(2.0)
    assert direction["visibility_out_of_view"]["frames"] == 4
    assert "direction" not in evaluate_hazard_sets(outputs, labels, 0.5, CLASSES).metrics
    flat = evaluate_hazard_sets(outputs, labels, 0.5, CLASSES, physics_direction=physics).flat
    assert flat["direction/behind/model_azimuth_error_median_deg"] == pytest.approx(40.0)
    assert flat["direction/all/frames"] == 5.0
