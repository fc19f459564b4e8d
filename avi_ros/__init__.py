"""avi_ros: audio-visual imagination of occluded hazards for ROS 2 robots.

The generated message module (`avi_ros.msg`) is installed by colcon into the install tree,
while the hand-written modules may be imported from a source checkout. `extend_path` joins
both directories into one package, so `import avi_ros.msg` works from either place.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
