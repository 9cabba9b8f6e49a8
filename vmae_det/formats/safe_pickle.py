"""The reader of plain-pickle files (detectron2 / Detectron model-zoo ``.pkl`` weights): numpy arrays only.

``pickle.load`` runs whatever code the file names, so a downloaded weights file must never reach it.
:class:`SafeUnpickler` resolves only the globals numpy's own pickles of arrays, dtypes and scalars name (plus
the latin-1 ``bytes`` helpers of protocols 0-2 and ``OrderedDict``) and refuses every other one before
anything is called. PyTorch files are read with ``torch.load(..., weights_only=True)`` instead.
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
from typing import Any, BinaryIO, Callable, Dict, Tuple, Union

import numpy as np

__all__ = ["SafeUnpickler", "UnsafePickleError", "DamagedPickleError", "load_pickle", "loads_pickle", "allowed_globals"]


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle that names a global other than numpy's array reconstruction; nothing of it was executed."""


class DamagedPickleError(pickle.UnpicklingError, ValueError):
    """A pickle file that ends early or holds no valid pickle."""


def _numpy_core(module: str):
    """``numpy._core.<module>`` (numpy 2) or ``numpy.core.<module>`` (numpy 1), without numpy 2's warning."""
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
    """``bytes()`` as pickled at protocols 0-2; bytes-like arguments only (no ``bytes(10**12)``)."""
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
    """``pickle.Unpickler`` that resolves only :func:`allowed_globals`; ``where`` names the file in errors.
    Persistent ids (``torch.save``) and out-of-band buffers are refused by ``pickle`` itself."""

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
    """Unpickle the file ``path`` with :class:`SafeUnpickler`; a damaged file is a :class:`DamagedPickleError`."""
    where = os.fspath(path)
    with open(where, "rb") as f:
        try:
            return SafeUnpickler(f, where=where).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, OverflowError) as e:
            why = f"{type(e).__name__}: {e}" if str(e) else f"{type(e).__name__}, the file ends early"
            raise DamagedPickleError(f"{where}: not a readable pickle (truncated or damaged: {why})") from None
