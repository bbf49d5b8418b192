"""The SE parameters of exact cases, checked by exact quadrature of the fourth moments."""
import itertools

import numpy as np
import pytest

from sgdyn.theory.noise import GAUSSIAN, RADEMACHER, NoiseModel, batch_factor


def _fourth_moment_diag(points, weights, lam, C):
    """diag of E[x x^T C x x^T] - H C H for x = sqrt(lam) * z, by exact quadrature over z."""
    x = points * np.sqrt(lam)
    quad = np.einsum("ni,ij,nj->n", x, C, x)
    E = np.einsum("n,n,ni->i", weights, quad, x * x)
    H = np.diag(lam)
    return E - np.diag(H @ C @ H)


def _se_diag(noise, lam, C):
    return noise.tau1 * lam * np.sum(lam * np.diag(C)) - noise.tau2 * lam ** 2 * np.diag(C)


def test_gaussian_and_rademacher_are_exactly_se(rng):
    lam = np.array([2.0, 0.7, 0.3])
    B = rng.normal(size=(3, 3))
    C = B @ B.T  # a full (non-diagonal) second-moment matrix: the diagonal still closes
    # Gauss-Hermite (probabilists') with 3 nodes per axis is exact for degree <= 5
    nodes, w = np.polynomial.hermite_e.hermegauss(3)
    w = w / w.sum()
    pts = np.array(list(itertools.product(nodes, repeat=3)))
    wts = np.prod(np.array(list(itertools.product(w, repeat=3))), axis=1)
    np.testing.assert_allclose(_fourth_moment_diag(pts, wts, lam, C), _se_diag(GAUSSIAN, lam, C),
                               rtol=1e-12)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=3)))
    np.testing.assert_allclose(_fourth_moment_diag(signs, np.full(8, 1 / 8), lam, C),
                               _se_diag(RADEMACHER, lam, C), rtol=1e-12)
    assert NoiseModel.from_kurtosis(3.0) == GAUSSIAN
    assert NoiseModel.from_kurtosis(1.0) == RADEMACHER
    assert NoiseModel.from_paper_tau(0.5) == NoiseModel(1.0, 0.5)


def test_batch_factor():
    assert batch_factor(4) == 0.25
    assert batch_factor(10, 100) == pytest.approx(90 / (99 * 10))
    assert batch_factor(100, 100) == 0.0
    assert batch_factor(1, 100) == 1.0


@pytest.mark.parametrize("args, match", [
    ((0,), "batch"), ((2.5,), "batch"), ((True,), "batch"), ((5, 4), "batch must be <= data_size"),
])
def test_batch_factor_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        batch_factor(*args)


@pytest.mark.parametrize("tau1, tau2, match", [
    (-0.1, -1.0, "tau1"), (1.0, 1.5, "tau2 must be <= tau1"), (float("nan"), 0.0, "tau1"),
])
def test_noise_model_rejects_bad_input(tau1, tau2, match):
    with pytest.raises(ValueError, match=match):
        NoiseModel(tau1, tau2)
