"""Analytic infinite-width kernels (``theory.ntk``) against closed forms at hand-checked inputs,
and the tanh quadrature against the erf closed forms and one-dimensional integrals."""
import numpy as np
import pytest
from scipy import integrate

from sgdyn.theory import ntk
from sgdyn.theory.ntk import Architecture, activation_expectations, analytic_kernels

E2 = np.eye(2)


def test_relu_one_hidden_layer_by_hand():
    """x = e1, e2 in d = 2, sigma_w = 1, sigma_b = 0: Sigma^1 = I/2, angle pi/2 off the diagonal,
    E[relu relu] = (1/2)/(2 pi) = 1/(4 pi), E[1 1] = 1/4; on it a/2 = 1/4 and 1/2. So NNGP =
    [[1/4, 1/(4 pi)], ..] and NTK = Sigma^2 + Sigma'^2 Sigma^1 = [[1/2, 1/(4 pi)], ..]."""
    k = analytic_kernels(E2, Architecture(1, 1, "relu", bias_std=0.0))
    np.testing.assert_allclose(k.nngp, [[0.25, 0.25 / np.pi], [0.25 / np.pi, 0.25]], rtol=1e-14)
    np.testing.assert_allclose(k.ntk, [[0.5, 0.25 / np.pi], [0.25 / np.pi, 0.5]], rtol=1e-14)


def test_relu_at_sixty_degrees_and_two_layers():
    """x = (1, 0), x' = (1/2, sqrt 3/2): cos t = 1/2, t = pi/3 at layer 1 (Sigma^1 = I/2 ...)."""
    X = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    a, c = 0.5, 0.25
    t = np.pi / 3
    s2 = a * (np.sin(t) + (np.pi - t) * np.cos(t)) / (2 * np.pi)
    d2 = (np.pi - t) / (2 * np.pi)
    k1 = analytic_kernels(X, Architecture(1, 1, "relu", bias_std=0.0))
    assert k1.nngp[0, 1] == pytest.approx(s2, rel=1e-14)
    assert k1.ntk[0, 1] == pytest.approx(s2 + d2 * c, rel=1e-14)
    # a second layer: diagonal 1/4, so cos t2 = s2 / (1/4)
    t2 = np.arccos(s2 / 0.25)
    s3 = 0.25 * (np.sin(t2) + (np.pi - t2) * np.cos(t2)) / (2 * np.pi)
    d3 = (np.pi - t2) / (2 * np.pi)
    k2 = analytic_kernels(X, Architecture(2, 1, "relu", bias_std=0.0))
    assert k2.nngp[0, 1] == pytest.approx(s3, rel=1e-14)
    assert k2.ntk[0, 1] == pytest.approx(s3 + d3 * (s2 + d2 * c), rel=1e-14)


def test_erf_closed_form_by_hand():
    """d = 1, x = x' = 1, sigma_w = 1, sigma_b = 0: Sigma^1 = 1, E[erf erf] = (2/pi) arcsin(2/3),
    E[erf' erf'] = (4/pi) / sqrt(9 - 4)."""
    k = analytic_kernels(np.ones((2, 1)), Architecture(1, 1, "erf", bias_std=0.0))
    s2 = 2 / np.pi * np.arcsin(2 / 3)
    assert k.nngp[0, 1] == pytest.approx(s2, rel=1e-14)
    assert k.ntk[0, 1] == pytest.approx(s2 + 4 / (np.pi * np.sqrt(5)), rel=1e-14)


@pytest.mark.parametrize("a, b, c", [(1.0, 1.0, 0.5), (0.3, 1.7, -0.4), (1.0, 1.0, 0.99),
                                     (2.0, 0.5, 0.0)])
def test_quadrature_reproduces_the_erf_closed_forms(a, b, c):
    """The tanh route (Gauss-Hermite over the 2 x 2 covariance) on erf, whose answers are known:
    64 nodes a dimension reach ~1e-10 (measured: 1e-16 at 80 nodes, 1e-6 at 20 for rho = 0.99)."""
    f, df = ntk._activation_terms("erf")
    closed = activation_expectations("erf", a, b, c)
    quad = (ntk.gaussian_pair_expectation(f, f, a, b, c),
            ntk.gaussian_pair_expectation(df, df, a, b, c))
    np.testing.assert_allclose(quad, closed, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("a, rtol", [(0.8, 1e-7), (2.0, 1e-6)])
def test_tanh_against_one_dimensional_integrals(a, rtol):
    """u = v (c = a): E[tanh(u)^2] and E[sech(u)^4] are 1-D integrals (scipy.quad); c = 0: the
    odd tanh averages to 0 and sech^2 factorises. Gauss-Hermite converges slowly for tanh (poles
    at +- i pi/2): measured 2e-8 at a = 0.8 (64 nodes) and 1.3e-7 at a = 2 (128 nodes)."""
    pdf = lambda u: np.exp(-u * u / (2 * a)) / np.sqrt(2 * np.pi * a)
    lim = 40 * np.sqrt(a)               # the density is below 1e-300 beyond
    e_tt, e_ss, e_s = (integrate.quad(lambda u: g(u) * pdf(u), -lim, lim, epsabs=1e-14,
                                      limit=200)[0]
                       for g in (lambda u: np.tanh(u) ** 2, lambda u: np.cosh(u) ** -4,
                                 lambda u: np.cosh(u) ** -2))
    same = activation_expectations("tanh", a, a, a)
    indep = activation_expectations("tanh", a, a, 0.0)
    np.testing.assert_allclose(same, (e_tt, e_ss), rtol=rtol)
    np.testing.assert_allclose(indep, (0.0, e_s ** 2), rtol=rtol, atol=1e-14)


def test_standard_parametrisation_scales_each_layer_by_its_width():
    """One hidden layer of width w: Theta_sp = (d / sigma_w^2)(Sigma^1 - sigma_b^2) Sigma'^2
    + Sigma'^2 + (w / sigma_w^2)(Sigma^2 - sigma_b^2) + 1 (module docstring)."""
    X = np.array([[1.0, 0.2, -0.3], [0.4, 0.9, 0.1]])
    arch = Architecture(1, 100, "erf", "standard", weight_std=1.3, bias_std=0.2)
    sw2, sb2, d = 1.69, 0.04, 3
    s1 = sw2 * X @ X.T / d + sb2
    diag = np.diag(s1)
    e, de = activation_expectations("erf", diag[:, None], diag[None, :], s1)
    s2, ds2 = sw2 * e + sb2, sw2 * de
    expect = (d / sw2) * (s1 - sb2) * ds2 + ds2 + (100 / sw2) * (s2 - sb2) + 1.0
    np.testing.assert_allclose(analytic_kernels(X, arch).ntk, expect, rtol=1e-13)
    ntk_arch = Architecture(1, 100, "erf", "ntk", weight_std=1.3, bias_std=0.2)
    np.testing.assert_allclose(analytic_kernels(X, ntk_arch).ntk, s2 + ds2 * s1, rtol=1e-13)


@pytest.mark.parametrize("kw, fragment", [
    (dict(depth=0, width=4), "depth must be an integer in [1, 32]"),
    (dict(depth=2, width=0), "width must be an integer in [1, 65536]"),
    (dict(depth=2, width=10 ** 6), "width must be an integer in [1, 65536]"),
    (dict(depth=2, width=4, activation="sigmoid"), "activation must be one of relu, tanh, erf"),
    (dict(depth=2, width=4, parametrization="mup"), "parametrization must be one of ntk, standard"),
    (dict(depth=2, width=4, weight_std=0.0), "weight_std"),
    (dict(depth=2, width=4, bias_std=-1.0), "bias_std"),
])
def test_bad_architectures_name_the_argument(kw, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Architecture(**kw)


def test_bad_inputs_name_the_argument():
    arch = Architecture(1, 4)
    with pytest.raises(ValueError, match="X must be a non-empty 2-D array"):
        analytic_kernels(np.ones(3), arch)
    with pytest.raises(ValueError, match="X2 must have the 2 columns of X"):
        analytic_kernels(np.ones((3, 2)), arch, np.ones((3, 3)))
    with pytest.raises(ValueError, match="X must not contain NaN"):
        analytic_kernels(np.array([[1.0, np.nan]]), arch)
