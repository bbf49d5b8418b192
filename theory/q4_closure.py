"""The Q4 closure's loss curve: the middle route between SE (two numbers) and the exact
finite-data dynamics (``theory.exact_data``, full N x N second moments).

**The closure.** In the exact second-moment recursion of ``theory.exact_data`` keep only the
diagonal of the gradient point's second moment ``C`` and of the injected noise ``S``: per mode
``k`` the state's second moment ``P_k = E[x_k x_k^T]`` (q x q) and mean ``m_k`` move by

    P_k' = T_k P_k T_k^T + K K^T s_k,        m_k' = T_k m_k,        T_k = F + lambda_k p_k K G,
    s_k  = gamma p_k^2 [ sum_l Q_kl c_l - lambda_k^2 c_k - 2 sum_l R_kl mu_l + rho_k ],
    c_l  = G P_l G^T,   mu_l = G m_l,
    L    = 1/2 sum_k lambda_k o P_k o^T + sigma^2 / 2,

with the data's moments (rows ``z_i`` in the eigenbasis, residuals ``r_i``)
``Q_kl = mean_i z_ik^2 z_il^2``, ``R_kl = mean_i r_i z_ik^2 z_il`` and ``rho_k = mean_i r_i^2
z_ik^2`` (*derived*: the diagonal of the exact ``S = gamma [(1/n) sum_i D_i z_i z_i^T - H C H]``,
``D_i = z_i^T C z_i - 2 r_i z_i^T mu + r_i^2``, at a diagonal ``C``). SE is the special case
``Q = tau1 lambda lambda^T + (1 - tau2) diag(lambda^2)``, ``R = 0``, ``rho = sigma^2 lambda``
(``theory.recursion``'s ``s_k``); the exact route also keeps the off-diagonal ``C_kl``, which
the closure drops (the "off-diagonal coupling").

A step costs two N x N matrix-vector products (``Q c`` and ``R mu``; one without label noise) and
``O(N q^3)`` (numba): it streams ``Q`` and ``R`` from memory, so at N = 784 (10 MB) it is
bandwidth-bound; the set-up, ``Q`` and ``R``, two ``n x N x N`` products. Any method the engine
describes, any per-step ``alpha_t, beta_t, b_t`` (schedules), i.i.d. batches or batches without
replacement (the batch factor ``gamma``, ``theory.exact_data.batch_factors``).

**Rate and divergence.** The homogeneous part of the map (no ``R``, no ``rho``) is linear in
``(P_k)`` and positive; its spectral radius ``rho_A`` is the second moments' asymptotic rate and
the curve converges iff ``rho_A < 1``, i.e. iff every noiseless mode is stable and the Q4 radius
``theory.exact_data.q4_radius`` is below 1 (the splitting lemma of ``theory.exact_data``; both are
computed, and the tests check they agree and that a divergent curve grows by ``rho_A`` a step).
With label noise the cross term ``R mu`` decays with the mean, as ``max_k rho(T_k)``, which can
exceed ``rho_A`` (``>= max_k rho(T_k)^2``): then the loss settles at that slower rate, as in the
exact route.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigs

from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.exact_data import (OVERFLOW_GUARD, _blas_scoped, _preconditioner, _q4_radius_at,
                                     StepMatrices, batch_factors, require_data, resolve_sampling,
                                     step_matrices)
from sgdyn.theory.problem import Problem

ROUTE = "q4"
DENSE_LIMIT = 600       # state size N q^2 up to which the rate comes from a dense eigensolve


@dataclass(frozen=True)
class Q4Curve(Result):
    """Expected loss ``L_0 .. L_T`` of the Q4 closure (module docstring)."""

    loss: np.ndarray            # L_0 .. L_T, or up to the step where a divergent run was stopped
    steps_requested: int
    diverges: bool              # at the last step's (alpha, beta, b): rate >= 1
    rate: float                 # rho_A there: the second moments' rate (inf: a mode unstable)
    q4_radius: float            # R_Q there (inf if a noiseless mode is unstable)
    sampling: str
    reason: str
    stopped_early: bool
    route: str = ROUTE

    @property
    def final(self) -> float:
        return float(self.loss[-1])


@dataclass(frozen=True)
class Q4Moments:
    """The data's moments the closure needs: ``Q`` (N x N), ``R`` (N x N, or 0 x 0 when every
    residual is zero) and ``rho`` (N,) of the module docstring."""

    Q: np.ndarray
    R: np.ndarray
    rho: np.ndarray

    @classmethod
    def of(cls, problem: Problem, fourth_moments=None) -> "Q4Moments":
        data = problem.data
        N = data.modes
        if fourth_moments is None:
            Q = np.ascontiguousarray(data.fourth_moments)
        else:
            Q = checks.real_values("fourth_moments", fourth_moments)
            if Q.shape != (N, N) or not np.all(np.isfinite(Q)):
                raise ValueError(f"fourth_moments must be a finite {N} x {N} matrix, "
                                 f"got shape {Q.shape}")
            Q = np.ascontiguousarray(Q, dtype=np.float64)
        Z2 = data.rows ** 2
        r = data.residuals
        R = (Z2 * r[:, None]).T @ data.rows / data.n if np.any(r != 0) else np.empty((0, 0))
        return cls(Q, np.ascontiguousarray(R), Z2.T @ (r * r) / data.n)


@njit(cache=True)
def _q4_steps(F, K, G, stride, gam, lam, lp, pp, QT, RT, rho, o, floor, P, m, guard, loss):
    """Steps ``0 .. loss.size - 1`` of the closure from ``P`` (N, q, q) and ``m`` (N, q), both
    updated in place; the method's matrices and ``gam`` are read at ``t * stride``; ``QT``, ``RT``
    the transposes of ``Q`` and ``R``. Returns how many losses were written (fewer if one passed
    ``guard``)."""
    N, q = m.shape
    steps = loss.size - 1
    c = np.empty(N)
    mu = np.empty(N)
    inj = np.empty(N)
    Tk = np.empty((q, q))
    W = np.empty((q, q))
    new_m = np.empty(q)
    with_mean = RT.shape[0] > 0
    for t in range(steps + 1):
        acc = 0.0
        for k in range(N):
            v = 0.0
            for a in range(q):
                for b in range(q):
                    v += o[a] * P[k, a, b] * o[b]
            acc += lam[k] * v
        loss[t] = 0.5 * acc + floor
        if not abs(loss[t]) < guard:
            return t + 1
        if t == steps:
            break
        ti = t * stride
        for k in range(N):
            v = 0.0
            w = 0.0
            for a in range(q):
                w += G[ti, a] * m[k, a]
                for b in range(q):
                    v += G[ti, a] * P[k, a, b] * G[ti, b]
            c[k] = v
            mu[k] = w
        # inj = Q c - 2 R mu as sums of rows of Q^T, R^T: the inner loop is an axpy, which LLVM
        # vectorises (a dot-product loop is a float reduction it may not reorder)
        for k in range(N):
            inj[k] = 0.0
        for l in range(N):
            cl = c[l]
            for k in range(N):
                inj[k] += QT[l, k] * cl
        if with_mean:
            for l in range(N):
                ml = -2.0 * mu[l]
                for k in range(N):
                    inj[k] += RT[l, k] * ml
        for k in range(N):
            acc = inj[k] + rho[k] - lam[k] * lam[k] * c[k]
            s = gam[ti] * pp[k] * acc
            for a in range(q):
                for b in range(q):
                    Tk[a, b] = F[ti, a, b] + lp[k] * K[ti, a] * G[ti, b]
            for a in range(q):
                for b in range(q):
                    v = 0.0
                    for e in range(q):
                        v += Tk[a, e] * P[k, e, b]
                    W[a, b] = v
            for a in range(q):
                for b in range(q):
                    v = K[ti, a] * K[ti, b] * s
                    for e in range(q):
                        v += W[a, e] * Tk[b, e]
                    P[k, a, b] = v
            for a in range(q):
                v = 0.0
                for e in range(q):
                    v += Tk[a, e] * m[k, e]
                new_m[a] = v
            for a in range(q):
                m[k, a] = new_m[a]
    return steps + 1


def _same_every_step(*arrays) -> bool:
    return all(np.all(a == a[:1]) for a in arrays)


def q4_map_radius(Tm: np.ndarray, K: np.ndarray, G: np.ndarray, noise: np.ndarray) -> float:
    """Spectral radius ``rho_A`` of the closure's homogeneous map
    ``P_k -> T_k P_k T_k^T + K K^T (noise c)_k``, ``c_l = G P_l G^T``, with ``noise`` the N x N
    matrix ``gamma diag(p^2) (Q - diag(lambda^2))``: a dense eigensolve up to ``N q^2 = 600``,
    else ARPACK (matrix-free, tolerance 1e-12)."""
    N, q, _ = Tm.shape
    KK = np.outer(K, K)

    def apply(P):                      # P: (m, N, q, q)
        c = np.einsum("a,mkab,b->mk", G, P, G)
        return np.einsum("kac,mkcd,kbd->mkab", Tm, P, Tm) + (c @ noise.T)[..., None, None] * KK

    size = N * q * q
    if size <= DENSE_LIMIT:
        A = apply(np.eye(size).reshape(size, N, q, q)).reshape(size, size).T
        return float(np.abs(np.linalg.eigvals(A)).max())
    lin = LinearOperator((size, size), dtype=np.float64,
                         matvec=lambda x: apply(np.real(x).reshape(1, N, q, q)).ravel())
    v0 = np.broadcast_to(np.eye(q), (N, q, q)).ravel().copy()
    for ncv in (20, 40, 80):
        try:
            w = eigs(lin, k=2, which="LM", v0=v0, tol=1e-12, ncv=ncv, maxiter=20 * size,
                     return_eigenvectors=False)
            return float(np.abs(w).max())
        except (ArpackNoConvergence, ArpackError):
            continue
    raise RuntimeError("ARPACK did not converge on the Q4 closure's map")


@_blas_scoped
def q4_loss_curve(problem: Problem, alpha, beta, batch, steps: int, method="heavy-ball", *,
                  sampling=None, params=None, output=None, preconditioner=None,
                  fourth_moments=None, check_divergence: bool = True) -> Q4Curve:
    """Expected loss ``L_0 .. L_T`` of ``method`` on ``problem.data``'s rows under the Q4
    closure (module docstring): the exact route's per-step conventions (``alpha``, ``beta``,
    ``batch`` and ``params`` scalars or one value per step; ``sampling``, ``output``,
    ``preconditioner`` as in ``theory.exact_data.exact_loss_curve``); ``fourth_moments``
    replaces the data's ``Q`` (e.g. SE's, to reproduce SE). ``rate``, ``q4_radius`` and
    ``diverges`` are judged at the last step's hyperparameters (``check_divergence=False`` skips
    those eigenvalue problems: ``diverges`` then only reports an overflow stop)."""
    require_data(problem)
    steps = checks.integer("steps", steps, 0)
    smp = resolve_sampling(problem, sampling)
    data = problem.data
    mats = step_matrices(method, alpha, beta, steps, params, output)
    T = max(steps, 1)
    gam = np.broadcast_to(batch_factors(batch, data.n, smp, steps if steps > 0 else None), (T,))
    lam = problem.eigenvalues
    pre = _preconditioner(preconditioner, problem, method, params)
    mom = Q4Moments.of(problem, fourth_moments)
    constant = _same_every_step(mats.F, mats.K, mats.G, gam)
    cut = 1 if constant else T
    F, K, G, g = (np.ascontiguousarray(x[:cut]) for x in (mats.F, mats.K, mats.G, gam))
    e0 = data.initial_error
    m = np.ascontiguousarray(e0[:, None] * mats.x0[None, :])
    P = np.ascontiguousarray(np.einsum("k,a,b->kab", e0 ** 2, mats.x0, mats.x0))
    loss = np.empty(steps + 1)
    written = _q4_steps(F, K, G, 0 if constant else 1, g, lam, lam * pre, pre * pre,
                        np.ascontiguousarray(mom.Q.T), np.ascontiguousarray(mom.R.T), mom.rho,
                        mats.output, 0.5 * data.label_noise, P, m, OVERFLOW_GUARD, loss)
    stopped = written < steps + 1
    if not check_divergence:
        return Q4Curve(loss[:written], steps, stopped, float("nan"), float("nan"), smp,
                       "stopped before float overflow" if stopped else "divergence not checked",
                       stopped)
    last = T - 1
    Tm = mats.transitions(last, lam, pre)
    at_last = StepMatrices(*(x[last:last + 1] for x in (mats.F, mats.K, mats.G)), mats.x0,
                           mats.output)
    RQ = _q4_radius_at(problem, at_last, float(gam[last]), pre, mom.Q)
    noise = gam[last] * (pre * pre)[:, None] * (mom.Q - np.diag(lam ** 2))
    rate = float("inf") if not np.isfinite(RQ) else \
        q4_map_radius(Tm, mats.K[last], mats.G[last], noise)
    diverges = stopped or not rate < 1.0
    where = (f"{'i.i.d. batches' if smp == 'iid' else 'batches without replacement'} "
             f"from {data.n} rows")
    if not np.isfinite(RQ):
        reason = f"diverges: a noiseless mode is unstable (Q4 closure, {where})"
    else:
        reason = (f"{'diverges' if diverges else 'converges'}: Q4 closure radius R_Q = {RQ:.6g} "
                  f"{'>=' if RQ >= 1 else '<'} 1, rate {rate:.6g} (diagonal closure with the "
                  f"data's fourth moments, {where})")
    return Q4Curve(loss[:written], steps, bool(diverges), rate, float(RQ), smp, reason, stopped)

