"""The numba kernel against an independent numpy implementation fed the same random draws, and its
reproducibility (seed, thread count, chunking)."""
import numba
import numpy as np
import pytest

from sgdyn.simulate.cpu import per_run_losses
from sgdyn.simulate.features import DataSet
from sgdyn.simulate.run import make_spec
from sgdyn.theory.methods import get_method
from sgdyn.theory.problem import Problem
from tests.simulate.reference import reference_run

PROBLEM = Problem.power_law(1.5, 1.0, 7)


def _data_set(rng):
    X = rng.standard_normal((40, 5)) * np.array([2.0, 1.0, 0.7, 0.3, 0.1]) + 0.3
    y = X @ rng.standard_normal(5) + 0.5 * rng.standard_normal(40)
    return DataSet(X, y)


CASES = [  # (method, beta, features, label_noise, batch); "gaussian" runs the projected sampler
    ("heavy-ball", 0.6, "gaussian", 0.3, 3),
    ("heavy-ball", 0.6, "gaussian-per-sample", 0.3, 3),
    ("nesterov", 0.5, "gaussian-per-sample", 0.0, 2),
    ("heavy-ball", -0.4, "rademacher", 0.0, 2),
    ("nesterov", 0.5, "gaussian", 0.0, 1),
    ("nesterov", 0.3, "rademacher", 0.2, 4),
    ("sgd", 0.0, "gaussian", 0.1, 2),
    ("heavy-ball", 0.5, "data", None, 3),
]


@pytest.mark.parametrize("method,beta,features,label_noise,batch", CASES)
def test_kernel_matches_numpy_reference(method, beta, features, label_noise, batch, rng):
    if features == "data":
        data = _data_set(rng)
        problem, features = data.problem, data
    else:
        problem = PROBLEM
    sampler = "per-sample" if features == "gaussian-per-sample" else "auto"
    features = "gaussian" if features == "gaussian-per-sample" else features
    spec = make_spec(problem, 0.15, beta, batch, 60, 5, 11, method, features, label_noise, every=7,
                     sampler=sampler)
    assert spec.sampler == ("projected" if features == "gaussian" and sampler == "auto" else "per-sample")
    losses, valid = per_run_losses(spec)
    assert np.all(valid == spec.recorded_steps.size)
    for r in range(spec.runs):
        ref = reference_run(spec, r, get_method(method), {"alpha": 0.15, "beta": beta})
        # same draws, same arithmetic up to summation order: rounding only (~1e-16 per step)
        np.testing.assert_allclose(losses[r], ref, rtol=1e-11, atol=0)
    assert not np.allclose(losses[0], losses[1])     # runs have their own streams


def test_overflow_guard_stops_runs_like_the_reference():
    # far beyond the critical learning rate: every run blows up within a few hundred steps
    for sampler in ("projected", "per-sample"):
        _guard_matches_reference(make_spec(PROBLEM, 3.0, 0.0, 1, 1000, 4, 3, every=1, sampler=sampler))


def _guard_matches_reference(spec):
    losses, valid = per_run_losses(spec)
    assert np.all(valid < spec.recorded_steps.size)
    for r in range(spec.runs):
        ref = reference_run(spec, r, get_method("heavy-ball"), {"alpha": 3.0, "beta": 0.0})
        assert valid[r] == ref.size
        np.testing.assert_allclose(losses[r, : valid[r]], ref, rtol=1e-9)


def test_same_seed_same_numbers_whatever_the_thread_count():
    spec = make_spec(PROBLEM, 0.2, 0.5, 2, 50, 300, 5, every=5)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = per_run_losses(spec)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = per_run_losses(spec)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_a_run_depends_only_on_seed_and_its_index():
    # 130 runs are split into chunks (64 at least each); the first 50 match a 50-run simulation
    many = per_run_losses(make_spec(PROBLEM, 0.2, 0.5, 2, 30, 130, 9))[0]
    few = per_run_losses(make_spec(PROBLEM, 0.2, 0.5, 2, 30, 50, 9))[0]
    other = per_run_losses(make_spec(PROBLEM, 0.2, 0.5, 2, 30, 50, 10))[0]
    np.testing.assert_array_equal(many[:50], few)
    assert not np.any(few[:, 1:] == other[:, 1:])


def test_progress_reports_every_run_once():
    seen = []
    per_run_losses(make_spec(PROBLEM, 0.2, 0.5, 2, 10, 200, 1), progress=seen.append)
    assert sum(seen) == 200 and len(seen) > 1
