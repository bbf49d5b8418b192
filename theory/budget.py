"""Budgets for absurd sizes: an estimate of memory and work is checked before anything is
allocated, and a request over budget is refused with the argument, the estimate and the budget,
instead of a ``MemoryError`` traceback, a numba ``SystemError`` or a hang.

* memory: ``SGDYN_MEMORY_BUDGET`` (bytes, or with a suffix: ``16G``, ``512M``); default half of
  this machine's physical memory (8 GiB where that is unknown);
* work: ``SGDYN_WORK_BUDGET`` (elementary operations, e.g. ``1e14``); default ``2e13``, several
  hours of one core at the rates of ``benchmarks/``.

Raise either to run something larger on purpose.
"""
from __future__ import annotations

import os

_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
DEFAULT_WORK = 2e13


def _read(env: str, default: float) -> float:
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    scale = _SUFFIX.get(text[-1].upper(), 1)
    try:
        value = float(text[:-1] if scale != 1 else text) * scale
    except ValueError:
        raise ValueError(f"{env} must be a number (optionally with K, M, G, T), got {text!r}") from None
    if not value > 0:
        raise ValueError(f"{env} must be > 0, got {text!r}")
    return value


def memory_budget() -> float:
    """Bytes one request may allocate (``SGDYN_MEMORY_BUDGET``)."""
    try:
        default = 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        default = float(8 << 30)
    return _read("SGDYN_MEMORY_BUDGET", default)


def work_budget() -> float:
    """Elementary operations one request may take (``SGDYN_WORK_BUDGET``)."""
    return _read("SGDYN_WORK_BUDGET", DEFAULT_WORK)


def _bytes(n: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} bytes"


def memory(arg: str, nbytes: float, what: str) -> None:
    """Refuse ``arg`` if ``what`` needs more than the memory budget."""
    budget = memory_budget()
    if not nbytes <= budget:
        raise ValueError(f"{arg}: {what} needs about {_bytes(nbytes)}, over the memory budget of "
                         f"{_bytes(budget)} (SGDYN_MEMORY_BUDGET raises it)")


def work(arg: str, ops: float, what: str) -> None:
    """Refuse ``arg`` if ``what`` takes more than the work budget."""
    budget = work_budget()
    if not ops <= budget:
        raise ValueError(f"{arg}: {what} takes about {ops:.2g} operations, over the work budget of "
                         f"{budget:.2g} (SGDYN_WORK_BUDGET raises it)")
