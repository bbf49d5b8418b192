"""The Q4 closure's loss curve against independent routes: SE's recursion and the exact
finite-data route where the data's fourth moments are exactly SE's (machine precision), a
row-by-row numpy reference of the closure, its threshold and radius (``q4_critical_learning_rate``,
``q4_radius``) and the curve's own growth rate on bundled data sets."""
import itertools

import numpy as np
import pytest
from bundled_data import bundled

from sgdyn.theory import exact_data as ed
from sgdyn.theory.data_problem import DataRows
from sgdyn.theory.dynamics import solve
from sgdyn.theory.noise import RADEMACHER, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.q4_closure import q4_loss_curve
from sgdyn.theory.run import Run
from sgdyn.theory.sampling import Sampling
from sgdyn.theory.stability import critical_learning_rate

METHODS = [("heavy-ball", 0.5), ("nesterov", 0.7), ("sgd", 0.0), ("heavy-ball", -0.3)]


def factorial_problem(d=4, sigma=0.5):
    """Every sign pattern once: z_i = sqrt(lambda) s_i, s_i in {-1, 1}^d (n = 2^d rows). Then
    H = diag(lambda) and Q_kl = mean s_k^2 s_l^2 lambda_k lambda_l = lambda_k lambda_l exactly:
    SE with (tau1, tau2) = (1, 1). The residual r_i = sigma s_i1 s_i2 s_i3 is orthogonal to the
    rows, mean r z_k^2 z_l = 0 and mean r^2 z_k^2 = sigma^2 lambda_k (SE's label-noise source); and
    mean s_a s_b s_k^2 = 0 for a != b, so off-diagonal second moments never feed the diagonal:
    the exact route, the Q4 closure and SE (1, 1) are the same recursion on the loss."""
    S = np.array(list(itertools.product([-1.0, 1.0], repeat=d)))
    lam = 0.55 ** np.arange(d)
    data = DataRows(S * np.sqrt(lam), sigma * S[:, 0] * S[:, 1] * S[:, 2],
                    np.linspace(1.0, -0.6, d))
    return Problem(data.eigenvalues.copy(), data.initial_error ** 2, data.label_noise, data=data)


@pytest.mark.parametrize("sampling", ["iid", "without-replacement"])
@pytest.mark.parametrize("method,beta", METHODS)
def test_equals_se_and_the_exact_route_where_the_data_is_exactly_se(method, beta, sampling):
    p = factorial_problem()
    se_p = p.replace(data_size=p.data.n if sampling == "without-replacement" else None)
    for alpha, batch in ((0.3, 3), (0.6, 1)):
        q4 = q4_loss_curve(p, alpha, beta, batch, 300, method, sampling=sampling)
        exact = ed.exact_loss_curve(p, alpha, beta, batch, 300, method, sampling=sampling)
        se = solve(Run.build(se_p, method, alpha=alpha, beta=beta, batch=batch, steps=300,
                             noise=RADEMACHER), "recursion")
        np.testing.assert_allclose(q4.loss, se.loss, rtol=1e-13)
        np.testing.assert_allclose(q4.loss, exact.loss, rtol=1e-13)
        assert q4.diverges == se.diverges == exact.diverges
        if not q4.diverges:
            assert q4.rate == pytest.approx(se.rate, rel=1e-9)
        assert q4.q4_radius == pytest.approx(exact.noise_radius, rel=1e-9)


@pytest.mark.parametrize("noise", [NoiseModel(1.0, -1.0), NoiseModel(0.8, 0.5)])
def test_se_fourth_moments_reproduce_se(noise):
    """Q = tau1 lambda lambda^T + (1 - tau2) diag(lambda^2) in place of the data's Q is SE with
    (tau1, tau2) (the label-noise terms of the factorial rows are SE's already)."""
    p = factorial_problem()
    lam = p.eigenvalues
    Q = noise.tau1 * np.outer(lam, lam) + (1 - noise.tau2) * np.diag(lam ** 2)
    for method, beta in METHODS[:2]:
        got = q4_loss_curve(p, 0.4, beta, 2, 400, method, fourth_moments=Q).loss
        want = solve(Run.build(p, method, alpha=0.4, beta=beta, batch=2, steps=400, noise=noise)).loss
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_schedules_through_solve():
    """Warm-up + cosine learning rate, a momentum ramp and a batch ramp: the route ``q4`` of
    ``solve`` against SE (1, 1) and the exact route on the factorial rows."""
    p = factorial_problem()
    kw = dict(alpha="warmup(20) + cosine(0.6)", beta="linear(0.2, 0.8)",
              batch=np.repeat([1, 2, 4], 100), steps=300)
    q4 = solve(Run.build(p, "heavy-ball", **kw), "q4")
    assert q4.route == "q4" and "Q4 closure" in q4.approximation
    se = solve(Run.build(p, "heavy-ball", noise=RADEMACHER, **kw), "recursion")
    exact = solve(Run.build(p, "heavy-ball", **kw), "exact-data")
    np.testing.assert_allclose(q4.loss, se.loss, rtol=1e-13)
    np.testing.assert_allclose(q4.loss, exact.loss, rtol=1e-13)
    assert q4.loss[-1] < 0.2 * q4.loss[0]               # the loss really moved


def closure_by_rows(X, y, w0, alpha, beta, batch, steps, gamma):
    """Heavy ball's diagonal closure written from the rows (no Q, no R): the exact route's
    S_kk = gamma [mean_i D_i z_ik^2 - lambda_k^2 c_k], D_i = E (z_i . p - r_i)^2 at a diagonal
    second moment, state (e_k, e_k^-) per mode."""
    n = X.shape[0]
    lam, U = np.linalg.eigh(X.T @ X / n)
    Z = X @ U
    wstar = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ wstar
    e0 = U.T @ (w0 - wstar)
    N = lam.size
    F = np.array([[1 + beta, -beta], [1.0, 0.0]])
    K = np.array([-alpha, 0.0])
    G = np.array([1.0, 0.0])
    P = np.einsum("k,a,b->kab", e0 ** 2, [1.0, 1.0], [1.0, 1.0])
    m = np.outer(e0, [1.0, 1.0])
    loss = [0.5 * lam @ P[:, 0, 0] + 0.5 * np.mean(r ** 2)]
    for _ in range(steps):
        c, mu = P[:, 0, 0], m[:, 0]
        D = (Z ** 2) @ c - 2 * r * (Z @ mu) + r ** 2
        S = gamma * (np.mean(D[:, None] * Z ** 2, axis=0) - lam ** 2 * c)
        T = F[None] + lam[:, None, None] * np.outer(K, G)[None]
        P = T @ P @ T.transpose(0, 2, 1) + np.outer(K, K)[None] * S[:, None, None]
        m = np.einsum("kab,kb->ka", T, m)
        loss.append(0.5 * lam @ P[:, 0, 0] + 0.5 * np.mean(r ** 2))
    return np.array(loss), lam


def test_label_noise_cross_term_against_a_row_by_row_reference(rng):
    """Tiny data with label noise and a signed start (the mean term -2 r z^T mu matters): the
    kernel against the reference; and against the exact route, which keeps the off-diagonal
    coupling the closure drops (reported, not bounded: it is the closure's error)."""
    X = rng.normal(size=(6, 3)) * np.array([1.5, 1.0, 0.6])
    y = X @ rng.normal(size=3) + 0.7 * rng.normal(size=6)
    w0 = rng.normal(size=3)
    p = Problem.from_rows(X, y, w0=w0)
    for sampling, gamma in (("iid", 0.5), ("without-replacement", (6 - 2) / (5 * 2))):
        got = q4_loss_curve(p, 0.2, 0.4, 2, 200, sampling=sampling).loss
        want, lam = closure_by_rows(X, y, w0, 0.2, 0.4, 2, 200, gamma)
        np.testing.assert_allclose(lam[::-1], p.eigenvalues, rtol=1e-12)
        np.testing.assert_allclose(got, want, rtol=1e-11)
        exact = ed.exact_loss_curve(p, 0.2, 0.4, 2, 200, sampling=sampling).loss
        floor = 0.5 * p.label_noise
        dev = np.abs(got - exact)[1:] / (exact - floor)[1:]
        print(f"{sampling}: Q4 closure vs exact route on 6 rows, largest relative excess-loss "
              f"deviation {dev.max():.3g}")
        assert dev.max() > 1e-6        # the coupling is really there on generic rows


@pytest.mark.parametrize("name,beta,batch", [("wine", 0.0, 1), ("diabetes", 0.9, 4),
                                             ("breast_cancer", 0.0, 1)])
def test_decays_below_and_grows_above_its_threshold(name, beta, batch):
    """At 0.99 and 1.01 of ``q4_critical_learning_rate``: the radius ``q4_radius`` is below /
    above 1, the curve settles / grows, and above the threshold its growth ratio is the rate of
    the closure's map (an eigenvalue problem, not the curve)."""
    p = bundled(name)
    c = ed.q4_critical_learning_rate(p, beta, batch)
    T = 4000
    inc = {}
    for f in (0.99, 1.01):
        cur = q4_loss_curve(p, f * c.alpha_crit, beta, batch, T)
        R = ed.q4_radius(p, f * c.alpha_crit, beta, batch)
        assert cur.q4_radius == pytest.approx(R, rel=1e-12)
        assert cur.diverges == (f > 1) == (R > 1) == (cur.rate > 1)
        d = np.diff(cur.loss)
        inc[f] = (d[T // 2 - 1], d[-1], d[-1] / d[-2], cur.rate)
    assert abs(inc[0.99][1]) < abs(inc[0.99][0])            # settling
    assert inc[1.01][1] > inc[1.01][0] > 0                  # geometric growth
    assert inc[1.01][2] == pytest.approx(inc[1.01][3], rel=1e-5)


def test_refuses_what_it_cannot_do(rng):
    p = Problem.from_rows(rng.normal(size=(10, 2)), rng.normal(size=10))
    with pytest.raises(ValueError, match="fourth_moments must be a finite 2 x 2"):
        q4_loss_curve(p, 0.1, 0.0, 1, 5, fourth_moments=np.ones((3, 3)))
    with pytest.raises(ValueError, match="route 'q4' needs a data problem"):
        solve(Run.build(Problem.from_arrays([1.0], [1.0]), alpha=0.1, steps=3), "q4")
    with pytest.raises(ValueError, match="sampling 'epochs' has no second-moment theory"):
        solve(Run.build(p, alpha=0.1, steps=3, sampling=Sampling("epochs", data_size=10)), "q4")


def test_thresholds_match_se_where_the_data_is_exactly_se():
    """The threshold side of the correspondence: the Q4 threshold on the factorial rows is SE's
    with (1, 1) (and the exact one)."""
    p = factorial_problem()
    for method, beta in METHODS[:2]:
        q4 = ed.q4_critical_learning_rate(p, beta, 2, method).alpha_crit
        assert q4 == pytest.approx(critical_learning_rate(p, beta, 2, method, RADEMACHER).alpha_crit,
                                   rel=1e-9)
        assert q4 == pytest.approx(ed.exact_critical_learning_rate(p, beta, 2, method).alpha_crit,
                                   rel=1e-9)


def test_rate_by_arnoldi_equals_the_dense_eigensolve(monkeypatch):
    """Large states (N q^2 > 600) take ARPACK on the matrix-free map: the same radius."""
    from sgdyn.theory import q4_closure
    p = bundled("breast_cancer")
    a = 0.5 * ed.q4_critical_learning_rate(p, 0.6, 2).alpha_crit
    dense = q4_loss_curve(p, a, 0.6, 2, 1).rate
    monkeypatch.setattr(q4_closure, "DENSE_LIMIT", 0)
    assert q4_loss_curve(p, a, 0.6, 2, 1).rate == pytest.approx(dense, rel=1e-10)
    assert 0.9 < dense < 1.0
