"""Time the exact loss curve (numba second-moment recursion) for N modes and T steps, against a
vectorised numpy implementation of the same recursion measured in the same run.

    python benchmarks/theory_loss.py [--modes 10000] [--steps 10000] [--jump-ahead yes|no|only]

The jump-ahead section times the exact jump-ahead route (theory.jumpahead) for 100 log-spaced
checkpoints on the grouped 10^6-mode power law to 10^8 and an ungrouped one to 10^6, against the
recursion measured in the same run.
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
    ap.add_argument("--jump-ahead", choices=("yes", "no", "only"), default="yes",
                    help="also time the jump-ahead route (or only it)")
    ap.add_argument("--ja-modes", type=int, default=3000,
                    help="modes of the ungrouped power law in the jump-ahead section")
    ap.add_argument("--ja-recursion-steps", type=int, default=100_000,
                    help="horizon of the recursion timed for comparison in that section")
    args = ap.parse_args()
    if args.jump_ahead == "only":
        jump_ahead_section(args)
        return
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
    if args.jump_ahead == "yes":
        jump_ahead_section(args)


# --------------------------------------------------------------------------------------------
# jump-ahead (theory.jumpahead): the loss at checkpoints without stepping through them
# --------------------------------------------------------------------------------------------
def _timed(fn):
    import tracemalloc
    tracemalloc.start()
    t0 = time.perf_counter()
    c0 = time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, wall, cpu, peak


def jump_ahead_section(args):
    """The jump-ahead route on power-law spectra (heavy ball, alpha = 0.2, beta = 0.5, batch 4):
    100 log-spaced checkpoints up to T; the recursion timed to a shorter horizon in the same run
    (its cost is linear in T, so the ratio at T is extrapolated and printed as such)."""
    import os
    import resource

    from sgdyn.theory.jumpahead import loss_at_steps, spectrum

    warm = ModeSystem.build(Problem.power_law(1.5, 3.0, 40), 0.2, 0.5, 4).arrays()
    loss_at_steps(warm, [1, 10, 100])          # compile (or load the cache) outside the timing
    recursion_curve(warm, 10)
    cases = [("grouped", Problem.power_law_continuum(1.5, 3.0, 10 ** 6, groups=1000), 10 ** 8),
             ("ungrouped", Problem.power_law(1.5, 3.0, args.ja_modes), 10 ** 6)]
    print(f"jump-ahead, heavy ball alpha = 0.2, beta = 0.5, batch 4; 100 log-spaced checkpoints "
          f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus)")
    for label, problem, T in cases:
        arrays = ModeSystem.build(problem, 0.2, 0.5, 4).arrays()
        steps = np.unique(np.round(np.geomspace(1, T, 100)).astype(np.int64))
        spec, t_set, c_set, m_set = _timed(lambda: spectrum(arrays))
        res, t_eval, c_eval, m_eval = _timed(lambda: spec.expansion().loss(steps))
        total = t_set + t_eval
        T_rec = min(T, args.ja_recursion_steps)
        rec, t_rec, _, _ = _timed(lambda: recursion_curve(arrays, T_rec))
        inside = res.steps <= T_rec
        worst = float(np.max(np.abs(res.loss[inside] / rec[res.steps[inside]] - 1)))
        print(f"  {label}: {problem.name}, {problem.n_modes} entries, {spec.n_roots} roots, "
              f"{spec.sweeps} Aberth sweeps, {len(spec.clusters)} clusters")
        print(f"    set-up          : {t_set:8.3f} s wall ({c_set:.3f} s cpu), peak {m_set / 2**20:.1f} MB")
        print(f"    100 checkpoints : {t_eval:8.3f} s wall ({c_eval:.3f} s cpu), peak {m_eval / 2**20:.1f} MB")
        print(f"    total to T = {T:.0e}: {total:8.3f} s;  L_T = {res.loss[-1]:.6e} "
              f"(rounding estimate {res.error_estimate.max():.1e}), rate {res.rate:.12f}")
        print(f"    recursion to {T_rec:.0e}: {t_rec:8.3f} s (max relative difference "
              f"{worst:.1e} at the {int(inside.sum())} shared checkpoints); to T = {T:.0e} "
              f"~{t_rec * T / T_rec:.3g} s extrapolated: {t_rec * T / T_rec / total:.3g}x the jump-ahead")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    n = args.ja_modes
    print(f"  the set-up is O(N n) (n ~ 3 N roots): the ungrouped 10^5-mode spectrum would take "
          f"~{t_set * (1e5 / n) ** 2:.3g} s extrapolated from N = {n}")


if __name__ == "__main__":
    main()
