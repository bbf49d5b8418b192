"""Monte Carlo against the exact SE theory: means within 4 standard errors at every checkpoint.

Tolerance: the theory is exact in expectation for these feature laws (Gaussian: tau = (1, -1);
Rademacher: (1, 1)), so ``|mean - theory| / stderr`` is a standard normal deviate at each checkpoint;
4 bounds it with probability 1 - 6e-5 per checkpoint. The settings keep the loss light-tailed (batch
>= 2, well below the critical learning rate) so the standard error is trustworthy.
"""
import numpy as np
import pytest

from sgdyn import simulate
from sgdyn.simulate.features import DataSet, replay
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.noise import GAUSSIAN, estimate_tau
from sgdyn.theory.problem import Problem

POWER = Problem.power_law(1.5, 1.0, 12)


def z_scores(tr, theory):
    theory = theory[tr.steps]
    assert tr.stderr[0] == 0.0 and tr.mean[0] == pytest.approx(theory[0], rel=1e-14)  # common start
    return (tr.mean[1:] - theory[1:]) / tr.stderr[1:]


@pytest.mark.parametrize("method,alpha,beta,batch,label_noise", [
    ("heavy-ball", 0.3, 0.5, 2, 0.0),
    ("heavy-ball", 0.4, -0.4, 4, 0.0),     # negative momentum
    ("nesterov", 0.25, 0.6, 3, 0.0),
    ("sgd", 0.5, 0.0, 2, 0.2),             # label noise: the loss settles on its floor
])
@pytest.mark.parametrize("sampler", ["projected", "per-sample"])
def test_gaussian_features_agree_with_exact_theory(method, alpha, beta, batch, label_noise, sampler):
    problem = POWER.replace(label_noise=label_noise)
    th = loss_curve(problem, alpha, beta, batch, 150, method=method).loss
    tr = simulate.run(problem, alpha, beta, batch, 150, 3000, 2024, method=method, every=5,
                      sampler=sampler)
    assert tr.diverged_runs == 0 and np.all(tr.finite_runs == 3000)
    assert np.abs(z_scores(tr, th)).max() < 4.0
    floor = 0.5 * label_noise              # the loss really moved: not a vacuous comparison
    assert th[-1] - floor < 0.1 * (th[0] - floor)


def test_rademacher_agrees_with_estimated_tau_and_not_with_gaussian():
    # few modes, batch 1, large alpha: the Rademacher self-noise term (-tau2 lambda^2 m) matters
    problem = Problem.from_arrays([1.0, 0.3, 0.1], [1.0, 1.0, 1.0])
    kind_rademacher = 1
    sqrt_lam = np.sqrt(problem.eigenvalues)
    samples = replay(np.uint64(7), 0, np.full(5000, 1), kind_rademacher, sqrt_lam, 0.0,
                     np.empty((0, 0)), np.empty(0))[0][:, 0, :]
    fit = estimate_tau(samples)
    assert abs(fit.tau1 - 1) < 0.02 and abs(fit.tau2 - 1) < 0.02 and fit.residual < 0.01
    tr = simulate.run(problem, 0.6, 0.0, 1, 40, 3000, 99, features="rademacher")
    z_fit = z_scores(tr, loss_curve(problem, 0.6, 0.0, 1, 40, noise=fit.model).loss)
    z_gauss = z_scores(tr, loss_curve(problem, 0.6, 0.0, 1, 40, noise=GAUSSIAN).loss)
    assert np.abs(z_fit).max() < 4.0
    assert np.abs(z_gauss).max() > 100.0   # the Gaussian prediction is far off: the test can fail


def test_digits_data_set_agrees_with_theory_from_its_spectrum():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    data = DataSet(X / 16.0, y)
    problem = data.problem              # i.i.d. draws (with replacement): data_size = None
    fit = estimate_tau(data.X)
    assert fit.residual < 0.05          # digits are close to SE on the diagonal
    th = loss_curve(problem, 0.05, 0.0, 4, 200, noise=fit.model).loss
    tr = simulate.run(problem, 0.05, 0.0, 4, 200, 2000, 1, features=data, every=10)
    assert np.abs(z_scores(tr, th)).max() < 4.0
    assert th[-1] < 0.8 * th[0]


def test_divergent_setting_counts_runs_and_keeps_statistics_clean():
    # three times the deterministic stability edge: every run overflows the guard
    tr = simulate.run(POWER, 3.0 * 2.0 / POWER.eigenvalues[0], 0.0, 2, 600, 200, 5, every=50)
    assert tr.diverged_runs == 200
    assert np.all(np.diff(tr.finite_runs) <= 0) and tr.finite_runs[-1] == 0
    live = tr.finite_runs > 0
    assert np.all(np.isfinite(tr.mean[live])) and np.all(np.isinf(tr.mean[~live]))
    assert not np.any(np.isnan(tr.quantiles))
