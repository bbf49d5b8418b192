"""The best (alpha, beta) for a batch size, for one of three objectives that answer different
questions (``docs/negative_momentum.md``):

* ``"rate"``: the exponential rate ``rho`` of ``L_t ~ rho^t`` on a finite spectrum
  (``theory.stability.optimal_rate``); it always prefers large positive momentum, because the
  slowest mode sets it and positive momentum allows the largest effective learning rate;
* ``"horizon"``: the exact expected loss ``L_T`` after ``steps`` steps
  (``theory.horizon.optimal_hyperparameters_at_horizon``): the core paper's "optimal convergence
  at negative momenta" in the noise-dominated phase at small batch;
* ``"asymptotic"``: the constant ``C`` of the power-law asymptote ``L_t ~ C t^-p`` that dominates
  at large t on a power-law problem (``theory.asymptotics.phases``; the exponent ``p`` depends on
  the spectrum only, so the constant is what the hyperparameters choose): the signal constant
  ``C_V / (2 (1 - U(1)))`` in the signal-dominated phase, the noise constant
  ``V(1) C_U / (2 (1 - U(1))^2)`` in the noise-dominated one.

Each returns an ``Optimum`` that says which objective it minimised, beside the best plain-SGD
(``beta = 0``) value of the same objective.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.noise import GAUSSIAN, NoiseModel, batch_factor
from sgdyn.theory.problem import Problem

OBJECTIVES = ("rate", "horizon", "asymptotic")


@dataclass(frozen=True)
class Optimum(Result):
    """The (alpha, beta) minimising one objective, and what that objective is."""

    objective: str          # "rate", "horizon" or "asymptotic"
    quantity: str           # what was minimised, in words
    alpha: float
    beta: float
    value: float            # the objective at the optimum
    alpha_eff: float        # alpha / (1 - beta)
    alpha_crit: float       # critical learning rate at beta*
    alpha_beta0: float      # the best alpha at beta = 0
    value_beta0: float      # the objective there
    batch: int
    steps: int | None       # the horizon T (objective "horizon")
    detail: str             # rate: what limits it; asymptotic: the phase and its exponent

    _properties = ("gain", "reason")

    @property
    def gain(self) -> float:
        """``1 - value / value_beta0``: how much momentum (of either sign) improves on beta = 0."""
        return 1.0 - self.value / self.value_beta0 if self.value_beta0 > 0 else float("nan")

    @property
    def reason(self) -> str:
        return (f"objective {self.objective}: {self.quantity}; minimum {self.value:.10g} at "
                f"alpha = {self.alpha:.6g}, beta = {self.beta:.6g} (alpha_eff = "
                f"{self.alpha_eff:.6g}); best beta = 0: {self.value_beta0:.10g} at alpha = "
                f"{self.alpha_beta0:.6g} ({100 * self.gain:.3g} % lower with momentum {self.beta:+.3g})")


def asymptote_constant(problem: Problem, alpha, beta, batch, method="heavy-ball",
                       noise: NoiseModel = GAUSSIAN) -> tuple[float, str, float]:
    """``(C, phase, p)``: the constant and exponent of the asymptote ``L_t ~ C t^-p`` that
    dominates at large t (``theory.asymptotics.phases``; both terms at the phase boundary);
    ``C = inf`` where the loss diverges."""
    from sgdyn.theory.asymptotics import phases
    ph = phases(problem, alpha, beta, batch, method, noise)
    if ph.phase == "diverges":
        return float("inf"), ph.phase, float("nan")
    if ph.phase == "signal":
        return float(ph.signal_loss_constant), ph.phase, ph.signal_exponent
    if ph.phase == "noise":
        return float(ph.noise_loss_constant), ph.phase, ph.noise_exponent
    return float(ph.signal_loss_constant + ph.noise_loss_constant), ph.phase, ph.noise_exponent


def _sigmoid(s):
    return 0.5 * (1.0 + np.tanh(0.5 * s))


def _minimise(f, problem, bsz, method, noise, grid, progress, desc):
    """Two stages over the convergence region, as ``optimal_hyperparameters_at_horizon``: a grid
    ``beta`` in [-0.9, 0.9] (plus 0) by ``alpha = alpha_crit(beta) sigmoid(s)``, s in [-4, 5]
    (every point converges), then Nelder-Mead on (atanh beta, log alpha) from the best point;
    the beta = 0 reference by a bounded search in log alpha. ``f(alpha, beta)`` -> float."""
    from scipy import optimize

    from sgdyn.theory.progress import bar
    from sgdyn.theory.stability import _critical_alphas
    g = batch_factor(bsz, problem.data_size)
    betas = np.linspace(-0.9, 0.9, grid[0])
    if 0.0 not in betas:
        betas = np.sort(np.append(betas, 0.0))
    crit = _critical_alphas(method, problem.eigenvalues, betas, g, noise.tau1, noise.tau2,
                            problem.multiplicity)[0]
    ss = np.linspace(-4.0, 5.0, grid[1])
    A = crit[:, None] * _sigmoid(ss)[None, :]
    V = np.empty(A.shape)
    with bar(progress, A.size + 250, desc, "pt") as update:
        for i in range(A.shape[0]):
            for j in range(A.shape[1]):
                V[i, j] = f(float(A[i, j]), float(betas[i]))
            update(A.shape[1])

        def obj(v):
            update(1)
            a, bt = float(np.exp(v[1])), float(np.tanh(v[0]))
            return f(a, bt) if abs(bt) < 1.0 else np.inf
        i, j = np.unravel_index(np.argmin(V), V.shape)
        x0 = np.array([np.arctanh(betas[i]), np.log(A[i, j])])
        simplex = x0 + np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]])
        res = optimize.minimize(obj, x0, method="Nelder-Mead",
                                options={"xatol": 1e-5, "fatol": 0.0, "maxiter": 200,
                                         "initial_simplex": simplex})
        i0 = int(np.nonzero(betas == 0.0)[0][0])
        j0 = int(np.argmin(V[i0]))
        lo, hi = np.log(A[i0, max(j0 - 1, 0)]), np.log(A[i0, min(j0 + 1, len(ss) - 1)])
        r0 = optimize.minimize_scalar(lambda v: obj(np.array([0.0, v])), bounds=(lo, hi),
                                      method="bounded", options={"xatol": 1e-6})
    a0, v0 = (float(np.exp(r0.x)), float(r0.fun)) if r0.fun <= V[i0, j0] else \
        (float(A[i0, j0]), float(V[i0, j0]))
    a, bt, val = (float(np.exp(res.x[1])), float(np.tanh(res.x[0])), float(res.fun)) \
        if res.fun <= V[i, j] else (float(A[i, j]), float(betas[i]), float(V[i, j]))
    return a, bt, val, a0, v0


def optimal_hyperparameters(problem: Problem, batch, objective: str = "rate", steps=None,
                            method="heavy-ball", noise: NoiseModel = GAUSSIAN,
                            progress=None) -> Optimum:
    """The (alpha, beta) minimising ``objective`` (module docstring) at batch size ``batch``;
    ``steps`` is the horizon T of ``objective="horizon"``. ``progress``: a bar for the grid
    stages (``theory.progress``)."""
    from sgdyn.theory.stability import _critical_alphas, _setup, critical_learning_rate, optimal_rate
    m = _setup(problem, method, noise)
    bsz = checks.integer("batch", batch, 1)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective == "horizon":
        if steps is None:
            raise ValueError("steps must be given for objective 'horizon' (the horizon T)")
        T = checks.integer("steps", steps, 1)
    elif steps is not None:
        raise ValueError(f"steps applies to objective 'horizon' only, got steps={steps!r} with "
                         f"objective {objective!r}")
    else:
        T = None
    if objective != "rate" and not m.has_momentum:
        raise ValueError(f"method must have a momentum parameter for objective {objective!r}, "
                         f"got {m.name!r}")
    g = batch_factor(bsz, problem.data_size)

    def crit_at(bt):
        return float(_critical_alphas(m, problem.eigenvalues, bt, g, noise.tau1, noise.tau2,
                                      problem.multiplicity)[0][0])
    if objective == "rate":
        o = optimal_rate(problem, bsz, m, noise)
        ref = optimal_rate(problem, bsz, "sgd", noise)
        return Optimum("rate", "the exponential rate rho of L_t ~ rho^t", o.alpha, o.beta,
                       o.rate, o.alpha_eff, o.alpha_crit, ref.alpha, ref.rate, bsz, None,
                       f"limited by {o.limited_by}")
    if objective == "horizon":
        from sgdyn.theory.horizon import optimal_hyperparameters_at_horizon
        o = optimal_hyperparameters_at_horizon(problem, bsz, T, m, noise, progress=progress)
        return Optimum("horizon", f"the expected loss L_T after T = {T} steps", o.alpha, o.beta,
                       o.loss, o.alpha / (1 - o.beta), crit_at(o.beta), o.alpha_beta0,
                       o.loss_beta0, bsz, T, "exact SE recursion")
    try:    # the phase (and exponent) depend on the spectrum only: read them at one point
        a_ref = 0.5 * critical_learning_rate(problem, 0.0, bsz, m, noise).alpha_crit
        _, phase, p = asymptote_constant(problem, a_ref, 0.0, bsz, m, noise)
    except ValueError as exc:
        raise ValueError(f"objective 'asymptotic' needs a power-law problem without label "
                         f"noise: {exc}") from None

    def f(a, bt):
        return asymptote_constant(problem, a, bt, bsz, m, noise)[0]
    a, bt, val, a0, v0 = _minimise(f, problem, bsz, m, noise, (21, 15), progress,
                                   "optimize (asymptotic)")
    which = {"signal": "signal", "noise": "noise", "boundary": "signal + noise"}[phase]
    return Optimum("asymptotic", f"the constant C of the {which} asymptote L_t ~ C t^-{p:.6g}, "
                                 f"which dominates at large t ({phase}-dominated phase)",
                   a, bt, val, a / (1 - bt), crit_at(bt), a0, v0, bsz, None,
                   f"{phase} phase, exponent {p:.6g}")
