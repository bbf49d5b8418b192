"""The gradient of the final loss of the second-moment recursion with respect to every step's
coefficients, by one reverse (adjoint) pass: O(N T), the cost of about two forward passes.

Forward (``sgdyn.theory.recursion``; per mode ``k``, step ``t``, ``P = unvech(X)``):

    gx_k = g_t . X_k,    D_t = sum_k w_k gx_k,    M_k = F_t + x_k H_t (H = K G^T, x_k = lambda_k p_k)
    s_k  = pp_k gam_t (tau1 lambda_k D_t - tau2 lambda_k^2 gx_k + src_k)
    X'_k = vech(M_k P_k M_k^T) + kk_t s_k,          L_T = 1/2 sum_k w_k X_{T,k}[0] + floor

(``w_k = w lambda_k`` the weights ``wl``). Reverse, with ``Lam_k = dL_T / dX_{t+1,k}`` (a
``q``-vector) and ``B_k`` the symmetric matrix with ``<B_k, Q> = Lam_k . vech(Q)`` (diagonal
``Lam``, off-diagonal ``Lam / 2``), the adjoint of step ``t`` is (*derived*; checked against
central differences of ``sgdyn.theory.solve`` in ``tests/theory/test_optimal_schedule.py``):

    mu_k       = Lam_k . kk_t                            (dL / ds_k)
    dL/dD_t    = sum_k mu_k pp_k gam_t tau1 lambda_k
    dL/dgx_k   = -mu_k pp_k gam_t tau2 lambda_k^2 + w_k dL/dD_t
    dL/dX_{t,k} = vech*(M_k^T B_k M_k) + (dL/dgx_k) g_t  (vech*: diagonal as is, off-diagonal x 2)
    dL/dF_t    = sum_k 2 B_k M_k P_k,     dL/dH_t = sum_k x_k 2 B_k M_k P_k
    dL/dkk_t   = sum_k Lam_k s_k,         dL/dg_t = sum_k (dL/dgx_k) X_{t,k}
    dL/dgam_t  = sum_k mu_k pp_k (tau1 lambda_k D_t - tau2 lambda_k^2 gx_k + src_k)

starting from ``Lam_k = (w_k / 2) e_0`` at ``t = T``. The forward pass keeps every state
(memory ``8 q N (T + 1)`` bytes, checked against the memory budget): the reverse pass reads them
backwards. The kernels loop over the state's entries (any dimension up to ``MAX_STATE_DIM``)
rather than being generated per sparsity: the gradient is not the hot path of a long horizon.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from sgdyn.theory import budget
from sgdyn.theory.recursion import ModeInputs, vech_pairs


@njit(cache=True)
def _forward(lam, lp, pp, wl, src, F, KG, kk, g, gam, tau1, tau2, floor, ri, si, states):
    T = F.shape[0]
    d = F.shape[1]
    q, n = states.shape[1], states.shape[2]
    M = np.empty((d, d))
    P = np.empty((d, d))
    for t in range(T):
        X = states[t]
        Y = states[t + 1]
        D = 0.0
        for k in range(n):
            gx = 0.0
            for r in range(q):
                gx += g[t, r] * X[r, k]
            D += wl[k] * gx
        for k in range(n):
            gx = 0.0
            for r in range(q):
                gx += g[t, r] * X[r, k]
                P[ri[r], si[r]] = X[r, k]
                P[si[r], ri[r]] = X[r, k]
            s = pp[k] * gam[t] * (tau1 * lam[k] * D - tau2 * lam[k] * lam[k] * gx + src[k])
            for a in range(d):
                for b in range(d):
                    M[a, b] = F[t, a, b] + lp[k] * KG[t, a, b]
            for r in range(q):
                acc = 0.0
                for e in range(d):
                    for f in range(d):
                        acc += M[ri[r], e] * P[e, f] * M[si[r], f]
                Y[r, k] = acc + kk[t, r] * s
    L = 0.0
    for k in range(n):
        L += wl[k] * states[T, 0, k]
    return 0.5 * L + floor


@njit(cache=True)
def _backward(lam, lp, pp, wl, src, F, KG, kk, g, gam, tau1, tau2, ri, si, states,
              dF, dKG, dkk, dg, dgam):
    T = F.shape[0]
    d = F.shape[1]
    q, n = states.shape[1], states.shape[2]
    lam_next = np.zeros((q, n))
    lam_now = np.empty((q, n))
    for k in range(n):
        lam_next[0, k] = 0.5 * wl[k]
    own = np.empty(n)
    M = np.empty((d, d))
    P = np.empty((d, d))
    B = np.empty((d, d))
    BM = np.empty((d, d))
    for t in range(T - 1, -1, -1):
        X = states[t]
        D = 0.0
        for k in range(n):
            gx = 0.0
            for r in range(q):
                gx += g[t, r] * X[r, k]
            D += wl[k] * gx
        dD = 0.0
        for k in range(n):
            gx = 0.0
            mu = 0.0
            for r in range(q):
                gx += g[t, r] * X[r, k]
                mu += lam_next[r, k] * kk[t, r]
                P[ri[r], si[r]] = X[r, k]
                P[si[r], ri[r]] = X[r, k]
                half = 1.0 if ri[r] == si[r] else 0.5
                B[ri[r], si[r]] = half * lam_next[r, k]
                B[si[r], ri[r]] = half * lam_next[r, k]
            bracket = tau1 * lam[k] * D - tau2 * lam[k] * lam[k] * gx + src[k]
            s = pp[k] * gam[t] * bracket
            for r in range(q):
                dkk[t, r] += lam_next[r, k] * s
            dgam[t] += mu * pp[k] * bracket
            dD += mu * pp[k] * gam[t] * tau1 * lam[k]
            own[k] = -mu * pp[k] * gam[t] * tau2 * lam[k] * lam[k]
            for a in range(d):
                for b in range(d):
                    M[a, b] = F[t, a, b] + lp[k] * KG[t, a, b]
            for a in range(d):
                for b in range(d):
                    acc = 0.0
                    for e in range(d):
                        acc += B[a, e] * M[e, b]
                    BM[a, b] = acc
            # dL/dM = 2 B M P
            for a in range(d):
                for b in range(d):
                    acc = 0.0
                    for e in range(d):
                        acc += BM[a, e] * P[e, b]
                    dF[t, a, b] += 2.0 * acc
                    dKG[t, a, b] += 2.0 * lp[k] * acc
            # M^T B M, read back as the adjoint of vech(P)
            for r in range(q):
                acc = 0.0
                for e in range(d):
                    acc += M[e, ri[r]] * BM[e, si[r]]
                lam_now[r, k] = acc if ri[r] == si[r] else 2.0 * acc
        for k in range(n):
            dgx = own[k] + wl[k] * dD
            for r in range(q):
                lam_now[r, k] += dgx * g[t, r]
                dg[t, r] += dgx * X[r, k]
        lam_next, lam_now = lam_now, lam_next


@dataclass(frozen=True)
class Coefficients:
    """Per-step kernel coefficients (``sgdyn.theory.recursion.step_coefficients``) of ``T``
    steps: ``F, KG (T, d, d)``, ``kk, g (T, q)``, ``gam (T,)``; or their gradients."""

    F: np.ndarray
    KG: np.ndarray
    kk: np.ndarray
    g: np.ndarray
    gam: np.ndarray


def final_loss_and_gradient(inputs: ModeInputs, coeffs: Coefficients) -> tuple[float, Coefficients]:
    """``L_T`` of the recursion driven by ``coeffs`` (step ``t`` uses row ``t``) and its gradient
    with respect to every coefficient (module docstring)."""
    T, d = coeffs.F.shape[0], coeffs.F.shape[1]
    q, n = inputs.X0.shape
    budget.memory("steps", 8.0 * q * n * (T + 1),
                  f"the adjoint pass keeping {T + 1} states of {n} modes")
    pairs = vech_pairs(d)
    ri = np.array([a for a, _ in pairs], dtype=np.int64)
    si = np.array([b for _, b in pairs], dtype=np.int64)
    states = np.empty((T + 1, q, n))
    states[0] = inputs.X0
    c = [np.ascontiguousarray(v, dtype=np.float64) for v in
         (coeffs.F, coeffs.KG, coeffs.kk, coeffs.g, coeffs.gam)]
    per_mode = (inputs.lam, inputs.lp, inputs.pp, inputs.wl, inputs.src)
    L = _forward(*per_mode, *c, inputs.tau1, inputs.tau2, inputs.floor, ri, si, states)
    grads = Coefficients(*(np.zeros_like(v) for v in c))
    if np.isfinite(L):
        _backward(*per_mode, *c, inputs.tau1, inputs.tau2, ri, si, states,
                  grads.F, grads.KG, grads.kk, grads.g, grads.gam)
    return float(L), grads
