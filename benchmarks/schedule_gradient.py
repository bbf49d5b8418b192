"""Time the exact gradient of the final loss with respect to a schedule
(``sgdyn.theory.optimal_schedule.schedule_gradient``: the adjoint pass of
``sgdyn.theory.adjoint``) against one forward solve of the same run measured in the same process
(the generated recursion kernel, ``sgdyn.theory.dynamics.moments``), and one whole
``optimal_schedule`` call (its baselines' tuning and its L-BFGS-B iterations).

    python benchmarks/schedule_gradient.py [--modes 2000] [--steps 2000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from sgdyn.theory.adjoint import Coefficients, final_loss_and_gradient
from sgdyn.theory.dynamics import moments
from sgdyn.theory.optimal_schedule import _FinalLoss, optimal_schedule, schedule_gradient
from sgdyn.theory.problem import Problem
from sgdyn.theory.record import Record
from sgdyn.theory.recursion import step_coefficients
from sgdyn.theory.run import Run
from theory_loss import best_of     # the script's own folder is on sys.path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    N, T = args.modes, args.steps
    problem = Problem.power_law(nu=1.5, kappa=1.0, n=N)
    print(f"schedule gradient, N = {N} modes, T = {T} steps; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for method, beta in (("sgd", 0.0), ("heavy-ball", "linear(0.3,0.8)")):
        r = Run.build(problem, method, alpha=f"warmup({T // 10})+cosine(0.2,floor=0.01)",
                      beta=beta, batch=2, steps=T, record=Record.at([T]))
        small = r.replace(record=Record.at([0, 1]))
        moments(small)
        schedule_gradient(Run.build(problem, method, alpha=0.1, beta=0.5 if beta else 0.0,
                                    batch=2, steps=2))           # compile or load the caches
        f = _FinalLoss(r)
        vals = dict(f.values, alpha=f.values["alpha"] * f.scale)
        F, KG, kk, g_ = step_coefficients(*r.method.numeric_matrices(vals))
        c = Coefficients(F, KG, kk, np.vstack([g_, g_[-1:]]), f.gam)
        timed = {"forward": lambda: moments(r), "gradient": lambda: schedule_gradient(r),
                 "adjoint": lambda: final_loss_and_gradient(f.inputs, c, r.method)}
        # interleaved, best of each: a load that comes and goes hits all three alike
        times = {k: [] for k in timed}
        for _ in range(args.repeats):
            for k, fn in timed.items():
                times[k].append(best_of(fn, 1)[0])
        t_fwd, t_grad, t_adj = (min(times[k]) for k in timed)
        m, g = moments(r), schedule_gradient(r)
        assert abs(g.loss / m.loss[-1] - 1) < 1e-12, "adjoint forward and kernel disagree"
        print(f"  {method:<10} forward solve {t_fwd:8.4f} s; gradient {t_grad:8.4f} s = "
              f"{t_grad / t_fwd:5.1f}x one solve (adjoint kernels alone {t_adj:8.4f} s = "
              f"{t_adj / t_fwd:5.1f}x)")
    n, T = 200, 1000
    p = Problem.power_law(nu=1.5, kappa=1.0, n=n)
    optimal_schedule(Problem.power_law(nu=1.5, kappa=1.0, n=10), 20, knots=4, method="sgd")
    t0 = time.perf_counter()
    o = optimal_schedule(p, T, batch=1, method="sgd", knots=32)
    t_opt = time.perf_counter() - t0
    r = Run.build(p, "sgd", alpha=o.alpha, batch=1, steps=T, record=Record.at([T]))
    t_one, _ = best_of(lambda: moments(r), args.repeats)
    print(f"  optimal_schedule, N = {n}, T = {T}, 32 knots: {t_opt:.2f} s in all "
          f"({o.iterations} L-BFGS-B iterations, {o.evaluations} gradients; one solve "
          f"{1e3 * t_one:.2f} ms, so {t_opt / t_one:.0f} solves' worth, baselines included)")


if __name__ == "__main__":
    main()
