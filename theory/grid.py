"""The singularities of the loss generating function (``theory.transfer.singularities``) over a whole
grid of hyperparameters at once: one numba kernel instead of one ModeSystem per point.

Per grid point ``(alpha, beta, gamma, tau1, tau2)`` and mode ``lambda_k`` (THEORY.md section 1):

* the mode radius: ``1 / max_k rho(A_k)``, with the eigenvalues of ``A_k`` the roots of the monic
  polynomial ``mu^q det(I - A_k / mu)``, i.e. the coefficients of ``det(I - z A)`` (the symbolic
  ``Derivation.denominator``) read backwards;
* the noise feedback ``U(z) = sum_k u(z; lambda_k)`` with ``u = num / den`` the symbolic per-mode
  transfer function ``Derivation.u``;
* ``z*``: the root of ``U(z) = 1`` in ``(0, mode radius)``, and ``rho = 1 / min(mode radius, z*)``.

Both polynomials are taken from the symbolic derivation as tables of coefficients of
``z^i lambda^j``; each entry is a lambdified function of ``(alpha, beta, gamma, tau1, tau2)``,
evaluated once per grid point, and the kernel only runs Horner's rule over ``lambda`` and ``z``,
so nothing is retyped. It decides exactly as the per-point route does: ``U(1)`` only when every
mode is stable at ``z = 1``; the root is bracketed by the first point of the same scan towards the
pole (``R (1 - 10^-0.3 .. 10^-15)``, or ``10^-3 .. 10^6`` when every ``A_k`` is nilpotent) where
``U >= 1`` (a scan, not a bisection: within ~1e-15 of the pole rounding can flip the sign of U),
then found by Newton's method safeguarded by bisection. Agreement with ``singularities`` is
checked in ``tests/theory/test_grid.py``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp
from numba import njit, prange

from theory import checks
from theory.methods import alpha, beta, get_method, lam
from theory.noise import GAUSSIAN, NoiseModel, batch_factor
from theory.problem import Problem
from theory.symbolic import b, derive, gamma, tau1, tau2, z

GRID_ARGS = (alpha, beta, gamma, tau1, tau2)
# the bracketing scan of theory.transfer.singularities, point for point
_TOWARDS_POLE = 1.0 - np.logspace(-0.3, -15, 60)
_NO_POLE = np.logspace(-3, 6, 60)
_CANDIDATE = 1e-6
_ZW = 4                 # z-coefficients per mode in the kernel (degree <= 3, zero-padded)


class _Table:
    """Coefficients of ``z^i lambda^j`` of a polynomial, as functions of GRID_ARGS."""

    def __init__(self, poly: sp.Expr):
        p = sp.Poly(sp.expand(poly), z, lam)
        extra = p.free_symbols - set(GRID_ARGS) - {z, lam}
        if extra:
            raise ValueError(f"coefficients depend on unexpected symbols {sorted(map(str, extra))}")
        dz, dl = p.degree(z), p.degree(lam)
        self.shape = (dz + 1, dl + 1)
        terms = p.as_dict()
        self._fns = [[sp.lambdify(GRID_ARGS, sp.factor(terms.get((i, j), 0)), modules="numpy")
                      for j in range(dl + 1)] for i in range(dz + 1)]

    def evaluate(self, *vals) -> np.ndarray:
        """Shape ``(P, dz + 1, dl + 1)`` for 1-D arrays of P values of GRID_ARGS."""
        shape = np.broadcast(*vals).shape
        out = np.empty(shape + self.shape)
        for i, row in enumerate(self._fns):
            for j, fn in enumerate(row):
                out[..., i, j] = fn(*vals)
        return out


@functools.lru_cache(maxsize=None)
def _tables(method: str) -> tuple[_Table, _Table, _Table]:
    """(numerator of u, denominator of u, det(I - zA)) with 1/b replaced by gamma."""
    d = derive(method)
    num, den = sp.fraction(sp.cancel(sp.together(d.u.subs(b, 1 / gamma))))
    return _Table(num), _Table(den), _Table(d.denominator.subs(b, 1 / gamma))


@njit(cache=True, inline="always")
def _horner_lam(T, i, x):
    acc = 0.0
    for j in range(T.shape[1] - 1, -1, -1):
        acc = acc * x + T[i, j]
    return acc


@njit(cache=True, error_model="numpy")
def _polish(a1, a2, a3, x):
    """Two Newton steps on ``x^3 + a1 x^2 + a2 x + a3`` (real or complex x), kept if they help."""
    for _ in range(2):
        p = ((x + a1) * x + a2) * x + a3
        dp = (3.0 * x + 2.0 * a1) * x + a2
        if dp == 0:
            break
        y = x - p / dp
        if abs(((y + a1) * y + a2) * y + a3) >= abs(p):
            break
        x = y
    return x


@njit(cache=True, error_model="numpy")
def _max_root_modulus(c, polish):
    """Largest |root| of ``c[0] mu^q + c[1] mu^(q-1) + .. + c[q]`` (q <= 3, c[0] != 0).

    Cubic: Cardano / trigonometric form (Numerical Recipes 5.6), two roots of the trigonometric
    case from the angle-addition formulas; with ``polish`` each root then takes Newton steps on
    the cubic itself, so a simple root is accurate to rounding times its condition number
    (unpolished: ~1e-12 relative, enough to pick the modes worth polishing).
    """
    q = c.shape[0] - 1
    if q == 0:
        return 0.0
    if q == 1:
        return abs(c[1] / c[0])
    if q == 2:
        p1 = c[1] / c[0]
        p2 = c[2] / c[0]
        disc = p1 * p1 - 4.0 * p2
        if disc < 0.0:
            return np.sqrt(p2)
        t = -0.5 * (p1 + np.copysign(np.sqrt(disc), p1))
        return abs(t) if t == 0.0 else max(abs(t), abs(p2 / t))
    a1 = c[1] / c[0]
    a2 = c[2] / c[0]
    a3 = c[3] / c[0]
    Q = (a1 * a1 - 3.0 * a2) / 9.0
    R = (2.0 * a1 * a1 * a1 - 9.0 * a1 * a2 + 27.0 * a3) / 54.0
    shift = a1 / 3.0
    if R * R < Q * Q * Q:
        angle = np.arccos(R / np.sqrt(Q * Q * Q)) / 3.0
        s = -2.0 * np.sqrt(Q)
        cs = np.cos(angle)
        sn = 0.5 * np.sqrt(3.0) * np.sin(angle)
        x0 = s * cs - shift                   # cos(a), cos(a + 2 pi/3), cos(a + 4 pi/3)
        x1 = s * (-0.5 * cs - sn) - shift
        x2 = s * (-0.5 * cs + sn) - shift
        if polish:
            x0 = _polish(a1, a2, a3, x0)
            x1 = _polish(a1, a2, a3, x1)
            x2 = _polish(a1, a2, a3, x2)
        return max(abs(x0), abs(x1), abs(x2))
    A = -np.copysign(np.cbrt(abs(R) + np.sqrt(R * R - Q * Q * Q)), R)
    B = 0.0 if A == 0.0 else Q / A
    x1 = A + B - shift
    z2 = complex(-0.5 * (A + B) - shift, 0.5 * np.sqrt(3.0) * (A - B))
    if polish:
        x1 = _polish(a1, a2, a3, x1)
        z2 = _polish(complex(a1), complex(a2), complex(a3), z2)
    return max(abs(x1), abs(z2))


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _feedback_value(num, den, x):
    """``U(x)`` from per-mode coefficients in z (``num[i, k]``: z^i, mode k; fixed width
    ``_ZW`` so that the loop over modes unrolls and vectorises; only reassociation of the sum)."""
    s = 0.0
    for k in range(num.shape[1]):
        n = 0.0
        d = 0.0
        for i in range(_ZW - 1, -1, -1):
            n = n * x + num[i, k]
            d = d * x + den[i, k]
        s += n / d
    return s


@njit(cache=True, error_model="numpy")
def _feedback(num, den, x):
    """``U(x)`` and ``U'(x)`` (Horner with derivative)."""
    s = 0.0
    ds = 0.0
    for k in range(num.shape[1]):
        n = 0.0
        dn = 0.0
        d = 0.0
        dd = 0.0
        for i in range(_ZW - 1, -1, -1):
            dn = dn * x + n
            n = n * x + num[i, k]
            dd = dd * x + d
            d = d * x + den[i, k]
        s += n / d
        ds += (dn * d - n * dd) / (d * d)
    return s, ds


@njit(cache=True, error_model="numpy")
def _root(num, den, lo, hi):
    """The root of ``U = 1`` in ``(lo, hi)`` (``U(lo) < 1 <= U(hi)``): Newton's method,
    falling back to bisection whenever a step leaves the bracket or shrinks it too slowly
    (``rtsafe``, Numerical Recipes 9.4), to the last bit."""
    x = 0.5 * (lo + hi)
    dx_old = hi - lo
    dx = dx_old
    f, df = _feedback(num, den, x)
    f -= 1.0
    for _ in range(400):
        if f < 0.0:
            lo = x
        else:
            hi = x
        if ((x - hi) * df - f) * ((x - lo) * df - f) > 0.0 or abs(2.0 * f) > abs(dx_old * df):
            dx_old = dx
            dx = 0.5 * (hi - lo)
            x = lo + dx
            if x == lo or x == hi:
                return x
        else:
            dx_old = dx
            dx = f / df
            prev = x
            x = x - dx
            if x == prev:
                return x
        if abs(dx) <= 2.0 * np.finfo(np.float64).eps * abs(x):
            return x
        f, df = _feedback(num, den, x)
        f -= 1.0
    return x


@njit(cache=True, error_model="numpy")
def _grid_point(p, lam_k, NUM, DEN, CHR, towards_pole, no_pole, mode_radius, worst, feedback, z_star):
    """Fill entry p of the outputs (one grid point, all modes)."""
    n = lam_k.shape[0]
    num = np.zeros((_ZW, n))
    den = np.zeros((_ZW, n))
    c = np.empty((n, CHR.shape[1]))
    radius = np.empty(n)
    for k in range(n):
        x = lam_k[k]
        for i in range(NUM.shape[1]):
            num[i, k] = _horner_lam(NUM[p], i, x)
        for i in range(DEN.shape[1]):
            den[i, k] = _horner_lam(DEN[p], i, x)
        for i in range(CHR.shape[1]):
            c[k, i] = _horner_lam(CHR[p], i, x)
        radius[k] = _max_root_modulus(c[k], False)
    # polish only the modes that can hold the maximum (unpolished error << 1e-6)
    rough = radius.max()
    top = -1.0
    arg = 0
    for k in range(n):
        if radius[k] >= rough * (1.0 - _CANDIDATE):
            r = _max_root_modulus(c[k], True)
            if r > top:
                top = r
                arg = k
    R = np.inf if top == 0.0 else 1.0 / top
    mode_radius[p] = R
    worst[p] = arg
    feedback[p] = _feedback_value(num, den, 1.0) if R > 1.0 else np.inf
    z_star[p] = np.inf
    lo = 0.0
    for i in range(towards_pole.shape[0]):
        x = no_pole[i] if np.isinf(R) else R * towards_pole[i]
        if _feedback_value(num, den, x) >= 1.0:
            z_star[p] = _root(num, den, lo, x)
            break
        lo = x


@njit(cache=True, parallel=True, error_model="numpy")
def _grid_parallel(lam_k, NUM, DEN, CHR, towards_pole, no_pole, mode_radius, worst, feedback, z_star):
    for p in prange(NUM.shape[0]):
        _grid_point(p, lam_k, NUM, DEN, CHR, towards_pole, no_pole, mode_radius, worst, feedback, z_star)


@njit(cache=True, error_model="numpy")
def _grid_serial(lam_k, NUM, DEN, CHR, towards_pole, no_pole, mode_radius, worst, feedback, z_star):
    for p in range(NUM.shape[0]):
        _grid_point(p, lam_k, NUM, DEN, CHR, towards_pole, no_pole, mode_radius, worst, feedback, z_star)


@dataclass(frozen=True)
class SingularityGrid:
    """``theory.transfer.Singularities`` field by field, as arrays over a grid of points."""

    mode_radius: np.ndarray     # 1 / max_k spectral radius(A_k)
    worst_mode: np.ndarray      # index of the mode with the largest spectral radius
    z_star: np.ndarray          # root of U(z) = 1 below the mode radius (inf if none)
    noise_feedback: np.ndarray  # U(1) (inf if a mode is unstable at z = 1)
    rate: np.ndarray            # rho = 1 / min(mode_radius, z_star): L_t ~ rho^t
    limited_by: np.ndarray      # "noise" or "mode stability"

    @property
    def diverges(self) -> np.ndarray:
        return self.rate > 1.0


def _validated(method, alpha_values, beta_values, batch_values, data_size):
    a, bt, bs = np.broadcast_arrays(np.asarray(alpha_values, dtype=float),
                                    np.asarray(beta_values, dtype=float),
                                    np.asarray(batch_values, dtype=float))
    bad = ~(np.isfinite(a) & (a > 0))
    if bad.any():
        raise ValueError(f"alpha must be finite and > 0, got {a[bad].flat[0]}")
    bad = ~((bt > -1.0) & (bt < 1.0)) if method.has_momentum else bt != 0.0
    if bad.any():
        allowed = "lie in (-1, 1)" if method.has_momentum else f"be 0 for method {method.name!r}"
        raise ValueError(f"beta must {allowed}, got {bt[bad].flat[0]}")
    unique_batches = np.unique(bs)
    factors = {v: batch_factor(checks.integer("batch", v, 1), data_size) for v in unique_batches}
    g = np.vectorize(factors.__getitem__, otypes=[float])(bs) if bs.size else bs
    return a, bt, g


def singularities_grid(problem: Problem, alpha_values, beta_values, batch_values,
                       method: str = "heavy-ball", noise: NoiseModel = GAUSSIAN,
                       parallel: bool = True) -> SingularityGrid:
    """``singularities(ModeSystem.build(problem, alpha, beta, batch, method, noise))`` for every
    point of the broadcast arrays ``alpha_values, beta_values, batch_values``, in one kernel.

    Cost ``O(P N)`` for P points and N modes (a few dozen flops per mode and point, plus ~10
    Newton steps for ``z*``). ``parallel`` runs the points on numba's threads; callers that are
    themselves run on several threads (a Dask worker) pass ``False``, since numba's default
    ``workqueue`` threading layer must not be entered from two threads at once.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    if not isinstance(noise, NoiseModel):
        raise ValueError(f"noise must be a theory.NoiseModel, got {type(noise).__name__}")
    m = get_method(method)
    a, bt, g = _validated(m, alpha_values, beta_values, batch_values, problem.data_size)
    shape = a.shape
    num_t, den_t, chr_t = _tables(m.name)
    if max(num_t.shape[0], den_t.shape[0], chr_t.shape[0]) > _ZW:
        raise ValueError(f"the grid kernel handles per-mode maps up to {_ZW - 1} moments, got "
                         f"{chr_t.shape[0] - 1}")
    vals = (a.ravel(), bt.ravel(), g.ravel(), np.full(a.size, noise.tau1), np.full(a.size, noise.tau2))
    P = a.size
    mode_radius, z_star, feedback = np.empty(P), np.empty(P), np.empty(P)
    worst = np.empty(P, dtype=np.int64)
    kernel = _grid_parallel if parallel else _grid_serial
    kernel(problem.eigenvalues, num_t.evaluate(*vals), den_t.evaluate(*vals),
                 chr_t.evaluate(*vals), _TOWARDS_POLE, _NO_POLE, mode_radius, worst, feedback, z_star)
    noise_limited = z_star < mode_radius
    with np.errstate(divide="ignore"):
        rate = np.where(noise_limited, 1.0 / z_star,
                        np.where(np.isinf(mode_radius), 0.0, 1.0 / mode_radius))
    limited = np.where(noise_limited, "noise", "mode stability")
    return SingularityGrid(mode_radius.reshape(shape), worst.reshape(shape), z_star.reshape(shape),
                           feedback.reshape(shape), rate.reshape(shape), limited.reshape(shape))
