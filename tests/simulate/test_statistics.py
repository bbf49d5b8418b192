"""summarize() against a direct per-checkpoint computation over the runs still alive."""
import numpy as np

from sgdyn.simulate.run import make_spec
from sgdyn.simulate.statistics import summarize
from sgdyn.theory.problem import Problem


def test_summary_matches_direct_computation(rng):
    spec = make_spec(Problem.power_law(1.5, 1.0, 3), 0.1, 0.0, 1, 9, 40, 0, every=2,
                     quantile_levels=(0.1, 0.5, 0.9))
    n_rec = spec.recorded_steps.size
    losses = rng.lognormal(0.0, 2.0, (40, n_rec)) * 1e150      # near the guard: no overflow allowed
    valid = np.full(40, n_rec)
    valid[:7] = rng.integers(1, n_rec, 7)                       # 7 runs stopped by the guard
    losses[np.arange(n_rec)[None, :] >= valid[:, None]] = np.nan  # what is past valid is ignored
    tr = summarize(losses, valid, spec, "cpu")
    assert tr.diverged_runs == 7
    for j in range(n_rec):
        x = losses[valid > j, j]
        assert tr.finite_runs[j] == x.size
        np.testing.assert_allclose(tr.mean[j], x.mean(), rtol=1e-13)
        np.testing.assert_allclose(tr.stderr[j], np.std(x / 1e150, ddof=1) * 1e150 / np.sqrt(x.size), rtol=1e-12)
        np.testing.assert_allclose(tr.quantiles[:, j], np.quantile(x, (0.1, 0.5, 0.9)), rtol=1e-13)


def test_no_live_run_gives_infinite_statistics():
    spec = make_spec(Problem.power_law(1.5, 1.0, 3), 0.1, 0.0, 1, 3, 2, 0)
    losses = np.array([[1.0, 2.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    tr = summarize(losses, np.array([2, 1]), spec, "cpu")
    np.testing.assert_array_equal(tr.finite_runs, [2, 1, 0, 0])
    assert tr.mean[0] == 1.0 and tr.stderr[0] == 0.0
    assert tr.mean[1] == 2.0 and np.isinf(tr.stderr[1])          # one run: no standard error
    assert np.all(np.isinf(tr.mean[2:])) and np.all(np.isinf(tr.quantiles[:, 2:]))
    assert tr.diverged_runs == 2
