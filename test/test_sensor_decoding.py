"""Sensor messages and raw payloads -> core arrays (shared by the node and the bag replay), every named
error, and the intake that feeds the frame assembler from messages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from avi_ros.audio import AudioFormatError, encode_pcm, foa_encoding_gains, resample
from avi_ros.bag.messages import MessageFactory
from avi_ros.frame_assembly import AssemblyConfig, EventCounter, FrameAssembler
from avi_ros.geometry import CameraIntrinsics
from avi_ros.sensor_decoding import (
    SensorInputError,
    check_image_message,
    check_rgbd,
    decode_color_image,
    decode_depth_image,
    decode_foa_chunk,
    decode_foa_message,
    decode_rgbd,
    intrinsics_from_camera_info,
)
from avi_ros.sensor_intake import SensorIntake

RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)


def padded(rows: np.ndarray, pad: int) -> tuple[int, bytes]:
    """Row-major bytes with ``pad`` junk bytes after each row (as drivers with aligned rows send)."""
    flat = rows.reshape(rows.shape[0], -1).view(np.uint8)
    junk = np.full((rows.shape[0], pad), 0xEE, np.uint8)
    data = np.hstack([flat, junk])
    return data.shape[1], data.tobytes()


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[..., ::-1]),
        ("rgba8", np.dstack([RGB, np.full((4, 5), 9, np.uint8)])),
        ("bgra8", np.dstack([RGB[..., ::-1], np.full((4, 5), 9, np.uint8)])),
    ],
)
def test_colour_encodings_decode_to_rgb_with_row_padding(encoding, pixels):
    step, data = padded(np.ascontiguousarray(pixels), pad=3)
    out = decode_color_image(encoding, 4, 5, step, data)
    assert out.dtype == np.uint8 and out.shape == (4, 5, 3)
    np.testing.assert_array_equal(out, RGB)


def test_mono8_is_repeated_into_three_channels():
    gray = RGB[..., 0]
    out = decode_color_image("mono8", 4, 5, 5, gray.tobytes())
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))


def test_depth_16uc1_millimetres_and_32fc1_metres_and_big_endian():
    mm = np.array([[0, 1500], [65535, 250]], np.uint16)
    np.testing.assert_allclose(decode_depth_image("16UC1", 2, 2, 4, mm.tobytes()), mm / 1000.0)
    np.testing.assert_allclose(
        decode_depth_image("16UC1", 2, 2, 4, mm.astype(">u2").tobytes(), True), mm / 1000.0
    )
    metres = np.array([[np.nan, 1.5], [np.inf, 0.25]], np.float32)
    out = decode_depth_image("32FC1", 2, 2, 8, metres.tobytes())
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, metres)  # NaN/inf stay "no reading"


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: decode_color_image("yuv422", 4, 5, 10, bytes(40)), "unsupported_encoding"),
        (lambda: decode_color_image("16UC1", 4, 5, 10, bytes(40)), "encoding_mismatch"),
        (lambda: decode_depth_image("rgb8", 4, 5, 15, bytes(60)), "encoding_mismatch"),
        (lambda: decode_color_image("rgb8", 4, 5, 15, bytes(59)), "truncated"),
        (lambda: decode_color_image("rgb8", 4, 5, 15, bytes(61)), "size_mismatch"),
        (lambda: decode_color_image("rgb8", 4, 5, 14, bytes(56)), "size_mismatch"),
        (lambda: decode_color_image("rgb8", 0, 5, 15, b""), "empty"),
        (lambda: decode_depth_image("32FC1", 2, 2, 8, b""), "empty"),
    ],
)
def test_malformed_images_name_the_reason(call, reason):
    with pytest.raises(SensorInputError) as err:
        call()
    assert err.value.reason == reason


def test_camera_info_is_scaled_to_the_image_and_rejects_bad_calibration():
    k = CameraIntrinsics.from_fov(1280, 960, 1.2)
    scaled = intrinsics_from_camera_info(k.matrix.reshape(-1), 1280, 960, (480, 640, 3))
    assert (scaled.width, scaled.height) == (640, 480)
    assert scaled.fx == pytest.approx(k.fx / 2)
    same = intrinsics_from_camera_info(k.matrix.reshape(-1), 0, 0, (960, 1280, 3))
    assert same == k
    with pytest.raises(SensorInputError, match="uncalibrated"):
        intrinsics_from_camera_info(np.zeros(9), 1280, 960, (960, 1280, 3))
    with pytest.raises(SensorInputError) as err:
        intrinsics_from_camera_info(k.matrix.reshape(-1), 1280, 960, (480, 480, 3))
    assert err.value.reason == "size_mismatch"


def plane_wave(n: int, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    mono = np.sin(2 * np.pi * 500.0 * t)
    return (foa_encoding_gains(0.6, 0.2)[:, None] * mono * 0.5).astype(np.float32)


def test_foa_chunk_decodes_converts_and_resamples():
    audio = plane_wave(960, 48_000)
    fuma = np.stack([audio[0] / np.sqrt(2.0), audio[3], audio[1], audio[2]])
    chunk = decode_foa_chunk(encode_pcm(fuma, "int32"), "int32", 48_000, 4, 960, "FuMa", "FuMa")
    assert chunk.resampled and chunk.audio.shape == (4, 480) and chunk.audio.dtype == np.float32
    # Away from the chunk edges the resampled signal matches the same wave sampled at 24 kHz.
    np.testing.assert_allclose(
        chunk.audio[:, 100:380], plane_wave(960, 48_000)[:, ::2][:, 100:380], atol=0.02
    )


def test_higher_order_ambisonics_keeps_its_first_order_part():
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (9, 480)).astype(np.float32)
    chunk = decode_foa_chunk(encode_pcm(audio, "float32"), "float32", 24_000, 9, 480, "ACN", "SN3D")
    assert chunk.dropped_channels == 5
    np.testing.assert_array_equal(chunk.audio, audio[:4])


def foa_args(**kwargs) -> dict:
    """Keyword arguments of a valid 20 ms float32 FOA chunk, with ``kwargs`` replacing some."""
    return {
        "data": encode_pcm(np.zeros((4, 480)), "float32"),
        "sample_format": "float32",
        "sample_rate": 24_000,
        "channel_count": 4,
        "frame_sample_count": 480,
        "channel_order": "ACN",
        "normalization": "SN3D",
        **kwargs,
    }


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"channel_count": 2}, "bad_channels"),
        ({"channel_count": 5}, "bad_channels"),
        ({"sample_rate": 0}, "bad_rate"),
        ({"sample_format": "float64"}, "bad_format"),
        ({"frame_sample_count": 100}, "size_mismatch"),
        ({"channel_order": "SID"}, "bad_format"),
        ({"data": b""}, "empty"),
        ({"data": bytes(4 * 4 * 480 - 2)}, "truncated"),
        ({"data": encode_pcm(np.full((4, 480), np.nan), "float32")}, "non_finite"),
    ],
)
def test_bad_foa_chunks_name_the_reason(kwargs, reason):
    args = foa_args(**kwargs)
    with pytest.raises(SensorInputError) as err:
        decode_foa_chunk(**args)
    assert err.value.reason == reason


# --- messages (rosbags messages here; the node hands rclpy messages with the same fields) -------

STAMP_NS = 1_000_000_000


def rgbd_messages(height: int = 4, width: int = 5) -> tuple:
    factory = MessageFactory()
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth = np.full((height, width), 1.5, np.float32)
    intrinsics = CameraIntrinsics.from_fov(width, height, 1.0)
    return (
        factory.rgb_image(STAMP_NS, "cam", rgb),
        factory.depth_image(STAMP_NS, "cam", depth, "16UC1"),
        factory.camera_info(STAMP_NS, "cam", intrinsics),
    )


def test_an_rgbd_set_decodes_to_arrays_at_the_image_size():
    rgb_msg, depth_msg, info_msg = rgbd_messages()
    images = decode_rgbd(rgb_msg, depth_msg, info_msg)
    assert images.rgb.shape == (4, 5, 3) and images.depth_m.dtype == np.float32
    np.testing.assert_allclose(images.depth_m, 1.5)
    assert images.intrinsics == CameraIntrinsics.from_fov(5, 4, 1.0)


@pytest.mark.parametrize(
    ("part", "fields", "reason"),
    [
        (0, {"data": np.zeros(59, np.uint8)}, "rgb.truncated"),
        (0, {"encoding": "yuv422"}, "rgb.unsupported_encoding"),
        (1, {"encoding": "rgb8"}, "depth.encoding_mismatch"),
        (2, {"k": np.zeros(9)}, "camera_info.uncalibrated"),
        (1, {"height": 2, "data": np.zeros(2 * 10, np.uint8)}, "rgbd.size_mismatch"),
    ],
)
def test_a_bad_rgbd_set_is_keyed_by_the_message_at_fault(part, fields, reason):
    messages = list(rgbd_messages())
    messages[part] = dataclasses.replace(messages[part], **fields)
    with pytest.raises(SensorInputError) as err:
        decode_rgbd(*messages)
    assert err.value.reason == reason


def test_foa_message_errors_are_keyed_audio():
    message = MessageFactory().foa_audio(STAMP_NS, "mic", np.zeros((4, 480), np.float32))
    np.testing.assert_array_equal(decode_foa_message(message).audio, 0.0)
    with pytest.raises(SensorInputError) as err:
        decode_foa_message(dataclasses.replace(message, channel_count=2))
    assert err.value.reason == "audio.bad_channels"


def _audio_then_rgbd_messages(intake: SensorIntake, factory: MessageFactory, audio: np.ndarray) -> tuple:
    """Feed ``intake`` 100 ms of contiguous 20 ms chunks of ``audio``; return RGB, depth and
    camera-info messages stamped 60 ms in, and that stamp, for the test to add."""
    for k in range(5):
        chunk = factory.foa_audio(STAMP_NS + k * 20_000_000, "mic", audio)
        assert intake.add_audio(chunk, STAMP_NS) is not None
    rgb_msg, depth_msg, info_msg = rgbd_messages()
    frame_stamp = STAMP_NS + 60_000_000
    for message in (rgb_msg, depth_msg, info_msg):
        message.header.stamp = factory.header(frame_stamp, "cam").stamp
    return rgb_msg, depth_msg, info_msg, frame_stamp


def test_intake_feeds_the_assembler_and_counts_bad_messages():
    factory, events = MessageFactory(), EventCounter()
    assembler = FrameAssembler(480, AssemblyConfig(), events)
    intake = SensorIntake(assembler, events)
    audio = plane_wave(480, 24_000)
    rgb_msg, depth_msg, info_msg, frame_stamp = _audio_then_rgbd_messages(intake, factory, audio)
    assert intake.add_rgbd(rgb_msg, depth_msg, info_msg, frame_stamp)
    frame = assembler.take_ready()
    assert frame is not None and frame.stamp_ns == frame_stamp
    np.testing.assert_allclose(frame.audio, audio, atol=1e-6)  # the window ending at the frame stamp
    assert (intake.microphone_frame_id, intake.image_frame_id) == ("mic", "cam")

    bad_audio = dataclasses.replace(factory.foa_audio(STAMP_NS, "mic", audio), format="float64")
    assert intake.add_audio(bad_audio, STAMP_NS) is None
    fast = factory.foa_audio(STAMP_NS + 100_000_000, "mic", np.repeat(audio, 2, axis=1))
    assert intake.add_audio(dataclasses.replace(fast, sample_rate=48_000), STAMP_NS) is not None
    assert not intake.add_rgbd(rgb_msg, rgbd_messages(2, 5)[1], info_msg, frame_stamp)
    assert events.snapshot() == {"audio.bad_format": 1, "audio.resampled": 1, "rgbd.size_mismatch": 1}
    assert assembler.take_ready() is None


# --- hostile input (issue 12: found by fuzzing the node) ---------------------------------------


@pytest.mark.parametrize("rate", [48_000_001, 4_294_967_295, 1, 7_999])
def test_absurd_sample_rates_are_rejected_before_any_resampling(rate):
    with pytest.raises(SensorInputError) as err:
        decode_foa_chunk(**foa_args(sample_rate=rate))
    assert err.value.reason == "bad_rate"
    with pytest.raises(AudioFormatError) as err:
        resample(np.zeros((4, 480), np.float32), rate, 24_000)
    assert err.value.reason == "bad_rate"


@pytest.mark.parametrize("rate", [8_000, 44_100, 96_000, 768_000])
def test_real_microphone_rates_are_resampled(rate):
    chunk = decode_foa_chunk(
        **foa_args(
            sample_rate=rate,
            data=encode_pcm(np.zeros((4, rate // 50)), "float32"),
            frame_sample_count=rate // 50,
        )
    )
    assert chunk.resampled and chunk.audio.shape == (4, 480)


def test_float_audio_far_beyond_full_scale_is_rejected_as_out_of_range():
    loud = np.full((4, 480), 1e20)
    with pytest.raises(SensorInputError) as err:
        decode_foa_chunk(**foa_args(data=encode_pcm(loud, "float32")))
    assert err.value.reason == "out_of_range"
    hot = np.full((4, 480), 2.0)  # clipping a little over full scale is still audio
    np.testing.assert_array_equal(decode_foa_chunk(**foa_args(data=encode_pcm(hot, "float32"))).audio, 2.0)


@pytest.mark.parametrize(
    ("k", "reason"),
    [
        ([1e-30, 0, 2.5, 0, 1e-30, 2, 0, 0, 1], "bad_focal"),  # a field of view of 180 deg
        ([1e30, 0, 2.5, 0, 1e30, 2, 0, 0, 1], "bad_focal"),  # of 0 deg
        ([4, 0, 1e9, 0, 4, 2, 0, 0, 1], "bad_principal_point"),
        ([4, 0, 2.5, 0, np.nan, 2, 0, 0, 1], "invalid"),
    ],
)
def test_implausible_intrinsics_are_rejected(k, reason):
    with pytest.raises(SensorInputError) as err:
        intrinsics_from_camera_info(np.array(k, np.float64), 5, 4, (4, 5, 3))
    assert err.value.reason == reason


@pytest.mark.parametrize(("height", "width"), [(1, 10_000), (10_000, 1), (9000, 9000)])
def test_images_no_camera_makes_are_rejected_from_the_header(height, width):
    class Sized:  # the size of a payload that is never read
        def __len__(self) -> int:
            return height * width * 3

    with pytest.raises(SensorInputError) as err:
        decode_color_image("rgb8", height, width, width * 3, Sized())
    assert err.value.reason == "bad_shape"


def test_checking_a_set_reads_its_headers_only_and_decoding_converts_the_pixels():
    rgb_msg, depth_msg, info_msg = rgbd_messages()
    rgbd = check_rgbd(rgb_msg, depth_msg, info_msg)
    assert rgbd.stamp_ns == STAMP_NS and rgbd.warnings == ()
    assert rgbd.intrinsics == CameraIntrinsics.from_fov(5, 4, 1.0)
    images = rgbd.decode()
    np.testing.assert_array_equal(images.rgb, decode_rgbd(rgb_msg, depth_msg, info_msg).rgb)


def with_stamp(message, nanosec: int):
    stamp = dataclasses.replace(message.header.stamp, nanosec=nanosec)
    return dataclasses.replace(message, header=dataclasses.replace(message.header, stamp=stamp))


@pytest.mark.parametrize("part", range(3))
def test_a_nanosec_beyond_one_second_is_a_bad_stamp(part):
    messages = list(rgbd_messages())
    messages[part] = with_stamp(messages[part], 4_294_967_295)
    stream = ("rgb", "depth", "camera_info")[part]
    with pytest.raises(SensorInputError) as err:
        check_rgbd(*messages)
    assert err.value.reason == f"{stream}.bad_stamp"
    with pytest.raises(SensorInputError) as err:
        check_image_message(part, messages[part])
    assert err.value.reason == f"{stream}.bad_stamp"


def test_intake_counts_hostile_input_and_keeps_frames_whose_unused_calibration_is_broken():
    factory, events = MessageFactory(), EventCounter()
    assembler = FrameAssembler(480, AssemblyConfig(), events)
    intake = SensorIntake(assembler, events)
    audio = plane_wave(480, 24_000)
    good = factory.foa_audio(STAMP_NS, "mic", audio)
    assert intake.add_audio(with_stamp(good, 4_294_967_295), STAMP_NS) is None
    assert intake.add_audio(dataclasses.replace(good, sample_rate=48_000_001), STAMP_NS) is None
    assert intake.add_audio(dataclasses.replace(good, sample_rate=1), STAMP_NS) is None
    rgb_msg, depth_msg, info_msg, frame_stamp = _audio_then_rgbd_messages(intake, factory, audio)
    p = np.array(info_msg.p, np.float64)
    p[3] = np.nan
    assert intake.add_rgbd(rgb_msg, depth_msg, dataclasses.replace(info_msg, p=p), frame_stamp)
    assert assembler.take_ready().stamp_ns == frame_stamp
    assert events.snapshot() == {
        "audio.bad_rate": 2,
        "audio.bad_stamp": 1,
        "camera_info.unused_calibration_invalid": 1,
    }
