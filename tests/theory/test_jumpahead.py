"""The jump-ahead route (theory.jumpahead) against independent routes: the recursion of the same
map (a numpy loop here, and the engine's kernel through ``solve``), a long-double numpy loop, the dense
eigenvalues of the coupled map, the dense fixed point, and the power-law asymptotics.

Tolerances. Both the recursion and the jump-ahead are exact up to rounding. The recursion's
rounding grows like sqrt(t) kappa eps (random per-step errors), the jump-ahead's like kappa eps
(the roots are polished with a double-double residual, so ``mu^t`` carries no t-amplified
error): with eigenvalue condition numbers kappa <= 1e4 (beta = 0.99) and t <= 5000 both stay
below ~1e-11, so ``rtol = 1e-9`` leaves two orders of margin. The long-double loop (eps = 1e-19)
is the referee where the recursion itself is the less accurate side (nearly defective maps).
"""
import numpy as np
import pytest

from sgdyn.theory.asymptotics import phases
from sgdyn.theory.dynamics import OVERFLOW_GUARD, solve
from sgdyn.theory.jumpahead import (CoupledSpectrum, JumpAhead, loss_at_steps,
                                    loss_at_steps_piecewise, state_at_step)
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.run import Run
from sgdyn.theory.system import ModeArrays, ModeSystem

RTOL = 1e-9


def recursion_curve(arr, steps):
    """``L_0 ..`` of the per-mode map in float64 (numpy), stopped at the overflow guard."""
    X = np.array(arr.X0, dtype=float)
    out = []
    for t in range(steps + 1):
        L = float(np.sum(arr.loss * X)) + arr.floor
        out.append(L)
        if not abs(L) < OVERFLOW_GUARD or t == steps:
            break
        D = float(np.sum(arr.drive * X))
        X = np.einsum("kij,kj->ki", arr.A, X) + arr.coupling * D + arr.source
    return np.array(out)


def long_double_loop(segments, steps):
    """``L_0 .. L_steps`` and the final state of a piecewise schedule [(arrays, length), ...] by the
    plain map in 80-bit arithmetic (segment i runs ``length_i`` steps, the last one runs on)."""
    X = np.asarray(segments[0][0].X0, dtype=np.longdouble)
    out = np.empty(steps + 1, dtype=np.longdouble)
    i, start = 0, 0
    for t in range(steps + 1):
        while segments[i][1] is not None and t >= start + segments[i][1] and i < len(segments) - 1:
            start += segments[i][1]
            i += 1
        arr = segments[i][0]
        out[t] = np.sum(np.asarray(arr.loss, np.longdouble) * X) + np.longdouble(arr.floor)
        if t < steps:
            D = np.sum(np.asarray(arr.drive, np.longdouble) * X)
            X = np.einsum("kij,kj->ki", np.asarray(arr.A, np.longdouble), X) + \
                np.asarray(arr.coupling, np.longdouble) * D + np.asarray(arr.source, np.longdouble)
    return out.astype(float), X.astype(float)


def random_problem(rng, n=16, label_noise=0.0, data_size=None, multiplicity=None):
    lam = np.sort(rng.uniform(0.01, 1.0, n))[::-1]
    p = Problem.from_arrays(lam, rng.uniform(0.1, 1.0, n), label_noise=label_noise,
                            data_size=data_size)
    return p if multiplicity is None else p.replace(multiplicity=multiplicity)


CASES = {
    # name: (method, beta, alpha, batch, noise, label_noise, data_size, multiplicity)
    "heavy-ball-0.5": ("heavy-ball", 0.5, 0.12, 3, GAUSSIAN, 0.0, None, None),
    "heavy-ball-0.99-complex-roots": ("heavy-ball", 0.99, 0.0015, 2, GAUSSIAN, 0.0, None, None),
    "heavy-ball--0.9-label-noise": ("heavy-ball", -0.9, 0.1, 2, NoiseModel(1.0, 1.0), 0.3, None, None),
    "heavy-ball-0-nilpotent": ("heavy-ball", 0.0, 0.3, 4, GAUSSIAN, 0.2, None, None),
    "nesterov-0.7-without-replacement": ("nesterov", 0.7, 0.07, 5, GAUSSIAN, 0.2, 50, None),
    "nesterov--0.5": ("nesterov", -0.5, 0.2, 2, NoiseModel(2.0, 0.5), 0.0, None, None),
    "sgd-multiplicity": ("sgd", 0.0, 0.1, 8, GAUSSIAN, 0.1, None, "integer"),
    "heavy-ball-0.3-quadrature-weights": ("heavy-ball", 0.3, 0.1, 8, GAUSSIAN, 0.05, 400, "real"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_agrees_with_recursion_at_every_step(name, rng):
    method, beta, alpha, batch, noise, sigma2, data_size, mult = CASES[name]
    w = None
    if mult == "integer":
        w = rng.integers(1, 5, 16).astype(float)
    elif mult == "real":
        w = rng.uniform(0.5, 30.0, 16)
    p = random_problem(rng, label_noise=sigma2, data_size=data_size, multiplicity=w)
    arr = ModeSystem.build(p, alpha, beta, batch, method, noise).arrays()
    T = 5000
    # the referee: the same arrays iterated in 80-bit arithmetic (a float64 loop of the A-form
    # map loses ~1e-9 by t = 2500 at beta = 0.99)
    rec, _ = long_double_loop([(arr, None)], T)
    res = loss_at_steps(arr, np.arange(T + 1))
    assert isinstance(res, JumpAhead) and not res.diverges and res.rate < 1
    assert res.steps.tolist() == list(range(T + 1)) and rec.size == T + 1
    # beta = 0.99 (eigenvalue condition ~1e4, |mu| -> 1, terms of both signs): measured 1.14e-9
    # relative by t = 3800 against the 80-bit loop of the same arrays; elsewhere < 1e-11
    np.testing.assert_allclose(res.loss, rec, rtol=2e-9 if beta > 0.9 else RTOL)
    assert np.all(res.error_estimate < 1e-10)
    np.testing.assert_allclose(res.log_loss, np.log(rec), rtol=0, atol=2e-9 if beta > 0.9 else 1e-9)
    # and the engine's own recursion kernel, which forms each mode's map before its congruence:
    # the A-form arrays' entries carry the rounding of the products (2.6e-8 against 30-digit
    # arithmetic after 5000 steps at beta = 0.99, where the kernel is within 1e-10)
    kernel = solve(Run.build(p, method, alpha=alpha, beta=beta, batch=batch, steps=T,
                             noise=noise)).loss
    np.testing.assert_allclose(res.loss, kernel, rtol=1e-7 if beta > 0.9 else RTOL)


def dense_map(arr: ModeArrays) -> np.ndarray:
    N, q = arr.X0.shape
    T = np.zeros((N * q, N * q))
    for k in range(N):
        T[k * q:(k + 1) * q, k * q:(k + 1) * q] = arr.A[k]
    return T + np.outer(np.asarray(arr.coupling).ravel(), np.asarray(arr.drive).ravel())


@pytest.mark.parametrize("method, beta", [("heavy-ball", 0.9), ("nesterov", -0.4), ("sgd", 0.0)])
def test_roots_are_the_eigenvalues_of_the_coupled_map(method, beta, rng):
    p = random_problem(rng, n=7)
    arr = ModeSystem.build(p, 0.15, beta, 2, method).arrays()
    spec = CoupledSpectrum(arr)
    ev = np.linalg.eigvals(dense_map(arr))
    assert spec.n_roots == ev.size
    # a matching in both directions: every root is an eigenvalue and vice versa
    d = np.abs(spec.roots[:, None] - ev[None, :])
    assert d.min(axis=1).max() < 1e-10 and d.min(axis=0).max() < 1e-10
    assert spec.rate == pytest.approx(np.abs(ev).max(), rel=1e-12)


def test_far_steps_fixed_point_and_a_million_steps(rng):
    """t = 10^12 with label noise is the fixed point (I - T)^-1 S (dense solve); t = 10^6 on a
    slow problem equals the recursion run through all 10^6 steps."""
    p = random_problem(rng, n=6, label_noise=0.4)
    arr = ModeSystem.build(p, 0.2, 0.6, 3).arrays()
    Y = np.linalg.solve(np.eye(arr.X0.size) - dense_map(arr), np.asarray(arr.source).ravel())
    L_inf = float(np.asarray(arr.loss).ravel() @ Y + arr.floor)
    res = loss_at_steps(arr, [10 ** 9, 10 ** 12])
    np.testing.assert_allclose(res.loss, L_inf, rtol=1e-12)
    slow = Problem.from_arrays([3e-5, 1e-5, 4e-6], [1.0, 2.0, 3.0], label_noise=0.1)
    arr = ModeSystem.build(slow, 0.3, 0.8, 1).arrays()
    T = 10 ** 6
    rec = recursion_curve(arr, T)
    res = loss_at_steps(arr, [0, 10, 1000, 10 ** 5, T])
    assert res.rate > 1 - 1e-4
    np.testing.assert_allclose(res.loss, rec[res.steps], rtol=RTOL)


@pytest.mark.parametrize("offset", [0.0, 1e-8, 1e-4])
@pytest.mark.parametrize("kind", ["gaussian-3-modes", "tau2=0-weak", "tau2=0-very-weak"])
def test_critically_damped_mode(offset, kind):
    """Heavy ball with (1 + beta - alpha lambda)^2 = 4 beta (exactly, or off by 1e-8 or 1e-4
    relative in alpha): the mode's map is (nearly) a 3x3 Jordan block; with weak noise coupling
    T's roots near it form a nearly defective cluster (condition number up to ~1e7). Referee:
    the long-double loop (the double recursion loses ~1e-12 here too)."""
    beta = 0.9
    if kind == "gaussian-3-modes":
        lam, batch, noise = np.array([0.05, 0.3, 1.0]), 10, GAUSSIAN
    else:
        lam, batch, noise = np.array([0.05]), (10 ** 3 if kind == "tau2=0-weak" else 10 ** 6), NoiseModel(1.0, 0.0)
    alpha = (1 - np.sqrt(beta)) ** 2 / lam[0] * (1 + offset)
    arr = ModeSystem.build(Problem.from_arrays(lam, np.ones(lam.size)), alpha, beta, batch,
                           noise=noise).arrays()
    spec = CoupledSpectrum(arr)
    T = 4000
    ref, _ = long_double_loop([(arr, None)], T)
    res = spec.expansion().loss(np.arange(T + 1))
    np.testing.assert_allclose(res.loss, ref, rtol=RTOL)
    if kind != "gaussian-3-modes":
        # the defective block is detected: refined solves and a circle around the cluster
        assert spec.structure.refine[0] and len(spec.clusters) == 1


def test_divergent_setting_is_a_result_not_an_overflow():
    p = Problem.power_law(nu=1.5, kappa=2.0, n=30)
    arr = ModeSystem.build(p, 2.0, 0.5, 1).arrays()
    steps = np.unique(np.geomspace(1, 10 ** 7, 60).astype(np.int64))
    res = loss_at_steps(arr, steps)
    assert res.diverges and res.rate > 1 and "diverges" in res.reason
    assert np.all(np.isfinite(res.loss)) and np.all(np.isfinite(res.log_loss))
    assert np.all(np.abs(res.loss) <= OVERFLOW_GUARD)
    assert res.overflow[-1] and not res.overflow[0]
    assert np.all(res.loss[res.overflow] == OVERFLOW_GUARD)
    # the log grows like t log(rate) once the top root dominates
    growth = np.diff(res.log_loss[-3:]) / np.diff(res.steps[-3:])
    np.testing.assert_allclose(growth, np.log(res.rate), rtol=1e-9)
    rec = recursion_curve(arr, 5000)          # stops before 1e200
    ok = res.steps < rec.size
    np.testing.assert_allclose(res.loss[ok], rec[res.steps[ok]], rtol=RTOL)


def test_piecewise_schedule_of_three_segments(rng):
    """Three segments (different alpha, beta, batch and method; the first one diverges), each
    started from the end state of the previous one, against the long-double loop that switches
    its arrays at the same steps; the first segment also against the recursion."""
    p = random_problem(rng, n=15, label_noise=0.1)
    segs = [(ModeSystem.build(p, 0.3, 0.8, 2).arrays(), 300),
            (ModeSystem.build(p, 0.1, 0.5, 8).arrays(), 200),
            (ModeSystem.build(p, 0.05, 0.3, 32, "nesterov").arrays(), None)]
    T = 1500
    ref, X_end = long_double_loop(segs, T)
    res = loss_at_steps_piecewise(segs, np.arange(T + 1))
    np.testing.assert_allclose(res.loss, ref, rtol=RTOL)
    np.testing.assert_allclose(res.loss[:301], recursion_curve(segs[0][0], 300), rtol=RTOL)
    assert not res.diverges and res.reason.count("segment") == 3 and "diverges" in res.reason
    # the same schedule with a finite last segment, and the state where it ends
    finite = segs[:2] + [(segs[2][0], 1000)]
    assert loss_at_steps_piecewise(finite, [1500]).loss[0] == pytest.approx(ref[-1], rel=RTOL)
    with pytest.raises(ValueError, match="steps"):
        loss_at_steps_piecewise(finite, [1501])
    _, X = long_double_loop([segs[1]], 200)
    np.testing.assert_allclose(state_at_step(segs[1][0], 200), X, rtol=1e-10, atol=1e-14 * np.abs(X).max())


@pytest.mark.parametrize("case", [(2.0, 4.0, 10 ** 6, 0.3, 0.3, 1, 600),
                                  (1.5, 2.5, 10 ** 8, 0.2, -0.3, 2, 1000)])
def test_power_law_asymptotics_at_1e8(case):
    """The NOISE and SWITCH cases of test_asymptotics.py at t = 1e8, within the asymptotics' own
    stated accuracy there: L_T within 5 % of the two-term asymptote, the local slope (from
    T / 1.21 and T) within 2 % of its prediction."""
    nu, kappa, n, a, b, bs, groups = case
    p = Problem.power_law_continuum(nu, kappa, n, groups)
    ph = phases(p, a, b, bs)
    T = 10 ** 8
    res = loss_at_steps(ModeSystem.build(p, a, b, bs).arrays(), [int(T / 1.21), T])
    assert res.loss[1] / ph.loss_asymptote(T) == pytest.approx(1, abs=0.05)
    Tm = T / 1.1
    predicted = -(ph.signal_asymptote(Tm) * ph.signal_exponent +
                  ph.noise_asymptote(Tm) * ph.noise_exponent) / ph.loss_asymptote(Tm)
    slope = np.log(res.loss[1] / res.loss[0]) / np.log(T / res.steps[0])
    assert slope == pytest.approx(predicted, rel=0.02)
    assert np.all(res.error_estimate < 1e-12)


@pytest.mark.parametrize("method", ["heavy-ball", "nesterov"])
def test_full_batch_has_no_coupling(method):
    """b = N without replacement: gamma = 0, the modes evolve freely (no roots at all)."""
    p = Problem.power_law(1.2, 1.0, 6).replace(data_size=16)
    arr = ModeSystem.build(p, 0.9, 0.7, 16, method).arrays()
    spec = CoupledSpectrum(arr)
    assert spec.structure.free and spec.n_roots == 0
    res = spec.expansion().loss(np.arange(301))
    np.testing.assert_allclose(res.loss, recursion_curve(arr, 300), rtol=RTOL, atol=1e-300)


def test_repeated_eigenvalues_and_multiplicity():
    """Integer multiplicities equal the expanded problem, whose repeated modes give coinciding
    poles (moved apart by a few ulps); an isotropic spectrum (every mode equal) likewise."""
    p = Problem.from_arrays([1.0, 0.4, 0.1], [1.0, 0.5, 2.0], label_noise=0.2).replace(
        multiplicity=np.array([3.0, 1.0, 2.0]))
    for prob in (p, p.expanded(), Problem.from_arrays(np.full(5, 0.5), np.arange(1.0, 6.0))):
        arr = ModeSystem.build(prob, 0.2, 0.6, 2, "nesterov").arrays()
        res = loss_at_steps(arr, np.arange(2001))
        np.testing.assert_allclose(res.loss, recursion_curve(arr, 2000), rtol=RTOL)
    a = loss_at_steps(ModeSystem.build(p, 0.2, 0.6, 2).arrays(), [10, 10 ** 4])
    b = loss_at_steps(ModeSystem.build(p.expanded(), 0.2, 0.6, 2).arrays(), [10, 10 ** 4])
    np.testing.assert_allclose(a.loss, b.loss, rtol=RTOL)


def test_steps_are_sorted_and_unique(rng):
    arr = ModeSystem.build(random_problem(rng, n=5), 0.2, 0.5, 2).arrays()
    res = loss_at_steps(arr, [7, 3, 7, 0, 10 ** 12])
    assert res.steps.tolist() == [0, 3, 7, 10 ** 12]
    assert res.loss[0] == pytest.approx(float(np.sum(arr.loss * arr.X0)), rel=1e-13)
    assert loss_at_steps(arr, 3).loss[0] == pytest.approx(res.loss[1], rel=1e-15)
    assert loss_at_steps(arr, np.array([3.0])).steps.dtype == np.int64


def test_bad_input_names_the_argument(rng):
    arr = ModeSystem.build(random_problem(rng, n=4), 0.2, 0.5, 2).arrays()
    for bad in (-1, [1, -2], 1.5, [[1, 2]], [], "ten", [True]):
        with pytest.raises(ValueError, match="steps"):
            loss_at_steps(arr, bad)
    with pytest.raises(ValueError, match="arrays"):
        loss_at_steps("arrays", [1])
    with pytest.raises(ValueError, match="arrays.A"):
        loss_at_steps(ModeArrays(np.zeros((2, 3)), *(np.zeros((2, 3)),) * 5, 0.0), [1])
    with pytest.raises(ValueError, match="step"):
        state_at_step(arr, [1, 2])
    with pytest.raises(ValueError, match="segments"):
        loss_at_steps_piecewise([], [1])
    with pytest.raises(ValueError, match=r"segments\[0\]"):
        loss_at_steps_piecewise([(arr, None), (arr, 3)], [1])
    with pytest.raises(ValueError, match=r"segments\[1\]"):
        loss_at_steps_piecewise([(arr, 3), (arr, -1)], [1])


def test_jump_ahead_route_of_a_run_description():
    """``solve(run, "jump-ahead")``: the recorded steps of a constant run and of a piecewise
    schedule, against the recursion; and a horizon the recursion would take hours for."""
    from sgdyn.theory.record import Record
    from sgdyn.theory.schedules import double, step
    p = Problem.power_law(1.5, 1.0, 30).replace(label_noise=0.05)
    for kw in (dict(alpha=0.3, beta=0.5, batch=2),
               dict(alpha=step(0.4, [50, 120], 0.5), beta=0.6, batch=double(1, [80]))):
        r = Run.build(p, "heavy-ball", steps=200, record=Record.every(10), **kw)
        ja, rec = solve(r, "jump-ahead"), solve(r)
        np.testing.assert_array_equal(ja.steps, rec.steps)
        np.testing.assert_allclose(ja.loss, rec.loss, rtol=RTOL)
        assert ja.route == "jump-ahead" and "jump-ahead" in ja.approximation
    far = solve(Run.build(p, "heavy-ball", alpha=0.3, beta=0.5, batch=2, steps=10 ** 12,
                          record=Record.at([10 ** 6, 10 ** 12])), "jump-ahead")
    near = solve(Run.build(p, "heavy-ball", alpha=0.3, beta=0.5, batch=2, steps=10 ** 6,
                           record=Record.at([10 ** 6])))
    assert far.loss[0] == pytest.approx(near.loss[0], rel=RTOL) and not far.diverges
    from sgdyn.theory.equivalence import stationary_loss        # the fixed point, solved directly
    assert far.loss[-1] == pytest.approx(stationary_loss(p, 0.3 / (1 - 0.5), 0.5, 2), rel=1e-9)


@pytest.mark.parametrize("name", sorted(CASES))
def test_multipole_sums_equal_the_direct_sums(name, rng, monkeypatch):
    """The far-field route (``TREE_MIN``: multipoles of far poles and far (pole, root) pairs on a
    kd-tree with the default leaves of 16 poles) against the direct sums over every mode, on the
    cases above with 300 modes: the same roots (to the rounding level
    ``eps kappa |mu|`` of each), the same loss to 1e-11 at steps up to 10^6 (the route's
    rounding level; the tests above bound both against 80-bit loops)."""
    from sgdyn.theory import jumpahead
    method, beta, alpha, batch, noise, sigma2, data_size, mult = CASES[name]
    n = 300
    w = None if mult is None else rng.integers(1, 5, n).astype(float)
    p = random_problem(rng, n=n, label_noise=sigma2, data_size=data_size, multiplicity=w)
    arr = ModeSystem.build(p, alpha / 3, beta, batch, method, noise).arrays()
    steps = np.unique(np.geomspace(1, 1e6, 40).astype(np.int64))
    direct = CoupledSpectrum(arr)
    assert not direct.structure.far.active
    monkeypatch.setattr(jumpahead, "TREE_MIN", 0)
    tree = CoupledSpectrum(arr)
    assert tree.structure.far.active and tree.structure.far.tree.n_nodes > 30
    # the same roots (a strongly coupled root may end up anchored at another pole: match them)
    z0, z1 = direct.roots, tree.roots
    match = np.argmin(np.abs(z1[:, None] - z0[None, :]), axis=1)
    assert np.array_equal(np.sort(match), np.arange(z0.size))
    # to the rounding level of an eigenvalue of condition kappa (measured: at most 0.6 of it)
    eps = np.finfo(float).eps
    assert np.all(np.abs(z1 - z0[match]) <= 2 * eps * np.maximum(direct.kappa[match], 1) * np.abs(z0[match]))
    a, b = direct.expansion().loss(steps), tree.expansion().loss(steps)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-11)
    assert b.rate == pytest.approx(a.rate, rel=1e-14)


def test_multipole_route_on_a_power_law_with_a_tie_cluster(monkeypatch):
    """Heavy ball's poles r1 r2 = beta are shared by every mode (spread 8 ulps apart): the roots
    next to them are resolved through anchored far-field differences; the loss equals the direct
    route's to 1e-12 up to 10^8 steps."""
    from sgdyn.theory import jumpahead
    arr = ModeSystem.build(Problem.power_law_continuum(2.0, 4.0, 10 ** 6, 600), 0.3, 0.3, 1).arrays()
    steps = np.unique(np.geomspace(1, 1e8, 30).astype(np.int64))
    a = CoupledSpectrum(arr).expansion().loss(steps)
    monkeypatch.setattr(jumpahead, "TREE_MIN", 0)
    spec = CoupledSpectrum(arr)
    assert spec.structure.far.active
    np.testing.assert_allclose(spec.expansion().loss(steps).loss, a.loss, rtol=1e-12)
