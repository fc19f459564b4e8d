"""training/compare_studies.py: studies on one held-out split side by side, in the study schema."""

from __future__ import annotations

import json
from pathlib import Path

from training import compare_studies


def _study(path: Path, seed: int = 23, f20: float = 0.1) -> Path:
    study = {
        "test": {
            "directory": "/somewhere/scenes",
            "scenes": 600,
            "seed": seed,
            "sounds": f"{Path.home()}/bank/test",
        },
        "seeds": [0, 1],
        "runs": {"full": [{"seed": 0, "metrics": {}, "scalars": {"set/f20": f20}}]},
        "summary": {"full": {"set/f20": {"mean": f20, "std": 0.0, "n": 1}}},
        "weight_by_occlusion": {"full": {"occlusion": [0.1], "audio_weight": [0.5], "hazards": [3]}},
    }
    path.write_text(json.dumps(study))
    return path


def test_studies_are_combined_under_labelled_variants(tmp_path: Path) -> None:
    a, b = _study(tmp_path / "a.json", f20=0.1), _study(tmp_path / "b.json", f20=0.2)
    out = tmp_path / "out.json"
    assert (
        compare_studies.main(["--study", f"intensity={a}", "--study", f"learned={b}", "--out", str(out)]) == 0
    )
    combined = json.loads(out.read_text())
    assert list(combined["summary"]) == ["full, intensity", "full, learned"]
    assert combined["summary"]["full, learned"]["set/f20"]["mean"] == 0.2
    assert set(combined["weight_by_occlusion"]) == {"full, intensity", "full, learned"}
    assert "directory" not in combined["test"] and str(Path.home()) not in combined["test"]["sounds"]


def test_studies_on_different_test_splits_are_refused(tmp_path: Path, capsys) -> None:
    a, b = _study(tmp_path / "a.json"), _study(tmp_path / "b.json", seed=24)
    args = ["--study", f"x={a}", "--study", f"y={b}", "--out", str(tmp_path / "o.json")]
    assert compare_studies.main(args) == 2
    assert "not comparable" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
