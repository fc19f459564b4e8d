"""The real sound bank: catalogue rules, fetching from a .deb, building the bank, splits by recording.

No network: the fetcher is run on a tiny package built here with dpkg-deb, served by a fake
apt-get on PATH that counts its calls.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avi_ros.data.sound_bank import SoundBank
from avi_ros.sounds.attribution import attribution_text
from avi_ros.sounds.build import MANIFEST, bank_file, build_bank, trim_silence
from avi_ros.sounds.catalogue import (
    ALLOWED_LICENCES,
    CATALOGUE_PATH,
    LABELS,
    WITHHELD_PACKAGES,
    CatalogueError,
    CatalogueRow,
    check_consistency,
    read_catalogue,
    select_packages,
)
from avi_ros.sounds.fetch import COMPLETE_MARKER, cache_root, extract_dir, fetch_packages
from avi_ros.sounds.splits import HELD_OUT_PACKAGES, SPLITS, assign_splits

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")


def _tone(seconds: float, rate: int = RATE, silence_s: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    pad = np.zeros(int(silence_s * rate), dtype=np.float32)
    return np.concatenate([pad, 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32), pad])


def _fake_deb(root: Path) -> Path:
    """fake-sounds_1.0_all.deb with a wav, an ogg, a too-short wav and a zip of one ogg."""
    tree = root / "tree"
    sounds = tree / "usr/share/fake"
    sounds.mkdir(parents=True)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN/control").write_text(
        "Package: fake-sounds\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n"
    )
    sf.write(str(sounds / "horn.wav"), _tone(1.0), RATE)
    sf.write(str(sounds / "wind.ogg"), _tone(2.0), RATE, format="OGG", subtype="VORBIS")
    sf.write(str(sounds / "blip.wav"), _tone(0.1), RATE)
    buffer = io.BytesIO()
    sf.write(buffer, _tone(0.8), RATE, format="OGG", subtype="VORBIS")
    with zipfile.ZipFile(sounds / "pack.pk3", "w") as archive:
        archive.writestr("sound/steps1.ogg", buffer.getvalue())
    deb = root / "fake-sounds_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)], check=True)
    return deb


def _fake_apt(bin_dir: Path, deb: Path, calls: Path) -> None:
    """An apt-get that 'downloads' by copying ``deb`` into the working folder, logging each call."""
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\ncp "{deb}" .\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def _row(path: str, label: str, recording: str) -> CatalogueRow:
    return CatalogueRow("fake-sounds", path, label, "CC0", "a tester", recording)


@needs_dpkg
def test_fetch_and_build_from_a_deb_then_a_second_run_fetches_nothing(tmp_path, monkeypatch):
    deb = _fake_deb(tmp_path / "src")
    calls = tmp_path / "calls.log"
    _fake_apt(tmp_path / "bin", deb, calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    cache = tmp_path / "cache"
    rows = [
        _row("usr/share/fake/horn.wav", "car_horn", "fake.horn"),
        _row("usr/share/fake/wind.ogg", "background", "fake.wind"),
        _row("usr/share/fake/pack.pk3!sound/steps1.ogg", "footsteps", "fake.steps"),
        _row("usr/share/fake/blip.wav", "none", "fake.blip"),
    ]

    roots = fetch_packages(["fake-sounds"], cache)
    summary = build_bank(rows, roots, cache / "bank")

    assert calls.read_text().count("download fake-sounds") == 1
    marker = cache / "extract/fake-sounds" / COMPLETE_MARKER
    assert marker.is_file()
    split_of = assign_splits(rows)
    horn = cache / "bank" / bank_file(rows[0], split_of["fake.horn"])
    audio, rate = sf.read(str(horn))
    assert rate == 24000 and audio.ndim == 1
    assert 0.95 < audio.size / rate < 1.05, "leading and trailing silence are trimmed"
    manifest = json.loads((cache / "bank" / MANIFEST).read_text())
    assert {c["recording"] for c in manifest["clips"]} == {"fake.horn", "fake.wind", "fake.steps"}
    assert any("shorter than" in reason for reason in summary.skipped), "the 0.1 s clip is skipped"
    assert "a tester" in (cache / "bank/ATTRIBUTION").read_text()

    marker_mtime = marker.stat().st_mtime_ns
    horn_mtime = horn.stat().st_mtime_ns
    fetch_packages(["fake-sounds"], cache)
    again = build_bank(rows, roots, cache / "bank")
    assert calls.read_text().count("download") == 1, "a second run downloads nothing"
    assert marker.stat().st_mtime_ns == marker_mtime, "a second run extracts nothing"
    assert horn.stat().st_mtime_ns == horn_mtime and again.converted == 0
    assert again.clips == summary.clips

    # A clip dropped from the catalogue is removed from the bank.
    build_bank(rows[1:], roots, cache / "bank")
    assert not horn.exists()


def test_build_output_loads_with_sound_bank_from_folder(tmp_path):
    root = tmp_path / "pkg"
    (root / "s").mkdir(parents=True)
    rows = []
    for i in range(5):
        sf.write(str(root / f"s/bark{i}.wav"), _tone(0.5), RATE)
        rows.append(CatalogueRow("p", f"s/bark{i}.wav", "dog_bark", "CC0", "x", f"p.bark{i}"))
    build_bank(rows, {"p": root}, tmp_path / "bank")
    counts = {s: 0 for s in SPLITS}
    for split in SPLITS:
        if (tmp_path / "bank" / split).is_dir():
            counts[split] = len(SoundBank.from_folder(tmp_path / "bank" / split, LABELS).clips["dog_bark"])
    assert counts == {"train": 3, "val": 1, "test": 1}


def test_trim_silence_keeps_the_sound_and_drops_the_padding():
    audio = _tone(0.5, 24000, silence_s=1.0)
    assert abs(trim_silence(audio, 24000).size / 24000 - 0.5) < 0.02
    assert trim_silence(np.zeros(24000, dtype=np.float32), 24000).size == 0


def test_without_apt_get_build_says_so_in_one_line_and_exits_zero(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin), "AVI_ROS_SOUNDS": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "avi_ros.sounds", "build"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "apt-get is not available" in lines[0] and "procedural sounds" in lines[0]


def test_a_bad_catalogue_is_a_clear_error_with_exit_2(tmp_path):
    bad = tmp_path / "catalogue.csv"
    bad.write_text(
        "package,path,label,licence,credit,recording,note\n"
        "minetest-data,a.ogg,growl,All-Rights-Reserved,x,r1,\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "avi_ros.sounds", "--catalogue", str(bad), "attribution"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2
    assert "withheld" in result.stderr and "growl" in result.stderr and "Traceback" not in result.stderr


# ---- the committed catalogue (no cache needed) ----


def test_committed_catalogue_rows_are_valid():
    rows = read_catalogue()  # validates licences, labels, withheld packages, path form, ids
    assert rows
    assert all(r.licence in ALLOWED_LICENCES and r.label in LABELS for r in rows)
    assert not {r.package for r in rows} & WITHHELD_PACKAGES
    assert {"none", "background"} <= {r.label for r in rows}


def test_consistency_rejects_a_recording_under_two_labels():
    rows = [_row("a.wav", "siren", "rec"), _row("b.wav", "none", "rec")]
    with pytest.raises(CatalogueError, match="recording 'rec'"):
        check_consistency(rows)


def _bank_recordings(bank: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Read from the bank's files themselves (``<split>/<label>/<recording>__<clip>.flac``):
    recording -> the splits holding its clips, and sha256 of the decoded samples -> recordings."""
    splits: dict[str, set[str]] = {}
    hashes: dict[str, set[str]] = {}
    for path in sorted(bank.glob("*/*/*.flac")):
        recording = path.name.split("__")[0]
        splits.setdefault(recording, set()).add(path.parent.parent.name)
        audio, _ = sf.read(str(path), dtype="int16")
        hashes.setdefault(hashlib.sha256(audio.tobytes()).hexdigest(), set()).add(recording)
    return splits, hashes


def _assert_each_recording_in_one_split(bank: Path) -> None:
    splits, _ = _bank_recordings(bank)
    assert splits, f"no clips in {bank}"
    assert {r: s for r, s in splits.items() if len(s) > 1} == {}


def _assert_each_sound_under_one_recording(bank: Path) -> None:
    """A copy of a sound under another recording id could put one sound on both sides of a split."""
    _, hashes = _bank_recordings(bank)
    assert [sorted(r) for r in hashes.values() if len(r) > 1] == []


def _sine(frequency_hz: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def test_a_built_bank_keeps_each_recording_in_one_split_and_each_sound_under_one_id(tmp_path):
    """Six recordings of one label, two crops each: the files land in train, val and test by
    recording; a sound catalogued again under another id (same audio, other path) is caught."""
    root = tmp_path / "pkg"
    (root / "s").mkdir(parents=True)
    rows = []
    for r in range(6):
        for crop in range(2):
            path = f"s/rec{r}_{crop}.wav"
            sf.write(str(root / path), _sine(300.0 + 100.0 * r + 37.0 * crop), RATE)
            rows.append(CatalogueRow("p", path, "dog_bark", "CC0", "x", f"p.rec{r}"))
    build_bank(rows, {"p": root}, tmp_path / "bank")
    splits, _ = _bank_recordings(tmp_path / "bank")
    assert set().union(*splits.values()) == set(SPLITS)
    _assert_each_recording_in_one_split(tmp_path / "bank")
    _assert_each_sound_under_one_recording(tmp_path / "bank")

    shutil.copy(root / "s/rec0_0.wav", root / "s/copy.wav")
    copied = [*rows, CatalogueRow("p", "s/copy.wav", "dog_bark", "CC0", "x", "p.copy")]
    build_bank(copied, {"p": root}, tmp_path / "copied")
    with pytest.raises(AssertionError, match=r"p\.copy"):
        _assert_each_sound_under_one_recording(tmp_path / "copied")


needs_real_bank = pytest.mark.skipif(
    not (cache_root() / "bank").is_dir(),
    reason="the real bank is not built here (python -m avi_ros.sounds build)",
)


@needs_real_bank
def test_the_real_bank_keeps_each_recording_in_one_split():
    _assert_each_recording_in_one_split(cache_root() / "bank")


@needs_real_bank
def test_the_real_bank_files_each_sound_under_one_recording():
    """Hedgewars ships Cutitout, Flyaway and Oops as the same audio in its Classic and Default voice
    packs; the catalogue files only the Default copies. Needs a bank built from this catalogue."""
    _assert_each_sound_under_one_recording(cache_root() / "bank")


def test_held_out_packages_are_only_in_test():
    rows = read_catalogue()
    split_of = assign_splits(rows)
    assert set(split_of) == {r.recording for r in rows}
    assert set(split_of.values()) == set(SPLITS)
    held = {r.recording for r in rows if r.package in HELD_OUT_PACKAGES}
    assert held and all(split_of[rec] == "test" for rec in held)
    trained_packages = {r.package for r in rows if split_of[r.recording] == "train"}
    assert not trained_packages & HELD_OUT_PACKAGES


def test_every_class_with_two_recordings_outside_held_out_packages_has_one_in_test():
    rows = [r for r in read_catalogue() if r.package not in HELD_OUT_PACKAGES]
    split_of = assign_splits(rows)
    for label in LABELS:
        recordings = {r.recording for r in rows if r.label == label}
        if len(recordings) >= 2:
            assert any(split_of[rec] == "test" for rec in recordings), label
            assert any(split_of[rec] == "train" for rec in recordings), label


def test_committed_attribution_matches_the_catalogue():
    assert (REPO / "ATTRIBUTION.md").read_text(encoding="utf-8") == attribution_text(read_catalogue())


def test_full_only_packages_are_left_out_of_the_default_set():
    rows = [_row("a.wav", "none", "a"), CatalogueRow("megaglest-data", "b.wav", "none", "CC0", "x", "b")]
    assert select_packages(rows, full=False) == ["fake-sounds"]
    assert select_packages(rows, full=True) == ["fake-sounds", "megaglest-data"]


def test_every_catalogued_file_exists_in_the_extracted_packages():
    rows = read_catalogue(CATALOGUE_PATH)
    cache = cache_root()
    present = {r.package for r in rows if (extract_dir(cache, r.package) / COMPLETE_MARKER).is_file()}
    if not present:
        pytest.skip(f"no extracted packages in {cache}; run `make sounds` to fetch them")
    archives: dict[Path, set[str]] = {}
    missing = []
    for row in rows:
        if row.package not in present:
            continue
        path = extract_dir(cache, row.package) / row.file_path
        if not path.is_file():
            missing.append(row.path)
        elif row.member is not None:
            if path not in archives:
                with zipfile.ZipFile(path) as archive:
                    archives[path] = set(archive.namelist())
            if row.member not in archives[path]:
                missing.append(row.path)
    assert not missing
