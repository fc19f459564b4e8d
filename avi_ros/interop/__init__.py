"""Standard ROS interfaces beside the package's own messages, as plain functions (no ROS imports).

- ``detections``: hazard estimates -> ``vision_msgs/Detection3DArray`` (class hypotheses with
  scores, a position with its direction and range uncertainty, the track id).
- ``audio_common``: ``audio_common_msgs/AudioDataStamped`` + ``AudioInfo`` -> the fields of an
  ``avi_ros/FoaAudio``, so the node's intake decodes them like any FOA chunk.

The ROS layer (``avi_ros.ros.standard_interfaces``) uses them where the message packages are
installed; the bag replay writes the detections with the rosbags type store.
"""
