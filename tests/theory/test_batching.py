import numpy as np
import pytest

from sgdyn.theory.batching import norm_test_prediction, population_tests
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem

NOISY = Problem.power_law(1.5, 1.0, 12).replace(label_noise=0.1)


def _isserlis_moments(lam, e, sigma2):
    """Cov(G) for G = x (x.e - eps), x ~ N(0, diag(lam)), from Isserlis' theorem on the full
    fourth-moment tensor E[x_a x_b x_c x_d] = H_ab H_cd + H_ac H_bd + H_ad H_bc."""
    H = np.diag(lam)
    T = (np.einsum("ab,cd->abcd", H, H) + np.einsum("ac,bd->abcd", H, H)
         + np.einsum("ad,bc->abcd", H, H))
    second = np.einsum("acbd,c,d->ab", T, e, e) + sigma2 * H   # E[G G^T]
    h = H @ e
    return second - np.outer(h, h), h


@pytest.mark.parametrize("sigma2", [0.0, 0.7])
def test_population_tests_equal_isserlis(rng, sigma2):
    lam = rng.uniform(0.2, 3.0, 4)
    e = rng.standard_normal(4)
    cov, h = _isserlis_moments(lam, e, sigma2)
    got = population_tests(lam, e, sigma2, GAUSSIAN, eta_test=0.2, theta=0.3, nu=0.4)
    hh = h @ h
    assert got.norm == pytest.approx(np.trace(cov) / (0.04 * hh), rel=1e-12)
    assert got.inner_product == pytest.approx(h @ cov @ h / (0.09 * hh ** 2), rel=1e-12)
    P = np.eye(4) - np.outer(h, h) / hh
    assert got.orthogonality == pytest.approx(np.trace(P @ cov @ P) / (0.16 * hh), rel=1e-12)
    assert got.augmented == max(got.inner_product, got.orthogonality)


@pytest.mark.parametrize("d", [1, 3, 10])
def test_isotropic_noiseless_closed_forms(rng, d):
    got = population_tests(np.ones(d), rng.standard_normal(d), eta_test=0.1, theta=0.2, nu=0.5)
    assert got.norm == pytest.approx((1 + d) / 0.01, rel=1e-12)
    assert got.inner_product == pytest.approx(2 / 0.04, rel=1e-12)
    assert got.orthogonality == pytest.approx((d - 1) / 0.25, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("method, beta", [("sgd", 0.0), ("heavy-ball", 0.7), ("nesterov", 0.5)])
@pytest.mark.parametrize("noise", [GAUSSIAN, NoiseModel(1.0, 1.0)])
def test_constant_batch_loss_is_the_loss_curve(method, beta, noise):
    pred = norm_test_prediction(NOISY, 0.2, 300, beta=beta, method=method, batch=3,
                                adaptive=False, noise=noise)
    curve = loss_curve(NOISY, 0.2, beta, 3, 300, method=method, noise=noise)
    np.testing.assert_allclose(pred.loss, curve.loss, rtol=1e-12)
    assert np.all(pred.batch == 3) and np.all(pred.samples == 3 * np.arange(301))
    np.testing.assert_allclose(pred.mean_grad_sq, pred.grad_sq + pred.trace_cov / 3, rtol=1e-15)


def test_isotropic_noiseless_schedule_jumps_to_the_constant_closed_form():
    """H = I, no label noise: population batch (1 + d)/eta^2 at every step, so the mean-field
    schedule takes it after one step and keeps it; the test's own ratio of expectations at batch b
    is (1 + d)/(eta^2 (1 + (1 + d)/b))."""
    d, eta = 7, 0.2
    pred = norm_test_prediction(Problem.from_arrays(np.ones(d), np.ones(d)), 0.1, 40,
                                batch=2, max_batch=10 ** 6, eta_test=eta)
    np.testing.assert_allclose(pred.population_batch, (1 + d) / eta ** 2, rtol=1e-12)
    assert pred.batch[0] == 2 and np.all(pred.batch[1:] == np.ceil(pred.population_batch[0]))
    np.testing.assert_allclose(pred.test_batch, (1 + d) / (eta ** 2 * (1 + (1 + d) / pred.batch)),
                               rtol=1e-12)


def test_with_label_noise_the_batch_grows_like_one_over_grad_norm():
    """b* ||H e||^2 eta^2 = E tr Cov -> sigma^2 tr H as the error decays."""
    pred = norm_test_prediction(NOISY, 0.3, 400, batch=4, max_batch=10 ** 7)
    c = pred.population_batch * pred.grad_sq * 0.01 / (NOISY.label_noise * NOISY.trace)
    assert np.all(np.diff(c[5:]) < 0) and abs(c[-1] - 1) < 1e-3
    assert np.all(np.diff(pred.batch) >= 0) and pred.batch[-1] > 1000 * pred.batch[0]


def test_cap_and_divergence():
    capped = norm_test_prediction(NOISY, 0.3, 200, batch=4, max_batch=500)
    assert capped.batch.max() == 500 and not capped.diverges
    blown = norm_test_prediction(NOISY, 5.0, 5000, batch=2, adaptive=False)
    assert blown.diverges and blown.loss.size < 5001 and np.all(np.isfinite(blown.loss))


@pytest.mark.parametrize("kw, match", [
    (dict(steps=0), "steps"), (dict(eta_test=-1.0), "eta_test"), (dict(batch=0), "batch"),
    (dict(batch=50, max_batch=10), "batch must be <= max_batch"),
    (dict(schedule=[2, 2]), "schedule must be None"),
    (dict(adaptive=False, schedule=[2, 0, 2]), "schedule"),
    (dict(method="sgd", beta=0.3), "beta must be 0"),
    (dict(problem=NOISY.replace(data_size=40)), "data_size")])
def test_prediction_bad_input(kw, match):
    args = dict(problem=NOISY, alpha=0.1, steps=3)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        norm_test_prediction(**args)


def test_population_bad_input():
    with pytest.raises(ValueError, match="error must"):
        population_tests([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="error must not be zero"):
        population_tests([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="theta"):
        population_tests([1.0], [1.0], theta=0.0)
