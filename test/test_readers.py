"""STARSS23 and UrbanSound8K readers and the sound bank, on tiny fixtures written in the real formats."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from avi_ros.audio import SAMPLE_RATE
from avi_ros.data import starss23, urbansound8k
from avi_ros.data.scene import generate_scene
from avi_ros.data.scene_config import SceneConfig
from avi_ros.data.sound_bank import SoundBank
from avi_ros.geometry import CameraIntrinsics
from avi_ros.taxonomy import default_taxonomy

# ---------------------------------------------------------------- STARSS23

EQ_W, EQ_H, FPS = 128, 64, 10
RED, GREEN = (255, 0, 0), (0, 255, 0)


def _equirect_frame() -> np.ndarray:
    """RGB equirect: red patch at azimuth +90 (left), green patch at elevation +60, grey elsewhere."""
    frame = np.full((EQ_H, EQ_W, 3), 90, dtype=np.uint8)
    # azimuth +90 deg -> column (1 - 0.5) * W / 2 = W / 4; elevation 0 -> row H / 2
    frame[EQ_H // 2 - 6 : EQ_H // 2 + 6, EQ_W // 4 - 6 : EQ_W // 4 + 6] = RED
    # elevation +60 deg -> row (0.5 - 60/180) * H; azimuth 0 -> column W / 2
    row = round((0.5 - 60 / 180) * EQ_H)
    frame[row - 4 : row + 4, EQ_W // 2 - 8 : EQ_W // 2 + 8] = GREEN
    return frame


@pytest.fixture()
def starss_root(tmp_path: Path) -> Path:
    root = tmp_path / "STARSS23"
    split = "dev-train-sony"
    for folder in ("foa_dev", "metadata_dev", "video_dev"):
        (root / folder / split).mkdir(parents=True)
    name = "fold3_room21_mix001"
    n = int(1.25 * SAMPLE_RATE)
    audio = np.zeros((n, 4), dtype=np.float32)
    audio[:, 0] = np.arange(n) / n * 0.5  # a ramp in W lets the test locate every window
    sf.write(root / "foa_dev" / split / f"{name}.wav", audio, SAMPLE_RATE, subtype="FLOAT")
    rows = [
        [3, 2, 0, 90, 0],  # clapping, left
        [3, 2, 1, -90, 0],  # a second clapping source at the same time, right
        [3, 12, 0, 0, 45],  # knock, up
        [7, 0, 0, 180, -10, 250],  # female speech behind, with distance in cm
    ]
    with (root / "metadata_dev" / split / f"{name}.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    writer = cv2.VideoWriter(
        str(root / "video_dev" / split / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (EQ_W, EQ_H)
    )
    assert writer.isOpened()
    frame = cv2.cvtColor(_equirect_frame(), cv2.COLOR_RGB2BGR)
    for _ in range(12):
        writer.write(frame)
    writer.release()
    # A wav without metadata is not a recording.
    sf.write(root / "foa_dev" / split / "fold3_room21_mix002.wav", audio[:100], SAMPLE_RATE)
    return root


def test_find_recordings(starss_root):
    recordings = starss23.find_recordings(starss_root)
    assert [r.name for r in recordings] == ["fold3_room21_mix001"]
    rec = recordings[0]
    assert (rec.fold, rec.room, rec.mix, rec.split) == (3, 21, 1, "dev-train-sony")
    assert rec.fold == starss23.TRAIN_FOLD and rec.video_path is not None
    with pytest.raises(ValueError, match="unknown STARSS23 splits"):
        starss23.find_recordings(starss_root, ["dev-train-xyz"])
    with pytest.raises(FileNotFoundError, match="foa_dev"):
        starss23.find_recordings(starss_root / "foa_dev")


def test_metadata_rows_and_multi_source_labels(starss_root):
    rec = starss23.find_recordings(starss_root)[0]
    events = starss23.read_starss23_events(rec.metadata_path)
    assert len(events) == 4 and events[3].distance_m == pytest.approx(2.5) and events[0].distance_m is None
    frames = starss23.events_by_frame(events, 0, 10)
    assert len(frames[3]) == 3 and len(frames[7]) == 1 and not frames[0]
    target = starss23.multi_accdoa_target(frames)
    assert target.shape == (10, 3, 13, 3)
    np.testing.assert_allclose(target[3, 0, 2], [0, 1, 0], atol=1e-6)  # clapping source 0: left (+y)
    np.testing.assert_allclose(target[3, 1, 2], [0, -1, 0], atol=1e-6)  # clapping source 1: second track
    np.testing.assert_allclose(target[3, 0, 12], [math.cos(math.pi / 4), 0, math.sin(math.pi / 4)], atol=1e-6)
    np.testing.assert_allclose(
        target[7, 0, 0], [-math.cos(math.radians(10)), 0, -math.sin(math.radians(10))], atol=1e-6
    )
    active = np.linalg.norm(target, axis=-1) > 0.5
    assert active.sum() == 4


def test_audio_windows_carry_their_frames(starss_root):
    rec = starss23.find_recordings(starss_root)[0]
    windows = list(starss23.iter_windows(rec, window_s=0.5))
    assert [w.start_frame for w in windows] == [0, 5, 10]
    samples = int(0.5 * SAMPLE_RATE)
    assert all(w.audio.shape == (4, samples) and w.audio.dtype == np.float32 for w in windows)
    n = int(1.25 * SAMPLE_RATE)
    # The W ramp tells where each window starts; the last one is zero-padded past the end.
    assert windows[1].audio[0, 0] == pytest.approx(samples / n * 0.5, abs=1e-6)
    assert np.all(windows[2].audio[:, n - 2 * samples :] == 0)
    assert len(windows[0].frames[3]) == 3 and len(windows[1].frames[2]) == 1
    assert windows[1].target[2, 0, 0].any() and not windows[0].target[:, :, 0].any()
    overlapping = list(starss23.iter_windows(rec, window_s=0.5, hop_s=0.2))
    assert [w.start_frame for w in overlapping][:3] == [0, 2, 4]


def test_bad_metadata_row_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("0,1,0,10,0\n1,1,0,ten,0\n")
    with pytest.raises(ValueError, match=r"bad.csv:2"):
        starss23.read_starss23_events(path)
    path.write_text("0,99,0,10,0\n")
    with pytest.raises(ValueError, match="class index"):
        starss23.read_starss23_events(path)


def test_video_frame_and_perspective_crop_follow_the_azimuth_convention(starss_root):
    rec = starss23.find_recordings(starss_root)[0]
    frame = starss23.read_video_frame(rec.video_path, 0.55)
    assert frame.shape == (EQ_H, EQ_W, 3) and frame.dtype == np.uint8
    intr = CameraIntrinsics.from_fov(32, 24, math.radians(40.0))
    centre = (12, 16)

    def is_colour(pixel: np.ndarray, colour: tuple[int, int, int]) -> bool:
        return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) < 60))

    left = starss23.equirect_to_perspective(frame, math.radians(90.0), 0.0, intr)
    right = starss23.equirect_to_perspective(frame, math.radians(-90.0), 0.0, intr)
    up = starss23.equirect_to_perspective(frame, 0.0, math.radians(60.0), intr)
    ahead = starss23.equirect_to_perspective(frame, 0.0, 0.0, intr)
    assert left.shape == (24, 32, 3)
    assert is_colour(left[centre], RED) and not is_colour(right[centre], RED)
    assert is_colour(up[centre], GREEN) and not is_colour(ahead[centre], GREEN)
    # Looking a little right of the red patch puts it left of the image centre.
    shifted = starss23.equirect_to_perspective(frame, math.radians(80.0), 0.0, intr)
    red_cols = np.flatnonzero([is_colour(shifted[12, c], RED) for c in range(32)])
    assert red_cols.size and red_cols.mean() < 16
    with pytest.raises(ValueError, match="no frame"):
        starss23.read_video_frame(rec.video_path, 100.0)


# ---------------------------------------------------------------- UrbanSound8K

# (file, fsID, fold, classID): two slices of recording 100 share fold 1, as in the real set.
US8K_ROWS = [
    ("100-1-0-0.wav", 100, 1, 1),
    ("100-1-0-1.wav", 100, 1, 1),
    ("200-3-0-0.wav", 200, 2, 3),
    ("300-8-0-0.wav", 300, 3, 8),
    ("400-4-0-0.wav", 400, 4, 4),
    ("500-5-0-0.wav", 500, 5, 5),
    ("600-0-0-0.wav", 600, 6, 0),
    ("700-7-0-0.wav", 700, 7, 7),
    ("800-9-0-0.wav", 800, 8, 9),
    ("900-2-0-0.wav", 900, 9, 2),
    ("1000-6-0-0.wav", 1000, 10, 6),
]


def _write_us8k(root: Path, rows=US8K_ROWS, rate: int = 44100) -> Path:
    (root / "metadata").mkdir(parents=True)
    with (root / "metadata" / "UrbanSound8K.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"])
        for name, fs_id, fold, class_id in rows:
            writer.writerow(
                [name, fs_id, 0.0, 0.5, 1, fold, class_id, urbansound8k.URBANSOUND8K_CLASSES[class_id]]
            )
            folder = root / "audio" / f"fold{fold}"
            folder.mkdir(parents=True, exist_ok=True)
            t = np.arange(int(0.5 * rate)) / rate
            stereo = np.stack([np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 1000 * t)], axis=1) * 0.3
            sf.write(folder / name, stereo, rate)
    return root


def test_urbansound8k_metadata_and_fold_splits(tmp_path):
    root = _write_us8k(tmp_path / "UrbanSound8K")
    clips = urbansound8k.read_urbansound8k_clips(root)
    assert len(clips) == 11 and clips[0].class_name == "car_horn" and clips[0].path.is_file()
    split = urbansound8k.fold_split(clips, test_folds=[1], val_folds=[2])
    assert {c.fold for c in split.test} == {1} and {c.fold for c in split.val} == {2}
    assert {c.fold for c in split.train} == set(range(3, 11))
    assert len(split.test) == 2  # both slices of recording 100 stay together
    splits = list(urbansound8k.cross_validation_splits(clips))
    assert len(splits) == 10
    for k, s in enumerate(splits, start=1):
        folds = [{c.fold for c in part} for part in (s.train, s.val, s.test)]
        assert folds[2] == {k} and folds[1] == {k % 10 + 1}
        assert not (folds[0] & folds[1] or folds[0] & folds[2] or folds[1] & folds[2])
        ids = [{c.fs_id for c in part} for part in (s.train, s.val, s.test)]
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    with pytest.raises(ValueError, match="both test and validation"):
        urbansound8k.fold_split(clips, [1], [1])


def test_fold_split_refuses_a_recording_across_splits(tmp_path):
    rows = [*US8K_ROWS, ("100-1-0-2.wav", 100, 5, 1)]  # recording 100 leaks into fold 5
    clips = urbansound8k.read_urbansound8k_clips(_write_us8k(tmp_path / "us", rows))
    with pytest.raises(ValueError, match="leak: recording fsID 100"):
        urbansound8k.fold_split(clips, [1])


def test_urbansound8k_errors_name_the_problem(tmp_path):
    root = _write_us8k(tmp_path / "us")
    (root / "audio" / "fold3" / "300-8-0-0.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"300-8-0-0\.wav"):
        urbansound8k.read_urbansound8k_clips(root)
    (root / "metadata" / "UrbanSound8K.csv").write_text("slice_file_name,fold\nx.wav,1\n")
    with pytest.raises(ValueError, match="missing columns"):
        urbansound8k.read_urbansound8k_clips(root)


def test_clips_load_as_24k_mono(tmp_path):
    clips = urbansound8k.read_urbansound8k_clips(_write_us8k(tmp_path / "us"))
    audio = urbansound8k.load_clip(clips[0])
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - int(0.5 * SAMPLE_RATE)) <= 2
    peak_hz = np.argmax(np.abs(np.fft.rfft(audio))) * SAMPLE_RATE / audio.size
    assert peak_hz == pytest.approx(1000, abs=5)


# ---------------------------------------------------------------- sound bank


def test_sound_bank_from_urbansound8k_keeps_to_its_folds(tmp_path):
    root = _write_us8k(tmp_path / "us")
    bank = SoundBank.from_urbansound8k(root, folds=[2, 3, 4, 5])
    # fold 2 dog_bark, 3 siren, 4 drilling -> power_tool, 5 engine_idling -> vehicle_engine;
    # car_horn lives in fold 1, which is left out.
    assert sorted(bank.clips) == ["dog_bark", "power_tool", "siren", "vehicle_engine"]
    assert not bank.has("car_horn")
    clip = bank.draw("siren", np.random.default_rng(0), 2 * SAMPLE_RATE)  # longer than the clip: padded
    assert clip.shape == (2 * SAMPLE_RATE,) and np.max(np.abs(clip)) == pytest.approx(1.0)
    assert np.count_nonzero(clip) < SAMPLE_RATE
    with pytest.raises(KeyError, match="car_horn"):
        bank.draw("car_horn", np.random.default_rng(0), 100)
    assert SoundBank.from_path(root, default_taxonomy().names[1:]).has("car_horn")


def _write_tone_folder(root: Path, freq_hz: float) -> Path:
    t = np.arange(2 * 16000) / 16000
    for name in default_taxonomy().names[1:]:
        (root / name).mkdir(parents=True)
        sf.write(root / name / "tone.wav", 0.5 * np.sin(2 * np.pi * freq_hz * t), 16000)
    return root


def test_scene_uses_real_clips_from_a_class_folder(tmp_path):
    root = _write_tone_folder(tmp_path / "sounds", 3000.0)
    bank = SoundBank.from_folder(root, default_taxonomy().names[1:])
    assert len(bank.clips) == 9
    cfg = replace(
        SceneConfig().with_image_size(32, 24),
        sound_dir=str(root),
        none_probability=0.0,
        snr_db_range=(30.0, 30.0),
        second_source_probability=0.0,
    )
    s = generate_scene(4, cfg)
    spectrum = np.abs(np.fft.rfft(s.audio[0].astype(np.float64)))
    assert np.argmax(spectrum) * SAMPLE_RATE / s.audio.shape[1] == pytest.approx(3000.0, abs=3)
    with pytest.raises(ValueError, match="no audio in subfolders"):
        SoundBank.from_folder(tmp_path, ["siren"])
