"""Subscriber QoS (REP-2003) and a clear hint when a publisher's QoS does not match.

Sensor topics are read with the sensor-data profile (best effort, keep last), which
receives from both best-effort and reliable publishers. A ``reliable`` setting is for
setups that need it; it cannot receive from best-effort publishers, and that mismatch is
the most common reason a vision node "hears nothing", so it is logged with the fix.
"""

from __future__ import annotations

from collections.abc import Callable

from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.qos import QoSPolicyKind, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

RELIABILITY_CHOICES = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def sensor_qos(reliability: str, depth: int) -> QoSProfile:
    """The sensor-data profile with the given reliability ('best_effort' | 'reliable') and depth."""
    if reliability not in RELIABILITY_CHOICES:
        raise ValueError(f"qos_reliability must be one of {list(RELIABILITY_CHOICES)}, got '{reliability}'")
    if depth < 1:
        raise ValueError(f"QoS depth must be >= 1, got {depth}")
    profile = QoSProfile(
        history=qos_profile_sensor_data.history,
        depth=depth,
        reliability=RELIABILITY_CHOICES[reliability],
        durability=qos_profile_sensor_data.durability,
    )
    return profile


def qos_mismatch_hint(topic: str, reliability: str, info: QoSRequestedIncompatibleQoSInfo) -> str:
    """The warning for an incompatible publisher: which policy, and which parameter fixes it."""
    try:
        policy = QoSPolicyKind(info.last_policy_kind).name
    except ValueError:
        policy = str(info.last_policy_kind)
    hint = (
        "the publisher is probably best-effort; set qos_reliability:=best_effort"
        if policy == "RELIABILITY" and reliability == "reliable"
        else "check the publisher's QoS (ros2 topic info -v)"
    )
    return (
        f"QoS mismatch on '{topic}': incompatible {policy} policy ({info.total_count} publisher(s)); "
        f"this node subscribes with qos_reliability={reliability}; {hint} (REP-2003)"
    )


def mismatch_callbacks(
    topic: str, reliability: str, warn: Callable[[str], None]
) -> SubscriptionEventCallbacks:
    """Subscription event callbacks that log ``qos_mismatch_hint`` on an incompatible publisher."""
    return SubscriptionEventCallbacks(
        incompatible_qos=lambda info: warn(qos_mismatch_hint(topic, reliability, info))
    )
