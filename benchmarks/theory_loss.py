"""Time the exact loss curve (the SE second-moment recursion, ``sgdyn.theory.recursion``) against
baselines measured in the same run:

* a vectorised numpy implementation of the same recursion (per-mode matrices ``A_k``, one einsum
  per step: the form the engine used before);
* the bytes the kernel streams per mode-step, the bandwidth that implies, and a measured
  streaming-copy bandwidth of this machine (numpy ``copyto`` of a buffer the size of the kernel's
  working set, and of one far larger than the caches);
* the kernel for a 1-, 2- and 3-dimensional per-mode state (SGD, heavy ball, EMA of heavy ball);
* a schedule (warm-up + cosine learning rate, linear momentum, batch doubling) against the
  constant run of the same size (target: within 1.5x);
* the exact jump-ahead route (``sgdyn.theory.jumpahead``): 100 log-spaced checkpoints on the
  grouped 10^6-mode power law to 10^8 and on the ungrouped 10^5-mode one to 10^6 (far modes by
  multipoles, ``sgdyn.theory.cauchy_tree``), against the recursion measured in the same run.

    python benchmarks/theory_loss.py [--modes 10000] [--steps 10000] [--repeats 3]
                                     [--jump-ahead yes|no|only]
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
    ap.add_argument("--jump-ahead", choices=("yes", "no", "only"), default="yes",
                    help="also time the jump-ahead route (or only it)")
    ap.add_argument("--ja-modes", type=int, default=100_000,
                    help="modes of the ungrouped power law in the jump-ahead section")
    ap.add_argument("--ja-recursion-steps", type=int, default=100_000,
                    help="horizon of the recursion timed for comparison in that section (the "
                         "ungrouped case: a tenth of it)")
    args = ap.parse_args()
    if args.jump_ahead == "only":
        jump_ahead_section(args)
        return
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
    cases = [("grouped", Problem.power_law_continuum(1.5, 3.0, 10 ** 6, groups=1000), 10 ** 8,
              args.ja_recursion_steps),
             ("ungrouped", Problem.power_law(1.5, 3.0, args.ja_modes), 10 ** 6,
              args.ja_recursion_steps // 10)]
    print(f"jump-ahead, heavy ball alpha = 0.2, beta = 0.5, batch 4; 100 log-spaced checkpoints "
          f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus)")
    for label, problem, T, T_rec in cases:
        arrays = ModeSystem.build(problem, 0.2, 0.5, 4).arrays()
        steps = np.unique(np.round(np.geomspace(1, T, 100)).astype(np.int64))
        spec, t_set, c_set, m_set = _timed(lambda: spectrum(arrays))
        res, t_eval, c_eval, m_eval = _timed(lambda: spec.expansion().loss(steps))
        total = t_set + t_eval
        T_rec = min(T, T_rec)
        run = Run.build(problem, "heavy-ball", alpha=0.2, beta=0.5, batch=4, steps=T_rec)
        moments(run.replace(record=Record.at([0, 10])))
        rec, t_rec, _, _ = _timed(lambda: moments(run).loss)
        inside = res.steps <= T_rec
        worst = float(np.max(np.abs(res.loss[inside] / rec[res.steps[inside]] - 1)))
        far = spec.structure.far
        print(f"  {label}: {problem.name}, {problem.n_modes} entries, {spec.n_roots} roots, "
              f"{spec.sweeps} Aberth sweeps, {len(spec.clusters)} clusters, far modes "
              + (f"by multipoles ({far.tree.n_nodes} tree nodes)" if far.active else "summed directly"))
        print(f"    set-up          : {t_set:8.3f} s wall ({c_set:.3f} s cpu), peak {m_set / 2**20:.1f} MB")
        print(f"    100 checkpoints : {t_eval:8.3f} s wall ({c_eval:.3f} s cpu), peak {m_eval / 2**20:.1f} MB")
        print(f"    total to T = {T:.0e}: {total:8.3f} s;  L_T = {res.loss[-1]:.6e} "
              f"(rounding estimate {res.error_estimate.max():.1e}), rate {res.rate:.12f}")
        print(f"    recursion to {T_rec:.0e}: {t_rec:8.3f} s (max relative difference "
              f"{worst:.1e} at the {int(inside.sum())} shared checkpoints); to T = {T:.0e} "
              f"~{t_rec * T / T_rec:.3g} s extrapolated: {t_rec * T / T_rec / total:.3g}x the jump-ahead")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
