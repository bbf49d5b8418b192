"""Trajectories: what a Monte Carlo simulation returns, whatever the backend (CPU or CUDA)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sgdyn.theory.display import Result


@dataclass(frozen=True)
class Trajectories(Result):
    """Statistics of the population loss over independent runs at the recorded steps.

    ``mean`` and ``stderr`` (standard error of the mean, ``std / sqrt(n)``) are over the runs that
    had not diverged by that step (``finite_runs``); ``quantiles[i, j]`` is the
    ``quantile_levels[i]`` quantile of the loss at ``steps[j]``. A run whose loss passes the
    overflow guard is stopped and counted in ``diverged_runs`` instead of poisoning the mean.
    """

    steps: np.ndarray            # (n_rec,) recorded steps t (0, every, 2 every, .., T)
    mean: np.ndarray             # (n_rec,)
    stderr: np.ndarray           # (n_rec,)
    quantile_levels: np.ndarray  # (n_q,)
    quantiles: np.ndarray        # (n_q, n_rec)
    finite_runs: np.ndarray      # (n_rec,) runs still finite at each recorded step
    diverged_runs: int           # runs stopped by the overflow guard before the last step
    runs: int
    seed: int
    backend: str

    def __post_init__(self):
        n = self.steps.shape[0]
        for name in ("mean", "stderr", "finite_runs"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"Trajectories.{name} must have shape ({n},)")
        if self.quantiles.shape != (self.quantile_levels.shape[0], n):
            raise ValueError("Trajectories.quantiles must have shape (n_levels, n_steps)")
