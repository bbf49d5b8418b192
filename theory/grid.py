"""The singularities of the loss generating function (``theory.transfer.singularities``) over a
whole grid of hyperparameters at once: one numba kernel (``theory.transfer.rate_arrays``) over all
points instead of one ModeSystem per point, the same decisions by construction. Agreement with the
per-point route and with the full-batch closed form is checked in ``tests/theory/test_grid.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.methods import get_method
from sgdyn.theory.noise import GAUSSIAN, NoiseModel, batch_factor
from sgdyn.theory.problem import Problem
from sgdyn.theory.transfer import noise_feedback_at_one, rate_arrays


@dataclass(frozen=True)
class SingularityGrid(Result):
    """``theory.transfer.Singularities`` field by field, as arrays over a grid of points."""

    mode_radius: np.ndarray     # 1 / max_k spectral radius of the noiseless maps A0_k
    worst_mode: np.ndarray      # index of the mode with the largest spectral radius
    z_star: np.ndarray          # first positive root of det(I - z T) (inf if none before Z)
    noise_feedback: np.ndarray  # U(1) (inf if a mode is unstable at z = 1)
    rate: np.ndarray            # rho: L_t ~ rho^t
    limited_by: np.ndarray      # "noise" or "mode stability"

    @property
    def diverges(self) -> np.ndarray:
        return self.rate > 1.0


def _validated(method, alpha_values, beta_values, batch_values, data_size):
    a, bt, bs = np.broadcast_arrays(np.asarray(alpha_values, dtype=float),
                                    np.asarray(beta_values, dtype=float),
                                    np.asarray(batch_values, dtype=float))
    bad = ~(np.isfinite(a) & (a > 0))
    if bad.any():
        raise ValueError(f"alpha must be finite and > 0, got {a[bad].flat[0]}")
    bad = ~((bt > -1.0) & (bt < 1.0)) if method.has_momentum else bt != 0.0
    if bad.any():
        allowed = "lie in (-1, 1)" if method.has_momentum else f"be 0 for method {method.name!r}"
        raise ValueError(f"beta must {allowed}, got {bt[bad].flat[0]}")
    unique_batches = np.unique(bs)
    factors = {v: batch_factor(checks.integer("batch", v, 1), data_size) for v in unique_batches}
    g = np.vectorize(factors.__getitem__, otypes=[float])(bs) if bs.size else bs
    return a, bt, g


def singularities_grid(problem: Problem, alpha_values, beta_values, batch_values,
                       method: str = "heavy-ball", noise: NoiseModel = GAUSSIAN,
                       parallel: bool = True) -> SingularityGrid:
    """``singularities(ModeSystem.build(problem, alpha, beta, batch, method, noise))`` for every
    point of the broadcast arrays ``alpha_values, beta_values, batch_values``, in one kernel.

    Cost ``O(P N)`` for P points and N modes. ``parallel`` runs the points on numba's threads;
    callers that are themselves run on several threads (a Dask worker) pass ``False``.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
    if not isinstance(noise, NoiseModel):
        raise ValueError(f"noise must be a theory.NoiseModel, got {type(noise).__name__}")
    m = get_method(method)
    a, bt, g = _validated(m, alpha_values, beta_values, batch_values, problem.data_size)
    lam = problem.eigenvalues
    w = problem.multiplicity
    rate, z_star, Z, worst = rate_arrays(m, lam, a, bt, g, noise.tau1, noise.tau2, w,
                                         parallel=parallel)
    U1 = noise_feedback_at_one(m, lam, a, bt, g, noise.tau1, noise.tau2, Z, w)
    limited = np.where(z_star < np.inf, "noise", "mode stability")
    return SingularityGrid(Z, worst, z_star, U1, rate, limited)
