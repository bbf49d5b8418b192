"""Fitted power-law exponents recover those of ``Problem.power_law`` and call its phase."""
import numpy as np
import pytest

from sgdyn.theory import Problem
from sgdyn.theory.spectrum_fit import fit_exponents


@pytest.mark.parametrize("nu, kappa, phase", [(1.5, 1.0, "signal-dominated"),
                                              (1.2, 3.0, "noise-dominated")])
def test_exact_power_laws_are_recovered(nu, kappa, phase):
    """lambda_k = k^-nu exactly: nu to rounding; the tail sums of k^-(kappa+1) are k^-kappa/kappa
    up to O(kappa / k) (Euler-Maclaurin), within the window's drift, and up to the truncation at
    n, relative (k / n)^kappa: 2e-3 at k = 200, n = 1e5 (at n = 4000 it is 5 %, the fit 1.029)."""
    fit = fit_exponents(Problem.power_law(nu, kappa, 100_000), 20, 200)
    assert fit.nu == pytest.approx(nu, abs=1e-10)
    assert abs(fit.kappa - kappa) < max(2 * fit.kappa_uncertainty, 0.02)
    assert fit.kappa_uncertainty < 0.05
    assert fit.phase == phase
    assert fit.zeta == pytest.approx(fit.kappa / fit.nu)
    assert fit.eigenvalue_scale == pytest.approx(1.0, rel=1e-9)     # lambda_k = k^-nu


def test_a_spectrum_that_bends_has_a_large_uncertainty():
    k = np.arange(1, 401, dtype=float)
    lam = k ** -1.0 * np.exp(-k / 100)           # a power law with an exponential cut-off
    fit = fit_exponents(Problem(lam, k ** -1.0), 10, 300)
    assert fit.nu_uncertainty > 0.3


def test_bad_windows_name_the_argument():
    p = Problem.power_law(1.5, 1.0, 50)
    with pytest.raises(ValueError, match="k_max must be an integer in \\[13, 50\\]"):
        fit_exponents(p, 10, 60)
    with pytest.raises(ValueError, match="k_min"):
        fit_exponents(p, 0, 20)
