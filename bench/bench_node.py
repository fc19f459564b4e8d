"""End-to-end benchmark of the perception node over real rclpy; prints one JSON object.

    source scripts/ros_env.sh
    python bench/bench_node.py                      # CPU, resnet18 and resnet50
    python bench/bench_node.py --device cuda        # the node runs inference on the GPU
    python bench/bench_node.py --rates 5 10 20 30 --seconds 8

For each visual backbone the node runs as its own process (``python -m
avi_ros.ros.perception_node``, as ``ros2 run`` would start it) with an untrained checkpoint
(latency does not depend on the weights). This process plays a sensor rig in real time:
FoaAudio chunks of 20 ms published when their last sample is "captured", and RGB (rgb8),
depth (16UC1) and CameraInfo of a synthetic 640x480 scene at the swept rate. It listens to
``hazards`` and measures, per answered frame:

- ``latency_ms``: from the moment the last input the frame needs was published (the RGB-D
  set, or the audio chunk that completes the frame's window, whichever came later) to the
  HazardEstimateArray's arrival: the node's own message-in -> message-out time;
- ``latency_from_rgb_ms``: from the RGB-D publish, which adds the wait for the audio chunk
  that holds the frame's stamp (up to one 20 ms chunk).

From the node's /diagnostics it also records, per rate, the node's own view
(``node_latency_ms``: pipeline.run p50/p95, and RGB-D set received -> published p50/p95) and
the drop counters that moved (``node_events``), so a slow transport and a slow node can be
told apart.

Per rate it reports p50/p95, the fraction of frames answered, the output rate, and the lag
slope: the least-squares slope of latency against time [ms per s]. A growing backlog shows as
a clearly positive slope; the node drops stale frames instead, so the slope stays near zero
even past its capacity. A rate is *sustained* when at least 90 % of the frames are answered
and the slope is below 5 ms/s. Timings from one run compare as ratios (resnet50/resnet18).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the checkout's avi_ros

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import torch  # noqa: E402
from avi_ros.msg import HazardEstimateArray  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from avi_ros.audio import SAMPLE_RATE  # noqa: E402
from avi_ros.checkpoint import save_checkpoint  # noqa: E402
from avi_ros.data.scene import SceneConfig, generate_scene  # noqa: E402
from avi_ros.features import FeatureConfig  # noqa: E402
from avi_ros.models.imagination import ModelConfig, build_model  # noqa: E402
from avi_ros.models.visual_encoder import VisualEncoderConfig  # noqa: E402
from avi_ros.ros import conversions  # noqa: E402
from avi_ros.ros.diagnostics import diagnostic_values  # noqa: E402
from avi_ros.ros.qos import sensor_qos  # noqa: E402
from avi_ros.ros.scene_streamer import SceneStreamer  # noqa: E402
from avi_ros.taxonomy import default_taxonomy  # noqa: E402

NS = 1_000_000_000
CHUNK_SAMPLES = 480  # 20 ms
SUSTAINED_ANSWERED = 0.9
SUSTAINED_SLOPE_MS_PER_S = 5.0


def make_checkpoint(directory: Path, arch: str) -> Path:
    """An untrained full model with the default (deployment) sizes and the given backbone."""
    taxonomy = default_taxonomy()
    model = build_model(ModelConfig(num_classes=taxonomy.num_classes, visual=VisualEncoderConfig(arch=arch)))
    return save_checkpoint(directory / arch, model, FeatureConfig(), taxonomy)


class NodeProcess:
    """The perception node as a separate process, stopped on exit."""

    def __init__(self, checkpoint: Path, args, domain_id: int, log) -> None:
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id)}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "avi_ros.ros.perception_node",
                "--ros-args",
                *("-p", f"model_path:={checkpoint}"),
                *("-p", f"device:={args.device}"),
                *("-p", f"cpu_threads:={args.cpu_threads}"),
                *("-p", "extrinsic.from_tf:=false"),
                *("-p", "confidence_threshold:=0.0"),
                *("-p", f"qos_reliability:={args.qos}"),
                *("--log-level", "warn"),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Rig:
    """Publishes sensors in real time and records when each frame's inputs went out and came back."""

    def __init__(self, node, scene, qos: str) -> None:
        self.node = node
        self.streamer = SceneStreamer(
            node,
            scene.audio,
            scene.rgb,
            scene.depth_m,
            scene.intrinsics,
            chunk_samples=CHUNK_SAMPLES,
            qos=sensor_qos(qos, 5),
        )
        self.answers: dict[int, float] = {}
        self.lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.node_latency_ms: dict[str, float] = {}
        node.create_subscription(HazardEstimateArray, "hazards", self._on_hazards, 50)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = diagnostic_values(msg)
        counters = {k: int(v) for k, v in values.items() if k.startswith(("dropped.", "bad.", "gaps."))}
        with self.lock:
            self.counters = counters
            self.node_latency_ms = {
                k: float(values[k])
                for k in ("inference_ms.p50", "inference_ms.p95", "end_to_end_ms.p50", "end_to_end_ms.p95")
            }

    def _on_hazards(self, msg: HazardEstimateArray) -> None:
        arrived = time.monotonic()
        with self.lock:
            self.answers[conversions.stamp_to_ns(msg.header.stamp)] = arrived

    def ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (
                self.streamer.rgb_pub.get_subscription_count()
                and self.streamer.audio_pub.get_subscription_count()
            ):
                return True
            time.sleep(0.1)
        return False

    def play(self, rate_hz: float, seconds: float, window_ns: int = NS) -> dict:
        """Stream for ``seconds`` (after one audio window) at ``rate_hz`` RGB-D; returns the figures."""
        chunk_ns = CHUNK_SAMPLES * NS // SAMPLE_RATE
        start_ns = time.time_ns()
        self.streamer.start_audio_at(start_ns)
        clock_offset = time.monotonic() - start_ns / NS  # stamp [s] -> monotonic [s]
        counters_before = dict(self.counters)
        frame_period_ns = round(NS / rate_hz)
        next_frame_ns = start_ns + window_ns  # the first frame already has a full audio window
        end_ns = next_frame_ns + round(seconds * NS)
        sent: dict[int, tuple[float, float]] = {}  # stamp -> (rgbd publish, completing-audio publish)
        audio_published: dict[int, float] = {}  # chunk end stamp -> monotonic publish time
        while True:
            now_ns = time.time_ns()
            if now_ns >= end_ns:
                break
            # A chunk goes out once its last sample is captured (its end stamp has passed).
            while self.streamer.next_chunk_stamp_ns + chunk_ns <= now_ns:
                chunk_end = self.streamer.next_chunk_stamp_ns + chunk_ns
                self.streamer.publish_audio_until(chunk_end)
                audio_published[chunk_end] = time.monotonic()
            if now_ns >= next_frame_ns:
                stamp = next_frame_ns
                self.streamer.publish_rgbd(stamp)
                sent[stamp] = (time.monotonic(), float("nan"))
                next_frame_ns += frame_period_ns
            wake_ns = min(next_frame_ns, self.streamer.next_chunk_stamp_ns + chunk_ns)
            time.sleep(max(0.0, (wake_ns - time.time_ns()) / NS))
        time.sleep(1.5)  # let the last answers and a diagnostics status arrive
        node_events = {k: v - counters_before.get(k, 0) for k, v in self.counters.items()}
        # The chunk that completes a frame's window is the one holding the sample just before the stamp.
        origin = self.streamer.chunk_stamp_ns(0)
        for stamp, (rgbd_at, _) in sent.items():
            chunk_end = origin + ((stamp - origin - 1) // chunk_ns + 1) * chunk_ns
            sent[stamp] = (rgbd_at, audio_published.get(chunk_end, float("nan")))
        result = summarise(rate_hz, seconds, sent, dict(self.answers), clock_offset)
        result["node_events"] = {k: v for k, v in node_events.items() if v}
        # The node's own view over its last 200 frames: pipeline.run, and RGB-D set received -> published.
        result["node_latency_ms"] = dict(self.node_latency_ms)
        return result


def summarise(rate_hz, seconds, sent, answers, clock_offset) -> dict:
    rows = []
    for stamp, (rgbd_at, audio_at) in sorted(sent.items()):
        if stamp in answers:
            last_input = max(rgbd_at, audio_at) if np.isfinite(audio_at) else rgbd_at
            rows.append(
                (
                    stamp / NS + clock_offset,
                    (answers[stamp] - last_input) * 1e3,
                    (answers[stamp] - rgbd_at) * 1e3,
                )
            )
    result = {
        "rate_hz": rate_hz,
        "seconds": seconds,
        "frames_sent": len(sent),
        "frames_answered": len(rows),
        "answered_fraction": round(len(rows) / max(len(sent), 1), 3),
        "output_rate_hz": round(len(rows) / seconds, 2),
    }
    if len(rows) >= 2:
        t, latency, from_rgb = (np.array(c) for c in zip(*rows, strict=True))
        slope = float(np.polyfit(t - t[0], latency, 1)[0])
        result.update(
            latency_ms_p50=round(float(np.percentile(latency, 50)), 2),
            latency_ms_p95=round(float(np.percentile(latency, 95)), 2),
            latency_from_rgb_ms_p50=round(float(np.percentile(from_rgb, 50)), 2),
            latency_from_rgb_ms_p95=round(float(np.percentile(from_rgb, 95)), 2),
            lag_slope_ms_per_s=round(slope, 2),
        )
        result["sustained"] = bool(
            result["answered_fraction"] >= SUSTAINED_ANSWERED and slope < SUSTAINED_SLOPE_MS_PER_S
        )
    else:
        result["sustained"] = False
    return result


def bench_arch(arch: str, checkpoint: Path, args, scene, domain_id: int) -> dict:
    with open(checkpoint / "node.log", "w+") as log:
        node_proc = NodeProcess(checkpoint, args, domain_id, log)
        return _bench_arch(arch, node_proc, args, scene, domain_id)


def _bench_arch(arch: str, node_proc: NodeProcess, args, scene, domain_id: int) -> dict:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    client = rclpy.create_node("bench_rig", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    rig = Rig(client, scene, args.qos)
    try:
        if not rig.ready(args.startup_timeout):
            raise RuntimeError(
                f"the node did not come up within {args.startup_timeout} s:\n{node_proc.output()}"
            )
        rig.play(rate_hz=args.rates[0], seconds=2.0)  # warm-up (first DDS matches, caches)
        sweep = [rig.play(rate, args.seconds) for rate in args.rates]
    finally:
        executor.shutdown(timeout_sec=5.0)
        client.destroy_node()
        rclpy.shutdown(context=context)
        node_proc.stop()
    sustained = [r["rate_hz"] for r in sweep if r["sustained"]]
    return {"arch": arch, "max_sustained_rate_hz": max(sustained) if sustained else 0.0, "sweep": sweep}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--device", default="cpu", help="the node's device parameter: cpu, cuda, cuda:N, auto"
    )
    parser.add_argument("--archs", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument(
        "--qos",
        default="reliable",
        choices=["reliable", "best_effort"],
        help="sensor QoS of rig and node; reliable keeps DDS losses of large images out of the latency",
    )
    parser.add_argument("--cpu-threads", type=int, default=0, help="the node's cpu_threads (0: cores - 1)")
    parser.add_argument("--rates", nargs="+", type=float, default=[5.0, 10.0, 15.0, 20.0, 30.0])
    parser.add_argument("--seconds", type=float, default=6.0, help="streaming time per rate [s]")
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_node: --device cuda needs a CUDA GPU; none is available", file=sys.stderr)
        return 2
    domain_id = 150 + os.getpid() % 50
    scene = generate_scene(11, SceneConfig(duration_s=2.0))
    results = {}
    with tempfile.TemporaryDirectory(prefix="avi_ros_bench_") as tmp:
        for arch in args.archs:
            checkpoint = make_checkpoint(Path(tmp), arch)
            results[arch] = bench_arch(arch, checkpoint, args, scene, domain_id)
    report = {
        "benchmark": "perception_node end-to-end over rclpy",
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15min": [round(v, 2) for v in os.getloadavg()],
            "platform": platform.platform(),
            "device": args.device,
            "qos": args.qos,
            "node_cpu_threads": args.cpu_threads,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__,
        },
        "image": [int(scene.rgb.shape[1]), int(scene.rgb.shape[0])],
        "audio_chunk_ms": CHUNK_SAMPLES * 1000 / SAMPLE_RATE,
        "results": results,
    }
    if {"resnet18", "resnet50"} <= results.keys():
        p50 = {a: [r.get("latency_ms_p50") for r in results[a]["sweep"]] for a in ("resnet18", "resnet50")}
        ratios = [b / a for a, b in zip(p50["resnet18"], p50["resnet50"], strict=True) if a and b]
        report["resnet50_over_resnet18_latency_p50"] = round(float(np.median(ratios)), 2) if ratios else None
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
