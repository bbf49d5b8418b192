"""The treecode (theory.cauchy_tree) against direct sums: far nodes by multipoles plus near leaves
summed directly equal the plain sum to rounding, ``TOL`` relative to sum |terms| (here 1e-15:
a few ulps of the sum of magnitudes), for clustered points, points 8 ulps apart, coincident
points, derivatives and dipoles whose offsets are 1e-20 of their positions."""
import numpy as np
import pytest

from sgdyn.theory import cauchy_tree as ct

TERMS = ct.terms_table(ct.TOL)


def tree_sum(tree, M, zh, zl, direct, derivative=False):
    """Far nodes by multipoles, near leaves by ``direct(tree positions)``."""
    stack = np.empty(256, np.int64)
    far = np.empty(tree.n_nodes, np.int64)
    near = np.empty(tree.n_nodes, np.int64)
    nf, nn = ct.traverse(zh, zl, tree.left, tree.right, tree.centre, tree.radius, ct.THETA,
                         stack, far, near)
    s = 0j
    for b in far[:nf]:
        S, T, w = ct.far_value(M, b, 0, zh, zl, tree.centre, tree.radius, TERMS)
        s += -w * w * T if derivative else w * S
    idx = np.concatenate([np.arange(tree.start[b], tree.stop[b]) for b in near[:nn]] or [[]]).astype(int)
    return s + direct(idx), nf, nn


def clustered(rng, n):
    """Slow-mode-like poles 1e-12..0.1 below 1, a cluster 8 ulps apart at 0.5, a complex ring."""
    a = 1 - np.geomspace(1e-12, 0.1, n // 3) + 1e-6j * rng.normal(size=n // 3)
    b = 0.5 + 8 * np.finfo(float).eps * 0.5 * np.arange(n // 3)
    c = 0.3 * np.exp(2j * np.pi * rng.random(n - 2 * (n // 3)))
    return np.concatenate([a, b, c])


@pytest.mark.parametrize("leaf", [1, 16])
def test_sums_and_derivatives_equal_the_direct_sums(rng, leaf):
    n = 3000
    x = clustered(rng, n)
    rho = rng.normal(size=n) + 1j * rng.normal(size=n)
    tree = ct.build(x, leaf=leaf)
    xt, rt = x[tree.perm], rho[tree.perm]
    M = ct.moments(tree, xt, np.zeros(n, complex), rt[:, None])
    used_far = 0
    for g in list(rng.integers(0, n, 40)) + [n // 3 + 5]:
        zh, zl = x[g], 1e-17 + 3e-18j            # next to a point, offset below its ulp
        diff = (zh - x) + zl
        for deriv in (False, True):
            terms = -rho / diff ** 2 if deriv else rho / diff
            got, nf, _ = tree_sum(tree, M, zh, zl,
                                  lambda i: np.sum((-rt[i] / ((zh - xt[i]) + zl) ** 2) if deriv
                                                   else rt[i] / ((zh - xt[i]) + zl)), deriv)
            assert abs(got - np.sum(terms)) <= 1e-15 * np.sum(np.abs(terms))
            used_far += nf
    assert used_far > 0


def test_dipoles_with_tiny_offsets(rng):
    """Pairs (x_i, x_i + e_i), |e_i| ~ 1e-20 |x_i|: ``1/(z - x) - 1/(z - x - e)`` by multipoles
    equals ``-e / ((z - x)(z - x - e))`` summed directly."""
    n = 2000
    x = clustered(rng, n)
    e = 1e-20 * (rng.normal(size=n) + 1j * rng.normal(size=n))
    e[::97] = 1e-3                                  # a few roots far from their poles
    tree = ct.build(x)
    xt, et = x[tree.perm], e[tree.perm]
    rad = ct.radii_with(tree.start, tree.stop, tree.left, tree.right, tree.centre, tree.radius,
                        xt, np.zeros(n, complex), et)
    assert np.all(rad >= tree.radius)
    M = ct.dipole_moments(tree, xt, np.zeros(n, complex), et, rad)
    dtree = ct.Tree(tree.perm, tree.start, tree.stop, tree.left, tree.right, tree.centre, rad,
                    tree.levels, tree.parent)
    # an update of a few dipoles, in place, equals the moments computed afresh
    moved = np.zeros(n, bool)
    moved[::301] = True
    et2 = np.where(moved, 2 * et + 1e-9, et)
    rad2 = ct.radii_with(tree.start, tree.stop, tree.left, tree.right, tree.centre, tree.radius,
                         xt, np.zeros(n, complex), et2)
    fresh = ct.dipole_moments(tree, xt, np.zeros(n, complex), et2, rad2)
    updated = ct.dipole_moments(tree, xt, np.zeros(n, complex), et2, rad2, update=(M.copy(), moved))
    assert np.array_equal(updated, fresh)
    for z in [0.7 + 0.1j, 0.98 + 0.0j, 0.5 - 1e-9j, 1.2j]:
        terms = -e / ((z - x) * (z - x - e))
        got, nf, _ = tree_sum(dtree, M, z, 0j,
                              lambda i: np.sum(-et[i] / ((z - xt[i]) * (z - xt[i] - et[i]))))
        assert nf > 0
        assert abs(got - np.sum(terms)) <= 1e-15 * np.sum(np.abs(terms))


def test_coincident_points_and_one_leaf():
    x = np.full(100, 0.25 + 0j)
    tree = ct.build(x, leaf=4)
    assert tree.n_nodes == 1 and tree.radius[0] == 0.0
    whole = ct.build(np.linspace(0, 1, 50) + 0j, leaf=50)
    assert whole.n_nodes == 1 and whole.left[0] == -1
