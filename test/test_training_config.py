"""Config loading: every error names the key and what was expected; the shipped configs validate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.config import config_from_dict, load_config, read_resolved_config, write_resolved_config
from training.train import build_parser, resolve
from training.train import main as train_main
from training.typed_config import ConfigError, apply_overrides

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optim": {"batch_size": "big"}}, "optim.batch_size: expected int, got str 'big'"),
        ({"optim": {"batch_size": 1.5}}, "optim.batch_size: expected int, got float 1.5"),
        ({"optim": {"batchsize": 8}}, "optim.batchsize: unknown key; expected one of ['batch_size'"),
        ({"runtime": {"amp": "yes"}}, "runtime.amp: expected bool, got str 'yes'"),
        (
            {"optim": {"scheduler": "step"}},
            "optim.scheduler: expected one of ['cosine', 'constant'], got str 'step'",
        ),
        ({"model": {"visual": {"arch": "resnet19"}}}, "model.visual: visual_encoder.arch: expected one of"),
        ({"model": {"visual": {"image_size": 100}}}, "multiple of 32, got 100"),
        (
            {"stages": [{"lr": {"adaptr": 0.001}}]},
            "stages[0]: lr.adaptr: unknown model part; expected one of",
        ),
        (
            {"stages": [{"seld_trainable_fraction": 0.5}]},
            "lr.audio_encoder: expected > 0 when seld_trainable_fraction > 0",
        ),
        ({"stages": []}, "stages: expected at least one stage"),
        (
            {"data": {"scene": {"snr_db_range": [1, 2, 3]}}},
            "data.scene.snr_db_range: expected a list of 2 values",
        ),
        (
            {"data": {"train": {"seed": 5}, "val": {"seed": 5}}},
            "val.seed: expected a seed other than train.seed",
        ),
        ({"features": {"n_bins": 32}}, "features: feature config gives 7 x 32"),
        ({"model": {"num_classes": 4}}, "model.num_classes: expected 10"),
        ({"loss": {"direction_weight": -1}}, "loss: direction_weight: expected a weight >= 0, got -1"),
        ({"task": "seld_pretrain"}, "model.audio.accdoa_classes: expected > 0 for task seld_pretrain"),
        ([1, 2], "expected a mapping with keys"),
    ],
)
def test_errors_name_the_key_and_the_expectation(data, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data) if isinstance(data, dict) else config_from_dict({"optim": data})
    assert message in str(info.value)


def test_overrides_parse_yaml_values_and_address_list_items():
    data = {"stages": [{"epochs": 1}, {"epochs": 2}]}
    apply_overrides(
        data, ["stages.1.epochs=7", "optim.batch_size=16", "runtime.amp=false", "optim.min_lr_ratio=1e-2"]
    )
    config = config_from_dict(data)
    assert config.stages[1].epochs == 7 and config.optim.batch_size == 16
    assert config.runtime.amp is False and config.optim.min_lr_ratio == pytest.approx(0.01)
    with pytest.raises(ConfigError, match=r"stages\.5: expected a list index below 2"):
        apply_overrides(data, ["stages.5.epochs=1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(data, ["optim.batch_size"])


@pytest.mark.parametrize("name", ["default", "demo", "demo_seld", "seld_pretrain", "tiny"])
def test_shipped_configs_validate_and_round_trip(name, tmp_path):
    config = load_config(CONFIGS / f"{name}.yaml")
    write_resolved_config(config, tmp_path / "resolved.yaml")
    assert "git_commit" in yaml.safe_load((tmp_path / "resolved.yaml").read_text())
    assert read_resolved_config(tmp_path / "resolved.yaml") == config


def test_cli_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  batch_size: lots\n")
    assert train_main(["--config", str(path)]) == 2
    assert "optim.batch_size: expected int, got str 'lots'" in capsys.readouterr().err
    assert train_main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert train_main(["--config", str(CONFIGS / "tiny.yaml"), "runtime.devices=cpu"]) == 2
    assert "runtime.devices: unknown key" in capsys.readouterr().err


def test_cli_refuses_to_mix_a_new_run_into_an_existing_run_directory(tmp_path, capsys):
    (tmp_path / "tiny" / "checkpoints").mkdir(parents=True)
    overrides = [f"output_dir={tmp_path}/{{name}}", "runtime.stop_after_steps=1"]
    assert train_main(["--config", str(CONFIGS / "tiny.yaml"), *overrides]) == 2
    error = capsys.readouterr().err
    assert "already holds a run (checkpoints)" in error and "--resume" in error and "--overwrite" in error
    with pytest.raises(ConfigError, match="only"):
        resolve(build_parser().parse_args(["--resume", str(tmp_path / "tiny"), "optim.batch_size=2"]))
