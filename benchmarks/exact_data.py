"""Time the exact finite-data route (theory.exact_data) against SE on the same problem, measured
in the same run: per-step time of the loss recursion (exact, the Q4 closure and SE), one exact
noise radius, and the whole exact critical learning rate (Brent on R(alpha) = 1), beside SE's and
the Q4 closure's thresholds.

Problems: scikit-learn's digits, standardised (n = 1797 rows, d = 64 features -> 61 modes), and a
synthetic d = 784 problem (n = 2000 rows, lambda_k ~ k^-1.2, elliptical rows: Gaussian times a
log-normal scale per row, so far from SE). Heavy ball, beta = 0.5, batch 8, i.i.d. batches.

    python benchmarks/exact_data.py [--steps 200] [--big-steps 10] [--skip-big-threshold]
"""
from __future__ import annotations

import argparse
import os

import numpy as np
from sklearn.datasets import load_digits

from _timing import timed

from sgdyn.theory import exact_data as ed
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.problem import Problem
from sgdyn.theory.q4_closure import q4_loss_curve
from sgdyn.theory.stability import critical_learning_rate

BETA, BATCH = 0.5, 8


def synthetic(d=784, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    lam = np.arange(1, d + 1) ** -1.2
    X = rng.normal(size=(n, d)) * np.sqrt(lam) * np.exp(0.5 * rng.normal(size=(n, 1)))
    y = X @ (0.1 * rng.normal(size=d)) + 0.3 * rng.normal(size=n)
    return Problem.from_rows(X, y, name=f"synthetic d={d}")


def report(p: Problem, steps: int, threshold: bool):
    n, N = p.data.rows.shape
    print(f"{p.name}: n = {n} rows, N = {N} modes, fitted tau = ({p.noise.tau1:.3f}, "
          f"{p.noise.tau2:.3f}), residual {p.tau_residual:.3f}")
    ed.exact_loss_curve(p, 0.01, BETA, BATCH, 2, check_divergence=False)      # compile / load
    t_ex, _ = timed(lambda: ed.exact_loss_curve(p, 0.01, BETA, BATCH, steps, check_divergence=False))
    se_steps = 20000
    loss_curve(p, 0.01, BETA, BATCH, 10, noise=p.noise)
    t_se, _ = timed(lambda: loss_curve(p, 0.01, BETA, BATCH, se_steps, noise=p.noise), 3)
    per_ex, per_se = t_ex / steps, t_se / se_steps
    print(f"  loss recursion per step: exact {1e3 * per_ex:9.3f} ms   SE {1e6 * per_se:8.3f} us"
          f"   (exact / SE = {per_ex / per_se:,.0f}; exact over {steps} steps, SE over {se_steps})")
    q4_steps = 20000
    q4_loss_curve(p, 0.01, BETA, BATCH, 2, check_divergence=False)               # compile / load
    t_q4c, _ = timed(lambda: q4_loss_curve(p, 0.01, BETA, BATCH, q4_steps, check_divergence=False), 3)
    per_q4 = t_q4c / q4_steps
    print(f"  Q4 closure per step: {1e6 * per_q4:8.3f} us   (Q4 / SE = {per_q4 / per_se:,.1f}; "
          f"exact / Q4 = {per_ex / per_q4:,.0f}; over {q4_steps} steps, set-up included)")
    print(f"    exact: {4 * n * N * N / per_ex / 1e9:.2f} GFLOP/s on its two n x N x N products")
    t_se_thr, se = timed(lambda: critical_learning_rate(p, BETA, BATCH, noise=p.noise), 3)
    t_q4, q4 = timed(lambda: ed.q4_critical_learning_rate(p, BETA, BATCH))
    t_r, r = timed(lambda: ed.noise_radius(p, se.alpha_crit, BETA, BATCH))
    print(f"  one exact noise radius (at SE's alpha_crit): {t_r:8.3f} s  (R = {r:.4f})")
    print(f"  thresholds: SE {t_se_thr:8.3f} s (alpha_crit {se.alpha_crit:.5g}),  Q4 closure "
          f"{t_q4:8.3f} s ({q4.alpha_crit:.5g}, {q4.evaluations} radii)")
    if threshold:
        t_thr, ex = timed(lambda: ed.exact_critical_learning_rate(p, BETA, BATCH))
        print(f"  exact critical learning rate: {t_thr:8.3f} s  (alpha_crit {ex.alpha_crit:.5g}, "
              f"{ex.evaluations} radii; SE / exact = {se.alpha_crit / ex.alpha_crit:.3f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="exact steps timed on digits")
    ap.add_argument("--big-steps", type=int, default=10, help="exact steps timed at d = 784")
    ap.add_argument("--skip-big-threshold", action="store_true",
                    help="skip the exact threshold at d = 784 (a few minutes on 2 cores)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; heavy ball, "
          f"beta = {BETA}, batch {BATCH}")
    X, y = load_digits(return_X_y=True)
    report(Problem.from_rows(X, y, standardize_data=True, name="digits (standardised)"),
           args.steps, True)
    report(synthetic(), args.big_steps, not args.skip_big_threshold)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
