"""Every shipped method simulated as itself: Monte Carlo (CPU) against the theory of the same run
description at three settings each, Gaussian features (SE exact), and a method whose dynamics
differ from heavy ball rejected by heavy ball's theory (the old fallback simulated heavy ball for
every method)."""
import numpy as np
import pytest

from sgdyn import simulate
from sgdyn.theory.catalogue import METHODS
from sgdyn.theory.dynamics import solve
from sgdyn.theory.methods import get_method
from sgdyn.theory.problem import Problem
from sgdyn.theory.record import Record
from sgdyn.theory.run import Run

P = Problem.power_law(1.5, 1.0, 6).replace(label_noise=0.05)
SETTINGS = [(0.25, 0.5, 2), (0.15, -0.4, 1), (0.35, 0.8, 4)]      # alpha, beta, batch


def _run(method, a, bt, b, steps=40, **kw):
    m = get_method(method)
    return Run.build(P, m, alpha=a, beta=bt if m.has_momentum else 0.0, batch=b, steps=steps,
                     record=Record.every(8), **kw)


def _z(r, runs, seed):
    th = solve(r).loss
    tr = simulate.run(r, runs, seed)
    assert tr.diverged_runs == 0 and tr.mean[0] == pytest.approx(th[0], rel=1e-13)
    return (tr.mean[1:] - th[1:]) / tr.stderr[1:], th


@pytest.mark.parametrize("name", sorted(METHODS))
def test_monte_carlo_agrees_with_the_theory(name):
    for i, (a, bt, b) in enumerate(SETTINGS):
        z, th = _z(_run(name, a, bt, b), 3000, 100 + i)
        assert np.abs(z).max() < 4.0, (name, a, bt, b, z)
        assert th[-1] - 0.025 < 0.5 * (th[0] - 0.025)       # the loss moved: a real comparison


def test_a_method_unlike_heavy_ball_is_simulated_as_itself():
    """QHM with nu = 0.2 is far from heavy ball at the same (alpha, beta): its Monte Carlo agrees
    with its own theory and not with heavy ball's."""
    r = _run("qhm", 0.6, 0.9, 2, steps=40, params={"nu": 0.2})
    z, _ = _z(r, 3000, 7)
    assert np.abs(z).max() < 4.0
    hb = solve(_run("heavy-ball", 0.6, 0.9, 2, steps=40)).loss
    tr = simulate.run(r, 3000, 7)
    assert np.abs((tr.mean[1:] - hb[1:]) / tr.stderr[1:]).max() > 20.0


def test_user_text_method_is_simulated_as_written():
    text = ("params: c = 0.3 in [0, 1]; v' = beta*v - alpha*g(w + c*v); w' = w + v'; "
            "w_avg' = 0.5*w_avg + 0.5*w'; output: w_avg; init: w_avg = w, v = 0")
    m = get_method(text)
    assert m.dim == 3 and m.state[0] == "w_avg"
    z, _ = _z(Run.build(P, m, alpha=0.3, beta=0.5, batch=2, steps=40, record=Record.every(8)),
              3000, 8)
    assert np.abs(z).max() < 4.0


@pytest.mark.parametrize("method,kw", [
    ("heavy-ball", dict(alpha="warmup(8)+cosine(0.4,floor=0.02)", beta=0.6, batch=2)),
    ("heavy-ball", dict(alpha="step(0.4,milestones=[15,30],factor=0.3)", beta=0.5, batch=2)),
    ("heavy-ball", dict(alpha=0.3, beta=0.5, batch="double(1,milestones=[10,20])")),
    ("nesterov", dict(alpha=0.3, beta="linear(0.2,0.9)", batch=2)),
    ("nesterov", dict(alpha="warmup(8)+cosine(0.4,floor=0.02)", beta=0.5, batch="double(2,every=15)")),
])
def test_schedules_agree_with_the_theory(method, kw):
    r = Run.build(P, method, steps=40, record=Record.every(8), **kw)
    z, _ = _z(r, 3000, 11)
    assert np.abs(z).max() < 4.0
