"""The committed catalogue of real recordings: which clip of which Debian package is which sound.

File names are not labels, so every clip that enters the sound bank is listed by hand in
``catalogue.csv`` (one row per clip) with its label, the licence and credit read from the
package's ``/usr/share/doc/<package>/copyright``, and the id of the source recording it was cut
from. Clips that share a recording id always land in the same split (see ``splits.py``).

A path may name a member of an archive inside the package, ``<archive>!<member>`` (UFO:AI
ships its sounds in a zip ``.pk3``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from avi_ros.taxonomy import default_taxonomy

CATALOGUE_PATH = Path(__file__).with_name("catalogue.csv")
COLUMNS = ("package", "path", "label", "licence", "credit", "recording", "note")

# Real ambience (wind, rain, water, traffic hum, crowd, room tone), mixed under every scene.
BACKGROUND_LABEL = "background"
# Hazard classes, ``none`` (real non-hazard sounds: music, doors, birds, clicks, ...) and background.
LABELS: tuple[str, ...] = (*default_taxonomy().names, BACKGROUND_LABEL)

# Licences that allow redistribution of the converted clips with attribution. SPDX-like names,
# as Debian copyright files spell them; "GPL-2+" and "CC-BY-SA-3.0" are matched exactly.
ALLOWED_LICENCES = frozenset(
    {
        "CC0",
        "CC0-1.0",
        "public-domain",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "CC-BY-SA-3.0",
        "CC-BY-SA-4.0",
        "GPL-2",
        "GPL-2+",
        "GPL-3",
        "GPL-3+",
        "GFDL-1.3",
        "MIT",
    }
)

# Kept aside for an independent evaluation of the package: never catalogued, never fetched.
WITHHELD_PACKAGES = frozenset(
    {
        "openttd-opensfx",
        "tuxpaint-stamps-default",
        "lincity-ng-data",
        "lugaru-data",
        "minetest-data",
        "openarena-data",
        "sound-theme-freedesktop",
    }
)

# Large packages (mostly long ambience) fetched only by ``build --full`` (``make sounds FULL=1``).
FULL_ONLY_PACKAGES = frozenset({"megaglest-data"})

ARCHIVE_SEPARATOR = "!"
_RECORDING_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_AUDIO_SUFFIXES = (".wav", ".ogg", ".flac")


class CatalogueError(ValueError):
    """A catalogue row that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class CatalogueRow:
    """One clip: where it is in which package, what it is, and whose it is."""

    package: str
    path: str
    label: str
    licence: str
    credit: str
    recording: str
    note: str = ""

    @property
    def file_path(self) -> str:
        """The file inside the package (the archive, for archive members)."""
        return self.path.split(ARCHIVE_SEPARATOR, 1)[0]

    @property
    def member(self) -> str | None:
        """The member inside the archive at ``file_path``, or None for a plain file."""
        parts = self.path.split(ARCHIVE_SEPARATOR, 1)
        return parts[1] if len(parts) == 2 else None

    @property
    def clip_name(self) -> str:
        """A file-name-safe name for the clip, unique within its recording: the last two path
        components of the sound without extension, lower-cased."""
        sound = PurePosixPath(self.member or self.file_path)
        name = f"{sound.parent.name}-{sound.stem}" if sound.parent.name else sound.stem
        return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-")


def validate_row(row: CatalogueRow, where: str) -> None:
    """Raise CatalogueError (naming ``where``) if the row breaks a catalogue rule."""
    problems = []
    if row.package in WITHHELD_PACKAGES:
        problems.append(f"package {row.package} is withheld for independent evaluation")
    if row.label not in LABELS:
        problems.append(f"label '{row.label}' is not one of {list(LABELS)}")
    if row.licence not in ALLOWED_LICENCES:
        problems.append(f"licence '{row.licence}' is not on the allowed list {sorted(ALLOWED_LICENCES)}")
    if not row.credit.strip():
        problems.append("credit is empty")
    if not _RECORDING_ID.match(row.recording):
        problems.append(f"recording id '{row.recording}' is not [a-z0-9._-]+")
    sound = row.member or row.file_path
    path = PurePosixPath(row.file_path)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        problems.append(f"path '{row.path}' must be relative to the package root, without '..'")
    if not sound.lower().endswith(_AUDIO_SUFFIXES):
        problems.append(f"path '{row.path}' is not a {'/'.join(_AUDIO_SUFFIXES)} file")
    if problems:
        raise CatalogueError(f"{where}: " + "; ".join(problems))


def check_consistency(rows: Sequence[CatalogueRow], where: str = "catalogue") -> None:
    """Raise CatalogueError unless each recording belongs to one package and one label, and each
    (recording, clip name) and each (package, path) appears once."""
    owner: dict[str, tuple[str, str]] = {}
    seen_clips: set[tuple[str, str]] = set()
    seen_paths: set[tuple[str, str]] = set()
    for row in rows:
        key = (row.package, row.label)
        if owner.setdefault(row.recording, key) != key:
            raise CatalogueError(
                f"{where}: recording '{row.recording}' is used for {owner[row.recording]} and {key}"
            )
        for seen, item, what in (
            (seen_clips, (row.recording, row.clip_name), "clip name"),
            (seen_paths, (row.package, row.path), "path"),
        ):
            if item in seen:
                raise CatalogueError(f"{where}: duplicate {what} {item}")
            seen.add(item)


def read_catalogue(path: str | Path = CATALOGUE_PATH) -> list[CatalogueRow]:
    """Read and validate a catalogue CSV (header ``COLUMNS``); lines starting with '#' are comments."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"cannot read catalogue {path}: {exc}") from exc
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines)
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise CatalogueError(f"{path}: header must be {','.join(COLUMNS)}, got {reader.fieldnames}")
    rows = []
    for number, record in enumerate(reader, start=2):
        if None in record or any(value is None for value in record.values()):
            raise CatalogueError(f"{path} row {number}: expected {len(COLUMNS)} fields")
        row = CatalogueRow(**{key: value.strip() for key, value in record.items()})
        validate_row(row, f"{path} row {number}")
        rows.append(row)
    check_consistency(rows, str(path))
    return rows


def select_packages(rows: Iterable[CatalogueRow], full: bool) -> list[str]:
    """Packages to fetch, sorted: all catalogued ones with ``full``, else those not FULL-only."""
    return sorted({r.package for r in rows if full or r.package not in FULL_ONLY_PACKAGES})
