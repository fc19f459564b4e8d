"""pip installs of the avi_ros Python library, for uses without ROS (training, offline replay).

colcon builds the ROS package through CMakeLists.txt; this file only makes the same
library installable with `pip install -e .`. Metadata lives in setup.cfg.
"""

from setuptools import setup

setup()
