"""Markdown pieces shared by the result reports of training/ (tracks, decisions).

One place for the metric table's head and for how a target reads, so that every report
shows them alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def metric_table_head(columns: Sequence[str]) -> list[str]:
    """The two head lines of a table with a metric, its target and one column per name."""
    return ["| metric | target | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]


def target_text(bound: tuple[float, str] | None) -> str:
    """A ``(value, "min" | "max")`` target as ``≥ value`` or ``≤ value``; "" without one."""
    return f"{'≤' if bound[1] == 'max' else '≥'} {bound[0]:g}" if bound else ""


def metric_row(label: str, bound: tuple[float, str] | None, cells: Iterable[str]) -> str:
    """One row of that table: the metric's label, its target (see ``target_text``) and the cells."""
    return f"| {label} | {target_text(bound)} | " + " | ".join(cells) + " |"
