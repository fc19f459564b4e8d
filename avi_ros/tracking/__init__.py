"""Hazards over time: track ids, ages, angular velocity and range rate (DESIGN.md, "tracks").

Core layer: numpy and scipy only. ``HazardTracker`` is the tracker the node and the replay
call once per frame; ``NearestNeighbourTracker`` is the baseline it is measured against;
``TrackingAccumulator`` scores either against ground truth.
"""

from avi_ros.events import TRACKS_GAP, TRACKS_TIME_BACKWARDS  # defined with every key, re-exported
from avi_ros.tracking.baseline import NearestNeighbourTracker
from avi_ros.tracking.ego_motion import RobotMotion
from avi_ros.tracking.metrics import TrackingAccumulator, TrackingScores, TruthPoint
from avi_ros.tracking.tracker import HazardTracker, TrackerConfig, TrackView, TrailPoint

__all__ = [
    "TRACKS_GAP",
    "TRACKS_TIME_BACKWARDS",
    "HazardTracker",
    "NearestNeighbourTracker",
    "RobotMotion",
    "TrackView",
    "TrackerConfig",
    "TrackingAccumulator",
    "TrackingScores",
    "TrailPoint",
    "TruthPoint",
]
