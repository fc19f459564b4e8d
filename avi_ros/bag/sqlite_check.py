"""What can be checked of a sqlite3 rosbag2 file, which carries no checksums of its own.

Two checks, each reported as a ``DamagedFile`` (the same record as an mcap file cut short):
sqlite's own ``PRAGMA quick_check`` (page structure, every row and index readable; linear in the
file's size, unlike ``integrity_check`` it skips the index-content cross-check), and the messages
per topic in the database against those metadata.yaml counts (a database that lost rows).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from avi_ros.bag.mcap_storage import DamagedFile

QUICK_CHECK_LINES = 3  # problems quoted in the reason; the rest are counted


def check_sqlite_bag(database: Path, expected: dict[str, int] | None) -> list[DamagedFile]:
    """The damage found in one ``.db3`` file of a bag; empty when it passes.

    ``expected``: messages per topic that the database should hold (metadata.yaml's counts for a
    bag of this one file); None skips the count check.
    """
    size = database.stat().st_size
    try:
        with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                shown = "; ".join(problems[:QUICK_CHECK_LINES])
                more = (
                    f" (+{len(problems) - QUICK_CHECK_LINES} more)"
                    if len(problems) > QUICK_CHECK_LINES
                    else ""
                )
                return [DamagedFile(database, f"sqlite quick_check failed: {shown}{more}", size)]
            found = dict(
                db.execute(
                    "SELECT topics.name, COUNT(messages.id) FROM topics "
                    "LEFT JOIN messages ON messages.topic_id = topics.id GROUP BY topics.name"
                )
            )
    except sqlite3.DatabaseError as exc:
        return [DamagedFile(database, f"not a readable sqlite3 database ({exc})", size)]
    if expected is None:
        return []
    lost = {
        topic: count - found.get(topic, 0) for topic, count in expected.items() if count > found.get(topic, 0)
    }
    if not lost:
        return []
    reason = f"{sum(lost.values())} of the messages metadata.yaml counts are not in the database"
    return [DamagedFile(database, reason, size, messages_lost=lost)]
