"""Synthetic finite data sets drawn afresh for every Monte Carlo run (inside the kernels).

A spectrum problem (eigenvalues ``lambda``, label noise ``sigma^2``) sampled without replacement
or in epochs from ``N`` points needs those ``N`` points; each run draws its own set from its own
random stream (``simulate.rng``), so memory stays one ``N x d`` set per thread, not per run, and
the runs average over data sets as well as over batches. Two laws, in the eigenbasis of the
population (``x = sqrt(lambda) * z``):

* ``"orthogonal"`` (the default): ``X = sqrt(N) Q diag(sqrt(lambda))``, ``Q`` an ``N x d`` matrix
  with Haar-random orthonormal columns (QR of a Gaussian matrix with the signs of ``R``'s diagonal
  fixed; needs ``N >= d``). The empirical second moment ``X^T X / N`` is ``diag(lambda)`` exactly:
  the data set's spectrum is the problem's, which is what the data-size SE theory assumes. Labels:
  residuals ``r = sqrt(N) sigma u``, ``u`` a Haar-random unit vector orthogonal to the columns of
  ``Q`` (needs ``N > d`` when ``sigma > 0``), so ``X^T r = 0`` (the least-squares optimum is the
  population's, ``w* = 0``) and ``mean(r^2) = sigma^2`` exactly. Averaged over ``Q`` the per-row
  fourth moments are Gaussian ones times ``N / (N + 2)``: SE noise ``tau = (N/(N+2),
  -(N-2)/(N+2))`` and label-noise term ``sigma^2 N/(N+2) H``, Gaussian up to ``O(1/N)``
  (``E[q_ik^2 q_il^2] = (1 + 2 delta_kl) / (N (N + 2))`` for the rows of a Haar frame).
* ``"gaussian"``: ``N`` i.i.d. Gaussian rows ``x_i = sqrt(lambda) z_i`` with labels ``eps_i ~
  N(0, sigma^2)`` (random design). Their empirical spectrum scatters about ``lambda`` (badly when
  ``N ~ d``: Marchenko-Pastur), and with label noise the runs fit the ``N`` labels' noise.

The loss the kernels record is the population loss ``1/2 sum lambda_k e_k^2 + sigma^2 / 2`` of
the iterate (``e = w``: the population optimum is 0); for orthogonal rows it equals the training
loss on the run's own data set, for Gaussian rows it is the test loss.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sgdyn.simulate import rng

NONE, ORTHOGONAL, GAUSSIAN_ROWS = 0, 1, 2
SYNTHETIC = {"orthogonal": ORTHOGONAL, "gaussian": GAUSSIAN_ROWS}
TEXT = {"orthogonal": "orthogonal rows (empirical spectrum = the problem's)",
        "gaussian": "i.i.d. Gaussian rows"}


def check(synthetic: str, data_size: int, modes: int, label_noise: float) -> None:
    """Refuse a synthetic data set that cannot be drawn (ValueError naming the argument)."""
    if synthetic not in SYNTHETIC:
        raise ValueError(f"synthetic must be one of {tuple(SYNTHETIC)}, got {synthetic!r}")
    if synthetic == "orthogonal":
        if data_size < modes:
            raise ValueError(f"synthetic 'orthogonal' needs data_size >= the {modes} modes (an "
                             f"N x d frame), got {data_size}; use synthetic='gaussian'")
        if label_noise > 0 and data_size == modes:
            raise ValueError(f"synthetic 'orthogonal' with label noise needs data_size > the "
                             f"{modes} modes: {data_size} rows of {modes} features are "
                             "interpolated, no residual can remain")


@njit(cache=True)
def draw(s, kind, n, sqrt_lam, sigma):
    """A data set of ``n`` rows for one run, from stream ``s``: ``(rows (n x d), residuals (n,))``
    in the population eigenbasis. Draw order: ``n`` rows of ``d`` normals (``fill_normal``), then
    (orthogonal) ``n`` normals for the residual direction or (Gaussian) ``n`` label normals."""
    d = sqrt_lam.size
    z = np.empty((n, d))
    for i in range(n):
        rng.fill_normal(s, z[i])
    res = np.empty(n)
    rng.fill_normal(s, res)
    if kind == GAUSSIAN_ROWS:
        for i in range(n):
            res[i] *= sigma
            for k in range(d):
                z[i, k] *= sqrt_lam[k]
        return z, res
    q, r = np.linalg.qr(z)
    rows = np.empty((n, d))
    scale = np.sqrt(float(n))
    for k in range(d):
        sign = 1.0 if r[k, k] >= 0.0 else -1.0       # Haar: Q D with D = sign(diag R)
        for i in range(n):
            q[i, k] *= sign
            rows[i, k] = scale * sqrt_lam[k] * q[i, k]
    if sigma == 0.0:
        res[:] = 0.0
        return rows, res
    for _ in range(2):           # the residual direction: project out the frame (twice: accuracy)
        for k in range(d):
            c = 0.0
            for i in range(n):
                c += q[i, k] * res[i]
            for i in range(n):
                res[i] -= c * q[i, k]
    norm = np.sqrt(np.sum(res * res))
    res *= scale * sigma / norm
    return rows, res
