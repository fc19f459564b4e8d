"""Frame assembly: timestamped FOA audio + synchronised RGB-D in, complete ``Frame`` objects out.

The live node and the offline bag replay both feed this package with plain values (stamps in
nanoseconds, decoded audio, checked RGB-D sets), so a frame is assembled the same way whether
it came from DDS or from a file. Nothing here imports ROS. One module per concept:

- ``audio_ring``: ``AudioRing``, the bounded, timestamped buffer of FOA samples;
- ``rgbd_sync``: ``ApproximateTimeSync``, message_filters' approximate-time rule for
  RGB + depth + camera_info;
- ``assembler``: ``FrameAssembler``, which joins a synchronised set with the audio window
  ending at its stamp and hands the newest complete frame to inference.

Every drop and bad input is counted in an ``avi_ros.events.EventCounter`` under a reason key
defined in ``avi_ros.events``. The names below are the package's public API.
"""

from avi_ros.events import EventCounter
from avi_ros.frame_assembly.assembler import AssemblyConfig, FrameAssembler, RgbdSource
from avi_ros.frame_assembly.audio_ring import AudioRing, AudioRingConfig, AudioWindow, WindowStatus
from avi_ros.frame_assembly.rgbd_sync import ApproximateTimeSync

__all__ = [
    "ApproximateTimeSync",
    "AssemblyConfig",
    "AudioRing",
    "AudioRingConfig",
    "AudioWindow",
    "EventCounter",
    "FrameAssembler",
    "RgbdSource",
    "WindowStatus",
]
