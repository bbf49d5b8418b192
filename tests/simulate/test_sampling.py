"""The Monte Carlo samples like training: batches i.i.d. with replacement, without replacement
within a batch, and shuffled epochs, from a data set's rows (synthetic Gaussian rows and a bundled
data set), checked against the theory of the same description."""
import numpy as np
import pytest
from sklearn import datasets

from sgdyn import simulate
from sgdyn.simulate.features import DataSet
from sgdyn.theory import Problem, Record, Run, Sampling, solve

POP = Problem.power_law(1.5, 1.0, 10).replace(label_noise=0.05)


@pytest.fixture(scope="module")
def gaussian_rows():
    return DataSet.gaussian(POP, 4000, seed=3)


@pytest.fixture(scope="module")
def wine():
    X, y = datasets.load_wine(return_X_y=True)
    return Problem.from_rows(X, y, standardize_data=True)


def _z(mc, th):
    return (mc.mean[1:] - th[1:]) / mc.stderr[1:]


@pytest.mark.parametrize("batch", [8, 2000])
def test_without_replacement_agrees_with_the_data_size_theory(gaussian_rows, batch):
    """Gaussian rows (4000 of 10 features): the SE theory with the finite-population factor
    (N - b)/((N - 1) b), Gaussian tau; at b = 2000 that factor is half of 1/b."""
    p = gaussian_rows.problem
    r = Run.build(p, "heavy-ball", alpha=0.4, beta=0.5, batch=batch, steps=60,
                  sampling=Sampling.without_replacement(4000), record=Record.every(10))
    mc = simulate.run(r, 4000, 5, data=gaussian_rows)
    assert np.abs(_z(mc, solve(r).loss)).max() < 4
    if batch == 2000:        # the i.i.d. theory is rejected: the factor is seen
        iid = solve(r.replace(sampling=Sampling.iid())).loss
        assert np.abs(_z(mc, iid)).max() > 10


@pytest.mark.parametrize("kind", ["iid", "without-replacement"])
def test_rows_of_a_data_problem_agree_with_the_exact_route(wine, kind):
    smp = Sampling.iid() if kind == "iid" else Sampling.without_replacement(wine.data.n)
    r = Run.build(wine, "heavy-ball", alpha=0.05, beta=0.5, batch=32, steps=300, sampling=smp,
                  record=Record.at([0, 50, 100, 300]))
    mc = simulate.run(r, 3000, 1)
    assert np.abs(_z(mc, solve(r, "exact-data").loss)).max() < 4


@pytest.mark.parametrize("kind", ["without-replacement", "epochs"])
def test_the_whole_data_set_as_a_batch_is_gradient_descent(wine, kind):
    n = wine.data.n
    r = Run.build(wine, "heavy-ball", alpha=0.1, beta=0.5, batch=n, steps=40,
                  sampling=Sampling(kind, n), record=Record.every(10))
    mc = simulate.run(r, 64, 2)
    # every run is the same deterministic GD; only the order of the row sums differs per run
    assert np.all(mc.stderr <= 1e-12 * mc.mean)
    gd = solve(r.replace(sampling=Sampling.without_replacement(n)), "exact-data").loss
    np.testing.assert_allclose(mc.mean, gd, rtol=1e-11)


def test_shuffled_epochs_sit_below_independent_batches(wine):
    """Reshuffling each epoch and walking through it (b = 89, two batches an epoch) uses every
    row once per epoch: less noise than batches drawn afresh; measured, not a theory."""
    n = wine.data.n
    rec = Record.at([0, 100, 300, 600])
    wor = Run.build(wine, "heavy-ball", alpha=0.05, beta=0.5, batch=89, steps=600,
                    sampling=Sampling.without_replacement(n), record=rec)
    ep = simulate.run(wor.replace(sampling=Sampling.epochs(n)), 3000, 2)
    th = solve(wor, "exact-data").loss
    assert np.all(_z(ep, th) < -4)
    with pytest.raises(ValueError, match="sampling 'epochs' has no second-moment theory"):
        solve(wor.replace(sampling=Sampling.epochs(n)))


def test_finite_sampling_needs_rows():
    r = Run.build(POP, "sgd", alpha=0.1, batch=2, steps=5, sampling=Sampling.without_replacement(50))
    with pytest.raises(ValueError, match="only with its rows"):
        simulate.run(r, 10, 0)
    ds = DataSet.gaussian(POP, 100, 1)
    wrong = Run.build(ds.problem, "sgd", alpha=0.1, batch=2, steps=5,
                      sampling=Sampling.without_replacement(50))
    with pytest.raises(ValueError, match="from 50 points, but the data has 100 rows"):
        simulate.run(wrong, 10, 0, data=ds)
    with pytest.raises(ValueError, match="from 50 points, but the data has 100 rows"):
        Run.build(Problem.from_rows(ds.X, ds.y), "sgd", alpha=0.1, batch=2, steps=5,
                  sampling=Sampling.without_replacement(50))
