"""Make detectron2 v0.6 importable and usable on current dependencies.

Imported by ``vmae_det/__init__.py``; it imports neither torch nor detectron2 (the patches run from import hooks),
so ``import vmae_det`` stays light for tools that need neither.

The shims (why each: docs/install.md): a ``PIL.Image.LINEAR`` alias (removed in Pillow 10); a ``detectron2._C``
placeholder, only where the extension is missing *and* detectron2 imports it without a fallback (v0.6, not
upstream HEAD, whose fallbacks a placeholder would defeat); ``MapDataset``'s ``random.sample`` on a set (refused
by Python >= 3.11); two deprecation warnings of v0.6, silenced by message.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import os
import random
import sys
import types
import warnings
from typing import List, Optional

__all__ = [
    "apply",
    "CompiledOpUnavailable",
    "extension_placeholder_installed",
    "extension_placeholder_needed",
    "has_compiled_ops",
    "unguarded_extension_imports",
]

_PLACEHOLDER_FLAG = "__vmae_det_placeholder__"


class CompiledOpUnavailable(RuntimeError):
    """Raised when code reaches a detectron2 C++/CUDA op that this install does not have."""


def _silence_known_deprecations() -> None:
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated", category=UserWarning)


def _patch_pillow() -> None:
    from PIL import Image

    if not hasattr(Image, "LINEAR"):
        Image.LINEAR = Image.BILINEAR


class _MissingExtension(types.ModuleType):
    """Stands in for ``detectron2._C``; every op lookup raises a helpful error."""

    def __getattr__(self, name: str):
        # inspect/torch probe dunders such as __file__ while registering ops: those must look
        # like ordinary missing attributes, not like a user hitting a compiled op.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise CompiledOpUnavailable(
            f"detectron2 compiled op '{name}' is unavailable: this detectron2 was installed from "
            "pure-Python sources without its C++/CUDA extension (detectron2._C). Install detectron2 "
            "from source to get it: pip install --no-build-isolation "
            "'git+https://github.com/facebookresearch/detectron2.git' (see README, 'Installing "
            "detectron2')."
        )


# Modules that are the extension, or a thin wrapper that imports it unconditionally (the fast COCO
# evaluation): importing either at module level without an ImportError fallback needs ``detectron2._C``.
_EXTENSION_MODULES = ("detectron2._C", "detectron2.evaluation.fast_eval_api")
# Cheap substring pre-filter: only files holding one of these are parsed.
_MAY_IMPORT_EXTENSION = (b"import _C", b", _C", b"detectron2._C", b"fast_eval_api")
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:  # bare except
        return True
    types_ = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS for t in types_)


def _imported_modules(node: ast.AST, package: List[str]) -> List[str]:
    """Absolute names an ``import``/``from ... import`` statement may import (``from a import b``: ``a``
    and ``a.b``); ``package`` is the importing module's package, for relative imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = package[: len(package) - (node.level - 1)]
        if len(base) < 1:
            return []
        parts = base + (node.module.split(".") if node.module else [])
    else:
        parts = node.module.split(".") if node.module else []
    mod = ".".join(parts)
    return [mod] + [f"{mod}.{alias.name}" for alias in node.names]


def _unguarded_imports(stmts, package: List[str], guarded: bool = False):
    """Import statements that run when the module is imported (not inside a function or class) and are
    not inside a ``try`` that catches ``ImportError``."""
    for node in stmts:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if not guarded:
                yield node
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            catches = any(_catches_import_error(h) for h in node.handlers)
            yield from _unguarded_imports(node.body, package, guarded or catches)
            for h in node.handlers:
                yield from _unguarded_imports(h.body, package, guarded)
            yield from _unguarded_imports(node.orelse + node.finalbody, package, guarded)
        elif isinstance(node, (ast.If, ast.For, ast.While, ast.With)):
            yield from _unguarded_imports(node.body + node.orelse, package, guarded)


def unguarded_extension_imports(package_dir: str) -> List[str]:
    """``"module:line"`` of the modules in ``package_dir`` that import ``detectron2._C`` (or ``fast_eval_api``)
    at import time without an ``ImportError`` fallback."""
    found = []
    root = os.path.dirname(os.path.abspath(package_dir))
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "configs"))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    source = f.read()
            except OSError:
                continue
            if not any(word in source for word in _MAY_IMPORT_EXTENSION):
                continue
            module = os.path.relpath(path, root)[: -len(".py")].split(os.sep)
            if module[-1] == "__init__":
                module = module[:-1]
            if ".".join(module) in _EXTENSION_MODULES:
                continue  # the wrapper itself: whether it is needed depends on its importers
            package = module if name == "__init__.py" else module[:-1]
            try:
                tree = ast.parse(source, filename=path)
            except (SyntaxError, ValueError):
                continue
            for node in _unguarded_imports(tree.body, package):
                if any(m in _EXTENSION_MODULES for m in _imported_modules(node, package)):
                    found.append(f"{'.'.join(module)}:{node.lineno}")
    return found


def _detectron2_dirs() -> List[str]:
    """The installed detectron2 package's folders, found without importing it."""
    module = sys.modules.get("detectron2")
    if module is not None:
        return list(getattr(module, "__path__", None) or [])
    # Ask the finders directly: importlib.util.find_spec would also consult (and so use up) our own
    # post-import hook for "detectron2".
    for finder in sys.meta_path:
        if isinstance(finder, _PostImportPatcher) or not hasattr(finder, "find_spec"):
            continue
        try:
            spec = finder.find_spec("detectron2", None)
        except (ImportError, ValueError):
            continue
        if spec is not None:
            return list(spec.submodule_search_locations or [])
    return []


def _extension_found() -> bool:
    """Whether the real ``detectron2._C`` exists (without importing detectron2: ``find_spec`` of a
    submodule would import its package)."""
    module = sys.modules.get("detectron2._C")
    if module is not None:
        return not getattr(module, _PLACEHOLDER_FLAG, False)
    if "detectron2" in sys.modules:
        try:
            return importlib.util.find_spec("detectron2._C") is not None
        except (ImportError, ValueError):
            return False
    suffixes = importlib.machinery.all_suffixes()
    return any(
        os.path.isfile(os.path.join(d, "_C" + s)) or os.path.isfile(os.path.join(d, "_C", "__init__.py"))
        for d in _detectron2_dirs()
        for s in suffixes
    )


def extension_placeholder_needed(package_dir: Optional[str] = None) -> bool:
    """True when the real ``detectron2._C`` cannot be found and the detectron2 in ``package_dir`` (default: the
    installed one) imports it without a fallback."""
    if package_dir is None:
        if _extension_found():
            return False
        dirs = _detectron2_dirs()
        if not dirs:
            return False
        package_dir = dirs[0]
    return bool(unguarded_extension_imports(package_dir))


def extension_placeholder_installed() -> bool:
    """True when ``detectron2._C`` is this module's placeholder."""
    return bool(getattr(sys.modules.get("detectron2._C"), _PLACEHOLDER_FLAG, False))


def _install_extension_placeholder(detectron2_module: Optional[types.ModuleType] = None) -> None:
    if "detectron2._C" in sys.modules or _extension_found():
        return
    paths = list(getattr(detectron2_module, "__path__", None) or [])
    if not extension_placeholder_needed(paths[0] if paths else None):
        return  # the installed detectron2 falls back by itself on ImportError (upstream HEAD)
    module = _MissingExtension("detectron2._C")
    module.__file__ = "<vmae_det placeholder for detectron2._C>"
    module.__spec__ = importlib.machinery.ModuleSpec("detectron2._C", loader=None)
    setattr(module, _PLACEHOLDER_FLAG, True)
    # Build-information queries (detectron2.utils.collect_env, run by default_setup) are not ops:
    # answer them truthfully instead of failing every training start.
    module.get_compiler_version = lambda: "none (pure-Python detectron2; see vmae_det.compat)"
    module.get_cuda_version = lambda: "none (pure-Python detectron2)"
    module.has_cuda = lambda: False
    sys.modules["detectron2._C"] = module


class _SetSamplingRandom(random.Random):
    """``random.Random`` whose ``sample`` also takes sets (in sorted order, so it stays seeded)."""

    def sample(self, population, k, **kwargs):
        if isinstance(population, (set, frozenset)):
            population = sorted(population)
        return super().sample(population, k, **kwargs)


def _patch_map_dataset(common) -> None:
    cls = common.MapDataset
    if getattr(cls, "_vmae_det_patched", False):
        return
    original_init = cls.__init__

    def __init__(self, dataset, map_func):
        original_init(self, dataset, map_func)
        self._rng = _SetSamplingRandom(42)

    cls.__init__ = __init__
    cls._vmae_det_patched = True


class _PostImportPatcher(importlib.abc.MetaPathFinder):
    """Run ``patch(module)`` right after ``name`` is imported (once). The hook stays until the module executes:
    a mere ``find_spec`` (transformers 4.x probes for detectron2 so) must not use it up."""

    def __init__(self, name: str, patch):
        self.name, self.patch = name, patch

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        for finder in sys.meta_path:  # the normal finders (not this hook, not the other patchers)
            if isinstance(finder, _PostImportPatcher) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None:
            return spec
        loader, hook = spec.loader, self

        class _PatchingLoader(importlib.abc.Loader):
            def __getattr__(self, attr):  # get_filename, get_data, is_package...: the real loader's
                return getattr(loader, attr)

            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                if hook in sys.meta_path:
                    sys.meta_path.remove(hook)
                hook.patch(module)

        spec.loader = _PatchingLoader()
        return spec


def _after_import(name: str, patch) -> None:
    """Run ``patch(module)`` now if ``name`` is imported, else right after its first import."""
    if name in sys.modules:
        patch(sys.modules[name])
    elif not any(isinstance(f, _PostImportPatcher) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportPatcher(name, patch))


def has_compiled_ops() -> bool:
    """True when the real ``detectron2._C`` extension is installed (not the placeholder, not absent)."""
    apply()
    import detectron2  # noqa: F401  (installs the placeholder if the extension is missing and needed)

    return _extension_found()


_applied = False


def apply() -> None:
    """Install both shims (idempotent)."""
    global _applied
    if _applied:
        return
    _silence_known_deprecations()
    _patch_pillow()
    # detectron2's package __init__ does not import _C; its submodules do, after it has run.
    _after_import("detectron2", _install_extension_placeholder)
    _after_import("detectron2.data.common", _patch_map_dataset)
    _applied = True


apply()
