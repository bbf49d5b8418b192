import json

import numpy as np
import pytest

from sgdyn.theory.problem import Problem


def test_power_law_follows_the_paper_exponents():
    p = Problem.power_law(nu=1.5, kappa=3.0, n=50)
    k = np.arange(1, 51)
    np.testing.assert_allclose(p.eigenvalues, k ** -1.5, rtol=1e-15)
    np.testing.assert_allclose(p.eigenvalues * p.initial, k ** -4.0, rtol=1e-14)
    assert p.initial_loss == pytest.approx(0.5 * np.sum(k ** -4.0), rel=1e-14)


def test_from_data_matches_the_empirical_least_squares_problem(rng):
    X = rng.normal(size=(200, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.1])
    w_true = rng.normal(size=5)
    y = X @ w_true + 0.3 * rng.normal(size=200)
    w0 = rng.normal(size=5)
    p = Problem.from_data(X, y, w0=w0)
    H = X.T @ X / 200
    np.testing.assert_allclose(np.sort(p.eigenvalues), np.linalg.eigvalsh(H), rtol=1e-12)
    w_star = np.linalg.solve(X.T @ X, X.T @ y)
    e0 = w0 - w_star
    # the initial loss over the data set, minus the floor, is 1/2 e0^T H e0
    assert p.initial_loss - 0.5 * p.label_noise == pytest.approx(0.5 * e0 @ H @ e0, rel=1e-10)
    assert p.label_noise == pytest.approx(np.mean((X @ w_star - y) ** 2), rel=1e-10)
    assert p.data_size == 200
    # the empirical loss at w0 is exactly the problem's initial loss
    assert 0.5 * np.mean((X @ w0 - y) ** 2) == pytest.approx(p.initial_loss, rel=1e-10)


def test_from_data_drops_directions_without_variance(rng):
    X = np.zeros((30, 3))
    X[:, :2] = rng.normal(size=(30, 2))
    p = Problem.from_data(X, rng.normal(size=30))
    assert p.n_modes == 2


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_file_round_trip(tmp_path, suffix):
    p = Problem([3.0, 1.0, 0.25], [1.0, 0.5, 2.0], label_noise=0.1, data_size=100)
    path = tmp_path / f"p{suffix}"
    p.save(path)
    q = Problem.from_file(path)
    np.testing.assert_array_equal(q.eigenvalues, p.eigenvalues)
    np.testing.assert_array_equal(q.initial, p.initial)
    assert (q.label_noise, q.data_size) == (0.1, 100)


def test_parse_power_law_spec():
    p = Problem.parse("powerlaw:nu=2,kappa=1,n=7")
    assert p.n_modes == 7 and p.eigenvalues[-1] == pytest.approx(7.0 ** -2)


@pytest.mark.parametrize("eigs, init, match", [
    ([1.0, 0.0], [1.0, 1.0], "eigenvalues must be > 0"),
    ([1.0, -2.0], [1.0, 1.0], "eigenvalues must be > 0"),
    ([1.0, 2.0], [1.0, -1.0], "initial must be >= 0"),
    ([1.0, 2.0], [1.0], "same length"),
    ([1.0, np.nan], [1.0, 1.0], "NaN or inf"),
    ([1.0, np.inf], [1.0, 1.0], "NaN or inf"),
    ([], [], "non-empty"),
    ([[1.0]], [[1.0]], "1-D"),
])
def test_bad_arrays_are_rejected(eigs, init, match):
    with pytest.raises(ValueError, match=match):
        Problem(eigs, init)


@pytest.mark.parametrize("kw, match", [
    (dict(label_noise=-1.0), "label_noise"),
    (dict(label_noise=float("nan")), "label_noise"),
    (dict(data_size=0), "data_size"),
    (dict(data_size=2.5), "data_size"),
])
def test_bad_scalars_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        Problem([1.0], [1.0], **kw)


def test_malformed_files(tmp_path):
    missing = tmp_path / "m.json"
    missing.write_text(json.dumps({"eigenvalues": [1.0]}))
    with pytest.raises(ValueError, match="missing key.*initial"):
        Problem.from_file(missing)
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Problem.from_file(bad)
    extra = tmp_path / "e.json"
    extra.write_text(json.dumps({"eigenvalues": [1.0], "initial": [1.0], "lr": 3}))
    with pytest.raises(ValueError, match="unknown key"):
        Problem.from_file(extra)
    with pytest.raises(ValueError, match="does not exist"):
        Problem.from_file(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match=".json or .npz"):
        Problem.from_file(extra.rename(tmp_path / "e.txt"))
    with pytest.raises(ValueError, match="powerlaw spec"):
        Problem.parse("powerlaw:nu=1.5,n=3")


def test_bad_data_matrices(rng):
    X = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="one target per row"):
        Problem.from_data(X, np.zeros(9))
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Problem.from_data(Xn, np.zeros(10))
