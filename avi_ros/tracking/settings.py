"""The tracker's settings as the node's ``tracking.*`` parameters name them, for the node and the replay.

The perception node declares ``tracking.enabled`` and one parameter per name in
``PARAMETER_FIELDS`` (defaults: ``TrackerConfig``'s). ``avi-ros replay --params-file`` reads the
same keys from the node's parameters YAML, so the replay tracks with the configuration the
node runs with. Nothing here imports ROS.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from avi_ros.tracking.tracker import TrackerConfig

PREFIX = "tracking."
ENABLED = "enabled"
# TrackerConfig fields that are node parameters (the rest are tuned in code, bench/bench_tracker.py).
PARAMETER_FIELDS: tuple[str, ...] = (
    "min_hits",
    "max_missed_s",
    "gate_deg",
    "reset_gap_s",
    "publish_filtered",
)


def _typed(name: str, value: Any, default: Any) -> Any:
    """``value`` in the type of ``default`` (an int is a valid float); ValueError naming the key."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        raise ValueError(f"{PREFIX}{name}: expected {type(default).__name__}, got {value!r}")
    return type(default)(value)


def tracker_config(values: Mapping[str, Any]) -> TrackerConfig | None:
    """The config from ``values`` (keys without the prefix: ``enabled``, ``min_hits``, ...; a
    missing key keeps its default); None when ``enabled`` is false. ValueError naming
    ``tracking.<key>`` for a bad or unknown one."""
    unknown = set(values) - {ENABLED, *PARAMETER_FIELDS}
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {sorted(PREFIX + k for k in unknown)}; "
            f"known: {[PREFIX + k for k in (ENABLED, *PARAMETER_FIELDS)]}"
        )
    if not _typed(ENABLED, values.get(ENABLED, True), True):
        return None
    defaults = TrackerConfig()
    given = [name for name in PARAMETER_FIELDS if name in values]
    return TrackerConfig(**{name: _typed(name, values[name], getattr(defaults, name)) for name in given})


def _tracking_values(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The ``tracking`` keys of one node's ``ros__parameters``, nested or dotted."""
    values = dict(parameters.get(PREFIX.rstrip("."), None) or {})
    values.update({k[len(PREFIX) :]: v for k, v in parameters.items() if k.startswith(PREFIX)})
    return values


def tracker_config_from_params_file(path: Path) -> TrackerConfig | None:
    """The tracker config of a ROS 2 parameters YAML (``config/perception.yaml``'s layout: a node
    name or ``/**``, then ``ros__parameters``). ValueError naming the file when it is unreadable
    or holds no ``ros__parameters``, or naming the bad ``tracking.<key>``."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the parameters file {path}: {exc}") from exc
    sections = document.values() if isinstance(document, dict) else []
    nodes = [v["ros__parameters"] for v in sections if isinstance(v, dict) and "ros__parameters" in v]
    if not nodes:
        raise ValueError(f"{path}: no '<node>: ros__parameters:' section (see config/perception.yaml)")
    values: dict[str, Any] = {}
    for parameters in nodes:
        values.update(_tracking_values(parameters or {}))
    try:
        return tracker_config(values)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
