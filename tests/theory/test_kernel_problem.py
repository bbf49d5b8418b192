"""Kernel problems: ``Problem.from_kernel`` is the data problem of any factorisation
``K = Phi Phi^T``; the exact finite-data route on it equals the same route on the explicit
features, and its spectrum / target projections are those of the Gram matrix."""
import numpy as np
import pytest

from sgdyn.theory import Problem, Record, Run, Sampling, solve


def _features(n, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    W = rng.standard_normal((3, p))
    Phi = np.maximum(X @ W, 0.0) / np.sqrt(p)        # random ReLU features: a non-Gaussian law
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1]
    f0 = 0.1 * rng.standard_normal(n)
    return Phi, y, f0


@pytest.mark.parametrize("p", [12, 60])       # fewer features than rows (label noise), and more
@pytest.mark.parametrize("kind", ["iid", "without-replacement"])
def test_exact_route_on_the_kernel_equals_the_route_on_explicit_features(p, kind):
    n = 40
    Phi, y, f0 = _features(n, p, 1)
    rows = Problem.from_rows(Phi, y - f0)
    kern = Problem.from_kernel(Phi @ Phi.T, y, f0=f0)
    assert kern.n_modes == rows.n_modes == min(n, p)
    # a backward-stable eigensolver errs by ~ n eps ||K|| in absolute terms
    eps = 1e-13 * rows.eigenvalues[0]
    np.testing.assert_allclose(kern.eigenvalues, rows.eigenvalues, rtol=1e-10, atol=eps)
    np.testing.assert_allclose(kern.initial * kern.eigenvalues, rows.initial * rows.eigenvalues,
                               rtol=1e-8, atol=1e-12)
    assert kern.label_noise == pytest.approx(rows.label_noise, rel=1e-9, abs=1e-14)
    assert (kern.label_noise > 1e-3) == (p < n)
    smp = Sampling.iid() if kind == "iid" else Sampling.without_replacement(n)
    curves = [solve(Run.build(q, "heavy-ball", alpha=0.3, beta=-0.3, batch=4, steps=60,
                              sampling=smp, record=Record.every(10)), "exact-data").loss
              for q in (rows, kern)]
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-9)
    # and the fitted SE tau is the one of the rows (a rotation of the same samples)
    assert kern.noise.tau1 == pytest.approx(rows.noise.tau1, rel=1e-8)


def test_spectrum_and_target_projections_are_those_of_the_gram_matrix():
    n = 30
    Phi, y, f0 = _features(n, 50, 2)
    K = Phi @ Phi.T
    mu, V = np.linalg.eigh(K)
    mu, V = mu[::-1], V[:, ::-1]
    p = Problem.from_kernel(K, y, f0=f0)
    np.testing.assert_allclose(p.eigenvalues, mu / n, rtol=1e-10, atol=1e-13 * mu[0] / n)
    np.testing.assert_allclose(p.eigenvalues * p.initial, (V.T @ (y - f0)) ** 2 / n, rtol=1e-8)
    assert p.label_noise == 0.0                # full rank: y is fitted exactly
    assert p.initial_loss == pytest.approx(0.5 * np.mean((y - f0) ** 2), rel=1e-12)


def test_the_kernel_problem_travels_through_a_file(tmp_path):
    Phi, y, _ = _features(20, 8, 3)
    p = Problem.from_kernel(Phi @ Phi.T, y)
    p.save(tmp_path / "k.npz")
    q = Problem.from_file(tmp_path / "k.npz")
    np.testing.assert_array_equal(q.data.rows, p.data.rows)
    np.testing.assert_array_equal(q.eigenvalues, p.eigenvalues)


def test_tolerances_of_symmetry_and_definiteness():
    Phi, y, _ = _features(20, 8, 4)
    K = Phi @ Phi.T
    jitter = 1e-12 * np.abs(K).max()
    assert Problem.from_kernel(K + np.triu(np.full_like(K, jitter), 1), y).n_modes == 8
    with pytest.raises(ValueError, match="K must be symmetric"):
        Problem.from_kernel(K + np.triu(np.full_like(K, 1e-3), 1), y)
    with pytest.raises(ValueError, match="K must be positive semi-definite"):
        Problem.from_kernel(K - 0.01 * np.abs(K).max() * np.eye(20), y)


@pytest.mark.parametrize("K, y, f0, fragment", [
    (np.eye(3), np.ones(4), None, "y must be 1-D with one target per row of K (3)"),
    (np.eye(3), np.ones(3), np.ones(2), "f0 must be 1-D with one output per row of K (3)"),
    (np.ones((3, 4)), np.ones(3), None, "K must be a square"),
    (np.ones((1, 1)), np.ones(1), None, "K must be a square 2-D array with at least 2 rows"),
    (np.diag([1.0, np.nan]), np.ones(2), None, "K must not contain NaN"),
    (np.zeros((3, 3)), np.ones(3), None, "K must have a positive eigenvalue"),
    (np.diag([1.0, 0.0, 0.0]), np.ones(3), None, "K must have at least 2 directions"),
])
def test_bad_kernels_name_the_argument(K, y, f0, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Problem.from_kernel(K, y, f0=f0)
