import functools

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.methods import alpha, beta, get_method, lam
from sgdyn.theory.noise import GAUSSIAN, RADEMACHER, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import (asymptotic_rate, converges, critical_batch, critical_learning_rate,
                              critical_learning_rate_curve, mode_stability_conditions, mode_stable, noise_feedback,
                              noise_feedback_per_mode, optimal_rate, schur_cohn_conditions)
from sgdyn.theory.symbolic import b as b_sym, derive, tau1, tau2
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import GeneratingFunctions

SMALL = Problem.power_law(nu=1.5, kappa=1.0, n=12)
FLATISH = Problem.from_arrays(np.linspace(0.2, 1.0, 8), np.ones(8))


# -- symbolic stability conditions vs numeric roots -------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=2, max_size=6))
def test_schur_cohn_matches_numeric_roots(coeffs):
    assume(abs(coeffs[0]) > 1e-3)
    radius = np.abs(np.roots(coeffs)).max()
    assume(abs(radius - 1.0) > 1e-6)
    conds = [float(c) for c in schur_cohn_conditions(coeffs)]
    assert all(c > 0 for c in conds) == (radius < 1.0)


def test_heavy_ball_conditions_are_the_textbook_ones():
    c1, c2 = mode_stability_conditions("heavy-ball")
    assert sp.simplify(c1 - (1 - beta ** 2)) == 0
    assert sp.simplify(c2 - alpha * lam * (2 + 2 * beta - alpha * lam)) == 0
    (s,) = mode_stability_conditions("sgd")
    assert sp.simplify(s - alpha * lam * (2 - alpha * lam)) == 0


@functools.lru_cache(maxsize=None)
def _transition(method):
    return sp.lambdify((alpha, beta, lam), derive(method).transition, modules="numpy")


@pytest.mark.parametrize("method", ["heavy-ball", "nesterov", "sgd"])
@settings(max_examples=200, deadline=None)
@given(a=st.floats(1e-3, 6.0), bt=st.floats(-0.999, 0.999), lm=st.floats(1e-2, 3.0))
def test_mode_conditions_match_spectral_radii(method, a, bt, lm):
    if method == "sgd":
        bt = 0.0
    M = np.array(_transition(method)(a, bt, lm), dtype=float)
    radius = np.abs(np.linalg.eigvals(M)).max()
    assume(abs(radius - 1.0) > 1e-7)
    stable = bool(mode_stable(a, bt, lm, method))
    assert stable == (radius < 1.0)
    # the noiseless second-moment map has spectral radius radius^2 (eigenvalues r_i r_j). Compared
    # where M's eigenvalues are apart: near a double root (a Jordan block, e.g. a = lm = 1.1,
    # bt = 0.01) A0 has a near-triple eigenvalue that eigvals resolves only to ~eps / sep^2
    # (measured: 3e-10 relative at sep = 1e-2, 2.5e-8 at 1e-3, ~6e-5 at 1e-6).
    ev = np.linalg.eigvals(M)
    sep = abs(ev[0] - ev[-1]) if ev.size > 1 else radius
    if sep >= 1e-2 * radius:
        A0 = derive(method).numeric.A(a, bt, np.array([lm]), 0.0, 1.0, 0.0)[0]
        assert np.abs(np.linalg.eigvals(A0)).max() == pytest.approx(radius ** 2, rel=1e-9, abs=1e-12)


# -- U(1): closed form, symbolic, numeric ----------------------------------------------------------
def test_heavy_ball_noise_feedback_closed_form_with_sherman_morrison():
    """docs/theory.md, "Heavy ball, explicitly": G = (1 + beta)/((1 - beta) x (2 + 2 beta - x)),
    u(1) = tau1 y / (1 + tau2 y),
    y = alpha^2 lambda^2 G / b (the tau2 self-term folded in by Sherman-Morrison)."""
    x = alpha * lam
    G = (1 + beta) / ((1 - beta) * x * (2 + 2 * beta - x))
    y = alpha ** 2 * lam ** 2 * G / b_sym
    assert sp.simplify(noise_feedback_per_mode("heavy-ball") - tau1 * y / (1 + tau2 * y)) == 0


@pytest.mark.parametrize("noise", [GAUSSIAN, RADEMACHER, NoiseModel(1.0, 0.0), NoiseModel(2.0, -3.0)])
@pytest.mark.parametrize("bt", [-0.6, 0.0, 0.7])
def test_noise_feedback_three_routes(noise, bt):
    p = SMALL
    a, batch = 0.2 * (1 - bt), 3
    x = a * p.eigenvalues
    G = (1 + bt) / ((1 - bt) * x * (2 + 2 * bt - x))
    y = x ** 2 * G / batch
    closed = float(np.sum(noise.tau1 * y / (1 + noise.tau2 * y)))
    numeric = noise_feedback(p, a, bt, batch, noise=noise)
    gf = float(GeneratingFunctions(ModeSystem.build(p, a, bt, batch, noise=noise)).U(np.array(1.0)))
    assert numeric == pytest.approx(closed, rel=1e-12)
    assert gf == pytest.approx(closed, rel=1e-12)


# -- critical learning rate: the loss recursion decides ---------------------------------------------
CASES = [
    (SMALL, 1, -0.5, "heavy-ball", GAUSSIAN),
    (SMALL, 1, 0.0, "heavy-ball", GAUSSIAN),
    (SMALL, 4, 0.6, "heavy-ball", GAUSSIAN),
    (SMALL.replace(data_size=20), 5, -0.3, "heavy-ball", RADEMACHER),
    (FLATISH, 2, 0.3, "nesterov", GAUSSIAN),
    (FLATISH, 1, -0.4, "nesterov", NoiseModel(1.0, 0.5)),
    (FLATISH, 3, 0.0, "sgd", NoiseModel(2.0, -1.0)),
]


@pytest.mark.parametrize("problem, batch, bt, method, noise", CASES)
def test_alpha_crit_separates_decay_from_growth(problem, batch, bt, method, noise):
    crit = critical_learning_rate(problem, bt, batch, method, noise)
    assert crit.alpha_crit > 0 and crit.limited_by in ("noise", "mode stability", "single-mode noise")
    for factor, grows in [(0.999, False), (1.001, True)]:
        a = factor * crit.alpha_crit
        rate = asymptotic_rate(problem, a, bt, batch, method, noise).rate
        assert (rate > 1.0) == grows
        T = int(np.clip(40.0 / abs(np.log(rate)), 2000, 400000))
        L = loss_curve(problem, a, bt, batch, T, method=method, noise=noise).loss
        assert L.size == T + 1
        assert (L[-1] > L[T // 2]) == grows
        # the late log-slope of the exact loss is the predicted rate (transients have died)
        slope = np.log(L[-1] / L[-1 - T // 4]) / (T // 4)
        assert slope == pytest.approx(np.log(rate), rel=0.02)


def test_alpha_crit_against_mpmath_closed_form():
    """Independent route: U(1) = 1 from the heavy-ball closed form at 40 digits."""
    p, batch, bt, noise = SMALL, 2, -0.3, GAUSSIAN
    crit = critical_learning_rate(p, bt, batch, noise=noise)
    mpmath.mp.dps = 40
    lams = [mpmath.mpf(float(v)) for v in p.eigenvalues]
    B = mpmath.mpf(bt)

    def U1(a):
        tot = mpmath.mpf(0)
        for lm in lams:
            x = a * lm
            y = x ** 2 * (1 + B) / ((1 - B) * x * (2 + 2 * B - x)) / batch
            tot += noise.tau1 * y / (1 + noise.tau2 * y)
        return tot - 1
    ref = mpmath.findroot(U1, crit.alpha_crit)
    assert abs(crit.alpha_crit - float(ref)) <= 1e-12 * float(ref)


def test_edge_cases_one_mode_beta_near_one_and_mode_limit():
    one = Problem.from_arrays([2.0], [1.0])
    c = critical_learning_rate(one, 0.2, 1)
    # one mode: its own noise resonance sets alpha_crit, below the noiseless edge
    assert c.limited_by == "single-mode noise" and c.mode_share == pytest.approx(1.0)
    assert c.alpha_crit < c.mode_edge and "resonance" in c.reason
    # one mode, Gaussian: u = y / (1 - y) = 1 at y = 1/2 (x = 2 (1 + beta) / (1 + 2 (1+b)/(1-b)))
    x = 2.4 / (1 + 2 * 1.2 / 0.8)
    assert c.alpha_crit == pytest.approx(x / 2.0, rel=1e-12)
    near_one = critical_learning_rate(SMALL, 0.9999, 1)
    assert 0 < near_one.alpha_crit < 1e-3 and np.isfinite(near_one.alpha_eff_crit)
    near_minus_one = critical_learning_rate(SMALL, -0.9999, 1)
    assert 0 < near_minus_one.alpha_crit <= near_minus_one.mode_edge
    # closer to +-1 than 5e-5 float64 cannot decide the threshold: refused, not guessed
    with pytest.raises(ValueError, match="within 5e-05 of"):
        critical_learning_rate(SMALL, 0.999999, 1)
    # full batch without replacement (gamma = 0): the noiseless edge 2 (1 + beta) / lambda_max
    full = SMALL.replace(data_size=7)
    c = critical_learning_rate(full, 0.5, 7)
    assert c.limited_by == "mode stability"
    assert c.alpha_crit == pytest.approx(3.0 / SMALL.eigenvalues.max(), rel=1e-13)


# -- critical batch ---------------------------------------------------------------------------
@pytest.mark.parametrize("problem, a, bt", [(SMALL, 0.9, 0.0), (SMALL, 1.2, 0.5),
                                            (SMALL.replace(data_size=40), 1.5, -0.2)])
def test_critical_batch_is_the_convergence_boundary(problem, a, bt):
    cb = critical_batch(problem, a, bt)
    assert cb.batch_crit is not None and cb.batch_crit > 1
    assert converges(problem, a, bt, cb.batch_crit)
    assert not converges(problem, a, bt, cb.batch_crit - 1)
    assert asymptotic_rate(problem, a, bt, cb.batch_crit).rate < 1
    assert asymptotic_rate(problem, a, bt, cb.batch_crit - 1).rate > 1
    assert cb.batch_crit - 1 <= cb.batch_crit_real < cb.batch_crit


def test_critical_batch_diverges_for_every_batch_beyond_the_mode_edge():
    cb = critical_batch(SMALL, 3.1 / SMALL.eigenvalues.max(), 0.5)
    assert cb.diverges_for_every_batch and "every batch" in cb.reason


@settings(max_examples=60, deadline=None)
@given(a=st.floats(0.01, 3.0), bt=st.floats(-0.95, 0.95), batch=st.integers(1, 30),
       t2=st.sampled_from([-1.0, 0.0, 0.5, 1.0]))
@example(a=2.0, bt=2.2e-311, batch=1, t2=-1.0)   # a subnormal momentum at a mode's edge: U(1) = inf
def test_convergence_test_agrees_with_the_rate(a, bt, batch, t2):
    noise = NoiseModel(1.0, t2)
    rate = asymptotic_rate(SMALL, a, bt, batch, noise=noise).rate
    assume(abs(rate - 1.0) > 1e-9)
    assert converges(SMALL, a, bt, batch, noise=noise) == (rate < 1.0)


# -- rate-optimal hyperparameters ----------------------------------------------------------------
def test_optimal_rate_full_batch_is_polyak():
    """gamma = 0 (b = N without replacement): Polyak's heavy ball, beta* = ((sqrt k - 1)/(sqrt k
    + 1))^2, alpha* = 4 / (sqrt L + sqrt m)^2, loss rate beta*."""
    L, m = 4.0, 0.25
    p = Problem.from_arrays([L, 1.0, m], [1.0, 1.0, 1.0], data_size=5)
    opt = optimal_rate(p, 5)
    k = L / m
    b_star = ((np.sqrt(k) - 1) / (np.sqrt(k) + 1)) ** 2
    assert opt.beta == pytest.approx(b_star, abs=1e-5)
    assert opt.alpha == pytest.approx(4 / (np.sqrt(L) + np.sqrt(m)) ** 2, rel=1e-4)
    assert opt.rate == pytest.approx(b_star, rel=1e-5)


@pytest.mark.parametrize("noise, batch", [(GAUSSIAN, 1), (RADEMACHER, 3)])
def test_optimal_rate_beats_a_dense_grid(noise, batch):
    p = SMALL
    opt = optimal_rate(p, batch, noise=noise)
    assert opt.rate < 1 and opt.alpha < opt.alpha_crit
    best = 1.0
    for bt in np.linspace(-0.9, 0.95, 38):
        ac = critical_learning_rate(p, bt, batch, noise=noise).alpha_crit
        for a in ac * np.linspace(0.02, 0.99, 50):
            best = min(best, asymptotic_rate(p, a, bt, batch, noise=noise).rate)
    assert opt.rate <= best * (1 + 1e-12)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="beta"):
        critical_learning_rate(SMALL, 1.0, 1)
    with pytest.raises(ValueError, match="batch"):
        critical_learning_rate(SMALL, 0.0, 0)
    with pytest.raises(ValueError, match="alpha"):
        critical_batch(SMALL, -1.0, 0.0)
    with pytest.raises(ValueError, match="problem"):
        optimal_rate("powerlaw", 1)
    with pytest.raises(ValueError, match="beta must be 0"):
        critical_learning_rate(SMALL, 0.5, 1, method=get_method("sgd"))


def test_critical_curve_over_batch_sizes_is_the_one_point_function():
    p = Problem.power_law(1.5, 3, 50)
    batches = [1, 7, 64]
    crit, edge = critical_learning_rate_curve(p, 0.3, batches)
    crit2, _ = critical_learning_rate_curve(p, [0.3, -0.2, 0.5], batches)
    for i, b in enumerate(batches):
        one = critical_learning_rate(p, 0.3, b)
        # one bisection for all points stops when every point is within 1e-15 (relative)
        assert crit[i] == pytest.approx(one.alpha_crit, rel=4e-15, abs=0) and edge[i] == one.mode_edge
        beta = (0.3, -0.2, 0.5)[i]
        assert crit2[i] == pytest.approx(critical_learning_rate(p, beta, b).alpha_crit, rel=4e-15, abs=0)
    with pytest.raises(ValueError, match="batch must be an integer >= 1"):
        critical_learning_rate_curve(p, 0.3, [4, 0])
