"""What a replay produced: per-frame records, the frames kept for pictures, and the summary.

Shared by ``avi_ros.bag.replay`` (which fills them) and ``avi_ros.bag.report`` (which draws
them). Stamps are the RGB-D stamps [ns].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avi_ros.bag.mcap_storage import IntegrityLog
from avi_ros.geometry import CameraIntrinsics, MicToCamera
from avi_ros.tracking import RobotMotion, TrackerConfig
from avi_ros.types import HazardEstimateData


@dataclass
class FrameRecord:
    """What the pipeline said about one frame (stamp = the RGB-D stamp [ns]).

    hazards: as published (with their track fields when tracking ran); untracked: the
    pipeline's hazards before tracking (empty when tracking did not run), which the report
    gives to the nearest-neighbour baseline; motion: the robot's odometry the tracker got (None:
    no odometry); physics_directions: the physics baseline, unit vectors [K, 3] in the microphone
    frame of up to three sources found by ``avi_ros.doa.candidate_directions`` in the frame's audio
    window (empty for silence), so the report can put the model's direction error beside physics.
    """

    stamp_ns: int
    hazards: list[HazardEstimateData]
    top: HazardEstimateData
    occlusion_level: float
    untracked: list[HazardEstimateData] = field(default_factory=list)
    motion: RobotMotion | None = None
    physics_directions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


@dataclass
class Snapshot:
    """A frame kept for the report's pictures."""

    stamp_ns: int
    rgb: np.ndarray
    occlusion_mask: np.ndarray
    intrinsics: CameraIntrinsics


class SnapshotKeeper:
    """Keeps at most ``2 * count`` frames evenly spaced over a stream of unknown length.

    Every ``stride``-th frame is kept; when too many are kept the stride doubles and every
    other one is dropped, so memory stays bounded whatever the bag's length.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.stride = 1
        self._seen = 0
        self._kept: list[tuple[int, Snapshot]] = []

    def offer(self, make: Callable[[], Snapshot]) -> None:
        index = self._seen
        self._seen += 1
        if index % self.stride:
            return
        self._kept.append((index, make()))
        if len(self._kept) > 2 * self.count:
            self.stride *= 2
            self._kept = [(i, s) for i, s in self._kept if i % self.stride == 0]

    def evenly_spaced(self) -> list[Snapshot]:
        """``count`` of the kept frames, spread over the whole stream."""
        if len(self._kept) <= self.count:
            return [s for _, s in self._kept]
        picks = np.linspace(0, len(self._kept) - 1, self.count).round().astype(int)
        return [self._kept[i][1] for i in picks]


@dataclass
class ReplayResult:
    """Everything a replay produced, for the report and for callers."""

    records: list[FrameRecord]
    truth: dict[int, list[HazardEstimateData]]
    snapshots: list[Snapshot]
    events: dict[str, int]
    extrinsic: MicToCamera
    extrinsic_source: str
    class_names: list[str]
    window_s: float  # audio the model hears per frame [s]
    bag: Path
    output_bag: Path
    inference: str = ""  # the device and precision the model ran with, e.g. "cpu fp32"
    integrity: IntegrityLog = field(default_factory=IntegrityLog)  # chunks verified or skipped
    report_index: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    tracking: TrackerConfig | None = None  # the tracker's config; None: the hazards are untracked

    def describe(self) -> str:
        dropped = sum(n for k, n in self.events.items() if k.startswith("frame."))
        lines = [
            f"replayed {self.bag}: {len(self.records)} frames ({dropped} dropped) on {self.inference}, "
            f"extrinsic from {self.extrinsic_source}",
            f"output bag: {self.output_bag}",
        ]
        if self.integrity.describe():
            lines.append(self.integrity.describe())
        if self.report_index is not None:
            lines.append(f"report: {self.report_index}")
        return "\n".join(lines)
