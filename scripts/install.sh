#!/usr/bin/env bash
# Create (or reuse) a virtual environment with everything vmae_det needs.
# Usage: scripts/install.sh [--loose] [VENV_DIR] [EXTRAS]   (default .venv; EXTRAS e.g. "dev" for the tests)
#
# Locked (the default): the exact versions of requirements/lock.txt (with EXTRAS: requirements/lock-dev.txt,
# which covers dev, onnx and hf), then this package without resolving anything (--no-deps), then detectron2,
# then scripts/check_lock.py (installed versions = the lock, pip check). LOCK=FILE names another lock.
# Loose (--loose or LOCK=none): torch==2.14.1 torchvision==0.29.1, then pyproject.toml's ranges resolved to
# whatever is newest (how `make lock` starts; in an existing venv pip keeps what already satisfies them).
set -euo pipefail
LOOSE=0
if [ "${1:-}" = "--loose" ]; then LOOSE=1; shift; fi
LOCKFILE=${LOCK:-}
if [ "$LOCKFILE" = none ]; then LOOSE=1; LOCKFILE=; fi
VENV=${1:-.venv}
EXTRAS=${2:-}
cd "$(dirname "$0")/.."
if [ -z "$LOCKFILE" ]; then
  LOCKFILE=requirements/lock.txt
  if [ -n "$EXTRAS" ]; then LOCKFILE=requirements/lock-dev.txt; fi
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
if [ "$LOOSE" = 0 ]; then
  # a lock is made for one Python version and platform: anywhere else, say so (and how to go loose) first
  "$PY" scripts/check_lock.py --compatible "$LOCKFILE"
  # pip, setuptools (<81: detectron2's model zoo imports pkg_resources) and wheel at their locked versions first
  # shellcheck disable=SC2046  # "pip==X setuptools==Y wheel==Z"
  "$PY" -m pip install --quiet $("$PY" scripts/check_lock.py --bootstrap "$LOCKFILE")
else
  # pip<26: pip 26 refuses to even download the detectron2 sdist (it declares a git URL extra).
  "$PY" -m pip install --quiet --upgrade "pip>=24,<26" wheel "setuptools>=64,<81"
fi
# One OpenCV wheel only (they share the cv2/ folder): an environment made before the switch to the contrib
# wheel (it has cv2.HOGDescriptor, docs/person_detectors.md) drops its OpenCV, which the next step reinstalls.
if "$PY" -m pip show -q opencv-python-headless opencv-python >/dev/null 2>&1; then
  "$PY" -m pip uninstall --quiet -y opencv-python-headless opencv-python opencv-contrib-python-headless
fi
if [ "$LOOSE" = 0 ]; then
  # every dependency at its locked version (torch==2.14.1 among them), then this package alone
  "$PY" -m pip install --quiet -r "$LOCKFILE"
  "$PY" -m pip install --quiet --no-build-isolation --no-deps -e ".${EXTRAS:+[$EXTRAS]}"
else
  # torch first: pip takes these from local disk here; a bare `torch` would pull a multi-GB build.
  "$PY" -m pip install --quiet torch==2.14.1 torchvision==0.29.1
  # this package with its dependencies (pyproject.toml) and the requested extras
  "$PY" -m pip install --quiet --no-build-isolation -e ".${EXTRAS:+[$EXTRAS]}"
fi
"$PY" -c "import detectron2" 2>/dev/null || bash scripts/install_detectron2.sh "$PY"
if [ "$LOOSE" = 0 ]; then
  "$PY" scripts/check_lock.py "$LOCKFILE"
  echo "environment ready: $VENV${EXTRAS:+ (extras: $EXTRAS)}, locked by $LOCKFILE"
else
  "$PY" scripts/check_lock.py --loose
  echo "environment ready: $VENV${EXTRAS:+ (extras: $EXTRAS)}, loose (newest versions, no lock)"
fi
