"""training/tables.py: the pieces every result report shares."""

from __future__ import annotations

from pathlib import Path

from training.tables import metric_row, metric_table_head, portable_path


def test_a_path_under_home_is_written_with_a_tilde_and_others_as_they_are() -> None:
    assert portable_path(Path.home() / ".cache" / "bank") == "~/.cache/bank"
    assert portable_path("/srv/bank") == "/srv/bank"


def test_a_metric_row_reads_its_target_and_fits_its_head() -> None:
    head = metric_table_head(["a", "b"])
    row = metric_row("MOTA", (0.5, "min"), ["0.1", "0.2"])
    assert row == "| MOTA | ≥ 0.5 | 0.1 | 0.2 |"
    assert all(line.count("|") == row.count("|") for line in head)
