"""``avi-ros predict``: windows, conventions, mono, JSON, consistency with the pipeline, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avi_ros.audio import foa_encoding_gains
from avi_ros.cli import main as cli_main
from avi_ros.geometry import CameraIntrinsics
from avi_ros.pipeline import Pipeline
from avi_ros.predict import predict_file, read_recording, window_ends
from avi_ros.taxonomy import default_taxonomy
from avi_ros.types import Frame

TAXONOMY = default_taxonomy()
RATE = 24_000
WINDOW_S = 0.5
AZIMUTH_RAD = math.radians(60.0)
ELEVATION_RAD = math.radians(10.0)


def plane_wave(seconds: float, seed: int = 0) -> np.ndarray:
    """ACN/SN3D [4, N]: band-limited noise arriving from AZIMUTH_RAD / ELEVATION_RAD."""
    rng = np.random.default_rng(seed)
    signal = np.convolve(rng.standard_normal(round(seconds * RATE)), np.hanning(9), mode="same") * 0.05
    return (foa_encoding_gains(AZIMUTH_RAD, ELEVATION_RAD)[:, None] * signal).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    sf.write(str(path), np.asarray(audio).T, rate, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint(TAXONOMY, window_s=WINDOW_S)


@pytest.fixture(scope="module")
def pipeline(checkpoint: Path) -> Pipeline:
    return Pipeline.from_checkpoint(checkpoint, device="cpu")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(["predict", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_window_ends_cover_the_file_every_hop():
    assert window_ends(24_000, 12_000, 6_000) == [12_000, 18_000, 24_000]
    assert window_ends(25_000, 12_000, 6_000) == [12_000, 18_000, 24_000]
    assert window_ends(5_000, 12_000, 6_000) == [5_000]  # shorter than a window: one, padded
    with pytest.raises(ValueError, match="hop"):
        window_ends(24_000, 12_000, 0)


def test_table_and_json_for_a_file_of_known_direction(tmp_path, capsys, checkpoint):
    audio_file = write(tmp_path / "siren.wav", plane_wave(2.2))
    out = tmp_path / "out" / "windows.json"
    code, stdout, stderr = run_cli(
        capsys, str(audio_file), "--model", str(checkpoint), "--json", str(out), "--device", "cpu"
    )
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("# ") and "4-channel FOA (ACN/SN3D)" in lines[0]
    header = lines[1].split()
    assert header == [
        "start_s",
        "end_s",
        "class",
        "p",
        "conf",
        "az_deg",
        "el_deg",
        "dist_m",
        "hazard",
        "second",
        "p2",
    ]
    rows = [line.split() for line in lines[2:]]
    assert [row[1] for row in rows] == ["0.50", "1.00", "1.50", "2.00"]  # ends every 0.5 s hop
    assert all(row[2] in TAXONOMY.names for row in rows)

    report = json.loads(out.read_text())
    assert report["classes"] == list(TAXONOMY.names)
    assert report["window_s"] == pytest.approx(WINDOW_S)
    assert len(report["windows"]) == 4
    for window, row in zip(report["windows"], rows, strict=True):
        assert sum(window["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert window["class"] == max(window["probabilities"], key=window["probabilities"].get) == row[2]
        assert -180.0 <= window["azimuth_deg"] <= 180.0
        assert f"{window['azimuth_deg']:.1f}" == row[5]
        assert 0.0 <= window["confidence"] <= 1.0


def test_each_window_equals_what_the_pipeline_returns_for_that_audio(tmp_path, pipeline):
    """Consistency, not accuracy: row k is the pipeline's estimate for the audio ending at end_k."""
    audio = plane_wave(1.7, seed=1)
    report = predict_file(write(tmp_path / "a.wav", audio), pipeline, "tiny", hop_s=0.3)
    assert [w.end_s for w in report.windows] == pytest.approx([0.5, 0.8, 1.1, 1.4, 1.7])
    for window in report.windows:
        end = round(window.end_s * RATE)
        frame = Frame(  # the node's frame when the camera reads nothing: black, no depth anywhere
            rgb=np.zeros((32, 32, 3), dtype=np.uint8),
            depth_m=np.full((32, 32), np.nan, dtype=np.float32),
            intrinsics=CameraIntrinsics.from_fov(32, 32, math.radians(60.0)),
            audio=audio[:, :end],
            sample_rate=RATE,
        )
        result = pipeline.run(frame)
        top = result.top
        assert window.top.class_name == top.class_name
        np.testing.assert_allclose(window.top.probabilities, top.class_probabilities, atol=1e-5)
        assert window.top.azimuth_deg == pytest.approx(math.degrees(top.azimuth), abs=1e-3)
        assert window.top.elevation_deg == pytest.approx(math.degrees(top.elevation), abs=1e-3)
        assert window.top.confidence == pytest.approx(top.confidence, abs=1e-5)
        assert [h.class_name for h in window.hazards] == [h.class_name for h in result.hazards]


def test_fuma_file_gives_the_ambix_answer(tmp_path, pipeline):
    acn = plane_wave(1.0, seed=2)
    fuma = np.stack([acn[0] / math.sqrt(2.0), acn[3], acn[1], acn[2]])  # W/sqrt2, X, Y, Z
    ambix = predict_file(write(tmp_path / "acn.wav", acn), pipeline, "tiny")
    converted = predict_file(
        write(tmp_path / "fuma.wav", fuma), pipeline, "tiny", channel_order="FuMa", normalization="FuMa"
    )
    assert len(ambix.windows) == len(converted.windows) == 2
    for a, b in zip(ambix.windows, converted.windows, strict=True):
        assert a.top.azimuth_deg == pytest.approx(b.top.azimuth_deg, abs=1e-2)
        np.testing.assert_allclose(a.top.probabilities, b.top.probabilities, atol=1e-4)
    # Read as ACN, the same FuMa file is another signal: the conversion did something.
    unconverted = predict_file(tmp_path / "fuma.wav", pipeline, "tiny")
    assert not np.allclose(
        unconverted.windows[0].top.probabilities, ambix.windows[0].top.probabilities, atol=1e-4
    )


def test_mono_and_resampled_short_file(tmp_path, capsys, checkpoint):
    mono = plane_wave(0.3)[0]
    path = tmp_path / "mono.flac"
    sf.write(str(path), mono, 16_000)  # 16 kHz: resampled; 0.3 s at 16 kHz is 0.45 s, under one window
    recording = read_recording(path, RATE)
    assert recording.is_mono and recording.audio.shape == (4, round(mono.size * RATE / 16_000))
    assert not recording.audio[1:].any()  # Y, Z, X silent
    out = tmp_path / "mono.json"
    code, stdout, stderr = run_cli(
        capsys, str(path), "--model", str(checkpoint), "--json", str(out), "--all-classes"
    )
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert "mono (direction unknown)" in lines[0]
    assert lines[1].split()[-len(TAXONOMY.names) :] == list(TAXONOMY.names)
    (row,) = [line.split() for line in lines[2:]]
    assert row[5] == row[6] == "nan"
    (window,) = json.loads(out.read_text())["windows"]
    assert window["azimuth_deg"] is None and window["elevation_deg"] is None
    assert window["start_s"] == 0.0 and window["end_s"] == pytest.approx(0.45, abs=1e-3)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("not_audio", "cannot read audio file"),
        ("stereo", "has 2 channels; expected 4"),
        ("three", "has 3 channels; expected 4"),
        ("empty", "holds no samples"),
        ("directory", "is not a file"),
    ],
)
def test_bad_files_end_with_one_clear_line(tmp_path, capsys, checkpoint, case, message):
    path = tmp_path / f"{case}.wav"
    if case == "not_audio":
        path.write_text("this is not audio\n")
    elif case == "stereo":
        sf.write(str(path), np.zeros((100, 2), dtype=np.float32), RATE)
    elif case == "three":
        sf.write(str(path), np.zeros((100, 3), dtype=np.float32), RATE)
    elif case == "empty":
        sf.write(str(path), np.zeros((0, 4), dtype=np.float32), RATE)
    elif case == "directory":
        path.mkdir()
    code, stdout, stderr = run_cli(capsys, str(path), "--model", str(checkpoint))
    assert code == 1
    assert stdout == ""
    assert stderr.startswith("avi-ros predict: error:") and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_missing_model_and_bad_hop_are_clear_errors(tmp_path, capsys, checkpoint):
    audio_file = write(tmp_path / "a.wav", plane_wave(0.6))
    code, _, stderr = run_cli(capsys, str(audio_file), "--model", str(tmp_path / "nowhere"))
    assert code == 1 and "checkpoint directory" in stderr and "Traceback" not in stderr
    code, _, stderr = run_cli(capsys, str(audio_file), "--model", str(checkpoint), "--hop", "0")
    assert code == 1 and "hop must be > 0" in stderr
