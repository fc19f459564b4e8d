"""RGB-D synchronisation: the matching rule of the Python ``message_filters.ApproximateTimeSynchronizer``.

The node and the bag replay both match RGB, depth and camera_info with this class (the node
never uses message_filters, so live and replay match the same sets by construction). Items
are opaque; the caller gives each one's stamp [ns]. Nothing here imports ROS.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from avi_ros.events import RGBD_TIME_BACKWARDS, RGBD_UNMATCHED, EventCounter
from avi_ros.units import NS_PER_S


class ApproximateTimeSync:
    """The matching rule of the Python ``message_filters.ApproximateTimeSynchronizer``.

    Each input keeps a queue of items keyed by stamp (a repeated stamp replaces the item),
    at most ``queue_size`` long (the oldest stamp is evicted and counted as unmatched). When
    an item arrives, every other queue is searched for stamps within ``slop_s`` of it,
    closest first; the first combination whose stamps all lie within ``slop_s`` of one
    another (strictly) is emitted as ``callback(*items)`` in input order and removed. An
    item that is itself evicted on arrival (its queue is full of later stamps) matches
    nothing, as in message_filters.

    Beyond message_filters: an item stamped more than ``backwards_reset_s`` before the newest
    item of its input means time went back (a bag that loops without /clock); that input's
    queue is cleared (``rgbd.time_backwards``), so stamps from before the jump cannot fill it
    for ever and evict every new item on arrival. Other inputs clear theirs on their own first
    item after the jump; until then their old stamps lie beyond the slop and match nothing.
    ``None`` disables this. Not thread-safe on its own: callers serialise ``add`` and ``reset``.
    """

    def __init__(
        self,
        input_names: tuple[str, ...],
        queue_size: int,
        slop_s: float,
        callback: Callable[..., None],
        events: EventCounter | None = None,
        backwards_reset_s: float | None = 1.0,
    ):
        if len(input_names) < 2:
            raise ValueError("ApproximateTimeSync needs at least two inputs")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not slop_s > 0.0:
            raise ValueError(f"slop must be > 0 s, got {slop_s}")
        if backwards_reset_s is not None and backwards_reset_s < 0.0:
            raise ValueError(f"backwards_reset_s must be >= 0 s, got {backwards_reset_s}")
        self.input_names = input_names
        self.queue_size = queue_size
        self.slop_ns = round(slop_s * NS_PER_S)
        self.backwards_ns = None if backwards_reset_s is None else round(backwards_reset_s * NS_PER_S)
        self.callback = callback
        self.events = events if events is not None else EventCounter()
        self._queues: list[dict[int, Any]] = [{} for _ in input_names]

    def reset(self) -> None:
        for queue in self._queues:
            queue.clear()

    def add(self, index: int, stamp_ns: int, item: Any) -> bool:
        """Queue ``item`` of input ``index``; returns True when it completed a set."""
        stamp_ns = int(stamp_ns)
        queue = self._queues[index]
        if self.backwards_ns is not None and queue and stamp_ns < max(queue) - self.backwards_ns:
            self.events.record(
                RGBD_TIME_BACKWARDS,
                f"a '{self.input_names[index]}' stamp went back {(max(queue) - stamp_ns) / NS_PER_S:.3f} s; "
                "its synchroniser queue was cleared",
            )
            queue.clear()
        queue[stamp_ns] = item
        while len(queue) > self.queue_size:
            del queue[min(queue)]
            self.events.record(
                RGBD_UNMATCHED,
                f"no match within {self.slop_ns / NS_PER_S:.3f} s for a '{self.input_names[index]}' "
                "message; check the stamps or raise the sync slop",
            )
        if stamp_ns not in queue:  # evicted at once: older than everything its queue holds
            return False
        candidates: list[list[int]] = []
        for other, other_queue in enumerate(self._queues):
            if other == index:
                candidates.append([stamp_ns])
                continue
            near = sorted(
                (s for s in other_queue if abs(s - stamp_ns) <= self.slop_ns), key=lambda s: abs(s - stamp_ns)
            )
            if not near:
                return False
            candidates.append(near)
        for combination in itertools.product(*candidates):
            if max(combination) - min(combination) < self.slop_ns:
                items = [q.pop(s) for q, s in zip(self._queues, combination, strict=True)]
                self.callback(*items)
                return True
        return False
