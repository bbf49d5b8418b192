"""A plain numpy simulator (textbook momentum form, one run at a time) that replays the kernel's
random draws: the independent implementation the numba kernel is checked against."""
from __future__ import annotations

import numpy as np

from sgdyn.simulate.cpu import OVERFLOW_GUARD
from sgdyn.simulate.features import replay, replay_projected, sampling_inputs


def reference_run(spec, run):
    """Losses at ``spec.recorded_steps`` of run ``run`` (up to where the guard stops it)."""
    kind, sqrt_lam, sigma, rows, residuals = sampling_inputs(spec)
    projected = spec.sampler == "projected"
    if projected:
        pairs, ws = replay_projected(np.uint64(spec.seed), run, spec.steps, spec.batch, sqrt_lam.size)
    else:
        feats, eps = replay(np.uint64(spec.seed), run, spec.steps, spec.batch, kind, sqrt_lam, sigma,
                            rows, residuals)
    lam = spec.eigenvalues
    floor = 0.5 * spec.label_noise
    e = np.array(spec.initial_error, dtype=np.float64)
    v = np.zeros_like(e)
    curve = [0.5 * lam @ e ** 2 + floor]
    for t in range(spec.steps):
        p = e + spec.beta * v if spec.nesterov else e
        if projected:
            g = _projected_gradient(sqrt_lam, sigma, p, pairs[t], ws[t])
        else:
            x = feats[t]                                     # (batch, N)
            g = x.T @ (x @ p - eps[t]) / spec.batch          # v <- beta v - alpha g, w <- w + v
        v = spec.beta * v - spec.alpha * g
        e = e + v
        loss = 0.5 * lam @ e ** 2 + floor
        if not loss < OVERFLOW_GUARD:
            break
        curve.append(loss)
    curve = np.array(curve)
    rec = spec.recorded_steps
    return curve[rec[rec < curve.size]]


def _projected_gradient(sqrt_lam, sigma, p, pairs, w):
    """The batch gradient from the split of each sample along u = sqrt(lambda) p (see
    ``simulate.features.projected_gradient``), written with numpy."""
    u = sqrt_lam * p
    norm = np.linalg.norm(u)
    uhat = u / norm
    z, eps = pairs[:, 0], sigma * pairs[:, 1]
    c = norm * z - eps
    along = np.mean(c * z)
    across = np.sqrt(np.sum(c ** 2)) / len(z) * (w - (w @ uhat) * uhat)
    return sqrt_lam * (along * uhat + across)
