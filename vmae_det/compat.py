"""Make detectron2 v0.6 importable and usable on current dependencies.

Imported by ``vmae_det/__init__.py`` before anything imports detectron2; it imports neither torch nor
detectron2 itself (the ``detectron2._C`` placeholder is installed by an import hook when detectron2 is
first imported), so ``import vmae_det`` stays light for tools that need neither (the AVA evaluator CLI).
The shims, nothing else:

* ``PIL.Image.LINEAR``: removed in Pillow 10, still used by detectron2 v0.6's transforms. We alias
  it to ``BILINEAR`` (the same filter) instead of pinning an old Pillow with known CVEs.
* ``detectron2._C``: the compiled extension is absent when detectron2 is installed from PyPI's
  pure-Python sources (see scripts/install_detectron2.sh). We register a placeholder module only
  when the real one cannot be found; touching one of its ops raises a clear error naming the op.
  Nothing vmae_det uses needs it (ROIAlign falls back to torchvision's implementation).
* ``MapDataset`` retries a sample whose mapper returned None (a corrupt video) with
  ``random.sample(a_set)``, which Python ≥ 3.11 rejects. Its RNG gets a ``sample`` that accepts sets,
  patched when ``detectron2.data.common`` is first imported (importing it here would make every
  ``import vmae_det`` pay for detectron2.data).
* Two deprecation warnings that detectron2 v0.6 triggers on every run (its ``torch.jit.script``
  decorators, its model zoo's ``pkg_resources`` import) are silenced by message; nothing else is.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import random
import sys
import types
import warnings

__all__ = ["apply", "CompiledOpUnavailable", "has_compiled_ops"]

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


def _install_extension_placeholder() -> None:
    if "detectron2._C" in sys.modules:
        return
    try:
        found = importlib.util.find_spec("detectron2._C") is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return
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
    """Run ``patch(module)`` right after ``name`` is imported (once)."""

    def __init__(self, name: str, patch):
        self.name, self.patch = name, patch

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # let the normal finders locate it
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader, patch = spec.loader, self.patch

        class _PatchingLoader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                patch(module)

        spec.loader = _PatchingLoader()
        sys.meta_path.remove(self)
        return spec


def _after_import(name: str, patch) -> None:
    """Run ``patch(module)`` now if ``name`` is imported, else right after its first import."""
    if name in sys.modules:
        patch(sys.modules[name])
    elif not any(isinstance(f, _PostImportPatcher) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportPatcher(name, patch))


def has_compiled_ops() -> bool:
    """True when the real ``detectron2._C`` extension is in use."""
    apply()
    import detectron2  # noqa: F401  (installs the placeholder if the extension is missing)

    return not getattr(sys.modules.get("detectron2._C"), _PLACEHOLDER_FLAG, False)


_applied = False


def apply() -> None:
    """Install both shims (idempotent)."""
    global _applied
    if _applied:
        return
    _silence_known_deprecations()
    _patch_pillow()
    # detectron2's package __init__ does not import _C; its submodules do, after it has run.
    _after_import("detectron2", lambda _module: _install_extension_placeholder())
    _after_import("detectron2.data.common", _patch_map_dataset)
    _applied = True


apply()
