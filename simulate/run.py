"""``simulate.run``: Monte Carlo loss statistics of mini-batch (momentum) SGD on a linear problem.

The arguments follow ``theory.dynamics.loss_curve`` so that theory and simulation compare in one
line: ``loss_curve(p, a, b, B, T).loss`` against ``run(p, a, b, B, T, runs, seed).mean``.
"""
from __future__ import annotations

import numpy as np

from sgdyn.simulate.features import DataSet
from sgdyn.simulate.spec import DEFAULT_QUANTILES, FEATURES, SAMPLERS, SimulationSpec
from sgdyn.simulate.trajectories import Trajectories
from sgdyn.theory import checks
from sgdyn.theory.methods import get_method
from sgdyn.theory.problem import Problem

BACKENDS = ("cpu", "cuda")


def _quantile_levels(levels) -> tuple:
    try:
        arr = np.array(levels, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"quantile_levels must be numbers in [0, 1], got {levels!r}") from None
    if arr.ndim != 1 or not np.all((arr >= 0.0) & (arr <= 1.0)):
        raise ValueError(f"quantile_levels must be a 1-D sequence of numbers in [0, 1], got {levels!r}")
    return tuple(float(q) for q in arr)


def make_spec(problem: Problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball",
              features="gaussian", label_noise=None, every=1,
              quantile_levels=DEFAULT_QUANTILES, sampler="auto") -> SimulationSpec:
    """Validate the arguments of ``run`` (ValueError naming the bad one) and build the spec
    (``sampler="auto"`` resolved: ``"projected"`` for Gaussian features)."""
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    if problem.data_size is not None:
        raise ValueError(
            f"problem.data_size must be None: the simulator draws i.i.d. samples (with replacement), "
            f"got data_size={problem.data_size}; use problem.replace(data_size=None)")
    problem.require_unit_multiplicity("the Monte Carlo simulator")
    m = get_method(method)
    a, b = m.check_params(alpha, beta)
    batch = checks.integer("batch", batch, 1)
    steps = checks.integer("steps", steps, 0)
    runs = checks.integer("runs", runs, 1)
    seed = checks.integer("seed", seed, 0)
    if seed >= 2 ** 64:
        raise ValueError(f"seed must be an integer in [0, 2^64), got {seed}")
    every = checks.integer("every", every, 1)
    levels = _quantile_levels(quantile_levels)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if sampler == "projected" and features != "gaussian":
        raise ValueError("sampler 'projected' needs Gaussian features, got features="
                         f"{features if isinstance(features, str) else 'DataSet'!r}; "
                         "use sampler='per-sample'")
    if sampler == "auto":
        sampler = "projected" if features == "gaussian" else "per-sample"
    common = dict(alpha=a, beta=b, nesterov=m.name == "nesterov", batch=batch, steps=steps,
                  runs=runs, seed=seed, every=every, quantile_levels=levels, sampler=sampler)
    if isinstance(features, DataSet):
        if label_noise is not None:
            raise ValueError("label_noise must be None with a DataSet: the residuals of its "
                             f"least-squares fit are the label noise, got {label_noise!r}")
        ref = features.problem
        if not (ref.n_modes == problem.n_modes
                and np.allclose(ref.eigenvalues, problem.eigenvalues, rtol=1e-9, atol=0)
                and np.allclose(ref.initial, problem.initial, rtol=1e-9, atol=1e-300)):
            raise ValueError("problem must describe the DataSet passed as features "
                             "(use features.problem): its eigenvalues or initial errors differ")
        return SimulationSpec(eigenvalues=ref.eigenvalues, initial_error=features.initial_error,
                              features="data", label_noise=ref.label_noise,
                              rows=features.rows, residuals=features.residuals, **common)
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES} or a simulate.features.DataSet, "
                         f"got {features!r}")
    noise = problem.label_noise if label_noise is None else checks.nonnegative("label_noise", label_noise)
    return SimulationSpec(eigenvalues=problem.eigenvalues, initial_error=np.sqrt(problem.initial),
                          features=features, label_noise=noise, **common)


def run(problem: Problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball",
        features="gaussian", label_noise=None, backend="cpu", every=1,
        quantile_levels=DEFAULT_QUANTILES, progress=None, sampler="auto") -> Trajectories:
    """Simulate ``runs`` independent runs of ``steps`` steps of mini-batch SGD and return the
    statistics of the population loss ``L_t = 1/2 sum_k lambda_k e_{k,t}^2 + sigma^2/2``
    (docs/theory.md) at ``t = 0, every, 2 every, .., steps``.

    ``method``: ``"heavy-ball"`` (PyTorch ``SGD(lr=alpha, momentum=beta)``), ``"nesterov"`` or
    ``"sgd"`` (heavy ball with ``beta = 0``). Every run starts from ``e_0 = sqrt(problem.initial)``
    per mode with ``v_0 = 0``. ``features``: ``"gaussian"``, ``"rademacher"`` (see
    ``simulate.features``) or a ``DataSet`` (then ``problem`` must be ``features.problem``; CPU
    only). ``label_noise``: ``sigma^2`` of Gaussian label noise, default ``problem.label_noise``.
    ``backend``: ``"cpu"`` (numba, all cores) or ``"cuda"`` (numba-cuda, a GPU). ``seed``: the same
    seed gives the same numbers on a backend whatever its thread count. ``progress``: None (a
    ``tqdm.auto`` bar once the runs take over 2 s, unless bars are off: ``theory.progress``),
    True / False, or a callable receiving the number of runs finished after each chunk. ``sampler``: ``"per-sample"``
    draws every sample's features; ``"projected"`` (Gaussian features, either backend) draws the mini-batch
    gradient itself exactly in law from ``n + 2b`` normals per step instead of ``b n``
    (``simulate.features.projected_gradient``), so a step costs about as much at batch 64 as at
    batch 1; ``"auto"`` (default) takes ``"projected"`` where it applies. The two samplers give
    the same statistics but different numbers for a seed.
    """
    spec = make_spec(problem, alpha, beta, batch, steps, runs, seed, method, features,
                     label_noise, every, quantile_levels, sampler)
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise ValueError(f"progress must be None or a callable (or True / False), got {progress!r}")
    if backend == "cpu":
        from sgdyn.simulate.cpu import simulate_cpu
        from sgdyn.theory.progress import bar
        with bar(progress, spec.runs, "simulate", "run") as update:
            return simulate_cpu(spec, update)
    if backend == "cuda":
        if spec.features == "data":
            raise ValueError("backend 'cuda' does not support a DataSet; use backend='cpu'")
        try:
            from sgdyn.simulate.cuda import simulate_cuda
        except ImportError as exc:
            raise ValueError(f"backend 'cuda' needs numba-cuda and a GPU ({exc}); "
                             "use backend='cpu'") from None
        out = simulate_cuda(spec)
        if callable(progress):
            progress(spec.runs)
        return out
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
