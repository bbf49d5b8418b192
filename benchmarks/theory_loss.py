"""Time the exact loss curve (numba second-moment recursion) for N modes and T steps, against a
vectorised numpy implementation of the same recursion measured in the same run.

    python benchmarks/theory_loss.py [--modes 10000] [--steps 10000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from sgdyn.theory.dynamics import recursion_curve
from sgdyn.theory.problem import Problem
from sgdyn.theory.system import ModeSystem


def numpy_recursion(arr, steps):
    """Same update, vectorised over modes with numpy (one einsum per step)."""
    X = arr.X0.copy()
    out = np.empty(steps + 1)
    for t in range(steps + 1):
        D = np.einsum("ki,ki->", arr.drive, X)
        out[t] = np.einsum("ki,ki->", arr.loss, X) + arr.floor
        if t < steps:
            X = np.einsum("kij,kj->ki", arr.A, X) + arr.coupling * D + arr.source
    return out


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    problem = Problem.power_law(nu=1.5, kappa=3.0, n=args.modes)
    system = ModeSystem.build(problem, 0.2, -0.3, 4)
    arrays = system.arrays()
    recursion_curve(arrays, 10)  # compile (or load the cache) outside the timing
    t_numba, a = best_of(lambda: recursion_curve(arrays, args.steps), args.repeats)
    t_numpy, b = best_of(lambda: numpy_recursion(arrays, args.steps), 1)
    assert np.allclose(a, b, rtol=1e-10), "numba and numpy recursions disagree"
    print(f"loss curve, heavy ball, N = {args.modes} modes, T = {args.steps} steps")
    print(f"  numba recursion : {t_numba:8.3f} s   "
          f"({1e9 * t_numba / (args.modes * args.steps):.2f} ns per mode-step)")
    print(f"  numpy recursion : {t_numpy:8.3f} s")
    print(f"  speed-up        : {t_numpy / t_numba:8.1f}x")


if __name__ == "__main__":
    main()
