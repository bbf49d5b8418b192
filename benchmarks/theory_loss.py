"""Time the exact loss curve (the SE second-moment recursion, ``sgdyn.theory.recursion``) against
baselines measured in the same run:

* a vectorised numpy implementation of the same recursion (per-mode matrices ``A_k``, one einsum
  per step: the form the engine used before);
* the bytes the kernel streams per mode-step, the bandwidth that implies, and a measured
  streaming-copy bandwidth of this machine (a copy loop over a buffer the size of the kernel's
  working set, and of one far larger than the caches);
* the kernel for a 1-, 2- and 3-dimensional per-mode state (SGD, heavy ball, EMA of heavy ball),
  on one thread and on several (threads over modes, one reduction per step), timed in turn, with
  the copy bandwidth on as many threads and the mode count from which threads pay (break-even);
* a schedule (warm-up + cosine learning rate, linear momentum, batch doubling) against the
  constant run of the same size (target: within 1.5x);
* the exact jump-ahead route (``sgdyn.theory.jumpahead``): 100 log-spaced checkpoints on the
  grouped 10^6-mode power law to 10^8 and on the ungrouped 10^5-mode one to 10^6 (far modes by
  multipoles, ``sgdyn.theory.cauchy_tree``), against the recursion measured in the same run.

    python benchmarks/theory_loss.py [--modes 10000] [--steps 10000] [--repeats 3] [--threads P]
                                     [--jump-ahead yes|no|only]
"""
from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
from _timing import alternating, timed
from numba import njit

from sgdyn.theory.dynamics import mode_inputs, moments
from sgdyn.theory.problem import Problem
from sgdyn.theory.record import Record
from sgdyn.theory.recursion import THREADS_VARIABLE, structure, team_size
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


@njit(nogil=True)
def _copies(dst, src, reps):
    for _ in range(reps):
        dst[:] = src


def copy_bandwidth(nbytes: int, repeats: int, threads: int = 1) -> float:
    """GB/s of a streaming copy (read + write; a numba loop that releases the GIL) of ``nbytes``
    in all, split over ``threads`` threads that each copy their own part, all at once."""
    n = max(nbytes // 8 // threads, 1)
    pairs = [(np.empty(n), np.ones(n)) for _ in range(threads)]
    reps = max(1, int(2e8 // max(nbytes, 1)))

    def once():
        others = [threading.Thread(target=_copies, args=(*pair, reps)) for pair in pairs[1:]]
        for t in others:
            t.start()
        _copies(*pairs[0], reps)
        for t in others:
            t.join()

    _copies(*pairs[0], 1)
    t, _ = timed(once, repeats)
    return 2 * 8 * n * threads * reps / t / 1e9


def streamed_bytes(run) -> int:
    """Bytes per mode-step of the generated kernel: the state read and written (q doubles each),
    lambda, and the per-mode arrays this run needs (``sgdyn.theory.kernel_source.render``)."""
    inputs = mode_inputs(run)
    q = inputs.X0.shape[0]
    extra = int(np.any(inputs.pp != 1.0)) * 2 + int(np.any(inputs.wl != inputs.lam)) + \
        int(np.any(inputs.src != 0.0))
    return 8 * (2 * q + 1 + extra)


def on_threads(team: int, fn):
    """``fn`` with the recursion forced onto ``team`` threads (``SGDYN_RECURSION_THREADS``)."""
    def call():
        os.environ[THREADS_VARIABLE] = str(team)
        try:
            return fn()
        finally:
            del os.environ[THREADS_VARIABLE]
    return call


def break_even(team: int, repeats: int) -> tuple[int | None, list]:
    """The smallest mode count (of 2^7..2^13, heavy ball, ~2e7 mode-steps each) at which ``team``
    threads beat one, and the (N, one-thread, team) times per mode-step."""
    rows = []
    for N in 2 ** np.arange(7, 14):
        T = int(2e7 // N)
        r = Run.build(Problem.power_law(1.5, 3.0, int(N)), "heavy-ball", alpha=0.2, beta=-0.3,
                      batch=4, steps=T)
        fns = [on_threads(p, lambda: moments(r)) for p in (1, team)]
        for f in fns:
            f()
        (t1, tp), _ = alternating(fns, repeats)
        rows.append((int(N), 1e9 * t1 / (N * T), 1e9 * tp / (N * T)))
    faster = [n for n, a, b in rows if b < a]
    return (faster[0] if faster else None), rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads of the threaded rows (default: the recursion's own choice for "
                         "--modes, at least 2)")
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
    team = args.threads or max(2, team_size(N))
    problem = Problem.power_law(nu=1.5, kappa=3.0, n=N)
    print(f"loss curve, N = {N} modes, T = {T} steps; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores; one thread "
          f"and {team} (the recursion picks {team_size(N)} for N = {N}), timed in turn")

    runs = {"sgd (d = 1)": Run.build(problem, "sgd", alpha=0.2, batch=4, steps=T),
            "heavy-ball (d = 2)": Run.build(problem, "heavy-ball", alpha=0.2, beta=-0.3, batch=4,
                                            steps=T),
            "ema-heavy-ball (d = 3)": Run.build(problem, "ema-heavy-ball", alpha=0.2, beta=-0.3,
                                                batch=4, steps=T)}
    times = {}
    for label, r in runs.items():
        moments(r.replace(record=Record.at([0, 10])))       # compile or load the cache
        fns = [on_threads(p, lambda r=r: moments(r)) for p in (1, team)]
        (t1, tp), (m1, mp) = alternating(fns, args.repeats)
        assert np.allclose(mp.loss, m1.loss, rtol=1e-12, atol=0), "threads changed the curve"
        times[label] = (t1, tp, m1, streamed_bytes(r))
    t_hb, tp_hb, m_hb, b_hb = times["heavy-ball (d = 2)"]

    arrays = ModeSystem.build(problem, 0.2, -0.3, 4).arrays()
    t_numpy, ref = timed(lambda: numpy_recursion(arrays, T), 1)
    assert np.allclose(m_hb.loss, ref, rtol=1e-10), "numba and numpy recursions disagree"

    working_set = N * b_hb
    bw = {p: copy_bandwidth(working_set, args.repeats, p) for p in (1, team)}
    bw_dram = copy_bandwidth(1 << 29, args.repeats)
    print(f"  streaming copy (read + write) of the kernel's working set "
          f"({working_set / 2**20:.2f} MB): {bw[1]:.1f} GB/s on one thread, {bw[team]:.1f} GB/s "
          f"on {team}; {bw_dram:.1f} GB/s on 512 MB")
    print(f"  {'kernel':<24} {'threads':>7} {'time':>9} {'ns/mode-step':>13} {'bytes':>6} "
          f"{'GB/s':>7} {'of copy':>8} {'numpy/this':>11}")
    for label, (t1, tp, _, nbytes) in times.items():
        for p, t in ((1, t1), (team, tp)):
            rate = nbytes * N * T / t / 1e9
            print(f"  {label:<24} {p:7d} {t:8.3f}s {1e9 * t / (N * T):13.3f} {nbytes:6d} "
                  f"{rate:7.1f} {rate / bw[p]:7.2f}x {t_numpy / t:10.1f}x")
    print(f"  numpy recursion (A-form) {t_numpy:8.3f}s ({1e9 * t_numpy / (N * T):.3f} "
          "ns/mode-step); "
          f"heavy ball on {team} threads {t_hb / tp_hb:.2f}x one thread")
    first, rows = break_even(team, args.repeats)
    print(f"  break-even, heavy ball (ns/mode-step on 1 | {team} threads): "
          + ", ".join(f"N={n}: {a:.2f} | {b:.2f}" for n, a, b in rows)
          + (f"; {team} threads faster from N = {first}" if first else
             f"; {team} threads never faster here (a busy machine: see docs/performance.md)"))

    sched = Run.build(problem, "heavy-ball", alpha="warmup(500)+cosine(0.2,floor=0.01)",
                      beta="linear(-0.3,0.5)", batch="double(4,milestones=[5000])", steps=T)
    moments(sched.replace(record=Record.at([0, 10])))
    constant = runs["heavy-ball (d = 2)"]
    (t_s, t_c), _ = alternating([on_threads(1, lambda: moments(sched)),
                                 on_threads(1, lambda: moments(constant))], args.repeats)
    print(f"  schedule (warm-up + cosine, linear beta, batch doubling): {t_s:8.3f} s = "
          f"{t_s / t_c:.2f}x the constant heavy-ball run (target <= 1.5x; one thread each)")
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
