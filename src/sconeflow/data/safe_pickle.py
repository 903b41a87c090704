"""A restricted unpickler that admits only what CIFAR-100's pickles contain.

The official files (and the shared mini tarball) are protocol-2 pickles of dicts, lists, ints and
byte strings, plus NumPy arrays. The only globals they name are ``_codecs.encode`` and, for an empty
byte string, ``bytes()`` (how Python 3 pickles ``bytes`` at protocol 2), and NumPy's array
reconstruction (``numpy[._]core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``).
Anything else, ``os.system`` included, is refused with :class:`UnsafePickle` before it can run. The
admitted callables are wrapped so that even they can only do what the CIFAR files need (no object
arrays, no arbitrary codecs, no huge allocations).
"""

from __future__ import annotations

import _codecs
import io
import pickle
from typing import Any

import numpy as np

from sconeflow.data.errors import CorruptDataset, UnsafePickle

_TEXT_CODECS = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "ascii", "utf-8", "utf8", "bytes"}


class _NdarrayType:
    """Stands in for ``numpy.ndarray`` inside a pickle: usable only as ``_reconstruct``'s first argument."""

    def __repr__(self) -> str:
        return "<ndarray type>"


_NDARRAY = _NdarrayType()


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if not isinstance(obj, str) or str(encoding).lower() not in _TEXT_CODECS:
        raise UnsafePickle(f"_codecs.encode with {type(obj).__name__} and codec {encoding!r} is not admitted")
    return _codecs.encode(obj, encoding, errors)


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``: how Python 3 pickles ``b""`` at protocol 2 (any other call is refused)."""
    if args:
        raise UnsafePickle("builtins.bytes is admitted only without arguments (an empty byte string)")
    return b""


def _reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if subtype is not _NDARRAY:
        raise UnsafePickle("numpy _reconstruct is admitted only for plain numpy.ndarray")
    if not isinstance(shape, tuple) or any(not isinstance(n, int) or n < 0 or n > 1 for n in shape):
        raise UnsafePickle(f"numpy _reconstruct with initial shape {shape!r} is not admitted")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype(np.uint8))


def _dtype(code: Any, align: Any = False, copy: Any = True) -> np.dtype:
    text = code.decode("latin-1") if isinstance(code, bytes) else code
    if not isinstance(text, str) or len(text) > 4:
        raise UnsafePickle(f"numpy dtype {code!r} is not admitted")
    dtype = np.dtype(text)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise UnsafePickle(f"numpy dtype {text!r} is not admitted (only numeric dtypes)")
    return dtype


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _codecs_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickle(
                f"pickle refers to global {module}.{name}, which CIFAR-100 files never contain; refused"
            ) from None


def safe_loads(data: bytes, *, what: str = "pickle") -> Any:
    """Unpickle CIFAR-style data or raise a named error (Python 2 strings decode as latin-1)."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafePickle as exc:
        raise UnsafePickle(f"{what}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, RecursionError) as exc:  # fmt: skip
        raise CorruptDataset(f"{what} is not a readable CIFAR pickle ({type(exc).__name__}: {exc})") from None
