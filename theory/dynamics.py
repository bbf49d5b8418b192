"""Loss curves of mini-batch SGD / momentum (any linear method, any schedule) under the SE noise
model, by independent routes over one run description (``sgdyn.theory.run.Run``):

* ``route="recursion"``: the per-mode second-moment recursion, O(N T), in numba
  (``sgdyn.theory.recursion``): any method, any schedule, SE noise; exact for Gaussian features.
* ``route="exact-data"`` and ``route="q4"``: on a data problem's rows, the exact finite-data
  second moments (``sgdyn.theory.exact_data``, O(n N^2) a step) and the Q4 closure, the diagonal
  closure with the data's fourth-moment matrix (``sgdyn.theory.q4_closure``, O(N^2) a step).
* ``route="jump-ahead"``: constant or piecewise-constant hyperparameters; the loss at any set of
  steps from the spectrum of the coupled map (``sgdyn.theory.jumpahead``), O(N) per step after
  the set-up: long horizons without stepping through them.
* ``route="generating-function"``: constant or piecewise-constant hyperparameters. Cauchy's
  integral of ``L(z) = sum_t L_t z^t`` on a circle ``|z| = r`` just inside the radius of
  convergence, discretised by an FFT of length ``M >= 32 (T+1)`` (aliasing ``~ exp(-32)``); for a
  constant run ``L(z)`` comes from the lambdified symbolic transfer functions
  (``sgdyn.theory.symbolic``); a piecewise-constant schedule chains its segments, each segment's
  generating functions solved per mode from the state the previous one ended in
  (``_segment_coefficients``).

``solve(run, route)`` returns a ``LossCurve``: the loss at the run's recorded steps, the route and
the approximation that produced it, and the asymptotic rate with its reason. A divergent setting
is a result: the curve grows, ``diverges`` is set with the reason, and the recursion stops
(returning the curve so far) before any value passes ``1e200``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.noise import GAUSSIAN, RADEMACHER, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.recursion import (OVERFLOW_GUARD, ModeInputs, Moments, run_moments,
                                    step_coefficients, vech_pairs)
from sgdyn.theory.run import Run
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import GeneratingFunctions, Singularities, singularities

ROUTES = ("recursion", "generating-function", "exact-data", "jump-ahead", "q4")


@dataclass(frozen=True)
class LossCurve(Result):
    """The expected loss at ``steps`` (the run's recorded steps, up to where a divergent curve was
    stopped), with what produced it (``route``, ``approximation``) and the asymptotic rate
    ``rho`` (``L_t ~ rho^t``; for a schedule, at the last step's hyperparameters)."""

    loss: np.ndarray
    steps_requested: int
    diverges: bool
    rate: float
    limited_by: str             # "noise" or "mode stability"
    reason: str
    stopped_early: bool         # True if the recursion stopped before float overflow
    steps: np.ndarray | None = None
    route: str = "recursion"
    approximation: str = ""

    def __post_init__(self):
        if self.steps is None:
            object.__setattr__(self, "steps", np.arange(self.loss.size, dtype=np.int64))

    @property
    def final(self) -> float:
        return float(self.loss[-1])


def approximation(run: Run) -> str:
    """Which closure produced a theory curve and how far to trust it."""
    exact = {"gaussian": GAUSSIAN, "rademacher": RADEMACHER}[run.sampling.features]
    tau = f"tau = ({run.noise.tau1:g}, {run.noise.tau2:g})"
    p = run.problem
    if p.data is not None:
        fit = "" if p.tau_residual is None else f", fit residual {p.tau_residual:.3g}"
        return (f"SE closure, {tau}{fit}: an approximation on real rows (its critical learning "
                "rate can be far too high: compare route 'exact-data', or run `sgdyn check-se`)")
    if run.noise == exact:
        return f"SE closure, {tau}: exact for {run.sampling.features} features"
    return (f"SE closure, {tau}: an approximation unless the data's fourth moments are SE with "
            f"these parameters ({run.sampling.features} features are SE with "
            f"({exact.tau1:g}, {exact.tau2:g}))")


def system_at(run: Run, values: dict) -> ModeSystem:
    """The constant-hyperparameter system of ``run`` at one step's parameter ``values``."""
    s = run.sampling
    problem = run.problem.replace(data_size=s.data_size if s.kind == "without-replacement" else None)
    return ModeSystem.build(problem, float(values["alpha"]), float(values["beta"]),
                            int(values["batch"]), run.bound_method(values), run.noise)


def mode_inputs(run: Run, noise: NoiseModel | None = None) -> ModeInputs:
    """Per-mode inputs of the recursion kernel for ``run`` (SE noise ``noise``, default the run's)."""
    noise = run.noise if noise is None else noise
    p, m = run.problem, run.method
    first = {k: float(v[0]) for k, v in run.hyperparameters(0, 1).items()} if run.steps else \
        {k: float(s.values(np.zeros(1, np.int64), 1)[0]) for k, s in run.schedule.shapes}
    lam = p.eigenvalues
    pre = m.preconditioner_values(lam, first)
    x0 = m.initial_state(first)
    pairs = vech_pairs(m.dim)
    xx = np.array([x0[a] * x0[b] for a, b in pairs])
    return ModeInputs(lam=lam, lp=lam * pre, pp=pre * pre, wl=p.multiplicity * lam,
                      src=p.label_noise * lam, X0=np.ascontiguousarray(xx[:, None] * p.initial[None, :]),
                      tau1=noise.tau1, tau2=noise.tau2, floor=0.5 * p.label_noise)


def moments(run: Run, inputs: ModeInputs | None = None) -> Moments:
    """The recursion of ``sgdyn.theory.recursion`` over ``run`` (its schedule and recorded steps)."""
    values = run.hyperparameters
    if inputs is None:
        problem, scale = run.problem.normalized() if not run.method.preconditioned else \
            (run.problem, 1.0)
        inputs = mode_inputs(run.replace(problem=problem) if scale != 1.0 else run)
        if scale != 1.0:    # Problem.normalized: alpha s at lambda / s, every product exact
            def values(t0, t1, _base=run.hyperparameters):
                v = dict(_base(t0, t1))
                v["alpha"] = v["alpha"] * scale
                return v
    return run_moments(inputs, run.method, values, run.batch_factors, run.steps,
                       run.recorded_steps, run.is_constant)


def _final_values(run: Run) -> dict:
    t = max(run.steps - 1, 0)
    if run.steps == 0:
        return {k: float(s.values(np.zeros(1, np.int64), 1)[0]) for k, s in run.schedule.shapes}
    return {k: float(v[0]) for k, v in run.hyperparameters(t, t + 1).items()}


def _curve(run: Run, loss, steps, stopped, route) -> LossCurve:
    sing = singularities(system_at(run, _final_values(run)))
    reason = sing.reason if run.is_constant else f"at the last step's hyperparameters: {sing.reason}"
    return LossCurve(np.asarray(loss), run.steps, sing.diverges or stopped, sing.rate,
                     sing.limited_by, reason, stopped, np.asarray(steps, dtype=np.int64), route,
                     approximation(run))


def recursion_route(run: Run) -> LossCurve:
    m = moments(run)
    return _curve(run, m.loss, m.steps, m.stopped, "recursion")


def _segment_coefficients(arr, X0, steps: int, R: float) -> tuple[np.ndarray, np.ndarray]:
    """``L_0..L_T`` and the state ``X_T`` of one constant segment started from the per-mode state
    ``X0`` ``(N, q)``, by Cauchy integrals of the generating functions on ``|z| = r``:
    ``Y_k = (I - z A_k)^{-1} [X0_k, coupling_k, source_k]`` (one linear solve per mode and point),
    ``D(z) = (drive . Y_X + z/(1-z) drive . Y_S) / (1 - z drive . Y_C)``,
    ``X_k(z) = Y_X + z D Y_C + z/(1-z) Y_S``, ``L(z) = loss . X + floor / (1 - z)``."""
    r = R * (1.0 - 1.0 / (steps + 1))
    M = 1 << int(np.ceil(np.log2(32 * (steps + 1))))
    N, q = X0.shape
    L = np.empty(M, dtype=complex)
    end = np.zeros((N, q), dtype=complex)
    rhs = np.stack([X0, arr.coupling, arr.source], axis=-1)          # (N, q, 3)
    chunk = max(1, (1 << 21) // max(N * q * q, 1))
    for i in range(0, M, chunk):
        theta = 2.0 * np.pi * np.arange(i, min(M, i + chunk)) / M
        zz = r * np.exp(1j * theta)
        B = np.eye(q)[None, None] - zz[:, None, None, None] * arr.A[None]
        Y = np.linalg.solve(B, np.broadcast_to(rhs, (zz.size,) + rhs.shape))
        YX, YC, YS = Y[..., 0], Y[..., 1], Y[..., 2]
        src = zz / (1.0 - zz)
        dX = np.einsum("nq,mnq->m", arr.drive, YX)
        dC = np.einsum("nq,mnq->m", arr.drive, YC)
        dS = np.einsum("nq,mnq->m", arr.drive, YS)
        D = (dX + src * dS) / (1.0 - zz * dC)
        X = YX + (zz * D)[:, None, None] * YC + src[:, None, None] * YS
        L[i:i + zz.size] = np.einsum("nq,mnq->m", arr.loss, X) + arr.floor / (1.0 - zz)
        # coefficient T of X(z): (1/M) sum_m X(z_m) z_m^-T
        end += np.einsum("m,mnq->nq", np.exp(-1j * theta * steps), X)
    coeffs = np.fft.fft(L)[: steps + 1].real / M
    with np.errstate(under="ignore", over="ignore"):
        loss = coeffs * np.exp(-np.arange(steps + 1) * np.log(r))
        state = end.real / M * r ** -steps
    return loss, state


def _piecewise_generating_function(run: Run) -> LossCurve:
    pieces = run.schedule.pieces()
    if pieces is None:
        raise ValueError("route 'generating-function' needs piecewise-constant hyperparameters "
                         "(constant, step decay, batch doubling, arrays of few distinct runs); "
                         "use route='recursion' for this schedule")
    X = None
    loss = [np.empty(0)]
    stopped = False
    for a, b, values in pieces:
        system = system_at(run, values)
        arr = system.arrays()
        if X is None:
            X = arr.X0
        sing = singularities(system)
        R = min(1.0 / sing.rate if sing.rate > 0 else 1e6, 1e6)
        if run.problem.label_noise > 0:
            R = min(R, 1.0)
        seg, X = _segment_coefficients(arr, X, b - a, R)
        loss.append(seg[:-1] if b < run.steps else seg)
        if not np.all(np.abs(seg) < OVERFLOW_GUARD):
            stopped = True
            break
    loss = np.concatenate(loss)
    over = np.nonzero(~(np.abs(loss) < OVERFLOW_GUARD))[0]
    if over.size:
        loss, stopped = loss[: over[0] + 1], True
    rec = run.recorded_steps
    keep = rec[rec < loss.size]
    if stopped and (keep.size == 0 or keep[-1] != loss.size - 1):
        keep = np.append(keep, loss.size - 1)
    return _curve(run, loss[keep], keep, stopped, "generating-function")


def generating_function_route(run: Run) -> LossCurve:
    if not run.is_constant:
        return _piecewise_generating_function(run)
    system = system_at(run, run.constant())
    sing = singularities(system)
    loss = generating_function_curve(system, run.steps, sing)
    over = np.nonzero(~(np.abs(loss) < OVERFLOW_GUARD))[0]
    if over.size:
        loss = loss[: over[0] + 1]
    rec = run.recorded_steps
    keep = rec[rec < loss.size]
    stopped = loss.size < run.steps + 1
    if stopped and (keep.size == 0 or keep[-1] != loss.size - 1):
        keep = np.append(keep, loss.size - 1)
    return _curve(run, loss[keep], keep, stopped, "generating-function")


def _data_route(run: Run, route: str):
    """Checks and per-step arguments shared by the routes on a data problem's rows:
    ``(args, kwargs)`` of ``exact_loss_curve`` / ``q4_loss_curve``."""
    if run.problem.data is None:
        raise ValueError(f"route {route!r} needs a data problem with its rows (Problem.from_rows, "
                         "or `sgdyn problem from-data`)")
    if run.sampling.kind == "epochs":
        raise ValueError(f"route {route!r} draws batches afresh each step; sampling 'epochs' has "
                         "no exact theory here (use the Monte Carlo)")
    T = run.steps
    vals = run.hyperparameters(0, max(T, 1))
    params = {p.name: vals[p.name] for p in run.method.extra}
    per = (lambda v: v if T > 0 else float(v[0]))
    first = {k: float(v[0]) for k, v in vals.items()}
    args = (run.problem, per(vals["alpha"]), per(vals["beta"]), per(vals["batch"]), T, run.method)
    kwargs = dict(sampling=run.sampling.kind, params={k: per(v) for k, v in params.items()},
                  preconditioner=run.method.preconditioner_values(run.problem.eigenvalues, first))
    return args, kwargs


def _recorded(run: Run, curve) -> np.ndarray:
    """The run's recorded steps the curve reached (and the step where it was stopped)."""
    rec = run.recorded_steps
    keep = rec[rec < curve.loss.size]
    if curve.stopped_early and (keep.size == 0 or keep[-1] != curve.loss.size - 1):
        keep = np.append(keep, curve.loss.size - 1)
    return keep


def exact_data_route(run: Run) -> LossCurve:
    """The exact finite-data route (``sgdyn.theory.exact_data``) over the run's rows: no SE
    closure; any method, any schedule, i.i.d. or without-replacement batches."""
    from sgdyn.theory import exact_data
    args, kwargs = _data_route(run, "exact-data")
    curve = exact_data.exact_loss_curve(*args, **kwargs)
    keep = _recorded(run, curve)
    return LossCurve(curve.loss[keep], run.steps, curve.diverges, curve.noise_radius, "noise",
                     curve.reason, curve.stopped_early, keep, "exact-data",
                     "exact finite-data second moments (the data's own fourth moments, no closure)")


def q4_route(run: Run) -> LossCurve:
    """The Q4 closure (``sgdyn.theory.q4_closure``) over the run's rows: the diagonal closure with
    the data's fourth-moment matrix; any method, any schedule, i.i.d. or without-replacement
    batches."""
    from sgdyn.theory import q4_closure
    args, kwargs = _data_route(run, "q4")
    curve = q4_closure.q4_loss_curve(*args, **kwargs)
    keep = _recorded(run, curve)
    limited = "mode stability" if not np.isfinite(curve.q4_radius) else "noise"
    return LossCurve(curve.loss[keep], run.steps, curve.diverges, curve.rate, limited,
                     curve.reason, curve.stopped_early, keep, "q4",
                     "Q4 closure: diagonal second moments with the data's fourth-moment matrix "
                     "(drops the off-diagonal coupling the route 'exact-data' keeps)")


def jump_ahead_route(run: Run) -> LossCurve:
    """The exact jump-ahead route (``sgdyn.theory.jumpahead``): the loss at the recorded steps
    without stepping through the others (t = 10^12 costs as much as t = 10); constant or
    piecewise-constant hyperparameters. Exact for the per-mode A-form maps; at beta -> 1 those
    maps' own rounding bounds the accuracy (2.6e-8 relative at beta = 0.99 after 5000 steps,
    where the recursion keeps 1e-10)."""
    from sgdyn.theory import jumpahead
    rec = run.recorded_steps
    if run.is_constant:
        res = jumpahead.loss_at_steps(system_at(run, run.constant()).arrays(), rec)
    else:
        pieces = run.schedule.pieces()
        if pieces is None:
            raise ValueError("route 'jump-ahead' needs piecewise-constant hyperparameters "
                             "(constant, step decay, batch doubling, arrays of few distinct runs); "
                             "use route='recursion' for this schedule")
        segs = [(system_at(run, v).arrays(), b - a) for a, b, v in pieces]
        segs[-1] = (segs[-1][0], None)
        res = jumpahead.loss_at_steps_piecewise(segs, rec)
    over = np.nonzero(res.overflow)[0]
    stopped = bool(over.size)
    n = over[0] + 1 if stopped else res.steps.size
    curve = _curve(run, res.loss[:n], res.steps[:n], stopped, "jump-ahead")
    approx = curve.approximation + "; jump-ahead of the per-mode maps (exact up to their rounding)"
    return replace(curve, approximation=approx)


_ROUTE_FUNCTIONS = {"recursion": recursion_route, "generating-function": generating_function_route,
                    "exact-data": exact_data_route, "jump-ahead": jump_ahead_route,
                    "q4": q4_route}


def solve(run: Run, route: str = "recursion") -> LossCurve:
    """The expected loss of ``run`` at its recorded steps by ``route`` (module docstring)."""
    if not isinstance(run, Run):
        raise ValueError(f"run must be a sgdyn.theory.Run, got {type(run).__name__}")
    if route not in _ROUTE_FUNCTIONS:
        raise ValueError(f"route must be one of {tuple(_ROUTE_FUNCTIONS)}, got {route!r}")
    run.sampling.batch_factor(1)         # refuses samplings without a theory, in one line
    check_work(run, route)
    return _ROUTE_FUNCTIONS[route](run)


def check_work(run: Run, route: str) -> None:
    """Step-by-step routes cost modes x steps x (state size)^2; the exact finite-data route
    rows x modes^2 per step, the Q4 closure modes^2 per step. The jump-ahead route does not step."""
    from sgdyn.theory import budget
    d = run.method.dim
    n, T = run.problem.n_modes, run.steps
    if route in ("recursion", "generating-function"):
        budget.work("steps", float(n) * T * (d * (d + 1) // 2) ** 2,
                    f"stepping {n} modes through {T} steps (route 'jump-ahead' does not step)")
    elif route == "exact-data" and run.problem.data is not None:
        budget.work("steps", float(run.problem.data.n) * n * n * d * d * T,
                    f"the exact finite-data route on {run.problem.data.n} rows x {n} modes for "
                    f"{T} steps")
    elif route == "q4":
        budget.work("steps", float(n) * (n + d ** 3) * T,
                    f"the Q4 closure on {n} modes for {T} steps")


def renewal_sequences(system: ModeSystem, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The coefficients ``V_0..V_T`` and ``U_0..U_T`` of ``V(z)`` and ``U(z)`` (renewal form
    ``D = V + U * D``, ``D_t = sum_k w_k lambda_k g . X_{k,t}``; ``= 2 L_t`` for heavy ball / SGD
    without label noise), by the recursion with the coupling switched off (``tau1 = 0``, no
    label-noise source): ``V_t = sum_k w_k c_k lambda_k g A_k^t x0`` (the noiseless signal),
    ``U_t = tau1 gamma sum_k w_k lambda_k^2 g A_k^(t-1) kk`` (a unit noise kick per mode, U_0 = 0,
    started from ``tau1 gamma lambda_k p_k^2 kk``).
    """
    steps = checks.integer("steps", steps, 0)
    run = Run.build(system.problem.replace(label_noise=0.0), system.method, alpha=system.alpha,
                    beta=system.beta, batch=system.batch, steps=steps, noise=system.noise)
    base = mode_inputs(run)
    quiet = replace(base, tau1=0.0, src=np.zeros_like(base.src), floor=0.0)
    V = moments(run, quiet).drive
    if steps == 0:
        return V, np.zeros(1)
    F, K, G = run.method.numeric_matrices(run.constant())
    kk = step_coefficients(F, K, G)[2][0]
    kick = system.gamma * system.noise.tau1 * base.lam * base.pp
    U = moments(run.replace(schedule=run.schedule), replace(
        quiet, X0=np.ascontiguousarray(kk[:, None] * kick[None, :]))).drive[:-1]
    return V, np.concatenate([[0.0], U])


def generating_function_curve(system: ModeSystem, steps: int, sing: Singularities) -> np.ndarray:
    """Coefficients of L(z) by the trapezoidal Cauchy integral on ``|z| = r``.

    ``r = R (1 - 1/(T+1))`` with ``R`` the radius of convergence (1 at most with label noise):
    the scaled coefficients ``L_t r^t`` then stay of one magnitude over ``t <= T``, and the aliased
    terms ``L_{t+M} r^M`` are ``~ exp(-M/(T+1))`` smaller.
    """
    R = 1.0 / sing.rate if sing.rate > 0 else 1e6
    if system.problem.label_noise > 0:
        R = min(R, 1.0)
    R = min(R, 1e6)
    r = R * (1.0 - 1.0 / (steps + 1))
    M = 1 << int(np.ceil(np.log2(32 * (steps + 1))))
    theta = 2.0 * np.pi * np.arange(M) / M
    values = GeneratingFunctions(system).loss(r * np.exp(1j * theta))
    coeffs = np.fft.fft(values)[: steps + 1].real / M
    # A divergent curve passes the guard well before float overflow; cut it there.
    log_scale = -np.arange(steps + 1) * np.log(r)
    keep = log_scale < np.log(OVERFLOW_GUARD) - np.log(np.abs(coeffs).max() + 1e-300) + 10.0
    n = steps + 1 if keep.all() else int(np.argmin(keep))
    with np.errstate(under="ignore"):
        return coeffs[:n] * np.exp(log_scale[:n])


def loss_curve(problem: Problem, alpha, beta, batch, steps: int, method="heavy-ball",
               noise: NoiseModel = GAUSSIAN, route: str = "recursion", record=None,
               params: dict | None = None) -> LossCurve:
    """Expected population loss ``L_t = 1/2 sum_k lambda_k E[e_{k,t}^2] + sigma^2/2`` of
    ``Run.build(problem, method, alpha=alpha, beta=beta, batch=batch, steps=steps, ...)`` by
    ``route``, at every step ``t = 0..T`` unless ``record`` (``sgdyn.theory.Record``) says otherwise.

    ``alpha``, ``beta``, ``batch`` (and ``params``, the method's extra parameters) are numbers or
    schedules (``sgdyn.theory.schedules``); ``method`` a shipped name (``"heavy-ball"`` is PyTorch
    ``SGD(lr=alpha, momentum=beta)``), update equations or a ``Method``; ``noise`` the SE model
    (default Gaussian features, ``tau1 = 1, tau2 = -1``); batches are i.i.d. draws, or without
    replacement when ``problem.data_size`` is set. Source: Velikanov, Kuznedelev, Yarotsky
    (ICLR 2023), generalised to any linear method and schedule.
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    run = Run.build(problem, method, alpha=alpha, beta=beta, batch=batch, steps=steps,
                    params=params, noise=noise, record=record)
    return solve(run, route)
