"""The real sound bank: recordings from Debian packages, catalogued, fetched and converted.

``python -m avi_ros.sounds build`` (``make sounds``) fills ``$AVI_ROS_SOUNDS`` (default
``~/.cache/avi_ros/sounds``) with ``bank/<split>/<label>/*.flac``; see ``build.py``.
"""
