"""Exact jump-ahead: the expected loss at any set of steps (t = 10^12 included) for constant
hyperparameters, from the spectrum of the coupled second-moment map, without stepping.

**The map.** ``ModeArrays`` (``theory.system``) describe, per mode k (state ``X_k`` in R^q),
``X_{k,t+1} = A_k X_{k,t} + c_k D_t + s_k``, ``D_t = sum_k d_k . X_{k,t}``,
``L_t = sum_k l_k . X_{k,t} + floor`` (c = ``coupling``, s = ``source``, d = ``drive``,
l = ``loss``). On the stacked state this is ``Y_{t+1} = T Y_t + S`` with
``T = B + c d^T``, ``B = blockdiag(A_k)``: block diagonal plus rank one (the SE second-moment
map of Velikanov, Kuznedelev & Yarotsky, ICLR 2023, docs/theory.md; the structure of rank-one
update eigensolvers, Bunch, Nielsen & Sorensen, Numer. Math. 1978, and of the secular-equation
root finder MPSolve, Bini & Robol, J. Comput. Appl. Math. 2014; Aberth, Math. Comp. 1973).

**Secular equation.** With ``G_k(mu) = (mu - A_k)^-1`` and ``u_k(mu) = d_k^T G_k(mu) c_k``, the
eigenvalues of T seen by the drive are the roots of ``f(mu) = 1 - sum_k u_k(mu)`` (Sherman-Morrison:
``(mu - T)^-1 = G + G c d^T G / f``; in the generating-function variable ``z = 1/mu`` this is
``1 - U(z) = 0``). Writing ``P(mu) = f(mu) prod_i (mu - lambda_i)`` over the poles ``lambda_i`` of
the u_k, P is a monic polynomial of degree n = (number of poles), and its n roots are found all at
once by the Aberth-Ehrlich iteration ``mu_j <- mu_j - 1 / (P'/P(mu_j) - sum_{i != j} 1/(mu_j - mu_i))``
with ``P'/P = f'/f + sum_i 1/(mu - lambda_i)``, cubically convergent, O(n (N + n)) per sweep.

**Loss at step t** *(derived here; checked against the recursion in tests/theory/test_jumpahead.py)*.
With ``b_X(mu) = d^T G(mu) X`` (X = the initial state ``Y_0`` or the source S),
``a(mu) = l^T G(mu) c``, ``beta^X_j = b_X(mu_j) / f'(mu_j)`` and ``a_j = a(mu_j)``::

    L_t = floor + sum_j a_j [beta^0_j mu_j^t + beta^S_j phi_t(mu_j)]
                + sum_k l_k^T [A_k^t r^0_k + phi_t(A_k) r^S_k],
    phi_t(x) = (x^t - 1) / (x - 1) = sum_{s<t} x^s,
    r^X_k = X_k - sum_j beta^X_j G_k(mu_j) c_k.

It follows from ``L_t = l^T B^t Y_0 + sum_s l^T B^(t-1-s) (c D_s + S)`` with ``D`` the inverse
transform of ``b/f``, whose poles are the roots mu_j, and ``sum_{s<t} B^(t-1-s) mu^s =
(mu^t - B^t)(mu - B)^-1``. ``r^X_k`` lies in the drive-unobservable subspace of mode k (the
largest A_k-invariant subspace in ker d_k^T): it is zero for a mode whose every eigenvalue is seen
by the drive (then the eigenvectors ``G(mu_j) c`` of T are complete), and carries the exact free
evolution of the rest (e.g. the nilpotent part of heavy ball at beta = 0). The label-noise source
enters through ``phi_t``, never through a fixed point ``(I - T)^-1 S``: no cancellation between a
large fixed point and its transient for slow modes. Per step the cost is O(n) (plus O(log t) per
mode with a non-zero ``r``); the set-up is O(N n).

**Numerical care.** The target is the exact loss of the floating-point arrays to about the
accuracy with which they determine it: ``mu^t`` is conditioned like ``t eps`` (the entries of A_k
are rounded to eps), so every root is computed to a few ulps of itself, not to ``eps kappa``.

* Per-mode Schur forms ``A_k = Q_k R_k Q_k^H`` (unitary Q, upper-triangular R; complex), by
  deflation with SVD null vectors: defective or nearly defective blocks (heavy ball with
  ``(1 + beta - alpha lambda)^2 = 4 beta``: a 3x3 Jordan block) need no eigenvector basis. The
  drive-unobservable subspace is put first (block Schur form). Each pole is refined to
  double-double by a two-sided Rayleigh quotient whose residual ``A_k v - lambda v`` is
  accumulated with error-free products (Dekker's splitting, Ogita-Rump-Oishi sums).
* Every point is stored as (anchor pole, offset): ``mu = (hi_p + lo_p) + delta`` and every
  difference ``mu - lambda_i = (hi_p - hi_i) + (lo_p - lo_i + delta)`` is exact to rounding, so
  a root 1e-20 from its pole (a weakly coupled mode) is resolved (as in LAPACK's dlaed4).
  ``log mu = log1p((hi_p - 1) + lo_p + delta)``, ``mu^t = exp(t log mu)``,
  ``phi_t = expm1(t log mu) / (mu - 1)``.
* Poles closer than a few ulps (e.g. ``r1 r2 = beta``, shared by every heavy-ball mode with
  tau2 = 0, or repeated eigenvalues) are spread to 8 ulps apart (a backward perturbation of
  A_k of that size).
* Roots that matter at large t (``|mu| >= 0.9`` or condition number >= 100, and not weakly
  coupled to a refined pole) get one Newton step on f evaluated with per-mode solves refined by
  a double-double residual against the original A_k: without it, a root inherits
  ``eps kappa`` from the Schur form and ``L_t`` an error ``t eps kappa`` (1e-10 at t = 2000 for
  beta = 0.99). Modes whose Schur form is not accurate enough (pole condition > 1e6: nearly
  defective blocks, whose computed eigenvalues are split by ~ eps^(1/3)) use refined solves
  everywhere.
* Nearly defective clusters of T's roots (condition number > 1e5: large residues that cancel)
  are integrated on a circle ``Gamma`` (centre c, radius r = 2.5 x the cluster's spread, every
  other root and pole at least 2 r away) of the coupled map's own resolvent,
  ``l^T (mu - T)^-1 X = l^T G X + a b_X / f``, analytic at every per-mode pole:
  ``sum_{j in J} res_j mu_j^t = (1/2 pi i) oint_Gamma mu^t l^T (mu - T)^-1 Y_0 dmu`` by the
  trapezoidal rule at 64 nodes, which then act as roots. The circle amplifies rounding by
  ``~ exp(t r / |c|)``: it is used for ``t r / |c| <= 64/6``, the member roots beyond (where
  their cancellation has faded); the relative difference of the two at the switch is added to
  the error estimate beyond it.
* A free block (``r_k`` above) with well-conditioned eigenvalues is a sum over those
  (double-double) eigenvalues, more nodes; one that is not (nilpotent, Jordan) uses
  repeated squaring of ``[[A_k, r^S_k], [0, 1]]``.
* Divergent settings (rate > 1) never overflow: every sum is scaled by ``exp(-m_t)``,
  ``m_t = max(0, t max_j log|mu_j|)``, and ``log |L_t|`` is returned.
* ``error_estimate``: eps times the sum of the terms' magnitudes (each times its condition
  number and ``1 + t |log mu|``), over ``|L_t|``; it is pessimistic by orders of magnitude in
  the tests, except where the roots of a degenerate cluster are used (below).

**Far modes by multipoles.** From ``TREE_MIN`` poles on, the sums over modes at a point are
split (``_FarField``, ``theory.cauchy_tree``): the modes with a pole in a near leaf of a kd-tree
of the poles, the point's own mode and the modes with a pole conditioned worse than
``TREE_COND`` are summed exactly as above; every other pole enters through the multipole moments
of its node as the partial fraction ``(dhat . v)(w . X) / (mu - lambda)`` (v, w its right and left
eigenvectors in R_k), the far poles of exactly summed modes being subtracted again. Aberth's
(pole, root) pairs are dipoles on a second tree over the observable poles (moments updated
where roots moved). Points and centres are differenced as ``(hi - C) + (lo + delta)``, so a
root 1e-19 from its pole in a cluster of poles 8 ulps apart is resolved as before. The series
are cut below 1e-17 of the sum of their terms' magnitudes; the condition-number and residual
scales of far modes use monopole terms (factors of order one: they only choose thresholds).

**Limits.** The set-up is O(N n) below ``TREE_MIN`` poles (0.7 s for N = 1000 entries, n = 3000
roots), about O(n log n) above (an ungrouped 10^5-mode spectrum: ~30 s on 2 cores); the state
of every mode (``state_at_step``, hence schedules' segments) and the free parts of modes with a
drive-unobservable block (heavy ball at beta = 0) are still summed directly, O(N n). An
eigenvalue seen by the drive but not excited by the coupling (impossible for the shipped methods unless the
coupling is zero everywhere, which is handled) is refused with a ``ValueError``. A cluster in
which a defective block's eigenvalue coincides exactly with other modes' eigenvalues (tau2 = 0
and a critically damped mode: every heavy-ball mode then has the eigenvalue beta) is exact only
while its circle is used (``t <= 64/6 |c| / r``); beyond, its flagged ``error_estimate`` covers
the error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numba import njit, prange

from sgdyn.theory import cauchy_tree
from sgdyn.theory.cauchy_tree import far_point, far_value, series, traverse
from sgdyn.theory.system import ModeArrays

__all__ = ["JumpAhead", "CoupledSpectrum", "spectrum", "loss_at_steps", "state_at_step",
           "loss_at_steps_piecewise", "check_steps", "OVERFLOW_GUARD"]

EPS = np.finfo(float).eps
OVERFLOW_GUARD = 1e200          # the value stored for a loss beyond it (flagged in ``overflow``)
UNOBSERVABLE_TOL = 1e-13        # relative singular value of the observability matrix
CLUSTER_KAPPA = 1e5             # eigenvalue condition number above which roots are clustered
NODES = 64                      # trapezoidal nodes on a cluster's circle
CLUSTER_MODES = 64              # a circle enclosing poles of more modes is not used
MAX_SWEEPS = 300                # Aberth sweeps
START = 1e-8                    # initial offset of a root from its pole, per nearest-pole distance
POLISH_RADIUS = 0.9             # roots at least this large get an accurate Newton step ...
POLISH_KAPPA = 100.0            # ... and so do roots with a condition number above this
REFINE_COND = 1e6               # modes with a pole condition number above this use refined solves
FREE_COND = 1e6                 # free blocks with poles this well conditioned use their eigenvalues
TREE_MIN = 6000                 # from this many poles on, far modes are summed by multipoles ...
TREE_COND = 1e4                 # ... except modes with a pole conditioned worse than this
# truncation of the far sums (``cauchy_tree.terms_table``): the modes' at the rounding level,
# Aberth's (pole, root) pairs' looser: they only steer the iteration, whose fixed point
# f(mu) = 0 does not depend on them
TERMS = cauchy_tree.terms_table(cauchy_tree.TOL)
PAIR_TERMS = cauchy_tree.terms_table(1e-8)


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JumpAhead:
    """Expected loss at the requested steps.

    ``loss[i]`` is ``L_{steps[i]}``; where ``|L_t|`` would exceed ``OVERFLOW_GUARD`` (a divergent
    setting at large t) it holds ``+-OVERFLOW_GUARD`` and ``overflow[i]`` is set, the value itself
    being ``exp(log_loss[i])``. ``error_estimate`` is the estimated relative rounding error of each
    value (from the sizes of the cancelling terms). ``rate`` is the spectral radius of the coupled
    map (``L_t - L_inf ~ rate^t``); ``diverges`` is ``rate > 1``.
    """

    steps: np.ndarray
    loss: np.ndarray
    log_loss: np.ndarray
    overflow: np.ndarray
    error_estimate: np.ndarray
    diverges: bool
    rate: float
    reason: str

    @property
    def final(self) -> float:
        return float(self.loss[-1])


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _check_arrays(arrays) -> ModeArrays:
    if not isinstance(arrays, ModeArrays):
        raise ValueError(f"arrays must be a theory.system.ModeArrays, got {type(arrays).__name__}")
    A = np.asarray(arrays.A)
    if A.ndim != 3 or A.shape[1] != A.shape[2] or A.shape[0] < 1 or A.shape[1] < 1:
        raise ValueError(f"arrays.A must have shape (N, q, q), got {A.shape}")
    N, q = A.shape[:2]
    for name in ("coupling", "source", "drive", "loss", "X0"):
        v = np.asarray(getattr(arrays, name))
        if v.shape != (N, q):
            raise ValueError(f"arrays.{name} must have shape ({N}, {q}), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"arrays.{name} contains NaN or inf")
    if not np.all(np.isfinite(A)):
        raise ValueError("arrays.A contains NaN or inf")
    if not np.isfinite(arrays.floor):
        raise ValueError(f"arrays.floor must be finite, got {arrays.floor}")
    return arrays


def check_steps(steps) -> np.ndarray:
    """Sorted unique int64 steps >= 0 from an integer or a 1-D sequence of integers."""
    try:
        raw = np.asarray(steps)
    except Exception as exc:  # pragma: no cover - numpy raises only for exotic objects
        raise ValueError(f"steps must be integers >= 0 ({exc})") from None
    raw = np.atleast_1d(raw)
    if raw.ndim != 1 or raw.size == 0:
        raise ValueError(f"steps must be a non-empty 1-D sequence of integers >= 0, got shape {raw.shape}")
    if raw.dtype == bool or raw.dtype.kind not in "iuf":
        raise ValueError(f"steps must be integers >= 0, got dtype {raw.dtype}")
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            raise ValueError("steps must be integers >= 0, got non-integral values")
        if np.any(np.abs(raw) > 2.0 ** 62):
            raise ValueError("steps must be below 2^62")
    out = raw.astype(np.int64)
    if np.any(out < 0):
        raise ValueError(f"steps must be integers >= 0, got {int(out.min())}")
    return np.unique(out)


# --------------------------------------------------------------------------------------------
# per-mode Schur forms
# --------------------------------------------------------------------------------------------
def _householder(v: np.ndarray) -> np.ndarray:
    """Unitary Hermitian H (G, m, m) with ``H v = alpha e1`` for unit vectors v (G, m)."""
    G, m = v.shape
    phase = np.where(np.abs(v[:, 0]) > 0, v[:, 0] / np.maximum(np.abs(v[:, 0]), 1e-300), 1.0)
    w = v.copy()
    w[:, 0] += phase                       # v - alpha e1 with alpha = -phase (no cancellation)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    return np.eye(m)[None] - 2.0 * w[:, :, None] * w[:, None, :].conj()


def _schur(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex Schur forms ``A = Q R Q^H`` of a stack (G, m, m), by deflation: an eigenvalue, the
    SVD null vector of ``A - lambda I`` (residual ~ eps ||A|| even for a Jordan block), a
    Householder reflection onto it, and the same on the trailing block."""
    G, m = A.shape[:2]
    R = A.astype(complex).copy()
    Q = np.broadcast_to(np.eye(m, dtype=complex), (G, m, m)).copy()
    for i in range(m - 1):
        M = R[:, i:, i:]
        lam = np.linalg.eigvals(M)
        pick = lam[np.arange(G), np.argmax(np.abs(lam), axis=1)]
        _, _, Vh = np.linalg.svd(M - pick[:, None, None] * np.eye(m - i)[None])
        H = _householder(Vh[:, -1, :].conj())
        R[:, :, i:] = R[:, :, i:] @ H
        R[:, i:, :] = H @ R[:, i:, :]          # H is Hermitian
        Q[:, :, i:] = Q[:, :, i:] @ H
        R[:, i + 1:, i] = 0.0                  # the residual (a backward error ~ eps ||A||)
    return Q, R


@dataclass(frozen=True)
class _Structure:
    """Per-mode Schur data of one ModeArrays (everything that does not depend on X0 / S)."""

    N: int
    q: int
    A: np.ndarray          # (N, q, q) the original real maps
    c: np.ndarray          # (N, q) the original coupling
    Q: np.ndarray          # (N, q, q) unitary
    R: np.ndarray          # (N, q, q) upper triangular; its diagonal is hi + lo
    hi: np.ndarray         # (N q,) complex: diag(R_k), mode-major ...
    lo: np.ndarray         # ... and its double-double correction (refined eigenvalues of A_k)
    moved: np.ndarray      # (N q,) bool: poles moved apart from a tie (not those of A_k)
    refine: np.ndarray     # (N,) bool: modes whose Schur form is not accurate enough (nearly
                           # defective or far from normal): their solves are refined
    cond: np.ndarray       # (N q,) condition number of each pole (inf: within-mode cluster)
    unobs: np.ndarray      # (N,) int: leading Schur coordinates spanning the drive-unobservable part
    anchors: np.ndarray    # indices into hi/lo of the poles of f (all drive-observable poles)
    chat: np.ndarray       # Q^H c
    dhat: np.ndarray       # Q^T d   (d^T Q as a vector)
    lhat: np.ndarray       # Q^T l
    free: bool             # coupling identically zero: no roots, every mode evolves freely
    far: "_FarField | None" = None   # multipole data of the per-mode poles (``_far_field``)

    @property
    def poles(self) -> np.ndarray:
        return self.hi + self.lo


def _structure(arr: ModeArrays) -> _Structure:
    A = np.ascontiguousarray(arr.A, dtype=float)
    N, q = A.shape[:2]
    c = np.ascontiguousarray(arr.coupling, dtype=float)
    d = np.asarray(arr.drive, dtype=float)
    l = np.asarray(arr.loss, dtype=float)
    free = not np.any(c != 0.0)
    # observability matrix [d; d A; ...; d A^(q-1)] and its null space (A-invariant)
    rows = [d]
    for _ in range(q - 1):
        rows.append(np.einsum("ki,kij->kj", rows[-1], A))
    O = np.stack(rows, axis=1)
    _, sv, Vh = np.linalg.svd(O)
    top = sv[:, 0]
    unobs = np.where(top > 0, np.sum(sv <= UNOBSERVABLE_TOL * top[:, None], axis=1), q)
    if free:
        unobs = np.full(N, q)
    Q = np.empty((N, q, q), dtype=complex)
    R = np.empty((N, q, q), dtype=complex)
    for m in np.unique(unobs):
        sel = np.nonzero(unobs == m)[0]
        As = A[sel]
        if m == 0 or m == q:
            Q[sel], R[sel] = _schur(As)
            continue
        # block Schur: orthonormal basis [ker O, (ker O)^perp], then Schur of each diagonal block
        V = np.concatenate([Vh[sel, q - m:, :], Vh[sel, :q - m, :]], axis=1).transpose(0, 2, 1)
        A1 = V.transpose(0, 2, 1) @ As @ V
        Qa, Ra = _schur(A1[:, :m, :m])
        Qb, Rb = _schur(A1[:, m:, m:])
        W = np.zeros((sel.size, q, q), dtype=complex)
        W[:, :m, :m], W[:, m:, m:] = Qa, Qb
        Rs = np.zeros((sel.size, q, q), dtype=complex)
        Rs[:, :m, :m], Rs[:, m:, m:] = Ra, Rb
        Rs[:, :m, m:] = Qa.conj().transpose(0, 2, 1) @ A1[:, :m, m:] @ Qb
        Q[sel], R[sel] = V @ W, Rs
    Q = np.ascontiguousarray(Q)
    R = np.ascontiguousarray(R)
    hi = np.ascontiguousarray(np.diagonal(R, axis1=1, axis2=2)).reshape(-1).copy()
    lo = np.zeros_like(hi)
    anchors = np.nonzero(np.tile(np.arange(q), N) >= np.repeat(unobs, q))[0].astype(np.int64)
    ok = np.zeros(hi.size, np.bool_)
    cond = np.zeros(hi.size)
    _refine_poles(np.arange(hi.size, dtype=np.int64), A, Q, R, hi, lo, ok, cond)
    cond = np.where(ok, cond, np.inf)
    col = np.tile(np.arange(q), N)
    observable = col >= np.repeat(unobs, q)
    # the resolvent must be refined near ill-conditioned poles seen by the drive
    refine = ((cond > REFINE_COND) & observable).reshape(N, q).any(axis=1)
    # renormalise (hi, lo) so that hi is the double nearest to the refined eigenvalue
    tot = hi + lo
    lo = (hi - tot) + lo
    hi = tot
    moved = _separate_ties(hi, lo, anchors)
    R[:, np.arange(q), np.arange(q)] = hi.reshape(N, q)
    QH = Q.conj().transpose(0, 2, 1)
    return _Structure(N, q, A, c, Q, R, hi, lo, moved, refine, cond, unobs.astype(np.int64), anchors,
                      np.ascontiguousarray(np.einsum("kij,kj->ki", QH, c)),
                      np.ascontiguousarray(np.einsum("kji,kj->ki", Q, d)),
                      np.ascontiguousarray(np.einsum("kji,kj->ki", Q, l)), free)


@dataclass(frozen=True)
class _FarField:
    """The per-mode poles as point charges for the multipole sums (``theory.cauchy_tree``): each
    pole ``lambda_g`` (mode k, Schur coordinate i) with right and left eigenvectors ``v_g, w_g`` of
    R_k (``w_g^T v_g = 1``) contributes ``(dhat . v_g)(w_g . X) / (mu - lambda_g)`` to
    ``d^T G(mu) X`` (partial fractions of the resolvent). Modes with a pole conditioned worse
    than ``TREE_COND`` (nearly defective blocks, whose residues cancel) and modes with refined
    solves are summed exactly at every point (``always``). Without a tree (fewer than
    ``TREE_MIN`` poles) every mode is summed exactly, as one leaf."""

    tree: cauchy_tree.Tree
    xh: np.ndarray         # poles (hi, lo) in tree order
    xl: np.ndarray
    hi: np.ndarray         # poles (hi, lo), mode-major
    lo: np.ndarray
    always: np.ndarray     # modes summed exactly at every point
    dv: np.ndarray         # (N q,) dhat . v_g
    lv: np.ndarray         # (N q,) lhat . v_g
    w: np.ndarray          # (N q, q) w_g
    crude: np.ndarray      # (N q, 3) |w.chat|^2 |v|^2, |dhat.v|^2 |w|^2, |u residue| (monopoles)
    agg: np.ndarray        # (nodes, 3) their sums per node

    @property
    def active(self) -> bool:
        return self.tree.n_nodes > 1

    def residues(self, *cols) -> np.ndarray:
        """``rho[g, c] = row_c[g] (w_g . X_c)`` for pairs (row, X) given as ``("d" | "l", X)``."""
        rho = np.zeros((self.dv.size, len(cols)), complex)
        if self.active:
            for c, (row, X) in enumerate(cols):
                wx = np.einsum("gi,gi->g", self.w, np.repeat(X, X.shape[1], axis=0))
                rho[:, c] = (self.dv if row == "d" else self.lv) * wx
        return rho

    def parts(self, rho) -> tuple:
        t = self.tree
        return (t.start, t.stop, t.left, t.right, t.centre, t.radius, t.perm, self.always,
                self.hi, self.lo, np.ascontiguousarray(rho), self.agg, np.any(rho != 0, axis=0))

    def moments(self, rho) -> np.ndarray:
        if not self.active:
            return np.zeros((1, rho.shape[1], 1), complex)
        t = self.tree
        return cauchy_tree.moments(t, self.xh, self.xl, rho[t.perm])


def _far_field(st: _Structure) -> _FarField:
    N, q = st.N, st.q
    poles = st.poles
    n = N * q
    if n < TREE_MIN or st.free:
        tree = cauchy_tree.build(poles, leaf=max(n, 1))
        z = np.zeros(n, complex)
        return _FarField(tree, st.hi[tree.perm], st.lo[tree.perm], st.hi, st.lo,
                         np.zeros(0, np.int64), z, z,
                         np.zeros((n, q), complex), np.zeros((n, 3)), np.zeros((1, 3)))
    V = np.zeros((N, q, q), complex)           # V[k, :, i] = v_i
    W = np.zeros((N, q, q), complex)           # W[k, i, :] = w_i
    hi = st.hi.reshape(N, q)
    lo = st.lo.reshape(N, q)
    R = st.R
    for i in range(q):
        v = np.zeros((N, q), complex)
        w = np.zeros((N, q), complex)
        v[:, i] = 1.0
        w[:, i] = 1.0
        for j in range(i - 1, -1, -1):
            d = (hi[:, i] - hi[:, j]) + (lo[:, i] - lo[:, j])
            acc = np.einsum("kl,kl->k", R[:, j, j + 1:i + 1], v[:, j + 1:i + 1])
            v[:, j] = acc / np.where(d != 0, d, np.inf)
        for j in range(i + 1, q):
            d = (hi[:, i] - hi[:, j]) + (lo[:, i] - lo[:, j])
            acc = np.einsum("kl,kl->k", w[:, i:j], R[:, i:j, j])
            w[:, j] = acc / np.where(d != 0, d, np.inf)
        V[:, :, i] = v
        W[:, i, :] = w
    cond = np.linalg.norm(V, axis=1) * np.linalg.norm(W, axis=2)           # (N, q)
    bad = st.refine | ~np.all(np.isfinite(cond) & (cond <= TREE_COND), axis=1)
    dv = np.einsum("ki,kij->kj", st.dhat, V)
    lv = np.einsum("ki,kij->kj", st.lhat, V)
    wc = np.einsum("kij,kj->ki", W, st.chat)
    dv[bad] = lv[bad] = wc[bad] = 0.0
    W[bad] = 0.0
    crude = np.stack([np.abs(wc) ** 2 * np.linalg.norm(V, axis=1) ** 2,
                      np.abs(dv) ** 2 * np.linalg.norm(W, axis=2) ** 2,
                      np.abs(dv * wc)], axis=-1).reshape(n, 3)
    crude = np.where(np.isfinite(crude), crude, 0.0)
    tree = cauchy_tree.build(poles)
    xh, xl = (np.ascontiguousarray(a[tree.perm]) for a in (st.hi, st.lo))
    agg = cauchy_tree.moments(tree, xh, xl, crude[tree.perm], order=1)[:, :, 0].real
    return _FarField(tree, xh, xl, st.hi, st.lo, np.nonzero(bad)[0].astype(np.int64), dv.reshape(n),
                     lv.reshape(n), np.ascontiguousarray(W.reshape(n, q)), crude, np.ascontiguousarray(agg))


def _separate_ties(hi: np.ndarray, lo: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Enforce a gap of at least ``g = 8 eps max|pole|`` between the poles of ``idx`` (in place):
    among poles whose imaginary parts agree to within g, sorted by real part, each is pushed to
    at least g beyond its predecessor (a cumulative maximum), and a moved pole loses its
    double-double part. A root between two poles is then resolved by its anchored offset; the
    change is an absolute backward perturbation of A_k's eigenvalues of order ``eps ||A_k||``
    (its effect on L_t, ~ t eps times the pole's weight, is that of rounding A_k's entries).
    Returns a mask (over all poles) of the moved ones."""
    moved_mask = np.zeros(hi.size, bool)
    if idx.size < 2:
        return moved_mask
    v = hi[idx] + lo[idx]
    g = 8 * EPS * max(float(np.abs(v).max()), 1e-300)
    order = np.lexsort((v.real, v.imag))
    im = v.imag[order]
    run = np.concatenate([[0], np.cumsum(np.diff(im) > g)])      # runs of equal imaginary part
    re_new = np.empty(idx.size)
    for r in np.unique(run[np.concatenate([[False], np.diff(run) == 0]) |
                           np.concatenate([np.diff(run) == 0, [False]])]):
        sel = order[run == r]
        o = sel[np.argsort(v.real[sel], kind="stable")]
        x = v.real[o]
        k = np.arange(x.size) * g
        pushed = np.maximum.accumulate(x - k) + k                 # x_i >= x_{i-1} + g
        moved = pushed != x
        if np.any(moved):
            j = idx[o[moved]]
            hi[j] = pushed[moved] + 1j * v.imag[o[moved]]
            lo[j] = 0.0
            moved_mask[j] = True
    return moved_mask


# --------------------------------------------------------------------------------------------
# numba kernels: sums over modes at anchored points mu = (hi[p] + lo[p]) + delta
# --------------------------------------------------------------------------------------------
@njit(cache=True, inline="always", error_model="numpy")
def _recip(z):
    """1 / z with one real division (z != 0; |z| > 1e-150)."""
    s = 1.0 / (z.real * z.real + z.imag * z.imag)
    return complex(z.real * s, -z.imag * s)


@njit(cache=True, inline="always", error_model="numpy")
def _diff(hi, lo, p, i, delta):
    """``(hi[p] + lo[p] + delta) - (hi[i] + lo[i])``, exact to rounding for nearby poles."""
    return (hi[p] - hi[i]) + ((lo[p] - lo[i]) + delta)


@njit(cache=True, error_model="numpy")
def _mode_solves(k, p, delta, hi, lo, R, chat, dhat, x, y, inv):
    """``x = (mu - R_k)^-1 chat_k`` (back substitution), ``y^T = dhat_k^T (mu - R_k)^-1``
    (forward substitution), ``inv_i = 1 / (mu - r_ii)``, with exact anchored differences."""
    q = x.shape[0]
    for i in range(q):
        dz = _diff(hi, lo, p, k * q + i, delta)
        inv[i] = _recip(dz) if abs(dz.real) + abs(dz.imag) > 1e-150 else 1.0 / dz
    for i in range(q - 1, -1, -1):
        acc = chat[k, i]
        for m in range(i + 1, q):
            acc += R[k, i, m] * x[m]
        x[i] = acc * inv[i]
    for i in range(q):
        acc = dhat[k, i]
        for m in range(i):
            acc += y[m] * R[k, m, i]
        y[i] = acc * inv[i]


@njit(cache=True, inline="always", error_model="numpy")
def _solve3(k, zh, zl, lop, hi, lo, R, chat, dhat):
    """q = 3, unrolled: ``x = (mu - R_k)^-1 chat_k``, ``y^T = dhat_k^T (mu - R_k)^-1`` with
    ``mu - r_ii = (zh - hi_i) + ((lo_p - lo_i) + delta)``, ``zl = delta``."""
    b = 3 * k
    a0 = (zh - hi[b]) + ((lop - lo[b]) + zl)
    a1 = (zh - hi[b + 1]) + ((lop - lo[b + 1]) + zl)
    a2 = (zh - hi[b + 2]) + ((lop - lo[b + 2]) + zl)
    s0 = 1.0 / (a0.real * a0.real + a0.imag * a0.imag)
    s1 = 1.0 / (a1.real * a1.real + a1.imag * a1.imag)
    s2 = 1.0 / (a2.real * a2.real + a2.imag * a2.imag)
    i0 = complex(a0.real * s0, -a0.imag * s0)
    i1 = complex(a1.real * s1, -a1.imag * s1)
    i2 = complex(a2.real * s2, -a2.imag * s2)
    r01 = R[k, 0, 1]
    r02 = R[k, 0, 2]
    r12 = R[k, 1, 2]
    x2 = chat[k, 2] * i2
    x1 = (chat[k, 1] + r12 * x2) * i1
    x0 = (chat[k, 0] + r01 * x1 + r02 * x2) * i0
    y0 = dhat[k, 0] * i0
    y1 = (dhat[k, 1] + y0 * r01) * i1
    y2 = (dhat[k, 2] + y0 * r02 + y1 * r12) * i2
    return x0, x1, x2, y0, y1, y2


@njit(cache=True, error_model="numpy")
def _split(zh, zl, own, mf, tag, stack, far, near, pstamp, mstamp, modes, q):
    """The modes summed exactly at z: those with a pole in a near leaf of the pole tree, the
    mode ``own`` of the point's anchor pole (a leaf of coincident poles has radius 0 and is far
    even from a point next to it) and the ``always`` ones (stamped ``tag``, listed in ``modes``;
    their near poles stamped in ``pstamp``). Without a tree (one node), every mode. Returns
    (far nodes, near modes)."""
    start, stop, left, right, centre, radius, perm, always = mf[:8]
    if start.size == 1:
        for k in range(modes.size):
            modes[k] = k
        return 0, modes.size
    nf, nn = traverse(zh, zl, left, right, centre, radius, cauchy_tree.THETA, stack, far, near)
    cnt = 0
    for a in range(nn):
        b = near[a]
        for t in range(start[b], stop[b]):
            g = perm[t]
            pstamp[g] = tag
            k = g // q
            if mstamp[k] != tag:
                mstamp[k] = tag
                modes[cnt] = k
                cnt += 1
    for a in range(always.size + 1):
        k = always[a] if a < always.size else own
        if mstamp[k] != tag:
            mstamp[k] = tag
            modes[cnt] = k
            cnt += 1
    return nf, cnt


@njit(cache=True, error_model="numpy")
def _far_sums(zh, zl, mf, M, nf, far, k_list, nk, tag, pstamp, q, val, der, crude):
    """Far field at ``z = zh + zl`` (unevaluated, as ``cauchy_tree.traverse``):
    ``val[c] = sum rho_c / (z - lambda)``, ``der[0] = sum rho_0 / (z - lambda)^2`` over the poles of the far nodes (multipoles), less the poles of the exactly summed modes
    ``k_list[:nk]`` that lie in far nodes (their modes are already summed in full);
    ``crude = (sum ||G c||^2, sum ||d^T G||^2, sum |u_k|)`` of the far nodes (monopole terms:
    condition numbers and residual scales only)."""
    centre, radius, hi, lo, rho, agg, live = mf[4], mf[5], mf[8], mf[9], mf[10], mf[11], mf[12]
    nc = M.shape[1]
    for c in range(nc):
        val[c] = 0.0
        der[c] = 0.0
    for c in range(3):
        crude[c] = 0.0
    for a in range(nf):
        b = far[a]
        w, x, K = far_point(b, zh, zl, centre, radius, TERMS, M.shape[2])
        for c in range(nc):
            if live[c]:         # a charge that is zero everywhere (no label noise: S = 0)
                S, T = series(M, b, c, x, K, c == 0)
                val[c] += w * S
                der[c] += w * w * T
        aw = abs(w)
        crude[0] += agg[b, 0] * aw * aw
        crude[1] += agg[b, 1] * aw * aw
        crude[2] += agg[b, 2] * aw
    if centre.size == 1:
        return
    for a in range(nk):
        k = k_list[a]
        for i in range(q):
            g = k * q + i
            if pstamp[g] != tag:
                iv = 1.0 / ((zh - hi[g]) + (zl - lo[g]))
                for c in range(nc):
                    r = rho[g, c]
                    val[c] -= r * iv
                    der[c] -= r * iv * iv


@njit(cache=True, error_model="numpy")
def _scratch(N, q, nodes, nc):
    """A chunk's work arrays for ``_split_sums``: traversal stack, far and near node lists (of
    ``nodes``), pole and mode stamps, the list of exactly summed modes, far values and
    derivatives of ``nc`` charges, crude scales."""
    return (np.empty(256, np.int64), np.empty(nodes, np.int64), np.empty(nodes, np.int64),
            np.full(N * q, -1, np.int64), np.full(N, -1, np.int64), np.empty(N, np.int64),
            np.empty(nc, np.complex128), np.empty(nc, np.complex128), np.empty(3))


@njit(cache=True, error_model="numpy")
def _split_sums(zh, zl, own, mf, M, tag, work, q):
    """``_split`` and ``_far_sums`` at ``z = zh + zl`` into ``work`` (``_scratch``): returns the
    number of exactly summed modes, listed in ``work[5]``; far values in ``work[6:9]``."""
    stack, far, near, pstamp, mstamp, modes, val, der, crude = work
    nf, nk = _split(zh, zl, own, mf, tag, stack, far, near, pstamp, mstamp, modes, q)
    _far_sums(zh, zl, mf, M, nf, far, modes, nk, tag, pstamp, q, val, der, crude)
    return nk


@njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def _pair_sum(zr, zi, wr, wi, hr, hm, lr, lm, er, ei, start, stop):
    """``sum_i -e_i / ((mu - lambda_i)(mu - mu_i))`` over i in [start, stop), in real arithmetic
    on contiguous arrays (vectorised): ``mu - lambda_i = (zr - hr_i) + (wr - lr_i)`` (and the
    imaginary parts), ``mu - mu_i = (mu - lambda_i) - e_i``."""
    sr = 0.0
    si = 0.0
    for i in range(start, stop):
        ar = (zr - hr[i]) + (wr - lr[i])
        ai = (zi - hm[i]) + (wi - lm[i])
        br = ar - er[i]
        bi = ai - ei[i]
        cr = ar * br - ai * bi
        ci = ar * bi + ai * br
        g = 1.0 / (cr * cr + ci * ci)
        sr -= (er[i] * cr + ei[i] * ci) * g
        si -= (ei[i] * cr - er[i] * ci) * g
    return sr, si


def _chunks(n: int) -> int:
    """Chunks of points per kernel call: each allocates its scratch (stamps over every pole) once,
    and numba hands a thread a contiguous run of chunks."""
    return max(1, min(n, 16))


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def _aberth_sweep(active, anchor, delta, apoles, hi, lo, R, chat, dhat, mf, Mu, pf, Md, er, ei,
                  hr, hm, lr, lm, step, kappa, resid, nchunk, pairs):
    """One Jacobi sweep of Aberth's method for the roots ``active`` (indices into anchor/delta):
    ``step_j = 1 / (f'/f + sum_i 1/(mu_j - lambda_i) - sum_{i != j} 1/(mu_j - mu_i))``, the pole
    and root sums paired (root i with pole apoles[i], ``e_i = mu_i - lambda_i`` = er + i ei):
    ``1/(mu_j - lambda_i) - 1/(mu_j - mu_i) = -e_i / ((mu_j - lambda_i)(mu_j - mu_i))``, with
    ``mu_j - lambda_i = (hi_p - hi_i) + (lo_p - lo_i + delta_j)`` from the pairs' poles
    ``hr + i hm``, ``lr + i lm`` (in the pair tree's order, ``pf``). Near modes and pairs exactly,
    far ones by multipoles (``mf``, ``Mu``: moments of u; ``Md``: of the dipoles).
    ``kappa_j = ||G c|| ||d^T G|| / |f'|`` (the eigenvalue condition number) and ``resid_j = |f| /
    (1 + sum_k |u_k|_1)`` at the point evaluated. Fast math is limited to reassociation
    (vectorised sums); inf and NaN keep their meaning. Without ``pairs`` (the first sweep, every root
    still ``1e-8`` of a pole spacing from its pole: the pair terms are that small) it is a
    Newton step on P."""
    N, q = chat.shape
    pstart, pstop, pleft, pright, pcentre, pradius, tpos = pf
    nn_ = mf[0].size
    for ch in prange(nchunk):
        work = _scratch(N, q, max(nn_, pstart.size), Mu.shape[1])
        stack, far, near = work[0], work[1], work[2]
        modes, val, der, crude = work[5], work[6], work[7], work[8]
        x = np.empty(q, np.complex128)
        y = np.empty(q, np.complex128)
        inv = np.empty(q, np.complex128)
        for jj in range(ch * active.size // nchunk, (ch + 1) * active.size // nchunk):
            j = active[jj]
            p = anchor[j]
            dj = delta[j]
            zh = hi[p]
            lop = lo[p]
            zl = lop + dj
            nk = _split_sums(zh, zl, p // q, mf, Mu, jj, work, q)
            f = 1.0 - val[0]
            fp = der[0]
            xn = crude[0]
            yn = crude[1]
            us = 1.0 + crude[2]
            for a in range(nk):
                k = modes[a]
                if q == 3:
                    x0, x1, x2, y0, y1, y2 = _solve3(k, zh, dj, lop, hi, lo, R, chat, dhat)
                    u = y0 * chat[k, 0] + y1 * chat[k, 1] + y2 * chat[k, 2]
                    fp += y0 * x0 + y1 * x1 + y2 * x2
                    xn += (x0.real * x0.real + x0.imag * x0.imag + x1.real * x1.real
                           + x1.imag * x1.imag + x2.real * x2.real + x2.imag * x2.imag)
                    yn += (y0.real * y0.real + y0.imag * y0.imag + y1.real * y1.real
                           + y1.imag * y1.imag + y2.real * y2.real + y2.imag * y2.imag)
                else:
                    _mode_solves(k, p, dj, hi, lo, R, chat, dhat, x, y, inv)
                    u = 0.0j
                    for i in range(q):
                        u += y[i] * chat[k, i]
                        fp += y[i] * x[i]
                        xn += x[i].real * x[i].real + x[i].imag * x[i].imag
                        yn += y[i].real * y[i].real + y[i].imag * y[i].imag
                f -= u
                us += abs(u.real) + abs(u.imag)
            kappa[j] = math.sqrt(xn * yn) / abs(fp) if fp != 0.0 else np.inf
            resid[j] = abs(f) / us
            # pole and root sums, paired; the self term is 1 / (mu_j - lambda_j)
            s = 1.0 / _diff(hi, lo, p, apoles[j], dj)
            zr = zh.real
            zi = zh.imag
            wr = lop.real + dj.real
            wi = lop.imag + dj.imag
            if not pairs:
                nf2, nn2 = 0, 0
            elif pstart.size == 1:
                nf2, nn2 = 0, 1
                near[0] = 0
            else:
                nf2, nn2 = traverse(zh, zl, pleft, pright, pcentre, pradius, cauchy_tree.THETA,
                                    stack, far, near)
            sr = 0.0
            si = 0.0
            own = tpos[j]
            for a in range(nn2):
                b = near[a]
                lo_, hi_ = pstart[b], pstop[b]
                if lo_ <= own < hi_:
                    tr, ti = _pair_sum(zr, zi, wr, wi, hr, hm, lr, lm, er, ei, lo_, own)
                    sr += tr
                    si += ti
                    lo_ = own + 1
                tr, ti = _pair_sum(zr, zi, wr, wi, hr, hm, lr, lm, er, ei, lo_, hi_)
                sr += tr
                si += ti
            s += complex(sr, si)
            for a in range(nf2):
                S, T, w = far_value(Md, far[a], 0, zh, zl, pcentre, pradius, PAIR_TERMS, False)
                s += w * S
            den = fp / f + s if f != 0.0 else np.inf + 0.0j
            step[j] = 1.0 / den if den != 0.0 else 0.0j


# -- double-double helpers (error-free transformations, no fast math) -------------------------
@njit(cache=True, inline="always", error_model="numpy")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True, inline="always", error_model="numpy")
def _two_prod(a, b):
    p = a * b
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(cache=True, inline="always", error_model="numpy")
def _dd_add(sh, sl, a, b):
    """(sh + sl) + (a + b) for a product (a, b) = _two_prod(..)."""
    h, e = _two_sum(sh, a)
    return h, sl + e + b


@njit(cache=True, inline="always", error_model="numpy")
def _dd_sub_cprod(rh, rl, ih, il, z, x):
    """The double-double complex accumulator ``(rh + rl) + i (ih + il)`` minus ``z x``, each
    real product exact (``_two_prod``)."""
    a1, b1 = _two_prod(z.real, x.real)
    rh, rl = _dd_add(rh, rl, -a1, -b1)
    a1, b1 = _two_prod(z.imag, x.imag)
    rh, rl = _dd_add(rh, rl, a1, b1)
    a1, b1 = _two_prod(z.real, x.imag)
    ih, il = _dd_add(ih, il, -a1, -b1)
    a1, b1 = _two_prod(z.imag, x.real)
    ih, il = _dd_add(ih, il, -a1, -b1)
    return rh, rl, ih, il


@njit(cache=True, error_model="numpy")
def _refined_solve(k, p, delta, hi, lo, A, Q, R, rhs, xs, x, r, inv):
    """``xs = (mu - A_k)^-1 rhs`` in Schur coordinates (rhs complex, original coordinates): the
    Schur solve, refined once with the residual ``rhs - (mu - A_k) x`` accumulated in
    double-double from the original entries of A_k. This recovers the data's own resolvent where
    the Schur form is not accurate enough: near a (nearly) defective block, whose computed
    eigenvalues are split by ~ eps^(1/3), or where A_k is far from normal."""
    q = rhs.shape[0]
    for i in range(q):
        dz = _diff(hi, lo, p, k * q + i, delta)
        inv[i] = _recip(dz) if abs(dz.real) + abs(dz.imag) > 1e-150 else 1.0 / dz
    for i in range(q - 1, -1, -1):
        acc = 0.0j
        for m in range(q):
            acc += Q[k, m, i].conjugate() * rhs[m]
        for m in range(i + 1, q):
            acc += R[k, i, m] * xs[m]
        xs[i] = acc * inv[i]
    for i in range(q):
        acc = 0.0j
        for m in range(q):
            acc += Q[k, i, m] * xs[m]
        x[i] = acc
    zh = hi[p]
    zl = lo[p] + delta
    for i in range(q):
        rh, rl = rhs[i].real, 0.0
        ih, il = rhs[i].imag, 0.0
        rh, rl, ih, il = _dd_sub_cprod(rh, rl, ih, il, zh, x[i])
        # zl x: large where x is (near a pole)
        rh, rl, ih, il = _dd_sub_cprod(rh, rl, ih, il, zl, x[i])
        for m in range(q):
            a1, b1 = _two_prod(A[k, i, m], x[m].real)
            rh, rl = _dd_add(rh, rl, a1, b1)
            a1, b1 = _two_prod(A[k, i, m], x[m].imag)
            ih, il = _dd_add(ih, il, a1, b1)
        r[i] = complex(rh + rl, ih + il)
    for i in range(q - 1, -1, -1):           # correction, stored in x
        acc = 0.0j
        for m in range(q):
            acc += Q[k, m, i].conjugate() * r[m]
        for m in range(i + 1, q):
            acc += R[k, i, m] * x[m]
        x[i] = acc * inv[i]
    for i in range(q):
        xs[i] += x[i]


@njit(cache=True, error_model="numpy")
def _refined_sums(k, p, dj, hi, lo, A, Q, R, c, X0, S, dhat, lhat, v, xs, x, r, inv):
    """Mode k's terms of (u, f', a, b0, bS) at mu from refined solves (see ``_refined_solve``)."""
    q = c.shape[1]
    for i in range(q):
        v[i] = c[k, i]
    _refined_solve(k, p, dj, hi, lo, A, Q, R, v, xs, x, r, inv)
    u = 0.0j
    a = 0.0j
    for i in range(q):
        u += dhat[k, i] * xs[i]
        a += lhat[k, i] * xs[i]
    for i in range(q):                        # v = G c in original coordinates
        acc = 0.0j
        for m in range(q):
            acc += Q[k, i, m] * xs[m]
        v[i] = acc
    _refined_solve(k, p, dj, hi, lo, A, Q, R, v, xs, x, r, inv)
    fp = 0.0j
    for i in range(q):
        fp += dhat[k, i] * xs[i]
    for i in range(q):
        v[i] = X0[k, i]
    _refined_solve(k, p, dj, hi, lo, A, Q, R, v, xs, x, r, inv)
    b0 = 0.0j
    for i in range(q):
        b0 += dhat[k, i] * xs[i]
    for i in range(q):
        v[i] = S[k, i]
    _refined_solve(k, p, dj, hi, lo, A, Q, R, v, xs, x, r, inv)
    bS = 0.0j
    for i in range(q):
        bS += dhat[k, i] * xs[i]
    return u, fp, a, b0, bS


@njit(cache=True, parallel=True, error_model="numpy")
def _polish(anchor, delta, hi, lo, A, c, Q, R, chat, dhat, lhat, mf, M, out, nchunk):
    """One Newton step on the secular equation with an accurate f (refined per-mode solves for the
    exactly summed modes, ``_split``; multipoles ``M`` of (u, a) for the far ones), and the
    structural sums at the point: out[:, 0..7] = f (accurate), f', a, sum|u|, ||G c||^2,
    ||d^T G||^2, Newton step f / f', f (plain double evaluation)."""
    N, q = chat.shape
    for ch in prange(nchunk):
        work = _scratch(N, q, mf[0].size, M.shape[1])
        modes, val, der, crude = work[5], work[6], work[7], work[8]
        x = np.empty(q, np.complex128)
        xs = np.empty(q, np.complex128)
        y = np.empty(q, np.complex128)
        r = np.empty(q, np.complex128)
        v = np.empty(q, np.complex128)
        inv = np.empty(q, np.complex128)
        for j in range(ch * anchor.size // nchunk, (ch + 1) * anchor.size // nchunk):
            p = anchor[j]
            dj = delta[j]
            zh = hi[p]
            zl = lo[p] + dj
            nk = _split_sums(zh, zl, p // q, mf, M, j, work, q)
            f_hi, f_lo = _two_sum(1.0, -val[0].real)
            fi_hi = -val[0].imag
            fi_lo = 0.0
            fp = der[0]
            a = val[1]
            us = crude[2]
            xn = crude[0]
            yn = crude[1]
            fd = 1.0 - val[0]
            for kk in range(nk):
                k = modes[kk]
                _mode_solves(k, p, dj, hi, lo, R, chat, dhat, x, y, inv)
                for i in range(q):
                    fd -= y[i] * chat[k, i]
                for i in range(q):
                    v[i] = c[k, i]
                _refined_solve(k, p, dj, hi, lo, A, Q, R, v, xs, x, r, inv)
                u = 0.0j
                for i in range(q):
                    u += dhat[k, i] * xs[i]
                    fp += y[i] * xs[i]
                    a += lhat[k, i] * xs[i]
                    xn += xs[i].real ** 2 + xs[i].imag ** 2
                    yn += y[i].real ** 2 + y[i].imag ** 2
                f_hi, e = _two_sum(f_hi, -u.real)
                f_lo += e
                fi_hi, e = _two_sum(fi_hi, -u.imag)
                fi_lo += e
                us += abs(u)
            f = complex(f_hi + f_lo, fi_hi + fi_lo)
            out[j, 0] = f
            out[j, 1] = fp
            out[j, 2] = a
            out[j, 3] = us
            out[j, 4] = xn
            out[j, 5] = yn
            out[j, 6] = f / fp if fp != 0.0 else 0.0j
            out[j, 7] = fd


@njit(cache=True, parallel=True, error_model="numpy")
def _point_sums(anchor, delta, hi, lo, A, Q, R, c, X0, S, chat, dhat, lhat, X0hat, Shat, refine,
                mf, M, out, nchunk):
    """At each point: out[:, 0..4] = f, f', a = l^T G c, b0 = d^T G X0, bS = d^T G S (exactly
    summed modes, ``_split``, with ``refine`` set from refined solves; far ones from the
    multipoles ``M`` of (u, a, b0, bS))."""
    N, q = chat.shape
    for ch in prange(nchunk):
        work = _scratch(N, q, mf[0].size, M.shape[1])
        modes, val, der, crude = work[5], work[6], work[7], work[8]
        x = np.empty(q, np.complex128)
        y = np.empty(q, np.complex128)
        inv = np.empty(q, np.complex128)
        v = np.empty(q, np.complex128)
        xs = np.empty(q, np.complex128)
        r = np.empty(q, np.complex128)
        for j in range(ch * anchor.size // nchunk, (ch + 1) * anchor.size // nchunk):
            p = anchor[j]
            dj = delta[j]
            zh = hi[p]
            lop = lo[p]
            zl = lop + dj
            nk = _split_sums(zh, zl, p // q, mf, M, j, work, q)
            f = 1.0 - val[0]
            fp = der[0]
            a = val[1]
            b0 = val[2]
            bS = val[3]
            for kk in range(nk):
                k = modes[kk]
                if refine[k]:
                    u, fp1, a1, b01, bS1 = _refined_sums(k, p, dj, hi, lo, A, Q, R, c, X0, S, dhat,
                                                         lhat, v, xs, x, r, inv)
                    f -= u
                    fp += fp1
                    a += a1
                    b0 += b01
                    bS += bS1
                elif q == 3:
                    x0, x1, x2, y0, y1, y2 = _solve3(k, zh, dj, lop, hi, lo, R, chat, dhat)
                    f -= y0 * chat[k, 0] + y1 * chat[k, 1] + y2 * chat[k, 2]
                    fp += y0 * x0 + y1 * x1 + y2 * x2
                    a += lhat[k, 0] * x0 + lhat[k, 1] * x1 + lhat[k, 2] * x2
                    b0 += y0 * X0hat[k, 0] + y1 * X0hat[k, 1] + y2 * X0hat[k, 2]
                    bS += y0 * Shat[k, 0] + y1 * Shat[k, 1] + y2 * Shat[k, 2]
                else:
                    _mode_solves(k, p, dj, hi, lo, R, chat, dhat, x, y, inv)
                    for i in range(q):
                        f -= y[i] * chat[k, i]
                        fp += y[i] * x[i]
                        a += lhat[k, i] * x[i]
                        b0 += y[i] * X0hat[k, i]
                        bS += y[i] * Shat[k, i]
            out[j, 0] = f
            out[j, 1] = fp
            out[j, 2] = a
            out[j, 3] = b0
            out[j, 4] = bS


@njit(cache=True, parallel=True, error_model="numpy")
def _mode_vectors(modes, anchor, delta, coef, hi, lo, A, Q, R, c, chat, refine, out):
    """``out[m, :, c] = sum_j coef[j, c] (mu_j - R_k)^-1 chat_k`` for k = modes[m] (Schur
    coordinates): the part of mode k's state carried by the nodes mu_j (refined solves for the
    modes with ``refine`` set)."""
    q = chat.shape[1]
    nc = coef.shape[1]
    for mm in prange(modes.size):
        k = modes[mm]
        x = np.empty(q, np.complex128)
        xs = np.empty(q, np.complex128)
        v = np.empty(q, np.complex128)
        r = np.empty(q, np.complex128)
        inv = np.empty(q, np.complex128)
        acc = np.zeros((q, nc), np.complex128)
        for j in range(anchor.size):
            p = anchor[j]
            dj = delta[j]
            if refine[k]:
                for i in range(q):
                    v[i] = c[k, i]
                _refined_solve(k, p, dj, hi, lo, A, Q, R, v, xs, x, r, inv)
                for i in range(q):
                    x[i] = xs[i]
            else:
                for i in range(q):
                    inv[i] = 1.0 / _diff(hi, lo, p, k * q + i, dj)
                for i in range(q - 1, -1, -1):
                    s = chat[k, i]
                    for m in range(i + 1, q):
                        s += R[k, i, m] * x[m]
                    x[i] = s * inv[i]
            for cc in range(nc):
                cj = coef[j, cc]
                for i in range(q):
                    acc[i, cc] += cj * x[i]
        for cc in range(nc):
            for i in range(q):
                out[mm, i, cc] = acc[i, cc]


@njit(cache=True, parallel=True, error_model="numpy")
def _free_resolvent(anchor, delta, hi, lo, A, Q, R, X0, S, X0hat, Shat, lhat, refine, out):
    """``out[j] = (sum_k l_k^T G_k(mu_j) X0_k, sum_k l_k^T G_k(mu_j) S_k)`` over all modes
    (refined solves for the modes with ``refine`` set)."""
    N, q = X0hat.shape
    for j in prange(anchor.size):
        p = anchor[j]
        dj = delta[j]
        x = np.empty(q, np.complex128)
        xs = np.empty(q, np.complex128)
        r = np.empty(q, np.complex128)
        inv = np.empty(q, np.complex128)
        v = np.empty(q, np.complex128)
        g0 = 0.0j
        gS = 0.0j
        for k in range(N):
            if refine[k]:
                for which in range(2):
                    for i in range(q):
                        v[i] = X0[k, i] if which == 0 else S[k, i]
                    _refined_solve(k, p, dj, hi, lo, A, Q, R, v, xs, x, r, inv)
                    acc = 0.0j
                    for i in range(q):
                        acc += lhat[k, i] * xs[i]
                    if which == 0:
                        g0 += acc
                    else:
                        gS += acc
            else:
                for i in range(q):
                    inv[i] = 1.0 / _diff(hi, lo, p, k * q + i, dj)
                for which in range(2):
                    for i in range(q - 1, -1, -1):
                        acc = X0hat[k, i] if which == 0 else Shat[k, i]
                        for m in range(i + 1, q):
                            acc += R[k, i, m] * x[m]
                        x[i] = acc * inv[i]
                    acc = 0.0j
                    for i in range(q):
                        acc += lhat[k, i] * x[i]
                    if which == 0:
                        g0 += acc
                    else:
                        gS += acc
        out[j, 0] = g0
        out[j, 1] = gS


@njit(cache=True, parallel=True, error_model="numpy")
def _free_vectors(anchor, delta, coef, hi, lo, A, Q, R, X0, S, X0hat, Shat, refine, out):
    """``out[k] = sum_j (coef[j, 0] G_k(mu_j) X0_k + coef[j, 1] G_k(mu_j) S_k)`` (Schur
    coordinates): the free-resolvent part of each mode's state on a circle."""
    N, q = X0hat.shape
    for k in prange(N):
        x = np.empty(q, np.complex128)
        xs = np.empty(q, np.complex128)
        r = np.empty(q, np.complex128)
        inv = np.empty(q, np.complex128)
        v = np.empty(q, np.complex128)
        acc = np.zeros(q, np.complex128)
        for j in range(anchor.size):
            p = anchor[j]
            dj = delta[j]
            if not refine[k]:
                for i in range(q):
                    inv[i] = 1.0 / _diff(hi, lo, p, k * q + i, dj)
            for which in range(2):
                cj = coef[j, which]
                if cj == 0.0:
                    continue
                if refine[k]:
                    for i in range(q):
                        v[i] = X0[k, i] if which == 0 else S[k, i]
                    _refined_solve(k, p, dj, hi, lo, A, Q, R, v, xs, x, r, inv)
                    for i in range(q):
                        acc[i] += cj * xs[i]
                else:
                    for i in range(q - 1, -1, -1):
                        a = X0hat[k, i] if which == 0 else Shat[k, i]
                        for m in range(i + 1, q):
                            a += R[k, i, m] * x[m]
                        x[i] = a * inv[i]
                    for i in range(q):
                        acc[i] += cj * x[i]
        for i in range(q):
            out[k, i] = acc[i]


@njit(cache=True, parallel=True, error_model="numpy")
def _refine_poles(idx, A, Q, R, hi, lo, ok, cond):
    """Two-sided Rayleigh quotient of each pole of ``idx`` (mode-major indices into hi/lo) with
    the residual ``A V - lambda V`` in double-double: ``lambda += w^T Q^H (A V - lambda V)`` for
    the Schur eigenvectors v, w (``w^T v = 1``). Poles whose eigenvector is ill-conditioned
    (within-mode clusters) are left alone (ok = False); cond = ||v||_1 ||w||_1 (the pole's
    condition number, up to norms)."""
    q = R.shape[1]
    for jj in prange(idx.size):
        g = idx[jj]
        k = g // q
        i = g % q
        lam = hi[g]
        v = np.zeros(q, np.complex128)
        w = np.zeros(q, np.complex128)
        v[i] = 1.0
        w[i] = 1.0
        good = True
        for m in range(i - 1, -1, -1):
            acc = 0.0j
            for n in range(m + 1, i + 1):
                acc += R[k, m, n] * v[n]
            d = R[k, m, m] - lam
            if abs(d) <= 1e-8 * (abs(lam) + 1e-300):
                good = False
                break
            v[m] = -acc / d
        for m in range(i + 1, q):
            acc = 0.0j
            for n in range(i, m):
                acc += w[n] * R[k, n, m]
            d = R[k, m, m] - lam
            if abs(d) <= 1e-8 * (abs(lam) + 1e-300):
                good = False
                break
            w[m] = -acc / d
        nv = 0.0
        nw = 0.0
        for m in range(q):
            nv += abs(v[m])
            nw += abs(w[m])
        cond[jj] = nv * nw if good else np.inf
        if not good or nv * nw > 1e8:
            ok[jj] = False
            continue
        V = np.zeros(q, np.complex128)
        for m in range(q):
            acc = 0.0j
            for n in range(q):
                acc += Q[k, m, n] * v[n]
            V[m] = acc
        corr = 0.0j
        for m in range(q):
            rh, rl, ih, il = 0.0, 0.0, 0.0, 0.0
            rh, rl, ih, il = _dd_sub_cprod(rh, rl, ih, il, lam, V[m])
            for n in range(q):
                a1, b1 = _two_prod(A[k, m, n], V[n].real)
                rh, rl = _dd_add(rh, rl, a1, b1)
                a1, b1 = _two_prod(A[k, m, n], V[n].imag)
                ih, il = _dd_add(ih, il, a1, b1)
            res = complex(rh + rl, ih + il)
            # (w^T Q^H)_m
            wq = 0.0j
            for n in range(q):
                wq += w[n] * Q[k, m, n].conjugate()
            corr += wq * res
        lo[g] = corr
        ok[jj] = True


# --------------------------------------------------------------------------------------------
# numba kernels: time dependence
# --------------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _clog1p(w):
    """log(1 + w) for complex w, accurate for small |w|."""
    re = w.real
    im = w.imag
    return complex(0.5 * math.log1p(2.0 * re + re * re + im * im), math.atan2(im, 1.0 + re))


@njit(cache=True, error_model="numpy")
def _cexpm1(w):
    """exp(w) - 1 for complex w, accurate for small |w|."""
    s = math.sin(0.5 * w.imag)
    return complex(math.expm1(w.real) * math.cos(w.imag) - 2.0 * s * s,
                   math.exp(w.real) * math.sin(w.imag))


@njit(cache=True, error_model="numpy")
def _logs(anchor, delta, hi, lo, logz, wm1):
    """``log mu`` and ``mu - 1`` of anchored points, accurately near mu = 1."""
    for j in range(anchor.size):
        p = anchor[j]
        w = (hi[p] - 1.0) + (lo[p] + delta[j])
        wm1[j] = w
        if abs(w) < 0.5:
            logz[j] = _clog1p(w)
        else:
            z = hi[p] + (lo[p] + delta[j])
            logz[j] = complex(math.log(abs(z)), math.atan2(z.imag, z.real)) if z != 0.0 \
                else complex(-np.inf, 0.0)


@njit(cache=True, error_model="numpy")
def _kernels(t, L, w, m0, mS):
    """``(mu^t e^-m0, phi_t(mu) e^-mS)`` with ``phi_t = (mu^t - 1)/(mu - 1)``, from
    ``L = log mu`` and ``w = mu - 1``."""
    if L.real == -np.inf:                      # mu = 0: mu^t = [t = 0], phi_t = [t > 0]
        if t == 0:
            return complex(math.exp(-m0), 0.0), 0.0j
        return 0.0j, complex(math.exp(-mS), 0.0)
    tl = t * L
    e = tl.real - m0
    zt = complex(math.exp(e) * math.cos(tl.imag), math.exp(e) * math.sin(tl.imag)) \
        if e > -745.0 else 0.0j
    if t == 0:
        return zt, 0.0j
    if w == 0.0:
        return zt, complex(t * math.exp(-mS), 0.0)
    if mS == 0.0:
        if abs(w) < 0.5:
            return zt, _cexpm1(tl) / w
        return zt, (complex(math.exp(tl.real) * math.cos(tl.imag),
                            math.exp(tl.real) * math.sin(tl.imag)) - 1.0) / w
    es = tl.real - mS
    zs = complex(math.exp(es) * math.cos(tl.imag), math.exp(es) * math.sin(tl.imag)) \
        if es > -745.0 else 0.0j
    return zt, (zs - math.exp(-mS)) / w


@njit(cache=True, parallel=True, error_model="numpy")
def _evaluate_nodes(ts, m0s, mSs, logz, wm1, c0, cS, kappa, out, err):
    """``out[i] = sum_j c0_j mu_j^t e^-m0 + cS_j phi_t(mu_j) e^-mS`` (t = ts[i]);
    ``err[i] = sum_j (kappa_j + 1 + t |log mu_j|) |term_j|`` (rounding estimate, times eps)."""
    for i in prange(ts.size):
        t = float(ts[i])
        acc = 0.0j
        e = 0.0
        for j in range(logz.size):
            zt, ph = _kernels(t, logz[j], wm1[j], m0s[i], mSs[i])
            a0 = c0[j] * zt
            aS = cS[j] * ph
            acc += a0 + aS
            e += (kappa[j] + 1.0 + t * abs(logz[j])) * (abs(a0) + abs(aS))
        out[i] = acc
        err[i] = e


@njit(cache=True, error_model="numpy")
def _matmul(Aa, Bb, n):
    C = np.zeros((n, n), np.complex128)
    for i in range(n):
        for k in range(n):
            aik = Aa[i, k]
            if aik != 0.0:
                for j in range(n):
                    C[i, j] += aik * Bb[k, j]
    return C


@njit(cache=True, error_model="numpy")
def _scaled_power(M, t):
    """``M^t = P exp(s)`` by repeated squaring with renormalisation (no overflow)."""
    n = M.shape[0]
    P = np.eye(n, dtype=np.complex128)
    s = 0.0
    base = M.copy()
    bs = 0.0
    tt = t
    while tt > 0:
        if tt & 1:
            P = _matmul(P, base, n)
            s += bs
            mx = np.max(np.abs(P))
            if mx > 0.0 and (mx > 1e100 or mx < 1e-100):
                P /= mx
                s += math.log(mx)
        tt >>= 1
        if tt:
            base = _matmul(base, base, n)
            bs *= 2.0
            mx = np.max(np.abs(base))
            if mx > 0.0 and (mx > 1e100 or mx < 1e-100):
                base /= mx
                bs += math.log(mx)
    return P, s


@njit(cache=True, error_model="numpy")
def _aug_power(A, k, rS, t):
    """``[[A_k, rS], [0, 1]]^t = P exp(s)`` (original coordinates; complex rS)."""
    q = A.shape[1]
    M = np.zeros((q + 1, q + 1), np.complex128)
    for a in range(q):
        for b in range(q):
            M[a, b] = A[k, a, b]
        M[a, q] = rS[a]
    M[q, q] = 1.0
    return _scaled_power(M, t)


@njit(cache=True, parallel=True, error_model="numpy")
def _evaluate_free(ts, m0s, mSs, modes, A, lvec, r0, rS, out, err):
    """``out[i] = sum_k lvec_k^T [A_k^t r0_k e^-m0 + phi_t(A_k) rS_k e^-mS]`` over ``modes``, from
    powers of ``[[A_k, rS_k], [0, 1]]`` (repeated squaring of the data's own A_k: exact
    to rounding for any Jordan structure)."""
    q = A.shape[1]
    for i in prange(ts.size):
        t = ts[i]
        acc = 0.0j
        e = 0.0
        for mm in range(modes.size):
            P, s = _aug_power(A, modes[mm], rS[mm], t)
            s0 = math.exp(s - m0s[i]) if s - m0s[i] > -745.0 else 0.0
            sS = math.exp(s - mSs[i]) if s - mSs[i] > -745.0 else 0.0
            v0 = 0.0j
            vS = 0.0j
            for a in range(q):
                x0 = 0.0j
                for b in range(q):
                    x0 += P[a, b] * r0[mm, b]
                v0 += lvec[mm, a] * x0
                vS += lvec[mm, a] * P[a, q]
            acc += v0 * s0 + vS * sS
            e += (abs(v0 * s0) + abs(vS * sS)) * (1.0 + 2.0 * q * math.log2(t + 2.0))
        out[i] = acc
        err[i] = e


@njit(cache=True, parallel=True, error_model="numpy")
def _free_state(t, m0, mS, modes, A, r0, rS, out):
    """``out[m] = A_k^t r0 e^-m0 + phi_t(A_k) rS e^-mS`` (original coordinates)."""
    q = A.shape[1]
    for mm in prange(modes.size):
        P, s = _aug_power(A, modes[mm], rS[mm], t)
        s0 = math.exp(s - m0) if s - m0 > -745.0 else 0.0
        sS = math.exp(s - mS) if s - mS > -745.0 else 0.0
        for a in range(q):
            x0 = 0.0j
            for b in range(q):
                x0 += P[a, b] * r0[mm, b]
            out[mm, a] = x0 * s0 + P[a, q] * sS


# --------------------------------------------------------------------------------------------
# roots of the secular equation
# --------------------------------------------------------------------------------------------
def _xy(z):
    z = np.atleast_1d(z)
    return np.column_stack([z.real, z.imag])


def _nearest_distance(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree
    if points.size < 2:
        return np.full(points.size, np.inf)
    # unbalanced, uncompacted nodes build and query faster on clustered spectra
    xy = _xy(points)
    dist, _ = cKDTree(xy, balanced_tree=False, compact_nodes=False).query(xy, k=2, workers=-1)
    return dist[:, 1]


def _find_roots(st: _Structure, nn: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """All n roots of ``P = f prod (mu - lambda_i)`` by Aberth's method, anchored at the poles,
    then one Newton step each with an accurate f (``_polish``).

    Start: ``delta_j = START nn_j e^{i theta_j}`` (``nn``: distance from each drive-observable pole
    to the nearest other one, theta on a golden-angle sequence); the first sweep is a Newton step
    (the pair terms are START small), after which a weakly coupled root is close (P is nearly
    linear in delta near its pole); strongly coupled ones move away under Aberth's repulsion.
    A root stops when its step is below 4 ulps of its offset delta, or below 1e-10 of it and no
    longer shrinking (rounding level). Roots that end nearer another pole than their own are
    re-anchored there. Returns (anchor, delta, sweeps)."""
    apoles = st.anchors
    n = apoles.size
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, complex), np.zeros(0), np.zeros(0), 0
    lam = st.poles[apoles]
    scale = max(float(np.abs(lam).max()), 1e-300)
    nn0 = np.where(np.isfinite(nn) & (nn > 0), np.minimum(nn, scale), scale)
    theta = 2 * np.pi * ((np.arange(n) * 0.6180339887498949) % 1.0) + 0.3
    delta = START * nn0 * np.exp(1j * theta)
    anchor = apoles.copy()
    step = np.zeros(n, complex)
    kappa = np.zeros(n)
    resid = np.zeros(n)
    last = np.full(n, np.inf)
    sweeps = 0
    # far modes and far (pole, root) pairs by multipoles (``_FarField``; one leaf when small)
    far = st.far
    rho = far.residues(("d", st.chat))
    mf = far.parts(rho)
    Mu = far.moments(rho)
    ptree = cauchy_tree.build(lam, leaf=cauchy_tree.LEAF if far.active else max(n, 1))
    tpos = np.empty(n, np.int64)
    tpos[ptree.perm] = np.arange(n)
    hp, lp = st.hi[apoles][ptree.perm], st.lo[apoles][ptree.perm]
    hr, hm, lr, lm = (np.ascontiguousarray(a) for a in (hp.real, hp.imag, lp.real, lp.imag))

    Md = None
    dipoles = [None]

    def iterate(converged, limit):
        nonlocal sweeps, Md
        for _ in range(limit):
            active = np.nonzero(~converged)[0]
            if active.size == 0:
                break
            e = (st.hi[anchor] - st.hi[apoles]) + ((st.lo[anchor] - st.lo[apoles]) + delta)
            et = e[ptree.perm]
            if far.active:
                # only the nodes whose pairs moved since the last sweep are recomputed
                prad = cauchy_tree.radii_with(*ptree.parts[:4], ptree.centre, ptree.radius, hp, lp, et)
                Md = cauchy_tree.dipole_moments(ptree, hp, lp, et, prad, update=None if Md is None
                                                else (Md, et != dipoles[0]))
                dipoles[0] = et
            else:
                prad, Md = ptree.radius, np.zeros((1, 1, 1), complex)
            _aberth_sweep(active, anchor, delta, apoles, st.hi, st.lo, st.R, st.chat, st.dhat,
                          mf, Mu, (ptree.start, ptree.stop, ptree.left, ptree.right, ptree.centre,
                                   prad, tpos), Md,
                          np.ascontiguousarray(et.real), np.ascontiguousarray(et.imag),
                          hr, hm, lr, lm, step, kappa, resid, _chunks(active.size), sweeps > 0)
            sweeps += 1
            s = step[active]
            bad = ~np.isfinite(s) | ~np.isfinite(delta[active])
            s[bad] = 0.0
            new = delta[active] - s
            # a root whose step broke down starts again near its pole, in a new direction
            new[bad] = START * nn0[active][bad] * np.exp(1j * (theta[active][bad] + 2.0 + sweeps))
            rel = np.abs(s) / np.maximum(np.abs(new), 1e-300)
            prev = last[active]
            converged[active] = ((rel <= 4 * EPS) | ((rel <= 1e-7) & (rel <= 1e-3 * prev)) |
                                 ((rel <= 1e-10) & (rel >= 0.5 * prev))) & ~bad
            last[active] = rel
            delta[active] = new
        return converged

    converged = iterate(np.zeros(n, bool), MAX_SWEEPS)
    # re-anchor roots that migrated next to another pole (keeps mu - lambda exact there)
    from scipy.spatial import cKDTree
    z = st.poles[anchor] + delta
    _, near = cKDTree(_xy(lam)).query(_xy(z))
    near = apoles[near]
    move = (near != anchor) & (np.abs(z - st.poles[near]) < 0.5 * np.abs(delta))
    if np.any(move):
        delta[move] = (st.hi[anchor[move]] - st.hi[near[move]]) + \
            ((st.lo[anchor[move]] - st.lo[near[move]]) + delta[move])
        anchor[move] = near[move]
        last[move] = np.inf
        converged[move] = False
        converged = iterate(converged, 60)
    if not np.all(converged):
        worst = float(np.max(last[~converged]))
        if not worst < 1e-8:
            raise RuntimeError(f"jump-ahead: Aberth's iteration did not converge for "
                               f"{int(np.sum(~converged))} of {n} roots (relative step {worst:.3g})")
    return anchor, delta, kappa, resid, sweeps


# --------------------------------------------------------------------------------------------
# nodes: roots or circle points with their expansion coefficients
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Nodes:
    """Points mu_j with their coefficients: ``L_t gets sum_j c0_j mu_j^t + cS_j phi_t(mu_j)``,
    the drive ``D_t gets sum_j beta0_j mu_j^t + betaS_j phi_t(mu_j)`` (so mode k's state gets
    ``(beta0_j mu_j^t + ..) G_k(mu_j) c_k``). Roots: ``c = a beta``; circle nodes also carry the
    free resolvent of the modes inside the circle (``_nodes_at``)."""

    anchor: np.ndarray
    delta: np.ndarray
    logz: np.ndarray
    wm1: np.ndarray
    beta0: np.ndarray
    betaS: np.ndarray
    c0: np.ndarray
    cS: np.ndarray
    kappa: np.ndarray      # rounding amplification of the node's coefficients

    def subset(self, idx):
        return _Nodes(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    @staticmethod
    def join(parts):
        return _Nodes(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Nodes.__dataclass_fields__))


def _logs_of(st, anchor, delta):
    logz = np.zeros(anchor.size, complex)
    wm1 = np.zeros(anchor.size, complex)
    if anchor.size:
        _logs(anchor, delta, st.hi, st.lo, logz, wm1)
    return logz, wm1


def _nodes_at(st, anchor, delta, X0, S, X0hat, Shat, kappa=None, weight=None):
    """Coefficients at roots (residues: ``beta = b / f'``, ``c = a beta``) or at the nodes of a
    circle around a cluster (trapezoidal weights ``w = (mu - centre) / M`` of the resolvent
    of the coupled map, ``l^T (mu - T)^-1 X = l^T G X + a b_X / f``: ``beta = w b / f`` and
    ``c = w (a b / f + sum_k l_k^T G_k X_k)``: the integrand is then analytic at every per-mode
    pole, and only T's own eigenvalues are singular). X0, S in original, X0hat, Shat in Schur
    coordinates."""
    out = np.zeros((anchor.size, 5), complex)
    if anchor.size:
        rho = st.far.residues(("d", st.chat), ("l", st.chat), ("d", X0hat), ("d", Shat))
        _point_sums(anchor, delta, st.hi, st.lo, st.A, st.Q, st.R, st.c, X0, S, st.chat, st.dhat,
                    st.lhat, X0hat, Shat, st.refine, st.far.parts(rho), st.far.moments(rho), out,
                    _chunks(anchor.size))
    logz, wm1 = _logs_of(st, anchor, delta)
    f, fp, a, b0, bS = (out[:, i] for i in range(5))
    if weight is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            beta0, betaS = b0 / fp, bS / fp
        c0, cS = a * beta0, a * betaS
        if kappa is None:
            kappa = np.zeros(anchor.size)
    else:
        beta0, betaS = weight * b0 / f, weight * bS / f
        free = np.zeros((anchor.size, 2), complex)
        _free_resolvent(anchor, delta, st.hi, st.lo, st.A, st.Q, st.R, X0, S, X0hat, Shat,
                        st.lhat, st.refine, free)
        c0 = a * beta0 + weight * free[:, 0]
        cS = a * betaS + weight * free[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            k0 = (np.abs(a * beta0) + np.abs(weight * free[:, 0])) / np.abs(c0)
            kS = (np.abs(a * betaS) + np.abs(weight * free[:, 1])) / np.abs(cS)
        kappa = np.nan_to_num(np.maximum(k0, kS), nan=1.0, posinf=1e300)
    return _Nodes(anchor, delta, logz, wm1, beta0, betaS, np.ascontiguousarray(c0),
                  np.ascontiguousarray(cS), np.ascontiguousarray(kappa))


# --------------------------------------------------------------------------------------------
# clusters of nearly defective roots
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cluster:
    members: np.ndarray    # root indices
    center: complex
    radius: float
    modes: np.ndarray      # modes with a pole inside the circle
    node_anchor: np.ndarray
    node_delta: np.ndarray
    node_weight: np.ndarray


def _find_clusters(st, anchor, delta, kappa) -> list:
    """Groups of nearly defective roots (kappa > CLUSTER_KAPPA) with a circle around them that
    keeps every other root and pole at least one radius outside it (module docstring)."""
    seeds = np.nonzero(kappa > CLUSTER_KAPPA)[0]
    if seeds.size == 0:
        return []
    from scipy.spatial import cKDTree
    poles = st.poles
    z = poles[anchor] + delta
    ztree = cKDTree(_xy(z))
    ptree = cKDTree(_xy(poles))
    nn = _nearest_distance(z)
    groups = []
    for s in seeds:                       # seed groups: a root and its close neighbours
        groups.append(set(ztree.query_ball_point(_xy(z[s])[0], 3.0 * nn[s])) | {int(s)})
    merged = True
    while merged:                         # merge overlapping groups
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if groups[i] & groups[j]:
                    groups[i] |= groups.pop(j)
                    merged = True
                    break
            if merged:
                break
    clusters = []
    for members in groups:
        extra: set = set()                # poles inside the circle
        p0 = int(anchor[min(members)])
        for _ in range(200):
            idx = np.array(sorted(members))
            rel = (st.hi[anchor[idx]] - st.hi[p0]) + ((st.lo[anchor[idx]] - st.lo[p0]) + delta[idx])
            ex = np.array(sorted(extra), dtype=np.int64)
            prel = (st.hi[ex] - st.hi[p0]) + (st.lo[ex] - st.lo[p0])
            g = complex(np.mean(np.concatenate([rel, prel])))
            spread = float(np.max(np.abs(np.concatenate([rel, prel]) - g)))
            spread = max(spread, 64 * EPS * abs(poles[p0]), 1e-300)
            r = 2.5 * spread
            c = poles[p0] + g
            grow = False
            for j in ztree.query_ball_point(_xy(c)[0], 2.0 * r):
                if j not in members:
                    members.add(int(j))
                    grow = True
            for e in ptree.query_ball_point(_xy(c)[0], 2.0 * r):
                if e not in extra:
                    extra.add(int(e))
                    grow = True
            if not grow:
                break
        idx = np.array(sorted(members))
        ex = np.array(sorted(extra), dtype=np.int64)
        modes = np.unique(ex // st.q)
        if modes.size > CLUSTER_MODES or r > 0.05 * abs(c) or not np.all(np.isin(ex, st.anchors)):
            continue    # too wide to pay, or around an eigenvalue outside the secular equation:
                        # its roots are summed one by one
        theta = 2 * np.pi * (np.arange(NODES) + 0.5) / NODES
        ring = r * np.exp(1j * theta)
        clusters.append(_Cluster(idx, c, r, modes, np.full(NODES, p0, np.int64), g + ring, ring / NODES))
    return clusters


def _free_eigen(st, modes, r0, rS, dims, visible):
    """Free blocks as sums over their own eigenvalues: for the leading ``m`` Schur coordinates
    of mode k (upper-triangular block of R with distinct, well-conditioned diagonal), right and
    left eigenvectors ``v_i, w_i`` (``w_i^T v_j = [i = j]``, by back and forward substitution
    with double-double diagonal differences), so that ``l^T R^t r = sum_i lambda_i^t
    (l . v_i)(w_i . r)``. Returns the nodes (anchor = pole, delta = 0) of the loss-visible
    blocks and, for the state, ``(modes, V (K, q, q), w . r0, w . rS, logs (K, q), mu - 1)``
    over all of them."""
    q = st.q
    K = modes.size
    V = np.zeros((K, q, q), complex)          # V[k, :, i] = v_i (zero beyond the block)
    Wr0 = np.zeros((K, q), complex)
    WrS = np.zeros((K, q), complex)
    lv = np.zeros((K, q), complex)
    if K == 0:
        empty = np.zeros(0)
        return (_Nodes(np.zeros(0, np.int64), empty.astype(complex), empty.astype(complex),
                       empty.astype(complex), *(empty.astype(complex),) * 4, empty),
                (modes, V, Wr0, WrS, Wr0, WrS))
    R = st.R[modes]
    base = modes * q
    for i in range(q):
        inb = i < dims
        v = np.zeros((K, q), complex)
        w = np.zeros((K, q), complex)
        v[:, i] = 1.0
        w[:, i] = 1.0
        for j in range(i - 1, -1, -1):
            d = (st.hi[base + i] - st.hi[base + j]) + (st.lo[base + i] - st.lo[base + j])
            acc = np.einsum("kl,kl->k", R[:, j, j + 1:i + 1], v[:, j + 1:i + 1])
            v[:, j] = np.where(inb, acc / np.where(d != 0, d, 1.0), 0.0)
        for j in range(i + 1, q):
            d = (st.hi[base + i] - st.hi[base + j]) + (st.lo[base + i] - st.lo[base + j])
            acc = np.einsum("kl,kl->k", w[:, i:j], R[:, i:j, j])
            w[:, j] = np.where(j < dims, acc / np.where(d != 0, d, 1.0), 0.0)
        V[:, :, i] = np.where(inb[:, None], v, 0.0)
        Wr0[:, i] = np.where(inb, np.einsum("kj,kj->k", w, r0), 0.0)
        WrS[:, i] = np.where(inb, np.einsum("kj,kj->k", w, rS), 0.0)
        lv[:, i] = np.where(inb, np.einsum("kj,kj->k", st.lhat[modes], v), 0.0)
    sel = np.nonzero((np.arange(q)[None, :] < dims[:, None]) & visible[:, None])
    anchor = (base[:, None] + np.arange(q)[None, :])[sel].astype(np.int64)
    delta = np.zeros(anchor.size, complex)
    logz, wm1 = _logs_of(st, anchor, delta)
    c0 = lv[sel] * Wr0[sel]
    cS = lv[sel] * WrS[sel]
    kappa = st.cond[anchor]
    zero = np.zeros(anchor.size, complex)
    grid = (base[:, None] + np.arange(q)[None, :]).ravel().astype(np.int64)
    glog, gw = _logs_of(st, grid, np.zeros(grid.size, complex))
    return (_Nodes(anchor, delta, logz, wm1, zero, zero, np.ascontiguousarray(c0),
                   np.ascontiguousarray(cS), np.ascontiguousarray(kappa)),
            (modes, V, Wr0, WrS, glog, gw))


# --------------------------------------------------------------------------------------------
# the spectrum and its expansion
# --------------------------------------------------------------------------------------------
class CoupledSpectrum:
    """The set-up of the jump-ahead route for one ``ModeArrays``: per-mode Schur forms, the n
    roots of the secular equation (n = number of drive-observable per-mode eigenvalues, N q in
    general), their condition numbers and clusters. O(N n) time below ``TREE_MIN`` poles,
    about O(n log n) above (far modes by multipoles); O(N q^2 + n) memory.

    ``expansion(X0, S)`` gives the coefficients for an initial state X0 (N, q) and a source S
    (default: the arrays' own), whose ``loss(steps)`` and ``state(t)`` evaluate in O(n) per step.
    """

    def __init__(self, arrays: ModeArrays):
        self.arrays = _check_arrays(arrays)
        st = _structure(self.arrays)
        st = self.structure = replace(st, far=_far_field(st))
        # distance from each drive-observable pole to the nearest other one
        near_pole = _nearest_distance(st.poles[st.anchors])
        anchor, delta, kappa, resid, self.sweeps = _find_roots(st, near_pole)
        if anchor.size:
            # the accurate Newton step where a root's rounding would grow with t: slow roots
            # (|mu| >= 0.9) and ill-conditioned ones, that have moved away from their pole (a
            # weakly coupled root, |delta| << the distance to the next pole, is already accurate
            # to rounding of delta: f is dominated by its own, refined, pole), and every root next
            # to a mode whose Schur form is not accurate (twice); not next to moved poles
            z = st.hi[anchor] + (st.lo[anchor] + delta)
            nn = np.full(st.hi.size, np.inf)
            nn[st.anchors] = near_pole
            near_bad = st.refine[anchor // st.q]
            sel = np.nonzero((((np.abs(z) >= POLISH_RADIUS) | (kappa >= POLISH_KAPPA)) &
                              (np.abs(delta) >= 1e-3 * nn[anchor]) | near_bad) & ~st.moved[anchor])[0]
            out = np.zeros((sel.size, 8), complex)
            rho = st.far.residues(("d", st.chat), ("l", st.chat))
            mf, Mua = st.far.parts(rho), st.far.moments(rho)
            for _ in range(2 if np.any(near_bad[sel]) else 1):
                if not sel.size:
                    break
                _polish(anchor[sel], delta[sel], st.hi, st.lo, st.A, st.c, st.Q, st.R, st.chat,
                        st.dhat, st.lhat, mf, Mua, out, _chunks(sel.size))
                step = out[:, 6]
                ok = (np.abs(step) <= 1e-3 * np.maximum(np.abs(delta[sel]), 1e-300)) & np.isfinite(step)
                delta[sel[ok]] -= step[ok]
            # every root must be a root of the plain f: a root that sits on its pole instead
            # belongs to an eigenvalue seen by the drive and not excited by the coupling
            if not np.all(resid <= 1e-4):
                j = int(np.argmax(resid))
                k = int(anchor[j]) // st.q
                raise ValueError(
                    f"arrays: mode {k} has an eigenvalue {complex(st.poles[anchor[j]]):.6g} seen by "
                    "the drive but not excited by the coupling; the jump-ahead route needs every "
                    "drive-observable eigenvalue to be coupled (or the coupling to be zero)")
            if sel.size:
                kappa[sel] = np.where(np.abs(out[:, 1]) > 0,
                                      np.sqrt(out[:, 4].real * out[:, 5].real) / np.abs(out[:, 1]), kappa[sel])
        self.anchor = anchor
        self.delta = delta
        self.kappa = np.where(np.isfinite(kappa), kappa, np.inf)
        self.clusters = _find_clusters(st, anchor, delta, self.kappa)
        rates = [0.0] if anchor.size == 0 else [float(np.max(np.abs(self.roots)))]
        vis = self._loss_visible()
        for k in np.nonzero(vis)[0]:
            m = st.unobs[k]
            rates.append(float(np.max(np.abs(st.poles[k * st.q:k * st.q + m]))))
        self.rate = max(rates)
        self._default = None

    # -- helpers --------------------------------------------------------------------------
    def hat(self, X) -> np.ndarray:
        """Schur coordinates ``Q_k^H X_k`` of per-mode vectors (N, q)."""
        X = np.asarray(X, dtype=complex)
        return np.ascontiguousarray(np.einsum("kji,kj->ki", self.structure.Q.conj(), X))

    def _loss_visible(self) -> np.ndarray:
        """Modes whose drive-unobservable part is seen by the loss (they need the r terms)."""
        st = self.structure
        lead = np.arange(st.q)[None, :] < st.unobs[:, None]
        seen = np.linalg.norm(np.where(lead, st.lhat, 0.0), axis=1)
        return (st.unobs > 0) & (seen > UNOBSERVABLE_TOL * np.linalg.norm(st.lhat, axis=1))

    @property
    def n_roots(self) -> int:
        return int(self.anchor.size)

    @property
    def roots(self) -> np.ndarray:
        """Eigenvalues of the coupled map seen by the drive (complex, n)."""
        st = self.structure
        return st.hi[self.anchor] + (st.lo[self.anchor] + self.delta)

    def reason(self) -> str:
        verdict = "diverges" if self.rate > 1.0 else "converges"
        if self.structure.free:
            what = "no noise coupling: every mode evolves freely"
        else:
            what = (f"spectral radius of the coupled second-moment map, from {self.n_roots} roots "
                    f"of the secular equation")
        if self.clusters:
            what += f"; {len(self.clusters)} nearly defective cluster(s) integrated on circles"
        return f"{verdict}: rate {self.rate:.10g} per step ({what})"

    def expansion(self, X0=None, S=None, log_scale: float = 0.0) -> "_Expansion":
        """Coefficients for the initial state ``exp(log_scale) X0`` and the source S (defaults:
        the arrays' own ``X0`` and ``source``)."""
        default = X0 is None and S is None and log_scale == 0.0
        if default and self._default is not None:
            return self._default
        arr = self.arrays
        X0 = np.ascontiguousarray(arr.X0 if X0 is None else X0, dtype=complex)
        S = np.ascontiguousarray(arr.source if S is None else S, dtype=complex)
        for name, v in (("X0", X0), ("S", S)):
            if v.shape != (self.structure.N, self.structure.q) or not np.all(np.isfinite(v)):
                raise ValueError(f"{name} must be a finite array of shape "
                                 f"({self.structure.N}, {self.structure.q}), got {v.shape}")
        ex = _Expansion(self, X0, S, float(log_scale))
        if default:
            self._default = ex
        return ex


class _Expansion:
    """The coefficients of ``L_t`` (and of the state) for one initial state and source."""

    def __init__(self, spec: CoupledSpectrum, X0, S, log_scale):
        self.spec = spec
        st = spec.structure
        self.log_scale = log_scale
        X0hat = spec.hat(X0)
        Shat = spec.hat(S)
        self._args = (X0, S, X0hat, Shat)
        roots = _nodes_at(st, spec.anchor, spec.delta, *self._args, kappa=spec.kappa)
        in_cluster = np.zeros(roots.anchor.size, bool)
        for cl in spec.clusters:
            in_cluster[cl.members] = True
        self.base = roots.subset(~in_cluster)
        # free (r) terms of drive-unobservable parts: r = X - sum_j beta_j G_k(mu_j) c_k,
        # projected on the unobservable subspace (the leading Schur coordinates), then back to
        # original coordinates (the free evolution uses the data's own A_k)
        unob = np.nonzero(st.unobs > 0)[0]
        h = self._h(unob, roots)
        lead = np.arange(st.q)[None, :] < st.unobs[unob][:, None]
        r0 = np.where(lead, X0hat[unob] - h[:, :, 0], 0.0)
        rS = np.where(lead, Shat[unob] - h[:, :, 1], 0.0)
        visible = spec._loss_visible()[unob]
        # a free block with well-conditioned, distinct eigenvalues evolves as a sum of its own
        # eigenvalues' powers (more nodes); the others by repeated squaring of [[A_k, rS], [0, 1]]
        cond = st.cond.reshape(st.N, st.q)[unob]
        eig = np.all(np.where(lead, cond <= FREE_COND, True), axis=1)
        self.free_nodes, self.free_vectors = _free_eigen(st, unob[eig], r0[eig], rS[eig],
                                                         st.unobs[unob[eig]], visible[eig])
        sq = ~eig
        self.r_modes = unob[sq]
        Qu = st.Q[self.r_modes]
        self.r0 = np.ascontiguousarray(np.einsum("kij,kj->ki", Qu, r0[sq]))
        self.rS = np.ascontiguousarray(np.einsum("kij,kj->ki", Qu, rS[sq]))
        self.loss_visible = visible[sq]
        # clusters: their member roots, or the nodes of their circle (whose coefficients carry
        # the free resolvent of the modes with a pole inside)
        self.clusters = []
        for cl in spec.clusters:
            nodes = _nodes_at(st, cl.node_anchor, cl.node_delta, *self._args, weight=cl.node_weight)
            self.clusters.append((cl, roots.subset(cl.members), nodes))
        self._base_free = self.loss_visible
        self._switch_gap = [0.0] * len(self.clusters)
        lmax = 0.0
        for part in [self.base, self.free_nodes] + [x for cl in self.clusters for x in (cl[1], cl[2])]:
            if part.logz.size:
                lmax = max(lmax, float(part.logz.real.max()))
        self.lmax = max(lmax, math.log(max(spec.rate, 1e-300)))
        # where a cluster switches from its circle to its roots, the two must agree: their
        # relative difference there is the roots' error estimate beyond
        for i, (cl, members, nodes) in enumerate(self.clusters):
            t_star = np.array([self._circle_limit(cl)], np.int64)
            _, m0, mS = self._scales(t_star)
            vr, _ = self._sum(t_star, m0, mS, members)
            vc, ec = self._sum(t_star, m0, mS, nodes)
            self._switch_gap[i] = float(np.abs(vr - vc)[0] / max(abs(vc[0]), 1e-300))

    @staticmethod
    def _circle_limit(cl) -> int:
        """Last step at which a cluster's circle is used: ``t r / |c| <= NODES / 6`` (its
        rounding grows like ``exp(t r / |c|)``, its aliasing like ``(e t r / (|c| NODES))^NODES``)."""
        return int(min((NODES / 6.0) * abs(cl.center) / cl.radius, 2.0 ** 62))

    def _h(self, modes, nodes: _Nodes) -> np.ndarray:
        """``sum_j (beta0_j, betaS_j) G_k(mu_j) c_k`` (Schur coordinates) for the given modes."""
        st = self.spec.structure
        out = np.zeros((np.size(modes), st.q, 2), complex)
        if np.size(modes) and nodes.anchor.size:
            coef = np.ascontiguousarray(np.stack([nodes.beta0, nodes.betaS], axis=1))
            _mode_vectors(np.asarray(modes, np.int64), nodes.anchor, nodes.delta, coef,
                          st.hi, st.lo, st.A, st.Q, st.R, st.c, st.chat, st.refine, out)
        return out

    # -- scaling ----------------------------------------------------------------------------
    def _scales(self, ts):
        """``m_t``: every term is computed times ``exp(-m_t)`` (the initial-state terms times
        ``exp(log_scale - m_t)``), so that a divergent setting never overflows."""
        t = ts.astype(float)
        s0 = self.log_scale
        if self.lmax > 0.0:
            mt = np.maximum(0.0, np.maximum(s0 + t * self.lmax, t * self.lmax))
        else:
            mt = np.full(t.size, max(0.0, s0))
        return mt, mt - s0, mt

    def _free(self, ts, m0, mS, modes, r0, rS):
        st = self.spec.structure
        out = np.zeros(ts.size, complex)
        err = np.zeros(ts.size)
        if np.size(modes):
            modes = np.asarray(modes, np.int64)
            lvec = np.ascontiguousarray(np.asarray(self.spec.arrays.loss, dtype=complex)[modes])
            _evaluate_free(ts, m0, mS, modes, st.A, lvec, np.ascontiguousarray(r0),
                           np.ascontiguousarray(rS), out, err)
        return out, err

    @staticmethod
    def _sum(ts, m0, mS, nodes: _Nodes):
        out = np.zeros(ts.size, complex)
        err = np.zeros(ts.size)
        if nodes.anchor.size:
            _evaluate_nodes(ts, m0, mS, nodes.logz, nodes.wm1, nodes.c0, nodes.cS,
                            np.ascontiguousarray(nodes.kappa), out, err)
        return out, err

    # -- loss -------------------------------------------------------------------------------
    def loss_scaled(self, ts):
        """(L_t e^-m, m, rounding estimate / eps (same scale), use_circle per cluster)."""
        mt, m0, mS = self._scales(ts)
        val, err = self._sum(ts, m0, mS, self.base)
        v, e = self._sum(ts, m0, mS, self.free_nodes)
        val, err = val + v, err + e
        sel = self._base_free
        v, e = self._free(ts, m0, mS, self.r_modes[sel], self.r0[sel], self.rS[sel])
        val, err = val + v, err + e
        use_circle = []
        for (cl, members, nodes), gap in zip(self.clusters, self._switch_gap):
            vr, er = self._sum(ts, m0, mS, members)
            vc, ec = self._sum(ts, m0, mS, nodes)
            circle = ts <= self._circle_limit(cl)
            val = val + np.where(circle, vc, vr)
            # beyond the circle's range the roots carry at least the error they showed there
            err = err + np.where(circle, ec, np.maximum(er, gap * np.abs(vr) / EPS))
            use_circle.append(circle)
        floor = float(self.spec.arrays.floor)
        val = val + floor * np.exp(-mt)
        err = err + abs(floor) * np.exp(-mt)
        return val, mt, err, use_circle

    def loss(self, steps) -> JumpAhead:
        ts = check_steps(steps)
        val, mt, err, _ = self.loss_scaled(ts)
        return _result(ts, val.real, mt, err, self.spec.rate, self.spec.reason())

    # -- state ------------------------------------------------------------------------------
    def state_scaled(self, t: int) -> tuple[np.ndarray, float]:
        """``(X_t e^-m, m)``: the full per-mode state (N, q) at step t."""
        st = self.spec.structure
        X0, S = self._args[:2]
        ts = np.array([t], np.int64)
        _, mt, _, use_circle = self.loss_scaled(ts)
        _, m0, mS = self._scales(ts)
        m0, mS = float(m0[0]), float(mS[0])
        parts = [self.base]
        circles = []
        for (cl, members, nodes), circ in zip(self.clusters, use_circle):
            if circ[0]:
                parts.append(nodes)
                circles.append((cl, nodes))
            else:
                parts.append(members)
        nodes = _Nodes.join(parts)
        zt = np.zeros(nodes.anchor.size, complex)
        ph = np.zeros(nodes.anchor.size, complex)
        _node_kernels(float(t), m0, mS, nodes.logz, nodes.wm1, zt, ph)
        coef = np.ascontiguousarray((nodes.beta0 * zt + nodes.betaS * ph)[:, None])
        X = np.zeros((st.N, st.q, 1), complex)
        if nodes.anchor.size:
            _mode_vectors(np.arange(st.N, dtype=np.int64), nodes.anchor, nodes.delta, coef,
                          st.hi, st.lo, st.A, st.Q, st.R, st.c, st.chat, st.refine, X)
        X = X[:, :, 0]
        for cl, cn in circles:                # the free resolvent on a circle
            zt = np.zeros(cn.anchor.size, complex)
            ph = np.zeros(cn.anchor.size, complex)
            _node_kernels(float(t), m0, mS, cn.logz, cn.wm1, zt, ph)
            coef = np.ascontiguousarray(np.stack([cl.node_weight * zt, cl.node_weight * ph], axis=1))
            out = np.zeros((st.N, st.q), complex)
            _free_vectors(cn.anchor, cn.delta, coef, st.hi, st.lo, st.A, st.Q, st.R, X0, S,
                          *self._args[2:], st.refine, out)
            X += out
        modes, V, w0, wS, glog, gw = self.free_vectors
        if modes.size:                            # free blocks as sums over their eigenvalues
            zt = np.zeros(glog.size, complex)
            ph = np.zeros(glog.size, complex)
            _node_kernels(float(t), m0, mS, glog, gw, zt, ph)
            X[modes] += np.einsum("kij,kj->ki", V, w0 * zt.reshape(w0.shape) + wS * ph.reshape(wS.shape))
        X = np.einsum("kij,kj->ki", st.Q, X)
        mods = self.r_modes
        if mods.size:
            out = np.zeros((mods.size, st.q), complex)
            _free_state(int(t), m0, mS, np.asarray(mods, np.int64), st.A,
                        np.ascontiguousarray(self.r0), np.ascontiguousarray(self.rS), out)
            X[mods] += out
        return X.real, float(mt[0])


@njit(cache=True, error_model="numpy")
def _node_kernels(t, m0, mS, logz, wm1, zt, ph):
    for j in range(logz.size):
        zt[j], ph[j] = _kernels(t, logz[j], wm1[j], m0, mS)


def _result(ts, re, mt, err, rate, reason) -> JumpAhead:
    with np.errstate(divide="ignore"):
        log_abs = mt + np.log(np.abs(re))
    log_abs = np.where(re == 0.0, -np.inf, log_abs)
    over = log_abs > math.log(OVERFLOW_GUARD)
    mag = np.where(over, OVERFLOW_GUARD, np.exp(np.minimum(log_abs, math.log(OVERFLOW_GUARD))))
    loss = np.where(re == 0.0, 0.0, np.sign(re) * mag)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(re != 0.0, EPS * err / np.abs(re), 0.0)
    return JumpAhead(ts, loss, log_abs, over, rel, bool(rate > 1.0), float(rate), reason)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def spectrum(arrays: ModeArrays) -> CoupledSpectrum:
    """The set-up (roots of the secular equation, clusters) for ``arrays``; reuse it to evaluate
    several initial states or many step sets."""
    return CoupledSpectrum(arrays)


def loss_at_steps(arrays: ModeArrays, steps) -> JumpAhead:
    """Exact expected loss ``L_t`` of the per-mode system ``arrays`` at the given steps.

    ``steps``: an integer or a 1-D sequence of integers >= 0 (any order, repeats allowed; the
    result is sorted and unique), up to 2^62 (t = 10^12 costs the same as t = 10). Constant
    hyperparameters (one ``ModeArrays``); any per-mode dimension q; every method, noise model,
    batch factor and multiplicity that ``theory.system`` folds into the arrays. Cost: the set-up
    of ``CoupledSpectrum`` (O(N n), n the number of roots, N q in general), then O(n) per step.
    A divergent setting (rate > 1) is reported, never overflows: see ``JumpAhead``. Formulas,
    accuracy and sources: the module docstring.
    """
    ts = check_steps(steps)
    return spectrum(arrays).expansion().loss(ts)


def state_at_step(arrays: ModeArrays, step) -> np.ndarray:
    """The full state ``X_t`` (N, q) of ``arrays`` at ``step`` (the per-mode second moments that
    ``ModeArrays.X0`` holds at t = 0): the start of a next segment of a schedule. Cost O(N n)."""
    t = int(check_steps(step)[-1]) if np.ndim(step) == 0 else None
    if t is None:
        raise ValueError(f"step must be a single integer >= 0, got {step!r}")
    X, m = spectrum(arrays).expansion().state_scaled(t)
    big = float(np.max(np.abs(X))) if X.size else 0.0
    if big > 0 and m + math.log(big) > math.log(OVERFLOW_GUARD):
        raise ValueError(f"step: the state at step {t} exceeds {OVERFLOW_GUARD:g} (the setting "
                         f"diverges); use loss_at_steps_piecewise, which carries the scale")
    return X * math.exp(m)


def loss_at_steps_piecewise(segments, steps) -> JumpAhead:
    """Exact expected loss of a piecewise-constant schedule at the given (global) steps.

    ``segments``: a sequence of ``(arrays, length)``; segment i runs ``length_i`` steps with its
    own ``ModeArrays`` (its own alpha, beta, batch, ...), starting from the state in which the
    previous one ended (the ``X0`` of every segment but the first is ignored). The last length
    may be ``None`` (the segment runs on). At a boundary step, the loss is that of the state
    there (both segments share the loss functional). The state is carried from segment to
    segment with its scale (``exp(m) X``), so a divergent segment does not overflow the next.
    Cost: one set-up and one state propagation (O(N n)) per segment, O(n) per step.
    ``rate``/``diverges``/``reason`` are those of the last segment; ``reason`` lists them all.
    """
    if isinstance(segments, (str, bytes)) or not hasattr(segments, "__len__") or len(segments) == 0:
        raise ValueError("segments must be a non-empty sequence of (ModeArrays, length) pairs")
    segs = []
    for i, seg in enumerate(segments):
        try:
            arr, length = seg
        except (TypeError, ValueError):
            raise ValueError(f"segments[{i}] must be a pair (ModeArrays, length), got {seg!r}") from None
        _check_arrays(arr)
        if length is None:
            if i != len(segments) - 1:
                raise ValueError(f"segments[{i}]: only the last segment may have length None")
        else:
            try:
                ok = np.ndim(length) == 0
                length = int(check_steps(length)[0]) if ok else None
            except ValueError:
                length = None
            if length is None:
                raise ValueError(f"segments[{i}]: length must be an integer >= 0 or None, got {seg[1]!r}")
        segs.append((arr, length))
    shape = np.asarray(segs[0][0].X0).shape
    for i, (arr, _) in enumerate(segs):
        if np.asarray(arr.X0).shape != shape:
            raise ValueError(f"segments[{i}]: arrays have shape {np.asarray(arr.X0).shape}, "
                             f"segment 0 has {shape}")
    ts = check_steps(steps)
    total = sum(n for _, n in segs) if segs[-1][1] is not None else None
    if total is not None and ts[-1] > total:
        raise ValueError(f"steps must not exceed the schedule's length {total}, got {int(ts[-1])}")
    loss = np.zeros(ts.size)
    log_loss = np.zeros(ts.size)
    over = np.zeros(ts.size, bool)
    est = np.zeros(ts.size)
    reasons = []
    X, scale = None, 0.0
    start = 0
    res = None
    for i, (arr, n) in enumerate(segs):
        spec = spectrum(arr)
        ex = spec.expansion() if X is None else spec.expansion(X0=X, log_scale=scale)
        reasons.append(f"segment {i} (steps {start}..{'' if n is None else start + n}): {spec.reason()}")
        end = np.inf if n is None else start + n
        last = i == len(segs) - 1
        sel = (ts >= start) & ((ts <= end) if last else (ts < end))
        if np.any(sel):
            val, mt, err, _ = ex.loss_scaled(ts[sel] - start)
            res = _result(ts[sel], val.real, mt, err, spec.rate, "")
            loss[sel], log_loss[sel], over[sel], est[sel] = res.loss, res.log_loss, res.overflow, res.error_estimate
        if not last:
            Xs, m = ex.state_scaled(int(n))
            big = float(np.max(np.abs(Xs)))
            if big > 0:
                Xs, m = Xs / big, m + math.log(big)
            X, scale = Xs, m
            start += n
    return JumpAhead(ts, loss, log_loss, over, est, bool(spec.rate > 1.0), float(spec.rate),
                     "; ".join(reasons))
