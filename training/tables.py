"""Pieces shared by the result reports of training/ (tracks, decisions, studies, the shipped model).

One place for the metric table's head, for how a target reads, and for how a path is written into
a committed result, so that every report shows them alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path


def portable_path(path: str | Path) -> str:
    """``path`` as committed results write it: the home directory as ``~`` (no machine path)."""
    return str(path).replace(str(Path.home()), "~")


def metric_table_head(columns: Sequence[str]) -> list[str]:
    """The two head lines of a table with a metric, its target and one column per name."""
    return ["| metric | target | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]


def target_text(bound: tuple[float, str] | None) -> str:
    """A ``(value, "min" | "max")`` target as ``≥ value`` or ``≤ value``; "" without one."""
    return f"{'≤' if bound[1] == 'max' else '≥'} {bound[0]:g}" if bound else ""


def metric_row(label: str, bound: tuple[float, str] | None, cells: Iterable[str]) -> str:
    """One row of that table: the metric's label, its target (see ``target_text``) and the cells."""
    return f"| {label} | {target_text(bound)} | " + " | ".join(cells) + " |"
