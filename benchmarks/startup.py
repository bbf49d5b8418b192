"""Whole-process times of small ``sgdyn`` calls against ``python -c pass``, measured in the same run.

What a user waits for at the prompt: interpreter start, imports, loading the cached numeric forms
and numba kernels, the work, the output. Each command runs once to warm the caches (numba's
``cache=True`` files and ``sgdyn.theory.formcache``; a fresh checkout pays the compilation and
the derivations once), then ``--repeat`` times; the table shows the median and the minimum,
the median less the bare interpreter's, the median CPU time (user + system, all threads: on a
machine shared with other jobs it varies less than the wall time) and the target of issue 19:

* ``sgdyn --help``: under 0.3 s;
* a small ``loss`` (100 modes, 1000 steps), ``critical-lr`` (1000 modes) and ``simulate`` (400 runs
  of 1000 steps on 61 modes): under 1 s each.

For ``simulate`` the same Monte Carlo as a plain numpy loop (vectorised over runs, one process) is
timed too. The machine's load average is printed: on a busy machine every figure grows.

    python benchmarks/startup.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ("sgdyn --help", ["--help"], 0.3),
    ("sgdyn loss (100 modes, 1000 steps)",
     ["loss", "--problem", "powerlaw:nu=1.5,kappa=3,n=100", "--alpha", "0.3", "--beta", "0.5",
      "--batch", "4", "--steps", "1000"], 1.0),
    ("sgdyn critical-lr (1000 modes)",
     ["critical-lr", "--problem", "powerlaw:nu=1.5,kappa=3,n=1000", "--beta", "-0.2",
      "--batch", "10"], 1.0),
    ("sgdyn simulate (400 runs x 1000 steps, 61 modes)",
     ["simulate", "--problem", "powerlaw:nu=1.5,kappa=1,n=61", "--alpha", "0.3", "--beta", "0.5",
      "--batch", "2", "--steps", "1000", "--runs", "400", "--seed", "1"], 1.0),
]

NUMPY_LOOP = """
import numpy as np
k = np.arange(1, 62); lam = k ** -1.5; e = np.tile(np.sqrt(k ** -1.0 / lam), (400, 1))
v = np.zeros_like(e); sl = np.sqrt(lam); rng = np.random.default_rng(1); loss = []
for t in range(1000):
    x = rng.standard_normal((400, 2, 61)) * sl
    g = np.einsum('rbk,rb->rk', x, np.einsum('rbk,rk->rb', x, e)) / 2
    v = 0.5 * v - 0.3 * g; e = e + v; loss.append(0.5 * (e ** 2) @ lam)
print(np.mean(loss[-1]))
"""


def timed(argv, env) -> tuple[float, float]:
    """Wall time and CPU time (user + system of the child, all its threads) of one process."""
    def cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime
    c, t = cpu(), time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t, cpu() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    env = dict(os.environ, SGDYN_PROGRESS="0")
    py = sys.executable
    runs = [("python -c pass", [py, "-c", "pass"], None)]
    runs += [(name, [py, "-m", "sgdyn", *argv], target) for name, argv, target in COMMANDS]
    runs.append(("numpy loop, same Monte Carlo as simulate", [py, "-c", NUMPY_LOOP], None))
    for _, argv, _ in runs:          # warm numba's and sgdyn's caches, the OS file cache
        timed(argv, env)
    load_before = os.getloadavg()
    results = []
    for name, argv, target in runs:
        times, cpus = zip(*(timed(argv, env) for _ in range(args.repeat)))
        results.append((name, statistics.median(times), min(times), statistics.median(cpus),
                        target))
    load_after = os.getloadavg()
    base = results[0][1]
    print(f"{'whole process':52s} {'median':>8s} {'min':>8s} {'- python':>9s} {'cpu':>8s} "
          f"{'target':>7s}")
    for name, med, low, cpu, target in results:
        verdict = "" if target is None else ("  ok" if med < target else "  OVER")
        tgt = "" if target is None else f"< {target:g}"
        print(f"{name:52s} {med:7.3f}s {low:7.3f}s {med - base:8.3f}s {cpu:7.3f}s "
              f"{tgt:>7s}{verdict}")
    print(f"median of {args.repeat} runs each after one warm-up; {os.cpu_count()} CPUs; "
          f"load average (1, 5, 15 min) {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} before, {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f} after")


if __name__ == "__main__":
    main()
