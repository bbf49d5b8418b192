"""theory.edges: derived edges against closed forms typed here and against numeric roots."""
import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import optimize

from sgdyn.theory import edges
from sgdyn.theory.edges import (deterministic_edge, flattest_matrix_minimum, sam_edge, sam_edge_expr,
                          sam_edge_limits, sam_two_cycle, sam_two_cycle_expr, scalar_network_edge)
from sgdyn.theory.methods import beta
from sgdyn.theory.symbolic import derive

eta, rho, g, lam = edges.eta_s, edges.rho_s, edges.grad_s, edges.lam_s


@pytest.mark.parametrize("degree", [1, 2, 3, 4])
def test_schur_conditions_match_numeric_roots(degree, rng):
    z = sp.Symbol("z")
    cs = sp.symbols(f"c0:{degree}")
    poly = z ** degree + sum(c * z ** k for k, c in enumerate(cs))
    conds = sp.lambdify(cs, list(edges.schur_conditions(poly, z)))
    agree = 0
    for _ in range(400):
        # roots drawn around the unit circle so that both outcomes are common
        roots = rng.uniform(0.3, 1.4, degree) * np.exp(1j * rng.uniform(0, np.pi, degree))
        if degree % 2:
            roots[-1] = roots[-1].real
        pairs = [r for r in roots[:degree // 2]]
        full = np.concatenate([pairs, np.conj(pairs), roots[degree // 2 * 2:].real])[:degree]
        coeffs = np.real(np.poly(full))[::-1][:-1]     # c0 .. c_{n-1}
        stable = np.max(np.abs(np.roots(np.r_[1.0, coeffs[::-1]]))) < 1
        assert (min(conds(*coeffs)) > 0) == stable
        agree += stable
    assert 20 < agree < 380        # both outcomes were exercised


def _spectral_radius(name, x, b):
    coeffs = derive(name).numeric.char_coeffs(x, b, 1.0, 0.0, 1.0, 0.0)
    return np.max(np.abs(np.roots(coeffs)))


def _numeric_edge(name, b):
    """Bisection on the spectral radius of the per-mode map (numpy roots): an independent route."""
    lo, hi = 1e-9, 1.0
    while _spectral_radius(name, hi, b) < 1:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _spectral_radius(name, mid, b) < 1 else (lo, mid)
    return lo


def test_edges_equal_closed_forms():
    sgd = deterministic_edge("sgd").pieces
    assert len(sgd) == 1 and sgd[0].edge == 2 and sgd[0].crossing == "mu = -1"
    hb = deterministic_edge("heavy-ball").pieces
    assert len(hb) == 1 and (hb[0].beta_low, hb[0].beta_high) == (-1, 1)
    assert sp.simplify(hb[0].edge - 2 * (1 + beta)) == 0 and hb[0].crossing == "mu = -1"
    nes = deterministic_edge("nesterov").pieces
    assert [(p.beta_low, p.beta_high) for p in nes] == [(-1, sp.Rational(-1, 3)), (sp.Rational(-1, 3), 1)]
    # valid range of the textbook form: beta > -1/3; below it a complex pair leaves first
    assert sp.simplify(nes[1].edge - (2 + 2 * beta) / (1 + 2 * beta)) == 0 and nes[1].crossing == "mu = -1"
    assert sp.simplify(nes[0].edge - (1 - 1 / beta)) == 0 and nes[0].crossing.startswith("complex")


@pytest.mark.parametrize("name, betas", [("sgd", [0.0]), ("heavy-ball", [-0.9, -0.3, 0, 0.5, 0.95]),
                                         ("nesterov", [-0.9, -0.5, -0.34, -0.2, 0, 0.5, 0.95])])
def test_edges_match_numeric_roots(name, betas):
    e = deterministic_edge(name)
    for b in betas:
        # bisection resolves the edge to ~1e-15 relative except where the crossing is a double
        # root (Nesterov's complex pair meets the real axis only at isolated beta): 1e-9 is ample
        assert e.alpha_lambda(b) == pytest.approx(_numeric_edge(name, b), rel=1e-9)
    assert e.critical_lr(4.0, betas[-1]) == pytest.approx(e.alpha_lambda(betas[-1]) / 4.0, rel=1e-15)


def test_sam_edge_closed_form_and_limits():
    closed = (g / (2 * rho)) * (sp.sqrt(1 + 8 * rho / (eta * g)) - 1)
    assert sp.simplify(sam_edge_expr() - closed) == 0
    lim = sam_edge_limits()
    assert sp.simplify(lim.small_rho - 2 / eta) == 0 and sp.simplify(lim.large_grad - 2 / eta) == 0
    assert sp.simplify(lim.small_grad - sp.sqrt(2 * g / (eta * rho))) == 0
    # numeric form (rationalised) vs the closed form in 50-digit arithmetic, incl. huge ||g||
    mpmath.mp.dps = 50
    for e_, r_, g_ in [(0.1, 0.05, 2.25), (0.01, 1e-3, 1e8), (2.0, 5.0, 1e-9), (0.3, 0.2, 0.7)]:
        want = (mpmath.mpf(g_) / (2 * mpmath.mpf(r_))) * (mpmath.sqrt(1 + 8 * mpmath.mpf(r_) / (mpmath.mpf(e_) * g_)) - 1)
        assert sam_edge(e_, r_, g_) == pytest.approx(float(want), rel=1e-14)
        assert sam_edge(e_, r_, g_) < 2 / e_
    assert sam_edge(0.1, 0.05, 2.25) == pytest.approx(15.0, rel=1e-14)   # docs/edges.md
    out = sam_edge(0.1, [0.01, 0.05], [[1.0], [2.0]])
    assert out.shape == (2, 2)


def test_sam_two_cycle():
    assert sp.simplify(sam_two_cycle_expr() - eta * lam * rho / (2 - eta * lam)) == 0
    # edge identity SAM_edge(eta, rho, lambda a*) = lambda: lambda solves the edge's defining
    # equation at g = lambda a* (symbolically), and the edge is that equation's only positive root
    defining = eta * lam + eta * rho * lam ** 2 / g
    assert sp.simplify(defining.subs(g, lam * sam_two_cycle_expr()) - 2) == 0
    for e_, r_, l_ in [(0.1, 0.05, 15.0), (0.01, 0.3, 150.0), (1.0, 1e-3, 1.999)]:
        assert sam_two_cycle(e_, r_, l_).edge == pytest.approx(l_, rel=1e-13)
    c = sam_two_cycle(0.1, 0.05, 15.0)        # docs/edges.md: a* = 0.15, ||g|| = 2.25
    assert c.amplitude == pytest.approx(0.15, rel=1e-14)
    assert c.grad_norm == pytest.approx(2.25, rel=1e-14)
    assert c.edge == pytest.approx(15.0, rel=1e-14)


@pytest.mark.parametrize("L", [1, 2, 3, 4])
def test_scalar_network_edge_against_exact_hessian(L):
    a, p = 1.3, -1.7
    ws = sp.symbols(f"w0:{L}", real=True)
    loss = sp.Rational(1, 2) * a * (sp.prod(ws) - p) ** 2
    hess = sp.lambdify(ws, sp.hessian(loss, ws))
    top = lambda w: np.linalg.eigvalsh(np.array(hess(*w), dtype=float))[-1]   # noqa: E731
    res = scalar_network_edge(a, p, L)
    # the exact Hessian's top eigenvalue at the balanced minimiser ...
    balanced = [np.sign(p) * abs(p) ** (1 / L)] + [abs(p) ** (1 / L)] * (L - 1)
    assert top(balanced) == pytest.approx(res.sharpness, rel=1e-12)
    assert res.critical_lr == pytest.approx(2 / res.sharpness, rel=1e-15)
    if L > 1:
        # ... is the minimum over the minimiser manifold (free w_1..w_{L-1}, w_L = p / prod)
        def on_manifold(u):
            w = np.exp(u)
            return top(np.r_[w, p / np.prod(w)])
        best = min(optimize.minimize(on_manifold, x0, method="Nelder-Mead",
                                     options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000}).fun
                   for x0 in np.random.default_rng(L).normal(0, 0.5, (3, L - 1)))
        assert best == pytest.approx(res.sharpness, rel=1e-7)


def test_matrix_network_flattest_minimum():
    Phi = np.array([[2.0, 0.5], [0.3, 1.0]])
    fm = flattest_matrix_minimum(Phi, 3, 2, restarts=2, seed=1)
    # whitened data: the flattest minimum is the balanced one, sharpness L ||Phi||^{2 - 2/L}
    want = 3 * np.linalg.norm(Phi, 2) ** (4 / 3)
    assert fm.sharpness == pytest.approx(want, rel=1e-8)
    assert fm.balanced_sharpness == pytest.approx(want, rel=1e-12)
    assert np.allclose(np.linalg.multi_dot(fm.weights[::-1]), Phi, atol=1e-10)
    # width 1: the scalar network with a = 1
    one = flattest_matrix_minimum([[-1.7]], 4, 1, restarts=1)
    assert one.sharpness == pytest.approx(scalar_network_edge(1.0, -1.7, 4).sharpness, rel=1e-8)


def test_product_jacobian_by_finite_differences(rng):
    Ws = [rng.standard_normal((3, 2)), rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    J = edges.product_jacobian(Ws)
    prod = lambda ws: np.linalg.multi_dot(ws[::-1]).ravel(order="F")   # noqa: E731
    theta = np.concatenate([w.ravel(order="F") for w in Ws])
    shapes = [w.shape for w in Ws]

    def unflat(t):
        out, k = [], 0
        for s in shapes:
            out.append(t[k:k + s[0] * s[1]].reshape(s, order="F"))
            k += s[0] * s[1]
        return out
    h = 1e-6     # the product is polynomial of degree 3: central differences err by O(h^2)
    fd = np.array([(prod(unflat(theta + h * e)) - prod(unflat(theta - h * e))) / (2 * h)
                   for e in np.eye(theta.size)]).T
    np.testing.assert_allclose(J, fd, atol=1e-8)


@pytest.mark.parametrize("call, match", [
    (lambda: sam_edge(0.1, 0.0, 1.0), "rho"), (lambda: sam_edge(-0.1, 0.1, 1.0), "eta"),
    (lambda: sam_edge(0.1, 0.1, 0.0), "grad_norm"), (lambda: sam_edge(0.1, 0.1, np.nan), "grad_norm"),
    (lambda: sam_two_cycle(0.2, 0.1, 10.0), "eta \\* top_eigenvalue"),
    (lambda: sam_two_cycle(0.1, -1, 10.0), "rho"),
    (lambda: scalar_network_edge(0.0, 1.0, 2), "a"), (lambda: scalar_network_edge(1.0, 0.0, 2), "p"),
    (lambda: scalar_network_edge(1.0, 1.0, 0), "depth"),
    (lambda: deterministic_edge("adam"), "method"),
    (lambda: deterministic_edge("heavy-ball").alpha_lambda(1.0), "beta"),
    (lambda: deterministic_edge("sgd").critical_lr(-1.0), "sharpness"),
    (lambda: flattest_matrix_minimum([[1.0, 2.0]], 2, 0), "width"),
    (lambda: flattest_matrix_minimum(np.zeros((2, 2)), 2, 2), "target"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
