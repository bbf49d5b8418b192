"""Time the CPU Monte Carlo kernel (``simulate.run``, numba, all cores) in nanoseconds per
sample-coordinate (runs x steps x batch x modes: the work of drawing every sample, one random
draw and two multiply-adds each), against baselines measured in the same run on the same problem
(Gaussian features, heavy ball). The kernel runs with its default sampler for Gaussian features
(``"projected"``: the mini-batch gradient drawn exactly in law from modes + 2 batch normals per
step) and with ``sampler="per-sample"`` (every sample drawn, as the baselines do). Baselines:

* numpy, vectorised over runs (one ``standard_normal`` block and two einsums per step);
* PyTorch CPU ``torch.optim.SGD(lr=alpha, momentum=beta)`` (if torch is installed), both one run
  at a time (the plain training loop) and all runs batched as one ``(runs, d)`` parameter;
* the random-number floor: drawing as many normals with ``numpy.random.default_rng``;
* for the record: the same kernel on a 3-dimensional state (EMA of heavy ball) and under a
  schedule (warm-up + cosine learning rate, linear momentum): per-step method matrices.

The baselines run on ``--baseline-runs`` runs (torch: ``--torch-runs``; their time is linear in
the run count); the kernel on ``--runs``. Ratios are baseline time / kernel time per sample-coordinate.

    python benchmarks/simulate.py [--modes 1000] [--batch 8] [--steps 1000] [--runs 256]
"""
from __future__ import annotations

import argparse
import os
import time


import numba
import numpy as np

from sgdyn import simulate
from sgdyn.theory.problem import Problem

os.environ.setdefault("SGDYN_PROGRESS", "0")   # no progress bars in a benchmark's output


def numpy_vectorised(lam, e0, alpha, beta, batch, steps, runs, seed):
    rng = np.random.default_rng(seed)
    sl = np.sqrt(lam)
    e = np.tile(e0, (runs, 1))
    v = np.zeros_like(e)
    loss = np.empty((steps + 1, runs))
    loss[0] = 0.5 * (e ** 2) @ lam
    for t in range(steps):
        x = rng.standard_normal((runs, batch, lam.size)) * sl
        g = np.einsum("rbd,rb->rd", x, np.einsum("rbd,rd->rb", x, e)) / batch
        v = beta * v - alpha * g
        e += v
        loss[t + 1] = 0.5 * (e ** 2) @ lam
    return loss[-1].mean(), loss[-1].std(ddof=1) / np.sqrt(runs)


def torch_loop(torch, lam, e0, alpha, beta, batch, steps, runs, seed, batched):
    """Parameter = the error w - w* (targets are then 0); the optimiser is PyTorch's own SGD."""
    gen = torch.Generator().manual_seed(seed)
    sl = torch.tensor(np.sqrt(lam))
    lam_t = torch.tensor(lam)
    groups = [runs] if batched else [1] * runs
    curves = []
    for r in groups:
        e = torch.tensor(np.tile(e0, (r, 1)), requires_grad=True)
        opt = torch.optim.SGD([e], lr=alpha, momentum=beta)
        loss = torch.empty(steps + 1, r, dtype=torch.float64)
        with torch.no_grad():
            loss[0] = 0.5 * (e ** 2) @ lam_t
        for t in range(steps):
            x = torch.randn(r, batch, lam.size, generator=gen, dtype=torch.float64) * sl
            # summed over runs: each run's gradient is its own mini-batch mean
            obj = 0.5 * (torch.einsum("rbd,rd->rb", x, e) ** 2).mean(dim=1).sum()
            opt.zero_grad()
            obj.backward()
            opt.step()
            with torch.no_grad():
                loss[t + 1] = 0.5 * (e ** 2) @ lam_t
        curves.append(loss)
    return torch.cat(curves, dim=1).mean(dim=1).numpy()


def normal_floor(count, seed):
    rng = np.random.default_rng(seed)
    buf = np.empty(min(count, 1 << 23))
    for start in range(0, count, buf.size):
        rng.standard_normal(out=buf[: min(buf.size, count - start)])


def timed(fn, repeats=1):
    """Best wall time of ``repeats`` calls (the machine may be shared) and the last result."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=256)
    ap.add_argument("--baseline-runs", type=int, default=16)
    ap.add_argument("--torch-runs", type=int, default=4)
    args = ap.parse_args()
    d, b, T = args.modes, args.batch, args.steps
    problem = Problem.power_law(1.5, 1.0, d)
    alpha, beta = 0.2, 0.5
    lam, e0 = problem.eigenvalues, np.sqrt(problem.initial)

    def per_coord(seconds, runs):
        return 1e9 * seconds / (runs * T * b * d)

    simulate.run(problem, alpha, beta, b, 2, 2, 0)                       # load / compile
    simulate.run(problem, alpha, beta, b, 2, 2, 0, sampler="per-sample")
    t_kernel, tr = timed(lambda: simulate.run(problem, alpha, beta, b, T, args.runs, 1))
    ns_kernel = per_coord(t_kernel, args.runs)
    rows = [("numba kernel (simulate.run, cpu), projected sampler", args.runs, t_kernel, ns_kernel)]
    t_ps, tr_ps = timed(lambda: simulate.run(problem, alpha, beta, b, T, args.runs, 6,
                                             sampler="per-sample"))
    rows.append(("numba kernel, per-sample draws", args.runs, t_ps, per_coord(t_ps, args.runs)))
    # the same kernel for other descriptions: a 3-dimensional state, and a schedule
    from sgdyn.theory.record import Record
    from sgdyn.theory.run import Run
    for label, kw in (("numba kernel, ema-heavy-ball (3-dimensional state), projected",
                       dict(method="ema-heavy-ball", alpha=alpha, beta=beta, batch=b)),
                      ("numba kernel, heavy ball under a schedule, projected",
                       dict(method="heavy-ball", alpha=f"warmup({T // 10})+cosine({alpha},floor=0.01)",
                            beta=f"linear({beta},0.9)", batch=b))):
        r = Run.build(problem, steps=T, record=Record.every(T), **kw)
        simulate.run(r.replace(record=Record.at([0, 1])), 2, 0)        # load / compile
        t_r, _ = timed(lambda: simulate.run(r, args.runs, 1))
        rows.append((label, args.runs, t_r, per_coord(t_r, args.runs)))

    R = args.baseline_runs
    t_np, (np_mean, np_se) = timed(lambda: numpy_vectorised(lam, e0, alpha, beta, b, T, R, 2), 2)
    rows.append(("numpy, vectorised over runs", R, t_np, per_coord(t_np, R)))
    t_floor, _ = timed(lambda: normal_floor(R * T * b * d, 3), 2)
    rows.append(("normals only (numpy default_rng)", R, t_floor, per_coord(t_floor, R)))
    try:
        import torch
    except ImportError:
        torch = None
        print("note: torch is not installed: PyTorch rows skipped (pip install torch==2.13.0)")
    if torch is not None:
        torch.set_num_threads(numba.get_num_threads())
        Rt = args.torch_runs
        torch_loop(torch, lam, e0, alpha, beta, b, 2, 1, 0, False)            # warm up
        t_tl, _ = timed(lambda: torch_loop(torch, lam, e0, alpha, beta, b, T, Rt, 4, False))
        rows.append(("torch.optim.SGD loop, one run at a time", Rt, t_tl, per_coord(t_tl, Rt)))
        t_tb, _ = timed(lambda: torch_loop(torch, lam, e0, alpha, beta, b, T, Rt, 5, True))
        rows.append(("torch.optim.SGD, runs batched", Rt, t_tb, per_coord(t_tb, Rt)))

    print(f"d = {d}, batch = {b}, T = {T}, heavy ball alpha = {alpha}, beta = {beta}; "
          f"numba threads {numba.get_num_threads()}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"| implementation | runs | seconds | ns / sample-coordinate | time / kernel time |")
    print(f"|---|---:|---:|---:|---:|")
    for name, runs, sec, ns in rows:
        print(f"| {name} | {runs} | {sec:.2f} | {ns:.2f} | {ns / ns_kernel:.2f} |")
    # sanity: the kernels and the numpy baseline simulate the same dynamics
    for name, mean, se in (("per-sample kernel", tr_ps.mean[-1], tr_ps.stderr[-1]),
                           (f"numpy ({R} runs)", np_mean, np_se)):
        z = (mean - tr.mean[-1]) / np.hypot(se, tr.stderr[-1])
        print(f"final mean loss: projected kernel {tr.mean[-1]:.5e} +- {tr.stderr[-1]:.1e}, {name} "
              f"{mean:.5e} +- {se:.1e} (difference {z:+.1f} standard errors)")


if __name__ == "__main__":
    main()
