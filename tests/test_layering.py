"""The import rules of docs/architecture.md: no module imports a layer above its own (lazy imports included),
the tiny-dataset generators load neither torch nor detectron2, and pytorchvideo is imported nowhere."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vmae_det"

#: Layer of each top-level module or subpackage of vmae_det, lowest first. A module may import its own
#: layer and those below; modeling and evaluation are side by side and do not import each other.
LAYERS = {
    "__init__": 0,
    "compat": 0,
    "constants": 0,
    "config_schema": 0,
    "config": 0,
    "cli": 0,
    "resources": 0,  # worker / thread caps, device checks
    "formats": 1,
    "synthetic": 1.5,  # the tiny datasets' generators: above formats, below everything that loads torch
    "modeling": 2,
    "evaluation": 2,
    "checkpoints": 3,  # reading, layouts and loading of weights; above the models, below their users
    "data": 4,
    "engine": 5,
    "demo": 6,
    "tools": 7,  # the command-line tools (vmae_det/tools/; tools/*.py launch them)
}
#: Imports that the layers would allow but the architecture does not: the datasets read AVA files through
#: vmae_det.formats, as the evaluation does, not through the evaluation.
FORBIDDEN = {("data", "evaluation")}
#: Packages that may import only these of vmae_det: the generators run without torch and detectron2.
ONLY = {"synthetic": {"constants", "formats"}}


def _imports(path: Path):
    """``(line, vmae_det top-level name)`` of every import of vmae_det in ``path`` (at any depth)."""
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "vmae_det" and len(parts) > 1:
                    yield node.lineno, parts[1]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = rel[:-1]  # the package of the module (of an __init__ too: its own package)
                if node.level - 1 > len(package):
                    yield node.lineno, "<beyond the top-level package>"
                    continue
                base = list(package[: len(package) - (node.level - 1)])
                target = base + (node.module.split(".") if node.module else [])
                if target:
                    yield node.lineno, target[0]
                else:  # "from .. import data"
                    for alias in node.names:
                        yield node.lineno, alias.name
            elif node.module and node.module.split(".")[0] == "vmae_det":
                parts = node.module.split(".")
                if len(parts) > 1:
                    yield node.lineno, parts[1]
                else:
                    for alias in node.names:
                        yield node.lineno, alias.name


def test_no_module_imports_an_upper_layer():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).with_suffix("").parts[0]
        own = LAYERS[top]
        for line, name in _imports(path):
            if name.startswith("<"):
                bad.append(f"{path.relative_to(ROOT)}:{line}: a relative import {name}")
                continue
            if name not in LAYERS or name == top:
                continue
            if top in ONLY and name not in ONLY[top]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports vmae_det.{name} (only {sorted(ONLY[top])})")
                continue
            if LAYERS[name] > own or (LAYERS[name] == own and own == 2) or (top, name) in FORBIDDEN:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports vmae_det.{name}")
    assert not bad, "imports against the layering of docs/architecture.md:\n" + "\n".join(bad)


def test_synthetic_datasets_load_neither_torch_nor_detectron2():
    """The generators and their scripts' ``--help`` in one fresh interpreter: the tests' many generator runs
    would otherwise pay torch's import each."""
    scripts = [str(ROOT / "datasets" / f"make_tiny_{n}.py") for n in ("ava", "act", "ava_kinetics")]
    code = (
        "import runpy, sys\n"
        "import vmae_det.synthetic.act, vmae_det.synthetic.ava, vmae_det.synthetic.ava_kinetics\n"
        f"for script in {scripts!r}:\n"
        "    sys.argv = [script, '--help']\n"
        "    try:\n"
        "        runpy.run_path(script, run_name='__main__')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'detectron2')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines()[-1] == "[]"


def test_pytorchvideo_is_not_imported():
    users = [
        str(p.relative_to(ROOT))
        for d in ("vmae_det", "tools", "datasets")
        for p in (ROOT / d).rglob("*.py")
        if "pytorchvideo" in {n.split(".")[0] for n in _module_names(p)}
    ]
    assert users == []


def _module_names(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
