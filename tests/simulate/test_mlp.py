"""The finite network (``simulate.mlp``): its Jacobian against central differences, its empirical
NTK against J J^T and, as the width grows, against the analytic infinite-width NTK with an error
shrinking like 1/sqrt(width)."""
import numpy as np
import pytest

from sgdyn.simulate.mlp import MLP
from sgdyn.theory.ntk import ACTIVATIONS, PARAMETRIZATIONS, Architecture, analytic_kernels

RNG = np.random.default_rng(0)
X = RNG.standard_normal((5, 3))


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jacobian_against_central_differences(activation, parametrization):
    """h = 1e-6: truncation h^2 |f'''| / 6 ~ 1e-13, rounding eps |f| / h ~ 1e-10 (a ReLU
    pre-activation within h of its kink would break the difference quotient: none is here)."""
    arch = Architecture(2, 6, activation, parametrization, weight_std=1.2, bias_std=0.3)
    net = MLP.init(arch, 3, seed=1)
    J = net.jacobian(X)
    h = 1e-6
    eye = np.eye(net.size) * h
    fd = np.stack([(MLP(arch, 3, net.params + e).forward(X) - MLP(arch, 3, net.params - e).forward(X))
                   / (2 * h) for e in eye], axis=1)
    assert J.shape == (5, net.size) == fd.shape
    np.testing.assert_allclose(J, fd, rtol=0, atol=1e-8 * np.abs(J).max())
    np.testing.assert_allclose(net.ntk(X).ntk, J @ J.T, rtol=1e-12, atol=1e-14)


def test_forward_is_the_layer_map_written_out():
    """One hidden layer, NTK parametrisation, by hand."""
    arch = Architecture(1, 4, "tanh", weight_std=1.5, bias_std=0.2)
    net = MLP.init(arch, 3, seed=2)
    (W1, b1, _, _), (W2, b2, _, _) = net.layers()
    hidden = np.tanh(1.5 / np.sqrt(3) * X @ W1.T + 0.2 * b1)
    np.testing.assert_allclose(net.forward(X), (1.5 / 2 * hidden @ W2.T + 0.2 * b2)[:, 0],
                               rtol=1e-14)


def _rms_slope(arch_of, widths, seeds, X):
    """Fit log(mean over seeds of the squared relative Frobenius error) against log(width) by
    weighted least squares (weights from the seed-to-seed standard error): returns the slope of
    the RMS error, half the fitted slope, and its standard error."""
    err2 = np.empty((len(widths), seeds))
    for i, w in enumerate(widths):
        arch = arch_of(w)
        exact = analytic_kernels(X, arch).ntk
        for s in range(seeds):
            emp = MLP.init(arch, X.shape[1], seed=s).ntk(X).ntk
            err2[i, s] = (np.linalg.norm(emp - exact) / np.linalg.norm(exact)) ** 2
    mean = err2.mean(axis=1)
    rel_se = err2.std(axis=1, ddof=1) / np.sqrt(seeds) / mean
    A = np.column_stack([np.ones(len(widths)), np.log(widths)])
    wts = 1.0 / rel_se ** 2
    cov = np.linalg.inv(A.T @ (wts[:, None] * A))
    slope = (cov @ A.T @ (wts * np.log(mean)))[1]
    return slope / 2, np.sqrt(cov[1, 1]) / 2, np.sqrt(mean)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_empirical_ntk_converges_like_one_over_sqrt_width(activation):
    """One hidden layer: the empirical NTK is an average over the width of i.i.d. unit terms, so
    its mean squared error is exactly Var / width: the RMS error's slope is -1/2, measured over
    widths 64, 256, 1024 and 30 seeds, within 4 of its standard errors."""
    Xs = 0.7 * RNG.standard_normal((6, 5))      # variances below 1: tanh's quadrature at 64 nodes
    slope, se, rms = _rms_slope(lambda w: Architecture(1, w, activation), [64, 256, 1024], 30, Xs)
    assert abs(slope + 0.5) < 4 * se, (slope, se, rms)
    assert rms[-1] < 0.1


@pytest.mark.slow
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_deeper_networks_converge_like_one_over_sqrt_width(activation, parametrization):
    """Two hidden layers (the fluctuations of the first propagate: 1/sqrt(width) at leading
    order), widths 64 .. 1024, 30 seeds."""
    Xs = RNG.standard_normal((6, 5))
    slope, se, rms = _rms_slope(lambda w: Architecture(2, w, activation, parametrization),
                                [64, 256, 1024], 30, Xs)
    assert abs(slope + 0.5) < 4 * se, (slope, se, rms)


def test_bad_network_inputs_name_the_argument():
    net = MLP.init(Architecture(1, 4), 3)
    with pytest.raises(ValueError, match="X must have 3 columns"):
        net.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="params must be a finite vector of 21 numbers"):
        MLP(net.architecture, 3, np.ones(5))
    with pytest.raises(ValueError, match="architecture must be a sgdyn.theory.ntk.Architecture"):
        MLP.init("relu", 3)
    with pytest.raises(ValueError, match="input_dim must be an integer"):
        MLP.init(net.architecture, 0)
