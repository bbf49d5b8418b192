"""Device code of the CUDA backend: the one module that imports ``numba.cuda`` and its random
number generators (the CUDA target is moving from numba's built-in ``numba.cuda`` to the
``numba-cuda`` package, which takes over ``from numba import cuda``; only this file would change).

Layout and parallelism. One thread per run. A run's work per step (``b`` samples of ``N`` features,
two passes each, then the update) is a sequential chain, while runs never talk to each other, so a
thread per run needs no synchronisation inside a step and keeps the random stream of a run in one
generator. The state ``e, v, g`` is stored ``(N, runs)`` so that the threads of a warp touch
consecutive addresses (coalesced). The alternative, a warp per run (lanes split the N modes and
reduce the dot product with shuffles), gives 32x more threads: it should win when the runs alone do
not fill the GPU (R = 16384 threads is a few warps per SM on an H100) and N is large. Which one is
faster is to be measured on a GPU (``benchmarks/simulate_gpu.py``); it has not been yet.

Features are never stored: sample ``i`` of a batch needs its residual ``x_i . e - eps_i`` before it
can add ``x_i * residual`` to the gradient, so each sample's ``N`` features are drawn twice from the
same generator state (the state is saved before the first pass and restored before the second).
This doubles the random-number work but keeps memory traffic at ``O(N)`` per sample instead of
``O(b N)`` scratch per run.

Data rows (``features == "data"``) are read from a device copy of the rows, so a sample is read
twice instead of drawn twice. The row of each sample follows the CPU backend's rule
(``simulate.cpu._next_row``), with this backend's generator: i.i.d. rows, a partial Fisher-Yates
shuffle of a per-run permutation (without replacement within a batch: uniform over b-subsets),
or a full Fisher-Yates shuffle whenever fewer rows than a batch remain in the epoch (shuffled
epochs). The permutations live in global memory ``(n_rows, runs)``, a run's column touched only by
its thread (coalesced across the warp when the threads read the same position).

Random numbers: xoroshiro128+, one generator per run, seeded exactly as numba's
``create_xoroshiro128p_states(runs, seed)`` seeds them (SplitMix64 of the seed; generator i is
generator i-1 jumped 2^64 draws ahead), and drawn as ``numba.cuda.random``'s ``xoroshiro128p_next``
(same bits) and ``xoroshiro128p_normal_float64`` (same uniforms; the tests check all three against
the library). The code is ours for speed: the seeding runs in nopython numba (the library runs it
in object mode under the simulator, ~5 ms a generator), and the draws keep the state in two local
variables (the library reads and writes the state array in global memory at every draw, and under
the simulator costs ~0.5 ms a draw).

``xoroshiro128p_normal_float64`` is Box-Muller on *float32* uniforms: ``|z| <= sqrt(2 * 53 ln 2)
= 8.6`` (the normal mass beyond is ~1e-17), ``E z^2 = 1`` and ``E z^4 = 3`` hold to ~1e-7 relative,
and the values lie on a grid of ~2^48 points: all far below the Monte Carlo error of any feasible
run count (relative standard error >= 1e-3 at 10^6 runs). Two departures: the log and cosine are
taken in float64 (the library's GPU code takes ``log`` of the float32 uniform in float32), and the
library's ``u1 = 0`` (probability 2^-53 a draw, so likely once in a 10^6-run, 10^3-step, d = 1000
job) gives an infinite feature, which would count as a diverged run: here ``u1 = 0`` becomes the
smallest nonzero uniform 2^-53. Rademacher signs take the top bit of one 64-bit draw (the low bits
of xoroshiro128+ are its weak ones).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, float64, njit, uint32, uint64

from sgdyn.simulate.cpu import EPOCHS, IID, WITHOUT_REPLACEMENT
from sgdyn.simulate.sketch import bin_index
from sgdyn.simulate.synthetic import GAUSSIAN_ROWS, NONE
from sgdyn.theory.methods import MAX_STATE_DIM

THREADS = 128          # threads per block (a compile-time constant: it sizes the shared array)
_EMPTY = -1.0          # shared-memory marker of a thread without a live run (losses are >= 0)

_bin_index = cuda.jit(device=True)(bin_index)


def available() -> bool:
    """A usable GPU, or numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return bool(cuda.is_available())


_SPLITMIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9),
             np.uint64(0x94D049BB133111EB))
_JUMP = (np.uint64(0xBEAC0467EBA5FACB), np.uint64(0xD86B048B86AA9922))


def _xoroshiro128p(s0, s1):
    """One xoroshiro128+ draw: ``(output, new s0, new s1)`` (``numba.cuda.random.xoroshiro128p_next``)."""
    result = s0 + s1
    s1 ^= s0
    s0 = ((s0 << uint32(55)) | (s0 >> uint32(9))) ^ s1 ^ (s1 << uint32(14))
    return result, s0, (s1 << uint32(36)) | (s1 >> uint32(28))


next_uint64 = cuda.jit(device=True)(_xoroshiro128p)
_host_next = njit(cache=True)(_xoroshiro128p)


@njit(cache=True)
def _seed_generators(runs, seed, out):
    z = seed + _SPLITMIX[0]
    z = (z ^ (z >> np.uint64(30))) * _SPLITMIX[1]
    z = (z ^ (z >> np.uint64(27))) * _SPLITMIX[2]
    s0 = s1 = z ^ (z >> np.uint64(31))
    for r in range(runs):
        out[r, 0] = s0
        out[r, 1] = s1
        j0 = j1 = np.uint64(0)     # the next generator: this one jumped ahead by 2^64 draws
        for word in _JUMP:
            for bit in range(64):
                if word & (np.uint64(1) << np.uint64(bit)):
                    j0 ^= s0
                    j1 ^= s1
                _, s0, s1 = _host_next(s0, s1)
        s0, s1 = j0, j1


def generator_states(runs: int, seed: int) -> np.ndarray:
    """``(runs, 2)`` uint64 xoroshiro128+ states, the bits of
    ``numba.cuda.random.create_xoroshiro128p_states(runs, seed)`` (fields s0, s1)."""
    out = np.empty((runs, 2), dtype=np.uint64)
    _seed_generators(runs, np.uint64(seed), out)
    return out


_TWO_PI = 2.0 * math.pi
_UNIT = 1.0 / 2.0 ** 53      # uint64 >> 11 -> [0, 1)


@cuda.jit(device=True)
def _uniform_float32(s0, s1):
    x, s0, s1 = next_uint64(s0, s1)
    return float32((x >> uint32(11)) * _UNIT), s0, s1


@cuda.jit(device=True)
def index(s0, s1, n):
    """A uniform integer in ``[0, n)`` and the new state (``simulate.rng.index``'s rule: the top 53
    bits as a uniform double times ``n``; bias <= n / 2^53)."""
    x, s0, s1 = next_uint64(s0, s1)
    return min(int((x >> uint32(11)) * _UNIT * n), n - 1), s0, s1


@cuda.jit(device=True)
def normal(s0, s1):
    """A standard normal and the new state: ``xoroshiro128p_normal_float64``'s Box-Muller on the same
    float32 uniforms, but ``u1 = 0`` -> 2^-53."""
    u1, s0, s1 = _uniform_float32(s0, s1)
    u2, s0, s1 = _uniform_float32(s0, s1)
    if u1 == 0:
        u1 = float32(_UNIT)
    # float64 from here on (the library takes a float32 log on the GPU; numpy would keep float32
    # in the simulator)
    return math.sqrt(-2.0 * math.log(float64(u1))) * math.cos(_TWO_PI * float64(u2)), s0, s1


@cuda.jit(device=True)
def feature(s0, s1, rademacher):
    """One standardized feature component z (E z = 0, E z^2 = 1) and the new state."""
    if rademacher:
        x, s0, s1 = next_uint64(s0, s1)
        return (1.0 if (x >> uint32(63)) != uint64(0) else -1.0), s0, s1
    return normal(s0, s1)


@cuda.jit(device=True)
def _projected_gradient(s0, s1, r, sqrt_lam, batch, sigma, p, g):
    """``g[:, r]``, Gaussian features, drawn exactly in law from ``2b + n`` normals (the derivation
    is ``simulate.features.projected_gradient``'s): ``g = sqrt(lam) (A uhat + C (w - (w . uhat) uhat))``
    with ``uhat = u / |u|``, ``u = sqrt(lam) p`` (``p[:, r]`` the gradient point). The ``n``
    normals ``w`` are drawn twice from the same state (for ``w . uhat``, then for ``g``) instead of
    being stored."""
    n = p.shape[0]
    norm = 0.0
    for k in range(n):
        norm += sqrt_lam[k] * sqrt_lam[k] * p[k, r] * p[k, r]
    norm = math.sqrt(norm)
    a = 0.0
    c2 = 0.0
    for i in range(batch):
        z, s0, s1 = normal(s0, s1)
        y, s0, s1 = normal(s0, s1)
        c = norm * z - sigma * y
        a += c * z
        c2 += c * c
    a /= batch
    c = math.sqrt(c2) / batch
    inv_norm = 1.0 / norm if norm > 0.0 else 0.0
    start0, start1 = s0, s1
    wu = 0.0
    for k in range(n):
        w, s0, s1 = normal(s0, s1)
        uk = sqrt_lam[k] * p[k, r] * inv_norm if inv_norm > 0.0 else (1.0 if k == 0 else 0.0)
        wu += w * uk
    s0, s1 = start0, start1
    for k in range(n):
        w, s0, s1 = normal(s0, s1)
        uk = sqrt_lam[k] * p[k, r] * inv_norm if inv_norm > 0.0 else (1.0 if k == 0 else 0.0)
        g[k, r] = sqrt_lam[k] * (a * uk + c * (w - wu * uk))
    return s0, s1


@cuda.jit(device=True)
def _data_gradient(s0, s1, r, rows, residuals, sampling, perm, pos, batch, p, g):
    """``g[:, r] = (1/b) sum_i z_i (z_i . p - r_i)`` over the batch's rows (module docstring for how
    the rows are drawn; ``rows (n_rows, N, 1 or runs)``: one data set, or one per run); returns the
    generator state and the epoch position."""
    n_rows = rows.shape[0]
    n = p.shape[0]
    own = min(r, rows.shape[2] - 1)     # a shared data set (1 copy) or the run's own (synthetic)
    if sampling == EPOCHS and pos + batch > n_rows:
        for i in range(n_rows - 1, 0, -1):          # Fisher-Yates: a new epoch
            j, s0, s1 = index(s0, s1, i + 1)
            perm[i, r], perm[j, r] = perm[j, r], perm[i, r]
        pos = 0
    inv_b = 1.0 / batch
    for i in range(batch):
        if sampling == IID:
            row, s0, s1 = index(s0, s1, n_rows)
        elif sampling == WITHOUT_REPLACEMENT:
            j, s0, s1 = index(s0, s1, n_rows - i)
            j += i
            perm[i, r], perm[j, r] = perm[j, r], perm[i, r]
            row = perm[i, r]
        else:
            row = perm[pos, r]
            pos += 1
        dot = 0.0
        for k in range(n):
            dot += rows[row, k, own] * p[k, r]
        res = (dot - residuals[row, own]) * inv_b
        for k in range(n):
            gk = rows[row, k, own] * res
            g[k, r] = gk if i == 0 else g[k, r] + gk
    return s0, s1, pos


@cuda.jit(device=True)
def _synthetic_rows(s0, s1, r, kind, sqrt_lam, sigma, rows, residuals):
    """Run ``r``'s own data set in ``rows[:, :, r]``, ``residuals[:, r]`` (``simulate.synthetic``,
    with this backend's generator): ``n_rows x N`` normals then ``n_rows`` normals; Gaussian rows
    are scaled, orthogonal rows are orthonormalised by Gram-Schmidt (each column twice, for
    accuracy; ``R``'s diagonal comes out positive, so the frame is Haar) and scaled by
    ``sqrt(n_rows lambda)``, the residual projected off the frame and scaled to ``sigma^2`` mean."""
    n_rows, n = rows.shape[0], rows.shape[1]
    for i in range(n_rows):
        for k in range(n):
            z, s0, s1 = normal(s0, s1)
            rows[i, k, r] = z
    for i in range(n_rows):
        z, s0, s1 = normal(s0, s1)
        residuals[i, r] = z
    if kind == GAUSSIAN_ROWS:
        for i in range(n_rows):
            residuals[i, r] *= sigma
            for k in range(n):
                rows[i, k, r] *= sqrt_lam[k]
        return s0, s1
    for k in range(n + 1):          # column n: the residual direction
        for _ in range(2):
            for j in range(k):
                c = 0.0
                for i in range(n_rows):
                    c += rows[i, j, r] * (rows[i, k, r] if k < n else residuals[i, r])
                for i in range(n_rows):
                    if k < n:
                        rows[i, k, r] -= c * rows[i, j, r]
                    else:
                        residuals[i, r] -= c * rows[i, j, r]
        norm = 0.0
        for i in range(n_rows):
            v = rows[i, k, r] if k < n else residuals[i, r]
            norm += v * v
        # unit columns while later ones are projected on them; rows scaled at the end
        inv = 1.0 / math.sqrt(norm) if (k < n or sigma > 0.0) else 0.0
        for i in range(n_rows):
            if k < n:
                rows[i, k, r] *= inv
            else:
                residuals[i, r] *= inv * math.sqrt(float64(n_rows)) * sigma
    for i in range(n_rows):
        for k in range(n):
            rows[i, k, r] *= math.sqrt(float64(n_rows)) * sqrt_lam[k]
    return s0, s1


@cuda.jit(device=True)
def _sgd_step(s0, s1, r, ti, sqrt_lam, lam, F, K, G, batch, pre, sigma, rademacher, projected,
              data, rows, residuals, sampling, perm, pos, X, p, g):
    """One step of run r with the method's matrices of step ``ti``; returns the new population loss
    ``1/2 sum lam e^2 + sigma^2/2`` (``sigma^2``: the label noise, the mean squared residual for
    data rows), the generator state and the epoch position ``pos``.

    ``p = G x`` per mode (the gradient point), ``g = (1/b) sum_i x_i (x_i . p - eps_i)`` with
    ``x_i = sqrt(lam) z_i``, then ``x <- F x + K pre g``. ``projected``: Gaussian ``g`` drawn in
    law by ``_projected_gradient``, not per sample. ``data``: the samples are rows of ``rows``
    (``_data_gradient``).
    """
    n = X.shape[0]
    d = X.shape[1]
    for k in range(n):
        acc = 0.0
        for j in range(d):
            acc += G[ti, j] * X[k, j, r]
        p[k, r] = acc
    inv_b = 1.0 / batch
    if data:
        s0, s1, pos = _data_gradient(s0, s1, r, rows, residuals, sampling, perm, pos, batch, p, g)
    elif projected:
        s0, s1 = _projected_gradient(s0, s1, r, sqrt_lam, batch, sigma, p, g)
    else:
        for i in range(batch):
            eps = 0.0
            if sigma > 0.0:
                eps, s0, s1 = normal(s0, s1)
                eps *= sigma
            start0, start1 = s0, s1
            dot = 0.0
            for k in range(n):
                z, s0, s1 = feature(s0, s1, rademacher)
                dot += sqrt_lam[k] * z * p[k, r]
            # replay the same N features for the gradient instead of storing them
            s0, s1 = start0, start1
            res = (dot - eps) * inv_b
            for k in range(n):
                z, s0, s1 = feature(s0, s1, rademacher)
                gk = sqrt_lam[k] * z * res
                g[k, r] = gk if i == 0 else g[k, r] + gk
    loss = 0.0
    new = cuda.local.array(MAX_STATE_DIM, float64)
    for k in range(n):
        gk = pre[k] * g[k, r]
        for j in range(d):
            acc = K[ti, j] * gk
            for m in range(d):
                acc += F[ti, j, m] * X[k, m, r]
            new[j] = acc
        for j in range(d):
            X[k, j, r] = new[j]
        loss += lam[k] * X[k, 0, r] * X[k, 0, r]
    return 0.5 * loss + 0.5 * sigma * sigma, s0, s1, pos


@cuda.jit(device=True)
def _block_moments(values, j, block, blk_n, blk_mean, blk_root):
    """Count, mean and root of the sum of squared deviations (``sqrt(M2)``) of the block's live
    losses, by two passes over shared memory on data shifted by the first live loss (no
    cancellation, unlike a sum of squares; equal losses give M2 = 0 exactly), the deviations scaled
    by their largest size (no overflow for losses up to the 1e200 guard)."""
    count = 0
    shift = 0.0
    total = 0.0
    scale = 0.0
    for i in range(THREADS):
        if values[i] >= 0.0:
            if count == 0:
                shift = values[i]
            count += 1
            total += values[i] - shift
            scale = max(scale, abs(values[i] - shift))
    offset = total / count if count > 0 else 0.0
    if scale == 0.0:
        scale = 1.0
    m2 = 0.0
    for i in range(THREADS):
        if values[i] >= 0.0:
            m2 += ((values[i] - shift - offset) / scale) ** 2
    blk_n[j, block] = count
    blk_mean[j, block] = shift + offset
    blk_root[j, block] = scale * math.sqrt(m2)


@cuda.jit(device=True)
def record(j, loss, live, blk_n, blk_mean, blk_root, log10_lo, bins_per_decade, hist, minimum,
           maximum):
    """Reduce the block's live losses at recorded step j into (count, mean, sqrt(M2)) and add them to
    the step's log-histogram and extremes. Every thread of the block must call it (it syncs)."""
    values = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    values[tid] = loss if live else _EMPTY
    cuda.syncthreads()
    if tid == 0:
        _block_moments(values, j, cuda.blockIdx.x, blk_n, blk_mean, blk_root)
    if live:
        cuda.atomic.add(hist, (j, _bin_index(loss, log10_lo, bins_per_decade, hist.shape[1])), 1)
        cuda.atomic.min(minimum, j, loss)
        cuda.atomic.max(maximum, j, loss)
    cuda.syncthreads()   # shared memory is reused at the next recorded step


@cuda.jit
def sgd_kernel(states, sqrt_lam, lam, e0, x0, F, K, G, stride, batch, pre, sigma, rademacher,
               projected, data, rows, residuals, synthetic, sampling, perm, recorded, guard, X, p, g, blk_n,
               blk_mean, blk_root, log10_lo, bins_per_decade, hist, minimum, maximum, diverged):
    """Run ``recorded[-1]`` steps of every run and ``record`` the losses at the recorded steps. A
    run whose loss passes ``guard`` stops and is counted in ``diverged``; it takes no further part
    in the statistics. The method's matrices and the batch are read at step ``t * stride``.
    ``data``: samples are rows of ``rows`` (residuals ``residuals``) drawn as ``sampling`` says,
    with ``perm`` ``(n_rows, runs)`` the runs' permutations (without replacement, epochs);
    ``synthetic``: each run first draws its own rows into ``rows[:, :, r]`` (``_synthetic_rows``)."""
    r = cuda.grid(1)
    n_modes, d, runs = X.shape
    live = r < runs
    loss = 0.0
    s0 = uint64(0)
    s1 = uint64(0)
    if live:
        s0 = states[r, 0]
        s1 = states[r, 1]
        if synthetic != NONE:
            s0, s1 = _synthetic_rows(s0, s1, r, synthetic, sqrt_lam, sigma, rows, residuals)
        for k in range(n_modes):
            for i in range(d):
                X[k, i, r] = x0[i] * e0[k]
            loss += lam[k] * X[k, 0, r] * X[k, 0, r]
        loss = 0.5 * loss + 0.5 * sigma * sigma
        if data and sampling != IID:
            for i in range(rows.shape[0]):
                perm[i, r] = i
    pos = rows.shape[0]              # epochs: the first batch shuffles
    steps = recorded[recorded.shape[0] - 1]
    j = 0
    for t in range(steps + 1):
        if j < recorded.shape[0] and t == recorded[j]:   # every thread of the block branches together
            record(j, loss, live, blk_n, blk_mean, blk_root, log10_lo, bins_per_decade, hist,
                   minimum, maximum)
            j += 1
        if t == steps:
            break
        if live:
            ti = t * stride
            loss, s0, s1, pos = _sgd_step(s0, s1, r, ti, sqrt_lam, lam, F, K, G, batch[ti], pre,
                                          sigma, rademacher, projected, data, rows, residuals,
                                          sampling, perm, pos, X, p, g)
            if not loss < guard:
                live = False
                cuda.atomic.add(diverged, 0, 1)


@cuda.jit
def merge_kernel(blk_n, blk_mean, blk_root, maximum, out_n, out_mean, out_m2):
    """Per recorded step, merge the blocks' (count, mean, sqrt(M2)) by Chan, Golub and LeVeque's
    pairwise update, in units of the step's largest loss (so squares stay below 1); ``out_m2`` is
    ``M2 / maximum^2``."""
    j = cuda.grid(1)
    if j >= blk_n.shape[0]:
        return
    scale = maximum[j] if 0.0 < maximum[j] < math.inf else 1.0
    n = 0.0
    mean = 0.0
    m2 = 0.0
    for b in range(blk_n.shape[1]):
        nb = float64(blk_n[j, b])
        if nb > 0.0:
            total = n + nb
            delta = blk_mean[j, b] / scale - mean
            mean += delta * nb / total
            m2 += (blk_root[j, b] / scale) ** 2 + delta * delta * n * nb / total
            n = total
    out_n[j] = n
    out_mean[j] = mean * scale
    out_m2[j] = m2


def to_device(array):
    return cuda.to_device(array)


def blocks_for(count: int) -> int:
    return max(1, math.ceil(count / THREADS))
