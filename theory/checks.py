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


def integer(name: str, value, minimum: int) -> int:
    """An integer >= minimum; integral floats (e.g. 8.0) are accepted, 8.5 is not."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real) and np.isfinite(value) and float(value).is_integer():
        out = int(value)
    else:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if out < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {out}")
    return out


def real_array(name: str, values, *, positive_entries: bool = False) -> np.ndarray:
    """A non-empty 1-D float64 array of finite entries (>= 0, or > 0 with positive_entries)."""
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
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
