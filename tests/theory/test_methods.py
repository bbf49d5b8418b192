"""Methods described once: the text form against hand-typed matrices, every shipped method's
known identity (loss curves by the recursion, machine precision), recursion against the
generating function, and one-line errors for malformed descriptions."""
import numpy as np
import pytest
import sympy as sp

from sgdyn.theory.catalogue import METHODS, ema
from sgdyn.theory.dynamics import loss_curve, moments, solve
from sgdyn.theory.method_text import parse_method
from sgdyn.theory.methods import MAX_STATE_DIM, Method, Parameter, alpha, beta, get_method, lam
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.run import Run

P = Problem.power_law(1.5, 1.0, 25).replace(label_noise=0.05)
NOISE = NoiseModel(1.0, -1.0)


def _momentum(name, value):
    return value if get_method(name).has_momentum else 0.0


def test_text_form_gives_the_hand_typed_matrices():
    hb = get_method("heavy-ball")
    assert hb.F == sp.Matrix([[1 + beta, -beta], [1, 0]]) and hb.K == sp.Matrix([-alpha, 0])
    assert hb.G == sp.Matrix([[1, 0]]) and hb.x0 == sp.Matrix([1, 1])
    nv = get_method("nesterov")
    assert nv.G == sp.Matrix([[1 + beta, -beta]]) and nv.F == hb.F
    sgd = get_method("sgd")
    assert (sgd.F, sgd.K, sgd.G, sgd.x0) == (sp.Matrix([[1]]), sp.Matrix([-alpha]),
                                             sp.Matrix([[1]]), sp.Matrix([1]))


def test_the_state_is_reordered_to_put_the_reported_iterate_first():
    m = parse_method("v' = beta*v - alpha*g(w); w' = w + v'")
    assert m.state == ("w", "v") and m.x0 == sp.Matrix([1, 0])
    assert m.F == sp.Matrix([[1, beta], [0, beta]]) and m.K == sp.Matrix([-alpha, -alpha])


@pytest.mark.parametrize("text", [
    "v' = beta*v - alpha*g(w); w' = w + v'",                       # PyTorch's form
    "w' = w - alpha*g(w) + beta*v; v' = w' - w",                    # velocity as a difference
])
def test_heavy_ball_written_otherwise_has_the_same_loss(text):
    for a, bt, b in [(0.3, 0.5, 2), (0.2, -0.6, 1), (0.02, 0.97, 4)]:
        want = loss_curve(P, a, bt, b, 200).loss
        got = loss_curve(P, a, bt, b, 200, method=text).loss
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("a,bt,b", [(0.3, 0.5, 2), (0.2, 0.9, 1), (0.1, -0.5, 3)])
def test_qhm_limits(a, bt, b):
    qhm = get_method("qhm")
    hb = loss_curve(P, a * (1 - bt), bt, b, 200).loss
    np.testing.assert_allclose(loss_curve(P, a, bt, b, 200, qhm.bind(nu=1.0)).loss, hb, rtol=1e-12)
    sgd = loss_curve(P, a, 0.0, b, 200, "sgd").loss
    np.testing.assert_allclose(loss_curve(P, a, bt, b, 200, qhm.bind(nu=0.0)).loss, sgd, rtol=1e-12)


@pytest.mark.parametrize("base", ["heavy-ball", "nesterov", "sgd", "qhm"])
def test_ema_with_decay_zero_is_the_base_method(base):
    # the recursion alone (moments): the rate of a 3- or 4-dimensional state would cost a symbolic
    # derivation that the identity does not need
    bt = _momentum(base, 0.6)
    want = moments(Run.build(P, base, alpha=0.25, beta=bt, batch=2, steps=150)).loss
    m = get_method(f"ema-{base}").bind(decay=0.0)
    assert m.dim == get_method(base).dim + 1
    got = moments(Run.build(P, m, alpha=0.25, beta=bt, batch=2, steps=150)).loss
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_ema_averages_the_iterates_it_reports():
    """With decay c the averaged iterate's loss lags the base's: at t = 1 it is
    E[(c e_0 + (1 - c) e_1)^2] per mode, computed here from the base's own moments."""
    c = 0.7
    base = moments(Run.build(P, "heavy-ball", alpha=0.3, beta=0.5, batch=2, steps=1))
    L1 = loss_curve(P, 0.3, 0.5, 2, 1, get_method("ema-heavy-ball").bind(decay=c)).loss[1]
    # E[(c e0 + (1-c) e1)^2] = c^2 m0 + 2 c (1-c) E[e0 e1] + (1-c)^2 m1; E[e0 e1] = a m0 (a = 1 - alpha lam)
    lam_, m0 = P.eigenvalues, P.initial
    a = 1 - 0.3 * lam_
    m1 = 2 * (base.loss[1] - 0.5 * P.label_noise)    # weighted: sum lam m1 = 2 (L1 - floor)
    want = 0.5 * np.sum(lam_ * (c ** 2 * m0 + 2 * c * (1 - c) * a * m0)) + (1 - c) ** 2 * 0.5 * m1 \
        + 0.5 * P.label_noise
    assert L1 == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("base", ["sgd", "heavy-ball"])
def test_preconditioner_with_exponent_zero_is_the_plain_method(base):
    bt = _momentum(base, 0.5)
    want = loss_curve(P, 0.2, bt, 2, 150, base).loss
    m = get_method(f"preconditioned-{base}").bind(s=0.0)
    np.testing.assert_allclose(loss_curve(P, 0.2, bt, 2, 150, m).loss, want, rtol=1e-12)


def test_preconditioned_sgd_is_sgd_on_the_flattened_spectrum_without_noise():
    """Noiseless (full batch from the data set): each mode contracts by 1 - alpha lam^(1-s)."""
    p = P.replace(label_noise=0.0, data_size=50)
    L = loss_curve(p, 0.3, 0.0, 50, 40, get_method("preconditioned-sgd").bind(s=0.5)).loss
    t = np.arange(41)[:, None]
    want = 0.5 * np.sum(p.eigenvalues * p.initial * (1 - 0.3 * p.eigenvalues ** 0.5) ** (2 * t), axis=1)
    np.testing.assert_allclose(L, want, rtol=1e-12)


def test_pytorch_nesterov_iterate_is_the_look_ahead_point():
    """nesterov-pytorch's w_t is nesterov's w_t + beta (w_t - w_{t-1}): twice its loss (no label
    noise) is nesterov's D_t = sum lam E[(G x)^2] at the gradient point."""
    p = P.replace(label_noise=0.0)
    for a, bt, b in [(0.2, 0.6, 2), (0.1, 0.9, 1), (0.3, -0.4, 3)]:
        torch_form = loss_curve(p, a, bt, b, 150, "nesterov-pytorch").loss
        drive = moments(Run.build(p, "nesterov", alpha=a, beta=bt, batch=b, steps=150)).drive
        np.testing.assert_allclose(2 * torch_form, drive, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_recursion_equals_generating_function(name):
    bt = _momentum(name, 0.6)
    for a, b in [(0.2, 2), (0.35, 4)]:
        r = Run.build(P, name, alpha=a, beta=bt, batch=b, steps=120)
        rec, gf = solve(r), solve(r, "generating-function")
        np.testing.assert_allclose(gf.loss, rec.loss, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_numeric_matrices_are_the_symbolic_ones(name, rng):
    m = get_method(name)
    for _ in range(5):
        a, bt = rng.uniform(0.01, 1.0), _momentum(name, rng.uniform(-0.9, 0.9))
        extra = {p.name: rng.uniform(max(p.low, 0.0), min(p.high, 1.0) * 0.99) for p in m.extra}
        subs = {alpha: a, beta: bt, **{sp.Symbol(k, real=True): v for k, v in extra.items()}}
        F, K, G = m.numeric_matrices({"alpha": a, "beta": bt, **extra})
        np.testing.assert_allclose(F[0], np.array(m.F.subs(subs), dtype=float), rtol=1e-14)
        np.testing.assert_allclose(K[0], np.array(m.K.subs(subs), dtype=float).ravel(), rtol=1e-14)
        np.testing.assert_allclose(G[0], np.array(m.G.subs(subs), dtype=float).ravel(), rtol=1e-14)


def test_user_method_three_dimensional_state_runs_through_the_theory():
    """A method that is not shipped: heavy ball whose gradient is taken at an average of the two
    last iterates and whose velocity is damped separately (state w, w_prev, v)."""
    text = ("params: c = 0.3 in [0, 1]; v' = beta*v - alpha*g((1 - c)*w + c*w_prev); "
            "w_prev' = w; w' = w + v'")
    m = get_method(text)
    assert m.dim == 3 and [p.name for p in m.extra] == ["c"]
    r = Run.build(P, m, alpha=0.2, beta=0.5, batch=2, steps=100)
    np.testing.assert_allclose(solve(r, "generating-function").loss, solve(r).loss, rtol=1e-10)


@pytest.mark.parametrize("text,match", [
    ("w' = w - alpha*g(w) + eta", "unknown name 'eta'"),
    ("w' = w*w - alpha*g(w)", "not linear"),
    ("w' = w - alpha*g(w*w)", "not linear"),
    ("w' = w - alpha*g(w) + 1", "constant term"),
    ("w' = 0.5*w", "never uses a gradient"),
    ("v' = beta*v - alpha*g(w); w' = w + v' - alpha*g(v)", "two points"),
    ("w' = w - alpha*g(w) ; w' = w", "more than once"),
    ("w' = w - alpha * g(w)) ", "cannot parse"),
    ("w' = w - alpha*g(w) @ w", "unexpected character"),
    ("params: nu; w' = w - alpha*g(w)", "params: 'nu' must read"),
    ("x' = x - alpha*g(x)", "output 'w' is not a state variable"),
    ("w' = 0.5*w - alpha*g(w)", "not a fixed point"),
    ("w' = w - alpha*g(w); output: z", "output 'z' is not a state variable"),
    ("params: alpha = 1; w' = w - alpha*g(w)", "reserved"),
    ("a' = a + alpha*g(w); b' = b; c' = c; d' = d; w' = w - alpha*g(w)", "at most 4"),
    ("", "non-empty"),
    ("w' = w - alpha*lambda*g(w)", "unknown name 'lambda'"),
])
def test_malformed_text_is_a_one_line_error(text, match):
    with pytest.raises(ValueError, match=match) as err:
        get_method(text) if text else parse_method(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw,match", [
    (dict(F=[[1, 0], [0, 1]], K=[[-alpha]], G=[[1, 0]], x0=[[1], [1]]), r"K must have shape \(2, 1\)"),
    (dict(F=[[1, 0]], K=[[-alpha]], G=[[1]], x0=[[1]]), "F must be a square matrix"),
    (dict(F=[[1]], K=[[-alpha * lam]], G=[[1]], x0=[[1]]), "must not depend on lambda"),
    (dict(F=[[1]], K=[[-sp.Symbol("eta")]], G=[[1]], x0=[[1]]), "undeclared symbol"),
    (dict(F=[[1]], K=[[0]], G=[[1]], x0=[[1]]), "K is zero"),
    (dict(F=np.eye(5), K=np.ones((5, 1)), G=np.ones((1, 5)), x0=np.ones((5, 1))), "at most 4"),
])
def test_bad_matrices_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        Method.from_matrices("bad", **kw)


def test_parameters_are_validated_where_bound_and_scheduled():
    qhm = get_method("qhm")
    with pytest.raises(ValueError, match=r"qhm parameter nu must lie in \[0, 1\]"):
        qhm.bind(nu=1.5)
    with pytest.raises(ValueError, match="has no parameter"):
        qhm.bind(mu=0.5)
    with pytest.raises(ValueError, match=r"qhm parameter nu must lie in \[0, 1\] at every step"):
        Run.build(P, qhm, alpha=0.1, beta=0.5, batch=1, steps=10, params={"nu": "linear(0.5, 2)"})
    with pytest.raises(ValueError, match="enters the preconditioner and must be constant"):
        Run.build(P, "preconditioned-sgd", alpha=0.1, batch=1, steps=10, params={"s": "linear(0, 1)"})
    with pytest.raises(ValueError, match="reserved"):
        Parameter("lambda", 1.0)
    assert ema(get_method("sgd")).label == "ema-sgd"
    assert qhm.bind(nu=0.5).label == "qhm(nu=0.5)" and MAX_STATE_DIM == 4
