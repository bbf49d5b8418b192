"""theory.asymptotics against exact loss curves (numba recursion) of power-law problems with up to
1e8 modes (Problem.power_law_continuum). Bounds from the issue: log-log slopes within 2 %,
constants within 5 %; V_t and U_t alone converge like 1/t (small-lambda corrections), so they get
1e-3 at t >= 1e4. Fast tests run to T = 1e5, the slow ones (-m slow) to T = 1e6."""
import numpy as np
import pytest
import sympy as sp

from sgdyn.theory.asymptotics import fit_power_law, phases, small_lambda_limits
from sgdyn.theory.dynamics import loss_curve, renewal_sequences
from sgdyn.theory.methods import alpha, beta
from sgdyn.theory.problem import Problem
from sgdyn.theory.symbolic import derive, gamma, mu, tau1
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import singularities

# (nu, kappa, n, alpha, beta, batch): noise phase (t_x ~ 2), signal phase, noise phase whose
# trajectory switches from the signal to the noise asymptote at t_x ~ 7700 (batch 2) or 3e4.
# The signal case needs n = 1e10: its finite-n deficit, the missing tail sum_{k>n} k^-(kappa+1),
# is (t / cutoff_time)^zeta / Gamma(1 + zeta) of V_t, 1.0e-3 at t = 9e5 for n = 1e6 (zeta = 1/2).
NOISE = (2.0, 4.0, 10 ** 6, 0.3, 0.3, 1)
SIGNAL = (2.0, 1.0, 10 ** 10, 0.3, 0.3, 1)
SWITCH = (1.5, 2.5, 10 ** 8, 0.2, -0.3, 2)


def setup(case, groups=600):
    nu, kappa, n, a, bt, bs = case
    p = Problem.power_law_continuum(nu, kappa, n, groups)
    return p, (a, bt, bs), phases(p, a, bt, bs)


def local_slope(L, t):
    """d log L / d log t from points t / 1.1 and 1.1 t (exact curves: no noise to smooth)."""
    lo, hi = int(t / 1.1), int(1.1 * t)
    return np.log(L[hi] / L[lo]) / np.log(hi / lo)


def test_small_lambda_limits_closed_form():
    """The limits derived from the transfer functions equal the closed forms of docs/phases.md:
    rate 2 alpha_eff, amplitudes 1 (signal) and tau1 gamma alpha_eff^2 (noise)."""
    for method, b in (("heavy-ball", beta), ("sgd", 0)):
        s = small_lambda_limits(method)
        a_eff = alpha / (1 - b)
        assert sp.simplify(s.rate - 2 * a_eff) == 0
        assert sp.simplify(s.signal_amplitude - 1) == 0
        assert sp.simplify(s.noise_amplitude - tau1 * gamma * a_eff ** 2) == 0


def test_decay_rate_from_characteristic_polynomial():
    """Independent route for r: the slow root of det(mu I - M) is 1 - alpha_eff lambda + O(lambda^2),
    so the second moment decays like its square, exp(-2 alpha_eff lambda t)."""
    lam, eps = sp.symbols("lambda epsilon")
    from sgdyn.theory.methods import lam as lam_sym
    cp = derive("heavy-ball").char_poly.subs(lam_sym, eps)
    root = 1 + sp.Symbol("c") * eps
    c = sp.solve(sp.series(cp.subs(mu, root), eps, 0, 2).removeO().coeff(eps), sp.Symbol("c"))[0]
    assert sp.simplify(-2 * c - small_lambda_limits().rate) == 0


def test_per_mode_amplitudes_numerically():
    """v_t / (lambda exp(-r lambda t)) -> A_V and u_t / (lambda^2 exp(-r lambda t)) -> A_U for
    one small mode (coefficients by the recursion, not the symbolic limit)."""
    lam_, a, bt, b = 1e-4, 0.3, -0.4, 2
    p = Problem.from_arrays([lam_], [1.0])
    V, U = renewal_sequences(ModeSystem.build(p, a, bt, b), 20000)
    r = 2 * a / (1 - bt)
    t = np.array([5000, 20000])
    np.testing.assert_allclose(V[t] / (lam_ * np.exp(-r * lam_ * t)), 1.0, rtol=5e-4)
    np.testing.assert_allclose(U[t] / (lam_ ** 2 * np.exp(-r * lam_ * t)),
                               (a / (1 - bt)) ** 2 / b, rtol=5e-4)


def test_fit_power_law_exact_and_rejects_others():
    for p in (Problem.power_law(1.5, 2.0, 50, scale=3.0),
              Problem.power_law_continuum(1.5, 2.0, 10 ** 7, 300, scale=3.0)):
        f = fit_power_law(p)
        assert f.nu == pytest.approx(1.5, rel=1e-12) and f.kappa == pytest.approx(2.0, rel=1e-12)
        assert f.scale == pytest.approx(3.0, rel=1e-11) and f.deviation < 1e-11
    bent = Problem.from_arrays(1.0 / np.arange(1, 40) ** 1.5 + 1e-3, np.ones(39))
    with pytest.raises(ValueError, match="not a power law"):
        phases(bent, 0.1, 0.0, 1)


def test_totals_agree_with_generating_functions():
    p = Problem.power_law(1.5, 3.0, 2000)
    s = singularities(ModeSystem.build(p, 0.2, -0.3, 1))
    assert phases(p, 0.2, -0.3, 1).noise_feedback == pytest.approx(s.noise_feedback, rel=1e-12)


def check_renewal_constants(case, T):
    p, hyper, ph = setup(case)
    V, U = renewal_sequences(ModeSystem.build(p, *hyper), T)
    for t in (T // 10, int(T / 1.1)):
        assert V[t] / (ph.signal_constant * t ** -ph.signal_exponent) == pytest.approx(1, abs=1e-3)
        assert U[t] / (ph.noise_constant * t ** -ph.noise_exponent) == pytest.approx(1, abs=1e-3)
        assert local_slope(V, t) == pytest.approx(-ph.signal_exponent, rel=1e-3)
        assert local_slope(U, t) == pytest.approx(-ph.noise_exponent, rel=1e-3)


def check_two_term(L, ph, T):
    """Constants: L_T within 5 % of the two-term asymptote; slope: the exact local slope within
    2 % of the asymptote's (its two exponents weighted by the size of their terms)."""
    assert L[T] / ph.loss_asymptote(T) == pytest.approx(1, abs=0.05)
    T = int(T / 1.1)   # slopes from [T / 1.21, T]
    predicted = -(ph.signal_asymptote(T) * ph.signal_exponent +
                  ph.noise_asymptote(T) * ph.noise_exponent) / ph.loss_asymptote(T)
    assert local_slope(L, T) == pytest.approx(predicted, rel=0.02)


def check_loss(case, T, phase):
    """A case whose subdominant term is negligible at T: the slope is the dominant exponent's."""
    p, hyper, ph = setup(case)
    assert ph.phase == phase
    L = loss_curve(p, *hyper, T).loss
    right, wrong = ("signal", "noise") if phase == "signal" else ("noise", "signal")
    exps = {"signal": ph.signal_exponent, "noise": ph.noise_exponent}
    check_two_term(L, ph, T)
    T = int(T / 1.1)
    parts = {"signal": ph.signal_asymptote(T), "noise": ph.noise_asymptote(T)}
    assert local_slope(L, T) == pytest.approx(-exps[right], rel=0.02)
    # the other phase's prediction is rejected
    assert abs(local_slope(L, T) / -exps[wrong] - 1) > 0.2
    assert abs(parts[wrong] / L[T] - 1) > 0.2
    return L, ph


def check_switch(case, T, tolerance):
    """The exact local slope passes the mean of the two exponents (where the two asymptotes are
    equal) for the last time within ``tolerance`` (relative) of the predicted t_x. t_x moves like
    (ratio of the constants)^(1/(zeta - q)): here the cube, so 10 % in time is 3 % in the constants;
    dropping the factor 1 - U(1) (0.89) would move it by 0.89^-3 = 1.4."""
    p, hyper, ph = setup(case, groups=1000)
    L = loss_curve(p, *hyper, T).loss
    tx = ph.transition_time
    mid = -(ph.signal_exponent + ph.noise_exponent) / 2
    t = np.unique(np.round(np.geomspace(10, T / 1.2, 600)).astype(int))
    slopes = np.array([local_slope(L, s) for s in t])
    crossing = t[np.nonzero(slopes < mid)[0][-1]]
    assert crossing / tx == pytest.approx(1, abs=tolerance)
    assert local_slope(L, tx / 10) < mid < local_slope(L, min(10 * tx, T / 1.2))
    # the approach to the noise exponent is slow, (t / t_x)^-(zeta - q) = (t / t_x)^-1/3: at
    # T = 1e6 the signal term is still ~20 % of L_T, so the slope is the two-term asymptote's
    check_two_term(L, ph, T)
    return crossing, ph


def test_renewal_constants():
    check_renewal_constants(NOISE, 10 ** 5)


def test_noise_phase():
    check_loss(NOISE, 10 ** 5, "noise")


def test_signal_phase():
    check_loss(SIGNAL, 10 ** 5, "signal")


def test_switch_time():
    check_switch(SWITCH, 10 ** 5, 0.1)


def test_diverges_and_bad_input():
    p = Problem.power_law_continuum(1.5, 2.0, 10 ** 6, 200)
    ph = phases(p, 2.0, 0.0, 1)
    assert ph.phase == "diverges" and ph.transition_time is None and "diverges" in ph.reason
    with pytest.raises(ValueError, match="diverges"):
        ph.loss_asymptote(100.0)
    with pytest.raises(ValueError, match="method"):
        phases(p, 0.1, 0.3, 1, method="nesterov")
    with pytest.raises(ValueError, match="label_noise"):
        phases(p.replace(label_noise=0.1), 0.1, 0.3, 1)
    with pytest.raises(ValueError, match="nu must be > 1"):
        phases(Problem.power_law(0.8, 2.0, 100), 0.01, 0.0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("case", [NOISE, SIGNAL, SWITCH])
def test_renewal_constants_long(case):
    check_renewal_constants(case, 10 ** 6)


@pytest.mark.slow
def test_phases_long():
    check_loss(NOISE, 10 ** 6, "noise")
    check_loss(SIGNAL, 10 ** 6, "signal")
    # t_x ~ 7700: at T = 1e6 the signal term is still ~20 % of L_T (slope -1.39, not -4/3)
    p, hyper, ph = setup(SWITCH)
    check_two_term(loss_curve(p, *hyper, 10 ** 6).loss, ph, 10 ** 6)


@pytest.mark.slow
def test_switch_time_long():
    # a later switch (batch 3): t_x ~ 3e4, the constants closer to their limits
    check_switch(SWITCH[:5] + (3,), 10 ** 6, 0.05)
