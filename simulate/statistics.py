"""Statistics of per-run losses (whatever backend produced them) -> ``Trajectories``."""
from __future__ import annotations

import numpy as np

from sgdyn.simulate.spec import SimulationSpec
from sgdyn.simulate.trajectories import Trajectories


def summarize(losses: np.ndarray, valid: np.ndarray, spec: SimulationSpec, backend: str) -> Trajectories:
    """``summarize_losses`` at the spec's recorded steps, quantile levels, runs and seed."""
    return summarize_losses(losses, valid, spec.recorded_steps, spec.quantile_levels, spec.runs,
                            spec.seed, backend)


def summarize_losses(losses: np.ndarray, valid: np.ndarray, steps: np.ndarray, quantile_levels,
                     runs: int, seed: int, backend: str) -> Trajectories:
    """``losses[r, j]`` is run r's loss at ``steps[j]``, meaningful for
    ``j < valid[r]`` (a run stopped by the overflow guard has ``valid[r] <`` the number of recorded
    steps; its later entries are ignored, whatever they hold).

    Per recorded step over the ``n`` live runs: mean, standard error ``std(ddof=1) / sqrt(n)`` and
    quantiles. Values are scaled by the column maximum before squaring, so losses up to the guard
    (1e200) never overflow. With no live run the statistics are ``inf`` (every run passed the
    guard); with one run the standard error is ``inf`` (unknown).
    """
    n_rec = losses.shape[1]
    live = np.arange(n_rec)[None, :] < valid[:, None]
    n = live.sum(axis=0)
    x = np.where(live, losses, 0.0)
    scale = np.abs(x).max(axis=0)
    scale[scale == 0.0] = 1.0
    xs = x / scale
    has = n > 0
    mean_s = np.divide(xs.sum(axis=0), n, out=np.full(n_rec, np.inf), where=has)
    dev2 = np.where(live, (xs - np.where(has, mean_s, 0.0)) ** 2, 0.0).sum(axis=0)
    two = n > 1
    var_s = np.divide(dev2, n - 1, out=np.full(n_rec, np.inf), where=two)
    stderr = np.where(two, scale * np.sqrt(np.where(two, var_s, 0.0) / np.maximum(n, 1)), np.inf)
    levels = np.asarray(quantile_levels, dtype=np.float64)
    quant = np.full((levels.size, n_rec), np.inf)
    if levels.size and has.any():
        cols = np.nonzero(has)[0]
        quant[:, cols] = np.nanquantile(np.where(live[:, cols], losses[:, cols], np.nan), levels, axis=0)
    return Trajectories(
        steps=steps, mean=np.where(has, scale * mean_s, np.inf), stderr=stderr,
        quantile_levels=levels, quantiles=quant, finite_runs=n,
        diverged_runs=int(np.count_nonzero(valid < n_rec)), runs=runs, seed=seed,
        backend=backend)
