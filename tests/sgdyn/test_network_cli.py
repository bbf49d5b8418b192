"""``sgdyn problem from-kernel`` and ``sgdyn problem from-network`` write the problems that
``Problem.from_kernel`` builds from the Gram matrix, a network's empirical NTK or the analytic one."""
import json

import numpy as np
import pytest

from sgdyn.cli import main
from sgdyn.simulate.mlp import MLP
from sgdyn.theory import Problem
from sgdyn.theory.ntk import Architecture, analytic_kernels


@pytest.fixture()
def data(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((24, 4))
    y = np.tanh(X[:, 0]) + 0.1 * rng.standard_normal(24)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return tmp_path, X, y


def test_from_kernel_writes_the_kernel_problem(data, capsys):
    path, X, y = data
    K = X @ X.T
    np.save(path / "K.npy", K)
    out = str(path / "k.npz")
    assert main(["problem", "from-kernel", str(path / "K.npy"), str(path / "y.npy"), "--out", out,
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["modes"] == 4 and info["rows"] == 24
    p, q = Problem.from_file(out), Problem.from_kernel(K, y)
    np.testing.assert_array_equal(p.eigenvalues, q.eigenvalues)
    assert p.label_noise == pytest.approx(q.label_noise, rel=1e-12)


@pytest.mark.parametrize("analytic", [False, True])
def test_from_network_writes_the_ntk_problem(data, capsys, analytic):
    path, X, y = data
    out = str(path / "n.npz")
    argv = ["problem", "from-network", "--data", str(path / "X.npy"), "--target",
            str(path / "y.npy"), "--depth", "2", "--width", "32", "--activation", "erf",
            "--seed", "3", "--out", out] + (["--analytic"] if analytic else [])
    assert main(argv) == 0
    text = capsys.readouterr().out
    arch = Architecture(2, 32, "erf")
    if analytic:
        assert "analytic infinite-width NTK" in text
        expect = Problem.from_kernel(analytic_kernels(X, arch).ntk, y)
    else:
        assert "empirical NTK of one network" in text
        net = MLP.init(arch, 4, seed=3)
        expect = Problem.from_kernel(net.ntk(X).ntk, y, f0=net.forward(X))
    got = Problem.from_file(out)
    np.testing.assert_allclose(got.eigenvalues, expect.eigenvalues, rtol=1e-12,
                               atol=1e-14 * expect.eigenvalues[0])
    assert got.initial_loss == pytest.approx(expect.initial_loss, rel=1e-12)
