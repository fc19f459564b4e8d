"""``audio_common_msgs`` (ROS 2 Jazzy/Kilted) -> the fields of an ``avi_ros/FoaAudio``.

The released ``audio_common_msgs`` (ros-drivers/audio_common, ``ros2`` branch, 0.3.x) carries
raw PCM bytes in ``AudioDataStamped`` (``header``, ``audio.data``: ``uint8[]``) and describes
them in a separate ``AudioInfo`` (``channels``, ``sample_rate``, ``sample_format`` as a
GStreamer name such as ``S16LE``, ``bitrate``, ``coding_format``: ``wave`` or ``mp3``), which
``audio_capture`` publishes on ``audio_info`` every 5 s. Neither message says how the channels
of an ambisonic microphone are ordered or normalised, so those come from the node's parameters.

``foa_audio_view`` combines a chunk with the latest AudioInfo into a ``FoaAudioView``: the
fields ``avi_ros.sensor_decoding.decode_foa_message`` and ``SensorIntake.add_audio`` read, so
a chunk goes through the same checks, PCM decoding, ACN/SN3D conversion and resampling
(``avi_ros.audio``) as an ``avi_ros/FoaAudio``, and is counted under the same reasons.

(A different package of the same name, mgonzs13/audio_common, built from source, has
``AudioStamped`` with typed sample arrays and a PortAudio format code; it is not this one.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avi_ros.events import AUDIO, BAD_FORMAT
from avi_ros.sensor_decoding import Payload, SensorInputError

# The node's audio inputs (parameter audio.input_type): avi_ros/FoaAudio, or audio_common_msgs.
FOA_INPUT, AUDIO_COMMON_INPUT = "foa", "audio_common"
AUDIO_INPUT_TYPES = (FOA_INPUT, AUDIO_COMMON_INPUT)
# GStreamer raw-audio format names (AudioInfo.sample_format) -> avi_ros PCM formats.
SAMPLE_FORMATS = {"S16LE": "int16", "S32LE": "int32", "F32LE": "float32"}
WAVE_CODING = "wave"  # AudioInfo.coding_format of uncompressed PCM


@dataclass(frozen=True)
class AudioCommonInfo:
    """An ``audio_common_msgs/AudioInfo``: channel count, sample rate [Hz], GStreamer sample
    format, coding format (``wave``: raw PCM)."""

    channels: int
    sample_rate: int
    sample_format: str
    coding_format: str = WAVE_CODING

    @classmethod
    def from_message(cls, msg: Any) -> AudioCommonInfo:
        return cls(int(msg.channels), int(msg.sample_rate), str(msg.sample_format), str(msg.coding_format))


@dataclass(frozen=True)
class FoaAudioView:
    """The ``avi_ros/FoaAudio`` fields of an audio_common chunk (``header`` is the chunk's own)."""

    header: Any
    format: str
    sample_rate: int
    channel_count: int
    frame_sample_count: int
    channel_order: str
    normalization: str
    data: Payload


def _format_error(message: str) -> SensorInputError:
    return SensorInputError(BAD_FORMAT, message).in_stream(AUDIO)


def foa_audio_view(
    msg: Any, info: AudioCommonInfo | None, channel_order: str, normalization: str
) -> FoaAudioView:
    """An ``AudioDataStamped`` described by ``info`` -> ``FoaAudioView`` in ``channel_order``
    (``ACN``/``FuMa``) and ``normalization`` (``SN3D``/``N3D``/``FuMa``).

    ``audio.bad_format`` (``SensorInputError``) when no AudioInfo came yet, when it says mp3 or
    another coding than ``wave``, or a sample format other than ``SAMPLE_FORMATS``. The rest
    (channel count, rate, size) is checked by the FOA decoder, as for any chunk.
    """
    if info is None:
        raise _format_error("no audio_common_msgs/AudioInfo received yet: the chunk's format is unknown")
    if info.coding_format.lower() != WAVE_CODING:
        raise _format_error(
            f"AudioInfo.coding_format '{info.coding_format}' is not raw PCM; set the capture's format to "
            f"'{WAVE_CODING}'"
        )
    sample_format = SAMPLE_FORMATS.get(info.sample_format.upper())
    if sample_format is None:
        raise _format_error(
            f"AudioInfo.sample_format '{info.sample_format}' is not supported; "
            f"use one of {list(SAMPLE_FORMATS)}"
        )
    return FoaAudioView(
        header=msg.header,
        format=sample_format,
        sample_rate=info.sample_rate,
        channel_count=info.channels,
        frame_sample_count=0,  # AudioData has no count: the decoder takes what the bytes hold
        channel_order=channel_order,
        normalization=normalization,
        data=msg.audio.data,
    )
