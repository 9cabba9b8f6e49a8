#!/usr/bin/env bash
# Install detectron2 v0.6 as a pure-Python package (no compiled detectron2._C) from PyPI.
#
# Why: detectron2 has no wheel on PyPI. The sdist `pb1-detectron2==0.6` carries upstream's v0.6
# `detectron2/` package minus the C++/CUDA sources, and its setup.py always tries to build them.
# We pin the sdist by sha256, drop the extension, restore the model-zoo configs folder that
# setup.py globs for package data, and install it. vmae_det.compat provides the two shims
# detectron2 v0.6 then needs on current torch/Pillow.
#
# With GitHub reachable, the upstream install (with compiled ops) is better:
#   pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'
#
# Usage: scripts/install_detectron2.sh PYTHON   (the venv's python; torch must already be installed)
set -euo pipefail
PY=${1:-python}
SHA256=5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --no-build-isolation: the sdist's metadata step imports torch.
"$PY" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
    -d "$work" pb1-detectron2==0.6
sdist=$(ls "$work"/*.tar.gz)
echo "$SHA256  $sdist" | sha256sum -c - >/dev/null || { echo "sha256 mismatch for $sdist" >&2; exit 1; }
tar -xzf "$sdist" -C "$work"
src=$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -n1)

# Pure Python: no C++ extension. setup.py builds ext_modules=get_extensions(); make it empty.
"$PY" - "$src/setup.py" <<'PYEOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
s2, n = re.subn(r"ext_modules\s*=\s*get_extensions\(\)", "ext_modules=[]", s)
if n != 1:
    sys.exit(f"could not patch ext_modules in {p}")
open(p, "w").write(s2)
PYEOF
# setup.py globs configs/** for model_zoo package data.
[ -d "$src/configs" ] || cp -r "$src/detectron2/model_zoo/configs" "$src/configs"
"$PY" -m pip install --quiet --no-build-isolation --no-deps "$src"
echo "detectron2 v0.6 (pure Python) installed"
