"""Edges of stability: the largest step sizes at which full-batch methods can still converge.

Everything here is derived (sympy) from a description of the method, never typed in:

* **Deterministic edges** (docs/edges.md). For a method of ``theory.methods`` the noiseless
  per-mode map is ``M = F + lambda K G``; its characteristic polynomial ``det(mu I - M)``
  (``theory.symbolic.derive(method).char_poly``) depends on ``alpha`` and ``lambda`` only through
  ``x = alpha lambda``. All roots lie in the open unit disk iff the Schur-Cohn/Jury conditions
  hold; we get them by the bilinear map ``mu = (1 + s)/(1 - s)`` and the Lienard-Chipart form of
  the Routh-Hurwitz criterion (all coefficients and every other Hurwitz determinant positive),
  which SymPy 1.14 has no routine for. The edge is the first positive root ``x(beta)`` of one of the
  conditions; which condition binds can change with ``beta``, so the edge is a list of pieces
  ``(beta interval, x(beta), how the roots leave the disk)``. The tests compare the pieces with the
  closed forms ``2`` (GD), ``2 (1 + beta)`` (heavy ball) and ``(2 + 2 beta)/(1 + 2 beta)``
  (Nesterov, beta > -1/3) and with numeric roots.
* **SAM edge** (Long & Bartlett, JMLR 2024, arXiv 2309.12488; docs/edges.md). SAM with
  normalised ascent ``w~ = w + rho g/||g||``, ``w <- w - eta grad L(w~)``, on the local quadratic
  ``lambda e^2 / 2`` with the normaliser ``||g||`` frozen multiplies ``e`` by
  ``1 - eta lambda - eta rho lambda^2 / ||g||``; the edge is the positive ``lambda`` where that
  multiplier is ``-1``: ``(||g||/(2 rho)) (sqrt(1 + 8 rho/(eta ||g||)) - 1)``. SAM on a quadratic with
  top eigenvalue ``lambda_1`` (``eta lambda_1 < 2``) ends on the 2-cycle ``+-a* u_1``, the fixed point
  of ``a -> -(one SAM step from a u_1)``: ``a* = eta lambda_1 rho / (2 - eta lambda_1)``, where
  ``SAM_edge(eta, rho, lambda_1 a*) = lambda_1`` exactly.
* **Linear networks** (Craciun & Ghoshdastidar, arXiv 2402.13108; docs/edges.md). With the
  squared loss GD can converge only to minima of sharpness ``< 2/eta``, so
  ``eta_crit = 2 / (sharpness of the flattest global minimum)``. Scalar depth-L network
  ``f = (prod_i w_i) x``: loss ``a/2 (P - p)^2 + const`` with ``P = prod_i w_i``, ``a = mean x^2``,
  ``p = mean(xy)/a``; at a minimum the Hessian is ``a grad P grad P^T`` (rank one), of eigenvalue
  ``a sum_i (p/w_i)^2``, minimised under ``prod |w_i| = |p|`` by AM-GM at the balanced point
  ``|w_i| = |p|^{1/L}``: ``eta_crit = 2 / (a L |p|^{2 - 2/L})``. Matrix networks on whitened data
  (``E x x^T = I``): loss ``||W_L..W_1 - Phi||_F^2 / 2 + const``; the flattest minimum is found
  numerically (``flattest_matrix_minimum``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy import linalg, optimize

from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.methods import alpha, beta, get_method, lam
from sgdyn.theory.symbolic import derive, mu
from sgdyn.theory.system import extra_arguments

x = sp.Symbol("x", real=True)            # alpha * lambda
_s = sp.Symbol("s")

# --------------------------------------------------------------------------- Schur stability


def schur_conditions(poly: sp.Expr, var: sp.Symbol = mu) -> tuple[sp.Expr, ...]:
    """Expressions that are all ``> 0`` iff every root of the real monic ``poly`` (in ``var``)
    lies strictly inside the unit circle.

    The bilinear map ``var = (1 + s)/(1 - s)`` sends the unit disk to the left half plane:
    ``q(s) = (1 - s)^n poly((1 + s)/(1 - s))``. Lienard-Chipart: ``q`` is Hurwitz iff all its
    coefficients are positive (they share the sign of ``q(0) = poly(1) > 0`` for a stable monic
    ``poly``) and the Hurwitz determinants ``Delta_{n-1}, Delta_{n-3}, ..`` are positive. The
    leading coefficient of ``q`` is ``(-1)^n poly(-1)``: its sign change is a root crossing -1.
    Returned order: ``q_0 = poly(1), q_1, .., q_n`` then the determinants.
    """
    n = sp.Poly(poly, var).degree()
    q = sp.Poly(sp.cancel(sp.expand((1 - _s) ** n * poly.subs(var, (1 + _s) / (1 - _s)))), _s)
    c = [sp.factor(q.coeff_monomial(_s ** k)) for k in range(n + 1)]      # q_0 .. q_n
    a = c[::-1]                                                            # a_0 s^n + .. + a_n
    hurwitz = sp.Matrix(n, n, lambda i, j: a[2 * (j + 1) - (i + 1)]
                        if 0 <= 2 * (j + 1) - (i + 1) <= n else 0)
    dets = [sp.factor(hurwitz[:k, :k].det()) for k in range(n - 1, 0, -2) if k > 1]
    return tuple(c) + tuple(dets)


def _crossing(index: int, degree: int) -> str:
    if index == 0:
        return "mu = +1"
    if index == degree:
        return "mu = -1"
    return "complex pair on |mu| = 1"


# --------------------------------------------------------------------------- deterministic edges


@dataclass(frozen=True)
class EdgePiece:
    """On ``beta_low < beta < beta_high`` the edge is ``alpha lambda = edge(beta)``."""

    beta_low: sp.Expr
    beta_high: sp.Expr
    edge: sp.Expr        # in the symbol theory.methods.beta
    crossing: str        # "mu = -1", "mu = +1" or "complex pair on |mu| = 1"


@dataclass(frozen=True)
class DeterministicEdge:
    """The stability edge in ``x = alpha lambda`` of a noiseless method, derived from its
    characteristic polynomial (see the module docstring)."""

    method: str
    char_poly: sp.Expr                 # det(mu I - M) with alpha lambda -> x
    conditions: tuple[sp.Expr, ...]    # Schur conditions in (x, beta): stable iff all > 0
    pieces: tuple[EdgePiece, ...]

    def piece(self, beta_value) -> EdgePiece:
        b = float(beta_value)
        for k, p in enumerate(self.pieces):
            # an inner breakpoint belongs to the piece on its left (the edge is continuous there)
            inner_end = b == float(p.beta_high) and k + 1 < len(self.pieces)
            if float(p.beta_low) < b < float(p.beta_high) or inner_end:
                return p
        raise ValueError(f"beta must lie inside one of the pieces of the {self.method} edge "
                         f"{[(float(p.beta_low), float(p.beta_high)) for p in self.pieces]}, got {b}")

    def alpha_lambda(self, beta_value=0.0) -> float:
        """The largest ``alpha * lambda`` below which every root is in the unit disk."""
        return float(self.piece(beta_value).edge.subs(beta, beta_value))

    def critical_lr(self, sharpness, beta_value=0.0) -> float:
        """``alpha_crit = edge(beta) / sharpness``: GD-type iterations on a quadratic with top
        eigenvalue ``sharpness`` converge iff ``alpha < alpha_crit``."""
        return self.alpha_lambda(beta_value) / checks.positive("sharpness", sharpness)


def _binding_root(candidates, conds, b_value):
    """The candidate ``(condition index, root)`` that is the smallest real positive root at
    ``beta = b_value``, after checking that every condition holds on ``(0, root)`` (at its middle
    and near both ends), i.e. that the stable interval starts at ``alpha lambda = 0+``."""
    best, where = None, None
    for i, (_, root) in enumerate(candidates):
        val = complex(sp.N(root.subs(beta, b_value), 30))
        if abs(val.imag) < 1e-20 and val.real > 1e-20 and (best is None or val.real < best):
            best, where = val.real, i
    if where is None:
        raise ValueError(f"no finite edge at beta = {b_value}: no condition changes sign for x > 0")
    for frac in (1e-6, 0.5, 1 - 1e-6):
        if any(float(c.subs({x: frac * best, beta: b_value})) <= 0 for c in conds):
            raise ValueError(f"not stable on (0, {best}) at beta = {b_value}: no edge of the usual kind")
    return candidates[where]


@functools.lru_cache(maxsize=None)
def _deterministic_edge(m) -> DeterministicEdge:
    name = m.label
    values = {p.symbol: v for p, v in zip(m.extra, extra_arguments(m))}
    d = derive(m)
    poly = sp.expand(d.numeric_expr(d.char_poly).subs(values).subs(alpha, x / lam))
    if lam in poly.free_symbols:
        raise ValueError(f"method {name!r}: the characteristic polynomial does not depend on "
                         "alpha and lambda through alpha * lambda only")
    conds = schur_conditions(poly)
    degree = sp.Poly(poly, mu).degree()
    # every root x(beta) of every condition, tagged with the condition's index
    candidates = [(i, r) for i, c in enumerate(conds) for r in sp.solve(c, x) if sp.simplify(r) != 0]
    lo, hi = sp.Integer(-1), sp.Integer(1)
    if not m.has_momentum:      # no beta in the polynomial: one piece, whatever beta
        i, r = _binding_root(candidates, conds, 0)
        piece = EdgePiece(lo, hi, sp.simplify(r), _crossing(i, degree))
        return DeterministicEdge(name, poly, conds, (piece,))
    # beta values where the binding root can change: candidates meeting, poles, zeros
    breaks = {lo, hi}
    roots = [r for _, r in candidates]
    events = [sp.numer(sp.together(r)) for r in roots] + [sp.denom(sp.together(r)) for r in roots]
    events += [sp.numer(sp.together(r1 - r2)) for k, r1 in enumerate(roots) for r2 in roots[k + 1:]]
    for ev in events:
        if beta in ev.free_symbols:
            breaks |= {b for b in sp.solve(ev, beta) if b.is_real and lo < b < hi}
    breaks = sorted(breaks, key=float)
    pieces: list[EdgePiece] = []
    for b0, b1 in zip(breaks[:-1], breaks[1:]):
        i, r = _binding_root(candidates, conds, (b0 + b1) / 2)
        r = sp.simplify(r)
        if pieces and sp.simplify(pieces[-1].edge - r) == 0:
            pieces[-1] = EdgePiece(pieces[-1].beta_low, b1, r, pieces[-1].crossing)
        else:
            pieces.append(EdgePiece(b0, b1, r, _crossing(i, degree)))
    return DeterministicEdge(name, poly, conds, tuple(pieces))


def deterministic_edge(method) -> DeterministicEdge:
    """The edge of stability of ``method`` (name, update equations or Method; extra parameters at
    their bound values), derived once and cached."""
    return _deterministic_edge(get_method(method))


# --------------------------------------------------------------------------- SAM

eta_s, rho_s, grad_s, lam_s, a_s = sp.symbols("eta rho g lambda a", positive=True)


def sam_local_multiplier() -> sp.Expr:
    """``d e_{t+1} / d e_t`` of SAM on ``lambda e^2 / 2`` with the normaliser ``||g||`` frozen:
    ``e -> e - eta lambda (e + rho lambda e / ||g||)`` (symbols eta, rho, lambda, g = ||g||)."""
    e = sp.Symbol("e", real=True)
    step = e - eta_s * lam_s * (e + rho_s * lam_s * e / grad_s)
    return sp.expand(sp.diff(step, e))


@functools.lru_cache(maxsize=None)
def sam_edge_expr() -> sp.Expr:
    """The SAM edge in (eta, rho, g): the positive ``lambda`` with local multiplier ``-1``, i.e.
    ``eta lambda + eta rho lambda^2 / g = 2``."""
    roots = [r for r in sp.solve(sp.Eq(sam_local_multiplier(), -1), lam_s)
             if r.is_positive is not False]
    if len(roots) != 1:
        raise ValueError(f"expected one positive root for the SAM edge, got {roots}")
    return roots[0]


@functools.lru_cache(maxsize=None)
def _sam_edge_numeric():
    # rationalised (1 / radsimp(1/edge)) so that large g does not cancel sqrt(1 + u) - 1
    return sp.lambdify((eta_s, rho_s, grad_s), 1 / sp.radsimp(1 / sam_edge_expr()), modules="numpy")


def _positive_array(name, value):
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return arr


def sam_edge(eta, rho, grad_norm):
    """``SAM_edge(eta, rho, ||g||) = (||g||/(2 rho)) (sqrt(1 + 8 rho/(eta ||g||)) - 1)`` (Long &
    Bartlett 2024): the largest sharpness at which SAM's local quadratic is stable; always below
    ``2/eta``. Arguments broadcast (numpy); a scalar in gives a float out."""
    e, r, g = (_positive_array(n, v) for n, v in (("eta", eta), ("rho", rho), ("grad_norm", grad_norm)))
    out = _sam_edge_numeric()(e, r, g) * np.ones(np.broadcast(e, r, g).shape)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class SamEdgeLimits:
    small_rho: sp.Expr         # rho -> 0:  2/eta (GD's edge)
    large_grad: sp.Expr        # ||g|| -> inf: 2/eta
    small_grad: sp.Expr        # ||g|| -> 0: the edge behaves like this (-> 0)


@functools.lru_cache(maxsize=None)
def sam_edge_limits() -> SamEdgeLimits:
    """Limits of the SAM edge, computed by sympy from ``sam_edge_expr``."""
    edge = sam_edge_expr()
    return SamEdgeLimits(sp.limit(edge, rho_s, 0, "+"), sp.limit(edge, grad_s, sp.oo),
                         sp.simplify(sp.limit(edge / sp.sqrt(grad_s), grad_s, 0, "+") * sp.sqrt(grad_s)))


@functools.lru_cache(maxsize=None)
def sam_two_cycle_expr() -> sp.Expr:
    """Amplitude ``a*`` of SAM's 2-cycle along the top eigenvector: ``a > 0`` has gradient
    ``lambda a u_1`` and ascent direction ``u_1``, so one step maps ``a`` to
    ``a - eta lambda (a + rho)``; the 2-cycle solves ``a - eta lambda (a + rho) = -a``."""
    sol = sp.solve(sp.Eq(a_s - eta_s * lam_s * (a_s + rho_s), -a_s), a_s)
    return sp.simplify(sol[0])


@dataclass(frozen=True)
class SamTwoCycle(Result):
    amplitude: float     # a*: SAM alternates between +a* u_1 and -a* u_1
    grad_norm: float     # ||g|| on the cycle = lambda_1 a*
    edge: float          # SAM_edge(eta, rho, ||g||) on the cycle (= lambda_1 exactly)


def sam_two_cycle(eta, rho, top_eigenvalue) -> SamTwoCycle:
    """SAM's limit cycle on a quadratic of top eigenvalue ``lambda_1``: ``a* = eta lambda_1 rho /
    (2 - eta lambda_1)`` (needs ``eta lambda_1 < 2``), ``||g|| = lambda_1 a*``; the edge there equals
    ``lambda_1`` (docs/edges.md)."""
    e, r, l1 = (checks.positive(n, v) for n, v in (("eta", eta), ("rho", rho),
                                                     ("top_eigenvalue", top_eigenvalue)))
    if e * l1 >= 2:
        raise ValueError(f"eta * top_eigenvalue must be < 2 for SAM's 2-cycle, got {e * l1}")
    amp = float(sam_two_cycle_expr().subs({eta_s: e, rho_s: r, lam_s: l1}))
    g = l1 * amp
    return SamTwoCycle(amp, g, sam_edge(e, r, g))


# --------------------------------------------------------------------------- linear networks


@dataclass(frozen=True)
class ScalarNetworkEdge(Result):
    a: float             # mean x^2
    p: float             # mean(x y) / a: the product at every global minimum
    depth: int
    sharpness: float     # of the flattest global minimum: a L |p|^{2 - 2/L}
    critical_lr: float   # 2 / sharpness


def scalar_network_edge(a, p, depth) -> ScalarNetworkEdge:
    """Critical step of GD on the scalar depth-L network ``f = (prod w_i) x`` with squared loss:
    ``eta_crit = 2 / (a L |p|^{2 - 2/L})`` (derivation in the module docstring; Craciun &
    Ghoshdastidar 2024). ``a = mean x^2 > 0``, ``p = mean(xy)/a != 0``."""
    a = checks.positive("a", a)
    p = checks.finite_real("p", p)
    L = checks.integer("depth", depth, 1)
    if p == 0:
        raise ValueError("p = mean(xy)/mean(x^2) must be nonzero (at p = 0 flat minima make eta_crit infinite)")
    s = a * L * abs(p) ** (2.0 - 2.0 / L)
    return ScalarNetworkEdge(a, p, L, s, 2.0 / s)


def scalar_network_moments(x_data, y_data) -> tuple[float, float]:
    """``(a, p) = (mean x^2, mean(x y) / mean x^2)`` of scalar regression data."""
    xs = np.asarray(x_data, dtype=np.float64)
    ys = np.asarray(y_data, dtype=np.float64)
    if xs.ndim != 1 or xs.shape != ys.shape or xs.size == 0:
        raise ValueError(f"x_data and y_data must be 1-D arrays of the same non-zero length, got "
                         f"{xs.shape} and {ys.shape}")
    a = float(np.mean(xs * xs))
    return a, float(np.mean(xs * ys)) / checks.positive("mean x^2", a)


def product_jacobian(weights) -> np.ndarray:
    """Jacobian of ``vec(W_L .. W_1)`` (column-major vec) in the layers' column-major vecs:
    ``d(prod) = sum_i A_i dW_i B_i`` with ``A_i = W_L..W_{i+1}``, ``B_i = W_{i-1}..W_1``, and
    ``vec(A X B) = (B^T kron A) vec(X)``. At a global minimum of ``||prod - Phi||_F^2 / 2`` (whitened
    data) the Hessian is ``J^T J``, so the sharpness there is ``sigma_max(J)^2``."""
    Ws = [np.asarray(w, dtype=np.float64) for w in weights]
    blocks = []
    for i in range(len(Ws)):
        A = functools.reduce(np.matmul, Ws[:i:-1]) if i + 1 < len(Ws) else np.eye(len(Ws[-1]))
        B = functools.reduce(np.matmul, Ws[i - 1::-1]) if i else np.eye(Ws[0].shape[1])
        blocks.append(np.kron(B.T, A))
    return np.hstack(blocks)


def minimum_sharpness(weights) -> float:
    """Top Hessian eigenvalue at a global minimum (``sigma_max(product_jacobian)^2``)."""
    return float(np.linalg.norm(product_jacobian(weights), 2) ** 2)


def balanced_factorisation(target, depth: int, width: int) -> list[np.ndarray]:
    """``W_1 = E S^{1/L} V^T``, ``W_i = E S^{1/L} E^T``, ``W_L = U S^{1/L} E^T`` from the SVD
    ``Phi = U S V^T`` (``E``: first columns of the identity): product ``Phi`` and balanced
    (``W_{i+1}^T W_{i+1} = W_i W_i^T``)."""
    Phi = np.asarray(target, dtype=np.float64)
    U, S, Vt = np.linalg.svd(Phi, full_matrices=False)
    r = S.size
    if width < r:
        raise ValueError(f"width must be >= min(target.shape) = {r}, got {width}")
    E = np.eye(width)[:, :r]
    root = np.diag(S ** (1.0 / depth))
    if depth == 1:
        return [Phi.copy()]
    return [E @ root @ Vt] + [E @ root @ E.T for _ in range(depth - 2)] + [U @ root @ E.T]


@dataclass(frozen=True)
class FlatMinimum(Result):
    sharpness: float           # smallest sharpness found over the gauge orbit
    critical_lr: float         # 2 / sharpness
    balanced_sharpness: float  # sharpness of the balanced factorisation
    weights: tuple             # the minimiser found (W_1, .., W_L)
    restarts: int


def flattest_matrix_minimum(target, depth, width, restarts=4, seed=0) -> FlatMinimum:
    """Numeric flattest global minimum of the depth-L linear network on whitened data
    (loss ``||W_L..W_1 - Phi||_F^2 / 2``, all hidden layers of width ``width``).

    What is computed: the minimum of ``sigma_max(J)^2`` (the exact Hessian's top eigenvalue at a
    global minimum) over the gauge orbit ``W_1 -> G_1 W_1, W_i -> G_i W_i G_{i-1}^{-1},
    W_L -> W_L G_{L-1}^{-1}`` of the balanced factorisation, ``G_i = expm(S_i)``, by BFGS
    (finite-difference gradients) from the balanced point and from ``restarts`` random gauges
    (seeded). The gauge orbit holds every minimiser whose hidden representations have full rank
    ``width`` when ``width = rank(Phi)``. On whitened data the balanced minima are expected to be the flattest,
    with sharpness ``L ||Phi||_2^{2 - 2/L}``; this routine checks that instead of assuming it.
    """
    Phi = np.asarray(target, dtype=np.float64)
    if Phi.ndim != 2 or not np.all(np.isfinite(Phi)) or not np.any(Phi):
        raise ValueError("target must be a finite, nonzero 2-D array")
    L = checks.integer("depth", depth, 1)
    h = checks.integer("width", width, 1)
    restarts = checks.integer("restarts", restarts, 0)
    base = balanced_factorisation(Phi, L, h)

    def weights_of(theta):
        G = [linalg.expm(S) for S in theta.reshape(L - 1, h, h)]
        Gi = [np.linalg.inv(g) for g in G]
        out = [G[0] @ base[0]]
        out += [G[i] @ base[i] @ Gi[i - 1] for i in range(1, L - 1)]
        return out + [base[-1] @ Gi[-1]]

    balanced = minimum_sharpness(base)
    if L == 1:
        return FlatMinimum(balanced, 2.0 / balanced, balanced, tuple(base), 0)
    rng = np.random.default_rng(seed)
    n = (L - 1) * h * h
    best = None
    for start in [np.zeros(n)] + [0.3 * rng.standard_normal(n) for _ in range(restarts)]:
        # the sharpness is smooth where the top singular value of J is simple (as at the balanced
        # point when ||Phi||_2 is a simple singular value): quasi-Newton with finite differences
        res = optimize.minimize(lambda t: minimum_sharpness(weights_of(t)), start, method="BFGS",
                                options={"gtol": 1e-9})
        if best is None or res.fun < best.fun:
            best = res
    s = float(best.fun)
    return FlatMinimum(s, 2.0 / s, balanced, tuple(weights_of(best.x)), restarts)
