"""simulate.networks: exact gradients / HVPs, Lanczos sharpness, optimiser steps, SAM's 2-cycle."""
import numpy as np
import pytest

from sgdyn.simulate import networks as nw
from sgdyn.theory.edges import sam_edge, sam_two_cycle


def _models(rng):
    X, y = nw.teacher_regression(30, 4, seed=1)
    return [nw.quadratic([3.0, 2.0, 0.5]), nw.scalar_net(1.3, -1.7, 4),
            nw.matrix_net(rng.standard_normal((3, 3)), 3), nw.tanh_net(X, y, 5)]


def test_gradient_and_hvp_against_finite_differences(rng):
    for m in _models(rng):
        w, u = rng.standard_normal(m.n_params), rng.standard_normal(m.n_params)
        loss, g, hu = m.loss_grad_hvp(w, u)
        # central differences: truncation O(h^2 |f'''|) ~ 1e-12, rounding O(eps |f| / h) ~ 1e-10
        h = 1e-6
        fd_g = np.array([(m.loss_grad_hvp(w + h * e)[0] - m.loss_grad_hvp(w - h * e)[0]) / (2 * h)
                         for e in np.eye(m.n_params)])
        fd_h = (m.loss_grad_hvp(w + h * u)[1] - m.loss_grad_hvp(w - h * u)[1]) / (2 * h)
        scale_g, scale_h = np.abs(g).max(), np.abs(hu).max()
        assert np.abs(fd_g - g).max() < 1e-7 * scale_g, m.name
        assert np.abs(fd_h - hu).max() < 1e-7 * scale_h, m.name


@pytest.mark.parametrize("h, depth", [(50, 2), (8, 20), (50, 20)])
def test_matrix_net_at_the_size_limits(h, depth, rng):
    # widest / deepest allowed networks: directional derivatives of the loss (g.u) and of the
    # gradient (H u) against central differences along one random direction (the full Jacobian
    # would take 2 n = 10^5 gradients). Layers near the identity keep the depth-20 product O(1);
    # the loss is a polynomial with O(1) derivatives here, so truncation O(h^2) ~ 1e-10 and
    # rounding O(eps / h) ~ 1e-10 relative: 1e-6 is a safe bound that a wrong term would break
    W = np.eye(h) + 0.3 / np.sqrt(h) * rng.standard_normal((depth, h, h))
    m = nw.matrix_net(rng.standard_normal((h, h)) / np.sqrt(h), depth)
    w, u = W.ravel(), rng.standard_normal(m.n_params) / np.sqrt(m.n_params)
    loss, g, hu = m.loss_grad_hvp(w, u)
    step = 1e-5
    fd_loss = (m.loss_grad_hvp(w + step * u)[0] - m.loss_grad_hvp(w - step * u)[0]) / (2 * step)
    fd_grad = (m.loss_grad_hvp(w + step * u)[1] - m.loss_grad_hvp(w - step * u)[1]) / (2 * step)
    assert fd_loss == pytest.approx(g @ u, rel=1e-6)
    assert np.abs(fd_grad - hu).max() < 1e-6 * np.abs(hu).max()


def test_lanczos_sharpness_equals_full_hessian(rng):
    for m in _models(rng):
        w = rng.standard_normal(m.n_params)
        H = np.array([m.loss_grad_hvp(w, e)[2] for e in np.eye(m.n_params)])
        np.testing.assert_allclose(H, H.T, atol=1e-12 * np.abs(H).max())
        top = np.linalg.eigvalsh(H)[-1]
        assert m.sharpness(w, lanczos_steps=m.n_params) == pytest.approx(top, rel=1e-10), m.name


def _numpy_reference(lam, w0, eta, steps, opt, beta=0.0, rho=0.0):
    """Plain numpy loop of the three optimisers on 1/2 sum lam w^2 (independent implementation)."""
    w, v = w0.copy(), np.zeros_like(w0)
    for _ in range(steps):
        g = lam * w
        if opt == "sam":
            n = np.linalg.norm(g, axis=1, keepdims=True)
            g = lam * (w + rho * g / n)
        if opt == "heavy-ball":
            v = beta * v - eta * g
            w = w + v
        else:
            w = w - eta * g
    return w


@pytest.mark.parametrize("opt, beta, rho", [("gd", 0.0, 0.0), ("heavy-ball", 0.6, 0.0), ("sam", 0.0, 0.05)])
def test_optimizers_match_a_numpy_loop(opt, beta, rho, rng):
    lam = np.array([3.0, 1.0, 0.2])
    w0 = rng.standard_normal((4, 3))
    out = nw.run(nw.quadratic(lam), w0, 0.3, 40, optimizer=opt, beta=beta, rho=rho, tol=0.0)
    np.testing.assert_allclose(out.final, _numpy_reference(lam, w0, 0.3, 40, opt, beta, rho),
                               rtol=1e-12, atol=1e-14)
    assert np.all(out.status == nw.RUNNING)


def test_sam_settles_on_the_predicted_two_cycle():
    # docs/edges.md: H = diag(15, 3, 1), eta = 0.1, rho = 0.05 -> a* = 0.15, ||g|| = 2.25
    lam = np.array([15.0, 3.0, 1.0])
    w0 = np.random.default_rng(5).standard_normal((8, 3))
    out = nw.run(nw.quadratic(lam), w0, 0.1, 400, optimizer="sam", rho=0.05, tol=0.0, window=2)
    cycle = sam_two_cycle(0.1, 0.05, 15.0)
    # off-cycle modes contract by |1 - eta l - eta rho l^2 / ||g||| <= 0.9 per step (l = 1):
    # 0.9^400 ~ 5e-19 of their start (|w_0| < 5)
    np.testing.assert_allclose(np.abs(out.final[:, 0]), cycle.amplitude, rtol=1e-12)
    assert np.abs(out.final[:, 1:]).max() < 1e-17
    # the measured ||g|| on the cycle and the edge identity SAM_edge(eta, rho, ||g||) = lambda_1
    np.testing.assert_allclose(out.grad_norm, cycle.grad_norm, rtol=1e-12)
    np.testing.assert_allclose(sam_edge(0.1, 0.05, out.grad_norm), 15.0, rtol=1e-6)
    np.testing.assert_allclose(out.final[:, 0] * nw.run(nw.quadratic(lam), out.final, 0.1, 1,
                                                        optimizer="sam", rho=0.05, tol=0).final[:, 0],
                               -cycle.amplitude ** 2, rtol=1e-12)     # it alternates sign


def test_divergence_is_a_result_not_an_overflow():
    out = nw.run(nw.quadratic([1.0, 10.0]), [[1.0, 1.0]], 0.25, 10_000)
    assert out.diverged.all() and out.stopped_at[0] < 100 and np.isinf(out.grad_norm[0])
    deep = nw.run(nw.scalar_net(1.0, 2.0, 20), 3.0 * np.ones((2, 20)), 0.5, 1000)
    assert deep.diverged.all()


def test_converged_runs_stop_and_sharpness_is_recorded():
    m = nw.scalar_net(1.0, 2.0, 2)
    out = nw.run(m, nw.near_balanced_scalar_init(2.0, 2, 5), 0.2, 5000, every=10, lanczos_steps=2)
    assert out.converged.all() and np.all(out.grad_norm < 1e-8)
    # sharpness at a minimum of the depth-2 scalar net: a (w_1^2 + w_2^2)
    np.testing.assert_allclose([m.sharpness(w) for w in out.final], np.sum(out.final ** 2, axis=1),
                               rtol=1e-6)
    np.testing.assert_allclose(out.sharpness[:, 0], [m.sharpness(w) for w in
                                                     nw.near_balanced_scalar_init(2.0, 2, 5)], rtol=1e-12)


def test_runs_are_reproducible():
    X, y = nw.teacher_regression(20, 3, seed=2)
    m = nw.tanh_net(X, y, 4)
    w0 = nw.tanh_init(3, 4, 3, seed=2)
    a = nw.run(m, w0, 0.1, 50, every=10, lanczos_steps=5, seed=7)
    b = nw.run(m, w0, 0.1, 50, every=10, lanczos_steps=5, seed=7)
    assert np.array_equal(a.final, b.final) and np.array_equal(a.sharpness, b.sharpness)


def test_whitened_data_is_whitened():
    X, Y, phi = nw.whitened_regression(40, np.eye(3) * 2.0, noise=0.0, seed=1)
    np.testing.assert_allclose(X.T @ X / 40, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(phi, 2.0 * np.eye(3), atol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: nw.run(nw.quadratic([1.0]), [[1.0]], 0.0, 10), "eta"),
    (lambda: nw.run(nw.quadratic([1.0]), [[1.0]], 0.1, 10, optimizer="sam", rho=0.0), "rho"),
    (lambda: nw.run(nw.quadratic([1.0]), [[1.0]], 0.1, 10, beta=0.5), "beta"),
    (lambda: nw.run(nw.quadratic([1.0]), [[1.0]], 0.1, 10, optimizer="heavy-ball", beta=1.0), "beta"),
    (lambda: nw.run(nw.quadratic([1.0]), [[1.0]], 0.1, 10, optimizer="adam"), "optimizer"),
    (lambda: nw.run(nw.quadratic([1.0]), [[1.0, 2.0]], 0.1, 10), "initial"),
    (lambda: nw.run(nw.quadratic([1.0]), [[np.nan]], 0.1, 10), "initial"),
    (lambda: nw.run(nw.quadratic([1.0]), [[1.0]], 0.1, 0), "steps"),
    (lambda: nw.quadratic([1.0, -1.0]), "eigenvalues"),
    (lambda: nw.matrix_net(np.eye(3), 21), "depth"),
    (lambda: nw.matrix_net(np.eye(51), 2), "target"),
    (lambda: nw.scalar_net(-1.0, 1.0, 2), "a"),
    (lambda: nw.tanh_net(np.ones((3, 2)), np.ones(2), 4), "X"),
    (lambda: nw.perturbed_init([1.0, np.inf], 3), "center"),
    (lambda: nw.perturbed_init([1.0, 2.0], 3, spread=-1), "spread"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
