"""End-to-end benchmark of the perception node over real rclpy; prints one JSON object.

    source scripts/ros_env.sh
    python bench/bench_node.py                                  # CPU: shipped model, resnet18_224, 5-30 Hz
    python bench/bench_node.py --models resnet50_224 --device cuda --rates 30
    python bench/bench_node.py --executor multi                 # compare rclpy executors (ratios)
    python bench/bench_node.py --fastdds-transports LARGE_DATA  # one transport only

For each model the node runs as its own process (``python -m avi_ros.ros.perception_node``, as
``ros2 run`` starts it) with an untrained checkpoint of that model's sizes (latency does not
depend on the weights). This process plays a sensor rig in real time on the same machine: FoaAudio
chunks of 20 ms published when their last sample is "captured", and RGB (rgb8), depth (16UC1) and
CameraInfo of a synthetic 640x480 scene at the swept rate, each stamped with its capture time.
Per rate it reports:

- ``answered_fraction``: RGB-D frames answered by a HazardEstimateArray; ``output_rate_hz``;
- ``latency_ms`` p50/p95: from the sensor stamp to the answer's arrival (both wall clock), so it
  includes the wait for the audio chunk that completes the frame's window (up to 20 ms), DDS
  both ways and the node; ``lag_slope_ms_per_s``: the slope of latency over time (a growing
  backlog shows as a clearly positive slope);
- ``node_cpu_percent``: the node process's CPU (/proc, percent of one core) and, from the node's
  /diagnostics, the inference worker thread and the model forward pass (``node_cpu_split``), and
  ``rig_cpu_percent``: what the publisher in this process takes from the same cores;
- ``node_events``: the drop and bad-input counters that moved;
- ``node_images`` and ``node_transport_warning``: the node's own view of the images (its last
  /diagnostics ``image_age_ms.p95``, ``image_delay_ms.p95``, ``image_late_share``), and whether
  any of its statuses named the transport.

Transport: 640x480 images are 0.9 MB (rgb8) and 0.6 MB (16UC1). Over Fast DDS's default
transports (UDP, and a shared memory segment too small for them) many are lost (best effort) or
arrive late in bursts after retransmission (reliable), whatever the node does. By default the
bench measures twice in one run, with ``FASTDDS_BUILTIN_TRANSPORTS=DEFAULT`` and ``=LARGE_DATA``
(shared memory on one host, Fast DDS >= 2.13) for both the rig and the node, each in a fresh
process of this script (Fast DDS reads the variable when a process creates its participant), and
prints both with their ratios (LARGE_DATA over DEFAULT). ``--fastdds-transports`` picks others.

A rate is *sustained* when at least 95 % of the frames are answered, latency p95 stays within
``--p95-bound-ms`` and the lag slope is below 5 ms/s; ``best_sustained_rate_hz`` is the highest.
Timings from one run compare as ratios; on a shared machine they are not benchmarks.
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
from avi_ros.data.scene import generate_scene  # noqa: E402
from avi_ros.data.scene_config import SceneConfig  # noqa: E402
from avi_ros.features import FeatureConfig  # noqa: E402
from avi_ros.models.builder import build_model  # noqa: E402
from avi_ros.models.config import ModelConfig  # noqa: E402
from avi_ros.models.hazard_fusion import AdapterConfig  # noqa: E402
from avi_ros.models.head import HeadConfig  # noqa: E402
from avi_ros.models.visual_encoder import VisualEncoderConfig  # noqa: E402
from avi_ros.ros import conversions  # noqa: E402
from avi_ros.ros.diagnostics import LATE_IMAGES, diagnostic_values  # noqa: E402
from avi_ros.ros.qos import sensor_qos  # noqa: E402
from avi_ros.ros.scene_streamer import SceneStreamer  # noqa: E402
from avi_ros.shipped_model import resolve_model_path  # noqa: E402
from avi_ros.taxonomy import default_taxonomy  # noqa: E402
from avi_ros.topics import OutputTopics  # noqa: E402
from avi_ros.units import NS_PER_S  # noqa: E402

OUTPUTS = OutputTopics()  # the node's output topics, as it names them

CHUNK_SAMPLES = 480  # 20 ms
SUSTAINED_ANSWERED = 0.95
SUSTAINED_SLOPE_MS_PER_S = 5.0
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
FASTDDS_TRANSPORTS = "FASTDDS_BUILTIN_TRANSPORTS"
TRANSPORTS = ("DEFAULT", "LARGE_DATA")  # measured by default: Fast DDS as installed, then for large data
# Figures compared between transports, as (later transport) / (first transport).
RATIO_KEYS = ("answered_fraction", "output_rate_hz", "latency_ms_p50", "latency_ms_p95", "node_cpu_percent")

# Model sizes: the demo checkpoint (training/configs/demo.yaml) and the deployment defaults.
MODELS = {
    "demo": ModelConfig(
        visual=VisualEncoderConfig(arch="resnet18", image_size=96),
        adapter=AdapterConfig(d_model=128, heads=4),
        head=HeadConfig(hidden=128),
    ),
    "resnet18_224": ModelConfig(visual=VisualEncoderConfig(arch="resnet18", image_size=224)),
    "resnet50_224": ModelConfig(visual=VisualEncoderConfig(arch="resnet50", image_size=224)),
}
# How the node process is started: ``main`` as shipped, or with another rclpy executor patched in.
EXECUTORS = {
    "single": None,
    "multi": "from rclpy.executors import MultiThreadedExecutor as E; "
    "n.make_executor = lambda context=None: E(num_threads=3, context=context)",
    "events": "from rclpy.experimental import EventsExecutor as E; "
    "n.make_executor = lambda context=None: E(context=context)",
}


SHIPPED = "shipped"  # the trained model that ships with the package (avi_ros/models/shipped)


def make_checkpoint(directory: Path, name: str) -> Path:
    """The shipped checkpoint for ``shipped``; else an untrained model of preset ``name``'s sizes,
    with the default taxonomy and features."""
    if name == SHIPPED:
        return resolve_model_path(None)
    taxonomy = default_taxonomy()
    config = MODELS[name]
    model = build_model(
        ModelConfig(
            num_classes=taxonomy.num_classes, visual=config.visual, adapter=config.adapter, head=config.head
        )
    )
    return save_checkpoint(directory / name, model, FeatureConfig(), taxonomy)


def process_cpu_s(pid: int, thread: int | None = None) -> float:
    """CPU time [s] (user + system) of a process, or of one of its threads, from /proc."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # utime, stime (fields 14, 15)


class NodeProcess:
    """The perception node as a separate process, stopped on exit."""

    def __init__(self, checkpoint: Path, args: argparse.Namespace, domain_id: int, log) -> None:
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id)}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
        patch = EXECUTORS[args.executor]
        start = (
            ["-m", "avi_ros.ros.perception_node"]
            if patch is None
            else ["-c", f"import sys, avi_ros.ros.perception_node as n; {patch}; sys.exit(n.main())"]
        )
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *start,
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

    def cpu_s(self) -> tuple[float, float]:
        """(whole process, main thread: the executor and every sensor callback) CPU so far [s]."""
        pid = self.proc.pid
        return process_cpu_s(pid), process_cpu_s(pid, pid)

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
    """Publishes sensors in real time and records when each frame's answer came back."""

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
        self.answers: dict[int, int] = {}  # stamp -> arrival [ns, wall clock]
        self.lock = threading.Lock()
        self.diagnostics: list[dict[str, str]] = []
        self.status_messages: list[str] = []  # beside ``diagnostics``, index for index
        node.create_subscription(HazardEstimateArray, OUTPUTS.hazards, self._on_hazards, 50)
        node.create_subscription(DiagnosticArray, OUTPUTS.diagnostics, self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics.append(diagnostic_values(msg))
            self.status_messages.append(msg.status[0].message if msg.status else "")

    def _on_hazards(self, msg: HazardEstimateArray) -> None:
        arrived = time.time_ns()
        with self.lock:
            self.answers[conversions.stamp_to_ns(msg.header.stamp)] = arrived

    def ready(self, timeout_s: float) -> bool:
        publishers = (
            self.streamer.audio_pub,
            self.streamer.rgb_pub,
            self.streamer.depth_pub,
            self.streamer.info_pub,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() for p in publishers) and self.diagnostics:
                return True
            time.sleep(0.1)
        return False

    def play(self, rate_hz: float, seconds: float, node: NodeProcess, window_ns: int = NS_PER_S) -> dict:
        """Stream for ``seconds`` (after one audio window) at ``rate_hz`` RGB-D; returns the figures."""
        chunk_ns = CHUNK_SAMPLES * NS_PER_S // SAMPLE_RATE
        start_ns = time.time_ns()
        self.streamer.start_audio_at(start_ns)
        frame_period_ns = round(NS_PER_S / rate_hz)
        next_frame_ns = start_ns + window_ns  # the first frame already has a full audio window
        end_ns = next_frame_ns + round(seconds * NS_PER_S)
        sent: list[int] = []
        with self.lock:
            first_diagnostics = len(self.diagnostics)
        cpu_before, rig_before, wall_before = node.cpu_s(), time.process_time(), time.monotonic()
        while (now_ns := time.time_ns()) < end_ns:
            # A chunk goes out once its last sample is captured (its end stamp has passed).
            while self.streamer.next_chunk_stamp_ns + chunk_ns <= now_ns:
                self.streamer.publish_audio_until(self.streamer.next_chunk_stamp_ns + chunk_ns)
            if now_ns >= next_frame_ns:
                self.streamer.publish_rgbd(next_frame_ns)
                sent.append(next_frame_ns)
                next_frame_ns += frame_period_ns
            wake_ns = min(next_frame_ns, self.streamer.next_chunk_stamp_ns + chunk_ns)
            time.sleep(max(0.0, (wake_ns - time.time_ns()) / NS_PER_S))
        cpu_after, rig_after, wall_after = node.cpu_s(), time.process_time(), time.monotonic()
        time.sleep(1.5)  # let the last answers and a diagnostics status arrive
        with self.lock:
            answers = dict(self.answers)
            window = self.diagnostics[first_diagnostics:]
            messages = self.status_messages[first_diagnostics:]
            before = self.diagnostics[first_diagnostics - 1] if first_diagnostics else {}
        wall = wall_after - wall_before
        result = summarise(rate_hz, seconds, sent, answers)
        result["node_cpu_percent"] = round(100 * (cpu_after[0] - cpu_before[0]) / wall, 1)
        result["node_cpu_split"] = cpu_split(window, 100 * (cpu_after[1] - cpu_before[1]) / wall)
        result["rig_cpu_percent"] = round(100 * (rig_after - rig_before) / wall, 1)
        result["node_latency_ms"] = {
            k: float(window[-1][k]) for k in ("inference_ms.p50", "inference_ms.p95") if window
        }
        result["node_events"] = events_moved(before, window[-1] if window else {})
        image_keys = ("image_age_ms.p95", "image_delay_ms.p95", "image_late_share")
        result["node_images"] = {k: float(window[-1][k]) for k in image_keys if window and k in window[-1]}
        result["node_transport_warning"] = any(m.startswith(LATE_IMAGES) for m in messages)
        return result


def cpu_split(window: list[dict[str, str]], main_thread_percent: float) -> dict:
    """Where the node's CPU went [% of one core], averaged over the diagnostics of the window."""
    keys = ("cpu_percent.process", "cpu_percent.inference_thread", "cpu_percent.model_forward")
    means = {k: float(np.mean([float(d[k]) for d in window if k in d])) for k in keys if window}
    split = {name.split(".")[1]: round(v, 1) for name, v in means.items()}
    split["executor_thread"] = round(main_thread_percent, 1)
    if split.get("process"):
        split["model_forward_share_of_process"] = round(split["model_forward"] / split["process"], 3)
    return split


def events_moved(before: dict[str, str], after: dict[str, str]) -> dict[str, int]:
    """Drop, gap, bad-input and error counters that moved between two diagnostics statuses."""
    groups = ("dropped.", "bad.", "gaps.", "error.")
    moved = {k: int(v) - int(before.get(k, 0)) for k, v in after.items() if k.startswith(groups)}
    return {k: v for k, v in moved.items() if v}


def summarise(rate_hz: float, seconds: float, sent: list[int], answers: dict[int, int]) -> dict:
    rows = [(stamp, (answers[stamp] - stamp) * 1e-6) for stamp in sent if stamp in answers]
    result = {
        "rate_hz": rate_hz,
        "seconds": seconds,
        "frames_sent": len(sent),
        "frames_answered": len(rows),
        "answered_fraction": round(len(rows) / max(len(sent), 1), 3),
        "output_rate_hz": round(len(rows) / seconds, 2),
    }
    if len(rows) >= 2:
        stamps, latency = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
        slope = float(np.polyfit((stamps - stamps[0]) / NS_PER_S, latency, 1)[0])
        result.update(
            latency_ms_p50=round(float(np.percentile(latency, 50)), 1),
            latency_ms_p95=round(float(np.percentile(latency, 95)), 1),
            lag_slope_ms_per_s=round(slope, 2),
        )
    return result


def sustained(result: dict, p95_bound_ms: float) -> bool:
    return (
        result["answered_fraction"] >= SUSTAINED_ANSWERED
        and result.get("latency_ms_p95", float("inf")) <= p95_bound_ms
        and result.get("lag_slope_ms_per_s", float("inf")) < SUSTAINED_SLOPE_MS_PER_S
    )


def bench_model(name: str, checkpoint: Path, args: argparse.Namespace, scene, domain_id: int) -> dict:
    with tempfile.TemporaryFile("w+") as log:  # never inside the checkpoint (the shipped one is read-only)
        node = NodeProcess(checkpoint, args, domain_id, log)
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
                    f"the node did not come up within {args.startup_timeout} s:\n{node.output()}"
                )
            rig.play(args.rates[0], 2.0, node)  # warm-up (first DDS matches, caches)
            sweep = [rig.play(rate, args.seconds, node) for rate in args.rates]
        finally:
            executor.shutdown(timeout_sec=5.0)
            client.destroy_node()
            rclpy.shutdown(context=context)
            node.stop()
    for result in sweep:
        result["sustained"] = sustained(result, args.p95_bound_ms)
    best = [r["rate_hz"] for r in sweep if r["sustained"]]
    return {"model": name, "best_sustained_rate_hz": max(best) if best else 0.0, "sweep": sweep}


def run_transport(transport: str) -> dict:
    """This script's report for one transport, from a fresh process with the same arguments."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *sys.argv[1:],
        "--fastdds-transports",
        transport,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        reason = next((line for line in lines if line.startswith("bench_node: ")), lines[-1])
        raise RuntimeError(f"the {transport} run failed: {reason.removeprefix('bench_node: ')}")
    return json.loads(done.stdout)


def transport_ratios(first: dict, later: dict) -> dict:
    """``later / first`` of ``RATIO_KEYS`` per model and rate (present in both, first non-zero)."""
    ratios: dict[str, dict[str, dict[str, float]]] = {}
    for model, result in later["results"].items():
        base = {row["rate_hz"]: row for row in first["results"].get(model, {}).get("sweep", [])}
        per_rate = ratios.setdefault(model, {})
        for row in result["sweep"]:
            reference = base.get(row["rate_hz"], {})
            per_rate[f"{row['rate_hz']:g}_hz"] = {
                key: round(row[key] / reference[key], 3)
                for key in RATIO_KEYS
                if key in row and reference.get(key)
            }
    return ratios


def compare_transports(transports: list[str]) -> int:
    """One measurement per transport, each in its own process; both reports and their ratios."""
    reports = {}
    for transport in transports:
        try:
            reports[transport] = run_transport(transport)
        except (RuntimeError, json.JSONDecodeError) as exc:
            print(f"bench_node: {exc}", file=sys.stderr)
            return 1
    first = transports[0]
    summary = {
        "benchmark": "perception_node end-to-end over rclpy, by Fast DDS builtin transports",
        "transports": transports,
        "ratios": {
            f"{later}_over_{first}": transport_ratios(reports[first], reports[later])
            for later in transports[1:]
        },
        "runs": reports,
    }
    print(json.dumps(summary, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=[SHIPPED, "resnet18_224"], choices=[SHIPPED, *MODELS])
    parser.add_argument(
        "--device", default="cpu", help="the node's device parameter: cpu, cuda, cuda:N, auto"
    )
    parser.add_argument(
        "--qos",
        default="reliable",
        choices=["reliable", "best_effort"],
        help="sensor QoS of rig and node; reliable keeps DDS losses of large images out of the figures",
    )
    parser.add_argument("--cpu-threads", type=int, default=0, help="the node's cpu_threads (0: cores - 1)")
    parser.add_argument(
        "--executor", default="single", choices=list(EXECUTORS), help="rclpy executor of the node"
    )
    parser.add_argument("--rates", nargs="+", type=float, default=[5.0, 10.0, 15.0, 30.0])
    parser.add_argument("--seconds", type=float, default=10.0, help="streaming time per rate [s]")
    parser.add_argument(
        "--p95-bound-ms", type=float, default=150.0, help="latency p95 bound of a sustained rate"
    )
    parser.add_argument(
        "--fastdds-transports",
        nargs="+",
        default=list(TRANSPORTS),
        help="FASTDDS_BUILTIN_TRANSPORTS values for rig and node, one measurement each (DEFAULT: UDP + "
        "a small shared memory segment; LARGE_DATA: shared memory, TCP between hosts)",
    )
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_node: --device cuda needs a CUDA GPU; none is available", file=sys.stderr)
        return 2
    if len(args.fastdds_transports) > 1:
        return compare_transports(args.fastdds_transports)
    (transport,) = args.fastdds_transports
    os.environ[FASTDDS_TRANSPORTS] = transport  # before any rclpy.init; the node process inherits it
    domain_id = 150 + os.getpid() % 50
    scene = generate_scene(11, SceneConfig(duration_s=2.0))
    results = {}
    with tempfile.TemporaryDirectory(prefix="avi_ros_bench_") as tmp:
        for name in args.models:
            try:
                results[name] = bench_model(name, make_checkpoint(Path(tmp), name), args, scene, domain_id)
            except RuntimeError as exc:  # the node did not come up: its output follows the first line
                print(f"bench_node: {name}: {exc}".replace("\n", " | ", 1), file=sys.stderr)
                return 1
    report = {
        "benchmark": "perception_node end-to-end over rclpy",
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15min": [round(v, 2) for v in os.getloadavg()],
            "platform": platform.platform(),
            "device": args.device,
            "qos": args.qos,
            "executor": args.executor,
            "fastdds_builtin_transports": transport,
            "node_cpu_threads": args.cpu_threads,
            "publisher": "this process, on the same cores as the node (rig_cpu_percent)",
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__,
        },
        "image": [int(scene.rgb.shape[1]), int(scene.rgb.shape[0])],
        "audio_chunk_ms": CHUNK_SAMPLES * 1000 / SAMPLE_RATE,
        "p95_bound_ms": args.p95_bound_ms,
        "results": results,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
