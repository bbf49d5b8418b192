"""theory.grid (all points of a grid in one kernel call, batch factors per point) against
theory.transfer.singularities (one ModeSystem per point): the same decisions and numbers up to
rounding (the sums over modes are taken in a different order), and the full-batch closed form.
"""
import numpy as np
import pytest

from sgdyn.theory.grid import singularities_grid
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import singularities

RTOL = 1e-12
FIELDS = ("mode_radius", "z_star", "noise_feedback", "rate")

BETAS = (-0.6, -0.2, 0.0, 0.3, 0.8)
# no alpha lambda_max = 2 (1 + beta) exactly: a knife edge (radius 1) where rounding decides
ALPHAS = (0.02, 0.1, 0.3, 0.7, 1.1, 1.55, 2.4, 3.5)
CASES = [   # method, problem, noise, betas, batches
    ("heavy-ball", Problem.power_law(1.5, 2.0, 30), GAUSSIAN, BETAS, (1, 4)),
    ("heavy-ball", Problem.power_law(1.2, 1.0, 20, data_size=12), NoiseModel(1.0, 0.5), BETAS, (1, 4, 11)),
    # full batch (gamma = 0, U = 0): mode-limited everywhere
    ("heavy-ball", Problem.power_law(1.2, 1.0, 20, data_size=12), GAUSSIAN, BETAS, (12,)),
    ("nesterov", Problem.power_law(1.5, 2.0, 25, data_size=12), GAUSSIAN, BETAS, (1, 4, 11)),
    ("nesterov", Problem.power_law(1.3, 1.5, 20), NoiseModel(0.5, 0.0), BETAS, (1, 4)),
    ("sgd", Problem.power_law(1.5, 2.0, 30, data_size=12), GAUSSIAN, (0.0,), (1, 4, 11, 12)),
]


@pytest.mark.parametrize("method, problem, noise, betas, batches", CASES)
def test_grid_matches_the_per_point_route(method, problem, noise, betas, batches):
    A, B, S = np.meshgrid(ALPHAS, betas, batches, indexing="ij")
    grid = singularities_grid(problem, A, B, S, method, noise)
    serial = singularities_grid(problem, A, B, S, method, noise, parallel=False)
    for name in FIELDS + ("worst_mode", "limited_by"):
        np.testing.assert_array_equal(getattr(grid, name), getattr(serial, name))
    for idx in np.ndindex(A.shape):
        s = singularities(ModeSystem.build(problem, A[idx], B[idx], int(S[idx]), method, noise))
        assert grid.limited_by[idx] == s.limited_by, idx
        assert grid.worst_mode[idx] == s.worst_mode, idx
        assert grid.diverges[idx] == s.diverges, idx
        for name in FIELDS:
            got, want = getattr(grid, name)[idx], getattr(s, name)
            if np.isinf(want):
                assert got == want, (name, idx)
            else:
                np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, err_msg=f"{name} at {idx}")


def test_the_cases_cover_both_limits_and_both_verdicts():
    limits, verdicts = set(), set()
    for method, problem, noise, betas, batches in CASES:
        A, B, S = np.meshgrid(ALPHAS, betas, batches, indexing="ij")
        g = singularities_grid(problem, A, B, S, method, noise)
        limits |= set(g.limited_by.ravel())
        verdicts |= set(g.diverges.ravel())
    assert limits == {"noise", "mode stability"} and verdicts == {True, False}


def test_full_batch_is_mode_limited_gradient_descent():
    """gamma = 0 (batch = data size): no noise, the rate is the deterministic heavy-ball one,
    ``max_k max(|mu_k,1|, |mu_k,2|)^2`` from the roots of ``r^2 - (1 + beta - alpha lambda) r + beta``."""
    p = Problem.power_law(1.5, 2.0, 15, data_size=8)
    alphas, betas = np.meshgrid([0.1, 0.9, 1.9, 2.5], [-0.5, 0.0, 0.4], indexing="ij")
    g = singularities_grid(p, alphas, betas, 8)
    assert (g.limited_by == "mode stability").all() and np.isinf(g.z_star).all()
    for idx in np.ndindex(alphas.shape):
        a, b = alphas[idx], betas[idx]
        roots = [np.roots([1.0, -(1 + b - a * lam), b]) for lam in p.eigenvalues]
        want = max(np.abs(r).max() for r in roots) ** 2
        np.testing.assert_allclose(g.rate[idx], want, rtol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(alpha_values=[0.1, -1.0]), "alpha"), (dict(alpha_values=[np.nan]), "alpha"),
    (dict(beta_values=[1.0]), "beta"), (dict(batch_values=[0]), "batch"),
    (dict(batch_values=[2.5]), "batch"), (dict(method="sgd", beta_values=[0.3]), "beta"),
    (dict(method="adam"), "method"), (dict(noise=(1, -1)), "noise"), (dict(problem=[1.0]), "problem"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(problem=Problem.power_law(1.5, 2.0, 5), alpha_values=[0.1], beta_values=[0.0],
                batch_values=[1])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        singularities_grid(**args)
