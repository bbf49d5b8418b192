"""The timer the benchmark scripts share (run as ``python benchmarks/NAME.py``, which puts this
folder on the import path)."""
from __future__ import annotations

import time

import numpy as np


def timed(fn, repeats=1):
    """Best wall time of ``repeats`` calls (the machine may be shared) and the last result."""
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def alternating(fns, repeats=1):
    """Best wall time of each of ``fns`` over ``repeats`` rounds that call them in turn (so a
    machine whose speed drifts, shared or throttled, slows each alike) and their last results."""
    best, out = [np.inf] * len(fns), [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            out[i] = fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best, out
