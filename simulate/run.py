"""``simulate.run``: Monte Carlo loss statistics of mini-batch SGD (any linear method, any
schedule) on a linear problem.

Two forms, one meaning:

* ``run(run_description, runs, seed, ...)`` simulates a ``sgdyn.theory.Run``: the same object
  the theory routes read, so ``solve(r).loss`` compares with ``run(r, 2000, 1).mean`` in one line;
* ``run(problem, alpha, beta, batch, steps, runs, seed, method=..., ...)``, the arguments of
  ``sgdyn.theory.dynamics.loss_curve``, builds that description first.
"""
from __future__ import annotations

import numpy as np

from sgdyn.simulate.features import DataSet
from sgdyn.simulate.spec import DEFAULT_QUANTILES, FEATURES, SAMPLERS, SimulationSpec
from sgdyn.simulate.trajectories import Trajectories
from sgdyn.theory import checks
from sgdyn.theory.problem import Problem
from sgdyn.theory.record import Record
from sgdyn.theory.run import Run
from sgdyn.theory.sampling import Sampling

BACKENDS = ("cpu", "cuda")
_LARGE_SCHEDULE = 10 ** 8     # per-step method arrays beyond this many steps: refuse


def _quantile_levels(levels) -> tuple:
    try:
        arr = np.array(levels, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"quantile_levels must be numbers in [0, 1], got {levels!r}") from None
    if arr.ndim != 1 or not np.all((arr >= 0.0) & (arr <= 1.0)):
        raise ValueError(f"quantile_levels must be a 1-D sequence of numbers in [0, 1], got {levels!r}")
    return tuple(float(q) for q in arr)


def _seed(seed) -> int:
    seed = checks.integer("seed", seed, 0)
    if seed >= 2 ** 64:
        raise ValueError(f"seed must be an integer in [0, 2^64), got {seed}")
    return seed


def method_arrays(run: Run):
    """``(F, K, G, x0, batch, stride, preconditioner)`` of the run's method and schedule: the
    matrices per step (or once, ``stride`` 0, for a constant schedule)."""
    if run.is_constant:
        values = {k: np.array([v]) for k, v in run.constant().items()}
        stride = 0
    else:
        if run.steps > _LARGE_SCHEDULE:
            raise ValueError(f"steps: a scheduled Monte Carlo keeps the method's matrices per step; "
                             f"{run.steps} steps exceed {_LARGE_SCHEDULE}")
        values = run.hyperparameters(0, max(run.steps, 1))
        stride = 1
    F, K, G = run.method.numeric_matrices(values)
    first = {k: float(v[0]) for k, v in values.items()}
    x0 = run.method.initial_state(first)
    pre = run.method.preconditioner_values(run.problem.eigenvalues, first)
    batch = np.ascontiguousarray(values["batch"], dtype=np.int64)
    return F, K, G, x0, batch, stride, pre


def spec_for(run: Run, runs, seed, data: DataSet | None = None,
             quantile_levels=DEFAULT_QUANTILES, sampler="auto", synthetic=None) -> SimulationSpec:
    """Validate a Monte Carlo request for ``run`` (ValueError naming the bad argument) and build
    the spec (``sampler="auto"`` resolved: ``"projected"`` for Gaussian features with i.i.d.
    batches). ``data``: a ``DataSet`` whose rows are sampled (``run.problem`` must be
    ``data.problem`` up to its ``data_size``); finite samplings (without replacement, epochs) need
    rows: ``data``, a data problem's own, or ``synthetic`` (``"orthogonal"`` / ``"gaussian"``: every
    run draws its own ``run.sampling.data_size`` rows from a spectrum problem's population,
    ``simulate.synthetic``)."""
    if not isinstance(run, Run):
        raise ValueError(f"run must be a sgdyn.theory.Run, got {type(run).__name__}")
    problem = run.problem
    problem.require_unit_multiplicity("the Monte Carlo simulator")
    runs = checks.integer("runs", runs, 1)
    seed = _seed(seed)
    levels = _quantile_levels(quantile_levels)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    sampling = run.sampling
    if data is not None and not isinstance(data, DataSet):
        raise ValueError(f"data must be a sgdyn.simulate.DataSet, got {type(data).__name__}")
    rows = None
    if data is not None:
        ref = data.problem
        if not (ref.n_modes == problem.n_modes
                and np.allclose(ref.eigenvalues, problem.eigenvalues, rtol=1e-9, atol=0)
                and np.allclose(ref.initial, problem.initial, rtol=1e-9, atol=1e-300)):
            raise ValueError("problem must describe the DataSet passed as features "
                             "(use features.problem): its eigenvalues or initial errors differ")
        rows = (data.rows, data.residuals, data.initial_error, ref.label_noise, ref.eigenvalues)
    elif problem.data is not None:           # a data problem samples its own rows
        d = problem.data
        rows = (d.rows, d.residuals, d.initial_error, problem.label_noise, problem.eigenvalues)
    if synthetic is not None:
        _check_synthetic(run, synthetic, rows is not None)
    elif rows is None and sampling.kind != "iid":
        raise ValueError(f"sampling {sampling.kind!r}: the Monte Carlo draws batches from a finite "
                         "data set only with its rows (a data problem, or data=DataSet(X, y); "
                         "DataSet.gaussian(problem, n, seed) gives one synthetic data set, "
                         "synthetic='orthogonal' or 'gaussian' a fresh one per run)")
    check_budget(run, runs, data_rows=sampling.data_size if synthetic else 0)
    common = common_args(run, runs, seed, levels, sampler,
                         "data" if rows or synthetic else sampling.features)
    if rows is not None:
        return _spec_from_rows(run, *rows, common)
    if synthetic is not None:
        common.update(synthetic=synthetic, data_size=sampling.data_size)
    return SimulationSpec(eigenvalues=problem.eigenvalues, initial_error=np.sqrt(problem.initial),
                          features=sampling.features, label_noise=problem.label_noise, **common)


def check_budget(run: Run, runs: int, threads: int | None = None, data_rows: int = 0) -> None:
    """Refuse a Monte Carlo whose memory or work is absurd, before allocating it
    (``sgdyn.theory.budget``). Memory: the per-run losses at the recorded steps (about three
    copies while the statistics are taken), a state of ``d + 4`` numbers per mode per thread, the
    per-step method matrices of a schedule, and (``data_rows`` > 0: a synthetic data set per run)
    three ``data_rows x n`` arrays per thread. Work: per run and step, each mode is touched once
    per sample of the batch (a projected draw: a few times); a synthetic data set costs a QR,
    ``2 data_rows n^2`` per run."""
    from sgdyn.theory import budget
    import numba
    threads = numba.get_num_threads() if threads is None else threads
    n, d, steps = run.problem.n_modes, run.method.dim, run.steps
    n_rec = run.recorded_steps.size
    budget.memory("runs", 8.0 * (3 * runs * n_rec + threads * n * (d + 4) + 6 * n
                                 + 3 * threads * data_rows * (n + 1)
                                 + (0 if run.is_constant else steps * (d * d + 2 * d + 2))),
                  f"a Monte Carlo of {runs} runs x {n_rec} recorded steps on {n} modes")
    per_step = n * (run.schedule.bounds()["batch"][1] + d * d)
    budget.work("steps x runs", float(runs) * (steps * per_step + 2.0 * data_rows * n * n),
                f"{runs} runs x {steps} steps on {n} modes")


def _check_synthetic(run: Run, synthetic, has_rows: bool) -> None:
    """A synthetic data set per run: a spectrum problem sampled from finite data sets."""
    from sgdyn.simulate import synthetic as synthetic_rows
    if has_rows:
        raise ValueError("synthetic: the run already samples a data set's rows (a data problem or "
                         "data=...); synthetic data sets are for spectrum problems")
    if run.sampling.kind == "iid":
        raise ValueError("synthetic: i.i.d. batches draw from the population; a synthetic data "
                         "set per run goes with sampling 'without-replacement' or 'epochs' "
                         "(data_size N)")
    if run.sampling.features != "gaussian":
        raise ValueError(f"synthetic: the data sets are drawn from Gaussian features, got "
                         f"features={run.sampling.features!r}")
    synthetic_rows.check(synthetic, run.sampling.data_size, run.problem.n_modes,
                         run.problem.label_noise)
    if int(run.schedule.bounds()["batch"][1]) > run.sampling.data_size:
        raise ValueError(f"batch must be <= the {run.sampling.data_size} rows of a synthetic "
                         "data set")


def common_args(run: Run, runs: int, seed: int, levels: tuple, sampler: str, features: str) -> dict:
    """The spec fields shared by every feature law (``sampler`` resolved)."""
    if sampler == "projected" and (features != "gaussian" or run.sampling.kind != "iid"):
        raise ValueError("sampler 'projected' needs Gaussian features drawn i.i.d., got "
                         f"features={features!r}, sampling={run.sampling.kind!r}; use "
                         "sampler='per-sample'")
    if sampler == "auto":
        sampler = "projected" if features == "gaussian" and run.sampling.kind == "iid" else "per-sample"
    F, K, G, x0, batch, stride, pre = method_arrays(run)
    return dict(F=F, K=K, G=G, x0=x0, batch=batch, stride=stride, preconditioner=pre,
                steps=run.steps, runs=runs, seed=seed, recorded=run.recorded_steps,
                method=run.method.label, quantile_levels=levels, sampler=sampler,
                sampling=run.sampling.kind)


def _spec_from_rows(run: Run, rows, residuals, initial_error, label_noise, eigenvalues,
                    common: dict) -> SimulationSpec:
    """Rows in the eigenbasis (a DataSet's or a data problem's), sampled as the run says."""
    n = rows.shape[0]
    s = run.sampling
    if s.kind != "iid" and s.data_size != n:
        raise ValueError(f"sampling {s.kind!r} from {s.data_size} points, but the data has {n} rows")
    if s.kind != "iid" and int(common["batch"].max()) > n:
        raise ValueError(f"batch must be <= the data's {n} rows, got {int(common['batch'].max())}")
    return SimulationSpec(eigenvalues=eigenvalues, initial_error=initial_error, features="data",
                          label_noise=label_noise, rows=rows, residuals=residuals, **common)


def make_spec(problem: Problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball",
              features="gaussian", label_noise=None, every=1,
              quantile_levels=DEFAULT_QUANTILES, sampler="auto") -> SimulationSpec:
    """The spec of ``run(problem, alpha, beta, batch, steps, runs, seed, ...)``: the run
    description of these arguments (i.i.d. batches, recorded every ``every`` steps), then
    ``spec_for``."""
    run, data = legacy_run(problem, alpha, beta, batch, steps, method, features, label_noise, every)
    return spec_for(run, runs, seed, data, quantile_levels, sampler)


def legacy_run(problem, alpha, beta, batch, steps, method="heavy-ball", features="gaussian",
               label_noise=None, every=1) -> tuple[Run, DataSet | None]:
    """The ``Run`` (and DataSet) meant by the positional form of ``run``."""
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    if problem.data_size is not None:
        raise ValueError(
            f"problem.data_size must be None: this form draws i.i.d. samples (with replacement), "
            f"got data_size={problem.data_size}; describe finite sampling with a sgdyn.theory.Run "
            "(sampling=Sampling.without_replacement(n)) and pass data=DataSet(X, y)")
    data = None
    if isinstance(features, DataSet):
        if label_noise is not None:
            raise ValueError("label_noise must be None with a DataSet: the residuals of its "
                             f"least-squares fit are the label noise, got {label_noise!r}")
        data, features = features, "gaussian"
    elif features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES} or a simulate.features.DataSet, "
                         f"got {features!r}")
    elif label_noise is not None:
        problem = problem.replace(label_noise=checks.nonnegative("label_noise", label_noise))
    run = Run.build(problem, method, alpha=alpha, beta=beta, batch=batch, steps=steps,
                    sampling=Sampling.iid(features), record=Record.every(every))
    return run, data


def _simulate(spec: SimulationSpec, backend, progress) -> Trajectories:
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise ValueError(f"progress must be None or a callable (or True / False), got {progress!r}")
    if backend == "cpu":
        from sgdyn.simulate.cpu import simulate_cpu
        from sgdyn.theory.progress import bar
        with bar(progress, spec.runs, "simulate", "run") as update:
            return simulate_cpu(spec, update)
    if backend == "cuda":
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


def run(problem, *args, **kwargs) -> Trajectories:
    """Simulate independent runs of mini-batch SGD and return the statistics of the population
    loss ``L_t = 1/2 sum_k lambda_k e_{k,t}^2 + sigma^2/2`` (``docs/theory.md``) at the recorded
    steps.

    ``run(r, runs, seed, *, data=None, backend="cpu", quantile_levels=..., progress=None,
    sampler="auto", synthetic=None)`` for a ``sgdyn.theory.Run`` ``r`` (its method, schedule,
    sampling and record; ``synthetic="orthogonal"`` or ``"gaussian"``: a spectrum problem sampled
    without replacement or in epochs from a data set of ``data_size`` rows drawn afresh per run,
    ``simulate.synthetic``);
    or ``run(problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball",
    features="gaussian", label_noise=None, backend="cpu", every=1, quantile_levels=...,
    progress=None, sampler="auto")`` (i.i.d. batches; ``features`` a DataSet samples its rows).

    Every run starts from ``e_0 = sqrt(problem.initial)`` per mode at rest (the method's ``x0``).
    ``backend``: ``"cpu"`` (numba, all cores) or ``"cuda"`` (numba-cuda, a GPU). ``seed``: the same
    seed gives the same numbers on a backend whatever its thread count. ``progress``: None (a
    ``tqdm.auto`` bar once the runs take over 2 s, unless bars are off: ``theory.progress``),
    True / False, or a callable receiving the number of runs finished after each chunk. ``sampler``:
    ``"per-sample"`` draws every sample's features; ``"projected"`` (Gaussian features, i.i.d.)
    draws the mini-batch gradient itself exactly in law from ``n + 2b`` normals per step instead of
    ``b n`` (``simulate.features.projected_gradient``); ``"auto"`` (default) takes ``"projected"``
    where it applies. The two samplers give the same statistics but different numbers for a seed.
    """
    if isinstance(problem, Run):
        return _run_description(problem, *args, **kwargs)
    return _positional(problem, *args, **kwargs)


def _run_description(r: Run, runs, seed, *, data=None, backend="cpu",
                     quantile_levels=DEFAULT_QUANTILES, progress=None, sampler="auto",
                     synthetic=None):
    return _simulate(spec_for(r, runs, seed, data, quantile_levels, sampler, synthetic), backend,
                     progress)


def _positional(problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball",
                features="gaussian", label_noise=None, backend="cpu", every=1,
                quantile_levels=DEFAULT_QUANTILES, progress=None, sampler="auto"):
    spec = make_spec(problem, alpha, beta, batch, steps, runs, seed, method, features, label_noise,
                     every, quantile_levels, sampler)
    return _simulate(spec, backend, progress)
