"""Time ``theory.stability.optimal_rate`` (rate-optimal (alpha, beta) over the whole convergence
region) on a power-law problem, against a baseline measured in the same run: the rate computed
point by point the numpy way (lambdified ``U(z)`` from ``GeneratingFunctions``, spectral radii by
``numpy.linalg.eigvals``, ``scipy.optimize.brentq``), timed on a sample of points and scaled to the
optimiser's number of rate evaluations.

    python benchmarks/optimize.py [--modes 1000] [--batch 1 10 100]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import optimal_rate
from scipy import optimize

from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import GeneratingFunctions


def numpy_rate(system):
    """Baseline: rho = 1/z*, U(z*) = 1 bracketed below the first pole (tau2 <= 0 only)."""
    A = system.derivation.numeric.A(*system.args)
    Z = 1.0 / np.abs(np.linalg.eigvals(A)).max()
    gf = GeneratingFunctions(system)
    lo = 0.0
    for x in Z * (1.0 - np.logspace(-0.3, -15, 60)):
        if gf.U(np.array(x)) >= 1.0:
            return 1.0 / optimize.brentq(lambda v: float(gf.U(np.array(v))) - 1.0, lo, x,
                                         xtol=1e-300, rtol=1e-15)
        lo = x
    return 1.0 / Z


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", type=int, default=1000)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--baseline-points", type=int, default=40,
                    help="grid points timed one by one for the baseline (extrapolated to the grid)")
    args = ap.parse_args()
    p = Problem.power_law(1.5, 3.0, args.modes)
    optimal_rate(Problem.power_law(1.5, 3.0, 5), 1)            # compile numba kernels
    print(f"power law nu=1.5 kappa=3, {args.modes} modes, Gaussian noise, heavy ball")
    print(f"{'batch':>6} {'optimize s':>11} {'rate evals':>11} {'numpy baseline s':>21} "
          f"{'speed-up':>9}   optimum")
    for b in args.batch:
        t0 = time.perf_counter()
        opt = optimal_rate(p, b)
        t_opt = time.perf_counter() - t0
        pts = [(opt.alpha_crit * s, opt.beta) for s in np.linspace(0.05, 0.95, args.baseline_points)]
        t0 = time.perf_counter()
        for a, bt in pts:
            numpy_rate(ModeSystem.build(p, a, bt, b))
        per_point = (time.perf_counter() - t0) / len(pts)
        baseline = per_point * opt.evaluations
        print(f"{b:>6} {t_opt:>11.3f} {opt.evaluations:>11} {baseline:>17.2f} "
              f"{baseline / t_opt:>9.1f}   alpha={opt.alpha:.5g} beta={opt.beta:.5f} "
              f"rate={opt.rate:.10f}")


if __name__ == "__main__":
    main()
