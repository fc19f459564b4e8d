"""What the replay tests share: the scenario bag's microphone extrinsic, and the live node played
the same bag, with the wait for its answers (bounded only by a deadline that matters when answers
stop coming)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avi_ros.bag.replay import ReplayOptions, replay
from avi_ros.bag.results import ReplayResult

NS = 1_000_000_000
SCENARIO_EXTRINSIC_XYZ = (0.05, 0.0, 0.1)  # what the scenario's /tf_static says

# How long the live node may stay silent before the frames it has not answered count as skipped,
# and the most the comparison waits in all; both only bound waiting, never what is compared.
QUIET_S = 5.0
WAIT_LIMIT_S = 180.0


def replay_on_cpu(bag: Path, model: Path, out: Path, **options: Any) -> ReplayResult:
    """Replay ``bag`` with ``model`` into ``out`` on the CPU (the other ReplayOptions as given):
    the tests compare estimates, so they run where every machine gives the same ones."""
    return replay(ReplayOptions(bag=bag, model=model, out=out, device="cpu", **options))


def header_stamp_ns(header) -> int:
    """A message header's stamp [ns]."""
    return header.stamp.sec * NS + header.stamp.nanosec


def wait_for_answers(received: list, expected: int) -> None:
    """Until ``expected`` messages arrived, or at least one did and then none for ``QUIET_S`` (the
    node skipped the rest), or ``WAIT_LIMIT_S`` passed."""
    start = time.monotonic()
    count, changed = len(received), start
    while len(received) < expected and time.monotonic() - start < WAIT_LIMIT_S:
        if len(received) != count:
            count, changed = len(received), time.monotonic()
        elif count and time.monotonic() - changed > QUIET_S:
            return
        time.sleep(0.05)


def live_node_answers(
    bag: Path, checkpoint_dir: Path, expected: int, name: str, parameters: Mapping[str, Any] | None = None
) -> tuple[list, Any]:
    """Play ``bag``'s sensor topics at half real time to a live perception node with the model in
    ``checkpoint_dir`` (node parameters ``parameters`` on top of the replay's), and collect its
    /hazards until ``expected`` arrived or it went quiet (``wait_for_answers``). ``name`` prefixes
    the listener and player node names. Returns the HazardEstimateArray messages received and the
    node's event counter (for the messages of failed asserts). Needs rclpy (the caller skips
    without it)."""
    import rclpy
    from avi_ros.msg import HazardEstimateArray
    from rclpy.parameter import Parameter

    from avi_ros.ros.perception_node import PerceptionNode, make_executor
    from avi_ros.ros.play import BagPlayer, PlayOptions

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=100 + os.getpid() % 100)
    values = {
        "model_path": str(checkpoint_dir),
        "device": "cpu",
        "extrinsic.from_tf": False,
        "extrinsic.xyz": list(SCENARIO_EXTRINSIC_XYZ),
        "audio.queue_depth": 500,
        # Reliable delivery: on a busy machine best-effort transport may lose an audio chunk,
        # and a window with a filled gap would rightly differ from the replay's.
        "qos_reliability": "reliable",
        # Wall-clock waits generous enough for a slow CI machine; the estimates compared
        # depend only on each frame's stamp, not on these bounds.
        "audio.max_wait_s": 3.0,
        "audio.buffer_s": 30.0,
        **(parameters or {}),
    }
    node = PerceptionNode(
        context=context, parameter_overrides=[Parameter(key, value=value) for key, value in values.items()]
    )
    received: list = []
    listener = rclpy.create_node(f"{name}_listener", context=context)
    listener.create_subscription(HazardEstimateArray, "/hazards", received.append, 100)
    player_node = rclpy.create_node(f"{name}_player", context=context)
    executor = make_executor(context)  # the executor the node's own main() spins
    try:
        assert node.start(), node.configure_error
        executor.add_node(node)
        executor.add_node(listener)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        inputs = ("/audio", "/rgb/image_raw", "/depth/image_raw", "/rgb/camera_info")
        # Half real time: a quiet machine answers (nearly) every frame. A busy one answers fewer,
        # because the node keeps only the newest frame; the comparisons hold either way.
        BagPlayer(player_node, bag, PlayOptions(rate=0.5, topics=inputs, wait_for=inputs)).play()
        wait_for_answers(received, expected)
    finally:
        executor.shutdown(timeout_sec=5.0)
        node.stop()
        node.destroy_node()
        listener.destroy_node()
        player_node.destroy_node()
        rclpy.shutdown(context=context)
    return received, node.events
