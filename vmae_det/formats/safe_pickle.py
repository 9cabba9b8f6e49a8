"""THE reader of plain-pickle files (detectron2 / Detectron model-zoo ``.pkl`` weights): numpy arrays only.

``pickle.load`` runs whatever code the file names (``__reduce__`` -> ``os.system``, ``open``, ...), so a weights
file from the internet must never reach it. :func:`load_pickle` unpickles with :class:`SafeUnpickler`,
whose ``find_class`` hands out only the globals that numpy's own pickles of arrays, dtypes and scalars
name, and refuses every other global *before* anything is called: :class:`UnsafePickleError`, naming the file
and the refused global. Containers (dict, list, tuple), str, bytes, numbers, bools and None need no global.

Allowed (numpy 1 ``numpy.core`` and numpy 2 ``numpy._core`` spellings, resolved to the installed numpy):

* ``numpy.core.multiarray._reconstruct`` + ``numpy.ndarray`` (arrays, pickle protocols 0-4),
  ``numpy.core.numeric._frombuffer`` (arrays, protocol 5), ``numpy.dtype``, ``numpy.core.multiarray.scalar``;
* what Python 3 writes for ``bytes`` at protocols 0-2 (numpy's raw array data): ``_codecs.encode`` restricted
  to latin-1 text and ``builtins.bytes`` (``__builtin__.bytes``) restricted to bytes-like arguments;
* ``collections.OrderedDict``: a state dict's own container (a dict, its construction runs no code).

Tensors are not numpy: PyTorch files are read with ``torch.load(..., weights_only=True)``
(``vmae_det.modeling.weight_loading.read_checkpoint``), never with this module or with ``pickle``.
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
from typing import Any, BinaryIO, Callable, Dict, Tuple, Union

import numpy as np

__all__ = ["SafeUnpickler", "UnsafePickleError", "load_pickle", "loads_pickle", "allowed_globals"]


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle that names a global other than numpy's array reconstruction (a ``ValueError``, so the
    command-line tools end with one ``error:`` line); nothing of the file was executed."""


def _numpy_core(module: str):
    """``numpy._core.<module>`` (numpy 2) or ``numpy.core.<module>`` (numpy 1), without the deprecation warning
    numpy 2 gives for the old name."""
    try:
        return importlib.import_module(f"numpy._core.{module}")
    except ImportError:  # numpy 1.x
        return importlib.import_module(f"numpy.core.{module}")


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 uses it for ``bytes`` at pickle protocols 0-2: latin-1 only."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"_codecs.encode is allowed only for latin-1 text (bytes), got encoding {encoding!r}")
    return text.encode("latin-1", errors)


def _bytes(*args: Any) -> bytes:
    """``bytes()`` as Python 3 pickles an empty ``bytes`` at protocols 0-2; bytes-like arguments only (no
    ``bytes(10**12)``)."""
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray, memoryview)):
        return bytes(args[0])
    raise UnsafePickleError("builtins.bytes is allowed only without arguments or on bytes")


def allowed_globals() -> Dict[Tuple[str, str], Callable]:
    """``{(module, name): object}`` that :class:`SafeUnpickler` resolves; every other global is refused."""
    multiarray, numeric = _numpy_core("multiarray"), _numpy_core("numeric")
    table: Dict[Tuple[str, str], Callable] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "bytes"): _bytes,
        ("__builtin__", "bytes"): _bytes,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return table


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :func:`allowed_globals` (numpy arrays and scalars). ``where``
    names the file in the error. Persistent ids (what ``torch.save`` writes) and out-of-band buffers are
    refused by ``pickle`` itself (no ``persistent_load``, no ``buffers``)."""

    def __init__(self, file: BinaryIO, where: str = "<pickle>", **kwargs):
        kwargs.setdefault("encoding", "latin1")  # Python 2 pickles (Detectron, Caffe2): numpy's str -> bytes
        super().__init__(file, **kwargs)
        self.where = where
        self._allowed = allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.where}: refused to unpickle the global '{module}.{name}': only numpy arrays and scalars "
                "are read from a pickle file (nothing of it was executed); this is not a weights file of plain "
                "arrays, and loading it with pickle could run code"
            ) from None

    def load(self) -> Any:
        try:
            return super().load()
        except UnsafePickleError as e:  # a refused argument of an allowed global: name the file too
            if str(e).startswith(self.where):
                raise
            raise UnsafePickleError(f"{self.where}: {e}") from None


def loads_pickle(data: bytes, where: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`SafeUnpickler`."""
    return SafeUnpickler(io.BytesIO(data), where=where).load()


def load_pickle(path: Union[str, os.PathLike]) -> Any:
    """Unpickle the file ``path`` with :class:`SafeUnpickler` (numpy arrays, scalars, dicts/lists/str/numbers).

    A global other than numpy's array reconstruction raises :class:`UnsafePickleError` naming the file and
    the global, before anything was called; a damaged file raises what ``pickle`` raises
    (``UnpicklingError``, ``EOFError``, ...)."""
    where = os.fspath(path)
    with open(where, "rb") as f:
        return SafeUnpickler(f, where=where).load()
