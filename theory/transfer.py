"""Numeric generating functions of the loss, from the lambdified symbolic transfer functions.

With ``S_t``-type sequences summed as ``F(z) = sum_t F_t z^t`` (``docs/theory.md``):
``U(z) = sum_k u(z; lambda_k)`` (noise feedback), ``V(z) = sum_k c_k v(z; lambda_k)`` (signal),
``W(z)`` (label-noise source), the loss ``L(z)`` (``theory.symbolic``). From them: the radius of
convergence of ``L(z)`` and so the asymptotic rate ``rho`` (``L_t ~ rho^t``): ``rho = 1 / z*`` with
``z*`` the first positive root of ``det(I - z T)`` for the full coupled second-moment map ``T``
(equal to the first root of ``U(z) = 1`` below the poles when ``tau2 <= 0``), bounded by the worst
noiseless mode: ``rho >= max_k rho(A0_k)``. ``rate_arrays`` evaluates it for many parameter points
at once in numba (the optimiser's inner loop).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from sgdyn.theory.display import Result
from sgdyn.theory.methods import MAX_STATE_DIM, Method, get_method
from sgdyn.theory.system import ModeSystem, extra_arguments

_CHUNK = 1 << 22   # complex evaluations per block (memory ~ 100 MB at most)


class GeneratingFunctions:
    """Evaluate U, V, W (and the loss-channel analogues) at arrays of complex or real z."""

    def __init__(self, system: ModeSystem):
        self.system = system
        self.forms = system.derivation.numeric
        self._lam = system.problem.eigenvalues
        self._w = system.problem.multiplicity
        self._wc = self._w * system.problem.initial

    def _sum(self, fn, z, weights):
        """``sum_k weights_k fn(z; lambda_k)`` (weights: multiplicity, times c_k for signals)."""
        z = np.asarray(z)
        flat = z.ravel()
        out = np.empty(flat.shape, dtype=np.result_type(flat, float))
        a, b, _, g, t1, t2, *extra = self.system.args
        step = max(1, _CHUNK // self._lam.size)
        for i in range(0, flat.size, step):
            vals = fn(flat[i:i + step, None], a, b, self._lam[None, :], g, t1, t2, *extra)
            out[i:i + step] = vals @ weights
        return out.reshape(z.shape)

    def U(self, z):
        return self._sum(self.forms.u, z, self._w)

    def V(self, z):
        return self._sum(self.forms.v, z, self._wc)

    def W(self, z):
        return self._sum(self.forms.w, z, self._w)

    def loss(self, z):
        """``L(z) = sum_t L_t z^t`` including the label-noise floor."""
        f = self.forms
        s2 = self.system.problem.label_noise
        U = self.U(z)
        D = self.V(z) + (s2 * self.W(z) if s2 else 0.0)
        floor = s2 / (2.0 * (1.0 - np.asarray(z))) if s2 else 0.0
        if f.gradient_at_iterate:
            return D / (2.0 * (1.0 - U)) + floor
        VL = self._sum(f.v_loss, z, self._wc)
        UL = self._sum(f.u_loss, z, self._w)
        WL = self._sum(f.w_loss, z, self._w) if s2 else 0.0
        return VL + s2 * WL + UL * D / (1.0 - U) + floor


@dataclass(frozen=True)
class Singularities(Result):
    """Where the loss generating function stops converging, and what that means."""

    mode_radius: float      # 1 / max_k rho(A0_k): A0_k the noiseless second-moment map (inf if nilpotent)
    worst_mode: int         # index of the mode with the largest rho(A0_k)
    z_star: float           # first positive root of U(z) = 1 (inf if none before mode_radius)
    noise_feedback: float   # U(1) (inf if some mode or its self-noise is unstable at z = 1)
    rate: float             # rho = 1 / min(mode_radius, z_star): L_t ~ rho^t
    limited_by: str         # "noise" or "mode stability"
    resolved: bool = True   # False: the rate is within float64 resolution of 1 (see singularities)

    _properties = ("diverges", "reason")

    @property
    def diverges(self) -> bool:
        return self.rate > 1.0

    @property
    def reason(self) -> str:
        if self.limited_by == "mode stability":
            what = (f"mode {self.worst_mode} has second-moment spectral radius "
                    f"{near_one(1.0 / self.mode_radius)}")
        elif np.isfinite(self.noise_feedback):
            what = f"noise feedback U(1) = {self.noise_feedback:.6g}, U(z*) = 1 at z* = {self.z_star:.10g}"
        else:
            what = f"noise feedback U(z*) = 1 at z* = {self.z_star:.10g} < 1"
        verdict = "diverges" if self.diverges else "converges"
        rate = near_one(self.rate, 10) if self.resolved else \
            f"1 {'+' if self.diverges else '-'} (below float64 resolution; the side from U(1))"
        return f"{verdict}: rate {rate} per step, limited by {self.limited_by} ({what})"


def near_one(x: float, digits: int = 6) -> str:
    """``x`` to ``digits`` significant digits, or as ``1 - d`` / ``1 + d`` when that many digits
    would print 1 (a converging rate never reads as "1", a diverging one never as "1" either)."""
    text = f"{x:.{digits}g}"
    if np.isfinite(x) and x != 1.0 and float(text) == 1.0:
        return f"1 {'-' if x < 1 else '+'} {abs(1.0 - x):.3g}"
    return text


class TransferPolynomials:
    """``u(z; lambda) = num(z) / den(z)`` with ``den(z) = det(I - z A)`` (``den(0) = 1``), the
    polynomial coefficients (ascending powers of z) lambdified from ``sgdyn.theory.symbolic.derive``.

    Also the coefficients of the characteristic polynomial ``det(mu I - M)`` (highest first, padded
    in front to degree ``MAX_STATE_DIM``), whose roots ``r_i`` give the noiseless second-moment
    map's spectral radius ``max |r_i|^2``. Arguments: ``(alpha, beta, lambda, gamma, tau1, tau2)``;
    the method's extra parameters are bound to ``method.extra_values``.
    """

    def __init__(self, method: Method):
        from sgdyn.theory.formcache import load_or_build
        self.method = method
        self._extra = extra_arguments(method)
        spec = load_or_build("transfer-polynomials", method.structure,
                             (__name__, "sgdyn.theory.symbolic"),
                             lambda: _transfer_spec(method.structure))
        self._num, self._den, self._char = spec["num"], spec["den"], spec["char"]

    def _stack(self, fns, args):
        args = tuple(args) + self._extra
        shape = np.broadcast(*args).shape
        return np.ascontiguousarray(np.stack([f(*args) + np.zeros(shape) for f in fns], axis=-1))

    def numerator(self, *args) -> np.ndarray:
        return self._stack(self._num, args)

    def denominator(self, *args) -> np.ndarray:
        return self._stack(self._den, args)

    def char_coeffs(self, *args) -> np.ndarray:
        """Highest power first, padded in front with zeros to degree ``MAX_STATE_DIM``."""
        c = self._stack(self._char, args)
        pad = MAX_STATE_DIM + 1 - c.shape[-1]
        return np.concatenate([np.zeros(c.shape[:-1] + (pad,)), c], axis=-1) if pad else c


def _transfer_spec(method: Method) -> dict:
    """The coefficients of u's numerator and denominator polynomials in z (ascending, scaled so
    that ``den(0) = 1``) and of the characteristic polynomial, as cacheable sources in
    ``(alpha, beta, lambda, gamma, tau1, tau2, extra parameters)``."""
    import sympy as sp

    from sgdyn.theory.formcache import Source
    from sgdyn.theory.methods import lam
    from sgdyn.theory.symbolic import NUMERIC_ARGS, b, derive, gamma, mu, p_sym, z
    d = derive(method)
    num, den = sp.fraction(sp.cancel(sp.together(d.u.subs(b, 1 / gamma))))
    den0 = sp.Poly(den, z).all_coeffs()[-1]
    if den0.free_symbols - {lam, p_sym} - set(d.extra) or den0 == 0:
        raise ValueError(f"det(I - zA) of {method.name!r} must be a nonzero constant at z = 0, "
                         f"got {den0}")
    args = NUMERIC_ARGS + tuple(d.extra)
    ne = d.numeric_expr

    def src(c):
        return Source(args, ne(c))
    return {"num": [src(c) for c in reversed(sp.Poly(sp.expand(num / den0), z).all_coeffs())],
            "den": [src(c) for c in reversed(sp.Poly(sp.expand(den / den0), z).all_coeffs())],
            "char": [src(c) for c in sp.Poly(d.char_poly, mu).all_coeffs()]}


@functools.lru_cache(maxsize=None)
def _transfer_polynomials(method: Method) -> TransferPolynomials:
    return TransferPolynomials(method)


def transfer_polynomials(method) -> TransferPolynomials:
    """Cached per method (name, text or Method; its bound extra values included)."""
    return _transfer_polynomials(get_method(method))


@njit(cache=True)
def _root_modulus(c):
    """Largest |root| of the polynomial with coefficients ``c`` (highest first, leading zeros
    allowed); closed form up to degree 2 (no cancellation: Numerical Recipes 5.6), numpy's
    companion-matrix roots beyond."""
    n = c.shape[0]
    first = 0
    while first < n - 1 and c[first] == 0.0:
        first += 1
    deg = n - 1 - first
    if deg == 0:
        return 0.0
    if deg == 1:
        return abs(c[n - 1] / c[n - 2])
    if deg == 2:
        a, b_, cc = c[n - 3], c[n - 2], c[n - 1]
        disc = b_ * b_ - 4.0 * a * cc
        if disc < 0.0:
            return np.sqrt(cc / a)          # complex pair: |r|^2 = c / a
        q = -0.5 * (b_ + np.copysign(np.sqrt(disc), b_))
        if q == 0.0:
            return 0.0
        return max(abs(q / a), abs(cc / q))
    r = np.roots(c[first:].astype(np.complex128))
    return np.abs(r).max()


@njit(cache=True)
def _horner(coef, x):
    acc = 0.0
    for i in range(coef.shape[0] - 1, -1, -1):
        acc = acc * x + coef[i]
    return acc


@njit(cache=True)
def _signed_gap(z, num, den, weights):
    """``(1 - U(z)) * sign(prod_k det(I - z A_k))``: same sign as ``det(I - z T)`` of the full
    coupled system (T = blockdiag(A_k) + rank-one coupling), continuous through the poles of U."""
    U = 0.0
    flip = False
    for k in range(num.shape[0]):
        d = _horner(den[k], z)
        if d < 0.0:
            flip = not flip
        if d == 0.0:
            d = 1e-300
        U += weights[k] * _horner(num[k], z) / d
    return -(1.0 - U) if flip else 1.0 - U


@njit(cache=True)
def _first_root(num, den, weights, Z, grid):
    """First positive root of det(I - z T) in (0, Z): bracket on ``grid`` (fractions of Z, or
    absolute points when Z is inf), then shrink the bracket to machine precision. inf if none.

    Illinois steps (regula falsi with the stale end's value halved), every third step a bisection:
    the signed gap has the root's sign change only (through the poles of U it stays positive), so
    both keep the bracket; the bisections bound the work when the gap is far from linear.
    """
    lo, f_lo = 0.0, 1.0
    for j in range(grid.shape[0]):
        hi = grid[j] * Z if np.isfinite(Z) else grid[j]
        f_hi = _signed_gap(hi, num, den, weights)
        if f_hi <= 0.0:
            side = 0
            for it in range(300):
                if hi - lo <= 4e-16 * hi:
                    break
                if it % 3 == 2 or not (np.isfinite(f_lo) and np.isfinite(f_hi)):
                    mid = 0.5 * (lo + hi)
                else:
                    mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
                    if not lo < mid < hi:
                        mid = 0.5 * (lo + hi)
                f_mid = _signed_gap(mid, num, den, weights)
                if f_mid <= 0.0:
                    hi, f_hi = mid, f_mid
                    if side == -1:
                        f_lo *= 0.5
                    side = -1
                else:
                    lo, f_lo = mid, f_mid
                    if side == 1:
                        f_hi *= 0.5
                    side = 1
            return hi
        lo, f_lo = hi, f_hi
    return np.inf


# Spaced in 1 - z/Z geometrically toward the pole at Z (roots of U = 1 crowd there), with
# linear points near 0 so that no pair of roots hides in one cell.
_GRID_FINITE = np.unique(np.concatenate([np.linspace(0.0, 0.9, 10)[1:],
                                         1.0 - np.logspace(-1.2, -15, 40)]))
_GRID_INFINITE = np.logspace(-3, 6, 46)


@njit(cache=True)
def _rate_point(num, den, weights, char, grid_f, grid_i):
    """One parameter point: (rate, z*, Z = 1 / max_k max|r|^2, worst mode)."""
    worst = 0
    radius = 0.0
    for k in range(char.shape[0]):
        r = _root_modulus(char[k])
        if r * r > radius:
            radius = r * r
            worst = k
    Z = 1.0 / radius if radius > 0.0 else np.inf
    zs = _first_root(num, den, weights, Z, grid_f if np.isfinite(Z) else grid_i)
    return (1.0 / zs if zs < np.inf else radius), zs, Z, worst


@njit(cache=True)
def _rate_serial(num, den, weights, char, out_rate, out_zstar, out_Z, out_worst, grid_f, grid_i):
    for p in range(num.shape[0]):
        out_rate[p], out_zstar[p], out_Z[p], out_worst[p] = _rate_point(
            num[p], den[p], weights, char[p], grid_f, grid_i)


@njit(cache=True, parallel=True)
def _rate_parallel(num, den, weights, char, out_rate, out_zstar, out_Z, out_worst, grid_f, grid_i):
    for p in prange(num.shape[0]):
        out_rate[p], out_zstar[p], out_Z[p], out_worst[p] = _rate_point(
            num[p], den[p], weights, char[p], grid_f, grid_i)


def rate_arrays(method, lam, alpha, beta, gamma_, tau1_, tau2_, weights=None, parallel=None):
    """Rates for arrays of parameter points, modes ``lam`` (N).

    ``alpha, beta, gamma_, tau1_, tau2_`` broadcast to the points' shape P. Returns
    (rate, z_star, Z, worst) arrays of shape P. ``weights`` (N) multiply each mode's ``u`` (1 by
    default; a mode standing for several equal eigenvalues carries their number). ``parallel``:
    numba threads over points (default: for 16 points or more); callers that are themselves run on
    several threads (a Dask worker) pass False, since numba's default ``workqueue`` threading
    layer must not be entered from two threads at once.
    """
    tp = transfer_polynomials(method)
    point = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, float))
                                  for v in (alpha, beta, gamma_, tau1_, tau2_)))
    shape = point[0].shape
    P = point[0].size
    args = tuple(v.reshape(P, 1) for v in point)
    args = args[:2] + (np.asarray(lam, float),) + args[2:]
    N = np.asarray(lam).size
    num = tp.numerator(*args).reshape(P, N, -1)
    den = tp.denominator(*args).reshape(P, N, -1)
    char = tp.char_coeffs(*args).reshape(P, N, MAX_STATE_DIM + 1)
    w = np.ones(N) if weights is None else np.ascontiguousarray(weights, dtype=float)
    out = [np.empty(P), np.empty(P), np.empty(P), np.empty(P, dtype=np.int64)]
    # threads pay off for grids; a single point avoids the parallel launch overhead
    kernel = _rate_parallel if (P >= 16 if parallel is None else parallel) else _rate_serial
    kernel(num, den, w, char, *out, _GRID_FINITE, _GRID_INFINITE)
    return tuple(o.reshape(shape) for o in out)


def noise_feedback_at_one(method, lam, alpha, beta, gamma_, tau1_, tau2_, Z, weights=None):
    """``U(1) = sum_k w_k u(1; lambda_k)`` for points (broadcast like ``rate_arrays``; ``w`` the
    modes' multiplicities, 1 by default), inf where a mode is unstable at z = 1 (``Z <= 1``, or a
    self-noise pole of some ``A_k`` in (0, 1])."""
    tp = transfer_polynomials(method)
    point = np.broadcast_arrays(*(np.asarray(v, float) for v in (alpha, beta, gamma_, tau1_, tau2_, Z)))
    args = tuple(v[..., None] for v in point[:2]) + (np.asarray(lam, float),) + \
        tuple(v[..., None] for v in point[2:5])
    den1 = tp.denominator(*args).sum(axis=-1)
    ok = (point[5] > 1.0) & np.all(den1 > 0.0, axis=-1)
    # a mode at its edge (den1 = 0, or a subnormal remainder of it: beta = 2e-311 at alpha lam =
    # 2) gives U(1) = inf, the unstable answer, not a warning
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        U1 = (tp.numerator(*args).sum(axis=-1) / den1) @ (
            np.ones(den1.shape[-1]) if weights is None else np.asarray(weights, float))
    return np.where(ok, U1, np.inf)


def singularities(system: ModeSystem) -> Singularities:
    """Radius of convergence of ``L(z)`` and the rate ``rho = 1 / z*``.

    ``L(z) = V(z) / (2 (1 - U(z)))``: the poles of the single-mode maps cancel between V and U, and
    the singularity nearest the origin is the first positive root of ``det(I - z T)`` (``T`` the
    full coupled second-moment map; Pringsheim: L has non-negative coefficients). ``T`` dominates
    the noiseless maps ``A0_k`` (noise only adds variance), so ``z* <= Z = 1/max_k rho(A0_k)``;
    when no root of ``1 - U`` shows before ``Z (1 - 1e-15)`` the rate is the worst mode's own,
    ``rho(A0_k) = max |r|^2`` over the roots r of the characteristic polynomial.
    The root is searched with the sign of ``(1 - U) prod_k det(I - z A_k)``, which stays right
    across the poles of U: with ``tau2 > 0`` the maps ``A_k`` may have eigenvalues beyond the
    loss's rate (even below -1) that cancel in L.
    """
    a, bt, lam, g, t1, t2 = system.args[:6]
    w = system.problem.multiplicity
    rate, zs, Z, worst = (float(x[0]) if x.dtype.kind == "f" else int(x[0])
                          for x in rate_arrays(system.method, lam, a, bt, g, t1, t2, w))
    U1 = float(noise_feedback_at_one(system.method, lam, a, bt, g, t1, t2, Z, w))
    limited_by = "noise" if zs < np.inf else "mode stability"
    # Which side of 1 the rate lies on is decided by the convergence test (every mode stable and
    # U(1) < 1), whose rounding is that of U(1), linear in alpha. The rate itself can be closer
    # to 1 than its own rounding (near the threshold at |beta| -> 1, where U'(1) is large): then
    # it reads 1 - ulp or 1 + ulp, on the test's side, and says it is unresolved.
    converging = U1 < 1.0
    resolved = (rate < 1.0) == converging
    if not resolved:
        rate = float(np.nextafter(1.0, 0.0 if converging else 2.0))
    return Singularities(Z, worst, zs, U1, rate, limited_by, resolved)
