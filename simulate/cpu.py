"""CPU backend: a numba kernel running independent replicas of mini-batch momentum SGD in parallel.

The update is the method's own description (``theory.methods``): per mode the state ``x`` (first
component the error ``e_k``) moves by ``x <- F x + K g_k`` with ``g`` the mini-batch gradient at the
point ``p_k = G x``: ``g = (1/b) sum_i x_i (x_i . p - eps_i)`` (docs/theory.md). Heavy ball,
Nesterov and plain SGD differ only in the numbers ``(F, K, G, x0)`` substituted from the symbolic
matrices, so the kernel never retypes an update rule. For Gaussian features the default
``sampler="projected"`` draws ``g`` itself, exactly in law, from ``n + 2b`` normals
(``simulate.features.projected_gradient``): a step costs about the same at any batch size.

Runs are independent: ``prange`` over runs, each with its own random stream keyed by
``(seed, run index)`` (``simulate.rng``), so the result does not depend on the thread count or on
how runs are split into chunks (chunks only exist to report progress).
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from numba import njit, prange

from sgdyn.simulate import rng
from sgdyn.simulate.features import draw_sample, projected_gradient, sampling_inputs
from sgdyn.simulate.spec import SimulationSpec
from sgdyn.simulate.statistics import summarize
from sgdyn.simulate.trajectories import Trajectories
from sgdyn.theory import methods

OVERFLOW_GUARD = 1e200      # as theory.dynamics: a run whose loss passes it is stopped
_CHUNKS = 20                # progress updates per simulation (at most)
_MIN_CHUNK = 64             # runs per kernel call, at least (keeps every thread busy)


def method_matrices(spec: SimulationSpec):
    """``(F, K, G, x0)`` of the spec's method as float arrays (sgd is heavy ball at beta = 0)."""
    m = methods.get_method("nesterov" if spec.nesterov else "heavy-ball")
    subs = {methods.alpha: spec.alpha, methods.beta: spec.beta}
    def num(M):
        return np.ascontiguousarray(np.array(M.subs(subs).evalf(), dtype=np.float64))
    return num(m.F), num(m.K)[:, 0], num(m.G)[0, :], num(m.x0)[:, 0]


@njit(parallel=True, cache=True)
def _kernel(first_run, seed, lam, e0, F, K, G, x0, batch, recorded, kind, sqrt_lam, sigma,
            rows, residuals, projected, floor, guard, losses, valid):
    """Runs ``first_run .. first_run + losses.shape[0] - 1``: ``losses[r, j]`` the loss at step
    ``recorded[j]``, ``valid[r]`` how many entries are meaningful (fewer if the guard fired)."""
    n_runs, n_rec = losses.shape
    n, d = lam.size, x0.size
    steps = recorded[n_rec - 1]
    inv_b = 1.0 / batch
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
        loss = floor
        for k in range(n):
            loss += 0.5 * lam[k] * X[k, 0] * X[k, 0]
        losses[r, 0] = loss
        j_rec = 1
        valid[r] = n_rec
        for t in range(1, steps + 1):
            for k in range(n):
                acc = 0.0
                for j in range(d):
                    acc += G[j] * X[k, j]
                point[k] = acc
                grad[k] = 0.0
            if projected:
                projected_gradient(s, sqrt_lam, sigma, point, batch, uhat, grad)
            else:
                for i in range(batch):
                    eps = draw_sample(s, kind, sqrt_lam, sigma, rows, residuals, feat)
                    res = -eps
                    for k in range(n):
                        res += feat[k] * point[k]
                    res *= inv_b
                    for k in range(n):
                        grad[k] += feat[k] * res
            loss = floor
            for k in range(n):
                for j in range(d):
                    acc = K[j] * grad[k]
                    for m in range(d):
                        acc += F[j, m] * X[k, m]
                    new[j] = acc
                for j in range(d):
                    X[k, j] = new[j]
                loss += 0.5 * lam[k] * X[k, 0] * X[k, 0]
            if not loss < guard:          # also catches NaN
                valid[r] = j_rec
                break
            if t == recorded[j_rec]:
                losses[r, j_rec] = loss
                j_rec += 1


def per_run_losses(spec: SimulationSpec, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's raw output for all runs: ``(losses (runs, n_rec), valid (runs,))``;
    ``progress(k)`` (if given) is called after each chunk of ``k`` runs."""
    F, K, G, x0 = method_matrices(spec)
    recorded = spec.recorded_steps.astype(np.int64)
    losses = np.empty((spec.runs, recorded.size))
    valid = np.empty(spec.runs, np.int64)
    kind, sqrt_lam, sigma, rows, residuals = sampling_inputs(spec)
    lam = np.ascontiguousarray(spec.eigenvalues, dtype=np.float64)
    e0 = np.ascontiguousarray(spec.initial_error, dtype=np.float64)
    chunk = max(_MIN_CHUNK, -(-spec.runs // _CHUNKS))
    for start in range(0, spec.runs, chunk):
        stop = min(spec.runs, start + chunk)
        _kernel(start, np.uint64(spec.seed), lam, e0, F, K, G, x0, spec.batch, recorded,
                kind, sqrt_lam, sigma, rows, residuals, spec.sampler == "projected",
                0.5 * spec.label_noise,
                OVERFLOW_GUARD, losses[start:stop], valid[start:stop])
        if progress is not None:
            progress(stop - start)
    return losses, valid


def simulate_cpu(spec: SimulationSpec, progress=None) -> Trajectories:
    """Monte Carlo statistics of the loss for ``spec`` on the CPU (see ``SimulationSpec``)."""
    losses, valid = per_run_losses(spec, progress)
    return summarize(losses, valid, spec, "cpu")
