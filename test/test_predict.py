"""``avi-ros predict``: windows, conventions, mono, JSON, consistency with the pipeline, the physics
mic check, streaming in bounded memory, the default (shipped) model, device errors and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avi_ros import shipped_model
from avi_ros.audio import foa_encoding_gains, resample, to_acn_sn3d
from avi_ros.cli import main as cli_main
from avi_ros.geometry import CameraIntrinsics
from avi_ros.pipeline import Pipeline
from avi_ros.predict import (
    BLANK_FOV_RAD,
    FoaStream,
    open_audio_file,
    predict_file,
    prepare_prediction,
    read_foa,
    window_ends,
)
from avi_ros.taxonomy import default_taxonomy
from avi_ros.types import Frame

TAXONOMY = default_taxonomy()
RATE = 24_000
WINDOW_S = 0.5
AZIMUTH_RAD = math.radians(60.0)
ELEVATION_RAD = math.radians(10.0)
MODEL_COLUMNS = ["start_s", "end_s", "class", "p", "conf", "az_deg", "el_deg", "dist_m", "hazard"]
PHYSICS_COLUMNS = ["phys_az", "phys_el", "phys_conf", "level_dbfs"]


def plane_wave(
    seconds: float, seed: int = 0, azimuth_rad: float = AZIMUTH_RAD, rate: int = RATE
) -> np.ndarray:
    """ACN/SN3D [4, N]: band-limited noise arriving from ``azimuth_rad`` / ELEVATION_RAD."""
    rng = np.random.default_rng(seed)
    signal = np.convolve(rng.standard_normal(round(seconds * rate)), np.hanning(9), mode="same") * 0.05
    return (foa_encoding_gains(azimuth_rad, ELEVATION_RAD)[:, None] * signal).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    sf.write(str(path), np.asarray(audio).T, rate, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint(TAXONOMY, window_s=WINDOW_S)


@pytest.fixture(scope="module")
def pipeline(checkpoint: Path) -> Pipeline:
    return Pipeline.from_checkpoint(checkpoint, device="cpu")


@pytest.fixture
def no_shipped_model(tmp_path, monkeypatch) -> Path:
    """The shipped model directory points at an empty place, whether or not one is installed."""
    missing = tmp_path / "shipped_model_absent"
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", missing)
    return missing


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
    assert "\r" not in stderr  # no progress bar when stderr is not a terminal
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("# ") and "4-channel FOA (ACN/SN3D)" in lines[0]
    assert lines[1].split() == [*MODEL_COLUMNS, *PHYSICS_COLUMNS, "second", "p2"]
    rows = [line.split() for line in lines[2:]]
    assert [row[1] for row in rows] == ["0.50", "1.00", "1.50", "2.00"]  # ends every 0.5 s hop
    assert all(row[2] in TAXONOMY.names for row in rows)
    for row in rows:  # the physics reads the true direction, whatever the untrained model says
        assert float(row[9]) == pytest.approx(60.0, abs=1.0) and float(row[10]) == pytest.approx(
            10.0, abs=1.0
        )
        assert float(row[11]) > 0.95

    report = json.loads(out.read_text())
    assert report["classes"] == list(TAXONOMY.names)
    assert report["window_s"] == pytest.approx(WINDOW_S)
    assert report["model"] == str(checkpoint)
    assert len(report["windows"]) == 4
    level = 10 * math.log10(float(np.mean(plane_wave(2.2)[0].astype(np.float64) ** 2)))
    for window, row in zip(report["windows"], rows, strict=True):
        assert sum(window["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert window["class"] == max(window["probabilities"], key=window["probabilities"].get) == row[2]
        assert -180.0 <= window["azimuth_deg"] <= 180.0
        assert f"{window['azimuth_deg']:.1f}" == row[5]
        assert 0.0 <= window["confidence"] <= 1.0
        physics = window["physics"]
        assert sorted(physics) == ["azimuth_deg", "confidence", "elevation_deg", "level_dbfs"]
        assert f"{physics['azimuth_deg']:.1f}" == row[9]
        assert physics["level_dbfs"] == pytest.approx(level, abs=0.5)


def test_each_window_equals_what_the_pipeline_returns_for_that_audio(tmp_path, pipeline):
    """Consistency, not accuracy: row k is the pipeline's estimate for the audio ending at end_k."""
    audio = plane_wave(1.7, seed=1)
    report = predict_file(write(tmp_path / "a.wav", audio), pipeline, "tiny", hop_s=0.3)
    assert [w.end_s for w in report.windows] == pytest.approx([0.5, 0.8, 1.1, 1.4, 1.7])
    for window in report.windows:
        end = round(window.end_s * RATE)
        # The node's frame when the camera reads nothing: black, no depth anywhere, the blank
        # camera's field of view (the rays of the view tokens the model reads).
        frame = Frame(
            rgb=np.zeros((32, 32, 3), dtype=np.uint8),
            depth_m=np.full((32, 32), np.nan, dtype=np.float32),
            intrinsics=CameraIntrinsics.from_fov(32, 32, BLANK_FOV_RAD),
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
        assert a.physics.azimuth_deg == pytest.approx(b.physics.azimuth_deg, abs=1e-3)
        assert b.physics.azimuth_deg == pytest.approx(60.0, abs=1.0)
    # Read as ACN, the same FuMa file is another signal: the conversion did something.
    unconverted = predict_file(tmp_path / "fuma.wav", pipeline, "tiny")
    assert not np.allclose(
        unconverted.windows[0].top.probabilities, ambix.windows[0].top.probabilities, atol=1e-4
    )
    assert abs(unconverted.windows[0].physics.azimuth_deg - 60.0) > 10.0


def test_mono_and_resampled_short_file(tmp_path, capsys, checkpoint):
    mono = plane_wave(0.3)[0]
    path = tmp_path / "mono.flac"
    sf.write(str(path), mono, 16_000)  # 16 kHz: resampled; 0.3 s at 16 kHz is 0.45 s, under one window
    assert open_audio_file(path).is_mono
    audio = read_foa(path, RATE)
    assert audio.shape == (4, round(mono.size * RATE / 16_000))
    assert not audio[1:].any()  # Y, Z, X silent
    out = tmp_path / "mono.json"
    code, stdout, stderr = run_cli(
        capsys, str(path), "--model", str(checkpoint), "--json", str(out), "--all-classes"
    )
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert "mono (direction unknown)" in lines[0]
    assert lines[1].split()[-len(TAXONOMY.names) :] == list(TAXONOMY.names)
    (row,) = [line.split() for line in lines[2:]]
    assert row[5] == row[6] == "nan"  # the model's direction
    assert row[9] == row[10] == "nan" and row[11] == "0.00"  # the physics has none either
    (window,) = json.loads(out.read_text())["windows"]
    assert window["azimuth_deg"] is None and window["elevation_deg"] is None
    assert window["physics"]["azimuth_deg"] is None and window["physics"]["level_dbfs"] < 0
    assert window["start_s"] == 0.0 and window["end_s"] == pytest.approx(0.45, abs=1e-3)


@pytest.mark.parametrize("file_rate", [24_000, 48_000, 44_100])
def test_block_reader_equals_reading_and_resampling_the_whole_file(tmp_path, file_rate):
    audio = np.random.default_rng(4).uniform(-0.5, 0.5, (4, round(3.3 * file_rate))).astype(np.float32)
    path = write(tmp_path / "a.wav", audio, file_rate)
    whole = resample(to_acn_sn3d(audio, "FuMa", "FuMa"), file_rate, RATE)
    stream = FoaStream(open_audio_file(path), RATE, "FuMa", "FuMa", block_frames=5_000)
    blocks = list(stream.blocks())
    assert len(blocks) > 10
    assert stream.num_samples == whole.shape[1]
    np.testing.assert_allclose(np.concatenate(blocks, axis=1), whole, atol=1e-5)
    window, hop = 12_000, 7_000
    ends = window_ends(whole.shape[1], window, hop)
    got = list(
        FoaStream(open_audio_file(path), RATE, "FuMa", "FuMa", block_frames=5_000).windows(window, hop)
    )
    assert [end for end, _ in got] == ends
    for end, chunk in got:
        np.testing.assert_allclose(chunk, whole[:, end - window : end], atol=1e-5)


def test_a_long_file_streams_in_bounded_memory(tmp_path):
    """The reader's peak holding is set by the block and the window, not by the file's length."""
    peaks = {}
    for seconds in (5.0, 20.0):
        path = tmp_path / f"{seconds:g}s.wav"
        sf.write(str(path), plane_wave(seconds, rate=48_000).T, 48_000, subtype="PCM_16")
        stream = FoaStream(open_audio_file(path), RATE, block_frames=8_192)
        count = sum(1 for _ in stream.windows(RATE, RATE // 2))
        assert count == len(window_ends(stream.num_samples, RATE, RATE // 2))
        peaks[seconds] = stream.peak_held_samples
    # Four times the file, the same memory (up to where the windows fall in the last block read).
    assert abs(peaks[20.0] - peaks[5.0]) <= 8_192 // 2
    bound = RATE + 2 * 8_192 + 4 * 8_192 // 2  # window + block at 48 kHz + its resampled copy, with margins
    assert 0 < peaks[20.0] <= bound < 20.0 * RATE / 4


def test_windows_come_out_before_the_file_is_read(tmp_path, pipeline):
    path = write(tmp_path / "long.wav", plane_wave(12.0, seed=5))
    job = prepare_prediction(path, pipeline, "tiny", hop_s=0.5, block_frames=4_096)
    first = next(job.run(batch_size=2))
    assert first.end_s == pytest.approx(WINDOW_S) and first.top is not None
    assert job.stream.peak_held_samples < 12.0 * RATE / 10  # only the start of the file was read


def test_mic_check_needs_no_model_and_reads_left_and_right(tmp_path, capsys, no_shipped_model):
    rate = 48_000
    left = plane_wave(2.0, seed=6, azimuth_rad=math.radians(90.0), rate=rate)
    right = plane_wave(2.0, seed=7, azimuth_rad=math.radians(-90.0), rate=rate)
    path = write(tmp_path / "left_then_right.wav", np.concatenate([left, right], axis=1), rate)
    out = tmp_path / "mic.json"
    code, stdout, stderr = run_cli(capsys, str(path), "--mic-check", "--json", str(out), "--hop", "1.0")
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert "mic check (physics only, no model)" in lines[0]
    assert lines[1].split() == ["start_s", "end_s", *PHYSICS_COLUMNS]
    rows = [[float(v) for v in line.split()] for line in lines[2:]]
    assert [row[1] for row in rows] == [1.0, 2.0, 3.0, 4.0]
    # Windows 1 and 2 hear the left source (+90), 4 the right one (-90); window 3 straddles both.
    for row in rows[:2]:
        assert row[2] == pytest.approx(90.0, abs=1.0) and row[4] > 0.95
    assert rows[3][2] == pytest.approx(-90.0, abs=1.0)
    report = json.loads(out.read_text())
    assert report["model"] is None and report["classes"] == [] and report["window_s"] == 1.0
    assert all(set(w) == {"start_s", "end_s", "physics"} for w in report["windows"])
    assert report["windows"][0]["physics"]["azimuth_deg"] == pytest.approx(90.0, abs=1.0)


def test_without_model_the_shipped_model_is_used_from_any_directory(
    tmp_path, capsys, checkpoint, monkeypatch
):
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", checkpoint)
    audio_file = write(tmp_path / "a.wav", plane_wave(1.0))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, stdout, stderr = run_cli(capsys, str(audio_file), "--device", "cpu")
    assert code == 0, stderr
    assert f"model {checkpoint}" in stdout.splitlines()[0]


def test_missing_shipped_model_says_so_and_does_not_ask_to_train(tmp_path, capsys, no_shipped_model):
    audio_file = write(tmp_path / "a.wav", plane_wave(0.6))
    code, stdout, stderr = run_cli(capsys, str(audio_file))
    assert code == 1 and stdout == ""
    assert "shipped model is missing" in stderr and str(no_shipped_model) in stderr
    assert "train one" not in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("available", "count", "device", "message"),
    [
        (False, 0, "cuda:0", "CUDA is not available"),
        (False, 0, "cuda", "CUDA is not available"),
        (True, 1, "cuda:3", "has 1 CUDA device(s): cuda:0..cuda:0"),
        (False, 0, "banana", "is not one of auto, cpu or cuda:N"),
    ],
)
def test_a_device_this_machine_lacks_is_named_before_the_model_loads(
    tmp_path, capsys, monkeypatch, available, count, device, message
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    audio_file = write(tmp_path / "a.wav", plane_wave(0.6))
    # The model path does not exist either: the device error comes first, so it is the one named.
    code, stdout, stderr = run_cli(
        capsys, str(audio_file), "--model", str(tmp_path / "nowhere"), "--device", device
    )
    assert code == 1 and stdout == ""
    assert message in stderr and "train" not in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("not_audio", "cannot read audio file"),
        ("stereo", "has 2 channels; expected 4"),
        ("three", "has 3 channels; expected 4"),
        ("empty", "holds no samples"),
        ("directory", "is not a file"),
        ("nan", "contains NaN or infinite samples (first at 0.500 s)"),
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
    elif case == "nan":
        audio = plane_wave(1.0)
        audio[2, RATE // 2] = np.nan
        write(path, audio)
    code, stdout, stderr = run_cli(capsys, str(path), "--model", str(checkpoint))
    assert code == 1
    if case != "nan":  # a bad sample is found while reading: the header is already out
        assert stdout == ""
    assert stderr.startswith("avi-ros predict: error:") and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_missing_model_and_bad_hop_are_clear_errors(tmp_path, capsys, checkpoint):
    audio_file = write(tmp_path / "a.wav", plane_wave(0.6))
    code, _, stderr = run_cli(capsys, str(audio_file), "--model", str(tmp_path / "nowhere"))
    assert code == 1 and "checkpoint directory" in stderr and "Traceback" not in stderr
    assert "train one" not in stderr and str(tmp_path / "nowhere") in stderr
    code, _, stderr = run_cli(capsys, str(audio_file), "--model", str(checkpoint), "--hop", "0")
    assert code == 1 and "hop must be > 0" in stderr


def test_help_describes_the_columns_the_json_and_the_left_right_check(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["predict", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for column in [*MODEL_COLUMNS, *PHYSICS_COLUMNS, "second", "p2"]:
        assert column in text
    for key in ("physics", "probabilities", "hazards", "distance_m", "level_dbfs"):
        assert key in text
    assert "left must read azimuth about +90" in " ".join(text.split())
