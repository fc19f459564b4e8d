"""Calibration out of domain: fold/unfold, AUROC, the real-scene helpers and training/calibrate.py."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_bank import make_bank, tiny_scene_config

from avi_ros.checkpoint import load_checkpoint, read_checkpoint_metadata
from avi_ros.data.sound_bank import bank_digest
from avi_ros.models.head import ImaginationHead
from avi_ros.taxonomy import default_taxonomy
from training.calibrate import main as calibrate_main
from training.calibration import (
    Calibration,
    CalibrationTargets,
    apply_calibration,
    fit_calibration,
    fold_into_head,
    unfold_from_head,
)
from training.metrics import confidence_auroc
from training.real_scenes import (
    RT60_MIN_S,
    bank_counts,
    condition_scene,
)
from training.resume_state import PROGRESS_FILE, TRAINER_STATE_FILE
from training.tables import portable_path

TAXONOMY = default_taxonomy()


# --- pieces -------------------------------------------------------------------------------


def test_confidence_auroc_by_hand_and_against_all_pairs():
    # Right answers at 0.9 and 0.3, wrong at 0.8 and 0.2: 3 of the 4 (right, wrong) pairs are ordered.
    assert confidence_auroc(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 0, 1, 0])) == pytest.approx(0.75)
    assert confidence_auroc(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)  # a tie counts half
    assert confidence_auroc(np.array([0.9, 0.1]), np.array([1, 1])) is None  # needs both outcomes
    rng = np.random.default_rng(0)
    confidence = rng.integers(0, 10, 200) / 10.0  # many ties
    correct = rng.uniform(size=200) < confidence
    right, wrong = confidence[correct], confidence[~correct]
    pairs = (right[:, None] > wrong[None, :]).mean() + 0.5 * (right[:, None] == wrong[None, :]).mean()
    assert confidence_auroc(confidence, correct) == pytest.approx(pairs)


def test_unfold_undoes_fold_exactly_enough():
    torch.manual_seed(0)
    head = ImaginationHead(16, 5).eval()
    embedding = torch.randn(8, 16)
    raw = head(embedding)
    calibration = Calibration(temperature=2.5, scale=0.4, offset=-1.2)
    fold_into_head(head, calibration)
    folded = head(embedding)
    expected_logits, expected_confidence = apply_calibration(
        calibration, raw.class_logits.detach().numpy(), raw.confidence_logit.detach().numpy()
    )
    np.testing.assert_allclose(folded.class_logits.detach().numpy(), expected_logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        folded.confidence_logit.detach().numpy(), expected_confidence, rtol=1e-5, atol=1e-5
    )
    unfold_from_head(head, calibration)
    again = head(embedding)
    torch.testing.assert_close(again.class_logits, raw.class_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again.confidence_logit, raw.confidence_logit, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="too close to 0"):
        unfold_from_head(head, Calibration(scale=0.0))


def test_fit_recovers_a_known_temperature_and_records_its_data():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0.0, 2.0, (4000, 4))
    labels = np.array([rng.choice(4, p=np.exp(z) / np.exp(z).sum()) for z in true_logits])
    logits = 3.0 * true_logits
    targets = CalibrationTargets(logits, labels, rng.normal(size=4000), np.argmax(logits, axis=1) == labels)
    fitted = fit_calibration(targets, fitted_on="a test")
    assert fitted.temperature == pytest.approx(3.0, rel=0.1)
    assert fitted.fitted_on == "a test"
    assert Calibration(**asdict(fitted)) == fitted  # what the checkpoint stores reads back


def test_reverberant_condition_is_reverberant_and_noisy_by_construction(tmp_path):
    from avi_ros.data.scene_config import SceneConfig

    bank = make_bank(tmp_path / "bank", ("test",))
    scene = condition_scene(SceneConfig(), bank / "test", "reverberant_noisy")
    assert scene.wide.snr_db_range[1] <= 5.0 and scene.wide.rt60_range_s[0] >= RT60_MIN_S
    assert scene.sound_dir == str((bank / "test").resolve()) and scene.real_sound_probability == 1.0
    background = condition_scene(SceneConfig(), bank / "test", "default", background_only=True)
    assert background.none_probability == 1.0 and background.none_sound_probability == 0.0
    assert (
        condition_scene(SceneConfig(), bank / "test", "default").room_size_max_m
        == SceneConfig().room_size_max_m
    )
    with pytest.raises(ValueError, match="condition"):
        condition_scene(SceneConfig(), bank / "test", "windy")


def test_bank_counts_use_the_manifest_recordings_else_the_clips(tmp_path):
    with_manifest = make_bank(tmp_path / "a", ("test",))
    counts, unit = bank_counts(with_manifest / "test")
    assert unit == "recordings" and counts["siren"] == 2 and counts["dog_bark"] == 1
    without = make_bank(tmp_path / "b", ("test",), manifest=False)
    counts, unit = bank_counts(without / "test")
    assert unit == "clips" and counts["siren"] == 4 and counts["dog_bark"] == 3
    before = bank_digest(without / "test")
    (without / "test" / "siren" / "extra.flac").write_bytes(
        (without / "test" / "siren").iterdir().__next__().read_bytes()
    )
    assert bank_digest(without / "test") != before  # a rebuilt bank never reuses old scenes


# --- training/calibrate.py ----------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("calibrate")
    bank = make_bank(root / "bank", ("val",))
    config = tiny_scene_config(root / "scenes.yaml")
    # One slot biased towards vehicle_engine: right on the engine scenes (matched and of the right
    # class), wrong on the others, so Platt scaling has both outcomes.
    checkpoint = tiny_checkpoint(TAXONOMY, class_bias={TAXONOMY.names.index("vehicle_engine"): 2.0})
    return root, bank, config, checkpoint


def _args(root: Path, bank: Path, config: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        "--checkpoint", str(checkpoint), "--sound-dir", str(bank / "val"), "--config", str(config),
        "--scenes", "16", "--seed", "5", "--cache-dir", str(root / "cache"), "--device", "cpu", *extra,
    ]  # fmt: skip


def test_calibrate_refits_on_real_scenes_and_rewrites_the_checkpoint(setup, capsys):
    root, bank, config, checkpoint = setup
    (checkpoint / PROGRESS_FILE).write_text(json.dumps({"epoch": 3}))
    raw_model, _ = load_checkpoint(checkpoint)
    old_weights = {k: v.clone() for k, v in raw_model.state_dict().items()}

    assert calibrate_main(_args(root, bank, config, checkpoint, "--dry-run")) == 0
    assert "dry run" in capsys.readouterr().out
    assert "calibration" not in read_checkpoint_metadata(checkpoint).extra  # left as it was

    assert calibrate_main(_args(root, bank, config, checkpoint)) == 0
    out = capsys.readouterr().out
    assert "| ECE |" in out and "| confidence AUROC |" in out and "rewrote" in out
    stored = read_checkpoint_metadata(checkpoint).extra["calibration"]
    assert set(stored) == {"temperature", "scale", "offset", "fitted_on"}
    assert (
        "real validation scenes: 10 of 16 rendered" in stored["fitted_on"]
        and portable_path((bank / "val").resolve()) in stored["fitted_on"]
    )
    assert "6 recordings" in stored["fitted_on"]  # siren 2, dog_bark, vehicle_engine, none, background
    assert stored["scale"] != 1.0  # Platt scaling was fitted: both outcomes were present
    assert json.loads((checkpoint / PROGRESS_FILE).read_text()) == {"epoch": 3}  # other files kept

    # The stored head is the raw head with the stored calibration folded in.
    model, _ = load_checkpoint(checkpoint)
    expected = raw_model.head
    fold_into_head(expected, Calibration(**stored))
    for name, value in model.head.state_dict().items():
        torch.testing.assert_close(value, expected.state_dict()[name])
    untouched = [k for k in old_weights if not k.startswith(("head.class_logits", "head.confidence"))]
    assert all(torch.equal(model.state_dict()[k], old_weights[k]) for k in untouched)

    # Refitting starts from the raw head again: same data, same calibration (not compounded).
    assert calibrate_main(_args(root, bank, config, checkpoint)) == 0
    again = read_checkpoint_metadata(checkpoint).extra["calibration"]
    for key in ("temperature", "scale", "offset"):
        assert again[key] == pytest.approx(stored[key], rel=1e-3, abs=1e-4)


def test_calibrate_refuses_bad_input_with_one_line(setup, tmp_path, capsys):
    root, bank, config, checkpoint = setup
    code = calibrate_main([*_args(root, bank, config, checkpoint)[:2], "--sound-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("calibrate.py: error:") and "does not exist" in err
    assert len(err.strip().splitlines()) == 1
    (checkpoint / TRAINER_STATE_FILE).write_bytes(b"")
    try:
        assert calibrate_main(_args(root, bank, config, checkpoint)) == 2
        assert "resumable training checkpoint" in capsys.readouterr().err
    finally:
        (checkpoint / TRAINER_STATE_FILE).unlink()
    empty = tmp_path / "empty_split"
    (empty / "siren").mkdir(parents=True)
    assert calibrate_main([*_args(root, bank, config, checkpoint)[:2], "--sound-dir", str(empty)]) == 2
    assert "no audio" in capsys.readouterr().err
