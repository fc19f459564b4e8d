"""The README's results sections are generated from the committed result files (scripts/results_tables.py).

A hand edit of a generated table, a result file the README does not show and a marker without its
file all fail here, so CI catches them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "results_tables.py"
README = REPO / "README.md"
DIRECTION = REPO / "docs" / "results" / "direction_physics.json"


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location("results_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_readme_shows_what_the_result_files_hold():
    result = run_script("--check")
    assert result.returncode == 0, result.stderr


def test_a_hand_edit_fails_the_check_and_regenerating_restores_the_readme(tmp_path):
    original = README.read_text(encoding="utf-8")
    scenes = json.loads(DIRECTION.read_text(encoding="utf-8"))["summary"]["free field"]["scenes"]["all"]
    row = next(line for line in original.splitlines() if line.startswith("| free field | physics |"))
    edited_row = row.removesuffix(f"| {scenes} |") + f"| {scenes + 1} |"  # a figure typed by hand
    assert edited_row != row
    readme = tmp_path / "README.md"
    readme.write_text(original.replace(row, edited_row), encoding="utf-8")

    check = run_script("--check", "--readme", str(readme))
    assert check.returncode == 1
    assert "section 'direction_physics' differs from docs/results/direction_physics.json" in check.stderr

    assert run_script("--readme", str(readme)).returncode == 0
    assert readme.read_text(encoding="utf-8") == original


def test_a_result_file_the_readme_does_not_show_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# avi_ros\n\nno results here\n", encoding="utf-8")
    result = run_script("--check", "--readme", str(readme))
    assert result.returncode == 2
    assert "docs/results/direction_physics.json is not shown in the README" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- results:nothing -->\n<!-- /results -->\n", "'results:nothing' is not a section"),
        ("<!-- results:direction_physics -->\nopen\n", "'direction_physics' has no closing"),
    ],
)
def test_a_bad_marker_is_named_in_one_line(tmp_path, text, message):
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    result = run_script("--readme", str(readme))
    assert result.returncode == 2
    assert message in result.stderr
    assert readme.read_text(encoding="utf-8") == text


def test_the_direction_table_has_every_condition_of_the_file(tables):
    result = json.loads(DIRECTION.read_text(encoding="utf-8"))
    text = tables.render_direction(result, "docs/results/direction_physics.json")
    for condition, entry in result["summary"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {condition} | physics |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[-3] == f"{entry['physics']['all']:.1f}"
        assert cells[-1] == str(entry["scenes"]["all"])


def test_a_single_run_shows_its_plus_minus_and_n(tables):
    one = {"mean": 0.5, "std": 0.0, "n": 1}
    three = {"mean": 0.25, "std": 0.05, "n": 3}
    assert tables.mean_std_row("visual_only", [one, None], 100.0) == "| visual_only (n=1) | 50.0 ± 0.0 | — |"
    assert tables.mean_std_row("oracle", [one, three], (1.0, 100.0), 2) == (
        "| oracle | 0.50 ± 0.00 (n=1) | 25.00 ± 5.00 (n=3) |"
    )


def test_the_study_table_comes_from_the_seeds_summary_without_machine_paths(tables):
    from training.metrics import mean_and_std

    def scalars(f20: float) -> dict[str, float]:
        return {"set/f20": f20, "visibility_visible/f20": f20 + 0.1, "single_hazard/accuracy": 0.5}

    study = {
        "test": {"scenes": 600, "sounds": "recordings of /home/someone/bank/test", "seed": 23},
        "seeds": [0, 1, 2],
        "summary": {
            "full": mean_and_std([scalars(0.2), scalars(0.3), scalars(0.25)]),
            "visual_only": mean_and_std([scalars(0.0)]),
        },
    }
    text = tables.render_study(study, "docs/results/study.json")
    assert "/home/someone" not in text
    assert "| full (n=3) | 25.0 ± 5.0 | 35.0 ± 5.0 | — |" in text
    assert "| visual_only (n=1) | 0.0 ± 0.0 | 10.0 ± 0.0 | — |" in text


def test_the_study_direction_table_puts_physics_beside_the_model_when_the_study_has_it(tables):
    from training.metrics import mean_and_std

    def scalars(model: float, physics: float) -> dict[str, float]:
        out = {"set/f20": 0.1}
        for group in tables.STUDY_DIRECTION_GROUPS:
            out[f"direction/{group}/model_azimuth_error_median_deg"] = model
            out[f"direction/{group}/physics_azimuth_error_median_deg"] = physics
        return out

    study = {
        "test": {"scenes": 600, "sounds": "bank/test", "seed": 23},
        "seeds": [0, 1],
        "summary": {"full": mean_and_std([scalars(8.0, 30.0), scalars(10.0, 30.0)])},
    }
    text = tables.render_study(study, "docs/results/study.json")
    assert "| full: model (n=2) | 9.0 ± 1.4 | 9.0 ± 1.4 |" in text
    assert "| full: physics (n=2) | 30.0 ± 0.0 |" in text
    del study["summary"]["full"]["direction/all/model_azimuth_error_median_deg"]
    assert "physics (n=2)" not in tables.render_study(study, "docs/results/study.json")


def test_the_scenario_table_has_every_hazard_and_its_target(tables):
    hazard = {
        "frames": 120,
        "detected_%": 85.0,
        "class_accuracy_%": 60.0,
        "median_angular_error_deg": 7.5,
        "physics_median_angular_error_deg": 12.0,
    }
    result = {
        "model": "shipped",
        "seed": 0,
        "target": "every hazard detected in >= 80 % of its active frames",
        "scenarios": {
            "corridor": {
                "hazards": {
                    "siren": {**hazard, "meets_target": True},
                    "dog_bark": {**hazard, "detected_%": None, "meets_target": False},
                },
                "false_alarm_%": 3.0,
            }
        },
    }
    text = tables.render_scenarios(result, "docs/results/scenarios.json")
    assert "| corridor | siren | 120 | 85.0 | 60.0 | 7.5 | 12.0 | yes |" in text
    assert "| corridor | dog_bark | 120 | — | 60.0 | 7.5 | 12.0 | no |" in text
    assert "| corridor | (no hazard: false alarms) | — | 3.0 |" in text
