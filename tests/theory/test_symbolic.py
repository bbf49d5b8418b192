"""Symbolic derivation against independent numeric constructions, at random points."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from sgdyn.theory.methods import METHODS, alpha, beta, lam
from sgdyn.theory.symbolic import b, derive, tau1, tau2, z
from sgdyn.theory.system import extra_arguments

params = st.tuples(st.floats(0.01, 1.5), st.floats(-0.9, 0.9), st.floats(0.05, 3.0),
                   st.floats(0.0, 1.0), st.floats(0.0, 2.0), st.floats(-1.0, 1.0))


def _subs(method, a, bt, lm):
    m = METHODS[method]
    return {alpha: a, beta: bt, lam: lm, **{p.symbol: p.default for p in m.extra}}


def _numeric_M(method, a, bt, lm):
    M = METHODS[method].transition.subs(_subs(method, a, bt, lm))
    return np.array(M, dtype=float)


def _beta(method, bt):
    return bt if METHODS[method].has_momentum else 0.0


def _vech(P):
    i, j = np.triu_indices(P.shape[0])
    return P[i, j]


@pytest.mark.parametrize("method", sorted(METHODS))
@settings(max_examples=25, deadline=None)
@given(p=params, seed=st.integers(0, 2 ** 31))
def test_second_moment_map_is_the_congruence_plus_noise(method, p, seed):
    a, bt, lm, g, t1, t2 = p
    bt = _beta(method, bt)
    rng = np.random.default_rng(seed)
    m = METHODS[method]
    nf = derive(method).numeric
    M = _numeric_M(method, a, bt, lm)
    d = M.shape[0]
    B = rng.normal(size=(d, d))
    P = B @ B.T
    K = np.array(m.noise_input.subs(_subs(method, a, bt, lm)), dtype=float)
    G = np.array(m.G.subs(_subs(method, a, bt, lm)), dtype=float)
    # P' = M P M^T + K K^T s with the tau2 self-term s = -g tau2 lam^2 (G P G^T)
    expected = M @ P @ M.T - g * t2 * lm ** 2 * (G @ P @ G.T).item() * (K @ K.T)
    A = nf.A(a, bt, np.array(lm), g, t1, t2, *extra_arguments(m))
    np.testing.assert_allclose(A @ _vech(P), _vech(expected), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", sorted(METHODS))
@settings(max_examples=25, deadline=None)
@given(p=params, zr=st.floats(-0.9, 0.9), zi=st.floats(-0.9, 0.9))
def test_transfer_functions_equal_a_linear_solve(method, p, zr, zi):
    a, bt, lm, g, t1, t2 = p
    bt = _beta(method, bt)
    zz = complex(zr, zi) * 0.5
    nf = derive(method).numeric
    args = (a, bt, np.array(lm), g, t1, t2) + extra_arguments(METHODS[method])
    A = nf.A(*args)
    R = np.linalg.inv(np.eye(A.shape[0]) - zz * A)
    gr, kk, x0, e = nf.g_row(*args), nf.kk(*args), nf.x0(*args), nf.e_row()
    cases = [(nf.u, zz * g * t1 * lm ** 2 * gr @ R @ kk), (nf.v, lm * gr @ R @ x0),
             (nf.w, zz / (1 - zz) * g * lm ** 2 * gr @ R @ kk), (nf.v_loss, 0.5 * lm * e @ R @ x0),
             (nf.u_loss, 0.5 * zz * g * t1 * lm ** 2 * e @ R @ kk)]
    for fn, want in cases:
        got = complex(fn(np.array(zz), *args))
        assert abs(got - want) <= 1e-9 * (1 + abs(want))


def test_noise_feedback_at_one_has_the_closed_form():
    """U(1) per mode, heavy ball: (alpha tau1/b) lam (1+beta)/((1-beta)(2+2beta-alpha lam)) at
    tau2 = 0, and the Sherman-Morrison fold G -> G/(1 + tau2 alpha^2 lam^2 G / b) otherwise."""
    u1 = derive("heavy-ball").u.subs(z, 1)
    G = (1 + beta) / ((1 - beta) * alpha * lam * (2 + 2 * beta - alpha * lam))
    closed0 = alpha ** 2 * tau1 * lam ** 2 / b * G
    assert sp.simplify(u1.subs(tau2, 0) - closed0) == 0
    folded = alpha ** 2 * tau1 * lam ** 2 / b * G / (1 + tau2 * alpha ** 2 * lam ** 2 * G / b)
    assert sp.simplify(u1 - folded) == 0


def test_loss_generating_function_is_the_papers_form_for_heavy_ball():
    d = derive("heavy-ball")
    assert d.gradient_at_iterate
    assert sp.simplify(d.v_loss - d.v / 2) == 0 and sp.simplify(d.u_loss - d.u / 2) == 0
    assert not derive("nesterov").gradient_at_iterate


@pytest.mark.parametrize("method", sorted(METHODS))
def test_characteristic_polynomial_roots_are_the_eigenvalues(method, rng):
    nf = derive(method).numeric
    for _ in range(20):
        a, bt, lm = rng.uniform(0.01, 1.5), _beta(method, rng.uniform(-0.9, 0.9)), \
            rng.uniform(0.05, 3)
        coeffs = nf.char_coeffs(a, bt, np.array(lm), 0.5, 1.0, -1.0,
                                *extra_arguments(METHODS[method]))
        roots = np.sort_complex(np.roots(coeffs))
        eig = np.sort_complex(np.linalg.eigvals(_numeric_M(method, a, bt, lm)).astype(complex))
        np.testing.assert_allclose(roots, eig, atol=1e-8)


def test_method_descriptions_match_the_literal_iterations(rng):
    """M applied to (e_t, e_{t-1}) equals the PyTorch-form iteration on (w, v), noise-free."""
    a, bt, lm = 0.3, 0.7, 1.7
    w, v = 1.3, 0.0
    x_hb = np.array([w, w])
    x_nv = np.array([w, w])
    w_nv, v_nv = w, 0.0
    M_hb, M_nv = _numeric_M("heavy-ball", a, bt, lm), _numeric_M("nesterov", a, bt, lm)
    for _ in range(10):
        v = bt * v - a * lm * w
        w = w + v
        v_nv = bt * v_nv - a * lm * (w_nv + bt * v_nv)
        w_nv = w_nv + v_nv
        x_hb, x_nv = M_hb @ x_hb, M_nv @ x_nv
        assert x_hb[0] == pytest.approx(w, rel=1e-12)
        assert x_nv[0] == pytest.approx(w_nv, rel=1e-12)


def test_latex_summary():
    text = derive("nesterov").summary(latex=True)
    assert "\\frac" in text and "L(z)" in text
    assert "U(z)" in derive("heavy-ball").summary()
