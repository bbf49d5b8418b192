"""Power-law exponents of a measured spectrum (a kernel's or a data set's), with their uncertainty,
and the phase they imply.

The core paper's model (``Problem.power_law``; Velikanov, Kuznedelev, Yarotsky, ICLR 2023,
section 5): ``lambda_k ~ k^-nu`` and the target's spectral weights ``lambda_k c_k ~ k^-(kappa+1)``.
A measured spectrum follows such laws only over a window of modes ``k_min <= k <= k_max`` (the
first few modes are idiosyncratic; the last ones feel the finite data set), so the fit takes one:

* ``nu``: least squares of ``log lambda_k`` on ``log k``;
* ``kappa``: least squares of ``log T_k`` on ``log k`` with the tail sums
  ``T_k = sum_{l >= k} lambda_l c_l ~ k^-kappa / kappa``: single weights ``lambda_k c_k`` scatter
  like a chi-square with one degree of freedom (a target's projection on one eigenvector), their
  tail sums do not. The sums stop at the last mode ``n``, which biases ``T_k`` down by the
  relative ``(k / n)^kappa`` of a true power law: keep ``k_max`` well below the number of modes.

**Uncertainty** of each exponent: the larger of the least-squares standard error (which assumes
independent residuals, optimistic for smooth curves such as these) and half the difference
between the slopes fitted on the two halves of the window in ``log k`` (how much the exponent
drifts along the window: the systematic part). It says how well a power law describes the
window, not a confidence interval.

**Phase** (``theory.asymptotics``): with ``zeta = kappa / nu`` (signal decay ``t^-zeta``) and
``q = 2 - 1/nu`` (noise kernel ``t^-q``), SGD is signal-dominated at large t when ``zeta < q`` and
noise-dominated when ``zeta > q``; within two uncertainties of ``zeta = q`` the fit cannot tell.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.problem import Problem


@dataclass(frozen=True)
class SpectrumExponents(Result):
    """Fitted ``nu``, ``kappa`` with uncertainties over modes ``k_min..k_max`` (module docstring)."""

    _properties = ("zeta", "noise_exponent", "phase")

    nu: float
    nu_uncertainty: float
    kappa: float
    kappa_uncertainty: float
    k_min: int
    k_max: int
    eigenvalue_scale: float     # the fitted lambda_k = eigenvalue_scale * k^-nu
    tail_scale: float           # the fitted T_k = tail_scale * k^-kappa

    @property
    def zeta(self) -> float:
        """``kappa / nu``: the signal part of the loss decays like ``t^-zeta``."""
        return self.kappa / self.nu

    @property
    def zeta_uncertainty(self) -> float:
        """First-order propagation of the two uncertainties (taken independent)."""
        return self.zeta * float(np.hypot(self.kappa_uncertainty / self.kappa,
                                          self.nu_uncertainty / self.nu))

    @property
    def noise_exponent(self) -> float:
        """``q = 2 - 1/nu``: the noise kernel decays like ``t^-q``."""
        return 2.0 - 1.0 / self.nu

    @property
    def phase(self) -> str:
        """``"signal-dominated"``, ``"noise-dominated"`` or ``"undecided"`` (``zeta - q`` within two
        of its uncertainties of 0; ``zeta - q = (kappa + 1)/nu - 2``)."""
        gap = self.zeta - self.noise_exponent
        unc = float(np.hypot(self.kappa_uncertainty / self.nu,
                             self.nu_uncertainty * (self.kappa + 1.0) / self.nu ** 2))
        if abs(gap) <= 2.0 * unc:
            return "undecided"
        return "signal-dominated" if gap < 0 else "noise-dominated"


def _slope(logk, logv) -> tuple[float, float, float, float]:
    """Slope, its least-squares standard error, half the drift between the window's halves, and
    the fitted value at k = 1."""
    A = np.column_stack([np.ones_like(logk), logk])
    coef, *_ = np.linalg.lstsq(A, logv, rcond=None)
    res = logv - A @ coef
    dof = max(logk.size - 2, 1)
    se = float(np.sqrt(res @ res / dof / np.sum((logk - logk.mean()) ** 2)))
    mid = 0.5 * (logk[0] + logk[-1])
    halves = [np.polyfit(logk[m], logv[m], 1)[0] for m in (logk <= mid, logk >= mid)]
    return float(coef[1]), se, 0.5 * abs(halves[0] - halves[1]), float(np.exp(coef[0]))


def fit_exponents(problem: Problem, k_min: int, k_max: int) -> SpectrumExponents:
    """``nu`` and ``kappa`` of ``problem``'s spectrum over modes ``k_min..k_max`` (1-based, modes
    by decreasing eigenvalue), with their uncertainties (module docstring)."""
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a sgdyn.theory.Problem, got {type(problem).__name__}")
    problem.require_unit_multiplicity("fit_exponents")
    n = problem.n_modes
    k_min = checks.integer("k_min", k_min, 1, max(n - 3, 1))
    k_max = checks.integer("k_max", k_max, k_min + 3, n)
    order = np.argsort(problem.eigenvalues)[::-1]
    lam = problem.eigenvalues[order]
    tails = np.cumsum((lam * problem.initial[order])[::-1])[::-1]
    window = slice(k_min - 1, k_max)
    if not np.all(tails[window] > 0):
        raise ValueError("problem must have a positive target weight beyond every mode of the "
                         "window (c_k > 0 somewhere past k_max)")
    logk = np.log(np.arange(k_min, k_max + 1, dtype=np.float64))
    nu, se_nu, drift_nu, s_nu = _slope(logk, np.log(lam[window]))
    kappa, se_k, drift_k, s_k = _slope(logk, np.log(tails[window]))
    return SpectrumExponents(-nu, max(se_nu, drift_nu), -kappa, max(se_k, drift_k), k_min, k_max,
                             s_nu, s_k)
