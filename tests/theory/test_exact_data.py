"""The exact finite-data route against independent routes: brute-force enumeration of every batch
sequence (machine precision), the full second-moment map's spectral radius, SE's closed forms,
Monte Carlo on real rows, and SE's Gaussian theory as the number of Gaussian rows grows."""
import itertools

import numpy as np
import pytest
from bundled_data import bundled
import sympy as sp

from sgdyn import simulate
from sgdyn.simulate.features import DataSet
from sgdyn.theory import exact_data as ed
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.methods import Method, Parameter, alpha, beta
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import critical_learning_rate

C_PARAM = Parameter("c", 0.0)
c_sym = C_PARAM.symbol
# a 3-state method with an extra parameter c: the engine has no such method; any (F, K, G, x0) runs
THREE_STEP = Method.from_matrices(
    "three-step", sp.Matrix([[1 + beta, -beta + c_sym, -c_sym], [1, 0, 0], [0, 1, 0]]),
    sp.Matrix([-alpha, 0, 0]), sp.Matrix([[1 + beta / 2, -beta / 2, 0]]), sp.Matrix([1, 1, 1]),
    extra=(C_PARAM,), description="e+ = e + beta (e - e-) + c (e- - e--) - alpha g(e + beta/2 (e - e-))")


def tiny_data(rng, n=4, d=3):
    X = rng.normal(size=(n, d)) * np.array([1.5, 1.0, 0.6])[:d]
    y = X @ rng.normal(size=d) + 0.7 * rng.normal(size=n)      # residuals: exact label noise
    w0 = rng.normal(size=d)                                      # a signed e0: the mean matters
    return X, y, w0


def weight_space_run(X, y, w0, method, a, b, batches, c=0.0, P=None):
    """The optimiser itself, in the original coordinates, on one batch sequence: the loss
    1/2 mean_i (<w, x_i> - y_i)^2 after each step (independent of the eigenbasis code)."""
    d = X.shape[1]
    P = np.eye(d) if P is None else P
    loss = [0.5 * np.mean((X @ w0 - y) ** 2)]
    w, w1, w2 = w0.copy(), w0.copy(), w0.copy()       # w_t, w_{t-1}, w_{t-2}
    v = np.zeros(d)
    for t, B in enumerate(batches):
        at, bt = a[t], b[t]
        B = list(B)

        def grad(p):
            return P @ (X[B].T @ (X[B] @ p - y[B]) / len(B))
        if method == "sgd":
            w = w - at * grad(w)
        elif method == "heavy-ball":          # PyTorch SGD(lr, momentum)
            v = bt * v - at * grad(w)
            w = w + v
        elif method == "nesterov":
            v = bt * v - at * grad(w + bt * v)
            w = w + v
        else:                                   # THREE_STEP
            new = w + bt * (w - w1) + c * (w1 - w2) - at * grad(w + bt / 2 * (w - w1))
            w, w1, w2 = new, w, w1
        loss.append(0.5 * np.mean((X @ w - y) ** 2))
    return np.array(loss)


def enumerate_expected_loss(X, y, w0, method, a, b, sizes, sampling, **kw):
    """Average over every batch sequence (each equally likely) of the weight-space run."""
    n = X.shape[0]
    choices = [list(itertools.product(range(n), repeat=s)) if sampling == "iid"
               else list(itertools.combinations(range(n), s)) for s in sizes]
    total = np.zeros(len(sizes) + 1)
    count = 0
    for seq in itertools.product(*choices):
        total += weight_space_run(X, y, w0, method, a, b, seq, **kw)
        count += 1
    return total / count


@pytest.mark.parametrize("sampling", ["iid", "without-replacement"])
@pytest.mark.parametrize("method", ["heavy-ball", "nesterov", "sgd", "three-step"])
def test_exact_route_equals_enumeration_of_every_batch_sequence(rng, method, sampling):
    X, y, w0 = tiny_data(rng)
    p = Problem.from_rows(X, y, w0=w0)
    a = np.array([0.3, 0.5, 0.2])                       # a schedule: per-step alpha, beta, b
    b = np.zeros(3) if method == "sgd" else np.array([0.4, -0.2, 0.6])
    sizes = [2, 1, 3]
    want = enumerate_expected_loss(X, y, w0, method, a, b, sizes, sampling, c=0.15)
    m = THREE_STEP if method == "three-step" else method
    got = ed.exact_loss_curve(p, a, b, sizes, 3, m, sampling=sampling, params={"c": 0.15}
                              if method == "three-step" else None).loss
    # ~4^6 sequences summed: rounding of the sum ~1e-15 relative per term
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_enumeration_with_a_spectral_preconditioner(rng):
    X, y, w0 = tiny_data(rng)
    n = X.shape[0]
    lam, U = np.linalg.eigh(X.T @ X / n)
    P = U @ np.diag(1.0 / (lam + 0.5)) @ U.T             # p(H) in weight space
    want = enumerate_expected_loss(X, y, w0, "heavy-ball", [0.4] * 3, [0.5] * 3, [2] * 3, "iid", P=P)
    p = Problem.from_rows(X, y, w0=w0)
    got = ed.exact_loss_curve(p, 0.4, 0.5, 2, 3, preconditioner=1.0 / (p.eigenvalues + 0.5)).loss
    np.testing.assert_allclose(got, want, rtol=1e-12)


def full_second_moment_radius(p, a, b, batch, method):
    """rho of the whole second-moment map on (N q)^2 entries, assembled column by column from a
    direct (einsum) transcription of M -> T M T^T + gamma K K^T (x) Sigma_1^0(G M G^T)."""
    mats = ed.step_matrices(method, a, b, 1)
    lam = p.eigenvalues
    N, q = lam.size, mats.q
    Tm = mats.transitions(0, lam, np.ones(N))
    K, G, Z = mats.K[0], mats.G[0], p.data.rows
    n = Z.shape[0]

    def apply(v):
        M = v.reshape(N, N, q, q)
        C = np.einsum("a,b,klab->kl", G, G, M)
        S = (Z.T * np.einsum("ik,kl,il->i", Z, C, Z)) @ Z / n - np.outer(lam, lam) * C
        return (np.einsum("kac,klce,lbe->klab", Tm, M, Tm)
                + np.einsum("a,b,kl->klab", K, K, S) / batch).ravel()
    m = (N * q) ** 2
    A = np.stack([apply(e) for e in np.eye(m)], axis=1)
    return np.abs(np.linalg.eigvals(A)).max()


@pytest.mark.parametrize("method,beta_", [("heavy-ball", 0.5), ("nesterov", 0.3), ("sgd", 0.0)])
def test_threshold_is_where_the_full_second_moment_map_crosses_one(rng, method, beta_):
    X = rng.normal(size=(30, 3)) * np.array([2.0, 1.0, 0.4])
    X[:4] *= 3.0                                          # heavy rows: far from SE
    p = Problem.from_rows(X, X @ rng.normal(size=3) + 0.3 * rng.normal(size=30))
    c = ed.exact_critical_learning_rate(p, beta_, 2, method)
    assert c.limited_by == "noise" and 0 < c.alpha_crit < c.mode_edge
    below = full_second_moment_radius(p, c.alpha_crit * (1 - 1e-6), beta_, 2, method)
    above = full_second_moment_radius(p, c.alpha_crit * (1 + 1e-6), beta_, 2, method)
    assert below < 1 < above
    # and the radius of the noise operator is 1 there, by both solvers
    for solver in ("dense", "arnoldi"):
        assert ed.noise_radius(p, c.alpha_crit, beta_, 2, method, solver=solver) == \
            pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("sampling", ["iid", "without-replacement"])
@pytest.mark.parametrize("method,beta_", [("heavy-ball", 0.6), ("heavy-ball", -0.4),
                                          ("nesterov", 0.5), ("sgd", 0.0)])
def test_q4_closure_with_se_fourth_moments_is_se(rng, method, beta_, sampling):
    """The gains Gamma_kk and the root finder against theory.stability's closed forms: with SE's
    Q = tau1 lambda lambda^T + (1 - tau2) diag(lambda^2) the Q4 closure is SE exactly."""
    X = rng.normal(size=(50, 5)) * np.array([3.0, 1.0, 0.5, 0.2, 0.1])
    p = Problem.from_rows(X, rng.normal(size=50))
    lam = p.eigenvalues
    for noise in (NoiseModel(1.0, -1.0), NoiseModel(0.8, 0.5)):
        Q = noise.tau1 * np.outer(lam, lam) + (1 - noise.tau2) * np.diag(lam ** 2)
        got = ed.q4_critical_learning_rate(p, beta_, 3, method, sampling=sampling,
                                           fourth_moments=Q).alpha_crit
        se_p = p.replace(data_size=50 if sampling == "without-replacement" else None)
        want = critical_learning_rate(se_p, beta_, 3, method, noise).alpha_crit
        assert got == pytest.approx(want, rel=1e-9)


def test_stationary_gain_closed_form_and_series(rng):
    lam = np.array([2.0, 0.7, 0.1])
    a = 0.3
    mats = ed.step_matrices("sgd", a, 0.0, 1)
    Tm = mats.transitions(0, lam, np.ones(3))
    g = ed.stationary_gain(Tm, mats.K[0], mats.G[0])
    # SGD: h_t(lambda) = -alpha (1 - alpha lambda)^t, sum_t h_t h_t' = alpha^2 / (1 - r r')
    r = 1 - a * lam
    np.testing.assert_allclose(g, a * a / (1 - np.outer(r, r)), rtol=1e-14)
    mats = ed.step_matrices("nesterov", a, 0.6, 1)
    Tm = mats.transitions(0, lam, np.ones(3))
    g = ed.stationary_gain(Tm, mats.K[0], mats.G[0])
    h = np.empty((3, 4000))                     # impulse responses G T^t K, summed directly
    for k in range(3):
        x = mats.K[0].copy()
        for t in range(4000):
            h[k, t] = mats.G[0] @ x
            x = Tm[k] @ x
    np.testing.assert_allclose(g, h @ h.T, rtol=1e-10)
    np.testing.assert_allclose(ed.stationary_gain(Tm, mats.K[0], mats.G[0], diagonal_only=True),
                               np.diag(h @ h.T), rtol=1e-10)


@pytest.mark.parametrize("sampling", ["iid", "without-replacement"])
def test_critical_batch_from_one_radius(rng, sampling):
    X = rng.normal(size=(40, 4)) * np.array([2.0, 1.0, 0.5, 0.3])
    p = Problem.from_rows(X, rng.normal(size=40))
    cb = ed.exact_critical_batch(p, 0.5, 0.5, sampling=sampling)
    assert cb.batch_crit is not None and cb.batch_crit > 1
    R = [ed.noise_radius(p, 0.5, 0.5, b, sampling=sampling) for b in (cb.batch_crit - 1, cb.batch_crit)]
    assert R[0] >= 1 > R[1]
    assert ed.noise_radius(p, 0.5, 0.5, 1, sampling="iid") == pytest.approx(cb.unit_radius, rel=1e-12)
    # a noiselessly unstable alpha: no batch helps
    assert ed.exact_critical_batch(p, 10.0, 0.5, sampling=sampling).diverges_for_every_batch


@pytest.mark.parametrize("name,beta_,batch", [("wine", 0.0, 1), ("diabetes", 0.9, 4),
                                              ("breast_cancer", 0.0, 1)])
def test_exact_loss_decays_just_below_and_grows_just_above_the_threshold(name, beta_, batch):
    """The loss recursion is affine, L_{t+1} - L_t follows the homogeneous map: its increments
    shrink below the threshold (the loss settles) and grow geometrically above it."""
    p = bundled(name)
    c = ed.exact_critical_learning_rate(p, beta_, batch)
    T = 4000
    inc = {}
    for f in (0.99, 1.01):
        cur = ed.exact_loss_curve(p, f * c.alpha_crit, beta_, batch, T)
        assert cur.diverges == (f > 1) and (cur.noise_radius < 1) == (f < 1)
        d = np.diff(cur.loss)
        inc[f] = (d[T // 2 - 1], d[-1])
    assert abs(inc[0.99][1]) < abs(inc[0.99][0])          # settling
    assert inc[1.01][1] > inc[1.01][0] > 0                # geometric growth


@pytest.mark.parametrize("method,beta_,batch", [("heavy-ball", 0.0, 1), ("nesterov", 0.5, 2)])
def test_exact_route_agrees_with_monte_carlo_on_real_rows_where_se_does_not(method, beta_, batch):
    p = bundled("wine")
    data = DataSet(p.data.rows, p.data.residuals, p.data.initial_error)
    a = 0.5 * ed.exact_critical_learning_rate(p, beta_, batch, method).alpha_crit
    T = 200
    tr = simulate.run(data.problem, a, beta_, batch, T, 4000, 11, method, features=data, every=10)
    exact = ed.exact_loss_curve(p, a, beta_, batch, T, method).loss[tr.steps]
    se = loss_curve(p, a, beta_, batch, T, method, p.noise).loss[tr.steps]
    z = (tr.mean[1:] - exact[1:]) / tr.stderr[1:]
    assert np.abs(z).max() < 4                    # 4 standard errors at 11 checkpoints
    assert np.abs((tr.mean[1:] - se[1:]) / tr.stderr[1:]).max() > 8   # SE is visibly off here


def test_gaussian_rows_approach_the_se_gaussian_theory_as_n_grows():
    """Rows x ~ N(0, diag(lambda)) with independent label noise: the empirical fourth moments
    tend to Gaussian ones (relative sampling error ~ 3/sqrt(n)), so the exact route tends to SE
    with (1, -1) on the same problem; thresholds and curves at half the threshold."""
    rng = np.random.default_rng(5)
    lam = 0.6 ** np.arange(6)
    w = rng.normal(size=6)
    dev = {}
    for n in (500, 50_000):
        errs = []
        for _ in range(3):
            X = rng.normal(size=(n, 6)) * np.sqrt(lam)
            p = Problem.from_rows(X, X @ w + 0.5 * rng.normal(size=n))
            ex = ed.exact_critical_learning_rate(p, 0.5, 2).alpha_crit
            se = critical_learning_rate(p, 0.5, 2, noise=GAUSSIAN).alpha_crit
            L = ed.exact_loss_curve(p, 0.5 * ex, 0.5, 2, 300, check_divergence=False).loss
            S = loss_curve(p, 0.5 * ex, 0.5, 2, 300, noise=GAUSSIAN).loss
            errs.append(max(abs(se / ex - 1), np.abs((S - L) / (L - p.label_noise / 2)).max()))
        dev[n] = np.sqrt(np.mean(np.square(errs)))
    assert dev[50_000] < 0.04                     # ~3 sigma of the kurtosis estimate at n = 5e4
    assert dev[50_000] < dev[500] / 4             # shrinks like n^-1/2 (expected factor 10)


def test_constant_batch_without_replacement_of_every_row_is_gradient_descent(rng):
    X, y, w0 = tiny_data(rng, n=6)
    p = Problem.from_rows(X, y, w0=w0)
    got = ed.exact_loss_curve(p, 0.2, 0.5, 6, 10, sampling="without-replacement").loss
    want = weight_space_run(X, y, w0, "heavy-ball", [0.2] * 10, [0.5] * 10, [range(6)] * 10)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert ed.noise_radius(p, 0.2, 0.5, 6, sampling="without-replacement") == 0.0


def test_divergent_curve_stops_before_overflow(rng):
    X, y, w0 = tiny_data(rng, n=8)
    p = Problem.from_rows(X, y, w0=w0)
    cur = ed.exact_loss_curve(p, 3.0, 0.0, 1, 100_000)
    assert cur.diverges and cur.stopped_early and np.all(np.isfinite(cur.loss))
    assert cur.loss.size < 100_001 and not np.isfinite(cur.noise_radius)


def test_sampling_follows_the_problem_data_size(rng):
    X, y, w0 = tiny_data(rng, n=6)
    p = Problem.from_rows(X, y, w0=w0)
    a = ed.exact_loss_curve(p.replace(data_size=6), 0.2, 0.0, 2, 5).loss
    b = ed.exact_loss_curve(p, 0.2, 0.0, 2, 5, sampling="without-replacement").loss
    np.testing.assert_array_equal(a, b)
    assert ed.exact_loss_curve(p, 0.2, 0.0, 2, 5).sampling == "iid"


@pytest.mark.parametrize("call,match", [
    (lambda p: ed.exact_loss_curve(Problem([1.0], [1.0]), 0.1, 0, 1, 3), "no data rows"),
    (lambda p: ed.exact_loss_curve(p, 0.1, 0, 1, 3, sampling="epochs"), "sampling must be one of"),
    (lambda p: ed.exact_loss_curve(p.replace(data_size=5), 0.1, 0, 1, 3), "data_size must be None"),
    (lambda p: ed.exact_loss_curve(p, 0.1, 0, 9, 3, sampling="without-replacement"), "batch must be <="),
    (lambda p: ed.exact_loss_curve(p, 0.1, 0, 1.5, 3), "batch must be an integer"),
    (lambda p: ed.exact_loss_curve(p, [0.1, 0.2], 0, 1, 3), "alpha must be a scalar or one value per step"),
    (lambda p: ed.exact_loss_curve(p, -0.1, 0, 1, 3), "alpha must be > 0"),
    (lambda p: ed.exact_loss_curve(p, 0.1, 1.0, 1, 3), "beta must lie in"),
    (lambda p: ed.exact_loss_curve(p, 0.1, 0.5, 1, 3, "sgd"), "beta must be 0"),
    (lambda p: ed.exact_loss_curve(p, 0.1, 0.5, 1, -1), "steps must be an integer"),
    (lambda p: ed.exact_loss_curve(p, 0.1, 0.5, 1, 3, params={"q": 1}), "no parameter 'q'"),
    (lambda p: ed.exact_loss_curve(p, 0.1, 0.5, 1, 3, output=[1.0]), "output must be"),
    (lambda p: ed.exact_loss_curve(p, 0.1, 0.5, 1, 3, preconditioner=[1.0]), "preconditioner"),
    (lambda p: ed.noise_radius(p, 0.1, 0.5, 1, solver="lanczos"), "solver must be"),
    (lambda p: ed.exact_critical_learning_rate(p, 1.5, 1), "beta must lie in"),
    (lambda p: ed.exact_critical_learning_rate("p", 0.5, 1), "problem must be a theory.Problem"),
])
def test_bad_input_is_a_value_error_naming_the_argument(rng, call, match):
    X, y, w0 = tiny_data(rng, n=6)
    with pytest.raises(ValueError, match=match):
        call(Problem.from_rows(X, y, w0=w0))


def test_parallel_kernels_equal_the_serial_ones(rng):
    """From PARALLEL_MODES modes on, the congruence and the gains run under numba's prange."""
    N, q = ed.PARALLEL_MODES + 3, 2
    M = rng.normal(size=(N, N, q, q))
    Tm = 0.5 * rng.normal(size=(N, q, q))
    KK, S, G = rng.normal(size=(q, q)), rng.normal(size=(N, N)), rng.normal(size=q)
    out = [np.empty((N, N, q, q)) for _ in range(2)]
    Cp = [np.empty((N, N)) for _ in range(2)]
    ed._congruence_serial(M, Tm, KK, S, G, out[0], Cp[0])
    ed._congruence_parallel(M, Tm, KK, S, G, out[1], Cp[1])
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(Cp[0], Cp[1])
    want = np.einsum("kac,klce,lbe->klab", Tm, M, Tm) + KK[None, None] * S[:, :, None, None]
    np.testing.assert_allclose(out[0], want, rtol=1e-12, atol=1e-12)
    g = [np.zeros((N, N)) for _ in range(2)]
    K, pre = rng.normal(size=q), np.ones(N)
    ed._gain_serial(Tm, K, G, pre, False, g[0])
    ed._gain_parallel(Tm, K, G, pre, False, g[1])
    np.testing.assert_array_equal(g[0], g[1])
