"""The one builder of a hazard estimate for tests: the tracker-scoring detection of
``avi_ros.tracking.metrics`` (class, direction, distance) with the taxonomy's class name and any
other field a test names, so no test module writes out all of HazardEstimateData's fields."""

from __future__ import annotations

import dataclasses
import math

from avi_ros.taxonomy import Taxonomy, default_taxonomy
from avi_ros.tracking.metrics import simulated_detection
from avi_ros.types import HazardEstimateData


def estimate(
    class_id: int,
    azimuth_deg: float = 0.0,
    distance: float = 3.0,
    taxonomy: Taxonomy | None = None,
    **fields: object,
) -> HazardEstimateData:
    """A hazard of ``class_id`` (probability 1, named from ``taxonomy``, default the package's) at
    ``azimuth_deg`` [deg, REP-103] and ``distance`` [m]; confidence 0.9, visible, occlusion 0,
    weights 0.5 / 0.5, low risk, continue, unless ``fields`` say otherwise."""
    taxonomy = taxonomy or default_taxonomy()
    detection = simulated_detection(math.radians(azimuth_deg), distance, class_id, taxonomy.num_classes)
    return dataclasses.replace(detection, class_name=taxonomy.names[class_id], **fields)
