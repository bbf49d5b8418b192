"""Optimal learning-rate (and momentum) schedules: the schedule of a budget of ``T`` steps that
minimises the final expected loss ``L_T`` of the SE second-moment recursion, by its exact gradient
(``sgdyn.theory.adjoint``) and L-BFGS-B, compared with the best constant, cosine and step-decay
schedules of the same budget on the same theory.

Parameterisation: ``log alpha_t`` is piecewise linear in ``t`` between ``knots`` equally spaced
knots (``t = 0`` and ``t = T - 1`` among them; ``knots = T`` frees every step). With
``momentum=True`` the knots carry ``log alpha_eff,t = log(alpha_t / (1 - beta_t))`` and ``beta_t``
(also piecewise linear). The gradient of ``L_T`` with respect to the knot values is exact for this
parameterisation: the adjoint pass gives ``dL_T / d(step coefficients)``, the symbolic derivatives
of the method's matrices ``F, K, G`` (``sympy``, derived once per method) give
``d(step coefficients) / d(alpha_t, beta_t)``, and the interpolation is linear in the knots. The
optimiser minimises ``log L_T``.

Bounds keep every step stable: ``alpha_t <= alpha_crit(beta, b)`` (``sgdyn.theory.stability``:
the constant-hyperparameter map of every step converges), with momentum ``alpha_eff,t`` at most
the smallest critical effective learning rate over the allowed momenta; ``alpha_t >=
alpha_crit * 1e-4``. The comparison schedules obey the same bounds. Each is tuned by a bounded
1-D search (Brent, in ``log alpha``) of its peak for each value on a small grid of its second
parameter, then polished by Nelder-Mead over both: constant ``alpha``; ``cosine(peak,
floor=r peak)``, ``r in [0, 1]``; ``step(peak, milestones=[T/2, 3T/4], factor=f)``,
``f in [0.01, 1]``. The optimisation starts from the best constant.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy.optimize import minimize, minimize_scalar

from sgdyn.theory import checks
from sgdyn.theory.adjoint import Coefficients, final_loss_and_gradient
from sgdyn.theory.display import Result
from sgdyn.theory.dynamics import check_work, mode_inputs, moments
from sgdyn.theory.methods import _broadcasting, alpha as ALPHA_SYMBOL, beta as BETA_SYMBOL
from sgdyn.theory.record import Record
from sgdyn.theory.recursion import step_coefficients, vech_pairs
from sgdyn.theory.run import Run
from sgdyn.theory.schedules import cosine, step
from sgdyn.theory.stability import critical_learning_rate

FLOOR_RATIOS = (0.0, 0.01, 0.1, 0.3, 0.6)
FACTORS = (0.1, 0.3, 0.6)
ALPHA_RANGE = 1e-4            # the smallest learning rate allowed, relative to alpha_crit
CRIT_MARGIN = 1.0 - 1e-6      # steps stay strictly inside the convergent region


@functools.lru_cache(maxsize=None)
def _matrix_derivatives(method):
    """``{name: (dF, dK, dG)}``: lambdified entries of the derivatives of the method's matrices
    with respect to alpha and (if it has momentum) beta."""
    args = (ALPHA_SYMBOL, BETA_SYMBOL) + method.extra_symbols
    out = {}
    for name, sym in (("alpha", ALPHA_SYMBOL), ("beta", BETA_SYMBOL)):
        out[name] = tuple([_broadcasting(sp.lambdify(args, v.diff(sym), modules="numpy"))
                           for v in M] for M in (method.F, method.K, method.G))
    return out


def _coefficient_derivatives(method, values: dict, name: str, FKG) -> Coefficients:
    """``d(step coefficients) / d name`` per step, from the symbolic ``dF, dK, dG`` and the
    product rule on ``K G^T``, ``vech(K K^T)``, ``G P G^T`` (``gam`` depends on neither
    alpha nor beta)."""
    F, K, G = FKG
    args = method._parameter_arrays(values)
    c, d = F.shape[0], F.shape[1]
    dF, dK, dG = (np.stack([np.broadcast_to(f(*args), (c,)) for f in fns], axis=-1).reshape(
        (c,) + shape) for fns, shape in zip(_matrix_derivatives(method)[name],
                                            ((d, d), (d,), (d,))))
    pairs = vech_pairs(d)
    r = np.array([a for a, _ in pairs])
    s = np.array([b for _, b in pairs])
    dKG = dK[:, :, None] * G[:, None, :] + K[:, :, None] * dG[:, None, :]
    dkk = dK[:, r] * K[:, s] + K[:, r] * dK[:, s]
    dg = (dG[:, r] * G[:, s] + G[:, r] * dG[:, s]) * np.where(r == s, 1.0, 2.0)
    return Coefficients(dF, dKG, dkk, dg, np.zeros(c))


class _FinalLoss:
    """``L_T`` of ``run``'s recursion as a function of per-step ``alpha`` and ``beta`` arrays, with
    its gradient; every other part of the run (problem, method, batch, noise) fixed."""

    def __init__(self, run: Run):
        m = run.method
        moving = {ALPHA_SYMBOL, BETA_SYMBOL} & set().union(*(e.free_symbols for e in m.x0))
        if moving:
            raise ValueError(f"method {m.name!r} starts from a state that depends on "
                             f"{', '.join(sorted(map(str, moving)))}: its schedule gradient is not "
                             "implemented")
        check_work(run, "recursion")
        problem, scale = run.problem.normalized() if m.preconditioner == 1 else (run.problem, 1.0)
        self.inputs = mode_inputs(run.replace(problem=problem) if scale != 1.0 else run)
        self.scale = scale
        self.method = m
        self.values = run.hyperparameters(0, run.steps)
        self.gam = run.batch_factors(self.values["batch"])

    def __call__(self, alpha: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        values = dict(self.values, alpha=alpha * self.scale, beta=beta)
        FKG = self.method.numeric_matrices(values)
        F, KG, kk, g = step_coefficients(*FKG)
        # g's extra row only closes D_T, which L_T does not read
        L, grad = final_loss_and_gradient(self.inputs, Coefficients(
            F, KG, kk, np.vstack([g, g[-1:]]), self.gam), self.method)
        out = []
        for name in ("alpha", "beta"):
            dc = _coefficient_derivatives(self.method, values, name, FKG)
            out.append(sum((a * b).reshape(a.shape[0], -1).sum(axis=1) for a, b in
                           ((grad.F, dc.F), (grad.KG, dc.KG), (grad.kk, dc.kk), (grad.g, dc.g))))
        return L, out[0] * self.scale, out[1]


@dataclass(frozen=True)
class ScheduleGradient(Result):
    """``L_T`` of a run (the SE recursion) and its gradient with respect to each step's learning
    rate and momentum: ``d_alpha[t] = dL_T / d alpha_t``, ``d_beta[t] = dL_T / d beta_t``."""

    loss: float
    d_alpha: np.ndarray
    d_beta: np.ndarray


def schedule_gradient(run: Run) -> ScheduleGradient:
    """The exact gradient of the final loss of ``run`` (any schedule; route ``recursion``) with
    respect to its per-step ``alpha_t`` and ``beta_t`` (module docstring;
    ``sgdyn.theory.adjoint``)."""
    if not isinstance(run, Run):
        raise ValueError(f"run must be a sgdyn.theory.Run, got {type(run).__name__}")
    if run.steps < 1:
        raise ValueError("steps must be >= 1 for a schedule gradient")
    f = _FinalLoss(run)
    L, da, db = f(f.values["alpha"], f.values["beta"])
    return ScheduleGradient(L, da, db if run.method.has_momentum else np.zeros_like(db))


@dataclass(frozen=True)
class Baseline(Result):
    """One tuned comparison schedule: its ``name``, text form and final loss."""

    name: str
    schedule: str
    loss: float


@dataclass(frozen=True)
class OptimalSchedule(Result):
    """The learning-rate schedule (and momentum schedule with ``momentum``) of ``steps`` steps
    minimising ``L_T`` (module docstring), with the tuned baselines of the same budget.

    ``alpha``, ``beta``: the per-step schedule found; ``loss`` its ``L_T``; ``comparison``: the
    optimum and the best constant, cosine and step-decay schedules, each with its ``L_T``;
    ``gain_over``: ``1 - loss / L_T(baseline)`` per baseline (in ``comparison``'s order, after the
    optimum); ``knots``, ``knot_steps``: the parameterisation; ``alpha_cap``: the bound on
    ``alpha_t`` (on ``alpha_eff,t`` with momentum); ``iterations``, ``evaluations``, ``message``:
    L-BFGS-B's report; ``baseline_beta``: the constant momentum of the baselines (with
    ``momentum``, the middle of ``beta_range``); ``gradient_check``: the relative difference
    between the adjoint's directional derivative of ``L_T`` (along a fixed random direction of the knot
    values) and the central difference of the generated recursion kernel (``solve``'s route)
    along it, half-way between the start (the best constant) and the optimum (where the gradient
    vanishes)."""

    alpha: np.ndarray
    beta: np.ndarray
    loss: float
    steps: int
    batch: int
    method: str
    objective: str
    knots: int
    knot_steps: np.ndarray
    alpha_cap: float
    baseline_beta: float
    comparison: tuple
    iterations: int
    evaluations: int
    message: str
    gradient_check: float

    _properties = ("gain_over",)

    @property
    def gain_over(self) -> tuple:
        return tuple((b.name, 1.0 - self.loss / b.loss) for b in self.comparison[1:])


def _interpolation(steps: int, knots: int) -> tuple[np.ndarray, np.ndarray]:
    """Knot steps and the ``(T, knots)`` matrix of piecewise-linear interpolation weights."""
    at = np.linspace(0.0, steps - 1, knots)
    W = np.stack([np.interp(np.arange(steps), at, np.eye(knots)[j]) for j in range(knots)], axis=1)
    return np.round(at).astype(np.int64), W


def _final_loss(run: Run) -> float:
    """``L_T`` by the generated recursion kernel (``solve``'s route, without its rate analysis)."""
    m = moments(run.with_record(Record.at([run.steps])))
    return np.inf if m.stopped else float(m.loss[-1])


def _tuned(build, low: float, high: float, seconds, second_bounds) -> tuple[float, Run]:
    """The best ``build(peak, second)``: Brent over ``log peak in [low, high]`` for each value of
    ``second`` on its grid, then Nelder-Mead over both from the best (within the bounds)."""
    def loss(u, second):
        return np.log(_final_loss(build(float(np.exp(u)), float(second))))

    best = (np.inf, None)
    for second in seconds:
        res = minimize_scalar(loss, bounds=(low, high), args=(second,), method="bounded",
                              options={"xatol": 1e-3})
        if res.fun < best[0]:
            best = (res.fun, (res.x, second))
    if second_bounds is not None:
        res = minimize(lambda v: loss(*v), np.array(best[1]), method="Nelder-Mead",
                       bounds=[(low, high), second_bounds],
                       options={"xatol": 1e-3, "fatol": 1e-7})
        if res.fun < best[0]:
            best = (res.fun, tuple(res.x))
    u, second = best[1]
    return float(np.exp(best[0])), build(float(np.exp(u)), float(second))


def optimal_schedule(problem, steps: int, batch: int = 1, beta: float = 0.0,
                     method="heavy-ball", *, momentum: bool = False, beta_range=(0.0, 0.95),
                     knots: int = 24, noise=None, sampling=None, maxiter: int = 300,
                     seed: int = 0) -> OptimalSchedule:
    """Minimise ``L_T`` over the learning-rate schedule of ``steps`` steps at a constant
    ``batch`` (and ``beta``, unless ``momentum`` optimises a momentum schedule within
    ``beta_range``) by L-BFGS-B on the exact gradient (module docstring). ``method``: a name or
    a ``Method`` (``Method.bind`` sets its extra parameters); ``noise``, ``sampling`` as in
    ``Run.build``. ``seed`` fixes the random direction of the final gradient check."""
    steps = checks.integer("steps", steps, 2)
    batch = checks.integer("batch", batch, 1)
    knots = checks.integer("knots", knots, 2)
    knots = min(knots, steps)
    maxiter = checks.integer("maxiter", maxiter, 1)
    template = Run.build(problem, method, alpha=1e-3, beta=beta, batch=batch, steps=steps,
                         noise=noise, sampling=sampling, record=Record.at([steps]))
    m = template.method
    if momentum and not m.has_momentum:
        raise ValueError(f"momentum: method {m.name!r} has no momentum to schedule")
    crit_problem = template.problem.replace(
        data_size=template.sampling.data_size if template.sampling.kind == "without-replacement"
        else None)

    def crit(b):
        return critical_learning_rate(crit_problem, b, batch, m, template.noise).alpha_crit

    if momentum:
        lo_b, hi_b = (checks.momentum("beta_range", v) for v in beta_range)
        if not lo_b <= hi_b:
            raise ValueError(f"beta_range must be (low, high) with low <= high, got {beta_range}")
        grid = np.linspace(lo_b, hi_b, 9)
        cap = CRIT_MARGIN * min(crit(b) / (1.0 - b) for b in grid)
    else:
        beta = checks.momentum("beta", beta)
        cap = CRIT_MARGIN * crit(beta)
    if not cap > 0:
        raise ValueError("the loss diverges for every learning rate at this batch size")
    low, high = np.log(cap * ALPHA_RANGE), np.log(cap)

    def run_with(alpha_shape, beta_shape=beta):
        return Run.build(template.problem, m, alpha=alpha_shape, beta=beta_shape, batch=batch,
                         steps=steps, noise=template.noise, sampling=template.sampling,
                         record=Record.at([steps]))

    # baselines at the constant beta (with momentum: beta_range's midpoint, alpha_eff capped)
    beta0 = 0.5 * (lo_b + hi_b) if momentum else beta
    base_cap = np.log(CRIT_MARGIN * crit(beta0))
    base_low = base_cap + np.log(ALPHA_RANGE)
    rows = []
    for name, build, seconds, second_bounds in (
            ("constant", lambda a, _: run_with(a, beta0), (0.0,), None),
            ("cosine", lambda a, r: run_with(cosine(a, floor=r * a), beta0), FLOOR_RATIOS,
             (0.0, 1.0)),
            ("step", lambda a, f: run_with(step(a, [steps // 2, (3 * steps) // 4], f), beta0),
             FACTORS, (0.01, 1.0))):
        L, best = _tuned(build, base_low, base_cap, seconds, second_bounds)
        rows.append(Baseline(name, best.schedule["alpha"].text, L))

    at, W = _interpolation(steps, knots)
    f = _FinalLoss(template)
    start_alpha = float(np.exp(minimize_scalar(
        lambda u: np.log(_final_loss(run_with(np.exp(u), beta0))), bounds=(base_low, base_cap),
        method="bounded", options={"xatol": 1e-3}).x))

    def unpack(theta):
        if not momentum:
            return np.exp(W @ theta), np.full(steps, beta)
        b = W @ theta[knots:]
        return np.exp(W @ theta[:knots]) * (1.0 - b), b

    def objective(theta):
        a, b = unpack(theta)
        L, da, db = f(a, b)
        if not (np.isfinite(L) and L > 0):
            raise ValueError(f"the recursion left the finite positive losses (L_T = {L}) inside "
                             "the stable bounds")
        if not momentum:
            grad = W.T @ (da * a)
        else:
            eff = a / (1.0 - b)
            grad = np.concatenate([W.T @ (da * a), W.T @ (db - da * eff)])
        return np.log(L), grad / L

    if momentum:
        theta0 = np.concatenate([np.full(knots, np.log(start_alpha / (1.0 - beta0))),
                                 np.full(knots, beta0)])
        bounds = [(low, high)] * knots + [(lo_b, hi_b)] * knots
    else:
        theta0 = np.full(knots, np.log(start_alpha))
        bounds = [(low, high)] * knots
    theta0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-9})
    a, b = unpack(res.x)
    L = _final_loss(run_with(a, b))
    check = _gradient_check(objective, 0.5 * (theta0 + res.x), bounds, run_with, unpack, seed)
    table = (Baseline("optimal", f"{knots}-knot piecewise-linear log schedule", L),) + tuple(rows)
    return OptimalSchedule(a, b, L, steps, batch, m.name,
                           "log L_T" + (" over (alpha_eff_t, beta_t)" if momentum else
                                        " over alpha_t"), knots, at, cap, beta0, table,
                           int(res.nit), int(res.nfev), str(res.message), check)


def _gradient_check(objective, theta, bounds, run_with, unpack, seed: int) -> float:
    """Relative error of the adjoint's directional derivative of ``L_T`` against the central
    difference of the generated recursion kernel (``solve``'s route, an independent
    implementation)."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(theta.size)
    u /= np.linalg.norm(u)
    logL, grad = objective(theta)
    exact = float(np.exp(logL) * grad @ u)
    h = 1e-4
    # step inward from bounds the optimum may sit on (the run would refuse unstable steps)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    centre = np.clip(theta, lo + h, hi - h)
    if not np.array_equal(centre, theta):
        logL, grad = objective(centre)
        exact = float(np.exp(logL) * grad @ u)
    plus = _final_loss(run_with(*unpack(centre + h * u)))
    minus = _final_loss(run_with(*unpack(centre - h * u)))
    fd = (plus - minus) / (2 * h)
    return abs(fd - exact) / max(abs(exact), 1e-300)
