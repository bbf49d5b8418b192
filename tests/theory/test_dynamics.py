import numpy as np
import pytest

from sgdyn.theory.dynamics import OVERFLOW_GUARD, loss_curve
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem

SMALL = Problem.power_law(nu=1.5, kappa=2.0, n=30)


@pytest.mark.parametrize("method, beta", [("heavy-ball", -0.5), ("heavy-ball", 0.0),
                                          ("heavy-ball", 0.6), ("nesterov", -0.3),
                                          ("nesterov", 0.8), ("sgd", 0.0)])
@pytest.mark.parametrize("batch, noise", [(1, GAUSSIAN), (7, NoiseModel(1.0, 1.0)),
                                          (3, NoiseModel(2.0, 0.5))])
def test_recursion_equals_generating_function(method, beta, batch, noise):
    alpha = 0.25 * (1 - beta)
    rec = loss_curve(SMALL, alpha, beta, batch, 600, method=method, noise=noise)
    gf = loss_curve(SMALL, alpha, beta, batch, 600, method=method, noise=noise,
                    route="generating-function")
    assert not rec.diverges and rec.loss.size == 601 == gf.loss.size
    np.testing.assert_allclose(gf.loss, rec.loss, rtol=1e-10)


@pytest.mark.parametrize("method", ["heavy-ball", "nesterov"])
def test_routes_agree_with_label_noise_and_finite_data(method):
    p = SMALL.replace(label_noise=0.3, data_size=50)
    rec = loss_curve(p, 0.2, 0.4, 5, 500, method=method)
    gf = loss_curve(p, 0.2, 0.4, 5, 500, method=method, route="generating-function")
    np.testing.assert_allclose(gf.loss, rec.loss, rtol=1e-10)
    assert rec.loss[-1] > 0.15  # the label-noise floor sigma^2 / 2 is reached from above


def test_divergent_setting_is_a_result_not_an_overflow():
    rec = loss_curve(SMALL, 2.0, 0.5, 1, 5000)
    gf = loss_curve(SMALL, 2.0, 0.5, 1, 5000, route="generating-function")
    for c in (rec, gf):
        assert c.diverges and c.stopped_early and c.rate > 1
        assert np.all(np.isfinite(c.loss)) and c.loss[-1] >= OVERFLOW_GUARD
        assert np.all(np.abs(c.loss[:-1]) < OVERFLOW_GUARD)
        assert "diverges" in c.reason
    n = min(rec.loss.size, gf.loss.size)
    assert abs(rec.loss.size - gf.loss.size) <= 1
    np.testing.assert_allclose(gf.loss[:n], rec.loss[:n], rtol=1e-9)


def _deterministic_heavy_ball(lam, e0, alpha, beta, steps, nesterov=False):
    """The literal PyTorch-form iteration w <- w + v, v <- beta v - alpha grad, per mode."""
    w, v = e0.copy(), np.zeros_like(e0)
    out = [0.5 * np.sum(lam * w ** 2)]
    for _ in range(steps):
        point = w + beta * v if nesterov else w
        v = beta * v - alpha * lam * point
        w = w + v
        out.append(0.5 * np.sum(lam * w ** 2))
    return np.array(out)


@pytest.mark.parametrize("method", ["heavy-ball", "nesterov"])
@pytest.mark.parametrize("n_modes", [1, 6])
def test_full_batch_reduces_to_deterministic_momentum(method, n_modes):
    """b = N without replacement: gamma = 0, no noise (the b -> infinity limit)."""
    p = Problem.power_law(1.2, 1.0, n_modes).replace(data_size=16)
    curve = loss_curve(p, 0.9, 0.7, 16, 300, method=method)
    want = _deterministic_heavy_ball(p.eigenvalues, np.sqrt(p.initial), 0.9, 0.7, 300,
                                     nesterov=(method == "nesterov"))
    # an oscillating e_t crosses zero: measure roundoff against the local size of the state
    # (the curve's envelope over a window), not against a value that cancels
    envelope = np.array([want[max(0, t - 10):t + 11].max() for t in range(want.size)])
    assert np.all(np.abs(curve.loss - want) <= 1e-10 * envelope)


def test_zero_momentum_is_plain_sgd_and_matches_bordelon_pehlevan():
    """beta = 0, Gaussian features, batch m: Bordelon & Pehlevan (ICLR 2022) moment recursion
    v <- (I - 2 eta Lam + (m+1)/m eta^2 Lam^2 + eta^2/m lam lam^T) v."""
    p, eta, m, T = SMALL, 0.4, 3, 400
    lam = p.eigenvalues
    A = np.diag(1 - 2 * eta * lam + (m + 1) / m * eta ** 2 * lam ** 2) + eta ** 2 / m * np.outer(lam, lam)
    v, want = p.initial.copy(), [0.5 * lam @ p.initial]
    for _ in range(T):
        v = A @ v
        want.append(0.5 * lam @ v)
    hb = loss_curve(p, eta, 0.0, m, T)
    sgd = loss_curve(p, eta, 0.0, m, T, method="sgd")
    np.testing.assert_allclose(hb.loss, want, rtol=1e-11)
    np.testing.assert_allclose(sgd.loss, want, rtol=1e-11)


@pytest.mark.parametrize("method, alpha, beta, batch", [("heavy-ball", 0.3, -0.4, 2),
                                                        ("heavy-ball", 0.15, 0.6, 1),
                                                        ("nesterov", 0.2, 0.5, 3)])
def test_small_monte_carlo_agrees_within_four_standard_errors(method, alpha, beta, batch):
    """Real mini-batch SGD with Gaussian features (numpy, vectorised over runs)."""
    p = Problem([1.0, 0.6, 0.3, 0.1, 0.05], [1.0, 1.0, 1.0, 1.0, 1.0], label_noise=0.05)
    lam, T, runs = p.eigenvalues, 40, 6000
    rng = np.random.default_rng(7)
    e = np.tile(np.sqrt(p.initial), (runs, 1))
    v = np.zeros_like(e)
    losses = [0.5 * (e ** 2) @ lam + 0.5 * p.label_noise]
    for _ in range(T):
        y = e + beta * v if method == "nesterov" else e
        x = rng.standard_normal((runs, batch, lam.size)) * np.sqrt(lam)
        eps = rng.standard_normal((runs, batch)) * np.sqrt(p.label_noise)
        resid = np.einsum("rbk,rk->rb", x, y) - eps
        g = np.einsum("rb,rbk->rk", resid, x) / batch
        v = beta * v - alpha * g
        e = e + v
        losses.append(0.5 * (e ** 2) @ lam + 0.5 * p.label_noise)
    losses = np.array(losses)
    mean, se = losses.mean(axis=1), losses.std(axis=1, ddof=1) / np.sqrt(runs)
    theory = loss_curve(p, alpha, beta, batch, T, method=method).loss
    z = (mean - theory) / np.where(se > 0, se, 1.0)
    assert np.all(np.abs(z[1:]) < 4.0), z
    assert abs(mean[0] - theory[0]) < 1e-12
    # the check can fail: the wrong noise model is rejected at the same sample size
    wrong = loss_curve(p, alpha, beta, batch, T, method=method, noise=NoiseModel(1.0, 1.0)).loss
    assert np.max(np.abs((mean - wrong) / np.where(se > 0, se, 1.0))) > 4.0


@pytest.mark.parametrize("kw, match", [
    (dict(alpha=0.0), "alpha"), (dict(alpha=-1.0), "alpha"), (dict(alpha=float("nan")), "alpha"),
    (dict(beta=1.0), "beta"), (dict(beta=-1.0), "beta"), (dict(batch=0), "batch"),
    (dict(batch=1.5), "batch"), (dict(steps=-1), "steps"), (dict(method="adam"), "method"),
    (dict(method="sgd", beta=0.5), "beta must be 0"), (dict(route="magic"), "route"),
])
def test_bad_input_names_the_argument(kw, match):
    args = dict(problem=SMALL, alpha=0.1, beta=0.0, batch=1, steps=10)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        loss_curve(**args)


def test_zero_steps_and_batch_beyond_data():
    assert loss_curve(SMALL, 0.1, 0.0, 1, 0).loss == pytest.approx([SMALL.initial_loss], rel=1e-15)
    with pytest.raises(ValueError, match="batch must be <= data_size"):
        loss_curve(SMALL.replace(data_size=4), 0.1, 0.0, 5, 10)
