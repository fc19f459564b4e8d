#!/usr/bin/env bash
# Fetch the catalogued Debian sound packages and build the real sound bank
# (${AVI_ROS_SOUNDS:-~/.cache/avi_ros/sounds}/bank). FULL=1 adds the large ambience packages.
# Where apt cannot fetch them, it says so in one line and exits 0 (procedural sounds only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source scripts/ros_env.sh --underlay-only
args=(build)
[[ "${FULL:-0}" == 1 ]] && args+=(--full)
exec python -m avi_ros.sounds "${args[@]}"
