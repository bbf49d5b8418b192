"""The exact finite-data route: expected loss of mini-batch SGD / momentum on a data set's own
rows, from the exact first and second moments of the full state (no SE closure, no diagonal
closure), and its exact divergence threshold.

**Setting** (the conventions of docs/theory.md, on the empirical law of the rows;
``theory.data_problem``). In the eigenbasis of ``H = X^T X / n = diag(lambda)`` the rows are
``z_i`` (i = 1..n, ``N`` modes), the least-squares residuals ``r_i`` (``sum_i z_i r_i = 0``),
``sigma^2 = mean_i r_i^2``. A method is its per-mode matrices (``theory.methods``): state
``Z_t`` (q x N; row ``a`` is state component ``a`` of every mode), ``Z_{t+1} = F Z_t + K g_t^T``,
the gradient taken at ``p_t = G Z_t``, ``g_t = (1/b) sum_{i in B_t} z_i (z_i . p_t - r_i)``; the
error is ``e_t = o Z_t`` (``o`` the output row, default the first component) and
``Z_0 = x0 e_0^T``. ``F, K, G, x0`` are the method's sympy
matrices with alpha, beta (and any other parameter) substituted step by step, so every method
the engine can describe runs here, with per-step ``alpha_t, beta_t, b_t`` (schedules). An optional
scalar preconditioner ``P = diag(p_k)`` multiplies the gradient: ``K g -> K (P g)``.

**Batches.** ``B_t`` is drawn afresh each step, independently of the past: ``b`` rows i.i.d.
uniformly with replacement, or a uniform ``b``-subset (without replacement within a batch). Given
``p``, ``E g = H p`` (``sum z_i r_i = 0``) and ``Cov g = gamma Sigma_1(p)`` with the per-sample
covariance ``Sigma_1(p) = (1/n) sum_i z_i z_i^T (z_i . p - r_i)^2 - H p p^T H`` and
``gamma = 1/b`` (i.i.d.) or ``gamma = (n - b) / ((n - 1) b)`` (the finite-population correction
of sampling without replacement; Cochran, *Sampling Techniques*, 1977, thm 2.2).

**Exact moments.** With ``T_k = F + lambda_k p_k K G`` the noiseless per-mode map, the mean
``m_t = E Z_t`` and the second moments ``M_t[a, b](k, l) = E[Z_t[a, k] Z_t[b, l]]`` obey
(*derived*: condition on ``Z_t``, the batch is independent of it)

    m_{t+1}(k)      = T_k m_t(k)
    M_{t+1}(k, l)   = T_k M_t(k, l) T_l^T + K K^T p_k p_l S_t(k, l)
    S_t             = gamma_t [ (1/n) sum_i D_i z_i z_i^T - H C_t H ]
    D_i             = z_i^T C_t z_i - 2 r_i z_i^T mu_t + r_i^2        (= E (z_i . p_t - r_i)^2)

with ``C_t = G M_t G^T`` (N x N) and ``mu_t = G m_t`` the second moment and mean of the gradient
point. The label-noise terms are exact: ``-2 r_i z_i^T mu_t`` is the cross term with the mean, so
the signed ``e_0`` matters. The loss is ``L_t = 1/2 sum_k lambda_k (o M_t(k, k) o^T) + sigma^2/2``.
A step costs two ``n x N x N`` matrix products (``Z C`` and ``Z^T diag(D) Z``, BLAS) and an
``O(q^3 N^2)`` elementwise congruence (numba): ``O(n N^2)``, practical for N up to a few hundred.

**Exact threshold.** The second-moment map is ``A = T + B`` with ``T(M) = (T_k M(k,l) T_l^T)`` and
``B(M) = gamma K K^T (x) Sigma_1^0(G M G^T)``, ``Sigma_1^0(C) = (1/n) sum_i (z_i^T C z_i) z_i z_i^T
- H C H`` (the homogeneous part; the mean and the ``r^2`` source do not move the threshold: the
mean obeys ``T`` alone and ``r_i^2`` is a constant source). Both ``T`` and ``B`` map positive
semi-definite matrices to positive semi-definite ones, so (Krein-Rutman; the splitting lemma of
positive systems, e.g. Berman and Plemmons, *Nonnegative Matrices*, 1994, ch. 6) the loss
converges iff every noiseless mode is stable (``rho(T_k) < 1``) and the **exact noise radius**

    R = gamma * rho(U),   U(S) = Sigma_1^0(Gamma o S),   Gamma_kl = G Phi_kl G^T p_k p_l,
    Phi_kl - T_k Phi_kl T_l^T = K K^T   (Phi_kl = sum_t T_k^t K K^T (T_l^T)^t)

is below 1: the full-state analogue of SE's ``U(1)`` (docs/theory.md, "Convergence and
divergence"), ``Gamma_kl`` the stationary gain of the gradient point between modes k and l for
a unit gradient kick. ``U`` acts on symmetric N x N matrices; a matrix-vector product is two
BLAS products, and ``rho`` comes from ARPACK (``scipy.sparse.linalg.eigs``) or, for small N, a
dense eigensolve of its matrix ``(Z2^T Z2 / n) diag(c) - diag(lambda_k lambda_l Gamma_kl)`` on ``vech`` coordinates
(``Z2_i,(kl) = z_ik z_il``). ``R`` is proportional to ``gamma``, so the critical batch follows
from one radius, and the critical learning rate is the root of ``R(alpha) = 1`` below the
noiseless mode edge.

**The Q4 closure** (the middle route between SE and the exact dynamics): keeping only the diagonal of ``C`` and of the
injected noise gives ``R_Q = gamma * rho((Q - diag(lambda^2)) diag(Gamma_kk))`` with the data's
fourth moments ``Q_kl = mean_i z_ik^2 z_il^2``; with ``Q`` replaced by SE's
``tau1 lambda lambda^T + (1 - tau2) diag(lambda^2)`` this is exactly SE's ``U(1)`` (tested).
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import numpy as np
import sympy as sp
from numba import njit, prange
from scipy import optimize
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigs
from threadpoolctl import threadpool_limits

from sgdyn.theory import checks
from sgdyn.theory.methods import get_method
from sgdyn.theory.problem import Problem

SAMPLINGS = ("iid", "without-replacement")
OVERFLOW_GUARD = 1e200
DENSE_LIMIT = 600          # vech dimension up to which the radius comes from a dense eigensolve
ROUTE = "exact-data"
# below this n N^2 a BLAS product takes a few ms on one thread, and extra BLAS threads only cost
# (they spin-wait; on a busy machine a 20 x 50000 product took 1.8 s on 2 threads, 13 ms on one)
SERIAL_BLAS_WORK = 2e7


def _blas_scoped(fn):
    """Run ``fn(problem, ...)`` with one BLAS thread when its products are small (see
    ``SERIAL_BLAS_WORK``); numba's own threads start only from ``PARALLEL_MODES`` modes."""
    @functools.wraps(fn)
    def wrapper(problem, *args, **kw):
        data = getattr(problem, "data", None)
        small = data is not None and data.n * data.modes ** 2 < SERIAL_BLAS_WORK
        with threadpool_limits(1, user_api="blas") if small else contextlib.nullcontext():
            return fn(problem, *args, **kw)
    return wrapper


# -- the data and the sampling ------------------------------------------------------------------
def require_data(problem) -> "Problem":
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    if problem.data is None:
        raise ValueError("problem has no data rows: the exact finite-data route needs a data "
                         "problem (Problem.from_rows, or `sgdyn problem from-data`)")
    return problem


def resolve_sampling(problem: Problem, sampling=None) -> str:
    """``"iid"`` or ``"without-replacement"``; ``None`` reads ``problem.data_size`` (None: i.i.d.,
    the number of rows: without replacement; any other value is refused)."""
    n = require_data(problem).data.n
    if sampling is None:
        if problem.data_size is None:
            return "iid"
        if problem.data_size == n:
            return "without-replacement"
        raise ValueError(f"data_size must be None (i.i.d. batches) or the number of rows {n} "
                         f"(batches without replacement) for the exact finite-data route, "
                         f"got {problem.data_size}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    return sampling


def batch_factors(batch, n: int, sampling: str, steps: int | None = None) -> np.ndarray:
    """``gamma_t``: ``1/b_t`` (i.i.d.) or ``(n - b_t) / ((n - 1) b_t)`` (without replacement),
    for a scalar batch or one per step."""
    b = _per_step("batch", batch, steps)
    bad = (b != np.round(b)) | (b < 1)
    if np.any(bad):
        raise ValueError(f"batch must be an integer >= 1 (at every step), got {_first_bad(b, bad)}")
    if sampling == "without-replacement":
        if np.any(b > n):
            raise ValueError(f"batch must be <= the number of rows ({n}) when sampling without "
                             f"replacement, got {b.max():g}")
        return (n - b) / ((n - 1) * b)
    return 1.0 / b


def _first_bad(arr, mask):
    return arr[np.nonzero(mask)[0][0]]


def _per_step(name: str, value, steps: int | None) -> np.ndarray:
    """A finite float array of length ``steps`` (a scalar is broadcast); ``steps=None``: scalar."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a real number or an array of them, got {value!r}")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number or an array of them, got {value!r}") from None
    if arr.ndim == 0:
        arr = np.full(1 if steps is None else max(steps, 1), float(arr))
    elif steps is None or arr.ndim != 1 or arr.size != steps:
        want = "a scalar" if steps is None else f"a scalar or one value per step ({steps})"
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {_first_bad(arr, ~np.isfinite(arr))}")
    return arr


# -- the method as numeric matrices ---------------------------------------------------------------
@dataclass(frozen=True)
class StepMatrices:
    """A method's matrices with its parameters substituted at every step:
    ``F`` (T, q, q), ``K`` (T, q), ``G`` (T, q), ``x0`` (q,) at step 0, ``output`` (q,)."""

    F: np.ndarray
    K: np.ndarray
    G: np.ndarray
    x0: np.ndarray
    output: np.ndarray

    @property
    def q(self) -> int:
        return self.x0.size

    def transitions(self, t: int, lam: np.ndarray, precond: np.ndarray) -> np.ndarray:
        """``T_k = F_t + lambda_k p_k K_t G_t`` for every mode: (N, q, q)."""
        return self.F[t][None] + (lam * precond)[:, None, None] * np.outer(self.K[t], self.G[t])[None]


def step_matrices(method="heavy-ball", alpha=0.1, beta=0.0, steps: int = 1, params=None,
                  output=None) -> StepMatrices:
    """Numeric ``F, K, G`` at every step ``t < steps`` (and ``x0`` at step 0) of ``method`` (a
    name, update equations or any ``sgdyn.theory.methods.Method``; ``Method.numeric_matrices``),
    at ``alpha_t``, ``beta_t`` and ``params`` (``{name or symbol: scalar or per-step array}``; the
    method's unbound parameters take their values or defaults).

    Checks: ``alpha_t > 0``; ``|beta_t| < 1``, or 0 for a method without momentum.
    ``output``: the row ``o`` with ``e = o x`` (default ``(1, 0, ..)``: the first component, the
    reported iterate of every ``Method``)."""
    m = get_method(method)
    steps = checks.integer("steps", steps, 0)
    T = max(steps, 1)
    a = _per_step("alpha", alpha, steps if steps > 0 else None)
    b = _per_step("beta", beta, steps if steps > 0 else None)
    a, b = np.broadcast_to(a, (T,)), np.broadcast_to(b, (T,))
    if np.any(a <= 0):
        raise ValueError(f"alpha must be > 0 (at every step), got {_first_bad(a, a <= 0)}")
    if m.has_momentum and np.any(np.abs(b) >= 1):
        raise ValueError(f"beta must lie in (-1, 1) (at every step), got {_first_bad(b, np.abs(b) >= 1)}")
    if not m.has_momentum and np.any(b != 0):
        raise ValueError(f"beta must be 0 for method {m.name!r}, got {_first_bad(b, b != 0)}")
    values = {"alpha": a, "beta": b}
    names = {p.name for p in m.extra}
    for key, val in (params or {}).items():
        name = key.name if isinstance(key, sp.Symbol) else str(key)
        if name not in names:
            raise ValueError(f"params: method {m.name!r} has no parameter {name!r} (its "
                             f"parameters: {sorted(names) or 'none'})")
        values[name] = np.broadcast_to(_per_step(f"params[{name!r}]", val,
                                                 steps if steps > 0 else None), (T,))
    F, K, G = (np.broadcast_to(x, (T,) + x.shape[1:]) for x in m.numeric_matrices(values))
    x0 = m.initial_state({k: v[0] for k, v in values.items()})
    q = m.dim
    if output is None:
        o = np.zeros(q)
        o[0] = 1.0
    else:
        o = np.array(output, dtype=np.float64).ravel()
        if o.shape != (q,) or not np.all(np.isfinite(o)):
            raise ValueError(f"output must be a finite row of length {q}, got {output!r}")
    if not (np.all(np.isfinite(F)) and np.all(np.isfinite(K)) and np.all(np.isfinite(G))
            and np.all(np.isfinite(x0))):
        raise ValueError(f"method {m.name!r}: its matrices are not finite at these parameters")
    n = steps
    return StepMatrices(F[:n] if n else F, K[:n] if n else K, G[:n] if n else G, x0, o)


def _preconditioner(p, problem: Problem, method, params=None) -> np.ndarray:
    """``p(lambda_k)`` per mode: given, else the method's own preconditioner (ones without one)."""
    N = problem.n_modes
    if p is None:
        values = {} if params is None else {(k.name if isinstance(k, sp.Symbol) else str(k)):
                                            float(np.ravel(v)[0]) for k, v in params.items()}
        return get_method(method).preconditioner_values(problem.eigenvalues, values)
    arr = np.array(p, dtype=np.float64)
    if arr.shape != (N,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"preconditioner must hold one positive value p(lambda_k) per mode ({N}), "
                         f"got shape {arr.shape}")
    return arr


# -- one step: numba congruence + BLAS noise ----------------------------------------------------
def _congruence_body(M, Tm, KK, S, G, out, Cp):
    """``out(k,l) = T_k M(k,l) T_l^T + KK S(k,l)`` and ``Cp(k,l) = G out(k,l) G^T`` for all mode
    pairs; ``M, out``: (N, N, q, q), ``Tm``: (N, q, q), ``S, Cp``: (N, N)."""
    N = M.shape[0]
    q = M.shape[2]
    for k in prange(N):
        W = np.empty((q, q))
        for l in range(N):
            for a in range(q):
                for e in range(q):
                    acc = 0.0
                    for c in range(q):
                        acc += Tm[k, a, c] * M[k, l, c, e]
                    W[a, e] = acc
            s = S[k, l]
            cp = 0.0
            for a in range(q):
                for b in range(q):
                    acc = KK[a, b] * s
                    for e in range(q):
                        acc += W[a, e] * Tm[l, b, e]
                    out[k, l, a, b] = acc
                    cp += G[a] * G[b] * acc
            Cp[k, l] = cp


# the same kernel compiled twice: threads pay off only once a step has enough mode pairs
_congruence_parallel = njit(parallel=True, cache=True)(_congruence_body)
_congruence_serial = njit(cache=True)(_congruence_body)
PARALLEL_MODES = 128


def _congruence(M, Tm, KK, S, G, out, Cp):
    fn = _congruence_parallel if M.shape[0] >= PARALLEL_MODES else _congruence_serial
    fn(M, Tm, KK, S, G, out, Cp)


class _Noise:
    """``S = gamma [ (1/n) sum_i D_i z_i z_i^T - H C H ]`` with preallocated BLAS buffers."""

    def __init__(self, rows, residuals, lam, precond):
        self.Z = np.ascontiguousarray(rows)
        self.ZT = np.ascontiguousarray(rows.T)      # C-contiguous transpose: a plain GEMM
        self.r = residuals
        self.r2 = residuals ** 2
        self.lam = lam
        n, N = rows.shape
        self.n = n
        self.ZC = np.empty((n, N))
        self.ZD = np.empty((n, N))
        self.out = np.empty((N, N))
        self.pp = np.outer(precond, precond)
        self.hh = np.outer(lam, lam)

    def quadratic(self, C) -> np.ndarray:
        """``z_i^T C z_i`` for every row."""
        np.matmul(self.Z, C, out=self.ZC)
        return np.einsum("ij,ij->i", self.ZC, self.Z)

    def moment(self, D) -> np.ndarray:
        """``(1/n) sum_i D_i z_i z_i^T``."""
        np.multiply(self.Z, D[:, None], out=self.ZD)
        np.matmul(self.ZT, self.ZD, out=self.out)
        self.out /= self.n
        return self.out

    def injected(self, C, mu, gamma) -> np.ndarray:
        """``p_k p_l S(k, l)`` for the gradient point's second moment ``C`` and mean ``mu``."""
        D = self.quadratic(C) - 2.0 * self.r * (self.Z @ mu) + self.r2
        S = self.moment(D)
        S -= self.hh * C
        S *= gamma * self.pp
        return S

    def homogeneous(self, C) -> np.ndarray:
        """``Sigma_1^0(C) = (1/n) sum_i (z_i^T C z_i) z_i z_i^T - H C H`` (a new array)."""
        S = self.moment(self.quadratic(C)).copy()
        S -= self.hh * C
        return S


# -- the loss curve -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExactDataCurve:
    """Expected loss ``L_0 .. L_T`` of the exact finite-data route (module docstring)."""

    loss: np.ndarray            # L_0 .. L_T, or up to the step where a divergent run was stopped
    steps_requested: int
    diverges: bool              # at the last step's (alpha, beta, b): R >= 1 or a mode unstable
    noise_radius: float         # exact noise radius R there (inf if a noiseless mode is unstable)
    sampling: str               # "iid" or "without-replacement"
    reason: str
    stopped_early: bool         # True if the recursion stopped before float overflow
    route: str = ROUTE

    @property
    def final(self) -> float:
        return float(self.loss[-1])


@_blas_scoped
def exact_loss_curve(problem: Problem, alpha, beta, batch, steps: int, method="heavy-ball", *,
                     sampling=None, params=None, output=None, preconditioner=None,
                     check_divergence: bool = True) -> ExactDataCurve:
    """Expected loss over the data set, ``L_t = 1/2 mean_i E (<w_t, x_i> - y_i)^2``, t = 0..T, of
    ``method`` run on ``problem.data``'s rows with batches drawn afresh each step: exact first
    and second moments of the full state (module docstring; no SE, no diagonal closure).

    ``alpha``, ``beta``, ``batch`` and every entry of ``params``: scalars or one value per step
    (length ``steps``); ``sampling``: ``"iid"`` (with replacement), ``"without-replacement"``
    (within a batch) or None (from ``problem.data_size``); ``method``: a name or any
    ``theory.methods.Method``; ``output``: the state row that is the error (default the first
    component); ``preconditioner``: ``p(lambda_k)`` per mode (default 1). ``diverges`` and
    ``noise_radius`` are judged at the last step's hyperparameters (``check_divergence=False``
    skips that eigenvalue computation: ``diverges`` then only reports an overflow stop).
    A step costs ``O(n N^2)`` (two BLAS products); memory ``O(q^2 N^2 + n N)``.
    """
    require_data(problem)
    steps = checks.integer("steps", steps, 0)
    smp = resolve_sampling(problem, sampling)
    data = problem.data
    n, N = data.rows.shape
    mats = step_matrices(method, alpha, beta, steps, params, output)
    gam = np.broadcast_to(batch_factors(batch, n, smp, steps if steps > 0 else None),
                          (max(steps, 1),))
    lam = problem.eigenvalues
    pre = _preconditioner(preconditioner, problem, method, params)
    noise = _Noise(data.rows, data.residuals, lam, pre)
    e0 = data.initial_error
    m = e0[:, None] * mats.x0[None, :]                                # (N, q) mean state
    M = np.ascontiguousarray(np.einsum("k,l,a,b->klab", e0, e0, mats.x0, mats.x0))
    M_next = np.empty_like(M)
    g0 = float(mats.G[0] @ mats.x0)
    C = g0 * g0 * np.outer(e0, e0)
    o = mats.output
    floor = 0.5 * data.label_noise
    diag = np.arange(N)
    loss = np.empty(steps + 1)
    written = steps + 1
    for t in range(steps + 1):
        Mkk = M[diag, diag]                                           # (N, q, q)
        loss[t] = 0.5 * float(lam @ np.einsum("a,kab,b->k", o, Mkk, o)) + floor
        if not abs(loss[t]) < OVERFLOW_GUARD:
            written = t + 1
            break
        if t == steps:
            break
        mu = m @ mats.G[t]
        S = noise.injected(C, mu, gam[t])
        Tm = mats.transitions(t, lam, pre)
        Gn = mats.G[t + 1] if t + 1 < steps else mats.G[t]
        _congruence(M, Tm, np.outer(mats.K[t], mats.K[t]), S, Gn, M_next, C)
        M, M_next = M_next, M
        m = np.einsum("kac,kc->ka", Tm, m)
    loss = loss[:written]
    stopped = written < steps + 1
    last = max(steps - 1, 0)
    if check_divergence:
        R = _radius_at(problem, mats, last, gam[last], pre)
        mode_ok = np.isfinite(R)
        diverges = stopped or not (R < 1.0)
        where = (f"{'i.i.d. batches' if smp == 'iid' else 'batches without replacement'} "
                 f"from {n} rows")
        if not mode_ok:
            reason = f"diverges: a noiseless mode is unstable ({where})"
        else:
            reason = (f"{'diverges' if diverges else 'converges'}: exact noise radius R = {R:.6g} "
                      f"{'>=' if R >= 1 else '<'} 1 ({where})")
    else:
        R = float("nan")
        diverges = stopped
        reason = "stopped before float overflow" if stopped else "divergence not checked"
    return ExactDataCurve(loss, steps, bool(diverges), float(R), smp, reason, stopped)


# -- the stationary gain and the exact noise radius ---------------------------------------------
@njit(cache=True)
def _solve_small(A, rhs):
    """Gaussian elimination with partial pivoting (A and rhs are overwritten)."""
    m = rhs.size
    for c in range(m):
        p = c
        for r in range(c + 1, m):
            if abs(A[r, c]) > abs(A[p, c]):
                p = r
        if p != c:
            for j in range(m):
                A[c, j], A[p, j] = A[p, j], A[c, j]
            rhs[c], rhs[p] = rhs[p], rhs[c]
        piv = A[c, c]
        for r in range(c + 1, m):
            f = A[r, c] / piv
            if f != 0.0:
                for j in range(c, m):
                    A[r, j] -= f * A[c, j]
                rhs[r] -= f * rhs[c]
    for c in range(m - 1, -1, -1):
        acc = rhs[c]
        for j in range(c + 1, m):
            acc -= A[c, j] * rhs[j]
        rhs[c] = acc / A[c, c]
    return rhs


def _gain_body(Tm, K, G, pre, diagonal_only, out):
    """``out[k, l] = p_k p_l G Phi_kl G^T`` with ``Phi_kl - T_k Phi_kl T_l^T = K K^T``
    (a q^2 x q^2 solve per pair; ``diagonal_only``: only k = l)."""
    N = Tm.shape[0]
    q = Tm.shape[1]
    m = q * q
    for k in prange(N):
        A = np.empty((m, m))
        rhs = np.empty(m)
        lo = k if diagonal_only else k
        hi = k + 1 if diagonal_only else N
        for l in range(lo, hi):
            for a in range(q):
                for b in range(q):
                    rhs[a * q + b] = K[a] * K[b]
                    for c in range(q):
                        for e in range(q):
                            A[a * q + b, c * q + e] = -Tm[k, a, c] * Tm[l, b, e]
                    A[a * q + b, a * q + b] += 1.0
            phi = _solve_small(A, rhs)
            g = 0.0
            for a in range(q):
                for b in range(q):
                    g += G[a] * G[b] * phi[a * q + b]
            out[k, l] = pre[k] * pre[l] * g
            out[l, k] = out[k, l]


_gain_parallel = njit(parallel=True, cache=True)(_gain_body)
_gain_serial = njit(cache=True)(_gain_body)


def stationary_gain(Tm: np.ndarray, K: np.ndarray, G: np.ndarray, precond=None,
                    diagonal_only: bool = False) -> np.ndarray:
    """``Gamma_kl = p_k p_l G Phi_kl G^T``, ``Phi_kl = sum_t T_k^t K K^T (T_l^T)^t``: the
    stationary cross second moment of the gradient point of modes k and l per unit gradient kick
    (``Tm``: (N, q, q) stable noiseless maps). ``diagonal_only``: only ``Gamma_kk`` (vector)."""
    N = Tm.shape[0]
    pre = np.ones(N) if precond is None else precond
    out = np.zeros((N, N))
    fn = _gain_parallel if N >= PARALLEL_MODES else _gain_serial
    fn(np.ascontiguousarray(Tm), np.ascontiguousarray(K), np.ascontiguousarray(G),
                 np.ascontiguousarray(pre), diagonal_only, out)
    return np.diag(out).copy() if diagonal_only else out


def mode_radius(Tm: np.ndarray) -> float:
    """``max_k rho(T_k)``: the noiseless modes are stable iff it is < 1."""
    return float(np.abs(np.linalg.eigvals(Tm)).max())


@dataclass(frozen=True)
class _Operator:
    """``U(S) = Sigma_1^0(Gamma o S)`` on ``vech`` coordinates (basis E_kk, E_kl + E_lk)."""

    noise: _Noise
    gain: np.ndarray

    @property
    def size(self) -> int:
        N = self.gain.shape[0]
        return N * (N + 1) // 2

    def matvec(self, x):
        N = self.gain.shape[0]
        iu = np.triu_indices(N)
        S = np.zeros((N, N))
        S[iu] = np.real(x)
        S = S + np.triu(S, 1).T
        return self.noise.homogeneous(self.gain * S)[iu]

    def dense(self) -> np.ndarray:
        """The matrix of ``U``: ``(Z2^T Z2 / n) diag(c) - diag(lambda_k lambda_l Gamma_kl)``,
        ``Z2_i,(kl) = z_ik z_il``, ``c_(kl) = Gamma_kl`` (k = l) or ``2 Gamma_kl`` (k < l)."""
        N = self.gain.shape[0]
        iu = np.triu_indices(N)
        Z2 = self.noise.Z[:, iu[0]] * self.noise.Z[:, iu[1]]
        c = self.gain[iu] * np.where(iu[0] == iu[1], 1.0, 2.0)
        A = (Z2.T @ Z2 / self.noise.n) * c[None, :]
        A[np.diag_indices_from(A)] -= self.noise.hh[iu] * self.gain[iu]
        return A


def _spectral_radius(op: _Operator, solver: str, v0=None):
    """``(rho(U), Perron vector)`` by a dense eigensolve or ARPACK (``solver``: auto/dense/arnoldi)."""
    m = op.size
    if solver == "dense" or (solver == "auto" and m <= DENSE_LIMIT) or m < 4:
        w, V = np.linalg.eig(op.dense())
        j = int(np.argmax(np.abs(w)))
        return float(np.abs(w[j])), np.real(V[:, j])
    lin = LinearOperator((m, m), matvec=op.matvec, dtype=np.float64)
    if v0 is None or v0.shape != (m,) or not np.all(np.isfinite(v0)):
        N = op.gain.shape[0]
        v0 = (np.eye(N) + np.ones((N, N)) / N)[np.triu_indices(N)]
    for ncv in (20, 40, 80):
        try:
            w, V = eigs(lin, k=2, which="LM", v0=v0, tol=1e-12, ncv=min(ncv, m - 1), maxiter=20 * m)
            j = int(np.argmax(np.abs(w)))
            return float(np.abs(w[j])), np.real(V[:, j])
        except (ArpackNoConvergence, ArpackError):
            continue
    raise RuntimeError("ARPACK did not converge on the exact noise operator; pass solver='dense'")


def _radius_at(problem, mats: StepMatrices, t: int, gamma: float, pre, solver="auto",
               v0=None, with_vector=False):
    lam = problem.eigenvalues
    Tm = mats.transitions(t, lam, pre)
    if mode_radius(Tm) >= 1.0:
        return (float("inf"), None) if with_vector else float("inf")
    if gamma == 0.0:
        return (0.0, None) if with_vector else 0.0
    data = problem.data
    op = _Operator(_Noise(data.rows, data.residuals, lam, pre),
                   stationary_gain(Tm, mats.K[t], mats.G[t], pre))
    rho, vec = _spectral_radius(op, solver, v0)
    return (gamma * rho, vec) if with_vector else gamma * rho


@_blas_scoped
def noise_radius(problem: Problem, alpha, beta, batch, method="heavy-ball", *, sampling=None,
                 params=None, preconditioner=None, solver: str = "auto") -> float:
    """The exact noise radius ``R = gamma rho(U)`` at constant ``(alpha, beta, b)`` (module
    docstring): the loss converges iff ``R < 1`` (``inf`` when a noiseless mode is unstable).
    ``solver``: ``"dense"`` (eigenvalues of U's matrix, for small N), ``"arnoldi"`` (ARPACK,
    matrix-free, tolerance 1e-12) or ``"auto"`` (dense up to N(N+1)/2 = 600)."""
    require_data(problem)
    if solver not in ("auto", "dense", "arnoldi"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'arnoldi', got {solver!r}")
    smp = resolve_sampling(problem, sampling)
    mats = step_matrices(method, checks.positive("alpha", alpha), beta, 1, params)
    gam = float(batch_factors(checks.integer("batch", batch, 1), problem.data.n, smp)[0])
    pre = _preconditioner(preconditioner, problem, method, params)
    return _radius_at(problem, mats, 0, gam, pre, solver)


@_blas_scoped
def q4_radius(problem: Problem, alpha, beta, batch, method="heavy-ball", *, sampling=None,
              params=None, preconditioner=None, fourth_moments=None) -> float:
    """The diagonal (Q4) closure's radius ``R_Q = gamma rho((Q - diag(lambda^2)) diag(Gamma_kk))``
    with the data's fourth moments ``Q`` (or ``fourth_moments``, any N x N matrix, e.g. SE's
    ``tau1 lambda lambda^T + (1 - tau2) diag(lambda^2)``); ``inf`` if a mode is unstable."""
    require_data(problem)
    smp = resolve_sampling(problem, sampling)
    mats = step_matrices(method, checks.positive("alpha", alpha), beta, 1, params)
    gam = float(batch_factors(checks.integer("batch", batch, 1), problem.data.n, smp)[0])
    pre = _preconditioner(preconditioner, problem, method, params)
    return _q4_radius_at(problem, mats, gam, pre, fourth_moments)


def _q4_radius_at(problem, mats, gamma, pre, Q=None):
    # an N x N eigensolve: one BLAS thread is as fast and never spin-waits on a busy machine
    with threadpool_limits(1, user_api="blas"):
        return _q4_radius_body(problem, mats, gamma, pre, Q)


def _q4_radius_body(problem, mats, gamma, pre, Q):
    lam = problem.eigenvalues
    Tm = mats.transitions(0, lam, pre)
    if mode_radius(Tm) >= 1.0:
        return float("inf")
    Q = problem.data.fourth_moments if Q is None else np.asarray(Q, dtype=np.float64)
    g = stationary_gain(Tm, mats.K[0], mats.G[0], pre, diagonal_only=True)
    if np.all(g > 0) and np.allclose(Q, Q.T, rtol=1e-12, atol=0):
        # (Q - L^2) diag(g) is similar to the symmetric diag(sqrt g) (Q - L^2) diag(sqrt g)
        r = np.sqrt(g)
        w = np.linalg.eigvalsh((Q - np.diag(lam ** 2)) * np.outer(r, r))
        return gamma * float(np.abs(w).max())
    A = (Q - np.diag(lam ** 2)) * g[None, :]
    return gamma * float(np.abs(np.linalg.eigvals(A)).max())


# -- critical learning rate and batch -----------------------------------------------------------
def _mode_edge(problem, method, beta, params, pre) -> float:
    """Largest alpha with every noiseless mode stable for all smaller alpha (inf if unbounded):
    bisection on ``max_k rho(T_k(alpha)) < 1`` (stable set assumed to be an interval (0, edge),
    as for every method of the catalogue)."""
    lam = problem.eigenvalues

    def stable(a):
        return mode_radius(step_matrices(method, a, beta, 1, params).transitions(0, lam, pre)) < 1.0
    lo = 0.0
    hi = 1.0 / float(lam.max())
    while stable(hi):
        lo = hi
        hi *= 2.0
        if hi > 1e12 / float(lam.max()):
            return float("inf")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if stable(mid):
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class ExactCriticalLearningRate:
    alpha_crit: float         # sup of the convergent alphas of the exact finite-data dynamics
    alpha_eff_crit: float     # alpha_crit / (1 - beta) (heavy-ball convention)
    limited_by: str           # "noise", "mode stability" or "diverges for every alpha"
    mode_edge: float          # alpha at which the worst noiseless mode turns unstable
    beta: float
    batch: int
    sampling: str
    method: str
    evaluations: int          # radius evaluations spent
    route: str = ROUTE

    @property
    def reason(self) -> str:
        if self.limited_by == "diverges for every alpha":
            return "diverges for every alpha (exact finite-data route)"
        return (f"alpha_crit = {self.alpha_crit:.12g} (alpha_eff = {self.alpha_eff_crit:.12g}), "
                f"limited by {self.limited_by}: the noiseless modes turn unstable at alpha = "
                f"{self.mode_edge:.12g} (exact finite-data route, "
                f"{'i.i.d. batches' if self.sampling == 'iid' else 'batches without replacement'})")


def _critical(radius_fn, edge, rtol):
    """Root of ``radius(alpha) = 1`` on (0, edge) in log alpha (Brent), or the edge.
    Returns (alpha_crit, limited_by, evaluations)."""
    count = 0

    def f(log_a):
        nonlocal count
        count += 1
        r = radius_fn(math.exp(log_a))
        return math.log(r) if r > 0 else -745.0
    hi = edge * (1.0 - 1e-12) if np.isfinite(edge) else None
    if hi is None:                           # no mode edge: grow until the noise stops it
        hi = 1.0
        while f(math.log(hi)) < 0.0:
            hi *= 4.0
            if hi > 1e300:
                return float("inf"), "noise", count
    elif f(math.log(hi)) < 0.0:
        return edge, "mode stability", count
    lo = hi / 16.0
    while f(math.log(lo)) >= 0.0:
        lo /= 16.0
        if lo < 1e-300:
            return 0.0, "diverges for every alpha", count
    root = optimize.brentq(f, math.log(lo), math.log(hi), xtol=rtol, rtol=4 * np.finfo(float).eps)
    return math.exp(root), "noise", count


@_blas_scoped
def exact_critical_learning_rate(problem: Problem, beta=0.0, batch=1, method="heavy-ball", *,
                                 sampling=None, params=None, preconditioner=None,
                                 solver: str = "auto", rtol: float = 1e-10) -> ExactCriticalLearningRate:
    """The largest alpha for which the exact finite-data dynamics converges: ``R(alpha) = 1``
    (exact noise radius, module docstring) below the noiseless mode edge, solved by Brent's
    method in ``log alpha`` to relative accuracy ``rtol`` (the radius itself is accurate to
    ~1e-12, so ``rtol`` >= 1e-11 is meaningful). Assumes, as SE's ``critical_learning_rate``, that
    the convergent alphas form an interval (0, alpha_crit); the tests check the loss recursion
    decays at 0.99 alpha_crit and grows at 1.01 alpha_crit."""
    require_data(problem)
    smp = resolve_sampling(problem, sampling)
    m = get_method(method)
    b = checks.momentum("beta", beta) if m.has_momentum else m.check_params(1.0, beta)[1]
    bsz = checks.integer("batch", batch, 1)
    rtol = checks.positive("rtol", rtol)
    gam = float(batch_factors(bsz, problem.data.n, smp)[0])
    pre = _preconditioner(preconditioner, problem, method, params)
    if solver not in ("auto", "dense", "arnoldi"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'arnoldi', got {solver!r}")
    edge = _mode_edge(problem, m, b, params, pre)
    state = {"v0": None}

    def radius(a):
        mats = step_matrices(m, a, b, 1, params)
        r, vec = _radius_at(problem, mats, 0, gam, pre, solver, state["v0"], with_vector=True)
        if vec is not None:
            state["v0"] = vec
        return r
    a, limited, count = _critical(radius, edge, rtol)
    return ExactCriticalLearningRate(a, a / (1 - b), limited, edge, b, bsz, smp, m.name, count)


@_blas_scoped
def q4_critical_learning_rate(problem: Problem, beta=0.0, batch=1, method="heavy-ball", *,
                              sampling=None, params=None, preconditioner=None,
                              fourth_moments=None, rtol: float = 1e-10) -> ExactCriticalLearningRate:
    """Critical learning rate of the diagonal Q4 closure (``q4_radius = 1``; same root finder as
    ``exact_critical_learning_rate``). With SE's fourth moments it reproduces
    ``theory.stability.critical_learning_rate`` (an independent check of the gains)."""
    require_data(problem)
    smp = resolve_sampling(problem, sampling)
    m = get_method(method)
    b = checks.momentum("beta", beta) if m.has_momentum else m.check_params(1.0, beta)[1]
    bsz = checks.integer("batch", batch, 1)
    gam = float(batch_factors(bsz, problem.data.n, smp)[0])
    pre = _preconditioner(preconditioner, problem, method, params)
    edge = _mode_edge(problem, m, b, params, pre)

    def radius(a):
        return _q4_radius_at(problem, step_matrices(m, a, b, 1, params), gam, pre, fourth_moments)
    a, limited, count = _critical(radius, edge, checks.positive("rtol", rtol))
    return ExactCriticalLearningRate(a, a / (1 - b), limited, edge, b, bsz, smp, m.name, count,
                                     route="q4-closure")


@dataclass(frozen=True)
class ExactCriticalBatch:
    batch_crit: int | None     # smallest convergent batch (None: diverges for every batch)
    batch_crit_real: float     # the batch at which R = 1 (continuous; 0 when gamma = 1 converges)
    gamma_crit: float          # the batch factor at which R = 1: 1 / rho(U)
    unit_radius: float         # rho(U): the radius at gamma = 1
    alpha: float
    beta: float
    sampling: str
    route: str = ROUTE

    @property
    def diverges_for_every_batch(self) -> bool:
        return self.batch_crit is None


@_blas_scoped
def exact_critical_batch(problem: Problem, alpha, beta=0.0, method="heavy-ball", *, sampling=None,
                         params=None, preconditioner=None, solver: str = "auto") -> ExactCriticalBatch:
    """The smallest batch for which the exact dynamics converges at ``(alpha, beta)``: ``R`` is
    ``gamma rho(U)`` and ``U`` does not depend on the batch, so one radius gives
    ``gamma_crit = 1 / rho(U)``: i.i.d. ``b > rho(U)``; without replacement
    ``(n - b) / ((n - 1) b) < gamma_crit``, i.e. ``b > n / (1 + gamma_crit (n - 1))``."""
    require_data(problem)
    smp = resolve_sampling(problem, sampling)
    n = problem.data.n
    rho = noise_radius(problem, alpha, beta, 1, method, sampling="iid", params=params,
                       preconditioner=preconditioner, solver=solver)
    a = float(alpha)
    bt = float(beta)
    if not np.isfinite(rho):
        return ExactCriticalBatch(None, float("inf"), 0.0, rho, a, bt, smp)
    gc = 1.0 / rho if rho > 0 else float("inf")
    if smp == "iid":
        real = rho
    else:
        real = n / (1.0 + gc * (n - 1)) if np.isfinite(gc) else 0.0
    crit = math.floor(real) + 1 if real >= 1 else 1
    if smp == "without-replacement":
        crit = min(crit, n)
    return ExactCriticalBatch(int(crit), float(real), gc, rho, a, bt, smp)


# -- the trust check ------------------------------------------------------------------------------
TRUST_MARGIN = 0.05          # SE may overshoot the exact alpha_crit by 5 % (theory.se_check too)


@dataclass(frozen=True)
class TrustCheck:
    """The exact noise radius ``R`` at SE's predicted critical learning rate, and the overshoot
    ``alpha_crit_se / alpha_crit_exact`` it implies: one Newton step for ``log R(alpha) = 0`` in
    ``log alpha`` from SE's value, ``overshoot = R^(1/kappa)`` with the slope
    ``kappa = d log R / d log alpha`` there (a second radius at ``alpha (1 - 1e-3)``; the step's
    error is second order in ``log overshoot``: ~1e-3 relative at a 5 % overshoot). SE is trusted
    when ``overshoot <= 1 + TRUST_MARGIN`` (the margin of ``theory.se_check``'s verdict)."""

    alpha_crit_se: float
    radius: float
    overshoot: float
    passes: bool
    tau1: float
    tau2: float
    tau_residual: float | None
    sampling: str

    @property
    def summary(self) -> str:
        """One short clause: passed / failed with the radius."""
        return (f"trust check {'passed' if self.passes else 'FAILED'}: exact noise radius "
                f"{self.radius:.4g} at SE's alpha_crit {self.alpha_crit_se:.6g}, about "
                f"{self.overshoot:.3g}x the exact threshold")

    @property
    def message(self) -> str:
        if self.passes:
            return (f"trust check passed: the exact noise radius at SE's alpha_crit "
                    f"{self.alpha_crit_se:.6g} is {self.radius:.4g}, SE's alpha_crit about "
                    f"{self.overshoot:.3g}x the exact one (margin {1 + TRUST_MARGIN:g})")
        res = "" if self.tau_residual is None else f", fit residual {self.tau_residual:.3g}"
        return (f"SE (tau = ({self.tau1:.4g}, {self.tau2:.4g}){res}) is not to be trusted here: "
                f"the exact finite-data dynamics diverges at SE's alpha_crit {self.alpha_crit_se:.6g} "
                f"(exact noise radius {self.radius:.4g} > 1; SE's alpha_crit is about "
                f"{self.overshoot:.3g}x the exact one); use --route exact-data or `sgdyn check-se`")


def se_noise(problem: Problem):
    """The SE model a data problem comes with (``problem.noise``, else fitted to its rows)."""
    from sgdyn.theory.noise import estimate_tau
    if problem.noise is not None:
        return problem.noise, problem.tau_residual
    fit = estimate_tau(problem.data.rows)
    return fit.model, fit.residual


def trust_check(problem: Problem, beta=0.0, batch=1, method="heavy-ball", *, noise=None,
                sampling=None, alpha_se=None) -> TrustCheck:
    """SE's ``critical_learning_rate`` (with ``noise``, default the problem's fitted model), the
    exact noise radius there and the overshoot it implies (``TrustCheck``): two radius
    evaluations (``alpha_se`` skips the SE solve)."""
    from sgdyn.theory.stability import critical_learning_rate
    require_data(problem)
    smp = resolve_sampling(problem, sampling)
    res = problem.tau_residual
    if noise is None:
        noise, res = se_noise(problem)
    se_problem = problem.replace(data_size=problem.data.n if smp == "without-replacement" else None)
    if alpha_se is None:
        alpha_se = critical_learning_rate(se_problem, beta, batch, method, noise).alpha_crit
    if not alpha_se > 0:
        return TrustCheck(0.0, 0.0, 0.0, True, noise.tau1, noise.tau2, res, smp)
    R = noise_radius(problem, alpha_se, beta, batch, method, sampling=smp)
    h = 1e-3
    R_lo = noise_radius(problem, alpha_se * (1 - h), beta, batch, method, sampling=smp)
    if np.isfinite(R) and R > 0 and R_lo > 0 and R > R_lo:
        kappa = (math.log(R) - math.log(R_lo)) / -math.log1p(-h)
        over = math.exp(math.log(R) / kappa)
    else:
        over = float("inf") if not np.isfinite(R) or R >= 1 else 1.0
    return TrustCheck(float(alpha_se), float(R), float(over), bool(over <= 1 + TRUST_MARGIN),
                      noise.tau1, noise.tau2, res, smp)
