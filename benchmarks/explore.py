"""Update latency of the explorer (``sgdyn.explore``) on a 1000-mode power law, per slider move.

What the page waits for after a control moves: the views that the change makes stale
(``views.stale``) computed and, with Panel installed, drawn into the Bokeh models
(``Explorer.apply``, headless: the network and the browser's drawing come on top). Targets of
issue 21, median and worst over 50 moves:

* an alpha move (loss curve with its asymptotes, and the rate at the point): under 100 ms;
* a batch move (the region's first answer, ``views.COARSE_GRID`` without the optimum, plus the
  curve, the point and the critical-lr curve): under 1 s. The fine grid with the rate optimum
  follows in a later tick behind a busy indicator; it is timed too (``--fine-moves`` moves).

Baselines measured in the same run: the bare ``theory.solve`` of the same run (what ``sgdyn
loss`` computes) for the curve, and the bare ``critical_learning_rate_curve`` over the coarse
momenta for the region. The machine's load average is printed: on a busy machine every figure
grows.

    python benchmarks/explore.py [--moves 50] [--fine-moves 5] [--modes 1000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def timed(f, values):
    out = []
    for v in values:
        t = time.perf_counter()
        f(v)
        out.append(time.perf_counter() - t)
    return out


def row(name, times, target=None, base=None):
    med, worst = statistics.median(times), max(times)
    extra = f"  {med / base:6.1f} x baseline" if base else ""
    verdict = "" if target is None else ("  meets" if worst < target else
                                         "  median meets" if med < target else "  misses") + \
        f" the {1000 * target:g} ms target"
    print(f"{name:<58s} median {1000 * med:8.1f} ms  worst {1000 * worst:8.1f} ms{extra}{verdict}")
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moves", type=int, default=50)
    ap.add_argument("--fine-moves", type=int, default=5)
    ap.add_argument("--modes", type=int, default=1000)
    args = ap.parse_args()
    from sgdyn.explore import views
    from sgdyn.theory.dynamics import solve
    from sgdyn.theory.stability import critical_learning_rate_curve

    s0 = views.Settings(problem=views.power_law_spec(1.5, 3, args.modes), alpha=0.2, beta=0.3,
                        batch=4, steps=1000)
    alphas = np.linspace(0.05, 0.6, args.moves)
    batches = np.arange(1, args.moves + 1)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.modes} modes, T = {s0.steps}, {args.moves} moves")
    for name in views.VIEWS:                  # warm: numba kernels, symbolic forms
        views.VIEWS[name](s0)
    views.region_view(s0, views.COARSE_GRID, False)

    problem = views.problem_of(s0)
    base_curve = row("baseline: theory.solve (the bare curve)",
                     timed(lambda a: solve(views.run_of(s0.replace(alpha=a))), alphas))

    def alpha_move(a):
        s = s0.replace(alpha=a)
        views.curve_view(s)
        views.point_view(s)
    row("alpha move: curve + point views", timed(alpha_move, alphas), 0.1, base_curve)

    betas = np.linspace(-0.95, 0.95, views.COARSE_GRID[1])
    base_region = row("baseline: critical_learning_rate_curve (coarse momenta)",
                      timed(lambda b: critical_learning_rate_curve(problem, betas, int(b)),
                            batches))

    def batch_move(b):
        s = s0.replace(batch=int(b))
        for name in views.stale(s0, s) - {"region"}:
            views.VIEWS[name](s)
        views.region_view(s, views.COARSE_GRID, False)
    row("batch move: coarse region + curve, point, critical lr", timed(batch_move, batches), 1.0,
        base_region)
    row(f"then the fine region {views.FINE_GRID} with the optimum",
        timed(lambda b: views.region_view(s0.replace(batch=int(b))),
              batches[:args.fine_moves]), None, base_region)

    try:
        import panel  # noqa: F401
    except ImportError:
        print("panel is not installed (extra 'explore'): the user interface is not timed")
        return
    from sgdyn.explore.app import Explorer
    e = Explorer(s0)                      # not served: apply() computes the fine region too
    row("Explorer.apply, alpha move (views + Bokeh models)",
        timed(lambda a: e.apply(e.settings.replace(alpha=a)), alphas), 0.1, base_curve)
    e._later = lambda callback, ms=0: None          # as served: the fine region deferred
    row("Explorer.apply, batch move (coarse region, views + models)",
        timed(lambda b: e.apply(e.settings.replace(batch=int(b))), batches), 1.0, base_region)


if __name__ == "__main__":
    main()
