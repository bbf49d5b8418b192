"""Samplers and data sets: distributions of the draws, DataSet vs Problem.from_data."""
import numpy as np
import pytest

from sgdyn.simulate.features import DataSet, replay
from sgdyn.theory.problem import Problem

NO_ROWS, NO_RES = np.empty((0, 0)), np.empty(0)


def test_gaussian_draws_have_the_right_moments():
    lam = np.array([4.0, 1.0, 0.25])                      # odd count: the pair-drawing edge case
    feats, eps = replay(np.uint64(1), 0, np.full(20000, 2), 0, np.sqrt(lam), 0.5, NO_ROWS, NO_RES)
    x = feats.reshape(-1, 3)
    n = x.shape[0]
    # mean 0 and variance lambda, each within 5 standard errors (var of x^2 is 2 lambda^2)
    assert np.all(np.abs(x.mean(0)) < 5 * np.sqrt(lam / n))
    assert np.all(np.abs((x ** 2).mean(0) - lam) < 5 * np.sqrt(2 * lam ** 2 / n))
    assert abs(np.mean(x[:, 0] * x[:, 1])) < 5 * np.sqrt(lam[0] * lam[1] / n)
    assert abs(np.mean(eps ** 2) - 0.25) < 5 * np.sqrt(2 * 0.25 ** 2 / eps.size)
    kurt = (x ** 4).mean(0) / lam ** 2
    assert np.all(np.abs(kurt - 3.0) < 5 * np.sqrt(96.0 / n))   # var of z^4 is 105 - 9


def test_rademacher_draws_are_balanced_signs():
    lam = np.full(70, 2.0)                                # crosses a 64-bit word boundary
    feats = replay(np.uint64(2), 3, np.full(3000, 1), 1, np.sqrt(lam), 0.0, NO_ROWS, NO_RES)[0]
    z = feats.reshape(-1, 70) / np.sqrt(2.0)
    assert set(np.unique(z)) == {-1.0, 1.0}
    assert np.all(np.abs(z.mean(0)) < 5 / np.sqrt(z.shape[0]))
    assert abs(np.mean(z[:, 63] * z[:, 64])) < 5 / np.sqrt(z.shape[0])


def test_data_rows_are_drawn_uniformly_with_replacement(rng):
    rows = rng.standard_normal((5, 2))
    res = np.arange(5.0)
    feats, eps = replay(np.uint64(3), 0, np.full(20000, 1), 2, np.ones(2), 0.0, rows, res)
    idx = eps[:, 0].astype(int)
    np.testing.assert_array_equal(feats[:, 0, :], rows[idx])
    counts = np.bincount(idx, minlength=5)
    assert np.all(np.abs(counts - 4000) < 5 * np.sqrt(20000 * 0.2 * 0.8))


def test_data_set_problem_matches_problem_from_data(rng):
    X = rng.standard_normal((50, 6)) @ rng.standard_normal((6, 6))
    X[:, 5] = X[:, 4]                                     # a direction with no data
    y = X @ rng.standard_normal(6) + rng.standard_normal(50)
    w0 = rng.standard_normal(6)
    data = DataSet(X, y, w0)
    want = Problem.from_data(X, y, w0).replace(data_size=None)
    got = data.problem
    assert got.n_modes == want.n_modes == 5
    np.testing.assert_allclose(got.eigenvalues, want.eigenvalues, rtol=1e-12)
    np.testing.assert_allclose(got.initial, want.initial, rtol=1e-9, atol=1e-12 * want.initial.max())
    assert got.label_noise == pytest.approx(want.label_noise, rel=1e-12)
    # rows in the eigenbasis: their second moment is diag(lambda); residuals orthogonal to X
    np.testing.assert_allclose(data.rows.T @ data.rows / 50, np.diag(got.eigenvalues),
                               atol=1e-10 * got.eigenvalues[0])
    np.testing.assert_allclose(X.T @ data.residuals, 0.0, atol=1e-9 * np.abs(X).sum() * np.abs(y).max())


@pytest.mark.parametrize("X,y,w0,match", [
    (np.ones((3, 2)) * np.nan, np.ones(3), None, "X must not contain NaN"),
    (np.ones((3, 2)), np.array([1.0, np.inf, 0.0]), None, "y must not contain NaN"),
    (np.ones((3, 2)), np.ones(4), None, "y must be 1-D with one target per row"),
    (np.ones(3), np.ones(3), None, "X must be a non-empty 2-D array"),
    (np.ones((3, 2)), np.ones(3), np.ones(3), "w0 must be a finite vector of length 2"),
])
def test_data_set_rejects_bad_input(X, y, w0, match):
    with pytest.raises(ValueError, match=match):
        DataSet(X, y, w0)


def test_data_set_without_variance_is_rejected():
    with pytest.raises(ValueError, match="no direction with positive variance"):
        DataSet(np.zeros((4, 3)), np.ones(4)).problem
