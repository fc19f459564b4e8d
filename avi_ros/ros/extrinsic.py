"""The microphone -> camera extrinsic: from parameters, or from tf2 where it is installed.

The tf2 lookup runs once at configure on a short-lived helper node, so the perception
node itself is never spun by a second executor.
"""

from __future__ import annotations

import math

import numpy as np
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.time import Time

from avi_ros.geometry import MicToCamera


def rpy_from_quaternion(x: float, y: float, z: float, w: float) -> tuple[float, float, float]:
    """Fixed-axis roll, pitch, yaw [rad] of a unit quaternion (R = Rz(yaw) Ry(pitch) Rx(roll), as tf2)."""
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if norm == 0.0:
        raise ValueError("quaternion has zero length")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(float(np.clip(2.0 * (w * y - z * x), -1.0, 1.0)))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def lookup_extrinsic(
    context: Context, microphone_frame: str, camera_frame: str, timeout_s: float
) -> tuple[MicToCamera | None, str]:
    """Pose of ``camera_frame`` in ``microphone_frame`` from tf2, or (None, why not)."""
    try:
        import tf2_ros  # optional: absent on pip-only installs
    except ImportError:
        return None, "tf2_ros is not installed"
    helper = Node("avi_ros_extrinsic_lookup", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(helper)
    try:
        buffer = tf2_ros.Buffer()
        tf2_ros.TransformListener(buffer, helper)
        deadline = helper.get_clock().now() + Duration(seconds=timeout_s)
        while helper.get_clock().now() < deadline:
            if buffer.can_transform(microphone_frame, camera_frame, Time()):
                transform = buffer.lookup_transform(microphone_frame, camera_frame, Time()).transform
                t, q = transform.translation, transform.rotation
                rpy = rpy_from_quaternion(q.x, q.y, q.z, q.w)
                return MicToCamera((t.x, t.y, t.z), rpy), "tf2"
            executor.spin_once(timeout_sec=0.05)
        return None, f"no transform {microphone_frame} -> {camera_frame} within {timeout_s:.1f} s"
    finally:
        executor.remove_node(helper)
        helper.destroy_node()
