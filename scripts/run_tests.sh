#!/usr/bin/env bash
# The project's test command (`make test`, and so CI): lint, then the whole pytest suite
# against the colcon install tree. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/ros_env.sh
source scripts/ros_env.sh

echo "[avi_ros test] ruff check + format check"
ruff check .
ruff format --check .

# Each run gets its own DDS domain so parallel runs on one machine do not cross-talk.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 100 ))}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
echo "[avi_ros test] pytest (ROS_DOMAIN_ID=$ROS_DOMAIN_ID)"
exec python -m pytest -ra --durations=15 "$@"
