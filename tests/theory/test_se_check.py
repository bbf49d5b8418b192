"""check_se on scikit-learn's bundled data sets, the verdict rule, and the trust check."""
import numpy as np
import pytest
from bundled_data import bundled

from sgdyn.theory import exact_data as ed
from sgdyn.theory.noise import GAUSSIAN
from sgdyn.theory.problem import Problem
from sgdyn.theory.se_check import CURVE_MARGIN, THRESHOLD_MARGIN, check_se, verdict
from sgdyn.theory.stability import critical_learning_rate


@pytest.mark.parametrize("name,safe", [("digits", False), ("breast_cancer", False),
                                       ("wine", False), ("digits/16", True), ("diabetes", True)])
def test_check_se_flags_the_bundled_data_sets_at_batch_1(name, safe):
    p = bundled(name)
    c = check_se(p, 0.0, 1, steps=300)
    assert c.safe is safe and c.verdict.startswith("safe" if safe else "unsafe")
    # every column from its own route
    assert c.alpha_crit_exact == pytest.approx(ed.exact_critical_learning_rate(p, 0.0, 1).alpha_crit,
                                               rel=1e-12)
    assert c.alpha_crit_se == critical_learning_rate(p, 0.0, 1, noise=p.noise).alpha_crit
    assert c.alpha_crit_gaussian == critical_learning_rate(p, 0.0, 1, noise=GAUSSIAN).alpha_crit
    assert (c.tau1, c.tau2, c.tau_residual) == (p.noise.tau1, p.noise.tau2, p.tau_residual)
    # the trust check agrees with the threshold ratio: SE overshoots iff R > 1 at its alpha_crit
    assert (c.radius_at_se > 1) == (c.threshold_ratio > 1)
    assert len(c.deviation) == len(c.q4_deviation) == 2 and "exact finite data" in c.table
    assert "Q4 closure's curve at 0.5" in c.table


def test_check_se_digits_standardised_is_an_order_of_magnitude_off():
    c = check_se(bundled("digits"), 0.0, 1, steps=50)
    assert c.threshold_ratio > 10 and "x the exact one" in c.verdict
    assert c.tau_residual > 0.5                    # the fit residual says why
    assert c.alpha_crit_q4 < c.alpha_crit_se       # the data's Q recovers part of the gap
    assert c.alpha_crit_q4 > 2 * c.alpha_crit_exact   # not all: off-diagonal coupling


def test_check_se_without_replacement_uses_the_finite_population_factor():
    p = bundled("wine")
    c = check_se(p, 0.5, 16, sampling="without-replacement", steps=50)
    want = ed.exact_critical_learning_rate(p, 0.5, 16, sampling="without-replacement").alpha_crit
    assert c.sampling == "without-replacement" and c.alpha_crit_exact == pytest.approx(want, rel=1e-12)
    assert c.alpha_crit_exact > ed.exact_critical_learning_rate(p, 0.5, 16).alpha_crit


def test_verdict_rule():
    assert verdict(12.0, 0.01).startswith("unsafe: SE's alpha_crit is 12x the exact one")
    assert verdict(1 + THRESHOLD_MARGIN + 0.01, 0.0).startswith("unsafe: SE's alpha_crit is 6 % above")
    assert verdict(1.02, CURVE_MARGIN + 0.1).startswith("unsafe: SE's loss curve")
    assert verdict(1.02, float("inf")).startswith("unsafe: SE's loss curve")
    assert verdict(1.02, -0.1).startswith("safe: SE's alpha_crit is within 5 %")
    assert "conservative" in verdict(0.5, 0.0) and verdict(0.5, 0.0).startswith("safe")


def test_trust_check_at_se_alpha_crit():
    wine = bundled("wine")
    tc = ed.trust_check(wine, 0.0, 1)
    assert not tc.passes and tc.radius > 1.1 and "not to be trusted" in tc.message
    a_se = critical_learning_rate(wine, 0.0, 1, noise=wine.noise).alpha_crit
    assert tc.alpha_crit_se == a_se
    assert tc.radius == pytest.approx(ed.noise_radius(wine, a_se, 0.0, 1), rel=1e-12)
    exact = ed.exact_critical_learning_rate(wine, 0.0, 1).alpha_crit
    # one Newton step in log alpha: error second order in log(1.22) = 0.2, under 1 %
    assert tc.overshoot == pytest.approx(a_se / exact, rel=1e-2)
    diabetes = bundled("diabetes")
    tc = ed.trust_check(diabetes, 0.0, 1)
    assert tc.passes and 1 < tc.radius and "passed" in tc.summary
    exact = ed.exact_critical_learning_rate(diabetes, 0.0, 1).alpha_crit
    assert tc.overshoot == pytest.approx(tc.alpha_crit_se / exact, rel=1e-3)


@pytest.mark.parametrize("kw,match", [
    (dict(fractions=(0.3,)), "include 0.5"), (dict(fractions=(0.5, 1.2)), "lie in"),
    (dict(steps=0), "steps must be an integer >= 1"), (dict(noise="x"), "noise must be"),
    (dict(sampling="epochs"), "sampling must be one of"),
])
def test_check_se_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        check_se(bundled("wine"), 0.0, 1, **kw)
    with pytest.raises(ValueError, match="no data rows"):
        check_se(Problem(np.array([1.0]), np.array([1.0])), 0.0, 1)
