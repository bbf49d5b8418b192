"""estimate_tau: exact SE laws are recovered; the fit is rotation invariant; bad input named."""
import numpy as np
import pytest

from sgdyn.theory.noise import estimate_tau

LAM = np.array([3.0, 1.0, 0.4, 0.1])


def rotation(rng, d):
    return np.linalg.qr(rng.standard_normal((d, d)))[0]


def test_rademacher_in_its_eigenbasis_is_exactly_tau_one_one(rng):
    # all 16 sign patterns once: H = diag(LAM) exactly and z_k^2 = 1, so the fit is exact
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * 4)).reshape(4, -1).T
    fit = estimate_tau(signs * np.sqrt(LAM) @ rotation(rng, 4).T)
    assert fit.tau1 == pytest.approx(1.0, abs=1e-12) and fit.tau2 == pytest.approx(1.0, abs=1e-12)
    assert fit.residual < 1e-12 and fit.modes == 4


def test_gaussian_samples_give_tau_one_minus_one(rng):
    n = 200_000
    fit = estimate_tau(rng.standard_normal((n, 4)) * np.sqrt(LAM) @ rotation(rng, 4).T)
    # fourth-moment estimates: relative standard error ~ sqrt(96 / n) ~ 0.02 on the diagonal
    assert abs(fit.tau1 - 1.0) < 0.03 and abs(fit.tau2 + 1.0) < 0.1
    assert fit.model.tau2 <= fit.model.tau1


def test_independent_components_give_two_minus_kurtosis(rng):
    # uniform components: kurtosis 9/5, so tau2 = 2 - 9/5 = 0.2
    z = rng.uniform(-np.sqrt(3), np.sqrt(3), (200_000, 4))
    fit = estimate_tau(z * np.sqrt(LAM))
    assert abs(fit.tau1 - 1.0) < 0.02 and abs(fit.tau2 - 0.2) < 0.05


def test_fit_is_rotation_invariant(rng):
    X = rng.standard_t(6, (3000, 4)) * np.sqrt(LAM)
    a, b = estimate_tau(X), estimate_tau(X @ rotation(rng, 4).T)
    assert a.tau1 == pytest.approx(b.tau1, rel=1e-9) and a.tau2 == pytest.approx(b.tau2, rel=1e-9)


@pytest.mark.parametrize("X,match", [
    (np.ones((1, 3)), "at least 2 rows"),
    (np.ones(5), "2-D array"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (np.ones((10, 3)), "at least 2 directions"),
])
def test_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        estimate_tau(X)
