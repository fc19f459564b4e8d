"""The live perception node: FOA audio + RGB-D in; hazards, markers, occlusion mask, diagnostics out.

A LifecycleNode (``rclpy.lifecycle``) that configures and activates itself unless
``autostart:=false``:

- configure: read and check parameters, resolve the mic->camera extrinsic (tf2 where
  installed, else parameters), load the checkpoint into the core ``Pipeline`` and warm it up,
  create the publishers. An empty ``model_path`` means the model shipped with the package
  (``avi_ros.shipped_model``); a wrong path, or shipped weights missing from the install, fails
  here with one line that names the path and says how to train a model.
- activate: subscribe (sensor-data QoS unless ``qos_reliability`` says otherwise), start
  the inference worker and the diagnostics timer.

Data path, shared with ``avi-ros replay``: the core ``SensorIntake`` checks every message
from its header on arrival (O(1), a bad one is counted under its reason); RGB, depth and
camera_info are matched by the core ``ApproximateTimeSync`` (message_filters' rule, never
message_filters itself, so live and replay match the same sets); the ``FrameAssembler`` joins
each set with the audio window ending at its stamp. Sensor callbacks only store and wake: one
worker thread takes the newest complete frame, converts its pixels (the only frame whose
pixels are converted), runs the pipeline, gives the hazards their tracks (``HazardTracker``,
updated once per inferred frame in stamp order, with the odometry's speed and yaw rate when
odometry arrives) and publishes; it also expires frames that waited too long for audio. A ROS clock
jump back or a deactivation clears the tracks (the worker does it before its next update: the
tracker is the worker's alone). The node spins on a single-threaded executor (``make_executor``): measured on
2 cores, rclpy's multi-threaded executor spent most of the CPU on its own futures.

Nothing a message contains can stop the node: every callback runs behind a guard that counts
an unexpected exception as ``internal_error.<Type>`` in /diagnostics, logs its traceback once
and goes on. Bad input is counted and logged once per reason per ``WARN_PERIOD_S``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, KeyValue
from rclpy.clock import Clock, ClockType, JumpThreshold, TimeJump
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_system_default
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from avi_ros.events import (
    AUDIO,
    CLOCK_TIME_BACKWARDS,
    INFERENCE_ERROR,
    EventCounter,
    internal_error_key,
)
from avi_ros.frame_assembly import ApproximateTimeSync, FrameAssembler
from avi_ros.geometry import MicToCamera
from avi_ros.msg import FoaAudio, HazardAssessment, HazardEstimateArray
from avi_ros.onnx_backend import resolve_model_input
from avi_ros.pipeline import Pipeline
from avi_ros.ros import conversions
from avi_ros.ros.assessment import (
    NODE_DECISION_PARAMETERS,
    NodeDecision,
    declare_decision_parameters,
)
from avi_ros.ros.diagnostics import LATE_IMAGE_MS, NodeStats, diagnostic_array
from avi_ros.ros.extrinsic import lookup_extrinsic
from avi_ros.ros.params import (
    PARAMETERS,
    TRAIN_HINT,
    NodeSettings,
    declare_parameters,
    read_settings,
    usage,
)
from avi_ros.ros.qos import mismatch_callbacks, sensor_qos
from avi_ros.ros.standard_interfaces import STANDARD_TOPICS, StandardInterfaces
from avi_ros.ros.telemetry import TelemetryInput, read_telemetry_settings
from avi_ros.sensor_decoding import SensorInputError
from avi_ros.sensor_intake import SensorIntake
from avi_ros.telemetry import IMU, ODOM
from avi_ros.topics import RGBD_STREAMS, OutputTopics, SensorTopics
from avi_ros.tracking import HazardTracker, TrackView
from avi_ros.tracking.ego_motion import robot_motion
from avi_ros.types import Frame, PipelineResult

NODE_NAME = "perception_node"
WARN_PERIOD_S = 5.0
EXPIRE_PERIOD_S = 0.05  # how often the worker, when idle, drops frames that waited too long [s]
INPUTS = SensorTopics()
OUTPUTS = OutputTopics()
RGBD_TYPES = (Image, Image, CameraInfo)  # in the order of RGBD_STREAMS and INPUTS.rgbd
TRACKS_CONFIRMED = "tracks.confirmed"  # /diagnostics value: confirmed tracks after the latest frame


def make_executor(context: Context | None = None) -> SingleThreadedExecutor:
    """The executor the node is spun by (also in the tests, so they run what ``main`` runs).

    Single-threaded: the sensor callbacks are O(message) and the inference runs on the node's
    own worker thread, so a second executor thread has nothing to do. Measured with
    ``bench/bench_node.py --executor`` (demo model, 640x480, 2 cores): rclpy's
    ``MultiThreadedExecutor`` spent about 80 % of the node's CPU on its own futures with the old
    callbacks (issue 12); with the light callbacks it still costs 1.2-1.3 x this one's CPU
    (46 % vs 38 % of a core at 10 Hz, 73 % vs 56 % at 15 Hz, where it answered 93 % vs 100 %).
    ``rclpy.experimental.EventsExecutor`` (Kilted wheels) never brought the node up (no
    /diagnostics within 60 s) and deadlocked ``publish`` from a second thread in-process.
    """
    return SingleThreadedExecutor(context=context)


class PerceptionNode(LifecycleNode):
    """See the module docstring. ``events`` counts every drop and bad input by reason.

    Handles created by a transition are released by its mirror: configure/cleanup own the
    pipeline, the intake, the synchroniser, the telemetry input, the tracker and the publishers;
    activate/deactivate own the subscriptions, the worker, the diagnostics timer and the clock-jump callback.
    ``start()`` runs configure + activate and ``stop()`` undoes them.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self)
        declare_decision_parameters(self)
        self.events = EventCounter()
        self.events.add_listener(self._warn_throttled)
        self.stats = NodeStats()
        self.settings: NodeSettings | None = None
        self.pipeline: Pipeline | None = None
        self.decision: NodeDecision | None = None  # only with decision.model_path
        self.telemetry: TelemetryInput | None = None  # with the decision stage or tracking
        self.tracker: HazardTracker | None = None  # only with tracking.enabled; the worker's alone
        self._tracks_reset = threading.Event()  # set by a clock jump or deactivation, done by the worker
        self._confirmed_tracks = 0
        self.assembler: FrameAssembler | None = None
        self.intake: SensorIntake | None = None
        self.interfaces: StandardInterfaces | None = None  # vision_msgs, audio_common, target_frame
        self.configure_error = ""
        self._last_warning: dict[str, float] = {}
        self._tracebacks_logged: set[str] = set()
        self._warn_lock = threading.Lock()
        # Not _publishers/_subscriptions/_timers: rclpy.Node uses those names itself.
        self._outputs: dict[str, Any] = {}
        self._sensor_subs: list[Any] = []
        self._diagnostics_timer: Any = None
        self._sync: ApproximateTimeSync | None = None
        self._sync_lock = threading.Lock()  # the synchroniser is shared with the clock-jump callback
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._jump_handle: Any = None
        self._info_logged: set[str] = set()

    @property
    def autostart(self) -> bool:
        return bool(self.get_parameter("autostart").value)

    # --- lifecycle -------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Parameters, extrinsic, model, intake and publishers; FAILURE with the reason logged."""
        settings = self._read_settings()
        if settings is None:
            return TransitionCallbackReturn.FAILURE
        pipeline = self._load_pipeline(settings)
        if pipeline is None or not self._configure_decision(settings, pipeline):
            return TransitionCallbackReturn.FAILURE
        self.settings, self.pipeline = settings, pipeline
        self.tracker = HazardTracker(settings.tracker, self.events) if settings.tracker is not None else None
        self._create_intake(settings, pipeline)
        self._create_publishers()
        self.interfaces = StandardInterfaces(self, settings, pipeline.taxonomy.names, self._info_once)
        self._log_configuration(settings, pipeline)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe, start the inference worker, the diagnostics timer and the clock-jump callback."""
        assert self.settings is not None
        self._subscribe(self.settings)
        if self.telemetry is not None:
            streams = (IMU, ODOM) if self.decision is not None else (ODOM,)  # tracking reads odometry only
            self.telemetry.subscribe(self.settings.qos_reliability, self._guarded, streams)
        self._stop.clear()
        self._worker = threading.Thread(target=self._inference_loop, name="avi_ros_inference", daemon=True)
        self._worker.start()
        # Diagnostics run on the steady clock, so they keep coming while a bag is paused.
        self._diagnostics_timer = self.create_timer(
            self.settings.diagnostics_period_s,
            self._guarded(self._publish_diagnostics),
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        jump_s = self.settings.assembly.backwards_reset_s
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-jump_s), on_clock_change=False),
            post_callback=self._guarded(self._on_time_jump),
        )
        self.get_logger().info(f"active: waiting for {', '.join(INPUTS.inputs)}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_activity()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_configuration()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_activity()
        self._release_configuration()
        return super().on_shutdown(state)

    def start(self) -> bool:
        """configure + activate (autostart); False with the reason logged when either fails."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Undo ``start()`` from wherever it got to: deactivate, then clean up. Safe to call twice.

        Once the context is shut down (Ctrl-C) no transition can run; the worker, timer and
        subscriptions are then stopped directly.
        """
        if not self.context.ok():
            self._stop_activity()
            return
        if self._worker is not None:
            self.trigger_deactivate()
        if self.pipeline is not None:
            self.trigger_cleanup()

    def _read_settings(self) -> NodeSettings | None:
        """The validated parameters, or None with ``configure_error`` set."""
        try:
            settings = read_settings(self)
        except ValueError as exc:
            self._fail_configure(f"invalid parameter: {exc}")
            return None
        try:
            # empty: the shipped model; with backend onnxruntime also a .onnx file
            model = resolve_model_input(settings.model_path, settings.backend)
        except FileNotFoundError as exc:
            self._fail_configure(f"parameter model_path: {exc} (produce one with: {TRAIN_HINT})")
            return None
        return dataclasses.replace(settings, model_path=str(model))

    def _load_pipeline(self, settings: NodeSettings) -> Pipeline | None:
        """The warmed-up pipeline, or None with ``configure_error`` set."""
        extrinsic = self._resolve_extrinsic(settings)
        torch.set_num_threads(settings.cpu_threads or max(1, (os.cpu_count() or 2) - 1))
        try:
            pipeline = Pipeline.from_checkpoint(
                settings.model_path,
                device=settings.device,
                confidence_threshold=settings.confidence_threshold,
                extrinsic=extrinsic,
                precision=settings.precision,
                backend=settings.backend,
            )
            pipeline.warmup()
        except Exception as exc:  # any failure to load means the node cannot work: say why, stop.
            self._fail_configure(
                f"cannot load the model checkpoint at model_path '{settings.model_path}': {exc}. "
                f"Produce a checkpoint with: {TRAIN_HINT}"
            )
            return None
        return pipeline

    def _configure_decision(self, settings: NodeSettings, pipeline: Pipeline) -> bool:
        """The telemetry input and the optional decision stage reading it; False with
        ``configure_error`` set when either cannot be made. The input is kept while the
        decision stage or tracking is on."""
        try:
            telemetry = TelemetryInput(self, read_telemetry_settings(self), self.events)
        except ValueError as exc:
            self._fail_configure(f"invalid parameter: {exc}")
            return False
        try:
            self.decision = NodeDecision.configure(self, telemetry, pipeline.taxonomy)
        except Exception as exc:  # a bad decision checkpoint or parameter: say why, stop
            self._fail_configure(f"cannot load the decision stage (decision.model_path): {exc}")
            return False
        self.telemetry = telemetry if self.decision is not None or settings.tracker is not None else None
        return True

    def _create_intake(self, settings: NodeSettings, pipeline: Pipeline) -> None:
        """The frame assembler, the sensor intake in front of it and the RGB-D synchroniser."""
        self.assembler = FrameAssembler(pipeline.window_samples, settings.assembly, self.events)
        self.intake = SensorIntake(self.assembler, self.events)
        self._sync = ApproximateTimeSync(
            RGBD_STREAMS,
            settings.sync_queue_size,
            settings.sync_slop_s,
            self._on_rgbd,
            self.events,
            backwards_reset_s=settings.assembly.backwards_reset_s,
        )

    def _log_configuration(self, settings: NodeSettings, pipeline: Pipeline) -> None:
        self.get_logger().info(
            f"model '{settings.model_path}' ({pipeline.backend}) on {pipeline.device}, {pipeline.precision} "
            f"({torch.get_num_threads()} CPU threads): classes {pipeline.taxonomy.names}, "
            f"audio window {pipeline.window_samples} samples; RGB-D sync slop {settings.sync_slop_s} s"
        )

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
            # Loud: a wrong or missing tf silently puts every hazard in the wrong camera pixel.
            self.get_logger().warning(
                f"extrinsic from parameters extrinsic.xyz/rpy, not from tf2 ({source}); "
                f"check microphone_frame '{settings.microphone_frame}' and camera_frame "
                f"'{settings.camera_frame}'"
            )
            return from_params
        self.get_logger().info(f"extrinsic {settings.microphone_frame} -> {settings.camera_frame} from tf2")
        return extrinsic

    def _create_publishers(self) -> None:
        qos = qos_profile_system_default
        self._outputs = {
            "hazards": self.create_lifecycle_publisher(HazardEstimateArray, OUTPUTS.hazards, qos),
            "markers": self.create_lifecycle_publisher(MarkerArray, OUTPUTS.markers, qos),
            "mask": self.create_lifecycle_publisher(Image, OUTPUTS.mask, qos),
            "diagnostics": self.create_lifecycle_publisher(DiagnosticArray, OUTPUTS.diagnostics, qos),
        }
        if self.decision is not None:
            self._outputs["assessment"] = self.create_lifecycle_publisher(
                HazardAssessment, OUTPUTS.assessment, qos
            )

    def _release_configuration(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        if self.interfaces is not None:
            self.interfaces.release()
            self.interfaces = None
        with self._sync_lock:
            self._sync = None
        self.pipeline = self.assembler = self.intake = self.settings = self.decision = None
        self.telemetry = self.tracker = None

    def _stop_activity(self) -> None:
        """Mirror of ``on_activate``; leaves the buffers empty. Safe when not active."""
        self._stop.set()
        if self.assembler is not None:
            self.assembler.wake()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for sub in self._sensor_subs:
            self.destroy_subscription(sub)
        self._sensor_subs = []
        if self.telemetry is not None:
            self.telemetry.unsubscribe()
        self._jump_handle = None
        self._reset_buffers()

    # --- sensor callbacks: O(message), store and wake -------------------------------------

    def _subscribe(self, settings: NodeSettings) -> None:
        """The audio subscription, then one per RGB-D input (its index tells the synchroniser which)."""
        subscribe = functools.partial(self._subscribe_sensor, settings)
        audio_common = self.interfaces.audio_common_types() if self.interfaces is not None else None
        if audio_common is None:
            depth = settings.audio_queue_depth
            self._sensor_subs = [subscribe(FoaAudio, INPUTS.audio, self._on_audio, depth)]
        else:
            stamped, info = audio_common
            self._sensor_subs = [
                subscribe(stamped, INPUTS.audio, self._on_audio_common, settings.audio_queue_depth),
                subscribe(info, STANDARD_TOPICS.audio_info, self._on_audio_info, 1),
            ]
        for index, (topic, msg_type) in enumerate(zip(INPUTS.rgbd, RGBD_TYPES, strict=True)):
            callback = functools.partial(self._on_image, index)
            self._sensor_subs.append(subscribe(msg_type, topic, callback, settings.image_queue_depth))

    def _subscribe_sensor(
        self, settings: NodeSettings, msg_type: type, topic: str, callback: Callable[[Any], None], depth: int
    ) -> Any:
        """A guarded sensor subscription with the configured QoS and a warning on a QoS mismatch."""
        return self.create_subscription(
            msg_type,
            topic,
            self._guarded(callback),
            sensor_qos(settings.qos_reliability, depth),
            event_callbacks=mismatch_callbacks(
                self.resolve_topic_name(topic), settings.qos_reliability, self.get_logger().warning
            ),
        )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_audio(self, msg: FoaAudio) -> None:
        self.stats.message_in(AUDIO)
        intake = self.intake
        chunk = intake.add_audio(msg, self._now_ns()) if intake is not None else None
        if chunk is not None and chunk.dropped_channels:
            self._info_once(
                "audio.hoa", f"{msg.channel_count}-channel ambisonics: using its first-order (4-channel) part"
            )

    def _on_audio_common(self, msg: Any) -> None:
        """An audio_common_msgs/AudioDataStamped: read as FoaAudio with the latest AudioInfo."""
        interfaces = self.interfaces
        if interfaces is None:
            return
        try:
            view = interfaces.foa_view(msg)
        except SensorInputError as exc:  # no AudioInfo yet, mp3, or a sample format not decoded
            self.stats.message_in(AUDIO)
            self.events.record(exc.reason, str(exc))
            return
        self._on_audio(view)

    def _on_audio_info(self, msg: Any) -> None:
        if self.interfaces is not None:
            self.interfaces.on_audio_info(msg)

    def _on_image(self, index: int, msg: Image | CameraInfo) -> None:
        """Input ``index`` of ``RGBD_STREAMS``: checked from its header, then to the synchroniser."""
        self.stats.message_in(RGBD_STREAMS[index])
        intake = self.intake
        stamp_ns = intake.check_image(index, msg) if intake is not None else None
        if stamp_ns is None:
            return
        self.stats.image_arrived(RGBD_STREAMS[index], stamp_ns, self._now_ns())
        with self._sync_lock:
            if self._sync is not None:
                self._sync.add(index, stamp_ns, msg)

    def _on_rgbd(self, rgb_msg: Image, depth_msg: Image, info_msg: CameraInfo) -> None:
        """A synchronised set (called by the synchroniser): checked, then waits for its audio."""
        intake = self.intake
        if intake is None:
            return
        self.stats.rgbd_received(conversions.stamp_to_ns(rgb_msg.header.stamp))
        intake.add_rgbd(rgb_msg, depth_msg, info_msg, self._now_ns())

    def _on_time_jump(self, jump: TimeJump) -> None:
        if jump.delta.nanoseconds < 0:
            # Reset before counting, so whoever sees the count also sees empty buffers.
            self._reset_buffers()
            self.events.record(CLOCK_TIME_BACKWARDS, "the ROS clock jumped backwards; buffers reset")

    def _reset_buffers(self) -> None:
        """Forget everything received so far. The tracks are cleared by the worker before its next
        update (it may be inside one now); the tracker's own stamp check also resets them."""
        self._tracks_reset.set()
        if self.assembler is not None:
            self.assembler.reset()
        if self.telemetry is not None:
            self.telemetry.buffer.reset()
        if self.decision is not None:
            self.decision.reset()
        with self._sync_lock:
            if self._sync is not None:
                self._sync.reset()

    # --- inference -------------------------------------------------------------------------

    def _inference_loop(self) -> None:
        """Worker: expire waiting frames, take the newest complete one, run it, publish."""
        assembler = self.assembler
        assert assembler is not None
        while not self._stop.is_set():
            try:
                assembler.expire(self._now_ns())
                frame = assembler.take_ready(timeout_s=EXPIRE_PERIOD_S)
                if frame is not None and not self._stop.is_set():
                    self._process(frame)
            except Exception as exc:  # a bug must not end the worker; nor may it spin the CPU
                self._internal_error(exc)
                self._stop.wait(EXPIRE_PERIOD_S)

    def _process(self, frame: Frame) -> None:
        pipeline = self.pipeline
        assert pipeline is not None
        started = time.perf_counter()
        try:
            result = pipeline.run(frame)
        except Exception as exc:  # a frame that breaks the model must not stop the node
            self.events.record(INFERENCE_ERROR, f"inference failed: {exc!r}")
            return
        inference_ms = (time.perf_counter() - started) * 1e3
        result, tracks = self._track(frame, result)
        self._publish(frame, result, tracks)
        age_ms = (self._now_ns() - frame.stamp_ns) * 1e-6
        self.stats.frame_done(
            frame.stamp_ns, inference_ms, age_ms, time.thread_time(), result.timings_ms.get("model", 0.0)
        )

    def _track(self, frame: Frame, result: PipelineResult) -> tuple[PipelineResult, list[TrackView]]:
        """The result with its hazards' track fields, and the confirmed tracks (for the trails).

        Untracked when tracking is off. An unexpected tracker failure is counted as an internal
        error, the frame is published untracked and the tracks restart at the next frame.
        """
        tracker = self.tracker
        if tracker is None:
            return result, []
        try:
            if self._tracks_reset.is_set():
                self._tracks_reset.clear()
                tracker.reset()
            telemetry = self.telemetry
            motion = robot_motion(telemetry.reading(frame.stamp_ns)) if telemetry is not None else None
            hazards = tracker.update(result.hazards, frame.stamp_ns, motion)
            tracks = tracker.tracks()
        except Exception as exc:  # a tracker bug must not cost the frame its hazards
            self._internal_error(exc)
            self._tracks_reset.set()
            return result, []
        self._confirmed_tracks = len(tracks)
        return dataclasses.replace(result, hazards=hazards), tracks

    def _publish(self, frame: Frame, result: PipelineResult, tracks: list[TrackView]) -> None:
        """Hazards always; markers (with the tracks' trails) and the mask only while someone
        subscribes (they cost CPU)."""
        settings = self.settings
        assert settings is not None
        header = conversions.make_header(frame.stamp_ns, settings.microphone_frame)
        self._outputs["hazards"].publish(conversions.hazards_to_msg(result.hazards, header))
        if self.interfaces is not None:
            self.interfaces.publish(result.hazards, frame.stamp_ns)
        if self.decision is not None:
            self._outputs["assessment"].publish(self.decision.assess(result, frame.stamp_ns, header))
        markers = self._outputs["markers"]
        if settings.publish_markers and markers.get_subscription_count() > 0:
            markers.publish(conversions.hazard_markers(result.hazards, header, settings.marker_style, tracks))
        mask = self._outputs["mask"]
        if settings.publish_mask and mask.get_subscription_count() > 0:
            image_frame = self.intake.image_frame_id if self.intake is not None else ""
            mask_header = conversions.make_header(frame.stamp_ns, image_frame or settings.camera_frame)
            mask.publish(conversions.image_to_msg(result.occlusion_mask, "mono8", mask_header))

    # --- diagnostics, warnings and the guard -----------------------------------------------

    def _publish_diagnostics(self) -> None:
        publisher = self._outputs.get("diagnostics")
        if publisher is None:
            return
        late_ms = self.settings.late_image_ms if self.settings is not None else LATE_IMAGE_MS
        snapshot = self.stats.snapshot(self.events.snapshot(), late_after_ms=late_ms)
        header = conversions.make_header(self._now_ns(), "")
        name = f"{self.get_name()}: perception"
        array = diagnostic_array(snapshot, header, name, self.get_fully_qualified_name())
        if self.tracker is not None:
            array.status[0].values.append(KeyValue(key=TRACKS_CONFIRMED, value=str(self._confirmed_tracks)))
        publisher.publish(array)

    def _guarded(self, callback: Callable[..., None]) -> Callable[..., None]:
        """``callback`` behind the guard: an exception is counted and logged, never raised into rclpy."""

        @functools.wraps(callback)
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:
                self._internal_error(exc)

        return guarded

    def _internal_error(self, exc: Exception) -> None:
        """Count ``internal_error.<Type>``; log the traceback the first time each type occurs."""
        key = internal_error_key(exc)
        with self._warn_lock:
            first = key not in self._tracebacks_logged
            self._tracebacks_logged.add(key)
        if first:
            trace = "".join(traceback.format_exception(exc))
            self.get_logger().error(f"[{key}] unexpected error; the node goes on (report it):\n{trace}")
        self.events.record(key, f"unexpected {exc!r}; the node goes on")

    def _warn_throttled(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        with self._warn_lock:
            last = self._last_warning.get(reason)
            if last is not None and now - last < WARN_PERIOD_S:
                return
            self._last_warning[reason] = now
        self.get_logger().warning(f"[{reason}] {detail} (count {self.events[reason]}; see /diagnostics)")

    def _info_once(self, key: str, message: str) -> None:
        with self._warn_lock:
            if key in self._info_logged:
                return
            self._info_logged.add(key)
        self.get_logger().info(message)


def main(args: list[str] | None = None) -> int:
    """``ros2 run avi_ros perception_node``: returns the process exit status."""
    user_args = remove_ros_args(args if args is not None else sys.argv)[1:]
    if "-h" in user_args or "--help" in user_args:
        print(usage((*PARAMETERS, *NODE_DECISION_PARAMETERS)))  # what __init__ declares
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
        executor = make_executor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # parameter type errors etc. at construction: a clear line, not a traceback
        print(f"[{NODE_NAME}] error: {exc}", file=sys.stderr)
        status = 1
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
