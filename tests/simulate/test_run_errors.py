"""simulate.run rejects bad input with a ValueError naming the argument."""
import numpy as np
import pytest

from sgdyn import simulate
from sgdyn.simulate.features import DataSet
from sgdyn.theory.problem import Problem

P = Problem.power_law(1.5, 1.0, 4)
OK = dict(problem=P, alpha=0.1, beta=0.5, batch=2, steps=10, runs=5, seed=0)


@pytest.mark.parametrize("change,match", [
    (dict(problem="powerlaw"), "problem must be a theory.Problem"),
    (dict(problem=P.replace(data_size=10)), "problem.data_size must be None"),
    (dict(alpha=0.0), "alpha must be > 0"),
    (dict(beta=1.0), "beta must lie in"),
    (dict(batch=0), "batch must be an integer >= 1"),
    (dict(batch=2.5), "batch must be an integer"),
    (dict(steps=-1), "steps must be an integer >= 0"),
    (dict(runs=0), "runs must be an integer >= 1"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(seed=2 ** 64), r"seed must be an integer in \[0, 2\^64\)"),
    (dict(method="adam"), "method must be one of"),
    (dict(method="sgd", beta=0.5), "beta must be 0 for method 'sgd'"),
    (dict(features="laplace"), "features must be one of"),
    (dict(label_noise=-0.1), "label_noise must be >= 0"),
    (dict(label_noise=float("nan")), "label_noise must be finite"),
    (dict(backend="tpu"), "backend must be one of"),
    (dict(every=0), "every must be an integer >= 1"),
    (dict(quantile_levels=(0.5, 1.5)), "quantile_levels must be"),
    (dict(progress=3), "progress must be None or a callable"),
])
def test_bad_arguments_are_named(change, match):
    with pytest.raises(ValueError, match=match):
        simulate.run(**{**OK, **change})


def test_data_set_arguments_must_match(rng):
    data = DataSet(rng.standard_normal((20, 3)), rng.standard_normal(20))
    with pytest.raises(ValueError, match="problem must describe the DataSet"):
        simulate.run(**{**OK, "features": data})
    with pytest.raises(ValueError, match="label_noise must be None with a DataSet"):
        simulate.run(**{**OK, "problem": data.problem, "features": data, "label_noise": 0.1})


def test_recorded_steps_cover_zero_to_steps():
    tr = simulate.run(**{**OK, "steps": 10, "every": 4})
    np.testing.assert_array_equal(tr.steps, [0, 4, 8, 10])
    tr0 = simulate.run(**{**OK, "steps": 0})
    np.testing.assert_array_equal(tr0.steps, [0])
    assert tr0.mean[0] == pytest.approx(P.initial_loss, rel=1e-14)
