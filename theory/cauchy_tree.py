"""Far-field Cauchy sums ``sum_i rho_i / (z - x_i)`` over many points in the complex plane by
multipole expansions on a kd-tree (a treecode: Barnes & Hut, Nature 1986, with the complex
multipole expansions of Greengard & Rokhlin, J. Comput. Phys. 1987).

**Expansion.** A node of the tree holds the points ``x_i`` of a disc (centre ``C``, radius ``r``).
For a target with ``|z - C| >= r / THETA`` and ``w = 1 / (z - C)``, ``x = r w`` (``|x| <= THETA``)::

    sum_i rho_i / (z - x_i) = w sum_p m_p x^p,       m_p = sum_i rho_i ((x_i - C) / r)^p,
    d/dz of it              = -w^2 sum_p (p + 1) m_p x^p.

The moments are scaled by ``r^p`` so that neither they nor the powers of ``x`` under- or
overflow, whatever the node's size (poles of slow modes sit 1e-8 from 1 and 1e-12 apart). The
series is cut one term after ``|x|^K`` falls below ``TOL`` (K <= P = ``ORDER``): the truncation
error is at most ``TOL / (1 - THETA)`` times ``sum_i |rho_i| |w|`` (times ``|x|`` for dipoles,
whose series starts at p = 1), i.e. at the level of the rounding of a direct sum of the same
terms.

**Dipoles.** A pair (pole ``lambda_i``, root ``mu_i = lambda_i + e_i``) contributes
``1/(z - lambda_i) - 1/(z - mu_i)``; its moments ``a^p - b^p`` (``a, b`` the scaled offsets) are
accumulated as ``D_p = a D_(p-1) + b^(p-1) (a - b)`` from the exact ``a - b = -e_i / r``, so a
root 1e-20 from its pole does not lose its contribution to cancellation.

Targets are evaluated one by one (``traverse``: the far nodes and the near leaves of a target);
the near field is left to the caller, who knows how to sum it exactly (anchored differences,
refined solves). Cost per target O(P log n + leaf work) for a tree built once in O(n log n).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

__all__ = ["Tree", "build", "moments", "dipole_moments", "radii_with", "traverse", "far_point",
           "series", "far_value", "terms_table",
           "LEAF", "THETA", "ORDER"]

LEAF = 16          # points per leaf
THETA = 0.5        # a node is far from z when r / |z - C| <= THETA
ORDER = 56         # THETA^ORDER < 1e-17
TOL = 1e-17        # truncation of the series, relative to sum |rho| |w|


@dataclass(frozen=True)
class Tree:
    """A kd-tree over complex points: ``perm`` lists the points in tree order; node ``b`` holds
    ``perm[start[b]:stop[b]]``, its children are ``left[b], right[b]`` (-1 at leaves), its disc
    ``centre[b], radius[b]`` (the centre of its bounding box; the radius covers its points and
    its children's discs). Nodes are numbered breadth first, a level after another."""

    perm: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    left: np.ndarray
    right: np.ndarray
    centre: np.ndarray
    radius: np.ndarray
    levels: np.ndarray     # node b is at depth l for levels[l] <= b < levels[l + 1]
    parent: np.ndarray     # -1 at the root

    @property
    def parts(self) -> tuple:
        return self.start, self.stop, self.left, self.right, self.centre, self.radius

    @property
    def n_nodes(self) -> int:
        return int(self.start.size)


@njit(cache=True)
def _build(xr, xi, leaf, perm, start, stop, left, right, centre, radius):
    n = xr.size
    for i in range(n):
        perm[i] = i
    start[0] = 0
    stop[0] = n
    count = 1
    b = 0
    while b < count:        # nodes are created in breadth-first order: children after parents
        s, e = start[b], stop[b]
        rmin, rmax, imin, imax = np.inf, -np.inf, np.inf, -np.inf
        for t in range(s, e):
            i = perm[t]
            rmin = min(rmin, xr[i])
            rmax = max(rmax, xr[i])
            imin = min(imin, xi[i])
            imax = max(imax, xi[i])
        cr = 0.5 * (rmin + rmax)
        ci = 0.5 * (imin + imax)
        rad = 0.0
        for t in range(s, e):
            i = perm[t]
            rad = max(rad, np.hypot(xr[i] - cr, xi[i] - ci))
        centre[b] = complex(cr, ci)
        radius[b] = rad
        left[b] = -1
        right[b] = -1
        if e - s > leaf and rad > 0.0:
            # sliding midpoint: split the longer side at its middle (a leaf never straddles a
            # gap between clusters, as a median split would); an empty side takes the median
            wide = rmax - rmin >= imax - imin
            key = xr if wide else xi
            mid = 0.5 * (rmin + rmax) if wide else 0.5 * (imin + imax)
            sub = perm[s:e].copy()
            m = s
            for t in range(e - s):
                if key[sub[t]] < mid:
                    perm[m] = sub[t]
                    m += 1
            r = m
            for t in range(e - s):
                if not key[sub[t]] < mid:
                    perm[r] = sub[t]
                    r += 1
            if m == s or m == e:
                order = np.argsort(key[sub], kind="mergesort")
                for t in range(e - s):
                    perm[s + t] = sub[order[t]]
                m = s + (e - s) // 2
            left[b] = count
            start[count], stop[count] = s, m
            right[b] = count + 1
            start[count + 1], stop[count + 1] = m, e
            count += 2
        b += 1
    return count


def build(points, leaf: int | None = None) -> Tree:
    """The kd-tree of ``points`` (complex, (n,)): sliding-midpoint splits of the longer side of
    each node's bounding box (Maneewongvatana & Mount 1999), down to ``leaf`` points (default
    ``LEAF``) or coincident points."""
    leaf = LEAF if leaf is None else int(leaf)
    z = np.asarray(points, dtype=complex).ravel()
    n = z.size
    cap = max(1, 2 * n + 1)          # a binary tree with non-empty nodes has at most 2n - 1
    perm = np.empty(n, np.int64)
    start, stop, left, right = (np.empty(cap, np.int64) for _ in range(4))
    centre = np.empty(cap, complex)
    radius = np.empty(cap)
    if n == 0:
        return Tree(perm, start[:0], stop[:0], left[:0], right[:0], centre[:0], radius[:0],
                    np.zeros(1, np.int64), start[:0])
    m = _build(np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag), leaf, perm, start,
               stop, left, right, centre, radius)
    start, stop, left, right, centre = (a[:m].copy() for a in (start, stop, left, right, centre))
    radius = radius[:m].copy()
    _cover(left, right, centre, radius)
    depth = np.zeros(m, np.int64)
    parent = np.full(m, -1, np.int64)
    inner = np.nonzero(left >= 0)[0]
    parent[left[inner]] = parent[right[inner]] = inner
    for b in inner:                     # parents precede their children
        depth[left[b]] = depth[right[b]] = depth[b] + 1
    levels = np.searchsorted(depth, np.arange(depth.max() + 2)).astype(np.int64)
    return Tree(perm, start, stop, left, right, centre, radius, levels, parent)


@njit(cache=True)
def _cover(left, right, centre, radius):
    """Parents' radii raised to cover their children's discs, ``max(own, |C_child - C| +
    r_child)`` (bottom-up: children follow parents), in place."""
    for b in range(left.size - 1, -1, -1):
        if left[b] >= 0:
            for ch in (left[b], right[b]):
                radius[b] = max(radius[b], abs(centre[ch] - centre[b]) + radius[ch])


@njit(cache=True)
def radii_with(start, stop, left, right, centre, radius, xh, xl, e):
    """Node radii that also cover the points ``x + e`` (``x = xh + xl`` unevaluated, all in tree
    order; ``|x + e - C| = |(xh - C) + (xl + e)|`` keeps an offset e far below the ulp of x):
    leaves directly, parents by ``_cover``."""
    out = radius.copy()
    for b in range(start.size):
        if left[b] < 0:
            c = centre[b]
            for t in range(start[b], stop[b]):
                out[b] = max(out[b], abs((xh[t] - c) + (xl[t] + e[t])))
    _cover(left, right, centre, out)
    return out


@njit(cache=True)
def _binomials(order):
    B = np.zeros((order, order))
    for p in range(order):
        B[p, 0] = 1.0
        for k in range(1, p + 1):
            B[p, k] = B[p - 1, k - 1] + (B[p - 1, k] if k < p else 0.0)
    return B


@njit(cache=True, parallel=True)
def _upward(M, left, right, centre, radius, levels, dirty):
    """Moments of the internal nodes from their children's, level by level from the deepest
    (M2M): ``m_p = sum_k C(p, k) z0^(p-k) s^k m'_k`` with ``z0 = (C' - C) / r``, ``s = r' / r``;
    the radii cover the children's discs (``|C' - C| + r' <= r``), so every term is bounded by
    the sum of |charges| and the shift loses nothing to cancellation."""
    nc, order = M.shape[1], M.shape[2]
    B = _binomials(order)
    for lv in range(levels.size - 2, -1, -1):
        for b in prange(levels[lv], levels[lv + 1]):
            if left[b] < 0 or not dirty[b]:
                continue
            r = radius[b]
            for c in range(nc):
                for p in range(order):
                    M[b, c, p] = 0.0
            zp = np.empty(order, np.complex128)
            ck = np.empty(order, np.complex128)
            for ch in (left[b], right[b]):
                if r > 0.0:
                    z0 = (centre[ch] - centre[b]) / r
                    sc = radius[ch] / r
                else:
                    z0 = 0.0j
                    sc = 0.0
                zp[0] = 1.0
                for p in range(1, order):
                    zp[p] = zp[p - 1] * z0
                for c in range(nc):
                    sk = 1.0
                    for k in range(order):
                        ck[k] = M[ch, c, k] * sk
                        sk *= sc
                    for p in range(order):
                        acc = 0.0j
                        for k in range(p + 1):
                            acc += B[p, k] * zp[p - k] * ck[k]
                        M[b, c, p] += acc


@njit(cache=True, parallel=True)
def _leaf_moments(start, stop, left, centre, radius, xh, xl, rho, order):
    nb = start.size
    nc = rho.shape[1]
    M = np.zeros((nb, nc, order), np.complex128)
    for b in prange(nb):
        if left[b] >= 0:
            continue
        c0 = centre[b]
        s = 1.0 / radius[b] if radius[b] > 0.0 else 0.0
        for t in range(start[b], stop[b]):
            a = ((xh[t] - c0) + xl[t]) * s
            for c in range(nc):
                v = rho[t, c]
                if v == 0.0:
                    continue
                for p in range(order):
                    M[b, c, p] += v
                    v *= a
    return M


@njit(cache=True, parallel=True)
def _leaf_dipoles(start, stop, left, centre, radius, xh, xl, e, M, dirty):
    nb = start.size
    order = M.shape[2]
    for b in prange(nb):
        if left[b] >= 0 or not dirty[b]:
            continue
        for p in range(order):
            M[b, 0, p] = 0.0
        c0 = centre[b]
        s = 1.0 / radius[b] if radius[b] > 0.0 else 0.0
        for t in range(start[b], stop[b]):
            a = ((xh[t] - c0) + xl[t]) * s
            amb = -e[t] * s
            bb = a - amb
            D = 0.0j
            bp = 1.0 + 0.0j
            for p in range(1, order):
                D = a * D + bp * amb
                bp *= bb
                M[b, 0, p] += D


def moments(tree: Tree, xh, xl, rho, order: int = ORDER, radius=None) -> np.ndarray:
    """``M[b, c, p] = sum_{i in b} rho[i, c] ((x_i - C_b) / r_b)^p`` (``x = xh + xl`` as an
    unevaluated sum, ``x_i - C = (xh_i - C) + xl_i``; all in tree order): leaves directly,
    the rest by ``_upward``. ``radius`` defaults to the tree's."""
    r = tree.radius if radius is None else radius
    M = _leaf_moments(tree.start, tree.stop, tree.left, tree.centre, r, xh, xl,
                      np.ascontiguousarray(rho, dtype=complex), order)
    _upward(M, tree.left, tree.right, tree.centre, r, tree.levels, np.ones(tree.n_nodes, np.bool_))
    return M


def dipole_moments(tree: Tree, xh, xl, e, radius, order: int = ORDER, update=None) -> np.ndarray:
    """Moments of the dipoles ``1/(z - x_i) - 1/(z - (x_i + e_i))`` for node radii ``radius``
    that cover the ``x_i + e_i`` (``radii_with``): ``M[b, 0, p] = sum (a^p - b^p)``,
    ``a = (x_i - C) / r``, ``b = a + e_i / r``, at the leaves by ``D_p = a D_(p-1) + b^(p-1)
    (a - b)``; the rest by ``_upward``. ``update = (M, changed)`` recomputes, in place, only
    the nodes holding a point with ``changed`` set (tree order) and their ancestors (the radii
    of the others must be those ``M`` was computed with)."""
    if update is None:
        M = np.zeros((tree.n_nodes, 1, order), complex)
        dirty = np.ones(tree.n_nodes, np.bool_)
    else:
        M, changed = update
        dirty = _dirty(tree.start, tree.stop, tree.left, tree.parent, changed)
    _leaf_dipoles(tree.start, tree.stop, tree.left, tree.centre, radius, xh, xl, e, M, dirty)
    _upward(M, tree.left, tree.right, tree.centre, radius, tree.levels, dirty)
    return M


@njit(cache=True)
def _dirty(start, stop, left, parent, changed):
    dirty = np.zeros(start.size, np.bool_)
    for b in range(start.size):
        if left[b] < 0:
            for t in range(start[b], stop[b]):
                if changed[t]:
                    a = b
                    while a >= 0 and not dirty[a]:
                        dirty[a] = True
                        a = parent[a]
                    break
    return dirty


@njit(cache=True)
def traverse(zh, zl, left, right, centre, radius, theta, stack, far, near):
    """Split the tree for the target ``z = zh + zl`` (unevaluated: ``z - C = (zh - C) + zl``,
    exact to rounding for a target next to the node): nodes with ``radius <= theta |z - C|`` go to ``far``,
    the leaves of the rest to ``near``. Returns (number far, number near)."""
    nf = 0
    nn = 0
    top = 1
    stack[0] = 0
    while top > 0:
        top -= 1
        b = stack[top]
        if radius[b] <= theta * abs((zh - centre[b]) + zl):
            far[nf] = b
            nf += 1
        elif left[b] < 0:
            near[nn] = b
            nn += 1
        else:
            stack[top] = left[b]
            stack[top + 1] = right[b]
            top += 2
    return nf, nn


BINS = 1024        # terms tables over |x| in (0, THETA]


def terms_table(tol: float, order: int = ORDER) -> np.ndarray:
    """``K[i]``: terms for ``|x| <= (i + 1) THETA / BINS``, one beyond ``|x|^K < tol`` (a
    dipole's series starts at p = 1); a lookup instead of two logarithms per node."""
    top = (np.arange(BINS) + 1) * THETA / BINS
    return np.minimum(order, np.floor(np.log(tol) / np.log(top)).astype(np.int64) + 2)


@njit(cache=True, inline="always")
def far_point(b, zh, zl, centre, radius, table, order):
    """``(w, x, K)`` of node b at ``z = zh + zl``: ``w = 1 / ((zh - C_b) + zl)``, ``x = r_b w``
    and the number of terms from ``table`` (``terms_table``; all of ``order`` beyond THETA)."""
    w = 1.0 / ((zh - centre[b]) + zl)
    x = radius[b] * w
    i = int(abs(x) * (BINS / THETA))
    K = table[i] if i < BINS else order
    return w, x, K


@njit(cache=True, inline="always")
def series(M, b, c, x, K, deriv):
    """``(S, T) = (sum_p M[b, c, p] x^p, sum_p (p + 1) M[b, c, p] x^p)`` over p < K (T = 0
    unless ``deriv``): node b's sum is ``w S``, its derivative ``-w^2 T``."""
    s = 0.0j
    t = 0.0j
    if deriv:
        for p in range(K - 1, -1, -1):
            s = s * x + M[b, c, p]
            t = t * x + (p + 1) * M[b, c, p]
    else:
        for p in range(K - 1, -1, -1):
            s = s * x + M[b, c, p]
    return s, t


@njit(cache=True, inline="always")
def far_value(M, b, c, zh, zl, centre, radius, table, deriv=True):
    """``(S, T, w)`` of node b, charge c at ``z = zh + zl`` (``far_point`` and ``series``)."""
    w, x, K = far_point(b, zh, zl, centre, radius, table, M.shape[2])
    S, T = series(M, b, c, x, K, deriv)
    return S, T, w
