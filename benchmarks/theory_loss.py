"""Time the exact loss curve (the SE second-moment recursion, ``sgdyn.theory.recursion``) against
baselines measured in the same run:

* a vectorised numpy implementation of the same recursion (per-mode matrices ``A_k``, one einsum
  per step: the form the engine used before);
* the bytes the kernel streams per mode-step, the bandwidth that implies, and a measured
  streaming-copy bandwidth of this machine (numpy ``copyto`` of a buffer the size of the kernel's
  working set, and of one far larger than the caches);
* the kernel for a 1-, 2- and 3-dimensional per-mode state (SGD, heavy ball, EMA of heavy ball);
* a schedule (warm-up + cosine learning rate, linear momentum, batch doubling) against the
  constant run of the same size (target: within 1.5x).

    python benchmarks/theory_loss.py [--modes 10000] [--steps 10000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from sgdyn.theory.dynamics import mode_inputs, moments
from sgdyn.theory.problem import Problem
from sgdyn.theory.record import Record
from sgdyn.theory.recursion import structure
from sgdyn.theory.run import Run
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
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def copy_bandwidth(nbytes: int, repeats: int) -> float:
    """GB/s of ``np.copyto`` (read + write) on buffers of ``nbytes``."""
    src = np.ones(max(nbytes // 8, 1))
    dst = np.empty_like(src)
    np.copyto(dst, src)
    reps = max(1, int(2e8 // max(nbytes, 1)))
    t, _ = best_of(lambda: [np.copyto(dst, src) for _ in range(reps)], repeats)
    return 2 * src.nbytes * reps / t / 1e9


def streamed_bytes(run) -> int:
    """Bytes per mode-step of the generated kernel: the state read and written (q doubles each),
    lambda, and the per-mode arrays this run needs (``sgdyn.theory.kernel_source.render``)."""
    inputs = mode_inputs(run)
    q = inputs.X0.shape[0]
    extra = int(np.any(inputs.pp != 1.0)) * 2 + int(np.any(inputs.wl != inputs.lam)) + \
        int(np.any(inputs.src != 0.0))
    return 8 * (2 * q + 1 + extra)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    N, T = args.modes, args.steps
    problem = Problem.power_law(nu=1.5, kappa=3.0, n=N)
    print(f"loss curve, N = {N} modes, T = {T} steps; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores; one thread")

    runs = {"sgd (d = 1)": Run.build(problem, "sgd", alpha=0.2, batch=4, steps=T),
            "heavy-ball (d = 2)": Run.build(problem, "heavy-ball", alpha=0.2, beta=-0.3, batch=4,
                                            steps=T),
            "ema-heavy-ball (d = 3)": Run.build(problem, "ema-heavy-ball", alpha=0.2, beta=-0.3,
                                                batch=4, steps=T)}
    times = {}
    for label, r in runs.items():
        moments(r.replace(record=Record.at([0, 10])))       # compile or load the cache
        t, m = best_of(lambda: moments(r), args.repeats)
        times[label] = (t, m, streamed_bytes(r))
    t_hb, m_hb, b_hb = times["heavy-ball (d = 2)"]

    arrays = ModeSystem.build(problem, 0.2, -0.3, 4).arrays()
    t_numpy, ref = best_of(lambda: numpy_recursion(arrays, T), 1)
    assert np.allclose(m_hb.loss, ref, rtol=1e-10), "numba and numpy recursions disagree"

    working_set = N * b_hb
    bw_set = copy_bandwidth(working_set, args.repeats)
    bw_dram = copy_bandwidth(1 << 29, args.repeats)
    print(f"  streaming copy (numpy copyto, read + write): {bw_set:7.1f} GB/s on "
          f"{working_set / 2**20:.2f} MB (the kernel's working set), {bw_dram:7.1f} GB/s on 512 MB")
    print(f"  {'kernel':<26} {'time':>9} {'ns/mode-step':>13} {'bytes':>6} {'GB/s':>7} "
          f"{'of copy':>8}")
    for label, (t, _, nbytes) in times.items():
        ns = 1e9 * t / (N * T)
        bw = nbytes * N * T / t / 1e9
        print(f"  {label:<26} {t:8.3f}s {ns:13.3f} {nbytes:6d} {bw:7.1f} {bw / bw_set:7.2f}x")
    print(f"  numpy recursion (A-form) {t_numpy:8.3f}s {1e9 * t_numpy / (N * T):13.3f}   "
          f"heavy ball kernel {t_numpy / t_hb:.1f}x faster")

    sched = Run.build(problem, "heavy-ball", alpha="warmup(500)+cosine(0.2,floor=0.01)",
                      beta="linear(-0.3,0.5)", batch="double(4,milestones=[5000])", steps=T)
    moments(sched.replace(record=Record.at([0, 10])))
    t_s, _ = best_of(lambda: moments(sched), args.repeats)
    print(f"  schedule (warm-up + cosine, linear beta, batch doubling): {t_s:8.3f} s = "
          f"{t_s / t_hb:.2f}x the constant heavy-ball run (target <= 1.5x)")
    f, h = structure(runs["heavy-ball (d = 2)"].method)
    print(f"  (heavy ball's kernel is specialised to F's nonzeros {f} and K G's {h})")


if __name__ == "__main__":
    main()
