"""Problem.multiplicity: an entry standing for w_k equal modes must give exactly what the problem
with the entries repeated gives, on every route (recursion, generating function, singularities,
stability, horizon, stationary loss); Monte Carlo consumers reject it clearly."""
import numpy as np
import pytest

from sgdyn.simulate.adaptive import simulate_adaptive
from sgdyn.simulate.run import run as simulate_run
from sgdyn.theory.batching import norm_test_prediction
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.equivalence import stationary_loss
from sgdyn.theory.horizon import final_losses, noise_decomposition
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import (critical_batch, critical_learning_rate, noise_feedback,
                              optimal_rate)
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import GeneratingFunctions, singularities

GROUPED = Problem.from_arrays([2.0, 0.7, 0.3, 0.05], [0.5, 1.0, 2.0, 4.0], data_size=200,
                              name="grouped").replace(multiplicity=[1, 3, 2, 5])
REPEATED = GROUPED.expanded()
TAU = NoiseModel(1.0, 0.5)


def test_expanded_repeats_entries():
    assert REPEATED.n_modes == 11 and not REPEATED.has_multiplicity
    assert GROUPED.n_modes == 4 and GROUPED.total_modes == 11.0
    assert GROUPED.trace == pytest.approx(REPEATED.trace, rel=1e-15)
    assert GROUPED.initial_loss == pytest.approx(REPEATED.initial_loss, rel=1e-15)


@pytest.mark.parametrize("method,beta", [("heavy-ball", -0.3), ("nesterov", 0.6), ("sgd", 0.0)])
@pytest.mark.parametrize("route", ["recursion", "generating-function"])
def test_loss_curve_equals_repeated_modes(method, beta, route):
    a = 0.12
    g = loss_curve(GROUPED, a, beta, 3, 300, method, TAU, route)
    r = loss_curve(REPEATED, a, beta, 3, 300, method, TAU, route)
    # same arithmetic up to the order of summation: rounding only
    np.testing.assert_allclose(g.loss, r.loss, rtol=1e-11, atol=0)
    assert g.rate == pytest.approx(r.rate, rel=1e-12)


def test_generating_functions_and_singularities():
    zs = np.array([0.3, 0.9 + 0.2j, -0.5])
    sg = ModeSystem.build(GROUPED, 0.2, 0.4, 2, noise=TAU)
    sr = ModeSystem.build(REPEATED, 0.2, 0.4, 2, noise=TAU)
    for f in ("U", "V", "W", "loss"):
        np.testing.assert_allclose(getattr(GeneratingFunctions(sg), f)(zs),
                                   getattr(GeneratingFunctions(sr), f)(zs), rtol=1e-13)
    a, b = singularities(sg), singularities(sr)
    assert a.noise_feedback == pytest.approx(b.noise_feedback, rel=1e-13)
    assert a.rate == pytest.approx(b.rate, rel=1e-13) and a.limited_by == b.limited_by
    assert noise_feedback(GROUPED, 0.2, 0.4, 2, noise=TAU) == pytest.approx(b.noise_feedback, rel=1e-13)


def test_stability_routes():
    for beta in (-0.4, 0.5):
        cg = critical_learning_rate(GROUPED, beta, 2, noise=TAU)
        cr = critical_learning_rate(REPEATED, beta, 2, noise=TAU)
        assert cg.alpha_crit == pytest.approx(cr.alpha_crit, rel=1e-13)
        assert cg.limited_by == cr.limited_by and cg.mode_share == pytest.approx(cr.mode_share, rel=1e-10)
    assert critical_batch(GROUPED, 0.5, 0.3, noise=TAU).batch_crit == \
        critical_batch(REPEATED, 0.5, 0.3, noise=TAU).batch_crit
    og, orr = optimal_rate(GROUPED, 4, grid=(9, 7)), optimal_rate(REPEATED, 4, grid=(9, 7))
    assert og.rate == pytest.approx(orr.rate, rel=1e-9)


def test_horizon_and_stationary_loss():
    np.testing.assert_allclose(final_losses(GROUPED, [0.1, 0.3], [-0.2, 0.4], 2, 200),
                               final_losses(REPEATED, [0.1, 0.3], [-0.2, 0.4], 2, 200), rtol=1e-11)
    dg, dr = noise_decomposition(GROUPED, 0.2, -0.3, 2, 400), noise_decomposition(REPEATED, 0.2, -0.3, 2, 400)
    for f in ("noise_feedback", "signal_total", "noise_kernel", "exact_loss"):
        assert getattr(dg, f) == pytest.approx(getattr(dr, f), rel=1e-11)
    noisy_g, noisy_r = GROUPED.replace(label_noise=0.3), REPEATED.replace(label_noise=0.3)
    assert stationary_loss(noisy_g, 0.1, 0.5, 2) == pytest.approx(stationary_loss(noisy_r, 0.1, 0.5, 2), rel=1e-12)


def test_saved_and_parsed(tmp_path):
    for ext in ("json", "npz"):
        path = tmp_path / f"p.{ext}"
        GROUPED.save(path)
        back = Problem.from_file(path)
        np.testing.assert_array_equal(back.multiplicity, GROUPED.multiplicity)
    c = Problem.parse("powerlaw:nu=1.5,kappa=2,n=1e6,groups=200")
    assert c.total_modes == 1e6 and c.n_modes < 320


def test_continuum_is_a_midpoint_rule():
    """sum_k k^-1.5 over k <= n (zeta(1.5) minus the tail, Euler-Maclaurin) against the block
    sum: the difference is the midpoint rule's leading error, sum_j f''(kbar_j) w_j (w_j^2 - 1)/24
    (the sum of f(kbar + d) over a symmetric block of w integers)."""
    n = 10 ** 6
    c = Problem.power_law_continuum(1.5, 2.0, n, groups=200)
    exact = 2.6123753486854883 - 2.0 / np.sqrt(n) - 0.5 * n ** -1.5
    k, w = c.eigenvalues ** (-1 / 1.5), c.multiplicity
    leading = np.sum(3.75 * k ** -3.5 * w * (w ** 2 - 1) / 24)
    assert exact - c.trace == pytest.approx(leading, rel=0.05)
    assert leading < 3e-5 * exact


def test_continuum_equals_discrete_power_law():
    """Blocks of one mode each reproduce power_law exactly; coarse blocks a midpoint rule."""
    exact = Problem.power_law(1.5, 2.0, 300)
    one = Problem.power_law_continuum(1.5, 2.0, 300, groups=1000, exact=300)
    np.testing.assert_array_equal(one.eigenvalues, exact.eigenvalues)
    coarse = Problem.power_law_continuum(1.5, 2.0, 300, groups=60, exact=20)
    a = loss_curve(exact, 0.3, 0.2, 2, 2000).loss
    b = loss_curve(coarse, 0.3, 0.2, 2, 2000).loss
    assert np.max(np.abs(b / a - 1)) < 1e-3


def test_bad_multiplicity_and_rejections():
    with pytest.raises(ValueError, match="multiplicity"):
        GROUPED.replace(multiplicity=[1, 2, 3])
    with pytest.raises(ValueError, match="multiplicity"):
        GROUPED.replace(multiplicity=[1, 0, 3, 1])
    with pytest.raises(ValueError, match="multiplicity must be integral"):
        GROUPED.replace(multiplicity=[1, 2.5, 3, 1]).expanded()
    plain = GROUPED.replace(data_size=None)
    with pytest.raises(ValueError, match="multiplicity"):
        simulate_run(plain, 0.1, 0.0, 2, 10, 4, 0)
    with pytest.raises(ValueError, match="multiplicity"):
        simulate_adaptive(plain, 0.1, 10, 4, 0)
    with pytest.raises(ValueError, match="multiplicity"):
        norm_test_prediction(plain, 0.1, 10)
