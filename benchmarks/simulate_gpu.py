"""Runs per second of the CUDA Monte Carlo backend (``simulate.run(..., backend="cuda")``) against
baselines measured in the same run on the same problem (power law, d modes, Gaussian features,
heavy ball alpha = 0.2, beta = 0.5):

* the CPU backend (numba, ``--cpu-threads`` threads, default 2: the project's reference machine),
  timed on ``--cpu-runs`` runs (its time is linear in the run count);
* PyTorch on the GPU, if installed with CUDA: all runs batched as one ``(runs, d)`` tensor, both
  plain tensor arithmetic and ``torch.optim.SGD(lr=alpha, momentum=beta)`` with autograd.

Then a theory check at ``--theory-runs`` runs (default 10^5): the CUDA backend's mean loss against
``theory.dynamics.loss_curve`` (exact for these features) at every recorded step, in standard
errors, for Gaussian heavy ball and Rademacher Nesterov.

Needs an NVIDIA GPU (``pip install -e ".[cuda]"``); it refuses to run without one, or under
numba's CUDA simulator.

    python benchmarks/simulate_gpu.py [--modes 1000] [--batch 8] [--steps 1000] [--runs 16384]
"""
from __future__ import annotations

import argparse
import os
import sys
import time


import numba
import numpy as np

from sgdyn import simulate
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.noise import GAUSSIAN, RADEMACHER
from sgdyn.theory.problem import Problem


def gpu_or_exit():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        sys.exit("benchmarks/simulate_gpu.py: NUMBA_ENABLE_CUDASIM=1 is set; the simulator is not a "
                 "GPU: unset it and run on a machine with an NVIDIA GPU")
    try:
        from sgdyn.simulate import cuda_kernels
    except ImportError as exc:
        sys.exit(f"benchmarks/simulate_gpu.py needs numba's CUDA target: {exc}; "
                 "pip install -e \".[cuda]\"")
    if not cuda_kernels.available():
        sys.exit("benchmarks/simulate_gpu.py needs an NVIDIA GPU: numba.cuda.is_available() is "
                 "False here (no GPU, no driver, or no CUDA runtime: pip install -e \".[cuda]\")")
    from numba import cuda
    return cuda.get_current_device().name


def torch_gpu(torch, lam, e0, alpha, beta, batch, steps, runs, seed, use_optim):
    """Mean and standard error of the final loss; the error ``w - w*`` is the parameter."""
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(seed)
    sl = torch.tensor(np.sqrt(lam), device=dev)
    lam_t = torch.tensor(lam, device=dev)
    e = torch.tensor(np.tile(e0, (runs, 1)), device=dev, requires_grad=use_optim)
    v = torch.zeros_like(e)
    opt = torch.optim.SGD([e], lr=alpha, momentum=beta) if use_optim else None
    for _ in range(steps):
        x = torch.randn(runs, batch, lam.size, generator=gen, device=dev, dtype=torch.float64) * sl
        if use_optim:
            # summed over runs: each run's gradient is its own mini-batch mean
            obj = 0.5 * (torch.einsum("rbd,rd->rb", x, e) ** 2).mean(dim=1).sum()
            opt.zero_grad()
            obj.backward()
            opt.step()
        else:
            g = torch.einsum("rbd,rb->rd", x, torch.einsum("rbd,rd->rb", x, e)) / batch
            v = beta * v - alpha * g
            e = e + v
    with torch.no_grad():
        loss = 0.5 * (e ** 2) @ lam_t
    torch.cuda.synchronize()
    return loss.mean().item(), loss.std().item() / np.sqrt(runs)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=16384)
    ap.add_argument("--cpu-runs", type=int, default=32)
    ap.add_argument("--cpu-threads", type=int, default=2)
    ap.add_argument("--theory-runs", type=int, default=100_000)
    args = ap.parse_args()
    device = gpu_or_exit()
    d, b, T, R = args.modes, args.batch, args.steps, args.runs
    problem = Problem.power_law(1.5, 1.0, d)
    alpha, beta = 0.2, 0.5
    lam, e0 = problem.eigenvalues, np.sqrt(problem.initial)
    every = max(1, T // 20)

    def run(backend, runs, seed, steps=T, sampler="auto"):
        return simulate.run(problem, alpha, beta, b, steps, runs, seed, backend=backend, every=every,
                            sampler=sampler)

    run("cuda", 2, 0, 2)                                          # compile
    t_gpu, tr = timed(lambda: run("cuda", R, 1))
    rows = [("simulate.run, backend cuda (projected sampler)", R, t_gpu)]
    t_ps, tr_ps = timed(lambda: run("cuda", R, 8, sampler="per-sample"))
    rows.append(("simulate.run, backend cuda, per-sample draws", R, t_ps))
    numba.set_num_threads(min(args.cpu_threads, numba.config.NUMBA_NUM_THREADS))
    run("cpu", 2, 0, 2)
    t_cpu, tr_cpu = timed(lambda: run("cpu", args.cpu_runs, 2))
    rows.append((f"simulate.run, backend cpu ({numba.get_num_threads()} threads)", args.cpu_runs, t_cpu))
    finals = [("cuda", tr.mean[-1], tr.stderr[-1]), ("cuda per-sample", tr_ps.mean[-1], tr_ps.stderr[-1]),
              ("cpu", tr_cpu.mean[-1], tr_cpu.stderr[-1])]
    try:
        import torch
        has_torch = torch.cuda.is_available()
    except ImportError:
        has_torch = False
    if has_torch:
        for use_optim, name in ((False, "torch tensors on the GPU"), (True, "torch.optim.SGD on the GPU")):
            torch_gpu(torch, lam, e0, alpha, beta, b, 2, 2, 0, use_optim)   # warm up
            t, (m, se) = timed(lambda: torch_gpu(torch, lam, e0, alpha, beta, b, T, R, 3, use_optim))
            rows.append((name, R, t))
            finals.append((name, m, se))
    else:
        print("note: torch with CUDA is not installed: PyTorch rows skipped")

    print(f"device: {device}; d = {d}, batch = {b}, T = {T}, heavy ball alpha = {alpha}, "
          f"beta = {beta}; {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}")
    gpu_rate = R / t_gpu
    print("| implementation | runs | seconds | runs / second | cuda speed-up |")
    print("|---|---:|---:|---:|---:|")
    for name, runs, sec in rows:
        print(f"| {name} | {runs} | {sec:.2f} | {runs / sec:.1f} | {gpu_rate / (runs / sec):.1f} |")
    th = loss_curve(problem, alpha, beta, b, T).loss[-1]
    for name, m, se in finals:
        print(f"final mean loss, {name}: {m:.5e} +- {se:.1e} ({(m - th) / se:+.1f} standard errors "
              f"from the theory {th:.5e})")

    for features, method, noise, a, bt in (("gaussian", "heavy-ball", GAUSSIAN, alpha, beta),
                                           ("rademacher", "nesterov", RADEMACHER, 0.3, 0.3)):
        t, big = timed(lambda: simulate.run(problem, a, bt, b, T, args.theory_runs, 7, method=method,
                                            features=features, backend="cuda", every=every))
        curve = loss_curve(problem, a, bt, b, T, method=method, noise=noise).loss[big.steps]
        z = (big.mean[1:] - curve[1:]) / big.stderr[1:]
        print(f"theory check, {features} {method} (alpha {a}, beta {bt}), {args.theory_runs} runs "
              f"in {t:.1f} s: max |mean - theory| / stderr over {z.size} recorded steps = "
              f"{np.abs(z).max():.2f}; diverged runs {big.diverged_runs}")


if __name__ == "__main__":
    main()
