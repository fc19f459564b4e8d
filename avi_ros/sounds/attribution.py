"""The attribution text that the clips' licences (CC-BY, CC-BY-SA, GPL, GFDL) require.

One text, generated from the catalogue, is written both to ``bank/ATTRIBUTION`` next to the
converted clips and to ``ATTRIBUTION.md`` at the repository root (a test keeps the two equal).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from avi_ros.sounds.catalogue import CatalogueRow

HEADER = """# Attribution of the real sound bank

`make sounds` (`python -m avi_ros.sounds build`) fetches the Debian packages below with
`apt-get download` and converts the listed clips to 24 kHz mono FLAC (trimmed of leading and
trailing silence) for training. The clips stay under their original licences; the credits and
licences were read from each package's `/usr/share/doc/<package>/copyright`. This file is
generated from `avi_ros/sounds/catalogue.csv` by `python -m avi_ros.sounds attribution`.
"""


def attribution_text(rows: Sequence[CatalogueRow]) -> str:
    """Markdown: per package, each (credit, licence) with the clips it covers."""
    groups: dict[str, dict[tuple[str, str], list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[row.package][(row.credit, row.licence)].append(row.path)
    parts = [HEADER]
    for package in sorted(groups):
        parts.append(f"\n## Debian package `{package}`\n")
        for (credit, licence), paths in sorted(groups[package].items()):
            parts.append(f"\n- {credit} — licence {licence}; {len(paths)} clip(s):\n")
            parts.extend(f"  - `{path}`\n" for path in sorted(paths))
    return "".join(parts)
