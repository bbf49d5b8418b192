"""How sweeps cost: growth with N (modes), T (steps) and R (runs) as log-log slopes, the
10^4-point theory sweep on a 10^3-mode problem (against the per-point route, measured in the same
run), and a sweep's throughput on 1 vs 2 Dask workers.

    PYTHONPATH=. python benchmarks/sweep.py [--quick]

(``PYTHONPATH=.`` so that the Dask worker processes import this checkout.)

Timings are best of ``--repeats`` (after a warm-up call that compiles or loads the numba caches).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


import numpy as np

from sgdyn.sweep import SweepSpec, open_sweep, sweep
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.grid import singularities_grid
from sgdyn.theory.problem import Problem
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import singularities


def best_of(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def slope_table(title, name, values, fn, repeats):
    times = [best_of(lambda v=v: fn(v), repeats) for v in values]
    slope = np.polyfit(np.log(values), np.log(times), 1)[0]
    print(f"{title}")
    for v, t in zip(values, times):
        print(f"  {name} = {v:>7d}   {t * 1e3:10.2f} ms")
    print(f"  log-log slope d log(time) / d log({name}) = {slope:.2f}")
    return slope


def theory_scaling(quick, repeats):
    modes = [250, 500, 1000, 2000] if not quick else [250, 500, 1000]
    steps = [1000, 2000, 4000, 8000] if not quick else [1000, 2000, 4000]
    slope_table("theory: loss curve (numba recursion), T = 4000, cost vs N", "N", modes,
                lambda n: loss_curve(Problem.power_law(1.5, 3.0, n), 0.2, -0.3, 4, 4000), repeats)
    p = Problem.power_law(1.5, 3.0, 1000)
    slope_table("theory: loss curve, N = 1000, cost vs T", "T", steps,
                lambda t: loss_curve(p, 0.2, -0.3, 4, t), repeats)
    A, B = np.meshgrid(np.linspace(0.02, 1.5, 32), np.linspace(-0.9, 0.9, 32), indexing="ij")
    slope_table("theory: singularities over 1024 grid points (theory.grid), cost vs N", "N", modes,
                lambda n: singularities_grid(Problem.power_law(1.5, 3.0, n), A, B, 10), repeats)


def monte_carlo_scaling(quick, repeats):
    from sgdyn.simulate import run
    small = [1, 2, 4] if quick else [1, 2, 4, 8]
    p = Problem.power_law(1.5, 3.0, 200)
    slope_table("Monte Carlo: cost vs N (T = 500, R = 100)", "N", [100 * k for k in small],
                lambda n: run(Problem.power_law(1.5, 3.0, n), 0.2, 0.0, 4, 500, 100, 0, every=500),
                repeats)
    slope_table("Monte Carlo: cost vs T (N = 200, R = 100)", "T", [500 * k for k in small],
                lambda t: run(p, 0.2, 0.0, 4, t, 100, 0, every=t), repeats)
    slope_table("Monte Carlo: cost vs R (N = 200, T = 500)", "R", [100 * k for k in small],
                lambda r: run(p, 0.2, 0.0, 4, 500, r, 0, every=500), repeats)


def big_theory_sweep(quick):
    n_alpha = 100
    n_beta = 100 if not quick else 25
    spec_text = "powerlaw:nu=1.5,kappa=3,n=1000"
    spec = SweepSpec.build(spec_text, {"alpha": np.linspace(0.02, 1.5, n_alpha),
                                       "beta": np.linspace(-0.9, 0.9, n_beta)},
                           ["singularities"], batch=10, data_size=1000, chunk=2500)
    t0 = time.perf_counter()
    singularities_grid(Problem.power_law(1.5, 3.0, 10), [0.1], [0.0], [1], parallel=False)
    warm = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        report = sweep(spec, f"{tmp}/theory.zarr")
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        ds = open_sweep(f"{tmp}/theory.zarr")
    # the per-point route on a sample of the same grid, in the same run
    problem = Problem.parse(spec_text).replace(data_size=1000)
    rng = np.random.default_rng(0)
    sample = rng.choice(spec.size, 40, replace=False)
    t0 = time.perf_counter()
    for i in sample:
        a, b = np.unravel_index(i, spec.shape)
        s = singularities(ModeSystem.build(problem, ds.alpha.values[a], ds.beta.values[b], 10))
        assert np.isclose(s.rate, ds.singularities_rate.values[a, b], rtol=1e-12, atol=0)
    per_point = (time.perf_counter() - t0) / sample.size * spec.size
    print(f"theory sweep: {report.points} points x 1000 modes (rate, U(1), z*, mode radius per point), "
          f"serial scheduler, written to Zarr")
    print(f"  symbolic derivation + kernel load, if first: {warm:8.2f} s")
    print(f"  sweep (grid, store, kernel, writes)         : {total:8.2f} s   "
          f"({'under' if total < 10 else 'OVER'} the 10 s target; CPU time of all threads "
          f"{cpu:.2f} s, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"  per-point route, extrapolated from 40 points: {per_point:8.2f} s   "
          f"(speed-up {per_point / total:.0f}x; the 40 rates agree to 1e-12)")


def worker_throughput(quick):
    distributed = __import__("distributed")
    spec = SweepSpec.build("powerlaw:nu=1.5,kappa=3,n=1000", {"alpha": np.linspace(0.05, 0.3, 8),
                                                             "beta": np.linspace(-0.5, 0.5, 4 if quick else 8)},
                           ["loss"], batch=4, steps=20000, chunk=2)
    rates = {}
    for n in (1, 2):
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client, tempfile.TemporaryDirectory() as tmp:
            client.run(lambda: loss_curve(Problem.power_law(1.5, 3.0, 10), 0.1, 0.0, 1, 10))
            report = sweep(spec, f"{tmp}/w.zarr", scheduler=client)
            rates[n] = report.points / report.seconds
    print(f"sweep throughput (loss after 20000 steps, 1000 modes, {spec.size} points, LocalCluster "
          f"processes on 127.0.0.1)")
    for n, r in rates.items():
        print(f"  {n} worker{'s' if n > 1 else ' '}: {r:8.2f} points/s")
    print(f"  2 vs 1 workers: {rates[2] / rates[1]:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    theory_scaling(args.quick, args.repeats)
    monte_carlo_scaling(args.quick, args.repeats)
    big_theory_sweep(args.quick)
    worker_throughput(args.quick)


if __name__ == "__main__":
    main()
