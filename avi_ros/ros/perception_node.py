"""The live perception node: FOA audio + RGB-D in; hazards, markers, occlusion mask, diagnostics out.

A LifecycleNode (``rclpy.lifecycle``) that configures and activates itself unless
``autostart:=false``:

- configure: read and check parameters, resolve the mic->camera extrinsic (tf2 where
  installed, else parameters), load the checkpoint into the core ``Pipeline`` and warm it up,
  create the publishers. A missing or invalid ``model_path`` fails here with a message that
  names the path and says how to train one.
- activate: subscribe (sensor-data QoS unless ``qos_reliability`` says otherwise), start
  the inference worker and the timers.

Data path: RGB, depth and camera_info are matched by message_filters'
ApproximateTimeSynchronizer where installed, else by the core ``ApproximateTimeSync`` with the
same rule; audio chunks and matched sets go through the core ``SensorIntake`` (shared with the
bag replay), which decodes them and feeds the ``FrameAssembler``; the assembler completes a
frame when its audio window has arrived. One worker thread runs inference on the newest complete frame
only (the assembler's one-slot mailbox), so inference never queues behind the sensors, and
sensor callbacks never wait for inference. Every bad input is counted and logged once per
reason per ``WARN_PERIOD_S``; nothing a message contains can stop the node.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_system_default
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from avi_ros.frame_assembly import ApproximateTimeSync, EventCounter, FrameAssembler
from avi_ros.geometry import MicToCamera
from avi_ros.msg import FoaAudio, HazardEstimateArray
from avi_ros.pipeline import Pipeline
from avi_ros.ros import conversions
from avi_ros.ros.diagnostics import NodeStats, diagnostic_array
from avi_ros.ros.extrinsic import lookup_extrinsic
from avi_ros.ros.params import TRAIN_HINT, NodeSettings, declare_parameters, read_settings, usage
from avi_ros.ros.qos import mismatch_callbacks, sensor_qos
from avi_ros.sensor_decoding import RGBD_INPUTS
from avi_ros.sensor_intake import SensorIntake
from avi_ros.topics import OutputTopics, SensorTopics
from avi_ros.types import Frame

try:  # message_filters is part of a full ROS install, not of the pip wheels.
    import message_filters
except ImportError:
    message_filters = None

NODE_NAME = "perception_node"
WARN_PERIOD_S = 5.0
EXPIRE_PERIOD_S = 0.05
INPUTS = SensorTopics()
OUTPUTS = OutputTopics()


class PerceptionNode(LifecycleNode):
    """See the module docstring. ``events`` counts every drop and bad input by reason."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self)
        self.events = EventCounter()
        self.events.add_listener(self._warn_throttled)
        self.stats = NodeStats()
        self.settings: NodeSettings | None = None
        self.pipeline: Pipeline | None = None
        self.assembler: FrameAssembler | None = None
        self.intake: SensorIntake | None = None
        self.configure_error = ""
        self._last_warning: dict[str, float] = {}
        self._warn_lock = threading.Lock()
        # One exclusive group per stream keeps each stream in arrival order; the streams
        # and the timers still run in parallel on the multi-threaded executor.
        self._audio_group = MutuallyExclusiveCallbackGroup()
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        # Not _publishers/_subscriptions/_timers: rclpy.Node uses those names itself.
        self._outputs: dict[str, Any] = {}
        self._sensor_subs: list[Any] = []
        self._activity_timers: list[Any] = []
        self._mf_sync: Any = None
        self._sync: ApproximateTimeSync | None = None
        self._sync_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._received_at: OrderedDict[int, float] = OrderedDict()  # rgbd stamp -> monotonic arrival
        self._jump_handle = None
        self._warned_once: set[str] = set()

    @property
    def autostart(self) -> bool:
        return bool(self.get_parameter("autostart").value)

    # --- lifecycle -------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            settings = read_settings(self)
        except ValueError as exc:
            return self._fail_configure(f"invalid parameter: {exc}")
        if not settings.model_path:
            return self._fail_configure(
                "parameter model_path is required and empty: give the checkpoint directory of a trained "
                f"model (model_path:=/path/to/checkpoint). Produce one with: {TRAIN_HINT}"
            )
        extrinsic = self._resolve_extrinsic(settings)
        threads = settings.cpu_threads or max(1, (os.cpu_count() or 2) - 1)
        torch.set_num_threads(threads)
        try:
            pipeline = Pipeline.from_checkpoint(
                settings.model_path,
                device=settings.device,
                confidence_threshold=settings.confidence_threshold,
                extrinsic=extrinsic,
                precision=settings.precision,
            )
            pipeline.warmup()
        except Exception as exc:  # any failure to load means the node cannot work: say why, stop.
            return self._fail_configure(
                f"cannot load the model checkpoint at model_path '{settings.model_path}': {exc}. "
                f"Produce a checkpoint with: {TRAIN_HINT}"
            )
        self.settings, self.pipeline = settings, pipeline
        self.assembler = FrameAssembler(pipeline.window_samples, settings.assembly, self.events)
        self.intake = SensorIntake(self.assembler, self.events)
        self._outputs = {
            "hazards": self.create_lifecycle_publisher(
                HazardEstimateArray, OUTPUTS.hazards, qos_profile_system_default
            ),
            "markers": self.create_lifecycle_publisher(
                MarkerArray, OUTPUTS.markers, qos_profile_system_default
            ),
            "mask": self.create_lifecycle_publisher(Image, OUTPUTS.mask, qos_profile_system_default),
            "diagnostics": self.create_lifecycle_publisher(
                DiagnosticArray, "/diagnostics", qos_profile_system_default
            ),
        }
        self.get_logger().info(
            f"model '{settings.model_path}' on {pipeline.device}, {pipeline.precision} "
            f"({torch.get_num_threads()} CPU threads): "
            f"classes {pipeline.taxonomy.names}, "
            f"audio window {pipeline.window_samples} samples; RGB-D sync: "
            f"{'message_filters' if message_filters else 'built-in'} (slop {settings.sync_slop_s} s)"
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.settings is not None
        self._subscribe(self.settings)
        self._stop.clear()
        self._worker = threading.Thread(target=self._inference_loop, name="avi_ros_inference", daemon=True)
        self._worker.start()
        self._activity_timers = [
            self.create_timer(EXPIRE_PERIOD_S, self._expire, callback_group=self._timer_group),
            # Diagnostics run on the steady clock, so they keep coming while a bag is paused.
            self.create_timer(
                self.settings.diagnostics_period_s,
                self._publish_diagnostics,
                callback_group=self._timer_group,
                clock=Clock(clock_type=ClockType.STEADY_TIME),
            ),
        ]
        jump_s = self.settings.assembly.backwards_reset_s
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-jump_s), on_clock_change=False),
            post_callback=self._on_time_jump,
        )
        self.get_logger().info(f"active: waiting for {', '.join(INPUTS.inputs)}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_activity()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_publishers()
        self.pipeline = self.assembler = self.intake = self.settings = None
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_activity()
        self._destroy_publishers()
        return super().on_shutdown(state)

    def start(self) -> bool:
        """configure + activate (autostart); False with the reason logged when either fails."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def _fail_configure(self, message: str) -> TransitionCallbackReturn:
        self.configure_error = message
        self.get_logger().error(message)
        return TransitionCallbackReturn.FAILURE

    def _resolve_extrinsic(self, settings: NodeSettings) -> MicToCamera:
        from_params = MicToCamera(settings.extrinsic_xyz, settings.extrinsic_rpy)
        if not settings.extrinsic_from_tf:
            return from_params
        extrinsic, source = lookup_extrinsic(
            self.context, settings.microphone_frame, settings.camera_frame, settings.tf_timeout_s
        )
        if extrinsic is None:
            self.get_logger().info(f"extrinsic from parameters extrinsic.xyz/rpy ({source})")
            return from_params
        self.get_logger().info(f"extrinsic {settings.microphone_frame} -> {settings.camera_frame} from tf2")
        return extrinsic

    def _stop_activity(self) -> None:
        self._stop.set()
        if self.assembler is not None:
            self.assembler.wake()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        for timer in self._activity_timers:
            self.destroy_timer(timer)
        self._activity_timers = []
        for sub in self._sensor_subs:
            self.destroy_subscription(sub)
        self._sensor_subs = []
        self._sync = self._mf_sync = None
        self._jump_handle = None
        if self.assembler is not None:
            self.assembler.reset()

    def _destroy_publishers(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}

    # --- subscriptions ---------------------------------------------------------------------

    def _subscribe(self, settings: NodeSettings) -> None:
        reliability = settings.qos_reliability
        image_qos = sensor_qos(reliability, settings.image_queue_depth)

        def options(topic: str) -> dict[str, Any]:
            return {
                "callback_group": self._audio_group if topic == INPUTS.audio else self._image_group,
                "event_callbacks": mismatch_callbacks(
                    self.resolve_topic_name(topic), reliability, self.get_logger().warning
                ),
            }

        audio = self.create_subscription(
            FoaAudio,
            INPUTS.audio,
            self._on_audio,
            sensor_qos(reliability, settings.audio_queue_depth),
            **options(INPUTS.audio),
        )
        self._sensor_subs = [audio]
        topics = tuple(zip(INPUTS.rgbd, (Image, Image, CameraInfo), strict=True))
        if message_filters is not None:
            filters = []
            for (topic, msg_type), name in zip(topics, RGBD_INPUTS, strict=True):
                sub = message_filters.Subscriber(
                    self, msg_type, topic, qos_profile=image_qos, **options(topic)
                )
                sub.registerCallback(lambda _msg, stream=name: self.stats.message_in(stream))
                filters.append(sub)
                self._sensor_subs.append(sub.sub)
            sync = message_filters.ApproximateTimeSynchronizer(
                filters, settings.sync_queue_size, settings.sync_slop_s
            )
            sync.registerCallback(self._on_rgbd)
            self._mf_sync = sync  # keep a reference: the synchroniser lives as long as the subscriptions
            return
        self._sync = ApproximateTimeSync(
            RGBD_INPUTS, settings.sync_queue_size, settings.sync_slop_s, self._on_rgbd, self.events
        )
        for index, ((topic, msg_type), name) in enumerate(zip(topics, RGBD_INPUTS, strict=True)):

            def on_message(msg: Any, index: int = index, name: str = name) -> None:
                self.stats.message_in(name)
                with self._sync_lock:
                    if self._sync is not None:
                        self._sync.add(index, conversions.stamp_to_ns(msg.header.stamp), msg)

            self._sensor_subs.append(
                self.create_subscription(msg_type, topic, on_message, image_qos, **options(topic))
            )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_audio(self, msg: FoaAudio) -> None:
        self.stats.message_in("audio")
        intake = self.intake
        chunk = intake.add_audio(msg, self._now_ns()) if intake is not None else None
        if chunk is not None and chunk.dropped_channels:
            self._info_once(
                "audio.hoa", f"{msg.channel_count}-channel ambisonics: using its first-order (4-channel) part"
            )

    def _on_rgbd(self, rgb_msg: Image, depth_msg: Image, info_msg: CameraInfo) -> None:
        """A synchronised set (from either synchroniser): decode, check, hand to the assembler."""
        intake = self.intake
        if intake is None:
            return
        # Noted before the assembler sees the set: the worker may finish the frame at once.
        self._received_at[conversions.stamp_to_ns(rgb_msg.header.stamp)] = time.monotonic()
        while len(self._received_at) > 16:
            self._received_at.popitem(last=False)
        intake.add_rgbd(rgb_msg, depth_msg, info_msg, self._now_ns())

    def _expire(self) -> None:
        if self.assembler is not None:
            self.assembler.expire(self._now_ns())

    def _on_time_jump(self, jump: TimeJump) -> None:
        if jump.delta.nanoseconds < 0:
            # Reset before counting, so whoever sees the count also sees empty buffers.
            self._reset_buffers()
            self.events.record("clock.time_backwards", "the ROS clock jumped backwards; buffers reset")

    def _reset_buffers(self) -> None:
        if self.assembler is not None:
            self.assembler.reset()
        with self._sync_lock:
            if self._sync is not None:
                self._sync.reset()

    # --- inference -------------------------------------------------------------------------

    def _inference_loop(self) -> None:
        """Worker: take the newest complete frame, run the pipeline, publish; never more than one queued."""
        assembler = self.assembler
        assert assembler is not None
        while not self._stop.is_set():
            frame = assembler.take_ready(timeout_s=0.2)
            if frame is None or self._stop.is_set():
                continue
            try:
                self._process(frame)
            except Exception as exc:  # a frame that breaks the model must not stop the node
                self.events.record("inference.error", f"inference failed: {exc!r}")

    def _process(self, frame: Frame) -> None:
        pipeline, settings = self.pipeline, self.settings
        assert pipeline is not None and settings is not None
        started = time.perf_counter()
        result = pipeline.run(frame)
        inference_ms = (time.perf_counter() - started) * 1e3
        header = conversions.make_header(frame.stamp_ns, settings.microphone_frame)
        self._outputs["hazards"].publish(conversions.hazards_to_msg(result.hazards, header))
        if settings.publish_markers:
            markers = conversions.hazard_markers(result.hazards, header, settings.marker_style)
            self._outputs["markers"].publish(markers)
        if settings.publish_mask:
            image_frame = self.intake.image_frame_id if self.intake is not None else ""
            mask_header = conversions.make_header(frame.stamp_ns, image_frame or settings.camera_frame)
            self._outputs["mask"].publish(
                conversions.image_to_msg(result.occlusion_mask, "mono8", mask_header)
            )
        received = self._received_at.get(frame.stamp_ns)
        end_to_end_ms = (time.monotonic() - received) * 1e3 if received is not None else inference_ms
        self.stats.frame_done(inference_ms, end_to_end_ms)

    # --- diagnostics and warnings ----------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        publisher = self._outputs.get("diagnostics")
        if publisher is None:
            return
        snapshot = self.stats.snapshot(self.events.snapshot())
        header = conversions.make_header(self._now_ns(), "")
        publisher.publish(
            diagnostic_array(
                snapshot, header, f"{self.get_name()}: perception", self.get_fully_qualified_name()
            )
        )

    def _warn_throttled(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        with self._warn_lock:
            last = self._last_warning.get(reason)
            if last is not None and now - last < WARN_PERIOD_S:
                return
            self._last_warning[reason] = now
        self.get_logger().warning(f"[{reason}] {detail} (count {self.events[reason]}; see /diagnostics)")

    def _info_once(self, key: str, message: str) -> None:
        if key not in self._warned_once:
            self._warned_once.add(key)
            self.get_logger().info(message)


def main(args: list[str] | None = None) -> int:
    """``ros2 run avi_ros perception_node``: returns the process exit status."""
    user_args = remove_ros_args(args if args is not None else sys.argv)[1:]
    if "-h" in user_args or "--help" in user_args:
        print(usage())
        return 0
    rclpy.init(args=args)
    node: PerceptionNode | None = None
    status = 0
    try:
        node = PerceptionNode()
        if node.autostart and not node.start():
            print(
                f"[{NODE_NAME}] start-up failed: {node.configure_error or 'see the log above'}",
                file=sys.stderr,
            )
            return 1
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # parameter type errors etc. at construction: a clear line, not a traceback
        print(f"[{NODE_NAME}] error: {exc}", file=sys.stderr)
        status = 1
    finally:
        if node is not None:
            node._stop_activity()
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
