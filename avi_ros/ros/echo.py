"""``avi-ros echo``: print the hazards a perception node publishes, for systems without ``ros2 topic``.

One line per HazardEstimateArray: its stamp and, per hazard, class, confidence, azimuth and
elevation [deg], distance [m], visibility, risk and recommended action; or, with
``kind="assessments"``, one line per HazardAssessment of the decision stage (risk, reason,
action, confidence, whether telemetry was missing). With ``jsonl`` every
message is also appended to a JSON-lines file (flushed per line, so nothing is lost when the
process is stopped), which the demo uses to compare the live node with the offline replay.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile

from avi_ros.decision.labels import ACTION_NAMES, REASON_NAMES, RISK_NAMES
from avi_ros.sensor_decoding import stamp_to_ns
from avi_ros.taxonomy import Action, RiskLevel, Visibility
from avi_ros.units import NS_PER_S


def hazards_record(msg: Any) -> dict[str, Any]:
    """A HazardEstimateArray as a JSON-ready dict (angles in radians, as in the message)."""
    return {
        "stamp_ns": stamp_to_ns(msg.header.stamp),
        "frame_id": msg.header.frame_id,
        "hazards": [
            {
                "class_id": int(h.class_id),
                "class_name": h.class_name,
                "confidence": float(h.confidence),
                "azimuth": float(h.azimuth),
                "elevation": float(h.elevation),
                "distance": float(h.distance),
                "visibility": Visibility(int(h.visibility)).name,
                "risk_level": RiskLevel(int(h.risk_level)).name,
                "recommended_action": Action(int(h.recommended_action)).name,
            }
            for h in msg.hazards
        ],
    }


def assessment_record(msg: Any) -> dict[str, Any]:
    """A HazardAssessment as a JSON-ready dict (label names as in ``avi_ros.decision.labels``)."""
    return {
        "stamp_ns": stamp_to_ns(msg.header.stamp),
        "frame_id": msg.header.frame_id,
        "risk": RISK_NAMES[int(msg.risk_level)],
        "reason": REASON_NAMES[int(msg.reason)],
        "action": ACTION_NAMES[int(msg.recommended_action)],
        "confidence": float(msg.confidence),
        "hazard_indices": [int(i) for i in msg.hazard_indices],
        "telemetry_missing": bool(msg.telemetry_missing),
    }


def describe(record: dict[str, Any]) -> str:
    """One human-readable line for a record of ``hazards_record`` or ``assessment_record``."""
    stamp = record["stamp_ns"] / NS_PER_S
    if "action" in record:
        missing = " (no telemetry)" if record["telemetry_missing"] else ""
        return (
            f"[{stamp:.3f}] risk {record['risk']} ({record['reason']}) -> {record['action']} "
            f"confidence {record['confidence']:.2f}{missing}"
        )
    if not record["hazards"]:
        return f"[{stamp:.3f}] no hazard"
    parts = [
        f"{h['class_name']} {h['confidence']:.2f} az {math.degrees(h['azimuth']):+.0f} deg "
        f"el {math.degrees(h['elevation']):+.0f} deg {h['distance']:.1f} m {h['visibility'].lower()} "
        f"risk {h['risk_level'].lower()} -> {h['recommended_action'].lower()}"
        for h in record["hazards"]
    ]
    return f"[{stamp:.3f}] " + "; ".join(parts)


def run_echo(
    topic: str = "/hazards",
    count: int | None = None,
    timeout_s: float | None = None,
    jsonl: Path | None = None,
    quiet: bool = False,
    ros_args: list[str] | None = None,
    kind: str = "hazards",
) -> int:
    """Listen until ``count`` messages, ``timeout_s`` seconds, or Ctrl-C / SIGTERM; returns the count.

    ``kind``: ``hazards`` (HazardEstimateArray) or ``assessments`` (HazardAssessment)."""
    from avi_ros.msg import HazardAssessment, HazardEstimateArray

    message_type, to_record = {
        "hazards": (HazardEstimateArray, hazards_record),
        "assessments": (HazardAssessment, assessment_record),
    }[kind]

    context = rclpy.Context()
    rclpy.init(args=ros_args, context=context)
    node = rclpy.create_node("avi_ros_echo", context=context)
    received = 0
    sink = jsonl.open("a", encoding="utf-8") if jsonl is not None else None

    def on_message(msg: Any) -> None:
        nonlocal received
        received += 1
        record = to_record(msg)
        if sink is not None:
            sink.write(json.dumps(record) + "\n")
            sink.flush()
        if not quiet:
            print(describe(record), flush=True)

    node.create_subscription(message_type, topic, on_message, QoSProfile(depth=50))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while context.ok() and (count is None or received < count):
            if deadline is not None and time.monotonic() > deadline:
                break
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if sink is not None:
            sink.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return received
