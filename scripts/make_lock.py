#!/usr/bin/env python
"""Write the lock (requirements/lock.txt, requirements/lock-dev.txt) from a fresh loose install: `make lock`.

    python3 scripts/make_lock.py             # what `make lock` runs (minutes: a new venv with torch)
    python3 scripts/make_lock.py --keep-venv # keep the temporary venv (its path is printed)

1. a new virtualenv in a temporary folder, made by the interpreter that runs this script (the lock records its
   Python version and platform; scripts/check_lock.py refuses the lock elsewhere);
2. ``scripts/install.sh --loose VENV dev``: torch==2.14.1 torchvision==0.29.1 as always, then pyproject.toml's
   dependencies and the ``dev`` extra resolved to whatever is newest, then detectron2;
3. ``pip freeze --all --exclude-editable`` of that venv, without detectron2 (pinned by sha256 in
   scripts/install_detectron2.sh) and this package: every other package at its exact version;
4. split: lock.txt holds what the base install needs (the dependency closure of ``vmae_det`` without extras,
   plus pip/setuptools/wheel), lock-dev.txt starts with ``-r lock.txt`` and adds what ``dev`` needs on top;
5. scripts/check_lock.py on the temporary venv against the new files, then each file written atomically
   (temporary file + rename), so an interrupted run leaves the old lock whole.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Set

REPO = Path(__file__).resolve().parents[1]
LOCK_DIR = REPO / "requirements"
NOT_LOCKED = {"vmae-det", "detectron2", "pb1-detectron2"}
BOOTSTRAP = ("pip", "setuptools", "wheel")
TORCH_PINS = {"torch": "2.14.1", "torchvision": "0.29.1"}  # as scripts/install.sh: never higher


def canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- inside the temporary venv (--emit)


def freeze() -> Dict[str, str]:
    """{canonical name: version} of `pip freeze --all --exclude-editable`, direct-URL installs dropped."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = {}
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or " @ " in line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise SystemExit(f"unexpected pip freeze line: {line!r}")
        pins[canonical(name)] = version
    return pins


def closure(root: str, extras: Iterable[str]) -> Set[str]:
    """Canonical names of every installed distribution that `pip install root[extras]` needs."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip's vendored copy
        from pip._vendor.packaging.requirements import Requirement

    dists = {canonical(d.metadata["Name"]): d for d in metadata.distributions() if d.metadata["Name"]}
    need: Set[str] = set()
    todo = [(canonical(root), frozenset(extras))]
    done = set()
    while todo:
        name, ext = todo.pop()
        if (name, ext) in done:
            continue
        done.add((name, ext))
        need.add(name)
        dist = dists.get(name)
        if dist is None:
            raise SystemExit(f"{name} is required but not installed in {sys.prefix}")
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", *ext)):
                continue
            todo.append((canonical(req.name), frozenset(req.extras)))
    return need


def header(title: str) -> str:
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    import platform

    return (
        f"# {title}\n"
        "# Written by `make lock` (scripts/make_lock.py) from a fresh loose install; do not edit by hand.\n"
        "# Installed by `make install` / `make test` / scripts/install.sh; LOCK=none (or --loose) resolves instead.\n"
        "# Not here: vmae_det itself (pip install --no-deps -e .) and detectron2 (scripts/install_detectron2.sh).\n"
        f"# python: {py}\n"
        f"# platform: {sys.platform}-{platform.machine().lower()}\n"
    )


def emit(out_dir: Path) -> None:
    pins = freeze()
    for name in NOT_LOCKED:
        pins.pop(name, None)
    base = (closure("vmae_det", ()) | set(BOOTSTRAP)) - NOT_LOCKED
    dev = (closure("vmae_det", ("dev",)) | set(BOOTSTRAP)) - NOT_LOCKED
    missing = sorted((base | dev) - set(pins))
    if missing:
        raise SystemExit(f"needed but not in pip freeze: {missing}")
    unneeded = sorted(set(pins) - dev)
    if unneeded:  # installed by nothing the lock covers: leave them out, say so
        print(f"make_lock: installed but needed by neither the base install nor dev, not locked: {unneeded}")
    for name, version in TORCH_PINS.items():
        if pins.get(name) != version:
            raise SystemExit(f"{name}=={pins.get(name)} installed, the lock must pin {name}=={version}")
    from pip._vendor.packaging.version import Version

    if Version(pins["setuptools"]) >= Version("81"):
        raise SystemExit(f"setuptools=={pins['setuptools']}: must stay < 81 (detectron2 imports pkg_resources)")
    if Version(pins["pillow"]) < Version("10"):
        raise SystemExit(f"pillow=={pins['pillow']}: never below 10")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{n}=={pins[n]}" for n in sorted(base)]
    (out_dir / "lock.txt").write_text(
        header("Locked environment of the base install (pyproject.toml's dependencies).") + "\n".join(lines) + "\n"
    )
    lines = [f"{n}=={pins[n]}" for n in sorted(dev - base)]
    (out_dir / "lock-dev.txt").write_text(
        header("Locked environment of the dev extra (tests, lint, onnx, hf): lock.txt plus")
        + "-r lock.txt\n"
        + "\n".join(lines)
        + "\n"
    )
    print(f"make_lock: {len(base)} base packages, {len(dev - base)} more for dev ({len(dev)} in all)")


# ---------------------------------------------------------------- the driver


def write_atomically(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--emit", metavar="DIR", help=argparse.SUPPRESS)  # run inside the venv: write the files to DIR
    p.add_argument("--keep-venv", action="store_true", help="keep the temporary venv")
    p.add_argument("--output-dir", default=str(LOCK_DIR), help="where lock.txt and lock-dev.txt go")
    args = p.parse_args()
    if args.emit:
        emit(Path(args.emit))
        return 0
    work = Path(tempfile.mkdtemp(prefix="vmae_det_lock_"))
    venv = work / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = dict(os.environ, LOCK="none")
        subprocess.run(["bash", str(REPO / "scripts/install.sh"), "--loose", str(venv), "dev"], check=True, env=env)
        py = str(venv / "bin" / "python")
        subprocess.run([py, str(Path(__file__).resolve()), "--emit", str(work / "out")], check=True)
        subprocess.run([py, str(REPO / "scripts/check_lock.py"), str(work / "out" / "lock-dev.txt")], check=True)
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("lock.txt", "lock-dev.txt"):
            write_atomically(work / "out" / name, out / name)
            print(f"make_lock: wrote {out / name}")
    finally:
        if args.keep_venv:
            print(f"make_lock: temporary venv kept at {venv}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
