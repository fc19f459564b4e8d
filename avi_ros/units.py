"""Unit conversion constants, defined once for the whole package."""

from __future__ import annotations

NS_PER_S = 1_000_000_000  # nanoseconds per second (ROS stamps are integer ns)
MILLIMETRES_PER_METRE = 1000.0  # 16UC1 depth images are in millimetres
GRAVITY_MPS2 = 9.81  # what a level IMU at rest reports on its z axis (REP-145: gravity included) [m/s²]
