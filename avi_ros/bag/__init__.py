"""rosbag2 files (mcap or sqlite3) read and written with `rosbags`, without rclpy."""
