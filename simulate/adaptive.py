"""Monte Carlo of linear regression with batch sizes that change during a run (docs/theory.md,
"Adaptive batch sizes").

Lau, Liu, Kolar, "AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods"
(arXiv 2402.11215). Each run, in the eigenbasis of ``H``: features ``x = sqrt(lambda) * z`` (z i.i.d.
standard Gaussian or Rademacher), targets with label noise ``eps ~ N(0, sigma^2)``, per-sample
gradients ``G_i = x_i (x_i . e - eps_i)`` at the error ``e = w - w*``, mini-batch mean ``g``. At
step ``t`` the batch ``B_t`` of ``b_t`` fresh samples gives ``g_t`` and, from the same samples and
their unbiased sample variances, the test's request ``b_new`` (needs ``b_t >= 2``):

* norm:           ``sum_j Var_i(G_ij) / (eta_test^2 ||g||^2)``
* inner-product:  ``Var_i(<G_i, g>) / (theta^2 ||g||^4)``
* orthogonality:  ``sum_j Var_i(G_i - (<G_i, g> / ||g||^2) g)_j / (nu^2 ||g||^2)``
* augmented:      max of inner-product and orthogonality,

and, when the batch adapts, ``b_{t+1} = min(b_max, max(b_t, ceil(b_new)))`` (never decreases).
Otherwise the batch follows a given schedule, one for all runs or one per run (a constant batch is
the degenerate case), and the request is only recorded. The request draws no random numbers, so
replaying an adaptive run's realised schedule (``AdaptiveRun.schedule``) with the same seed
reproduces that run exactly. Optimisers: SGD ``e <- e - alpha g``; heavy ball ``v <- beta v - alpha g,
e <- e + v``; AdaGrad per coordinate of the eigenbasis ``a <- a + g^2, e <- e - alpha g / sqrt(a)``;
AdaGrad-Norm ``v^2 <- v^2 + ||g||^2, e <- e - alpha g / v``; the accumulators start at
``adagrad_init`` (``a_0 = v_0^2``). Every run starts from ``e_0 = sqrt(initial)``.

Recorded per run: the population loss ``1/2 sum_k lambda_k e_k^2 + sigma^2/2`` before each step,
the batch used at each step, the test's request and the norm test's two sample statistics (numerator
``sum_j Var_i(G_ij)`` and ``||g||^2``), whatever test drives the batch. Run ``r`` draws from its
own generator seeded with ``seeds[r]`` (numba's generator is numpy's legacy Mersenne Twister, so a
run is reproducible with ``np.random.RandomState(seeds[r])``); two calls with the same seed and the
same schedule see the same samples (common random numbers).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, njit, prange

from sgdyn.theory import budget, checks
from sgdyn.theory.display import Result
from sgdyn.theory.problem import Problem

OPTIMIZERS = ("sgd", "heavy-ball", "adagrad", "adagrad-norm")
TESTS = ("norm", "inner-product", "orthogonality", "augmented")
FEATURES = ("gaussian", "rademacher")
OVERFLOW_GUARD = 1e200


@njit(cache=True)
def _draw_batch(sqrt_lam, e, sigma, gaussian, b, xs, res, g):
    """Fill xs[:b], res[:b] (residuals ``x.e - eps``) and g (mean gradient); return sum ||G_i||^2."""
    d = sqrt_lam.size
    g[:] = 0.0
    sum_sq = 0.0
    for i in range(b):
        dot = 0.0
        xx = 0.0
        for j in range(d):
            zj = np.random.standard_normal() if gaussian else (1.0 if np.random.random() < 0.5 else -1.0)
            xj = sqrt_lam[j] * zj
            xs[i, j] = xj
            dot += xj * e[j]
            xx += xj * xj
        r = dot - sigma * np.random.standard_normal()
        res[i] = r
        sum_sq += r * r * xx
        for j in range(d):
            g[j] += xs[i, j] * r
    for j in range(d):
        g[j] /= b
    return sum_sq


@njit(cache=True)
def _request(test, b, xs, res, g, gsq, sum_sq, eta_test, theta, nu):
    """The test's requested batch from the batch's sample statistics (see the module docstring)."""
    norm_num = (sum_sq - b * gsq) / (b - 1)
    if test == 0:
        return norm_num / (eta_test * eta_test * gsq)
    d = g.size
    s_ip = 0.0                       # sum_i <G_i, g>^2, with <G_i, g> = res_i <x_i, g>
    for i in range(b):
        xg = 0.0
        for j in range(d):
            xg += xs[i, j] * g[j]
        s_ip += (res[i] * xg) ** 2
    inner = (s_ip - b * gsq * gsq) / (b - 1) / (theta * theta * gsq * gsq)
    # the projections P G_i (P = I - g g^T / ||g||^2) have mean P g = 0
    orth = (sum_sq - s_ip / gsq) / (b - 1) / (nu * nu * gsq)
    if test == 1:
        return inner
    if test == 2:
        return orth
    return max(inner, orth)


@njit(cache=True, parallel=True)
def _simulate(lam, e0, sigma, gaussian, optimizer, alpha, beta, adagrad_init, test, adaptive,
              eta_test, theta, nu, schedule, b_max, seeds, loss, batch, request, norm_num, grad_sq):
    runs, steps = norm_num.shape
    d = lam.size
    sqrt_lam = np.sqrt(lam)
    for r in prange(runs):
        np.random.seed(seeds[r])
        xs = np.empty((b_max, d))
        res = np.empty(b_max)
        g = np.empty(d)
        e = e0.copy()
        v = np.zeros(d)
        acc = np.full(d, adagrad_init)
        acc_norm = adagrad_init
        b = schedule[r, 0]
        stopped = False
        for t in range(steps + 1):
            L = 0.5 * sigma * sigma
            for j in range(d):
                L += 0.5 * lam[j] * e[j] * e[j]
            if stopped or not L < OVERFLOW_GUARD:
                stopped = True     # a diverged run: its remaining record is inf
                loss[r, t] = np.inf
                batch[r, t] = b
                if t < steps:
                    request[r, t] = np.inf
                    norm_num[r, t] = np.inf
                    grad_sq[r, t] = np.inf
                continue
            loss[r, t] = L
            if not adaptive and t < steps:
                b = schedule[r, t]
            batch[r, t] = b
            if t == steps:
                break
            sum_sq = _draw_batch(sqrt_lam, e, sigma, gaussian, b, xs, res, g)
            gsq = 0.0
            for j in range(d):
                gsq += g[j] * g[j]
            grad_sq[r, t] = gsq
            norm_num[r, t] = (sum_sq - b * gsq) / (b - 1)
            req = _request(test, b, xs, res, g, gsq, sum_sq, eta_test, theta, nu) if gsq > 0 else np.inf
            request[r, t] = req
            if adaptive:
                b = max(b, int(np.ceil(req)) if req < b_max else b_max)
            if optimizer == 0:
                for j in range(d):
                    e[j] -= alpha * g[j]
            elif optimizer == 1:
                for j in range(d):
                    v[j] = beta * v[j] - alpha * g[j]
                    e[j] += v[j]
            elif optimizer == 2:
                for j in range(d):
                    acc[j] += g[j] * g[j]
                    e[j] -= alpha * g[j] / np.sqrt(acc[j])
            else:
                acc_norm += gsq
                scale = alpha / np.sqrt(acc_norm)
                for j in range(d):
                    e[j] -= scale * g[j]


@dataclass(frozen=True)
class AdaptiveRun(Result):
    """Per-run records of a simulation (``runs`` rows).

    ``loss[r, t]`` population loss before step t (t = 0..T, ``inf`` after a run diverged);
    ``batch[r, t]`` the batch used at step t (``batch[r, T]``: the next one);
    ``request[r, t]``, ``norm_numerator[r, t]``, ``grad_sq[r, t]`` (t < T): the test's request and
    the norm test's statistics ``sum_j Var_i(G_ij)``, ``||g||^2`` on step t's batch; then the
    settings the runs used (``replay`` runs them again along a schedule).
    """
    _dims = {"loss": ("run", "step"), "batch": ("run", "step"), "request": ("run", "update"),
             "norm_numerator": ("run", "update"), "grad_sq": ("run", "update")}

    loss: np.ndarray
    batch: np.ndarray
    request: np.ndarray
    norm_numerator: np.ndarray
    grad_sq: np.ndarray
    optimizer: str
    test: str
    adaptive: bool
    seed: int
    alpha: float
    beta: float
    max_batch: int
    eta_test: float
    theta: float
    nu: float
    features: str
    adagrad_init: float

    @property
    def runs(self) -> int:
        return self.loss.shape[0]

    @property
    def steps(self) -> int:
        return self.loss.shape[1] - 1

    @property
    def schedule(self) -> np.ndarray:
        """The realised batch schedule, ``runs x steps`` integers: ``schedule[r, t]`` the batch run
        ``r`` used at step ``t`` (after a run diverged, the batch it held)."""
        return self.batch[:, :-1]

    @property
    def samples(self) -> np.ndarray:
        """``samples[r, t]``: samples consumed before step t (t = 0..T)."""
        out = np.zeros(self.batch.shape, dtype=np.int64)
        np.cumsum(self.batch[:, :-1], axis=1, out=out[:, 1:])
        return out

    @property
    def diverged_runs(self) -> int:
        return int(np.sum(~np.isfinite(self.loss[:, -1])))

    def mean_stderr(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean over runs and its standard error (``std / sqrt(n)``) of a recorded field, over the
        runs still finite at each step."""
        return mean_stderr(getattr(self, name), name)

    def replay(self, problem: Problem, seed: int, schedule=None, progress=None) -> "AdaptiveRun":
        """Fresh runs (seed ``seed``) with this run's settings along ``schedule`` fixed in advance
        (default: each run's own realised schedule, ``self.schedule``); the test's request is
        recorded, not followed. With ``seed = self.seed`` and the default schedule the runs are
        reproduced exactly."""
        return simulate_adaptive(problem, self.alpha, self.steps, self.runs, seed,
                                 optimizer=self.optimizer, beta=self.beta, test=self.test,
                                 adaptive=False,
                                 schedule=self.schedule if schedule is None else schedule,
                                 eta_test=self.eta_test, theta=self.theta, nu=self.nu,
                                 features=self.features, adagrad_init=self.adagrad_init,
                                 progress=progress)


def mean_stderr(x, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean over runs (axis 0) and its standard error (``std / sqrt(n)``) over the entries still
    finite at each step."""
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    if np.any(n < 2):
        raise ValueError(f"{name}: fewer than 2 finite runs at some step; cannot form a mean")
    xz = np.where(finite, x, 0.0)
    mean = xz.sum(axis=0) / n
    var = np.where(finite, (x - mean) ** 2, 0.0).sum(axis=0) / (n - 1)
    return mean, np.sqrt(var / n)


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mean(num) / mean(den)`` over runs (axis 0) and its delta-method standard error."""
    n = num.shape[0]
    mn, md = num.mean(axis=0), den.mean(axis=0)
    ratio = mn / md
    resid = (num - mn) - ratio * (den - md)
    return ratio, np.sqrt(np.sum(resid ** 2, axis=0) / (n - 1) / n) / np.abs(md)


def _index(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return allowed.index(value)


def simulate_adaptive(problem: Problem, alpha: float, steps: int, runs: int, seed: int, *,
                      optimizer: str = "sgd", beta: float = 0.0, test: str = "norm",
                      adaptive: bool = True, batch: int = 2, max_batch: int = 4096,
                      schedule=None, eta_test: float = 0.1, theta: float = 0.1, nu: float = 0.1,
                      features: str = "gaussian", adagrad_init: float = 1e-8,
                      progress=None) -> AdaptiveRun:
    """Simulate ``runs`` independent runs of ``steps`` steps (module docstring for the dynamics).

    ``adaptive=True``: start at ``batch`` and let ``test`` grow it up to ``max_batch``.
    ``adaptive=False``: use ``schedule`` (``steps`` batch sizes, or ``runs x steps``: one schedule
    per run, e.g. an adaptive run's ``AdaptiveRun.schedule``) or the constant ``batch``; the test's
    request is recorded but not followed. Batches need ``>= 2`` samples (sample variances).
    ``progress``: a bar over the runs (``theory.progress``).
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    if problem.data_size is not None:
        raise ValueError("problem.data_size must be None: the simulator draws i.i.d. samples")
    problem.require_unit_multiplicity("simulate_adaptive")
    alpha = checks.positive("alpha", alpha)
    beta = checks.momentum("beta", beta)
    steps = checks.integer("steps", steps, 1)
    runs = checks.integer("runs", runs, 2)
    budget.memory("steps", 7 * 8.0 * runs * (steps + 1), f"the traces of {runs} runs x {steps} steps")
    seed = checks.integer("seed", seed, 0)
    opt = _index("optimizer", optimizer, OPTIMIZERS)
    if optimizer != "heavy-ball" and beta != 0.0:
        raise ValueError(f"beta must be 0 for optimizer {optimizer!r}, got {beta}")
    tst = _index("test", test, TESTS)
    feat = _index("features", features, FEATURES)
    eta_test = checks.positive("eta_test", eta_test)
    theta = checks.positive("theta", theta)
    nu = checks.positive("nu", nu)
    adagrad_init = checks.positive("adagrad_init", adagrad_init)
    max_batch = checks.integer("max_batch", max_batch, 2)
    if schedule is None:
        b0 = checks.integer("batch", batch, 2)
        if not adaptive:
            max_batch = b0
        elif b0 > max_batch:
            raise ValueError(f"batch must be <= max_batch ({max_batch}), got {b0}")
        sched = np.full((runs, steps), b0, dtype=np.int64)
    else:
        if adaptive:
            raise ValueError("schedule must be None when adaptive=True (the test sets the batch)")
        sched = np.asarray(schedule)
        if sched.shape not in ((steps,), (runs, steps)) or \
                not np.issubdtype(sched.dtype, np.integer) or sched.min() < 2:
            raise ValueError(f"schedule must hold {steps} integer batch sizes >= 2 (or {runs} rows "
                             f"of them, one per run), got shape {sched.shape} of {sched.dtype}")
        sched = np.ascontiguousarray(np.broadcast_to(sched, (runs, steps)), dtype=np.int64)
        max_batch = int(sched.max())
    d = problem.n_modes
    budget.memory("max_batch", 8.0 * get_num_threads() * (max_batch + 1) * (d + 1),
                  f"a batch of up to {max_batch} samples of {d} features per thread")
    budget.work("steps", 4.0 * runs * steps * sched.min() * d,
                f"{runs} runs x {steps} steps at batch >= {int(sched.min())} ({d} modes)")
    seeds = np.random.SeedSequence(seed).generate_state(runs, dtype=np.uint32).astype(np.int64)
    loss = np.empty((runs, steps + 1))
    batches = np.empty((runs, steps + 1), dtype=np.int64)
    request, norm_num, grad_sq = (np.empty((runs, steps)) for _ in range(3))
    from sgdyn.theory.progress import bar, chunks
    # runs in chunks (each run has its own seed, so the numbers do not depend on the chunks)
    with bar(progress, runs, "adaptive batch" if adaptive else "constant batch", "run") as update:
        for a, b in chunks(runs, 20, 32):
            _simulate(problem.eigenvalues, np.sqrt(problem.initial), np.sqrt(problem.label_noise),
                      feat == 0, opt, alpha, beta, adagrad_init, tst, bool(adaptive), eta_test,
                      theta, nu, sched[a:b], max_batch, seeds[a:b], loss[a:b], batches[a:b],
                      request[a:b], norm_num[a:b], grad_sq[a:b])
            update(b - a)
    return AdaptiveRun(loss, batches, request, norm_num, grad_sq, optimizer, test, bool(adaptive),
                       seed, alpha, beta, max_batch, eta_test, theta, nu, features, adagrad_init)
