import numpy as np
import pytest

from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.equivalence import (deterministic_edge, gap_scaling, momentum_gap, momentum_schedule,
                                pytorch_lr, stability_edges, stationary_loss, stochastic_edge)
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem

SMALL = Problem.power_law(nu=1.5, kappa=1.0, n=20)


@pytest.mark.parametrize("beta", [-0.5, 0.0, 0.5, 0.9])
def test_deterministic_edges_are_the_closed_forms(beta):
    """Roots of the symbolic characteristic polynomial vs the closed forms of docs/theory.md ("SGD
    against momentum at small learning rates"),
    ``eta lambda_max < 2`` (SGD) and ``eta lambda_max < 2 (1 + beta) / (1 - beta)`` (momentum)."""
    lam = np.array([3.0, 1.0, 0.25])
    edges = stability_edges(Problem.from_arrays(lam, np.ones(3)), beta, 8)
    assert edges.sgd_deterministic == pytest.approx(2 / 3.0, rel=1e-11)
    assert edges.momentum_deterministic == pytest.approx(2 * (1 + beta) / ((1 - beta) * 3.0), rel=1e-11)
    assert edges.ratio == pytest.approx((1 + beta) / (1 - beta), rel=1e-11)
    assert deterministic_edge(lam, 0.0, "sgd") == pytest.approx(edges.sgd_deterministic, rel=1e-12)


@pytest.mark.parametrize("beta, batch", [(0.0, 1), (0.6, 2), (0.9, 32)])
def test_stochastic_edge_is_where_the_loss_curve_turns_divergent(beta, batch):
    edge = stochastic_edge(SMALL, beta, batch)
    assert edge <= deterministic_edge(SMALL.eigenvalues, beta) * (1 + 1e-12)
    for factor, diverges in ((0.99, False), (1.01, True)):
        eta = factor * edge
        curve = loss_curve(SMALL, pytorch_lr(eta, beta), beta, batch, 10, noise=GAUSSIAN)
        assert curve.diverges is diverges, (factor, curve.reason)


def test_small_batches_are_noise_limited_so_momentum_buys_little():
    """At batch 1 both edges sit far below the deterministic ones and their ratio is far below
    (1 + beta) / (1 - beta) = 19; at a large batch momentum gains most of that factor."""
    small, large = stability_edges(SMALL, 0.9, 1), stability_edges(SMALL, 0.9, 256)
    assert small.stochastic_ratio < 2.0 < 10.0 < large.stochastic_ratio < large.ratio


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("eta", [0.05, 0.5])
def test_stationary_loss_under_additive_noise_is_the_closed_form(eta, beta):
    """SE model tau1 = tau2 = 0 on one mode: the noise is additive, ``s^2 = sigma^2 lambda / b``,
    and docs/theory.md ("SGD against momentum at small learning rates") gives
    ``sigma^2/2 + eta s^2 / (4 (1 - eta lam (1-beta) / (2 (1+beta))))``.
    Checked against the fixed point and the recursion run to stationarity."""
    lam, sigma2, b = 1.7, 0.3, 3
    p = Problem.from_arrays([lam], [2.0], label_noise=sigma2)
    additive = NoiseModel(0.0, 0.0)
    s2 = sigma2 * lam / b
    want = sigma2 / 2 + eta * s2 / (4 * (1 - eta * lam * (1 - beta) / (2 * (1 + beta))))
    got = stationary_loss(p, eta, beta, b, noise=additive)
    assert got == pytest.approx(want, rel=1e-12)
    curve = loss_curve(p, pytorch_lr(eta, beta), beta, b, 40000, noise=additive)
    assert curve.final == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("beta", [0.0, 0.8])
def test_stationary_loss_with_multiplicative_noise_matches_the_recursion(beta):
    p = SMALL.replace(label_noise=0.2)
    got = stationary_loss(p, 0.3, beta, 4)
    curve = loss_curve(p, pytorch_lr(0.3, beta), beta, 4, 60000)
    assert got == pytest.approx(curve.final, rel=1e-10)


def test_stationary_loss_is_infinite_beyond_the_edge():
    assert stationary_loss(SMALL.replace(label_noise=0.2), 3.0, 0.0, 1) == np.inf


def test_gap_is_exactly_zero_without_momentum_and_comes_from_the_curves():
    g0 = momentum_gap(SMALL, 0.1, 0.0, 4, horizon=2.0)
    assert g0.steps == 20 and g0.max_gap < 1e-14
    g = momentum_gap(SMALL, 0.1, 0.7, 4, horizon=2.0)
    sgd = loss_curve(SMALL, 0.1, 0.0, 4, 20, method="sgd").loss
    mom = loss_curve(SMALL, pytorch_lr(0.1, 0.7), 0.7, 4, 20).loss
    np.testing.assert_array_equal(g.sgd_loss, sgd)
    np.testing.assert_array_equal(g.momentum_loss, mom)
    assert g.max_gap == pytest.approx(np.max(np.abs(mom - sgd) / sgd), rel=1e-15)
    assert not g.diverges and 0 < g.max_gap_step <= 20


def test_gap_of_a_divergent_setting_is_infinite():
    g = momentum_gap(SMALL, 3.0, 0.5, 1, horizon=30.0)
    assert g.diverges and g.max_gap == np.inf and "diverges" in g.reason


@pytest.mark.parametrize("a", [0.0, 0.25, 0.5])
def test_gap_shrinks_like_eta_over_one_minus_beta(a):
    """The gap is ``O(eta / (1 - beta)) = O(eta^(1-a))``: the local log-log slope on a decade of
    small eta approaches ``1 - a`` from below, more closely at smaller eta (corrections are powers
    of ``eta^a`` and ``eta^(1-a)``)."""
    s = gap_scaling(SMALL, np.geomspace(1e-5, 1e-4, 3), a, 4, horizon=2.0)
    far = gap_scaling(SMALL, np.geomspace(1e-2, 1e-1, 3), a, 4, horizon=2.0)
    assert np.all(s.gaps > 0) and np.all(np.diff(s.gaps) > 0)
    err_small = (1 - a) - s.local_exponents[0]
    err_far = (1 - a) - far.local_exponents[0]
    assert 0 <= err_small < err_far
    assert err_small < 0.02
    assert abs(s.exponent - (1 - a)) < 0.025 and s.exponent_stderr < 0.01


@pytest.mark.parametrize("kw, match", [
    (dict(eta=0.0), "eta"), (dict(beta=1.0), "beta"), (dict(horizon=-1.0), "horizon"),
    (dict(batch=0), "batch")])
def test_gap_bad_input_names_the_argument(kw, match):
    args = dict(problem=SMALL, eta=0.1, beta=0.5, batch=4, horizon=1.0)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        momentum_gap(**args)


def test_scaling_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="etas"):
        gap_scaling(SMALL, [0.1], 0.0, 4)
    with pytest.raises(ValueError, match="scale"):
        momentum_schedule([0.1, 0.01], 0.0, 2.5)
    with pytest.raises(ValueError, match="a must"):
        momentum_schedule([0.1, 0.01], -0.5, 0.5)
    with pytest.raises(ValueError, match="etas"):
        gap_scaling(SMALL, [0.5, 5.0], 0.0, 1)   # eta = 5 diverges: no finite gap
