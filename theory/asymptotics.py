"""Power-law asymptotics of the loss: signal and noise phases (``docs/phases.md``; Velikanov,
Kuznedelev, Yarotsky, ICLR 2023, arXiv 2206.11124, section 5).

Spectrum ``lambda_k = s k^-nu`` (``nu > 1``), signal weights ``lambda_k c_k = s_c k^-(kappa+1)``.
With ``S_t = 2 L_t`` (heavy ball / SGD, no label noise) the generating functions give the renewal
equation ``S = V + U * S`` (``S(z) = V(z) / (1 - U(z))``), and:

* **Per-mode small-lambda limit** *(derived here from ``theory.symbolic``)*. Each mode's transfer
  functions ``v(z; lambda)`` (signal, per unit ``c``) and ``u(z; lambda)`` (noise) are rational in
  z with a single pole approaching ``z = 1`` as ``lambda -> 0`` (the slow root of the
  characteristic polynomial, squared), the others staying away (``1/beta`` etc.). So their
  coefficients are ``v_t ~ lambda A_V exp(-r lambda t)``, ``u_t ~ lambda^2 A_U exp(-r lambda t)``
  up to relative ``O(lambda)`` and terms decaying geometrically in t; ``r, A_V, A_U`` are read off
  the scaling limits ``v(1 - lambda w; lambda) -> A_V / (w + r)`` and
  ``u(1 - lambda w; lambda) / lambda -> A_U / (w + r)``, taken symbolically
  (``small_lambda_limits``). Heavy ball: ``r = 2 alpha_eff``, ``A_V = 1``,
  ``A_U = tau1 gamma alpha_eff^2`` (``alpha_eff = alpha / (1 - beta)``; tau2 drops out).
* **Sums over modes** (``sum_k k^-p exp(-x k^-nu) ~ Gamma((p-1)/nu) / nu x^-((p-1)/nu)``, the
  integral with ``y = k^-nu``; the sum's corrections are exponentially small in x):
  ``V_t ~ C_V t^-zeta``, ``zeta = kappa / nu``, ``C_V = s_c A_V Gamma(zeta) / nu (r s)^-zeta``;
  ``U_t ~ C_U t^-q``, ``q = 2 - 1/nu``, ``C_U = s^2 A_U Gamma(q) / nu (r s)^-q``.
* **Renewal** (``U(1) < 1``; ``V_t, U_t`` regularly varying, summable when > 1): with
  ``R = 1 / (1 - U)``, ``R_t ~ U_t / (1 - U(1))^2`` and ``(V * R)_t ~ R(1) V_t + V(1) R_t``, so
  ``S_t ~ V_t / (1 - U(1)) + V(1) U_t / (1 - U(1))^2``: the first term ("signal") dominates at
  large t when ``zeta < q``, the second ("noise") when ``zeta > q`` (it needs ``V(1) < inf``, i.e.
  ``zeta > 1``); they cross at the transition time ``t_x``, where a noise-phase trajectory
  switches from the signal asymptote to the noise asymptote.

A finite spectrum follows the power law only for ``t << t_cut = 1 / (r lambda_min)``; problems
with many modes are best given as ``Problem.power_law_continuum`` (multiplicities).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy.special import gamma as gamma_fn

from sgdyn.theory.display import Result
from sgdyn.theory.methods import alpha, beta, get_method, lam
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.symbolic import b, derive, gamma, tau1, tau2, z
from sgdyn.theory.system import ModeSystem, extra_arguments
from sgdyn.theory.transfer import singularities, transfer_polynomials

PHASES = ("signal", "noise", "boundary", "diverges")
_w = sp.Symbol("w")
_PARAMS = (alpha, beta, gamma, tau1, tau2)


@dataclass(frozen=True)
class SmallLambdaLimits:
    """``v_t ~ lambda A_V exp(-r lambda t)``, ``u_t ~ lambda^2 A_U exp(-r lambda t)`` (sympy, in
    alpha, beta, gamma, tau1, tau2)."""

    rate: sp.Expr               # r: per-mode decay rate per unit lambda
    signal_amplitude: sp.Expr   # A_V
    noise_amplitude: sp.Expr    # A_U


def _scaling_limit(expr: sp.Expr, power: int) -> tuple[sp.Expr, sp.Expr]:
    """``(r, A)`` with ``lim_{lambda->0} lambda^(1-power) expr(z = 1 - lambda w) = A / (w + r)``."""
    e = sp.cancel(sp.together(expr.subs(b, 1 / gamma).subs(z, 1 - lam * _w) * lam ** (1 - power)))
    num, den = (sp.Poly(x, lam) for x in sp.fraction(e))
    low_n = min(m[0] for m in num.monoms())
    low_d = min(m[0] for m in den.monoms())
    if low_n != low_d:
        raise ValueError(f"transfer function is not O(lambda^{power}) near z = 1")
    limit = sp.cancel(num.coeff_monomial(lam ** low_n) / den.coeff_monomial(lam ** low_d))
    n_w, d_w = (sp.Poly(x, _w) for x in sp.fraction(limit))
    if n_w.degree() != 0 or d_w.degree() != 1:
        raise ValueError(f"scaling limit {limit} is not of the form A / (w + r)")
    lead = d_w.coeff_monomial(_w)
    return sp.factor(d_w.coeff_monomial(1) / lead), sp.factor(n_w.coeff_monomial(1) / lead)


def small_lambda_limits(method="heavy-ball") -> SmallLambdaLimits:
    """The slow per-mode decay and amplitudes from ``derive(method)`` (module docstring); extra
    parameters of the method stay symbols."""
    return _small_lambda_limits(get_method(method).structure)


@functools.lru_cache(maxsize=None)
def _small_lambda_limits(method) -> SmallLambdaLimits:
    if method.preconditioner != 1:
        raise ValueError(f"method {method.name!r} has a preconditioner: its modes do not decay "
                         "like exp(-r lambda t) at small lambda, so the power-law phases do not apply")
    d = derive(method)
    r_v, a_v = _scaling_limit(d.v, 1)
    r_u, a_u = _scaling_limit(d.u, 2)
    if sp.simplify(r_v - r_u) != 0:
        raise ValueError(f"signal and noise decay rates differ for {method.name!r}: {r_v} vs {r_u}")
    return SmallLambdaLimits(r_v, a_v, a_u)


@functools.lru_cache(maxsize=None)
def _numeric_limits(method):
    """``(r, A_V, A_U)`` as math functions of (alpha, beta, gamma, tau1, tau2, extra parameters),
    from the disk cache of ``sgdyn.theory.formcache`` when present (``method``: a structure)."""
    from sgdyn.theory.formcache import Source, load_or_build

    def build():
        s = small_lambda_limits(method)
        return [Source(_PARAMS + method.extra_symbols, e, modules="math")
                for e in (s.rate, s.signal_amplitude, s.noise_amplitude)]
    return tuple(load_or_build("small-lambda-limits", method, (__name__, derive.__module__), build))


@dataclass(frozen=True)
class PowerLawFit(Result):
    """``lambda_k = scale k^-nu``, ``lambda_k c_k = signal_scale k^-(kappa+1)`` (k counts modes,
    multiplicities included; an entry of multiplicity w sits at the midpoint of its block)."""

    nu: float
    kappa: float
    scale: float
    signal_scale: float
    deviation: float           # largest |log residual| of the two fits


def fit_power_law(problem: Problem) -> PowerLawFit:
    """Least-squares fit of ``log lambda`` and ``log(lambda c)`` against ``log k``; entries sorted
    by decreasing eigenvalue, entry j at the mode index ``kbar_j = sum_{i<=j} w_i - (w_j - 1)/2``
    (exact for ``Problem.power_law`` and ``Problem.power_law_continuum``)."""
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    order = np.argsort(problem.eigenvalues)[::-1]
    lam_ = problem.eigenvalues[order]
    sig = lam_ * problem.initial[order]
    w = problem.multiplicity[order]
    if lam_.size < 3 or np.any(sig <= 0):
        raise ValueError("problem must be a power law with at least 3 entries and every c_k > 0 "
                         f"(got {lam_.size} entries, {int(np.sum(sig <= 0))} with c_k = 0)")
    logk = np.log(np.cumsum(w) - 0.5 * (w - 1.0))
    X = np.column_stack([np.ones_like(logk), logk])
    (ls, mnu), res_l = np.linalg.lstsq(X, np.log(lam_), rcond=None)[:2]
    (lsc, mk1), res_s = np.linalg.lstsq(X, np.log(sig), rcond=None)[:2]
    dev = max(np.max(np.abs(X @ [ls, mnu] - np.log(lam_))), np.max(np.abs(X @ [lsc, mk1] - np.log(sig))))
    return PowerLawFit(float(-mnu), float(-mk1 - 1.0), float(np.exp(ls)), float(np.exp(lsc)), float(dev))


@dataclass(frozen=True)
class Phases(Result):
    """Exponents, constants and phase of ``L_t`` for a power-law problem (module docstring).

    In loss units: ``L_t ~ signal_loss_constant t^-signal_exponent
    + noise_loss_constant t^-noise_exponent`` for ``1 << t << cutoff_time``.
    """

    nu: float
    kappa: float
    signal_exponent: float       # zeta = kappa / nu
    noise_exponent: float        # q = 2 - 1/nu
    decay_rate: float            # r: slow modes decay like exp(-r lambda t) (2 alpha_eff)
    signal_constant: float       # C_V: V_t ~ C_V t^-zeta  (V_t = 2 x noiseless loss)
    noise_constant: float        # C_U: U_t ~ C_U t^-q
    noise_feedback: float        # U(1)
    signal_total: float          # V(1) = sum_t V_t (inf if zeta <= 1: the noise term has no limit)
    phase: str                   # "signal", "noise", "boundary" (zeta = q) or "diverges"
    transition_time: float | None   # where the two asymptotes cross (None if they do not)
    cutoff_time: float           # 1 / (r lambda_min): the finite spectrum's power law ends
    rate: float                  # exponential rate rho of the finite problem (1 if it converges)
    reason: str
    fit_deviation: float

    _properties = ("signal_loss_constant", "noise_loss_constant")

    @property
    def signal_loss_constant(self) -> float:
        return self.signal_constant / (2.0 * (1.0 - self.noise_feedback))

    @property
    def noise_loss_constant(self) -> float:
        if not np.isfinite(self.signal_total):
            return 0.0
        return self.signal_total * self.noise_constant / (2.0 * (1.0 - self.noise_feedback) ** 2)

    def _times(self, t):
        if self.phase == "diverges":
            raise ValueError(f"the loss diverges, it has no power-law asymptote ({self.reason})")
        t = np.asarray(t, dtype=float)
        if np.any(t <= 0):
            raise ValueError("t must be > 0")
        return t

    def signal_asymptote(self, t):
        """``V_t / (2 (1 - U(1)))`` with ``V_t ~ C_V t^-zeta``."""
        return self.signal_loss_constant * self._times(t) ** -self.signal_exponent

    def noise_asymptote(self, t):
        """``V(1) U_t / (2 (1 - U(1))^2)`` with ``U_t ~ C_U t^-q``."""
        return self.noise_loss_constant * self._times(t) ** -self.noise_exponent

    def loss_asymptote(self, t):
        return self.signal_asymptote(t) + self.noise_asymptote(t)


_SLOW = 1e-6   # r lambda below this: per-mode totals from the small-lambda limit


def _totals(system: ModeSystem, r: float, a_v: float, a_u: float) -> tuple[float, float]:
    """``U(1) = sum_k w_k u(1; lambda_k)`` and ``V(1) = sum_k w_k c_k v(1; lambda_k)``.

    ``det(I - A_k)`` at z = 1 is ``O(r lambda_k)`` and loses ``log10(1 / (r lambda))`` digits to
    cancellation in the polynomial form (all of them at lambda ~ 1e-16, deep in a continuum's
    tail), so modes with ``r lambda < 1e-6`` use the limits ``u(1) = A_U lambda / r``,
    ``v(1) = A_V / r`` (relative error ``O(r lambda)``); the rest the exact transfer functions.
    inf if a mode's own second-moment map has a pole in (0, 1] (``det(I - A_k) <= 0``).
    """
    lam_ = system.problem.eigenvalues
    w = system.problem.multiplicity
    wc = w * system.problem.initial
    fast = r * lam_ >= _SLOW
    nf = system.derivation.numeric
    a, bt, _, g, t1, t2, *extra = system.args
    args = (1.0, a, bt, lam_[fast], g, t1, t2, *extra)
    tp = transfer_polynomials(system.method)
    if np.any(tp.denominator(a, bt, lam_[fast], g, t1, t2).sum(axis=-1) <= 0.0):
        return np.inf, np.inf
    U1 = float(w[fast] @ nf.u(*args) + a_u / r * (w[~fast] @ lam_[~fast]))
    V1 = float(wc[fast] @ nf.v(*args) + a_v / r * wc[~fast].sum())
    return U1, V1


def phases(problem: Problem, alpha_value, beta_value, batch, method="heavy-ball",
           noise: NoiseModel = GAUSSIAN, max_deviation: float = 1e-6) -> Phases:
    """Signal / noise exponents and constants, dominating phase and transition time of the
    expected loss on a power-law problem (exponents fitted by ``fit_power_law``; a spectrum off
    the power law by more than ``max_deviation`` in log is rejected). ``U(1), V(1)`` are the
    problem's own (generating functions at z = 1); the constants are those of the infinite power
    law, valid for ``t << cutoff_time``.
    """
    system = ModeSystem.build(problem, alpha_value, beta_value, batch, method, noise)
    if not system.derivation.gradient_at_iterate:
        raise ValueError(f"method must take the gradient at the iterate (heavy-ball, sgd) for the "
                         f"renewal form L = V / (2 (1 - U)), got {system.method.name!r}")
    if problem.label_noise > 0:
        raise ValueError(f"label_noise must be 0 (the loss then tends to a floor, not a power law), "
                         f"got {problem.label_noise}")
    fit = fit_power_law(problem)
    if not fit.deviation <= max_deviation:
        raise ValueError(f"problem is not a power law: log-deviation {fit.deviation:.3g} from "
                         f"lambda_k = s k^-nu, lambda_k c_k = s' k^-(kappa+1) exceeds "
                         f"max_deviation = {max_deviation:g}")
    if not fit.nu > 1.0:
        raise ValueError(f"the spectrum's exponent nu must be > 1 (summable noise kernel), got {fit.nu:.6g}")
    if not fit.kappa > 0.0:
        raise ValueError(f"the signal exponent kappa must be > 0, got {fit.kappa:.6g}")
    params = (system.alpha, system.beta, system.gamma, noise.tau1, noise.tau2) + \
        extra_arguments(system.method)
    r, a_v, a_u = (float(f(*params)) for f in _numeric_limits(system.method.structure))
    zeta = fit.kappa / fit.nu
    q = 2.0 - 1.0 / fit.nu
    C_V = fit.signal_scale * a_v * gamma_fn(zeta) / fit.nu * (r * fit.scale) ** -zeta
    C_U = fit.scale ** 2 * a_u * gamma_fn(q) / fit.nu * (r * fit.scale) ** -q
    sing = singularities(system)
    U1, V1 = _totals(system, r, a_v, a_u)
    if not zeta > 1.0:
        V1 = np.inf
    cutoff = 1.0 / (r * float(problem.eigenvalues.min()))
    if sing.diverges or not U1 < 1.0:
        phase, t_x = "diverges", None
    else:
        if abs(zeta - q) <= 1e-9 * q:
            phase = "boundary"
        else:
            phase = "signal" if zeta < q else "noise"
        t_x = None
        if phase != "boundary" and np.isfinite(V1):
            sig_c = C_V / (1.0 - U1)
            noi_c = V1 * C_U / (1.0 - U1) ** 2
            t_x = float((sig_c / noi_c) ** (1.0 / (zeta - q)))
    if phase == "diverges":
        reason = sing.reason
    else:
        which = {"signal": f"signal-dominated (zeta = {zeta:.6g} < 2 - 1/nu = {q:.6g})",
                 "noise": f"noise-dominated (zeta = {zeta:.6g} > 2 - 1/nu = {q:.6g})",
                 "boundary": f"at the phase boundary (zeta = 2 - 1/nu = {q:.6g})"}[phase]
        reason = f"{which}, U(1) = {U1:.6g}"
        if t_x is not None:
            reason += (f"; the asymptotes cross at t = {t_x:.6g}" +
                       (" (signal before, noise after)" if phase == "noise" else
                        " (noise term larger before, signal after)"))
        reason += f"; power law until t ~ {cutoff:.3g}"
    return Phases(fit.nu, fit.kappa, zeta, q, r, float(C_V), float(C_U), U1, V1, phase, t_x,
                  cutoff, sing.rate, reason, fit.deviation)
