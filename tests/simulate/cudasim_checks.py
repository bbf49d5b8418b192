"""Runs the CUDA backend under numba's CUDA simulator and prints its results as JSON.

Started by ``tests/simulate/test_cuda.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (the
variable must be set before numba is imported); the assertions live there. Sizes are tiny: the
simulator runs every CUDA thread as a Python thread (~1 ms per run and step here).
"""
from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

# Turn warnings into errors, except numpy's overflow notice on uint64 scalars: the simulated
# xoroshiro128+ adds modulo 2^64 on purpose (on the GPU the same addition wraps silently).
warnings.simplefilter("error")
warnings.filterwarnings("ignore", category=RuntimeWarning,
                        message="overflow encountered in scalar add")

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"

from numba import cuda  # noqa: E402

from sgdyn import simulate  # noqa: E402
from sgdyn.simulate import cuda_kernels as ck  # noqa: E402
from sgdyn.simulate.cuda import DeviceStatistics  # noqa: E402
from sgdyn.simulate.sketch import LogHistogram  # noqa: E402
from sgdyn.theory.problem import Problem  # noqa: E402

# The settings test_cuda.py checks against theory and the CPU backend (they travel in the JSON).
P4 = dict(eigenvalues=[1.0, 0.5, 0.25, 0.125], initial=[1.0, 1.0, 1.0, 1.0], label_noise=0.2)
P3 = dict(eigenvalues=[1.0, 0.3, 0.1], initial=[1.0, 1.0, 1.0], label_noise=0.0)
CASES = {
    # Gaussian features, heavy ball, label noise: the loss settles on its floor
    "gaussian": dict(problem=P4, alpha=0.3, beta=0.5, batch=2, steps=24, runs=256, seed=11,
                     method="heavy-ball", features="gaussian", every=6),
    # the same with every sample drawn (the "gaussian" case runs the default projected sampler)
    "gaussian_per_sample": dict(problem=P4, alpha=0.3, beta=0.5, batch=2, steps=24, runs=256,
                                seed=15, method="heavy-ball", features="gaussian", every=6,
                                sampler="per-sample"),
    # projected sampler, Nesterov (gradient at e + beta v), batch 3
    "nesterov_gaussian": dict(problem=P4, alpha=0.25, beta=0.6, batch=3, steps=24, runs=256,
                              seed=16, method="nesterov", features="gaussian", every=6),
    # Rademacher features, Nesterov, batch 1: the -tau2 lambda^2 self-noise term matters
    "rademacher": dict(problem=P3, alpha=0.4, beta=0.3, batch=1, steps=24, runs=256, seed=12,
                       method="nesterov", features="rademacher", every=6),
    # alpha = 10^6 (the stability edge is 2 / lambda_max = 2): every run passes the guard, after
    # ~15 steps, each at its own step
    "divergent": dict(problem=P3, alpha=1e6, beta=0.0, batch=2, steps=40, runs=130, seed=13,
                      method="heavy-ball", features="gaussian", every=2),
    # fewer runs than a block: the idle threads must not count
    "small": dict(problem=P3, alpha=0.3, beta=0.5, batch=2, steps=4, runs=50, seed=14,
                  method="heavy-ball", features="gaussian", every=2),
}


# Run descriptions (sgdyn.theory.Run keywords): methods other than heavy ball / Nesterov and
# schedules, simulated by the kernel from the method's own matrices per step
RUN_CASES = {
    "qhm": dict(problem=P4, method="qhm", alpha=0.4, beta=0.7, batch=2, steps=24,
                params={"nu": 0.4}, runs=256, seed=21, every=6),
    "ema": dict(problem=P4, method="ema-heavy-ball", alpha=0.3, beta=0.5, batch=2, steps=24,
                params={"decay": 0.6}, runs=256, seed=22, every=6),
    # settings well inside the convergence region: a per-run loss with a light tail, so the mean
    # of 256 runs is a fair estimate (near the threshold the sample mean falls short)
    "schedule": dict(problem=P3, method="nesterov", alpha="warmup(6)+cosine(0.3,floor=0.05)",
                     beta="linear(0.2,0.7)", batch="double(2,milestones=[12])", steps=24,
                     runs=256, seed=23, every=6),
    "user": dict(problem=P3, method="params: c = 0.5; v' = beta*v - alpha*g(w + c*v); w' = w + v'",
                 alpha=0.2, beta=0.5, batch=2, steps=24, runs=256, seed=24, every=6),
    # the shipped methods not covered above, one setting each (all of them at three settings:
    # METHOD_SETTINGS, slow)
    "sgd": dict(problem=P4, method="sgd", alpha=0.6, batch=2, steps=16, runs=128, seed=25, every=4),
    "nesterov-pytorch": dict(problem=P4, method="nesterov-pytorch", alpha=0.3, beta=0.6, batch=2,
                             steps=16, runs=128, seed=26, every=4),
    "preconditioned-sgd": dict(problem=P3, method="preconditioned-sgd", alpha=0.4, batch=2,
                               steps=16, params={"s": 0.5}, runs=128, seed=27, every=4),
    "preconditioned-heavy-ball": dict(problem=P3, method="preconditioned-heavy-ball", alpha=0.3,
                                      beta=0.5, batch=2, steps=16, params={"s": 0.5}, runs=128,
                                      seed=28, every=4),
}
# every shipped method at three settings (alpha, beta, batch), as tests/simulate/test_methods_mc.py
# runs them on the CPU: `cudasim_checks.py methods` (the slow CUDA test)
METHOD_SETTINGS = [(0.25, 0.5, 2), (0.15, -0.4, 1), (0.35, 0.8, 4)]


def method_cases():
    from sgdyn.theory.catalogue import METHODS
    from sgdyn.theory.methods import get_method
    cases = {}
    for name in sorted(METHODS):
        momentum = get_method(name).has_momentum
        for i, (a, bt, b) in enumerate(METHOD_SETTINGS):
            cases[f"{name}/{i}"] = dict(problem=P4, method=name, alpha=a,
                                        beta=bt if momentum else 0.0, batch=b, steps=24,
                                        runs=128, seed=100 + i, every=6)
    return cases


# Data rows sampled like training (12 rows of 3 features, label noise, a signed start), heavy ball:
# i.i.d. rows, without replacement within a batch (b = 8 of 12: the finite-population factor is
# 0.36 of 1/b, so the i.i.d. theory is far off), shuffled epochs (3 batches an epoch), and the whole
# data set as the batch (every run is gradient descent: each row exactly once per step).
DATA_ROWS = dict(n=12, scales=[1.0, 0.7, 0.4], w=[0.5, -1.0, 0.3], noise=0.3, w0=[1.0, 1.0, -1.0],
                 seed=7)
DATA_CASES = {
    "data_iid": dict(sampling="iid", batch=2, steps=16, runs=128, seed=31, every=4),
    "data_without_replacement": dict(sampling="without-replacement", batch=8, steps=16, runs=128,
                                     seed=32, every=4),
    "data_epochs": dict(sampling="epochs", batch=4, steps=16, runs=128, seed=33, every=4),
    "data_full_batch_without_replacement": dict(sampling="without-replacement", batch=12, steps=16,
                                                runs=8, seed=34, every=4),
    "data_full_batch_epochs": dict(sampling="epochs", batch=12, steps=16, runs=8, seed=35, every=4),
}


# A spectrum problem sampled from a synthetic data set per run (simulate.synthetic), 6 rows of 3
# features: orthogonal and i.i.d. Gaussian rows without replacement within a batch, and the whole
# (orthogonal) data set as the batch, where every run is the theory's gradient descent.
SYNTHETIC_PROBLEM = dict(eigenvalues=[1.0, 0.5, 0.2], initial=[1.0, 1.0, 1.0], label_noise=0.1)
SYNTHETIC_CASES = {
    "synthetic_orthogonal": dict(synthetic="orthogonal", sampling="without-replacement", batch=2,
                                 steps=16, runs=128, seed=41, every=4),
    "synthetic_gaussian": dict(synthetic="gaussian", sampling="without-replacement", batch=2,
                               steps=16, runs=128, seed=42, every=4),
    "synthetic_full_batch": dict(synthetic="orthogonal", sampling="epochs", batch=6, steps=16,
                                 runs=8, seed=43, every=4),
}


def synthetic_run(case):
    """``(Run, runs, seed, synthetic)`` of a SYNTHETIC_CASES entry."""
    from sgdyn.theory.record import Record
    from sgdyn.theory.run import Run
    from sgdyn.theory.sampling import Sampling
    kw = dict(SYNTHETIC_CASES[case])
    r = Run.build(Problem.from_arrays(**SYNTHETIC_PROBLEM), "heavy-ball", alpha=0.3, beta=0.4,
                  batch=kw["batch"], steps=kw["steps"], sampling=Sampling(kw["sampling"], 6),
                  record=Record.every(kw["every"]))
    return r, kw["runs"], kw["seed"], kw["synthetic"]


def data_rows():
    """``(X, y, w0)`` of DATA_ROWS."""
    d = DATA_ROWS
    rng = np.random.default_rng(d["seed"])
    X = rng.normal(size=(d["n"], len(d["scales"]))) * np.array(d["scales"])
    y = X @ np.array(d["w"]) + d["noise"] * rng.normal(size=d["n"])
    return X, y, np.array(d["w0"])


def data_run(case):
    """``(Run, runs, seed)`` of a DATA_CASES entry: a data problem of ``data_rows()``."""
    from sgdyn.theory.record import Record
    from sgdyn.theory.run import Run
    from sgdyn.theory.sampling import Sampling
    X, y, w0 = data_rows()
    p = Problem.from_rows(X, y, w0=w0)
    kw = dict(DATA_CASES[case])
    kind = kw.pop("sampling")
    smp = Sampling.iid() if kind == "iid" else Sampling(kind, p.data.n)
    r = Run.build(p, "heavy-ball", alpha=0.3, beta=0.4, batch=kw["batch"], steps=kw["steps"],
                  sampling=smp, record=Record.every(kw["every"]))
    return r, kw["runs"], kw["seed"]


def run_description(case, cases=RUN_CASES):
    """``(Run, runs, seed)`` of a RUN_CASES (or ``cases``) entry."""
    from sgdyn.theory.record import Record
    from sgdyn.theory.run import Run
    kw = dict(cases[case])
    problem = Problem.from_arrays(**kw.pop("problem"))
    runs, seed, every = kw.pop("runs"), kw.pop("seed"), kw.pop("every")
    return Run.build(problem, record=Record.every(every), **kw), runs, seed


def trajectories_json(tr):
    return {name: np.asarray(getattr(tr, name)).tolist() for name in
            ("steps", "mean", "stderr", "quantile_levels", "quantiles", "finite_runs",
             "diverged_runs", "runs", "seed", "backend")}


def run_case(case, seed=None):
    kw = dict(CASES[case])
    problem = Problem.from_arrays(**kw.pop("problem"))
    if seed is not None:
        kw["seed"] = seed
    return trajectories_json(simulate.run(problem, backend="cuda", **kw))


@cuda.jit
def _record_kernel(losses, live, blk_n, blk_mean, blk_root, log10_lo, bins_per_decade, hist,
                   minimum, maximum):
    """Feed given losses (n_rec, runs) through the backend's on-device reduction."""
    r = cuda.grid(1)
    for j in range(losses.shape[0]):
        ok = r < losses.shape[1] and live[j, r]
        ck.record(j, losses[j, r] if ok else 0.0, ok, blk_n, blk_mean, blk_root, log10_lo,
                  bins_per_decade, hist, minimum, maximum)


def record_data():
    """Losses (n_rec, runs) with a live mask, shaped like the kernel's worst cases."""
    rng = np.random.default_rng(5)
    runs = 300                                     # 3 blocks, the last one partly idle
    losses = np.vstack([
        rng.lognormal(0.0, 1.0, runs),             # spread over decades
        1e190 * (1.0 + 1e-3 * rng.standard_normal(runs)),   # near the guard: squares overflow
        3.0 + 1e-9 * rng.standard_normal(runs),    # tiny spread on a big mean: cancellation
        rng.exponential(1.0, runs),
        rng.exponential(1.0, runs),
    ])
    live = np.ones_like(losses, dtype=np.bool_)
    live[0, rng.random(runs) < 0.3] = False        # runs stopped by the guard
    live[3] = False                                # every run stopped
    live[4] = False
    live[4, 17] = True                             # a single live run: stderr unknown
    return losses, live


def check_record():
    losses, live = record_data()
    n_rec, runs = losses.shape
    sketch = LogHistogram.for_initial_loss(1.0)
    blocks = ck.blocks_for(runs)
    stats = DeviceStatistics.allocate(ck, n_rec, blocks, sketch)
    _record_kernel[blocks, ck.THREADS](ck.to_device(losses), ck.to_device(live), *stats.buffers)
    levels = np.array([0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    n, mean, stderr, quantiles = stats.summarize(levels)
    return dict(losses=losses.tolist(), live=live.tolist(), levels=levels.tolist(),
                finite=n.tolist(), mean=mean.tolist(), stderr=stderr.tolist(),
                quantiles=quantiles.tolist(), resolution=sketch.relative_resolution)


@cuda.jit
def _draw_kernel(states, draws, normals):
    r = cuda.grid(1)
    if r >= states.shape[0]:
        return
    s0 = states[r, 0]
    s1 = states[r, 1]
    for i in range(draws.shape[1]):
        draws[r, i], s0, s1 = ck.next_uint64(s0, s1)
    for i in range(normals.shape[1]):
        normals[r, i], s0, s1 = ck.normal(s0, s1)


def check_draws(runs=8, n=6, seed=2024):
    states = ck.generator_states(runs, seed)
    draws = ck.to_device(np.zeros((runs, n), dtype=np.uint64))
    normals = ck.to_device(np.zeros((runs, n)))
    _draw_kernel[1, ck.THREADS](ck.to_device(states), draws, normals)
    return dict(seed=seed, runs=runs, n=n,
                draws=[[int(x) for x in row] for row in draws.copy_to_host()],
                normals=normals.copy_to_host().tolist())


def described_runs(cases):
    out = {}
    for case in cases:
        r, runs, seed = run_description(case, cases)
        out[case] = trajectories_json(simulate.run(r, runs, seed, backend="cuda"))
    return out


def main():
    if sys.argv[1:] == ["methods"]:
        cases = method_cases()
        json.dump({"run_case_args": cases, "run_cases": described_runs(cases)}, sys.stdout)
        return
    out = {case: run_case(case) for case in CASES}
    out["cases"] = CASES
    out["run_case_args"] = RUN_CASES
    out["run_cases"] = described_runs(RUN_CASES)
    X, y, w0 = data_rows()
    out["data_rows"] = dict(X=X.tolist(), y=y.tolist(), w0=w0.tolist(), cases=DATA_CASES)
    for case in DATA_CASES:
        r, runs, seed = data_run(case)
        out[case] = trajectories_json(simulate.run(r, runs, seed, backend="cuda"))
    out["synthetic_cases"] = SYNTHETIC_CASES
    out["synthetic_problem"] = SYNTHETIC_PROBLEM
    for case in SYNTHETIC_CASES:
        r, runs, seed, synthetic = synthetic_run(case)
        out[case] = trajectories_json(simulate.run(r, runs, seed, backend="cuda",
                                                   synthetic=synthetic))
    out["small_again"] = run_case("small")
    out["small_other_seed"] = run_case("small", seed=15)
    out["record"] = check_record()
    out["draws"] = check_draws()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
