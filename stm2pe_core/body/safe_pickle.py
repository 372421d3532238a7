"""Read pickled motion and body-model files without running code from them.

Motion pickles (AIST++, EDGE) and SMPL ``.pkl`` model files come from the internet; a normal
``pickle.load`` would execute whatever callables the file names. :func:`safe_load` admits only:

- plain containers and scalars (dict, list, tuple, set, str, bytes, numbers, None);
- numpy arrays, dtypes and scalars, through the handful of numpy functions that rebuild them
  (``numpy.core.multiarray._reconstruct`` / ``scalar``, ``numpy.ndarray``, ``numpy.dtype``,
  ``numpy.core.numeric._frombuffer``) — these only allocate and fill arrays from bytes;
- ``_codecs.encode(str, 'latin1')``, which Python-2 / protocol-2 pickles use for raw bytes;
- stand-ins for scipy sparse matrices and chumpy ``Ch`` values, which record their state as
  data (never importing scipy/chumpy code) so an official SMPL ``.pkl`` can be converted.

Anything else is refused with :class:`~stm2pe_core.errors.InputError` naming the object.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, bad_file

_NUMPY_MODULES = (
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core.numeric",
    "numpy._core.numeric",
    "numpy",
)


class _InertState:
    """A pickled object's state kept as plain data: no class of the original library is run."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state) if isinstance(state, dict) else {"state": state}


class SparseStub(_InertState):
    """State of a pickled scipy sparse matrix, kept as data; :meth:`toarray` densifies it."""

    def toarray(self) -> np.ndarray:
        s = self.state
        shape = s.get("_shape", s.get("shape"))
        data, indices, indptr = (np.asarray(s.get(k)) for k in ("data", "indices", "indptr"))
        if shape is None or s.get("data") is None:
            raise ValueError(f"unreadable {self.kind} state (keys {sorted(s)})")
        rows, cols = int(shape[0]), int(shape[1])
        out = np.zeros((rows, cols), dtype=np.float64)
        if self.kind.startswith("csc"):
            col_of = np.repeat(np.arange(cols), np.diff(indptr))
            np.add.at(out, (indices, col_of), data)
        elif self.kind.startswith("csr"):
            row_of = np.repeat(np.arange(rows), np.diff(indptr))
            np.add.at(out, (row_of, indices), data)
        elif self.kind.startswith("coo"):
            np.add.at(out, (np.asarray(s["row"]), np.asarray(s["col"])), data)
        else:
            raise ValueError(f"sparse format {self.kind} is not supported")
        return out


class ChumpyStub(_InertState):
    """State of a pickled chumpy object. A plain ``Ch`` stores its value in ``x``."""

    def toarray(self) -> np.ndarray:
        x = self.state.get("x")
        if self.kind == "Ch" and isinstance(x, np.ndarray):
            return x
        raise ValueError(f"chumpy {self.kind} object (a computed expression, not a stored array)")


def _make_stub(base: type, kind: str) -> type:
    """A subclass of ``base`` that NEWOBJ/REDUCE can instantiate without running foreign code."""

    def __new__(cls, *args: Any, **kwargs: Any):  # noqa: N807
        obj = object.__new__(cls)
        obj.kind = kind
        obj.state = {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        pass

    def __reduce__(self):  # noqa: N807 - never re-pickle a stand-in as if it were the real class
        raise TypeError("stand-in objects cannot be pickled")

    return type(
        f"{base.__name__}[{kind}]", (base,), {"__new__": __new__, "__init__": __init__, "__reduce__": __reduce__}
    )


_STUB_CACHE: dict[tuple[str, str], type] = {}


def _stub_for(module: str, name: str) -> type | None:
    key = (module, name)
    if key not in _STUB_CACHE:
        if module.startswith("scipy.sparse") and name.endswith(("_matrix", "_array")):
            _STUB_CACHE[key] = _make_stub(SparseStub, name)
        elif module.startswith("chumpy"):
            _STUB_CACHE[key] = _make_stub(ChumpyStub, name)
        else:
            return None
    return _STUB_CACHE[key]


def _latin1_encode(obj: Any, encoding: str = "latin1") -> bytes:
    if not isinstance(obj, str) or encoding.lower().replace("-", "") not in ("latin1", "iso88591", "utf8"):
        raise pickle.UnpicklingError("refused _codecs.encode with a non-text argument or unusual codec")
    return obj.encode(encoding)


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    """copyreg._reconstructor, limited to our stand-in classes and plain object bases."""
    if not (isinstance(cls, type) and issubclass(cls, (SparseStub, ChumpyStub))) or base is not object:
        raise pickle.UnpicklingError(f"refused copyreg._reconstructor({cls!r}, {base!r})")
    return cls.__new__(cls)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, allow_stubs: bool) -> None:
        super().__init__(file, encoding="latin1")
        self.allow_stubs = allow_stubs

    def find_class(self, module: str, name: str) -> Any:
        if module in _NUMPY_MODULES:
            if name in ("_reconstruct", "scalar"):
                return getattr(_multiarray(), name)
            if name == "_frombuffer":
                return _frombuffer
            if module == "numpy" and name in ("ndarray", "dtype"):
                return getattr(np, name)
        if module == "numpy" and name in ("float64", "float32", "int64", "int32", "bool_", "uint8"):
            return getattr(np, name)
        if module.startswith("numpy.dtypes") and name.endswith("DType"):
            return getattr(__import__("numpy.dtypes", fromlist=[name]), name)
        if module in ("_codecs", "codecs") and name == "encode":
            return _latin1_encode
        if module in ("builtins", "__builtin__") and name in ("set", "frozenset", "complex", "bytearray", "slice"):
            return {"set": set, "frozenset": frozenset, "complex": complex, "bytearray": bytearray, "slice": slice}[
                name
            ]
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if self.allow_stubs:
            if module in ("copyreg", "copy_reg") and name == "_reconstructor":
                return _reconstructor
            stub = _stub_for(module, name)
            if stub is not None:
                return stub
            if module in ("builtins", "__builtin__") and name == "object":
                return object
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _multiarray() -> Any:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """numpy's pickle helper for protocol 5 out-of-band/contiguous arrays, reimplemented as data-only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refused numpy _frombuffer with an object dtype")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


def safe_load(source: str | Path | bytes, *, allow_stubs: bool = False, what: str = "file") -> Any:
    """Unpickle ``source`` (path or bytes) admitting only data; see the module docstring.

    ``allow_stubs`` admits scipy-sparse / chumpy stand-ins (for SMPL model files).
    """
    path = None if isinstance(source, bytes) else Path(source)
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise bad_file(path or "", f"cannot read the {what} ({exc.strerror or exc})", "Check the path.") from exc
    try:
        return _RestrictedUnpickler(io.BytesIO(data), allow_stubs).load()
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if msg.startswith("refused"):
            raise bad_file(
                path or "",
                f"this {what} is a pickle that contains code or objects other than arrays ({msg}); "
                "it was not loaded because unpickling it could run arbitrary code",
                "Only use motion / model files from a source you trust, saved as plain numpy arrays "
                "(or convert them to .npz).",
            ) from exc
        raise bad_file(path or "", f"not a readable pickle ({msg})", "Re-download or re-export the file.") from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise bad_file(
            path or "",
            f"damaged or unsupported pickle ({type(exc).__name__}: {exc})",
            "Re-download or re-export the file.",
        ) from exc


def to_plain(obj: Any, *, where: str = "") -> Any:
    """Replace stand-ins by numpy arrays (recursively); raise ValueError for what cannot be converted."""
    if isinstance(obj, (SparseStub, ChumpyStub)):
        return obj.toarray()
    if isinstance(obj, dict):
        return {k: to_plain(v, where=f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v, where=where) for v in obj)
    return obj


__all__ = ["safe_load", "to_plain", "SparseStub", "ChumpyStub", "InputError"]
