"""Evaluation on the real test split: conditions, background-only false alarms, per-class tables with the
bank's recording counts, and mean ± std over several checkpoints (training seeds)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fake_bank import make_bank, tiny_scene_config

from avi_ros.geometry import direction_to_unit
from avi_ros.taxonomy import default_taxonomy
from training.evaluate import AGGREGATE
from training.evaluate import main as evaluate_main
from training.metrics import azimuth_errors_deg, false_alarm_rate, mean_and_std
from training.real_scenes import RT60_MIN_S, SNR_MAX_DB, condition_mask, shard_column

TAXONOMY = default_taxonomy()
RECORDED = [
    TAXONOMY.class_id(name) for name in ("none", "vehicle_engine", "siren", "dog_bark")
]  # in the bank


# --- metrics ------------------------------------------------------------------------------


def test_azimuth_error_wraps_and_ignores_elevation():
    predicted = direction_to_unit(np.radians([179.0, 10.0, 0.0]), np.radians([0.0, 60.0, 0.0]))
    true = direction_to_unit(np.radians([-179.0, 20.0, 90.0]), np.radians([0.0, 0.0, 0.0]))
    assert azimuth_errors_deg(predicted, true) == pytest.approx([2.0, 10.0, 90.0], abs=1e-6)


def test_false_alarms_count_confident_hazards_on_background_only():
    # Background samples 0-3: predicted none, a confident hazard, an unsure hazard, a hazard at the threshold.
    assert false_alarm_rate(np.array([0, 2, 2, 3]), np.array([0.9, 0.8, 0.3, 0.5]), 0.5) == pytest.approx(0.5)
    assert false_alarm_rate(np.array([], dtype=int), np.array([])) is None


def test_mean_and_std_over_runs_by_hand():
    runs = [{"g": {"acc": 0.5, "ece": None, "name": "x"}}, {"g": {"acc": 0.7, "ece": 0.1, "name": "y"}}]
    aggregated = mean_and_std(runs)
    assert aggregated["g"]["acc"] == pytest.approx({"mean": 0.6, "std": math.sqrt(0.02), "n": 2})
    assert aggregated["g"]["ece"] == {"mean": 0.1, "std": 0.0, "n": 1}  # None runs are left out
    assert aggregated["g"]["name"] == "x"
    assert mean_and_std([{"a": None}, {"a": None}]) == {"a": {"mean": None, "std": None, "n": 0}}


# --- training/evaluate.py --sound-dir -----------------------------------------------------


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("evaluate_real")
    bank = make_bank(root / "bank", ("test",))
    config = tiny_scene_config(root / "scenes.yaml", none_probability=0.5)
    checkpoints = [  # one slot each
        tiny_checkpoint(TAXONOMY, class_bias={1: 30.0}, confidence_bias=30.0),  # always a confident engine
        tiny_checkpoint(TAXONOMY, class_bias={0: 30.0}, confidence_bias=30.0),  # always none
        tiny_checkpoint(TAXONOMY, class_bias={3: 30.0}, confidence_bias=-30.0),  # a siren, never confident
    ]
    out = root / "out"
    argv = [
        "--checkpoint", *map(str, checkpoints), "--aggregate", "--sound-dir", str(bank / "test"),
        "--config", str(config), "--scenes", "12", "--background-scenes", "5", "--seed", "9",
        "--cache-dir", str(root / "cache"), "--out", str(out), "--device", "cpu",
    ]  # fmt: skip
    assert evaluate_main(argv) == 0
    return root, out, checkpoints


def test_real_evaluation_reports_every_condition_model_and_the_aggregate(evaluated):
    _, out, _checkpoints = evaluated
    results = json.loads((out / "metrics.json").read_text())
    assert results["bank"]["unit"] == "recordings" and results["bank"]["counts"]["siren"] == 2
    assert list(results["conditions"]) == ["default", "reverberant_noisy"]
    for entry in results["conditions"].values():
        names = list(entry["models"])
        assert len(names) == 4 and names[-1] == AGGREGATE
        assert entry["background"]["scenes"] == 5
        engine, none, unsure = (entry["background"]["models"][n]["false_alarm_rate"] for n in names[:3])
        assert (engine, none, unsure) == (1.0, 0.0, 0.0)  # confident hazard / none / below threshold
        # Real non-hazard sounds (the bank's 'none' label) among the no-hazard scenes: the same rule.
        non_hazard = entry["non_hazard"]["models"]
        assert entry["non_hazard"]["scenes"] > 0
        assert [non_hazard[n]["false_alarm_rate"] for n in names[:3]] == [1.0, 0.0, 0.0]
        aggregate = entry["background"]["models"][AGGREGATE]["false_alarm_rate"]
        assert aggregate["mean"] == pytest.approx(1 / 3) and aggregate["n"] == 3
        assert aggregate["std"] == pytest.approx(np.std([1.0, 0.0, 0.0], ddof=1))
        accuracies = [entry["models"][n]["single_hazard"]["accuracy"] for n in names[:3]]
        assert entry["models"][AGGREGATE]["single_hazard"]["accuracy"]["mean"] == pytest.approx(
            np.mean(accuracies)
        )
        silent = entry["models"][names[1]]
        assert silent["single_hazard"]["frames"] == entry["scenes"] > 0  # one hazard or none per scene
        assert silent["set"]["true_positives"] == silent["set"]["false_positives"] == 0
        # Classes without a real test recording would be procedural sounds: left out (these scenes
        # hold speech, glass_break and car_horn hazards, which the silent model would miss).
        missed = {name for name, f20 in silent["set"]["per_class_f20"].items() if f20 is not None}
        assert missed <= {"siren", "dog_bark", "vehicle_engine"}
        assert set(entry["models"][names[0]]) >= {"visibility_visible", "visibility_out_of_view", "direction"}


def test_reverberant_scenes_are_noisy_and_markdown_has_the_tables(evaluated):
    root, out, _ = evaluated
    reverberant = [d for d in (root / "cache").iterdir() if (d / "index.json").is_file()]
    assert len(reverberant) == 4  # two conditions x (hazard scenes, background-only scenes)
    noisy = 0
    for directory in reverberant:
        config = json.loads((directory / "index.json").read_text())["config"]
        class_id, snr = shard_column(directory, "class_id"), shard_column(directory, "snr_db")
        if config["wide"] is not None:  # the reverberant, noisy condition
            noisy += 1
            assert config["wide"]["rt60_range_s"][0] >= RT60_MIN_S
            assert (snr[class_id != 0] < SNR_MAX_DB).all()
            rt60 = shard_column(directory, "rt60_s")
            kept = condition_mask(directory, "reverberant_noisy")
            assert (rt60[kept] > RT60_MIN_S).all()  # rooms too small for 1.5 s are left out
            assert kept.sum() == ((rt60 > RT60_MIN_S) & np.isin(class_id, RECORDED)).sum()
        if config["none_probability"] == 1.0:
            assert (class_id == 0).all() and config["none_sound_probability"] == 0.0
    assert noisy == 2
    text = (out / "metrics.md").read_text()
    assert f"## {AGGREGATE}" in text and "RT60 > 1.5 s and SNR < 5 dB" in text
    assert "| condition | scenes | F20 | LE [deg] | RDE | single-hazard accuracy | ECE |" in text
    assert "false alarms: background only | false alarms: non-hazard sounds" in text
    assert "| class | real recordings | F20 |" in text
    assert "| siren | 2 |" in text and " ± " in text
    assert "| visibility_out_of_view |" in text


def test_bad_arguments_end_with_one_line(evaluated, tmp_path, capsys):
    root, _, checkpoints = evaluated
    code = evaluate_main(["--checkpoint", str(checkpoints[0]), "--sound-dir", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("evaluate.py: error:") and "does not exist" in err
    assert len(err.strip().splitlines()) == 1
    code = evaluate_main(["--checkpoint", str(checkpoints[0]), "--sound-dir", str(root), "--data", str(root)])
    assert code == 2 and "not both" in capsys.readouterr().err
