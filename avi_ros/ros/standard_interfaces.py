"""The node's standard interfaces beside its own messages, each optional.

- ``publish_detections``: the hazards as ``vision_msgs/Detection3DArray`` on
  ``hazards/detections`` (``avi_ros.interop.detections``), in ``target_frame`` when it is set.
- ``target_frame``: the detections are moved into it with tf2 at each frame's stamp; when the
  transform is not (yet) known they are published in the microphone frame, which their header
  then names. The hazards themselves stay in the microphone frame, whose azimuth, elevation and
  distance their fields are defined in.
- ``audio.input_type: audio_common``: ``audio_common_msgs/AudioDataStamped`` on the audio topic,
  described by the latest ``AudioInfo`` on ``audio_info`` (``avi_ros.interop.audio_common``).

Each needs a package the node does not depend on (vision_msgs, tf2_ros, audio_common_msgs).
Where one is missing at run time, the feature says so once (``log_once``) and the node goes on
without it: no detections; detections in the microphone frame; FoaAudio input.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from rclpy.lifecycle import LifecycleNode
from rclpy.qos import qos_profile_system_default
from rclpy.time import Time

from avi_ros.interop.audio_common import AUDIO_COMMON_INPUT, AudioCommonInfo, FoaAudioView, foa_audio_view
from avi_ros.interop.detections import RigidTransform, hazard_detections, transform_detection
from avi_ros.ros import conversions
from avi_ros.ros.params import NodeSettings
from avi_ros.topics import StandardTopics
from avi_ros.types import HazardEstimateData

DETECTION_ARRAY = "vision_msgs/msg/Detection3DArray"
AUDIO_DATA_STAMPED = "audio_common_msgs/msg/AudioDataStamped"
AUDIO_INFO = "audio_common_msgs/msg/AudioInfo"
STANDARD_TOPICS = StandardTopics()
TF_WARN_PERIOD_S = 5.0


def optional_message_class(msgtype: str) -> type | None:
    """The rclpy class of ``pkg/msg/Name``, or None when its package is not installed."""
    try:
        return conversions.ros_message_class(msgtype)
    except (ImportError, AttributeError):
        return None


class StandardInterfaces:
    """The optional interfaces of one configured node: created at configure, ``release``d at cleanup.

    ``log_once(key, message)`` reports a missing package (the node's ``_info_once``).
    """

    def __init__(
        self,
        node: LifecycleNode,
        settings: NodeSettings,
        class_names: Sequence[str],
        log_once: Callable[[str, str], None],
    ) -> None:
        self._node, self._settings = node, settings
        self._class_names = tuple(class_names)
        self._log_once = log_once
        self.audio_info: AudioCommonInfo | None = None  # the latest AudioInfo
        self._publisher: Any = None
        self._tf2: Any = None
        self._tf_buffer: Any = None
        self._tf_listener: Any = None
        if settings.publish_detections:
            self._create_publisher()
        if settings.target_frame and settings.target_frame != settings.microphone_frame:
            self._create_tf_listener()

    def _create_publisher(self) -> None:
        detection_array = optional_message_class(DETECTION_ARRAY)
        if detection_array is None:
            self._log_once(
                "interop.vision_msgs",
                f"vision_msgs is not installed: no {DETECTION_ARRAY} on '{STANDARD_TOPICS.detections}' "
                "(install ros-$ROS_DISTRO-vision-msgs, or set publish_detections:=false)",
            )
            return
        self._publisher = self._node.create_lifecycle_publisher(
            detection_array, STANDARD_TOPICS.detections, qos_profile_system_default
        )

    def _create_tf_listener(self) -> None:
        settings = self._settings
        try:
            self._tf2 = importlib.import_module("tf2_ros")  # optional: absent on pip-only installs
        except ImportError:
            self._log_once(
                "interop.tf2",
                f"tf2_ros is not installed: detections are published in '{settings.microphone_frame}', "
                f"not in target_frame '{settings.target_frame}'",
            )
            return
        self._tf_buffer = self._tf2.Buffer()
        self._tf_listener = self._tf2.TransformListener(self._tf_buffer, self._node, spin_thread=False)

    def release(self) -> None:
        """Mirror of the constructor: the publisher and the tf listener go."""
        if self._publisher is not None:
            self._node.destroy_lifecycle_publisher(self._publisher)
            self._publisher = None
        if self._tf_listener is not None:
            self._tf_listener.unregister()
            self._tf_listener = self._tf_buffer = None

    # --- audio_common input ----------------------------------------------------------------

    def audio_common_types(self) -> tuple[type, type] | None:
        """(AudioDataStamped, AudioInfo) when ``audio.input_type`` is audio_common and the package is
        installed; None otherwise (saying once why, when audio_common was asked for)."""
        if self._settings.audio_input_type != AUDIO_COMMON_INPUT:
            return None
        stamped, info = optional_message_class(AUDIO_DATA_STAMPED), optional_message_class(AUDIO_INFO)
        if stamped is None or info is None:
            self._log_once(
                "interop.audio_common_msgs",
                "audio.input_type is audio_common but audio_common_msgs is not installed "
                "(ros-$ROS_DISTRO-audio-common-msgs): reading avi_ros/FoaAudio instead",
            )
            return None
        return stamped, info

    def on_audio_info(self, msg: Any) -> None:
        self.audio_info = AudioCommonInfo.from_message(msg)

    def foa_view(self, msg: Any) -> FoaAudioView:
        """An AudioDataStamped as FoaAudio fields; ``SensorInputError`` (``audio.bad_format``) as
        ``avi_ros.interop.audio_common.foa_audio_view`` says."""
        order, normalization = self._settings.audio_channel_order, self._settings.audio_normalization
        return foa_audio_view(msg, self.audio_info, order, normalization)

    # --- detections ------------------------------------------------------------------------

    def publish(self, hazards: Sequence[HazardEstimateData], stamp_ns: int) -> None:
        """The frame's hazards as a Detection3DArray, in ``target_frame`` when tf2 knows it."""
        if self._publisher is None:
            return
        detections = hazard_detections(hazards, self._class_names)
        frame_id = self._settings.microphone_frame
        transform = self._lookup(stamp_ns)
        if transform is not None:
            detections = [transform_detection(d, transform) for d in detections]
            frame_id = self._settings.target_frame
        header = conversions.make_header(stamp_ns, frame_id)
        self._publisher.publish(conversions.detections_to_msg(detections, header))

    def _lookup(self, stamp_ns: int) -> RigidTransform | None:
        """target_frame <- microphone frame at ``stamp_ns``; None (warned, throttled) when unknown."""
        if self._tf_buffer is None:
            return None
        settings = self._settings
        try:
            stamped = self._tf_buffer.lookup_transform(
                settings.target_frame, settings.microphone_frame, Time(nanoseconds=stamp_ns)
            )
        except self._tf2.TransformException as exc:
            self._node.get_logger().warning(
                f"no transform {settings.microphone_frame} -> {settings.target_frame} at the frame's stamp "
                f"({exc}); detections published in {settings.microphone_frame}",
                throttle_duration_sec=TF_WARN_PERIOD_S,
            )
            return None
        return RigidTransform.from_message(stamped.transform)
