"""``python -m avi_ros.sounds build`` says in one line how many clips it skipped and where their list
is, instead of one line per clip on every build (too-short clips are retried each time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avi_ros.sounds import __main__ as sounds_cli
from avi_ros.sounds.build import MIN_DURATION_S, SKIPPED
from avi_ros.sounds.catalogue import CatalogueRow

RATE = 16000
SHORT_CLIPS = 3


def _rows(package_root: Path) -> list[CatalogueRow]:
    """One clip long enough to keep and ``SHORT_CLIPS`` too short to keep, written as wav files."""
    rows = []
    for index, seconds in enumerate([1.0] + [MIN_DURATION_S / 3] * SHORT_CLIPS):
        name = f"clip{index}.wav"
        tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * RATE)) / RATE)
        sf.write(str(package_root / name), tone.astype(np.float32), RATE)
        rows.append(CatalogueRow("fake-sounds", name, "car_horn", "CC0", "a tester", f"fake.clip{index}"))
    return rows


def test_skipped_clips_are_one_line_and_a_list_in_the_bank(tmp_path, monkeypatch, capsys):
    package_root = tmp_path / "package"
    package_root.mkdir()
    rows = _rows(package_root)
    monkeypatch.setattr(sounds_cli, "read_catalogue", lambda path: rows)
    monkeypatch.setattr(sounds_cli, "fetch_packages", lambda packages, cache: {"fake-sounds": package_root})
    cache = tmp_path / "cache"

    assert sounds_cli.main(["build", "--cache", str(cache)]) == 0
    err = capsys.readouterr().err
    listing = cache / "bank" / SKIPPED
    assert err.splitlines() == [
        f"avi_ros sounds: skipped {SHORT_CLIPS} clips (too short or unreadable); the list is in {listing}"
    ]
    listed = listing.read_text().splitlines()
    assert len(listed) == SHORT_CLIPS and all("shorter than" in line for line in listed)
    assert {line.split(": ")[1].split(" is ")[0] for line in listed} == {r.path for r in rows[1:]}

    monkeypatch.setattr(sounds_cli, "read_catalogue", lambda path: rows[:1])  # nothing left to skip
    assert sounds_cli.main(["build", "--cache", str(cache)]) == 0
    assert capsys.readouterr().err == "" and not listing.exists()
