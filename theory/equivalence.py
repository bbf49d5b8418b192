"""SGD against momentum at small learning rates (docs/theory.md, section of the same name).

Wang, Malladi, Wang, Lyu, Li, "The Marginal Value of Momentum for Small Learning Rate SGD"
(ICLR 2024, arXiv 2307.15196): SGD with learning rate ``eta`` and heavy ball in *normalized* form
``m <- beta m + (1 - beta) g, w <- w - eta m`` (PyTorch ``SGD(lr=eta (1 - beta), momentum=beta)``,
docs/theory.md, "Conventions") have the same effective learning rate ``eta`` and stay close for
``O(1/eta)`` steps when ``1 - beta`` is not too small against ``eta``.

On linear models the comparison is exact: both loss curves come from the second-moment recursion
(``theory.dynamics.loss_curve``, exact for Gaussian features), so the gap carries no Monte Carlo
error. This module measures

* the largest relative gap ``max_{t <= K/eta} |L^mom_t - L^sgd_t| / L^sgd_t`` (``momentum_gap``),
* its exponent in ``eta`` along ``1 - beta = c eta^a`` (``gap_scaling``, least squares in log-log),
* the stability limits of both methods at the same effective rate (``stability_edges``): the
  deterministic edge (every mode's characteristic roots in the unit disk, found from the roots of
  the symbolic ``det(mu I - M)`` of ``theory.symbolic``, nothing retyped) and the batch-dependent
  edge where the second-moment dynamics diverge (noise feedback, ``theory.transfer``),
* the stationary loss under label noise (``stationary_loss``), the fixed point of the
  second-moment recursion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import budget, checks
from sgdyn.theory.display import Result
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.symbolic import derive
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import singularities

_REL_TOL = 1e-12      # bisection stops at this relative width of the bracket


def pytorch_lr(eta: float, beta: float) -> float:
    """PyTorch ``lr`` (our ``alpha``) of normalized momentum with effective rate ``eta``."""
    return eta * (1.0 - beta)


def _check_eta_beta(eta, beta) -> tuple[float, float]:
    return checks.positive("eta", eta), checks.momentum("beta", beta)


def _roots_stable(method: str, alpha: float, beta: float, lam: float, noise: NoiseModel) -> bool:
    """Every root of the mode's characteristic polynomial ``det(mu I - M(lambda))`` has |mu| < 1."""
    coeffs = derive(method).numeric.char_coeffs(alpha, beta, lam, 0.0, noise.tau1, noise.tau2)
    return bool(np.all(np.abs(np.roots(coeffs)) < 1.0))


def _bisect_edge(stable, upper_start: float) -> float:
    """Largest ``x`` with ``stable(x)``, assuming stability holds exactly on ``(0, edge)``."""
    lo, hi = 0.0, upper_start
    while stable(hi):
        lo, hi = hi, 2.0 * hi
        if hi > 1e12:
            return np.inf
    while hi - lo > _REL_TOL * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class StabilityEdges(Result):
    """Largest effective learning rate ``eta`` at which each method is stable.

    ``sgd_deterministic`` / ``momentum_deterministic``: every mode's deterministic map stable
    (for the linear model: ``eta lambda_max < 2`` and ``eta lambda_max < 2 (1 + beta) / (1 - beta)``);
    ``ratio = momentum / sgd`` (predicted ``(1 + beta) / (1 - beta)``).
    ``sgd_stochastic`` / ``momentum_stochastic``: the mini-batch second moments stay bounded
    (noise feedback ``U(1) < 1`` as well as mode stability): the batch-dependent limit.
    """

    beta: float
    batch: int
    sgd_deterministic: float
    momentum_deterministic: float
    sgd_stochastic: float
    momentum_stochastic: float

    @property
    def ratio(self) -> float:
        return self.momentum_deterministic / self.sgd_deterministic

    @property
    def stochastic_ratio(self) -> float:
        return self.momentum_stochastic / self.sgd_stochastic


def deterministic_edge(eigenvalues, beta: float, method: str = "heavy-ball") -> float:
    """Largest effective rate ``eta`` (PyTorch ``lr = eta (1 - beta)``) with every mode stable,
    from the roots of the method's characteristic polynomial (``theory.symbolic``)."""
    lam_max = float(np.max(checks.real_array("eigenvalues", eigenvalues, positive_entries=True)))
    beta = checks.momentum("beta", beta)
    return _bisect_edge(lambda eta: _roots_stable(method, pytorch_lr(eta, beta), beta, lam_max,
                                                  GAUSSIAN), 1.0 / lam_max)


def stochastic_edge(problem: Problem, beta: float, batch: int, method: str = "heavy-ball",
                    noise: NoiseModel = GAUSSIAN, upper: float | None = None) -> float:
    """Largest effective rate ``eta`` at which the expected loss converges for ``batch``.

    Divergence is read off the loss generating function's singularities (mode stability and
    noise feedback ``U(z*) = 1``, ``theory.transfer.singularities``); bisection from below the
    deterministic edge ``upper`` (the noisy edge never exceeds it).
    """
    beta = checks.momentum("beta", beta)
    if upper is None:
        upper = deterministic_edge(problem.eigenvalues, beta, method)

    def stable(eta):
        if eta >= upper:
            return False
        system = ModeSystem.build(problem, pytorch_lr(eta, beta), beta, batch, method, noise)
        return not singularities(system).diverges
    return _bisect_edge(stable, 0.5 * upper)


def stability_edges(problem: Problem, beta: float, batch: int,
                    noise: NoiseModel = GAUSSIAN) -> StabilityEdges:
    """Edges of SGD and normalized heavy ball (momentum ``beta``) at equal effective rate."""
    beta = checks.momentum("beta", beta)
    batch = checks.integer("batch", batch, 1)
    sgd_det = deterministic_edge(problem.eigenvalues, 0.0, "sgd")
    mom_det = deterministic_edge(problem.eigenvalues, beta, "heavy-ball")
    return StabilityEdges(
        beta, batch, sgd_det, mom_det,
        stochastic_edge(problem, 0.0, batch, "sgd", noise, sgd_det),
        stochastic_edge(problem, beta, batch, "heavy-ball", noise, mom_det))


def stationary_loss(problem: Problem, eta: float, beta: float, batch: int,
                    method: str = "heavy-ball", noise: NoiseModel = GAUSSIAN) -> float:
    """``lim_t L_t`` for normalized momentum (PyTorch ``lr = eta (1 - beta)``), or ``inf`` if the
    dynamics diverge.

    The fixed point of the second-moment recursion (``theory.system.ModeArrays``):
    ``X_k = R_k (coupling_k D + source_k)`` with ``R_k = (I - A_k)^{-1}`` and
    ``D = sum_k drive_k . X_k``, so ``D = S / (1 - U(1))``, ``S = sum_k drive_k R_k source_k``,
    ``U(1) = sum_k drive_k R_k coupling_k``; then ``L = sum_k loss_k . X_k + sigma^2 / 2``.
    With purely additive noise of variance ``s^2`` on one mode (SE model ``tau1 = tau2 = 0``,
    ``s^2 = sigma^2 lambda / b``) this is the formula of docs/theory.md ("SGD against momentum at
    small learning rates"),
    ``sigma^2/2 + eta s^2 / (4 (1 - eta lambda (1 - beta) / (2 (1 + beta))))`` *(derived)*.
    """
    eta, beta = _check_eta_beta(eta, beta)
    system = ModeSystem.build(problem, pytorch_lr(eta, beta), beta, batch, method, noise)
    if singularities(system).diverges:
        return np.inf
    arr = system.arrays()
    eye = np.eye(arr.A.shape[-1])
    Rc = np.linalg.solve(eye - arr.A, arr.coupling[..., None])[..., 0]
    Rs = np.linalg.solve(eye - arr.A, arr.source[..., None])[..., 0]
    D = np.sum(arr.drive * Rs) / (1.0 - np.sum(arr.drive * Rc))
    return float(np.sum(arr.loss * (Rc * D + Rs)) + arr.floor)


@dataclass(frozen=True)
class MomentumGap(Result):
    """Exact loss curves of SGD (lr ``eta``) and normalized heavy ball (``eta``, ``beta``).

    ``relative_gap[t] = |momentum_loss[t] - sgd_loss[t]| / sgd_loss[t]`` for ``t = 0..steps``,
    ``steps = ceil(horizon / eta)``; ``max_gap`` its maximum (``inf`` if either curve diverges)
    at ``max_gap_step``.
    """
    _dims = {"sgd_loss": ("step",), "momentum_loss": ("step",), "relative_gap": ("step",)}

    eta: float
    beta: float
    batch: int
    horizon: float
    steps: int
    sgd_loss: np.ndarray
    momentum_loss: np.ndarray
    relative_gap: np.ndarray
    max_gap: float
    max_gap_step: int
    diverges: bool
    reason: str


def momentum_gap(problem: Problem, eta: float, beta: float, batch: int, horizon: float = 1.0,
                 noise: NoiseModel = GAUSSIAN) -> MomentumGap:
    """Largest relative gap between SGD and normalized momentum over ``horizon / eta`` steps.

    SGD: ``theory.methods.SGD`` with ``alpha = eta``; momentum: heavy ball with
    ``alpha = eta (1 - beta)`` and ``beta`` (Wang et al. 2024, normalized SGDM). Both curves are the
    exact expected population loss of the second-moment recursion (Gaussian features exact).
    """
    eta, beta = _check_eta_beta(eta, beta)
    horizon = checks.positive("horizon", horizon)
    batch = checks.integer("batch", batch, 1)
    span = horizon / eta
    budget.memory("horizon", 4 * 8.0 * (span + 1), f"the loss curves over horizon/eta = {span:.3g} "
                  "steps")
    steps = int(np.ceil(span))
    sgd = loss_curve(problem, eta, 0.0, batch, steps, method="sgd", noise=noise)
    mom = loss_curve(problem, pytorch_lr(eta, beta), beta, batch, steps, method="heavy-ball",
                     noise=noise)
    diverges = sgd.diverges or mom.diverges
    n = min(sgd.loss.size, mom.loss.size)
    rel = np.abs(mom.loss[:n] - sgd.loss[:n]) / sgd.loss[:n]
    worst = int(np.argmax(rel))
    reason = f"sgd {sgd.reason}; momentum {mom.reason}"
    return MomentumGap(eta, beta, batch, horizon, steps, sgd.loss, mom.loss, rel,
                       np.inf if diverges else float(rel[worst]), worst, diverges, reason)


@dataclass(frozen=True)
class GapScaling(Result):
    """``max_gap(eta)`` along ``1 - beta = scale * eta^a`` and its log-log least-squares fit
    ``log max_gap = exponent * log eta + intercept`` (``exponent_stderr`` from the residuals;
    ``local_exponents`` are the slopes between neighbouring grid points)."""
    _dims = {"betas": ("eta",), "gaps": ("eta",), "local_exponents": ("eta_interval",)}

    a: float
    scale: float
    etas: np.ndarray
    betas: np.ndarray
    gaps: np.ndarray
    exponent: float
    exponent_stderr: float
    intercept: float
    local_exponents: np.ndarray


def momentum_schedule(etas, a: float, scale: float) -> np.ndarray:
    """``beta = 1 - scale * eta^a``; each must lie in (-1, 1)."""
    etas = checks.real_array("etas", etas, positive_entries=True)
    a = checks.nonnegative("a", a)
    scale = checks.positive("scale", scale)
    betas = 1.0 - scale * etas ** a
    if np.any(betas <= -1.0) or np.any(betas >= 1.0):
        raise ValueError(f"scale * eta^a must lie in (0, 2) so that beta is in (-1, 1); "
                         f"got beta in [{betas.min():.6g}, {betas.max():.6g}]")
    return betas


def gap_scaling(problem: Problem, etas, a: float, batch: int, horizon: float = 1.0,
                scale: float = 0.5, noise: NoiseModel = GAUSSIAN) -> GapScaling:
    """Exponent of the largest relative gap in ``eta`` when ``1 - beta = scale * eta^a``.

    ``a = 0`` keeps beta fixed at ``1 - scale``; ``a > 0`` lets momentum approach 1 as eta -> 0.
    """
    etas = np.sort(checks.real_array("etas", etas, positive_entries=True))
    if etas.size < 2 or np.unique(etas).size != etas.size:
        raise ValueError(f"etas must hold at least 2 distinct values, got {etas.tolist()}")
    betas = momentum_schedule(etas, a, scale)
    gaps = np.array([momentum_gap(problem, e, b, batch, horizon, noise).max_gap
                     for e, b in zip(etas, betas)])
    if not np.all(np.isfinite(gaps)) or np.any(gaps <= 0):
        raise ValueError("etas must keep both methods convergent (a finite, positive gap) at "
                         f"every grid point; gaps {gaps.tolist()}")
    x, y = np.log(etas), np.log(gaps)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    dof = max(x.size - 2, 1)
    stderr = float(np.sqrt(np.sum(resid ** 2) / dof / np.sum((x - x.mean()) ** 2)))
    return GapScaling(float(a), float(scale), etas, betas, gaps, float(slope), stderr,
                      float(intercept), np.diff(y) / np.diff(x))
