"""The ROS 2 layer: the only part of avi_ros that imports rclpy or message classes.

Messages become core values at the edge (``conversions``); the node wires the core frame
assembly and pipeline to topics (``perception_node``).
"""
