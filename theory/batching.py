"""Adaptive batch-size tests on linear regression, predicted from second moments (docs/theory.md,
"Adaptive batch sizes").

Tests of Lau, Liu, Kolar (AdAdaGrad, arXiv 2402.11215); the simulator is ``simulate.adaptive``.
For the SE noise model (docs/theory.md) the single-sample gradient ``G = x (x.e - eps)`` at a
fixed error ``e`` has mean ``h = H e`` and covariance
``Cov(G) = tau1 (e^T H e) H - tau2 h h^T + sigma^2 H`` (exact for Gaussian features,
``tau1 = 1, tau2 = -1``), so the population versions of the tests (``b*`` with the exact gradient
``h`` and exact variances) are, *(derived)*:

* norm:           ``tr Cov / (eta^2 ||h||^2)``, ``tr Cov = tau1 (e^T H e) tr H - tau2 ||h||^2 + sigma^2 tr H``
* inner-product:  ``h^T Cov h / (theta^2 ||h||^4)``
* orthogonality:  ``(tr Cov - h^T Cov h / ||h||^2) / (nu^2 ||h||^2)``

(``population_tests``). Noiseless isotropic Gaussian (``H = I``): ``(1 + d)/eta^2``,
``2/theta^2``, ``(d - 1)/nu^2``, whatever ``e``.

Along a run the error is random. The norm test's sample numerator ``sum_j Var_i(G_ij)`` is
unbiased for ``tr Cov`` and its denominator ``||g||^2`` has mean ``||h||^2 + tr Cov / b``, and both
are linear in the second moments ``E[e_k^2]`` that the recursion of ``theory.dynamics`` propagates
exactly (Gaussian features). So the theory predicts exactly, for a batch schedule fixed in advance,

    E[numerator_t] = tau1 E[e^T H e] tr H - tau2 E||H e||^2 + sigma^2 tr H,
    E[||g_t||^2]  = E||H e||^2 + E[numerator_t] / b_t,

and "the expected norm-test batch" is taken as the *ratio of expectations*
``E[numerator_t] / (eta^2 E||g_t||^2)`` (``test_batch``), or with the exact gradient
``E[numerator_t] / (eta^2 E||H e_t||^2)`` (``population_batch``). The expectation of the ratio is
larger (Jensen, and the numerator and denominator fluctuate together) and is not a second-moment
quantity. ``norm_test_prediction(adaptive=True)`` also predicts the schedule itself by applying the
never-decreasing rule to ``population_batch`` (what the test estimates: Lau et al. size the batch so
that ``E||g - h||^2 <= eta^2 ||h||^2``): a mean-field schedule. Note ``test_batch_t < b_t`` whenever
``eta >= 1``, so a rule fed with it would never grow. A simulated schedule is a running maximum of
noisy requests and lies above the mean-field one (``tests/simulate/test_adaptive.py`` measures it).
The other tests are quartic in the error (``h^T Cov h``), beyond second moments; their mean-field
request (``test=``) is the population request at the root-mean-square error per mode,
``e_k = sqrt(E[e_k^2])``, which for the norm test is the ratio of expectations above.

Along any batch schedule fixed in advance (a realised adaptive schedule included) the loss is the
recursion of ``theory.dynamics`` with per-step batches (``loss_along_schedules``): exact for
Gaussian features. An adaptive schedule is chosen from the same noise that moves the error, so the
loss of the runs that took a schedule need not equal the theory along it (``simulate.adaptive_check``
measures the difference).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.dynamics import solve
from sgdyn.theory.methods import get_method
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.run import Run
from sgdyn.theory.sampling import Sampling
from sgdyn.theory.system import ModeSystem

OVERFLOW_GUARD = 1e200


@dataclass(frozen=True)
class PopulationTests(Result):
    """Population batch sizes requested by each test at a fixed error ``e`` (module docstring)."""

    trace_cov: float       # tr Cov(G)
    grad_sq: float         # ||H e||^2
    norm: float
    inner_product: float
    orthogonality: float

    @property
    def augmented(self) -> float:
        return max(self.inner_product, self.orthogonality)


def population_tests(eigenvalues, error, label_noise: float = 0.0, noise: NoiseModel = GAUSSIAN,
                     eta_test: float = 0.1, theta: float = 0.1, nu: float = 0.1) -> PopulationTests:
    """The tests' population values at error ``error`` (eigenbasis of ``H``), SE covariance."""
    lam = checks.real_array("eigenvalues", eigenvalues, positive_entries=True)
    e = np.array(error, dtype=np.float64)
    if e.shape != lam.shape or not np.all(np.isfinite(e)):
        raise ValueError(f"error must be a finite vector of length {lam.size}, got shape {e.shape}")
    s2 = checks.nonnegative("label_noise", label_noise)
    eta_test, theta, nu = (checks.positive(n, v) for n, v in
                           (("eta_test", eta_test), ("theta", theta), ("nu", nu)))
    h = lam * e
    hh = float(h @ h)
    if hh == 0.0:
        raise ValueError("error must not be zero: the tests divide by ||H e||^2")
    eHe, trH = float(e @ h), float(lam.sum())
    trace_cov = noise.tau1 * eHe * trH - noise.tau2 * hh + s2 * trH
    hCh = noise.tau1 * eHe * float(h @ (lam * h)) - noise.tau2 * hh ** 2 + s2 * float(h @ (lam * h))
    return PopulationTests(trace_cov, hh, trace_cov / (eta_test ** 2 * hh),
                           hCh / (theta ** 2 * hh ** 2), (trace_cov - hCh / hh) / (nu ** 2 * hh))


TESTS = ("norm", "inner-product", "orthogonality", "augmented")


@njit(cache=True)
def _mean_field_request(test, D, Q, S, tau1, tau2, trH, s2, eta2, theta2, nu2):
    """A test's population request (``population_tests``) at ``e_k^2 = E[e_k^2]``:
    ``D = sum lambda_k e_k^2``, ``Q = ||h||^2``, ``S = h^T H h``; ``eta2, theta2, nu2`` the
    tolerances squared."""
    trace_cov = tau1 * D * trH - tau2 * Q + s2 * trH
    if test == 0:
        return trace_cov / (eta2 * Q)
    hch = tau1 * D * S - tau2 * Q * Q + s2 * S
    inner = hch / (theta2 * Q * Q)
    orth = (trace_cov - hch / Q) / (nu2 * Q)
    if test == 1:
        return inner
    if test == 2:
        return orth
    return max(inner, orth)


@njit(cache=True)
def _batched_recursion(A0, A1, coupling1, source1, drive, lam, loss, X0, floor, tau1, tau2, trH,
                       s2, eta2, theta2, nu2, schedule, adaptive, b_max, guard, out_loss, out_D,
                       out_Q, out_b, test, out_request):
    """Second moments with a per-step batch ``b_t`` (i.i.d. draws, ``gamma_t = 1/b_t``):
    ``X_{t+1} = (A0 + gamma_t A1) X_t + gamma_t (coupling1 D_t + source1)`` with
    ``D = sum_k drive_k . X_k = E[e^T H e]`` and ``Q = sum_k lambda_k drive_k . X_k = E||H e||^2``
    (at the gradient point); ``out_request`` the mean-field request of ``test``
    (``_mean_field_request``); with ``adaptive`` the next batch is
    ``min(b_max, max(b_t, ceil(request_t)))``. Returns the number of steps written."""
    n, q = X0.shape
    steps = out_D.shape[0] - 1
    X = X0.copy()
    Y = np.empty(q)
    b = schedule[0]
    for t in range(steps + 1):
        D = 0.0
        Q = 0.0
        S = 0.0
        L = floor
        for k in range(n):
            dk = 0.0
            for i in range(q):
                dk += drive[k, i] * X[k, i]
                L += loss[k, i] * X[k, i]
            D += dk
            Q += lam[k] * dk
            S += lam[k] * lam[k] * dk
        out_loss[t] = L
        out_D[t] = D
        out_Q[t] = Q
        request = _mean_field_request(test, D, Q, S, tau1, tau2, trH, s2, eta2, theta2, nu2) \
            if Q > 0 else np.inf
        out_request[t] = request
        if not adaptive and t < steps:
            b = schedule[t]
        out_b[t] = b
        if not abs(L) < guard:
            return t + 1
        if t == steps:
            break
        if adaptive:
            nb = b_max if not request < b_max else int(np.ceil(request))
            b_next = max(b, nb)
        else:
            b_next = b
        gamma = 1.0 / b
        for k in range(n):
            for i in range(q):
                acc = gamma * (coupling1[k, i] * D + source1[k, i])
                for j in range(q):
                    acc += (A0[k, i, j] + gamma * A1[k, i, j]) * X[k, j]
                Y[i] = acc
            for i in range(q):
                X[k, i] = Y[i]
        b = b_next
    return steps + 1


@dataclass(frozen=True)
class NormTestPrediction(Result):
    """Second-moment prediction along a run (t = 0..T; arrays may stop early if it diverges).

    ``batch[t]`` is the batch used at step t (``batch[T]`` the next one), ``samples[t]`` the
    samples consumed before step t, ``loss[t]`` the expected loss, ``grad_sq[t] = E||H e_t||^2``,
    ``trace_cov[t] = E tr Cov(G | e_t)`` (= the mean sample numerator of the norm test),
    ``mean_grad_sq[t] = E||g_t||^2``; ``test_batch = trace_cov / (eta^2 mean_grad_sq)`` and
    ``population_batch = trace_cov / (eta^2 grad_sq)`` (ratios of expectations); ``request[t]``
    the mean-field request of ``test`` (module docstring; ``population_batch`` for the norm test).
    """

    batch: np.ndarray
    samples: np.ndarray
    loss: np.ndarray
    grad_sq: np.ndarray
    trace_cov: np.ndarray
    mean_grad_sq: np.ndarray
    test_batch: np.ndarray
    population_batch: np.ndarray
    eta_test: float
    diverges: bool
    test: str
    request: np.ndarray


def norm_test_prediction(problem: Problem, alpha: float, steps: int, *, beta: float = 0.0,
                         method: str = "heavy-ball", batch: int = 2, max_batch: int = 4096,
                         adaptive: bool = True, schedule=None, eta_test: float = 0.1,
                         noise: NoiseModel = GAUSSIAN, test: str = "norm", theta: float = 0.1,
                         nu: float = 0.1) -> NormTestPrediction:
    """Expected norm-test statistics along a run of SGD / heavy ball (PyTorch ``lr = alpha``).

    ``adaptive=False``: batch ``schedule`` (``steps`` sizes) or the constant ``batch``; the
    prediction is then exact for Gaussian features. ``adaptive=True``: the mean-field schedule
    ``b_{t+1} = min(max_batch, max(b_t, ceil(request_t)))`` from ``batch``, ``request`` the
    mean-field request of ``test`` (one of ``TESTS``, tolerances ``eta_test``, ``theta``, ``nu``;
    module docstring); given that schedule, the moments are again exact.
    Batches are i.i.d. draws (``problem.data_size`` must be None).
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    if problem.data_size is not None:
        raise ValueError("problem.data_size must be None: adaptive batches are i.i.d. draws")
    problem.require_unit_multiplicity("norm_test_prediction")
    if not get_method(method).has_momentum and beta != 0.0:
        raise ValueError(f"beta must be 0 for method {method!r}, got {beta}")
    steps = checks.integer("steps", steps, 1)
    eta_test, theta, nu = (checks.positive(n, v) for n, v in
                           (("eta_test", eta_test), ("theta", theta), ("nu", nu)))
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    max_batch = checks.integer("max_batch", max_batch, 1)
    if schedule is None:
        b0 = checks.integer("batch", batch, 1)
        if adaptive and b0 > max_batch:
            raise ValueError(f"batch must be <= max_batch ({max_batch}), got {b0}")
        sched = np.full(steps, b0, dtype=np.int64)
    else:
        if adaptive:
            raise ValueError("schedule must be None when adaptive=True (the test sets the batch)")
        sched = np.asarray(schedule)
        if sched.shape != (steps,) or not np.issubdtype(sched.dtype, np.integer) or sched.min() < 1:
            raise ValueError(f"schedule must hold {steps} integer batch sizes >= 1, got {sched!r}")
        sched = sched.astype(np.int64)
    # gamma = 1 gives the per-unit-gamma noise terms; A is affine in gamma (the tau2 self-term)
    system = ModeSystem.build(problem, alpha, beta, 1, method, noise)
    one = system.arrays()
    nf = system.derivation.numeric
    a, bt, lam, _, t1, t2, *extra = system.args
    A0 = np.ascontiguousarray(nf.A(a, bt, lam, 0.0, t1, t2, *extra), dtype=np.float64)
    n = steps + 1
    loss, D, Q, request = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    used = np.empty(n, dtype=np.int64)
    written = _batched_recursion(A0, np.ascontiguousarray(one.A - A0), one.coupling, one.source,
                                 one.drive, lam, one.loss, one.X0, one.floor, t1, t2,
                                 problem.trace, problem.label_noise, eta_test ** 2, theta ** 2,
                                 nu ** 2, sched, bool(adaptive), max_batch, OVERFLOW_GUARD, loss, D,
                                 Q, used, TESTS.index(test), request)
    loss, D, Q, used, request = (x[:written] for x in (loss, D, Q, used, request))
    trace_cov = t1 * D * problem.trace - t2 * Q + problem.label_noise * problem.trace
    mean_grad_sq = Q + trace_cov / used
    samples = np.concatenate([[0], np.cumsum(used[:-1])])
    with np.errstate(divide="ignore"):   # ||H e|| = 0 exactly asks for an infinite batch
        population = trace_cov / (eta_test ** 2 * Q)
    return NormTestPrediction(used, samples, loss, Q, trace_cov, mean_grad_sq,
                              trace_cov / (eta_test ** 2 * mean_grad_sq), population, eta_test,
                              written < n, test, request)


@dataclass(frozen=True)
class LossAlongSchedules(Result):
    """The theory's expected loss along given batch schedules, one curve per schedule.

    ``loss[r, t]``: the loss before step ``t`` (t = 0..T) along schedule ``r`` (``inf`` after a
    curve passed the overflow guard); ``distinct``: how many different schedules were solved;
    ``approximation``: what produced the curves and how far to trust them.
    """
    _dims = {"loss": ("run", "step")}

    loss: np.ndarray
    distinct: int
    approximation: str


def loss_along_schedules(problem: Problem, alpha: float, schedules, *, beta: float = 0.0,
                         method: str = "heavy-ball", features: str = "gaussian",
                         noise: NoiseModel | None = None) -> LossAlongSchedules:
    """``L_t`` along each row of ``schedules`` (``runs x steps`` integer batch sizes, i.i.d.
    batches of ``features``): ``sgdyn.theory.solve`` of ``Run.build(problem, method, alpha=alpha,
    beta=beta, batch=row, steps=T)``, the second-moment recursion with per-step batches, exact for
    Gaussian features along any schedule fixed before the run (SE closure ``noise`` otherwise,
    default the feature law's). Equal rows are solved once."""
    sched = np.asarray(schedules)
    if sched.ndim != 2 or sched.shape[1] < 1 or not np.issubdtype(sched.dtype, np.integer):
        raise ValueError(f"schedules must be a runs x steps array of integer batch sizes, got shape "
                         f"{sched.shape} of {sched.dtype}")
    rows, inverse = np.unique(sched, axis=0, return_inverse=True)
    steps = sched.shape[1]
    curves = np.full((rows.shape[0], steps + 1), np.inf)
    approximation = ""
    for i, row in enumerate(rows):
        run = Run.build(problem, method, alpha=alpha, beta=beta, batch=row, steps=steps,
                        noise=noise, sampling=Sampling.iid(features))
        curve = solve(run)
        curves[i, curve.steps] = curve.loss
        approximation = curve.approximation
    return LossAlongSchedules(curves[inverse.ravel()], rows.shape[0], approximation)
