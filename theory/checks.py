"""Argument checks shared by the public functions: each raises ``ValueError`` naming the argument
and its allowed range, so bad input never turns into a silent NaN."""
from __future__ import annotations

import numbers

import numpy as np


def finite_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def positive(name: str, value) -> float:
    value = finite_real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def nonnegative(name: str, value) -> float:
    value = finite_real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def momentum(name: str, value) -> float:
    value = finite_real(name, value)
    if not -1.0 < value < 1.0:
        raise ValueError(f"{name} must lie in (-1, 1), got {value}")
    return value


def integer(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """An integer in [minimum, maximum]; integral floats (e.g. 8.0) are accepted, 8.5 is not."""
    span = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real) and np.isfinite(value) and float(value).is_integer():
        out = int(value)
    else:
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    if out < minimum or (maximum is not None and out > maximum):
        raise ValueError(f"{name} must be an integer {span}, got {out}")
    return out


def real_values(name: str, values) -> np.ndarray:
    """``values`` as a float64 array of any shape (a new array: the caller may own it); complex,
    boolean, string and object arrays are refused, not cast (``True`` is not 1.0, ``1+1j`` is
    not 1.0, ``"1"`` is not a number)."""
    try:
        kind = np.asarray(values).dtype.kind
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    if kind in "cbUSO" and not (kind == "O" and _all_real(values)):
        what = {"c": "complex", "b": "boolean", "U": "text", "S": "text", "O": "non-numeric"}[kind]
        raise ValueError(f"{name} must be an array of real numbers, got {what} values")
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None


def real_array(name: str, values, *, positive_entries: bool = False) -> np.ndarray:
    """A non-empty 1-D float64 array of finite entries (>= 0, or > 0 with positive_entries).
    Complex, boolean, string and object arrays are refused, not cast."""
    arr = real_values(name, values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if positive_entries and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 everywhere, got min {arr.min()}")
    if not positive_entries and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 everywhere, got min {arr.min()}")
    arr.setflags(write=False)
    return arr


def _all_real(values) -> bool:
    """An object array of plain real numbers (e.g. sympy or fractions) is still real."""
    return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in np.ravel(values))


def output_path(name: str, path, suffixes: tuple[str, ...] = ()) -> str:
    """A path a file can be written to, checked before any work: a string or path naming a
    file (not a folder) in an existing, writable folder, ending in one of ``suffixes``."""
    import os
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"{name} must be a file path, got {path!r}")
    p = os.fspath(path)
    if suffixes and not p.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise ValueError(f"{name} must end with one of {', '.join(suffixes)}, got {p!r}")
    if os.path.isdir(p):
        raise ValueError(f"{name} {p!r} is a folder, not a file")
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        raise ValueError(f"{name} {p!r}: folder {folder!r} does not exist (write into an "
                         "existing folder)")
    if not os.access(folder, os.W_OK) or (os.path.exists(p) and not os.access(p, os.W_OK)):
        raise ValueError(f"{name} {p!r} cannot be written (no permission)")
    return p
