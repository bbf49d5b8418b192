"""The projected Gaussian sampler (``simulate.features.projected_gradient``) against the law it
claims: the mini-batch gradient of ``b`` Gaussian samples at a fixed point.

Independent routes: the exact mean ``h = H p`` and covariance
``Cov(g) = ((p^T H p) H + h h^T + sigma^2 H) / b`` (Gaussian fourth moments), and the per-sample
draws (``draw_sample``) for the whole law of ``||g||^2`` (two-sample Kolmogorov-Smirnov).
Tolerances: z-scores of sample moments with their own standard errors, bounded by 4.5 for the
10-20 entries checked (family-wise false alarm ~1e-4); KS at p > 1e-4.
"""
import numpy as np
import pytest
from numba import njit
from scipy import stats

from sgdyn.simulate import rng
from sgdyn.simulate.features import GAUSSIAN, draw_sample, projected_gradient
from sgdyn.simulate.run import make_spec
from sgdyn.theory.problem import Problem

LAM = np.array([2.0, 1.0, 0.5, 0.1])
POINT = np.array([0.7, -1.2, 0.4, 2.0])
SIGMA = 0.6
BATCH = 3
DRAWS = 200_000


@njit(cache=True)
def _gradients(seed, draws, sqrt_lam, sigma, point, batch, projected):
    s = np.empty(4, np.uint64)
    rng.seed_stream(seed, 0, s)
    n = point.size
    out = np.zeros((draws, n))
    uhat, feat = np.empty(n), np.empty(n)
    for m in range(draws):
        if projected:
            projected_gradient(s, sqrt_lam, sigma, point, batch, uhat, out[m])
        else:
            for i in range(batch):
                eps = draw_sample(s, GAUSSIAN, sqrt_lam, sigma, np.empty((0, 0)), np.empty(0), feat)
                res = (feat @ point - eps) / batch
                out[m] += feat * res
    return out


def _exact_moments(point):
    h = LAM * point
    cov = ((point @ (LAM * point)) * np.diag(LAM) + np.outer(h, h) + SIGMA ** 2 * np.diag(LAM)) / BATCH
    return h, cov


@pytest.mark.parametrize("point", [POINT, np.zeros(4)])
def test_mean_and_covariance_are_exact(point):
    g = _gradients(np.uint64(5), DRAWS, np.sqrt(LAM), SIGMA, point, BATCH, True)
    h, cov = _exact_moments(point)
    z_mean = (g.mean(0) - h) / (g.std(0, ddof=1) / np.sqrt(DRAWS))
    assert np.abs(z_mean).max() < 4.5
    iu = np.triu_indices(4)
    prod = ((g - h)[:, :, None] * (g - h)[:, None, :])[:, iu[0], iu[1]]
    z_cov = (prod.mean(0) - cov[iu]) / (prod.std(0, ddof=1) / np.sqrt(DRAWS))
    assert np.abs(z_cov).max() < 4.5
    # the covariance is not trivially matched: without the h h^T term it is rejected
    if point.any():
        wrong = cov - np.outer(h, h) / BATCH
        assert np.abs((prod.mean(0) - wrong[iu]) / (prod.std(0, ddof=1) / np.sqrt(DRAWS))).max() > 20


def test_squared_norm_has_the_per_sample_law():
    sqrt_lam = np.sqrt(LAM)
    a = _gradients(np.uint64(6), 40_000, sqrt_lam, SIGMA, POINT, BATCH, True)
    b = _gradients(np.uint64(7), 40_000, sqrt_lam, SIGMA, POINT, BATCH, False)
    assert stats.ks_2samp((a ** 2).sum(1), (b ** 2).sum(1)).pvalue > 1e-4
    # power: a law with the right mean but Gaussian (not chi-square-like) gradients is rejected
    h, cov = _exact_moments(POINT)
    fake = np.random.default_rng(8).multivariate_normal(h, cov, 40_000)
    assert stats.ks_2samp((fake ** 2).sum(1), (b ** 2).sum(1)).pvalue < 1e-6


@pytest.mark.parametrize("kw, match", [
    (dict(sampler="ziggurat"), "sampler must be one of"),
    (dict(sampler="projected", features="rademacher"), "needs Gaussian features"),
])
def test_bad_sampler_is_a_value_error(kw, match):
    with pytest.raises(ValueError, match=match):
        make_spec(Problem.power_law(1.5, 1.0, 5), 0.1, 0.5, 2, 10, 10, 1, **kw)


def test_auto_takes_projected_only_for_gaussian_features():
    p = Problem.power_law(1.5, 1.0, 5)
    assert make_spec(p, 0.1, 0.5, 2, 10, 10, 1).sampler == "projected"
    assert make_spec(p, 0.1, 0.5, 2, 10, 10, 1, features="rademacher").sampler == "per-sample"
