#!/usr/bin/env bash
# Create (or reuse) a virtual environment with everything vmae_det needs.
# Usage: scripts/install.sh [VENV_DIR] [EXTRAS]   (default .venv; EXTRAS e.g. "dev" for the tests)
set -euo pipefail
VENV=${1:-.venv}
EXTRAS=${2:-}
cd "$(dirname "$0")/.."
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
# pip<26: pip 26 refuses to even download the detectron2 sdist (it declares a git URL extra).
"$PY" -m pip install --quiet --upgrade "pip>=24,<26" wheel "setuptools>=64,<81"
# torch first: pip takes these from local disk here; a bare `torch` would pull a multi-GB build.
"$PY" -m pip install --quiet torch==2.14.1 torchvision==0.29.1
# One OpenCV wheel only (they share the cv2/ folder): an environment made before the switch to the contrib
# wheel (it has cv2.HOGDescriptor, docs/person_detectors.md) drops its OpenCV, which the next step reinstalls.
if "$PY" -m pip show -q opencv-python-headless opencv-python >/dev/null 2>&1; then
  "$PY" -m pip uninstall --quiet -y opencv-python-headless opencv-python opencv-contrib-python-headless
fi
# this package with its dependencies (pyproject.toml) and the requested extras
"$PY" -m pip install --quiet --no-build-isolation -e ".${EXTRAS:+[$EXTRAS]}"
"$PY" -c "import detectron2" 2>/dev/null || bash scripts/install_detectron2.sh "$PY"
echo "environment ready: $VENV${EXTRAS:+ (extras: $EXTRAS)}"
