"""CPU backend: a numba kernel running independent replicas of mini-batch SGD in parallel.

The update is the method's own description (``sgdyn.theory.methods``): per mode the state ``x``
(first component the reported iterate's error ``e_k``) moves by ``x <- F_t x + K_t p_k g_k`` with
``g`` the mini-batch gradient at the point ``G_t x``: ``g = (1/b_t) sum_i x_i (x_i . point -
eps_i)`` (``docs/theory.md``), ``p_k`` the preconditioner. Every method differs only in the
numbers ``(F, K, G, x0)`` evaluated from its matrices (per step under a schedule), so the kernel
never retypes an update rule and never runs another method than the one described. For Gaussian
features with i.i.d. batches the default ``sampler="projected"`` draws ``g`` itself, exactly in
law, from ``n + 2b`` normals (``simulate.features.projected_gradient``): a step costs about the
same at any batch size.

Runs are independent: ``prange`` over runs, each with its own random stream keyed by
``(seed, run index)`` (``simulate.rng``), so the result does not depend on the thread count or on
how runs are split into chunks (chunks only exist to report progress).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from sgdyn.simulate import rng
from sgdyn.simulate.features import draw_sample, projected_gradient, sampling_inputs
from sgdyn.simulate.spec import SAMPLINGS, SimulationSpec
from sgdyn.simulate.statistics import summarize
from sgdyn.simulate.trajectories import Trajectories

OVERFLOW_GUARD = 1e200      # as theory.dynamics: a run whose loss passes it is stopped
_CHUNKS = 20                # progress updates per simulation (at most)
_MIN_CHUNK = 64             # runs per kernel call, at least (keeps every thread busy)
IID, WITHOUT_REPLACEMENT, EPOCHS = 0, 1, 2
_SAMPLING = {"iid": IID, "without-replacement": WITHOUT_REPLACEMENT, "epochs": EPOCHS}
assert tuple(_SAMPLING) == SAMPLINGS


@njit(cache=True, inline="always")
def _next_row(s, sampling, n, perm, pos, i):
    """The row of the ``i``-th sample of a batch and the epoch position after it. Without
    replacement: a partial Fisher-Yates shuffle of ``perm`` (uniform over b-subsets whatever
    ``perm`` held); epochs: ``perm`` is reshuffled in full when fewer than the batch remain."""
    if sampling == WITHOUT_REPLACEMENT:
        j = i + rng.index(s, n - i)
        perm[i], perm[j] = perm[j], perm[i]
        return perm[i], pos
    row = perm[pos]
    return row, pos + 1


@njit(parallel=True, cache=True)
def _kernel(first_run, seed, lam, e0, F, K, G, x0, stride, batch, pre, recorded, kind, sqrt_lam,
            sigma, rows, residuals, sampling, projected, floor, guard, losses, valid):
    """Runs ``first_run .. first_run + losses.shape[0] - 1``: ``losses[r, j]`` the loss at step
    ``recorded[j]``, ``valid[r]`` how many entries are meaningful (fewer if the guard fired)."""
    n_runs, n_rec = losses.shape
    n, d = lam.size, x0.size
    steps = recorded[n_rec - 1]
    n_rows = rows.shape[0]
    for r in prange(n_runs):
        s = np.empty(4, np.uint64)
        rng.seed_stream(seed, first_run + r, s)
        X = np.empty((n, d))
        for k in range(n):
            for j in range(d):
                X[k, j] = x0[j] * e0[k]
        point = np.empty(n)
        grad = np.empty(n)
        feat = np.empty(n)
        uhat = np.empty(n)
        new = np.empty(d)
        perm = np.arange(n_rows)
        pos = n_rows                  # epochs: the first batch shuffles
        loss = floor
        for k in range(n):
            loss += 0.5 * lam[k] * X[k, 0] * X[k, 0]
        j_rec = 0
        if recorded[0] == 0:
            losses[r, 0] = loss
            j_rec = 1
        valid[r] = n_rec
        for t in range(1, steps + 1):
            ti = (t - 1) * stride
            b = batch[ti]
            for k in range(n):
                acc = 0.0
                for j in range(d):
                    acc += G[ti, j] * X[k, j]
                point[k] = acc
                grad[k] = 0.0
            if projected:
                projected_gradient(s, sqrt_lam, sigma, point, b, uhat, grad)
            else:
                if sampling == EPOCHS and pos + b > n_rows:
                    for i in range(n_rows - 1, 0, -1):      # Fisher-Yates: a new epoch
                        jj = rng.index(s, i + 1)
                        perm[i], perm[jj] = perm[jj], perm[i]
                    pos = 0
                inv_b = 1.0 / b
                for i in range(b):
                    if sampling == IID:
                        eps = draw_sample(s, kind, sqrt_lam, sigma, rows, residuals, feat)
                    else:
                        row, pos = _next_row(s, sampling, n_rows, perm, pos, i)
                        feat[:] = rows[row]
                        eps = residuals[row]
                    res = -eps
                    for k in range(n):
                        res += feat[k] * point[k]
                    res *= inv_b
                    for k in range(n):
                        grad[k] += feat[k] * res
            loss = floor
            for k in range(n):
                gk = pre[k] * grad[k]
                for j in range(d):
                    acc = K[ti, j] * gk
                    for m in range(d):
                        acc += F[ti, j, m] * X[k, m]
                    new[j] = acc
                for j in range(d):
                    X[k, j] = new[j]
                loss += 0.5 * lam[k] * X[k, 0] * X[k, 0]
            if not loss < guard:          # also catches NaN
                valid[r] = j_rec
                break
            if j_rec < n_rec and t == recorded[j_rec]:
                losses[r, j_rec] = loss
                j_rec += 1


def per_run_losses(spec: SimulationSpec, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's raw output for all runs: ``(losses (runs, n_rec), valid (runs,))``;
    ``progress(k)`` (if given) is called after each chunk of ``k`` runs."""
    recorded = spec.recorded_steps.astype(np.int64)
    losses = np.empty((spec.runs, recorded.size))
    valid = np.empty(spec.runs, np.int64)
    kind, sqrt_lam, sigma, rows, residuals = sampling_inputs(spec)
    lam = np.ascontiguousarray(spec.eigenvalues, dtype=np.float64)
    e0 = np.ascontiguousarray(spec.initial_error, dtype=np.float64)
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (spec.F, spec.K, spec.G, spec.x0)]
    chunk = max(_MIN_CHUNK, -(-spec.runs // _CHUNKS))
    for start in range(0, spec.runs, chunk):
        stop = min(spec.runs, start + chunk)
        _kernel(start, np.uint64(spec.seed), lam, e0, *arrays, spec.stride,
                np.ascontiguousarray(spec.batch, dtype=np.int64),
                np.ascontiguousarray(spec.preconditioner, dtype=np.float64), recorded,
                kind, sqrt_lam, sigma, rows, residuals, _SAMPLING[spec.sampling],
                spec.sampler == "projected", 0.5 * spec.label_noise,
                OVERFLOW_GUARD, losses[start:stop], valid[start:stop])
        if progress is not None:
            progress(stop - start)
    return losses, valid


def simulate_cpu(spec: SimulationSpec, progress=None) -> Trajectories:
    """Monte Carlo statistics of the loss for ``spec`` on the CPU (see ``SimulationSpec``)."""
    losses, valid = per_run_losses(spec, progress)
    return summarize(losses, valid, spec, "cpu")
