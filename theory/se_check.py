"""How far to trust SE on a data set: the SE route (two fitted numbers ``tau1, tau2``) against the
exact finite-data route (``theory.exact_data``) for one data problem and one setting.

Side by side: the critical learning rates of SE with the fitted tau (``theory.stability``), of
SE with the Gaussian default ``(1, -1)``, of the Q4 closure (the diagonal closure with the data's
fourth moments ``Q``, ``theory.exact_data.q4_critical_learning_rate``) and of the exact dynamics;
the exact noise radius at SE's ``alpha_crit`` (the cheap trust check); and the loss curves of SE
and of the exact route at fractions of the exact threshold, compared on the excess loss
``L_t - sigma^2/2`` (the part the dynamics move):
``deviation = (L_SE,t - L_exact,t) / (L_exact,t - sigma^2/2)`` at the step where its modulus is
largest over ``t <= steps`` (signed: negative means SE predicts too low a loss).

**Verdict** (a string starting with ``safe`` or ``unsafe``):

* ``unsafe`` when SE's ``alpha_crit`` exceeds the exact one by more than ``THRESHOLD_MARGIN``
  (5 %): SE then calls every learning rate between the two convergent, and the dynamics diverge
  there; both thresholds are computed to ~1e-10, so the margin is a practical allowance, not a
  numerical one;
* else ``unsafe`` when SE's loss curve at half the exact threshold is off by more than
  ``CURVE_MARGIN`` (25 %) of the excess loss;
* else ``safe``, saying whether SE is within the margin or conservative (its threshold lower).

The Q4 closure (the middle route: a d x d noise model, ``theory.q4_closure``) is shown the same way:
its threshold ``alpha_crit_q4`` and its curve deviations ``q4_deviation`` against the exact route
(what is left of them is the off-diagonal coupling the closure drops). The verdict is about SE
only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.exact_data import (TRUST_MARGIN, exact_critical_learning_rate,
                                     exact_loss_curve, noise_radius, q4_critical_learning_rate,
                                     require_data, resolve_sampling, se_noise)
from sgdyn.theory.methods import get_method
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.q4_closure import q4_loss_curve
from sgdyn.theory.stability import critical_learning_rate

THRESHOLD_MARGIN = TRUST_MARGIN      # 5 %, shared with the trust check of theory.exact_data
CURVE_MARGIN = 0.25
FRACTIONS = (0.5, 0.9)


@dataclass(frozen=True)
class SECheck:
    verdict: str                    # starts with "safe" or "unsafe"
    safe: bool
    alpha_crit_se: float            # SE with the fitted tau
    alpha_crit_exact: float         # exact finite-data dynamics
    alpha_crit_q4: float            # diagonal closure with the data's fourth moments Q
    alpha_crit_gaussian: float      # SE with the Gaussian default (1, -1)
    threshold_ratio: float          # alpha_crit_se / alpha_crit_exact
    radius_at_se: float             # exact noise radius at alpha_crit_se (> 1: SE overshoots)
    tau1: float
    tau2: float
    tau_residual: float | None      # relative residual of the tau fit
    fractions: tuple                # alpha = fraction * alpha_crit_exact for the curves
    deviation: tuple                # SE's signed max relative excess-loss deviation per fraction
    deviation_step: tuple           # the step where it is largest
    q4_deviation: tuple             # the Q4 closure's signed max relative deviation per fraction
    q4_deviation_step: tuple
    steps: int
    beta: float
    batch: int
    method: str
    sampling: str

    @property
    def table(self) -> str:
        """The thresholds and deviations as a small text table."""
        lines = [f"{'route':<28}{'alpha_crit':>13}{'/ exact':>9}",
                 f"{'exact finite data':<28}{self.alpha_crit_exact:>13.6g}{1.0:>9.3f}",
                 f"{'SE, fitted tau':<28}{self.alpha_crit_se:>13.6g}{self.threshold_ratio:>9.3f}",
                 f"{'Q4 closure':<28}{self.alpha_crit_q4:>13.6g}"
                 f"{self.alpha_crit_q4 / self.alpha_crit_exact:>9.3f}",
                 f"{'SE, Gaussian (1, -1)':<28}{self.alpha_crit_gaussian:>13.6g}"
                 f"{self.alpha_crit_gaussian / self.alpha_crit_exact:>9.3f}"]
        for f, d, t in zip(self.fractions, self.deviation, self.deviation_step):
            lines.append(f"SE loss curve at {f:g} x exact alpha_crit: {_pct(d)} of the excess loss "
                         f"(largest at t = {t} of {self.steps})")
        for f, d, t in zip(self.fractions, self.q4_deviation, self.q4_deviation_step):
            lines.append(f"Q4 closure's curve at {f:g} x exact alpha_crit: {_pct(d, 'Q4')} of the "
                         f"excess loss (largest at t = {t} of {self.steps})")
        return "\n".join(lines)


def _pct(d: float, route: str = "SE") -> str:
    return f"diverges ({route})" if not np.isfinite(d) else f"{100 * d:+.1f} %"


def _deviation(approx: np.ndarray, exact: np.ndarray, floor: float) -> tuple[float, int]:
    n = min(approx.size, exact.size)
    if approx.size < exact.size:          # the approximate curve stopped at the overflow guard
        return float("inf"), int(approx.size)
    excess = exact[:n] - floor
    dev = np.divide(approx[:n] - exact[:n], excess, out=np.zeros(n), where=excess > 0)
    j = int(np.argmax(np.abs(dev)))
    return float(dev[j]), j


def verdict(ratio: float, deviation_half: float) -> str:
    """The plain verdict of the module docstring from the threshold ratio and the curve
    deviation at half the exact threshold."""
    if ratio > 1 + THRESHOLD_MARGIN:
        size = f"{ratio:.3g}x the exact one" if ratio >= 2 else \
            f"{100 * (ratio - 1):.0f} % above the exact one"
        return (f"unsafe: SE's alpha_crit is {size}: SE calls learning rates convergent where the "
                "dynamics on these rows diverge")
    if not abs(deviation_half) <= CURVE_MARGIN:
        return (f"unsafe: SE's loss curve at half the exact threshold is off by "
                f"{_pct(deviation_half)} of the excess loss")
    if ratio < 1 - THRESHOLD_MARGIN:
        where = f"{100 * (1 - ratio):.0f} % below the exact one (conservative)"
    else:
        where = f"within {100 * THRESHOLD_MARGIN:.0f} % of the exact one ({100 * (ratio - 1):+.1f} %)"
    return (f"safe: SE's alpha_crit is {where}; its loss curve at half the exact threshold is off "
            f"by {_pct(deviation_half)} of the excess loss at most")


def check_se(problem: Problem, beta=0.0, batch=1, method="heavy-ball", *, sampling=None,
             noise: NoiseModel | None = None, steps: int = 1000,
             fractions=FRACTIONS) -> SECheck:
    """SE (``noise``, default the problem's fitted tau) against the exact finite-data route on
    ``problem.data`` at momentum ``beta`` and batch ``batch`` (module docstring). ``fractions``
    must include 0.5 (the verdict's curve test); ``steps``: horizon of the curves."""
    require_data(problem)
    smp = resolve_sampling(problem, sampling)
    m = get_method(method)
    b = checks.momentum("beta", beta) if m.has_momentum else m.check_params(1.0, beta)[1]
    bsz = checks.integer("batch", batch, 1)
    steps = checks.integer("steps", steps, 1)
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be numbers in (0, 1), got {fractions!r}") from None
    if 0.5 not in fr or not all(0.0 < f < 1.0 for f in fr):
        raise ValueError(f"fractions must lie in (0, 1) and include 0.5, got {fractions!r}")
    res = problem.tau_residual
    if noise is None:
        noise, res = se_noise(problem)
    elif not isinstance(noise, NoiseModel):
        raise ValueError(f"noise must be a theory.NoiseModel or None, got {type(noise).__name__}")
    se_problem = problem.replace(data_size=problem.data.n if smp == "without-replacement" else None)
    a_se = critical_learning_rate(se_problem, b, bsz, m.name, noise).alpha_crit
    a_ga = critical_learning_rate(se_problem, b, bsz, m.name, GAUSSIAN).alpha_crit
    ex = exact_critical_learning_rate(problem, b, bsz, m.name, sampling=smp).alpha_crit
    q4 = q4_critical_learning_rate(problem, b, bsz, m.name, sampling=smp).alpha_crit
    R = noise_radius(problem, a_se, b, bsz, m.name, sampling=smp) if a_se > 0 else 0.0
    floor = 0.5 * problem.label_noise
    devs, q4_devs = [], []
    for f in fr:
        a = f * ex
        L = exact_loss_curve(problem, a, b, bsz, steps, m.name, sampling=smp,
                             check_divergence=False).loss
        devs.append(_deviation(loss_curve(se_problem, a, b, bsz, steps, m.name, noise).loss,
                               L, floor))
        q4_devs.append(_deviation(q4_loss_curve(problem, a, b, bsz, steps, m.name,
                                                sampling=smp, check_divergence=False).loss,
                                  L, floor))
    ratio = a_se / ex if ex > 0 else float("inf")
    v = verdict(ratio, devs[fr.index(0.5)][0])
    return SECheck(v, v.startswith("safe"), float(a_se), float(ex), float(q4), float(a_ga),
                   float(ratio), float(R), noise.tau1, noise.tau2, res, fr,
                   *(tuple(x) for x in zip(*devs)), *(tuple(x) for x in zip(*q4_devs)),
                   steps, b, bsz, m.name, smp)
