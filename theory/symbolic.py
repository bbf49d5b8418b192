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


_FIELDS = ("transition", "char_poly", "A0", "A", "kk", "g", "e", "x0", "denominator", "v", "u",
           "w", "v_loss", "u_loss", "w_loss")


class Derivation:
    """Symbolic per-mode objects of one method (all in alpha, beta, lambda, b, tau1, tau2, z).

    Derived on first access to a symbolic field, not before: ``numeric`` (the lambdified forms
    the numeric routes use) loads from the disk cache of ``theory.formcache`` when it can, so a
    numeric computation never pays for the derivation twice. Fields:

    ``transition`` M = F + lambda p K G (``p`` the preconditioner symbol ``p_sym``); ``char_poly`` det(mu I - M), in mu; ``A0`` the noiseless
    second-moment map on vech(P); ``A`` with the tau2 self-term; ``kk`` vech(K K^T) (where
    injected noise variance lands); ``g`` the row with g . vech(P) = E[(G x)^2]; ``e`` the row with
    e . vech(P) = E[e^2]; ``x0`` vech(x0 x0^T), the initial second moments per unit c_k;
    ``denominator`` det(I - z A), the common denominator of every transfer function; per mode
    ``v`` = lambda g R x0 (per unit c_k; sum -> V(z)), ``u`` = z tau1 lambda^2 g R kk / b
    (sum -> U(z)), ``w`` = z lambda^2 g R kk / (b (1 - z)) (per unit sigma^2), and the e-channel
    analogues ``v_loss, u_loss, w_loss`` (each with the factor 1/2 of the loss);
    ``gradient_at_iterate``: G selects e, so L(z) = V / (2 (1 - U)) + label-noise terms.

    In a notebook a derivation renders as LaTeX (``_repr_latex_``: the map, the characteristic
    polynomial, U, V and L(z)).
    """

    def __init__(self, method: Method):
        self._method_obj = method
        self.method = method.name
        self.extra = method.extra_symbols                 # numeric forms' trailing arguments
        self.preconditioner = method.preconditioner       # p(lambda), written p in the fields

    def numeric_expr(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the preconditioner symbol p replaced by p(lambda): a function of
        (alpha, beta, lambda, ...) ready to lambdify."""
        return expr.subs(p_sym, self.preconditioner) if self.preconditioner != 1 else expr

    @functools.cached_property
    def _fields(self) -> dict:
        return _derive_fields(self._method_obj)

    def __getattr__(self, name):
        if name in _FIELDS:
            return self._fields[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @functools.cached_property
    def gradient_at_iterate(self) -> bool:
        m = self._method_obj
        e_row = sp.Matrix([[1] + [0] * (m.dim - 1)])
        return _quadratic_functional(m.G) == _quadratic_functional(e_row)

    def loss_formula(self) -> sp.Expr:
        """``L(z)`` written in the symbols V, U, W, V_L, U_L, W_L, sigma^2 (per-mode sums)."""
        V, U, W, VL, UL, WL, s2 = sp.symbols("V U W V_L U_L W_L sigma^2")
        if self.gradient_at_iterate:
            return (V + s2 * W) / (2 * (1 - U)) + s2 / (2 * (1 - z))
        return VL + s2 * WL + UL * (V + s2 * W) / (1 - U) + s2 / (2 * (1 - z))

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

    def __repr__(self) -> str:
        return f"Derivation(method={self.method!r})"

    def _repr_latex_(self) -> str:
        """The derivation as one aligned LaTeX block (Jupyter renders it)."""
        L = sp.latex
        rows = [
            rf"M(\lambda) &= {L(self.transition)}",
            rf"\det(\mu I - M) &= {L(sp.collect(self.char_poly, mu, sp.factor))}",
            rf"U(z) &= \sum_k u(z; \lambda_k), \quad u = {L(self.u)}",
            rf"V(z) &= \sum_k c_k\, v(z; \lambda_k), \quad v = {L(self.v)}",
            rf"L(z) &= {L(self.loss_formula())}",
        ]
        title = rf"\text{{{self.method}}}"
        return r"$\displaystyle \begin{aligned} &" + title + r" \\ " + r" \\ ".join(rows) + \
            r" \end{aligned}$"

    @functools.cached_property
    def numeric(self) -> "NumericForms":
        return NumericForms.load(self)


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


def _derive_fields(m: Method) -> dict:
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
    return dict(
        transition=M,
        char_poly=sp.expand((mu * sp.eye(d) - M).det()),
        A0=A0, A=A, kk=kk, g=g, e=e, x0=x0, denominator=res.determinant(),
        v=res.transfer(g, x0, lam),
        u=res.transfer(g, kk, z * tau1 * lam ** 2 / b),
        w=res.transfer(g, kk, z * lam ** 2 / (b * (1 - z))),
        v_loss=res.transfer(e, x0, half * lam),
        u_loss=res.transfer(e, kk, half * z * tau1 * lam ** 2 / b),
        w_loss=res.transfer(e, kk, half * z * lam ** 2 / (b * (1 - z))),
    )


@functools.lru_cache(maxsize=None)
def _derive(m: Method) -> Derivation:
    return Derivation(m)


def derive(method) -> Derivation:
    """The symbolic per-mode objects of ``method`` (a Method, a shipped method's name or update
    equations), derived once (cached) and only when a symbolic field is first read. The derivation
    depends on the method's structure, not on the values bound to its extra parameters, which stay
    symbols here."""
    return _derive(get_method(method).structure)


def _numeric_expr(expr):
    """``expr`` with 1/b -> gamma and denominators cleared, so that gamma = 0 (full batch) is
    not 0/0; polynomials in z with factored coefficients."""
    num, den = sp.fraction(sp.cancel(sp.together(expr.subs(b, 1 / gamma))))
    return _in_z(num) / _in_z(den)


def _numeric_spec(d: Derivation) -> dict:
    from sgdyn.theory.formcache import Source
    args = NUMERIC_ARGS + tuple(d.extra)

    def src(expr, args=args):
        return Source(args, _numeric_expr(d.numeric_expr(expr)), broadcast=True)
    q = d.A.shape[0]
    zargs = (z,) + args
    return {
        "q": q,
        "A": [[src(d.A[i, j]) for j in range(q)] for i in range(q)],
        "kk": [src(d.kk[i]) for i in range(q)],
        "g": [src(d.g[i]) for i in range(q)],
        "e": [float(x) for x in d.e],
        "x0": [src(d.x0[i]) for i in range(q)],
        **{name: src(getattr(d, name), zargs)
           for name in ("v", "u", "w", "v_loss", "u_loss", "w_loss")},
        "char": [src(c) for c in sp.Poly(d.char_poly, mu).all_coeffs()],
    }


class NumericForms:
    """numpy functions lambdified from a Derivation (the batch enters as ``gamma = 1/b``).

    Matrices are returned with the per-mode axis first: ``A(alpha, beta, lam, gamma, tau1, tau2)``
    has shape ``lam.shape + (q, q)``; transfer functions take ``z`` first and broadcast. Built by
    ``NumericForms.load``, from the disk cache (``theory.formcache``) or by deriving.
    """

    def __init__(self, spec: dict, gradient_at_iterate: bool):
        self.q = spec["q"]
        self._A = spec["A"]
        self._kk = spec["kk"]
        self._g = spec["g"]
        self._e = np.array(spec["e"], dtype=float)
        self._x0 = spec["x0"]
        self.v, self.u, self.w = spec["v"], spec["u"], spec["w"]
        self.v_loss, self.u_loss, self.w_loss = spec["v_loss"], spec["u_loss"], spec["w_loss"]
        self._char_coeffs = spec["char"]
        self.gradient_at_iterate = gradient_at_iterate

    @classmethod
    def load(cls, d: Derivation) -> "NumericForms":
        from sgdyn.theory.formcache import load_or_build
        spec = load_or_build("numeric-forms", d._method_obj, (__name__,), lambda: _numeric_spec(d))
        return cls(spec, d.gradient_at_iterate)

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
