"""Per-run random streams for the numba kernels: xoshiro256** seeded by splitmix64 from
``(seed, run index)``.

Why not ``np.random`` inside the kernel: numba keeps one generator state per thread, so with
``prange`` the numbers a run sees depend on which thread ran it and what that thread drew before;
a 32-bit ``np.random.seed`` per run would also make streams of different runs collide after
~2^16 runs. Here each run owns a 256-bit state derived from the 64-bit key ``(seed, run)``, so a
run's numbers depend only on ``(seed, run)``: the same whatever the thread count or chunking.

Sources: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2021), for
xoshiro256** and splitmix64; Marsaglia & Bray (1964) for the polar method of normal deviates.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_M53 = 1.0 / 9007199254740992.0   # 2^-53: a uniform double from the top 53 bits


@njit(cache=True, inline="always")
def _splitmix64(x):
    """One splitmix64 step: returns (next counter, output)."""
    x = x + _GOLDEN
    z = x
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return x, z ^ (z >> np.uint64(31))


@njit(cache=True)
def seed_stream(seed, run, state):
    """Fill ``state`` (4 uint64) with the stream of run ``run`` under ``seed``."""
    x, key = _splitmix64(np.uint64(seed))
    x = key ^ np.uint64(run)
    for i in range(4):
        x, state[i] = _splitmix64(x)


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_u64(s):
    """xoshiro256**: the next 64 random bits; advances ``s`` in place."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True, inline="always")
def uniform(s):
    """Uniform double in [0, 1)."""
    return float(next_u64(s) >> np.uint64(11)) * _TWO_M53


@njit(cache=True, inline="always")
def index(s, n):
    """Uniform integer in [0, n) (bias <= n / 2^53, far below any Monte Carlo error)."""
    return min(int(uniform(s) * n), n - 1)


@njit(cache=True, inline="always")
def normal_pair(s):
    """Two independent standard normals (Marsaglia's polar method)."""
    while True:
        u = 2.0 * uniform(s) - 1.0
        v = 2.0 * uniform(s) - 1.0
        r = u * u + v * v
        if 0.0 < r < 1.0:
            f = np.sqrt(-2.0 * np.log(r) / r)
            return u * f, v * f


@njit(cache=True, inline="always")
def fill_normal(s, out):
    """``out[:] = `` i.i.d. standard normals, drawn in pairs (the last one of an odd count is
    discarded, so the draw order is fixed by ``out.size`` alone)."""
    n = out.size
    for k in range(0, n - 1, 2):
        out[k], out[k + 1] = normal_pair(s)
    if n % 2:
        out[n - 1] = normal_pair(s)[0]


@njit(cache=True, inline="always")
def fill_rademacher(s, out):
    """``out[:] = `` i.i.d. signs +-1, 64 per random word."""
    bits = np.uint64(0)
    for k in range(out.size):
        if k % 64 == 0:
            bits = next_u64(s)
        out[k] = 1.0 - 2.0 * float(bits & np.uint64(1))
        bits >>= np.uint64(1)


@njit(cache=True, inline="always")
def shuffle(s, perm):
    """Fisher-Yates: a uniform permutation of ``perm`` in place."""
    for i in range(perm.size - 1, 0, -1):
        j = index(s, i + 1)
        perm[i], perm[j] = perm[j], perm[i]
