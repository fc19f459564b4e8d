# Source this file (bash) to use avi_ros from this checkout:
#   source scripts/ros_env.sh
# It activates the project's virtual environment, makes the ROS 2 Kilted wheels visible to
# ament/colcon when no ROS 2 distribution is sourced, and sources the colcon install tree
# (which puts the `avi-ros` command on PATH: CMakeLists.txt installs it into bin/).
# With --underlay-only it stops before the install tree (used by the setup itself).

_avi_ros_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_avi_ros_venv="${AVI_ROS_VENV:-$HOME/.cache/avi_ros/venv}"

if [[ ! -x "$_avi_ros_venv/bin/python" ]]; then
  echo "avi_ros: no environment at $_avi_ros_venv; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi

# shellcheck disable=SC1091
VIRTUAL_ENV_DISABLE_PROMPT=1 source "$_avi_ros_venv/bin/activate"

if [[ -z "${ROS_DISTRO:-}" ]]; then
  # The wheels install ament packages straight into the venv prefix.
  export AMENT_PREFIX_PATH="$_avi_ros_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$_avi_ros_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi

if [[ "${1:-}" != "--underlay-only" ]]; then
  if [[ -f "$_avi_ros_root/install/setup.bash" ]]; then
    # colcon's setup scripts read unset variables: relax `set -u` while they run.
    _avi_ros_nounset=0
    [[ $- == *u* ]] && _avi_ros_nounset=1 && set +u
    # shellcheck disable=SC1091
    source "$_avi_ros_root/install/setup.bash"
    [[ $_avi_ros_nounset == 1 ]] && set -u
    unset _avi_ros_nounset
  else
    echo "avi_ros: no install tree yet; run 'make setup' first" >&2
  fi
fi
unset _avi_ros_root _avi_ros_venv
