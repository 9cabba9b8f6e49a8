#!/usr/bin/env python
"""Check that this environment is the locked one: every package of the lock installed at exactly its version,
and ``pip check`` clean.

    python scripts/check_lock.py requirements/lock-dev.txt     # what `make test` runs before the suite
    python scripts/check_lock.py --loose                       # a loose install (LOCK=none): pip check only
    python scripts/check_lock.py --compatible requirements/lock.txt   # was the lock made for this Python/OS?
    python scripts/check_lock.py --bootstrap requirements/lock.txt    # its pip/setuptools/wheel pins

Exit 0 when the environment matches; 1 with one line per difference otherwise; 2 for a lock made for another
Python version or platform (install with ``LOCK=none``, or refresh the lock there with ``make lock``).
Packages installed beyond the lock (detectron2, this package, anything added by hand) are listed, not
errors. Standard library only: it runs in any environment, before anything is installed.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

# What `pip check` reports in every vmae_det environment, and why it is not a fault (anything else is):
KNOWN_PIP_CHECK = (
    # scripts/install_detectron2.sh installs detectron2 --no-deps: it declares black==21.4b2 (imported only by
    # LazyConfig.to_py, which vmae_det never calls), future and pydot (imported by neither).
    (
        re.compile(r"^pb1-detectron2 \S+ requires (black|future|pydot), which is not installed\.$"),
        "detectron2 is installed without its unused black/future/pydot",
    ),
    # decord's only Linux wheel (decord-0.6.0-py3-none-manylinux2010_x86_64.whl) says cp36-cp36m in its WHEEL
    # file; pip installs it by its file name and it runs on CPython 3.10+, but pip check reads the WHEEL file.
    (
        re.compile(r"^decord 0\.6\.0 is not supported on this platform$"),
        "decord 0.6.0's wheel metadata names cp36 (its file name says py3)",
    ),
)
REQ_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*(?:#.*)?$")
HEADER = re.compile(r"^#\s*(python|platform):\s*(\S+)\s*$")


def canonical(name: str) -> str:
    """PEP 503 normalised name (as pip compares them)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def this_platform() -> Tuple[str, str]:
    """(python "X.Y", platform "sys.platform-machine") as the lock's header records them."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}", f"{sys.platform}-{platform.machine().lower()}"


def read_lock(path: Path, seen: Optional[set] = None) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(pins {canonical name: version}, header {"python": ..., "platform": ...}); follows ``-r FILE``."""
    seen = set() if seen is None else seen
    path = path.resolve()
    if path in seen:
        return {}, {}
    seen.add(path)
    if not path.is_file():
        raise FileNotFoundError(f"lock file '{path}' does not exist (make lock writes it)")
    pins: Dict[str, str] = {}
    header: Dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = HEADER.match(line)
        if m:
            header.setdefault(m.group(1), m.group(2))
            continue
        if line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            sub_pins, sub_header = read_lock(path.parent / line.split(None, 1)[1], seen)
            pins.update(sub_pins)
            for k, v in sub_header.items():
                header.setdefault(k, v)
            continue
        m = REQ_LINE.match(line)
        if not m:
            raise ValueError(f"{path}:{n}: not a 'name==version' line: {raw!r}")
        pins[canonical(m.group(1))] = m.group(2)
    return pins, header


def installed() -> Dict[str, str]:
    found: Dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist.version)
    return found


def compare(pins: Dict[str, str], have: Dict[str, str]) -> Tuple[List[str], List[str]]:
    """(differences, names installed but not locked)."""
    problems = []
    for name, want in sorted(pins.items()):
        got = have.get(name)
        if got is None:
            problems.append(f"{name}: locked {want}, not installed")
        elif got != want:
            problems.append(f"{name}: locked {want}, installed {got}")
    extra = sorted(f"{n}=={v}" for n, v in have.items() if n not in pins)
    return problems, extra


def compatible(header: Dict[str, str], lock: Path) -> Optional[str]:
    """None when the lock was made for this Python minor version and platform, else the reason."""
    py, plat = this_platform()
    want_py, want_plat = header.get("python"), header.get("platform")
    if want_py is None or want_plat is None:
        return f"{lock} has no '# python:' / '# platform:' header (write it with make lock)"
    if (want_py, want_plat) != (py, plat):
        return (
            f"{lock} was made for Python {want_py} on {want_plat}, this is Python {py} on {plat}: "
            f"install without it (LOCK=none make install, or scripts/install.sh --loose), "
            f"or refresh it here with make lock"
        )
    return None


def pip_check() -> Tuple[List[str], List[str]]:
    """(problems, known lines) of `pip check`: known lines are KNOWN_PIP_CHECK's, everything else a problem."""
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    problems, known = [], []
    for line in (proc.stdout + proc.stderr).splitlines():
        line = line.strip()
        if not line or line.startswith("No broken requirements"):
            continue
        why = next((why for pattern, why in KNOWN_PIP_CHECK if pattern.match(line)), None)
        (problems if why is None else known).append(line if why is None else why)
    if proc.returncode != 0 and not problems and not known:
        problems.append(f"pip check exited with {proc.returncode}")
    return problems, sorted(set(known))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("lock", nargs="?", default="requirements/lock-dev.txt", help="lock file (name==version lines)")
    p.add_argument("--loose", action="store_true", help="no lock: only pip check")
    p.add_argument("--compatible", action="store_true", help="only check the lock's Python version and platform")
    p.add_argument("--no-pip-check", action="store_true", help="skip pip check")
    p.add_argument(
        "--bootstrap",
        action="store_true",
        help="print the lock's pip, setuptools and wheel pins (scripts/install.sh installs them first)",
    )
    args = p.parse_args(argv)
    lock = Path(args.lock)
    failed = False
    if not args.loose:
        try:
            pins, header = read_lock(lock)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        reason = compatible(header, lock)
        if reason:
            print(f"error: {reason}", file=sys.stderr)
            return 2
        if args.compatible:
            return 0
        if args.bootstrap:
            tools = [f"{n}=={pins[n]}" for n in ("pip", "setuptools", "wheel") if n in pins]
            print(" ".join(tools or ["pip>=24,<26", "wheel", "setuptools>=64,<81"]))
            return 0
        problems, extra = compare(pins, installed())
        if problems:
            failed = True
            print(f"environment differs from {lock} ({len(problems)} of {len(pins)} packages):", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            print(
                "  to reinstall the locked versions: bash scripts/install.sh VENV (add dev for lock-dev.txt); "
                "make lock refreshes the lock from a fresh install",
                file=sys.stderr,
            )
        else:
            print(
                f"lock ok: {len(pins)} packages as in {lock}"
                + (f" (also installed, not locked: {', '.join(extra)})" if extra else "")
            )
    if not args.no_pip_check:
        problems, known = pip_check()
        if problems:
            failed = True
            print("pip check failed:", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
        else:
            print(
                f"pip check ok{' (loose install, no lock)' if args.loose else ''}"
                + (f"; known and harmless: {'; '.join(known)}" if known else "")
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
