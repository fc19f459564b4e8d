"""What the replay tests share: the scenario bag's microphone extrinsic and the wait for a live
node's answers (bounded only by a deadline that matters when answers stop coming)."""

from __future__ import annotations

import time

NS = 1_000_000_000
SCENARIO_EXTRINSIC_XYZ = (0.05, 0.0, 0.1)  # what the scenario's /tf_static says

# How long the live node may stay silent before the frames it has not answered count as skipped,
# and the most the comparison waits in all; both only bound waiting, never what is compared.
QUIET_S = 5.0
WAIT_LIMIT_S = 180.0


def header_stamp_ns(header) -> int:
    """A message header's stamp [ns]."""
    return header.stamp.sec * NS + header.stamp.nanosec


def wait_for_answers(received: list, expected: int) -> None:
    """Until ``expected`` messages arrived, or at least one did and then none for ``QUIET_S`` (the
    node skipped the rest), or ``WAIT_LIMIT_S`` passed."""
    start = time.monotonic()
    count, changed = len(received), start
    while len(received) < expected and time.monotonic() - start < WAIT_LIMIT_S:
        if len(received) != count:
            count, changed = len(received), time.monotonic()
        elif count and time.monotonic() - changed > QUIET_S:
            return
        time.sleep(0.05)
