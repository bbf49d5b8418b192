"""Symbolic derivation (sympy) of everything the theory needs, from a method description.

For a method ``x_{t+1} = F x_t + K p(lambda) g_t``, ``g_t = lambda G x_t + xi_t``
(``sgdyn.theory.methods``; ``p`` the preconditioner, 1 by default; below ``K`` stands for ``p K``),
per mode:

* second moments ``P_t = E[x_t x_t^T]`` evolve as ``P_{t+1} = M P_t M^T + K K^T s_t`` with
  ``M = F + lambda p K G`` and the SE noise variance of the mode (``docs/theory.md``)
  ``s_t = (1/b) (tau1 lambda D_t - tau2 lambda^2 G P_t G^T + sigma^2 lambda)``, where
  ``D_t = sum_j lambda_j G P_{j,t} G^T`` is the only coupling between modes (``= 2 L_t`` without
  label noise when the gradient is taken at the iterate, as in heavy ball and SGD);
* on ``X = vech(P)`` this is ``X_{t+1} = A X_t + (tau1 lambda / b) kk D_t + (sigma^2 lambda / b) kk``
  with ``A = A0 - (tau2 lambda^2 / b) kk g^T`` (the tau2 self-term), ``kk = vech(K K^T)``,
  ``g . X = G P G^T``, ``e . X = E[e^2]``;
* generating functions (``sum_t z^t (.)``), with ``R(z) = (I - z A)^{-1}``:
  ``V(z) = sum_k c_k lambda_k g R x0``, ``U(z) = z (tau1/b) sum_k lambda_k^2 g R kk``,
  ``W(z) = z/(1-z) (1/b) sum_k lambda_k^2 g R kk``; ``D(z) = (V + sigma^2 W) / (1 - U)``;
  the loss ``L(z) = V_L + sigma^2 W_L + U_L D + sigma^2 / (2 (1 - z))`` with the ``e``-channel
  analogues ``V_L, U_L, W_L`` (each with a factor 1/2). When ``G`` selects ``e`` (heavy ball, SGD)
  this is the core paper's ``L(z) = V(z) / (2 (1 - U(z)))`` (Velikanov et al. 2023, eq. for
  the loss generating function), plus the label-noise terms.

``b`` stands for the batch factor's inverse: without replacement from ``N`` points, ``1/b`` is
replaced by ``gamma = (N - b)/((N - 1) b)`` (numeric functions take ``gamma`` directly). The
numeric functions take ``(alpha, beta, lambda, gamma, tau1, tau2)`` followed by the method's
extra parameters in order (``Method.extra``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.polys.matrices import DomainMatrix

from sgdyn.theory.methods import Method, alpha, beta, get_method, lam

z, b, tau1, tau2, mu = sp.symbols("z b tau1 tau2 mu")
gamma = sp.Symbol("gamma", nonnegative=True)
p_sym = sp.Symbol("p", positive=True)    # stands for the preconditioner p(lambda) in derivations
NUMERIC_ARGS = (alpha, beta, lam, gamma, tau1, tau2)


def _vech_index(d: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(d) for j in range(i, d)]


def vech(P: sp.Matrix) -> sp.Matrix:
    """Upper-triangular entries of a symmetric matrix, row by row: (P00, P01, .., P11, ..)."""
    return sp.Matrix([P[i, j] for i, j in _vech_index(P.shape[0])])


def _quadratic_functional(row: sp.Matrix) -> sp.Matrix:
    """Row vector ``q`` with ``q . vech(P) = row P row^T`` for symmetric P."""
    return sp.Matrix([[row[i] * row[j] * (1 if i == j else 2) for i, j in _vech_index(row.shape[1])]])


def _congruence_map(M: sp.Matrix) -> sp.Matrix:
    """Matrix of ``vech(P) -> vech(M P M^T)`` on symmetric P."""
    d = M.shape[0]
    idx = _vech_index(d)
    syms = sp.symbols(f"p0:{len(idx)}")
    P = sp.zeros(d, d)
    for s, (i, j) in zip(syms, idx):
        P[i, j] = P[j, i] = s
    out = vech(M * P * M.T)
    return sp.Matrix([[sp.expand(out[r]).coeff(s) for s in syms] for r in range(len(idx))])


@dataclass(frozen=True)
class Derivation:
    """Symbolic per-mode objects of one method (all in alpha, beta, lambda, b, tau1, tau2, z)."""

    method: str
    transition: sp.Matrix        # M = F + lambda p K G
    char_poly: sp.Expr           # det(mu I - M), in mu
    A0: sp.Matrix                # noiseless second-moment map on vech(P)
    A: sp.Matrix                 # with the tau2 self-term
    kk: sp.Matrix                # vech(K K^T): where injected noise variance lands
    g: sp.Matrix                 # row: g . vech(P) = E[(G x)^2]
    e: sp.Matrix                 # row: e . vech(P) = E[e^2]
    x0: sp.Matrix                # vech(x0 x0^T): initial second moments per unit c_k
    denominator: sp.Expr         # det(I - z A): common denominator of every transfer function
    v: sp.Expr                   # per mode, per unit c_k: lambda g R x0      (sum -> V(z))
    u: sp.Expr                   # per mode: z tau1 lambda^2 g R kk / b       (sum -> U(z))
    w: sp.Expr                   # per mode, per unit sigma^2: z lambda^2 g R kk / (b (1 - z))
    v_loss: sp.Expr              # e-channel analogues, each with the factor 1/2 of the loss
    u_loss: sp.Expr
    w_loss: sp.Expr
    gradient_at_iterate: bool    # G selects e: then L(z) = V / (2 (1 - U)) + label-noise terms

    def loss_formula(self) -> sp.Expr:
        """``L(z)`` written in the symbols V, U, W, V_L, U_L, W_L, sigma^2 (per-mode sums)."""
        V, U, W, VL, UL, WL, s2 = sp.symbols("V U W V_L U_L W_L sigma^2")
        if self.gradient_at_iterate:
            return (V + s2 * W) / (2 * (1 - U)) + s2 / (2 * (1 - z))
        return VL + s2 * WL + UL * (V + s2 * W) / (1 - U) + s2 / (2 * (1 - z))

    extra: tuple = ()            # the method's extra parameter symbols (numeric forms' trailing args)
    preconditioner: sp.Expr = sp.Integer(1)   # p(lambda), written p in the expressions above

    def numeric_expr(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the preconditioner symbol p replaced by p(lambda): a function of
        (alpha, beta, lambda, ...) ready to lambdify."""
        return expr.subs(p_sym, self.preconditioner) if self.preconditioner != 1 else expr

    def summary(self, latex: bool = False) -> str:
        fmt = sp.latex if latex else sp.sstr
        lines = [
            f"method: {self.method}",
            f"per-mode map M(lambda) = {fmt(self.transition)}",
        ] + ([f"preconditioner p = {fmt(self.preconditioner)}"] if self.preconditioner != 1 else []) + [
            f"characteristic polynomial det(mu I - M) = {fmt(sp.collect(self.char_poly, mu, sp.factor))}",
            f"second-moment map A (on vech(P)) = {fmt(self.A)}",
            f"det(I - z A) = {fmt(self.denominator)}",
            f"U(z) = sum_k u(z; lambda_k),  u = {fmt(self.u)}",
            f"V(z) = sum_k c_k v(z; lambda_k),  v = {fmt(self.v)}",
            f"W(z) = sum_k w(z; lambda_k) (label noise, per unit sigma^2),  w = {fmt(self.w)}",
        ]
        if not self.gradient_at_iterate:
            lines += [f"u_L = {fmt(self.u_loss)}", f"v_L = {fmt(self.v_loss)}", f"w_L = {fmt(self.w_loss)}"]
        lines.append(f"L(z) = {fmt(self.loss_formula())}")
        return "\n".join(lines)

    @functools.cached_property
    def numeric(self) -> "NumericForms":
        return NumericForms(self)


def _in_z(expr: sp.Expr) -> sp.Expr:
    """A polynomial in z written as sum_n coefficient_n z^n with factored coefficients."""
    return sp.collect(sp.expand(expr), z, sp.factor)


class _Resolvent:
    """``(I - z A)^{-1} = b adj(b I - z B) / det(b I - z B)`` with ``B = b A`` polynomial: the
    adjugate and determinant computed once in a polynomial ring (sympy's ``DomainMatrix``, Berkowitz
    division-free), which is orders of magnitude faster than cancelling expression trees (a
    3-dimensional state: 0.1 s instead of minutes)."""

    def __init__(self, A: sp.Matrix, extra_rows=()):
        q = A.shape[0]
        Mz = (b * sp.eye(q) - z * (b * A)).applyfunc(sp.expand)
        symbols = set(Mz.free_symbols) | {z, b, tau1, tau2, lam}
        for r in extra_rows:
            symbols |= r.free_symbols
        self.gens = tuple(sorted(symbols, key=str))
        self.ring = sp.QQ[self.gens]
        self.adj, self.det = DomainMatrix.from_Matrix(Mz).convert_to(self.ring).adj_det()
        self.q = q

    def element(self, expr):
        return self.ring.from_sympy(sp.expand(expr))

    def determinant(self) -> sp.Expr:
        """``det(I - z A)``."""
        return _in_z(self.ring.to_sympy(self.det) / b ** self.q)

    def transfer(self, row: sp.Matrix, vec: sp.Matrix, factor: sp.Expr) -> sp.Expr:
        """``factor * row (I - zA)^{-1} vec`` as (polynomial in z) / (polynomial in z), b cleared
        and common factors of numerator and denominator divided out."""
        R = DomainMatrix.from_Matrix(row).convert_to(self.ring)
        V = DomainMatrix.from_Matrix(vec).convert_to(self.ring)
        core = (R * self.adj * V).to_Matrix()[0, 0]
        fnum, fden = sp.fraction(sp.together(factor))
        num = self.element(fnum * b) * self.element(core)
        den = self.element(fden) * self.det
        common = self.ring.gcd(num, den)
        num, den = self.ring.exquo(num, common), self.ring.exquo(den, common)
        return _in_z(self.ring.to_sympy(num)) / _in_z(self.ring.to_sympy(den))


@functools.lru_cache(maxsize=None)
def _derive(m: Method) -> Derivation:
    # a preconditioner is carried as the symbol p (everything stays polynomial in lambda and p)
    # and substituted only in numeric forms (``Derivation.numeric_expr``)
    pre = sp.Integer(1) if m.preconditioner == 1 else p_sym
    M = m.F + lam * pre * m.K * m.G
    d = m.dim
    A0 = _congruence_map(M)
    kk = vech((pre * m.K) * (pre * m.K).T)
    g = _quadratic_functional(m.G)
    e = _quadratic_functional(sp.Matrix([[1] + [0] * (d - 1)]))
    A = (A0 - (tau2 * lam ** 2 / b) * kk * g).applyfunc(sp.expand)
    x0 = vech(m.x0 * m.x0.T)
    res = _Resolvent(A, (g, e, x0, kk))
    half = sp.Rational(1, 2)
    return Derivation(
        method=m.name,
        transition=M,
        char_poly=sp.expand((mu * sp.eye(d) - M).det()),
        A0=A0, A=A, kk=kk, g=g, e=e, x0=x0, denominator=res.determinant(),
        v=res.transfer(g, x0, lam),
        u=res.transfer(g, kk, z * tau1 * lam ** 2 / b),
        w=res.transfer(g, kk, z * lam ** 2 / (b * (1 - z))),
        v_loss=res.transfer(e, x0, half * lam),
        u_loss=res.transfer(e, kk, half * z * tau1 * lam ** 2 / b),
        w_loss=res.transfer(e, kk, half * z * lam ** 2 / (b * (1 - z))),
        gradient_at_iterate=(g == e),
        extra=m.extra_symbols,
        preconditioner=m.preconditioner,
    )


def derive(method) -> Derivation:
    """Derive (once, cached) the symbolic per-mode objects of ``method`` (a Method, a shipped
    method's name or update equations): the derivation depends on the method's structure, not on
    the values bound to its extra parameters, which stay symbols here."""
    return _derive(get_method(method).structure)


def _lambdify(expr, args):
    """numpy function of ``args`` that broadcasts even when ``expr`` is constant in them
    (``expr`` with the preconditioner already substituted: ``Derivation.numeric_expr``)."""
    # 1/b -> gamma, with denominators cleared so that gamma = 0 (full batch) is not 0/0
    num, den = sp.fraction(sp.cancel(sp.together(expr.subs(b, 1 / gamma))))
    f = sp.lambdify(args, _in_z(num) / _in_z(den), modules="numpy")

    def call(*vals):
        out = f(*vals)
        return out + np.zeros(np.broadcast(*vals).shape, dtype=np.result_type(out, *vals))
    return call


class NumericForms:
    """numpy functions lambdified from a Derivation (the batch enters as ``gamma = 1/b``).

    Matrices are returned with the per-mode axis first: ``A(alpha, beta, lam, gamma, tau1, tau2)``
    has shape ``lam.shape + (q, q)``; transfer functions take ``z`` first and broadcast.
    """

    def __init__(self, d: Derivation):
        self.q = d.A.shape[0]
        args = NUMERIC_ARGS + tuple(d.extra)
        ne = d.numeric_expr
        self._A = [[_lambdify(ne(d.A[i, j]), args) for j in range(self.q)] for i in range(self.q)]
        self._kk = [_lambdify(ne(d.kk[i]), args) for i in range(self.q)]
        self._g = [_lambdify(ne(d.g[i]), args) for i in range(self.q)]
        self._e = np.array(d.e, dtype=float).ravel()
        self._x0 = [_lambdify(ne(d.x0[i]), args) for i in range(self.q)]
        zargs = (z,) + args
        self.v = _lambdify(ne(d.v), zargs)
        self.u = _lambdify(ne(d.u), zargs)
        self.w = _lambdify(ne(d.w), zargs)
        self.v_loss = _lambdify(ne(d.v_loss), zargs)
        self.u_loss = _lambdify(ne(d.u_loss), zargs)
        self.w_loss = _lambdify(ne(d.w_loss), zargs)
        self.gradient_at_iterate = d.gradient_at_iterate
        self._char = sp.Poly(d.char_poly, mu)
        self._char_coeffs = [_lambdify(ne(c), args) for c in self._char.all_coeffs()]

    @staticmethod
    def _stack(fns, args, axis_shape):
        return np.stack([f(*args) for f in fns], axis=-1) if axis_shape == 1 else \
            np.stack([np.stack([f(*args) for f in row], axis=-1) for row in fns], axis=-2)

    def A(self, *args) -> np.ndarray:
        return self._stack(self._A, args, 2)

    def kk(self, *args) -> np.ndarray:
        return self._stack(self._kk, args, 1)

    def g_row(self, *args) -> np.ndarray:
        return self._stack(self._g, args, 1)

    def e_row(self) -> np.ndarray:
        return self._e

    def x0(self, *args) -> np.ndarray:
        return self._stack(self._x0, args, 1)

    def char_coeffs(self, *args) -> np.ndarray:
        """Coefficients of det(mu I - M), highest power first, stacked on the last axis."""
        return self._stack(self._char_coeffs, args, 1)
