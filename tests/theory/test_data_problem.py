"""Data problems: what Problem.from_rows keeps, files that carry it, and the errors for bad data."""
import json

import numpy as np
import pytest

from sgdyn.theory.data_problem import DataRows, read_matrix, standardize
from sgdyn.theory.noise import NoiseModel, estimate_tau
from sgdyn.theory.problem import Problem


@pytest.fixture
def data(rng):
    X = rng.normal(size=(120, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.1]) + 0.3
    X[:, 2] = rng.choice([-1.0, 1.0], size=120)
    y = X @ rng.normal(size=5) + 0.4 * rng.normal(size=120)
    return X, y, rng.normal(size=5)


def test_from_rows_is_the_least_squares_problem_with_its_rows(data):
    X, y, w0 = data
    p = Problem.from_rows(X, y, w0=w0, name="syn")
    q = Problem.from_data(X, y, w0=w0)
    np.testing.assert_allclose(p.eigenvalues, q.eigenvalues, rtol=1e-12)
    np.testing.assert_allclose(p.initial, q.initial, rtol=1e-9)
    assert p.label_noise == pytest.approx(q.label_noise, rel=1e-12)
    assert p.data_size is None and q.data_size == 120          # i.i.d. by default
    d = p.data
    np.testing.assert_allclose(d.rows.T @ d.rows / 120, np.diag(p.eigenvalues), atol=1e-12)
    assert np.abs(d.rows.T @ d.residuals).max() < 1e-10
    # the loss over the data set at w0, and its floor
    assert p.initial_loss == pytest.approx(0.5 * np.mean((X @ w0 - y) ** 2), rel=1e-12)
    fit = estimate_tau(X)
    assert (p.noise.tau1, p.noise.tau2, p.tau_residual) == pytest.approx(
        (fit.tau1, fit.tau2, fit.residual), rel=1e-12)
    assert (d.n, d.modes, d.features, d.standardized) == (120, 5, 5, False)
    Q = np.mean((d.rows ** 2)[:, :, None] * (d.rows ** 2)[:, None, :], axis=0)
    np.testing.assert_allclose(d.fourth_moments, Q, rtol=1e-12)


def test_standardize_centres_and_scales_and_drops_constant_columns(data):
    X, y, _ = data
    X = np.column_stack([X, np.full(120, 7.0)])
    Xs, ys = standardize(X, y)
    np.testing.assert_allclose(Xs[:, :5].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Xs[:, :5].std(axis=0), 1, rtol=1e-12)
    assert np.all(Xs[:, 5] == 0) and ys.mean() == pytest.approx(0, abs=1e-12)
    p = Problem.from_rows(X, y, standardize_data=True)
    assert p.n_modes == 5 and p.data.features == 6 and p.data.standardized
    assert p.trace == pytest.approx(5.0, rel=1e-12)                 # unit-variance columns
    assert p.initial_loss == pytest.approx(0.5, rel=1e-12)          # y standardised, w0 = 0


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_file_round_trip_keeps_rows_tau_and_name(data, tmp_path, suffix):
    X, y, w0 = data
    p = Problem.from_rows(X, y, w0=w0, standardize_data=True, name="syn")
    path = tmp_path / f"p{suffix}"
    p.save(path)
    q = Problem.from_file(path)
    assert q.name == "syn" and q.noise == p.noise and q.tau_residual == p.tau_residual
    np.testing.assert_array_equal(q.data.rows, p.data.rows)
    np.testing.assert_array_equal(q.data.initial_error, p.data.initial_error)
    np.testing.assert_array_equal(q.data.residuals, p.data.residuals)
    assert q.data.standardized and q.data.features == 5 and q.data_size is None


def test_spectrum_file_may_carry_a_noise_model(tmp_path):
    p = Problem([2.0, 1.0], [1.0, 1.0], noise=NoiseModel(0.9, 0.8), tau_residual=0.01)
    p.save(tmp_path / "s.npz")
    q = Problem.from_file(tmp_path / "s.npz")
    assert q.noise == NoiseModel(0.9, 0.8) and q.tau_residual == 0.01 and q.data is None


def _write(tmp_path, filename, **arrays):
    path = tmp_path / filename
    if filename.endswith(".npz"):
        np.savez(path, **arrays)
    else:
        path.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in arrays.items()}))
    return str(path)


@pytest.mark.parametrize("change,match", [
    (dict(tau1=0.5), "keys 'tau1' and 'tau2' go together"),
    (dict(tau1=0.5, tau2=0.9), "key 'tau1': tau2 must be <= tau1"),
    (dict(tau_residual=-1.0), "key 'tau_residual': tau_residual must be >= 0"),
    (dict(tau_residual=[1.0, 2.0]), "key 'tau_residual' must be a (scalar|number)"),
    (dict(name=3.0), "key 'name' must be a string"),
    (dict(rows=None), "keys rows, residuals, initial_error go together, missing rows"),
    (dict(rows=np.ones((5, 2))), "key 'rows'"),
    (dict(residuals=np.ones(3)), "key 'rows': residuals must have one entry per row"),
    (dict(initial="x"), "key 'initial'"),
    (dict(eigenvalues=[1.0, 2.0]), "key 'eigenvalues': eigenvalues must be the mean squared"),
    (dict(label_noise=5.0), "key 'label_noise'"),
    (dict(extra=1), r"unknown key\(s\): extra"),
])
@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_malformed_problem_files_are_one_error_naming_file_and_key(data, tmp_path, change, match, suffix):
    X, y, w0 = data
    p = Problem.from_rows(X[:, :2], y, w0=w0[:2])
    good = dict(eigenvalues=p.eigenvalues, initial=p.initial, label_noise=p.label_noise,
                rows=p.data.rows, residuals=p.data.residuals, initial_error=p.data.initial_error)
    for k, v in change.items():
        if v is None:
            good.pop(k)
        else:
            good[k] = v
    path = _write(tmp_path, "bad" + suffix, **good)
    with pytest.raises(ValueError, match=match) as info:
        Problem.from_file(path)
    msg = str(info.value)
    assert path in msg and "\n" not in msg


def test_data_rows_check_their_invariants(rng):
    Z = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="eigenbasis"):
        DataRows(Z, np.zeros(10), np.zeros(2))
    Q, _ = np.linalg.qr(rng.normal(size=(10, 2)))
    Z = Q * np.sqrt(10)                                 # orthogonal columns
    with pytest.raises(ValueError, match="orthogonal to the rows"):
        DataRows(Z, Z[:, 0] + 1e-3, np.zeros(2))
    with pytest.raises(ValueError, match="initial_error must have one entry"):
        DataRows(Z, np.zeros(10), np.zeros(3))
    with pytest.raises(ValueError, match="at least 2 rows"):
        DataRows(Z[:1], np.zeros(1), np.zeros(2))
    d = DataRows(Z, np.zeros(10), np.ones(2))
    with pytest.raises(ValueError, match="initial must be the squared"):
        Problem(d.eigenvalues, [1.0, 2.0], data=d)
    with pytest.raises(ValueError, match="data must be a theory.data_problem.DataRows"):
        Problem(d.eigenvalues, [1.0, 1.0], data="rows")
    p = Problem(d.eigenvalues, [1.0, 1.0], data=d)
    with pytest.raises(ValueError, match="drop the rows first"):
        p.replace(label_noise=1.0)
    assert p.replace(data=None, label_noise=1.0).label_noise == 1.0


@pytest.mark.parametrize("bad,match", [
    (dict(X=np.ones(4)), "X must be a 2-D array"),
    (dict(y=np.ones(3)), "one target per row"),
    (dict(X=np.full((4, 2), np.nan)), "X must not contain NaN"),
    (dict(w0=np.ones(3)), "w0 must be a finite vector of length 2"),
    (dict(X=np.zeros((4, 2))), "no direction with positive variance"),
])
def test_from_rows_rejects_bad_input(rng, bad, match):
    kw = dict(X=rng.normal(size=(4, 2)), y=rng.normal(size=4))
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        Problem.from_rows(**kw)


def test_read_matrix_npy_and_csv_with_or_without_header(tmp_path, rng):
    X = rng.normal(size=(6, 3))
    np.save(tmp_path / "x.npy", X)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    np.savetxt(tmp_path / "h.csv", X, delimiter=",", header="a,b,c", comments="")
    for f in ("x.npy", "x.csv", "h.csv"):
        np.testing.assert_allclose(read_matrix(tmp_path / f, "X", 2), X, rtol=1e-15)
    np.savetxt(tmp_path / "y.csv", X[:, :1], delimiter=",")
    assert read_matrix(tmp_path / "y.csv", "y", 1).shape == (6,)
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    for name, match in (("bad.csv", "not a numeric CSV"), ("nope.npy", "does not exist"),
                        ("x.npy", "must hold a non-empty 1-D")):
        with pytest.raises(ValueError, match=match):
            read_matrix(tmp_path / name, "y", 1)
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ValueError, match=r"must end in \.npy or \.csv"):
        read_matrix(tmp_path / "x.txt", "X", 2)
