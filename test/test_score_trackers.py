"""``score_trackers``: the one place that runs several trackers over the same frames and scores them
(the replay report, training/track_eval.py and bench/bench_tracker.py all call it)."""

from __future__ import annotations

import numpy as np
from tracking_scenes import crossing_truth, stamp

from avi_ros.tracking import HazardTracker, NearestNeighbourTracker, RobotMotion, TrackingAccumulator
from avi_ros.tracking.metrics import TrackerFrame, score_trackers
from avi_ros.types import HazardEstimateData

TURNING = RobotMotion(0.0, 0.2)  # the robot turns in place [m/s, rad/s]


class Spy:
    """Wraps a tracker and records the calls ``score_trackers`` makes."""

    def __init__(self, tracker: HazardTracker | NearestNeighbourTracker) -> None:
        self.tracker = tracker
        self.calls: list[tuple[str, int | None, RobotMotion | None]] = []

    def update(
        self, estimates: list[HazardEstimateData], stamp_ns: int, motion: RobotMotion | None = None
    ) -> list[HazardEstimateData]:
        self.calls.append(("update", stamp_ns, motion))
        return self.tracker.update(estimates, stamp_ns, motion)

    def reset(self) -> None:
        self.calls.append(("reset", None, None))
        self.tracker.reset()


def test_each_tracker_gets_the_same_frames_and_the_score_of_running_it_by_hand():
    truth, estimates = crossing_truth(np.random.default_rng(11))
    frames = [
        TrackerFrame(stamp(k), e, t, TURNING) for k, (t, e) in enumerate(zip(truth, estimates, strict=True))
    ]
    scores = score_trackers(frames, {"tracker": HazardTracker(), "nn": NearestNeighbourTracker()})
    assert list(scores) == ["tracker", "nn"]
    for name, make in (("tracker", HazardTracker), ("nn", NearestNeighbourTracker)):
        tracker, by_hand = make(), TrackingAccumulator()
        for k, (t, e) in enumerate(zip(truth, estimates, strict=True)):
            by_hand.add_frame(stamp(k), t, tracker.update(e, stamp(k), TURNING))
        assert scores[name] == by_hand.compute()
    assert scores["tracker"].id_switches == 0 and scores["nn"].id_switches >= 2


def test_frames_without_truth_are_tracked_but_not_scored_and_a_new_scene_resets():
    truth, estimates = crossing_truth(np.random.default_rng(3), frames=12)
    frames = [
        TrackerFrame(stamp(k), e, t if k % 3 else None, None, scene=k // 6)
        for k, (t, e) in enumerate(zip(truth, estimates, strict=True))
    ]
    spy = Spy(HazardTracker())
    seen: list[tuple[str, int, int]] = []
    scores = score_trackers(
        frames,
        {"tracker": spy},
        make_accumulator=lambda: TrackingAccumulator(gate_deg=5.0),
        observe=lambda name, frame, published: seen.append((name, frame.stamp_ns, len(published))),
    )
    updates = [s for kind, s, _ in spy.calls if kind == "update"]
    assert updates == [stamp(k) for k in range(12)]  # every frame, in order
    assert [kind for kind, _, _ in spy.calls].count("reset") == 2  # the first frame and scene 1
    assert spy.calls[7][0] == "reset" and spy.calls[8][1] == stamp(6)  # before scene 1's first frame
    assert all(motion is None for kind, _, motion in spy.calls if kind == "update")
    assert scores["tracker"].truth_count == 2 * 8  # two true hazards on the 8 frames with truth
    assert [(name, s) for name, s, _ in seen] == [("tracker", stamp(k)) for k in range(12)]
    assert sum(count for _, _, count in seen) > 0  # what the tracker published reaches observe
