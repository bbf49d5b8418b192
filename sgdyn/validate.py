"""Theory vs Monte Carlo, checkpoint by checkpoint, with an honest verdict.

At each recorded step ``t`` the exact expected loss of the SE theory (``theory.dynamics``) is set
against the Monte Carlo mean over independent runs (``simulate``) with its standard error:
``z_t = (mean_t - theory_t) / stderr_t``. The comparison agrees when ``|z_t| <= z_threshold`` at
every checkpoint.

Heavy tails. The per-run loss is a product of random matrices applied to the initial error; its
distribution is close to log-normal with a log-variance growing in ``t``, and near the divergence
threshold its upper tail becomes a power law ``P(L > x) ~ x^-a``: the fourth moments of the error
(the variance of the loss) diverge at a smaller learning rate than the second moments (the mean).
Then the sample mean is carried by a few runs, it sits below the true mean most of the time, and
its standard error is itself underestimated, so a large negative ``z`` proves nothing. The
diagnostic is the Hill estimate of the tail index ``a`` from the top ``k = ceil(sqrt(n))`` excess
losses ``L - sigma^2/2`` of the ``n`` runs (Hill, Ann. Statist. 1975):
``a_hat = 1 / mean_{i <= k} log(x_(i) / x_(k+1))``; ``a_hat < 2`` (no finite variance: the
central limit theorem behind the standard error fails) or a run stopped by the overflow guard
marks the checkpoint heavy-tailed. A Monte Carlo mean *below* the theory at a heavy-tailed
checkpoint is then "inconclusive: heavy-tailed"; a mean above it, or a disagreement at a light-tailed
checkpoint, is a real disagreement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.simulate.cpu import per_run_losses
from sgdyn.simulate.features import DataSet
from sgdyn.simulate.run import make_spec
from sgdyn.simulate.statistics import summarize
from sgdyn.simulate.trajectories import Trajectories
from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.noise import GAUSSIAN, RADEMACHER, NoiseModel, estimate_tau
from sgdyn.theory.problem import Problem
from sgdyn.theory.progress import bar

VERDICTS = ("agrees", "disagrees", "inconclusive: heavy-tailed")
TAIL_INDEX_LIMIT = 2.0      # below it the loss has no finite variance: the standard error fails


@dataclass(frozen=True)
class ValidationReport(Result):
    _properties = ("agrees",)

    steps: np.ndarray           # recorded steps t
    theory: np.ndarray          # exact expected loss (inf past the step where a divergent curve stopped)
    mean: np.ndarray            # Monte Carlo mean over the live runs
    stderr: np.ndarray          # its standard error
    z: np.ndarray               # (mean - theory) / stderr
    tail_index: np.ndarray      # Hill estimate of the per-run loss tail index (inf: no tail)
    top_share: np.ndarray       # share of the summed excess loss carried by the top 1% of runs
    heavy_tailed: np.ndarray    # tail_index < 2 or runs lost to the overflow guard
    verdict: str                # one of VERDICTS
    evidence: str
    noise: NoiseModel           # the SE parameters the theory used
    z_threshold: float
    trajectories: Trajectories

    @property
    def agrees(self) -> bool:
        return self.verdict == "agrees"


def tail_statistics(excess: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``excess`` (runs x checkpoints) over its ``live`` entries: the Hill tail
    index from the top ``k = ceil(sqrt(n))`` values (``inf`` when there is no positive tail) and
    the share of the column's sum carried by its top ``max(1, n // 100)`` values."""
    runs, n_rec = excess.shape
    x = np.sort(np.where(live, np.maximum(excess, 0.0), -1.0), axis=0)   # dead runs sort first
    n = live.sum(axis=0)
    k = np.ceil(np.sqrt(n)).astype(np.int64)
    rank = np.arange(runs)[:, None]                   # row of the ascending sort
    ref = x[np.maximum(runs - k - 1, 0), np.arange(n_rec)]    # x_(k+1), the threshold statistic
    cols = np.nonzero((n > k) & (ref > 0))[0]
    hill = np.full(n_rec, np.inf)
    if cols.size:
        top = rank >= runs - k[cols][None, :]
        ratio = np.where(top, x[:, cols] / ref[cols][None, :], 1.0)
        mean_log = np.log(ratio).sum(axis=0) / k[cols]
        hill[cols] = np.divide(1.0, mean_log, out=np.full(cols.size, np.inf), where=mean_log > 0)
    total = np.maximum(x, 0.0).sum(axis=0)
    top_sum = np.where(rank >= runs - np.maximum(1, n // 100)[None, :], np.maximum(x, 0.0), 0.0).sum(axis=0)
    share = np.divide(top_sum, total, out=np.zeros(n_rec), where=total > 0)
    return hill, share


def _z_scores(mean, stderr, theory):
    diff = mean - theory
    both_inf = np.isinf(mean) & np.isinf(theory)
    diff = np.where(both_inf, 0.0, diff)
    exact = np.abs(diff) <= 1e-9 * np.abs(np.where(np.isinf(theory), 0.0, theory))
    z = np.divide(diff, stderr, out=np.zeros_like(diff), where=(stderr > 0) & np.isfinite(stderr))
    return np.where((stderr == 0) & ~exact, np.copysign(np.inf, diff), z)


def _evidence(verdict, steps, theory, mean, z, hill, share, heavy, z_threshold, runs):
    j = int(np.argmax(np.abs(z)))
    where = f"max |z| = {abs(z[j]):.3g} at t = {steps[j]} over {steps.size} checkpoints (threshold {z_threshold:g})"
    if verdict == "agrees":
        tail = (f"; heavy tails at {int(heavy.sum())} checkpoints did not matter"
                if heavy.any() else "")
        return f"Monte Carlo ({runs} runs) within {z_threshold:g} standard errors of the theory: {where}{tail}"
    bad = np.abs(z) > z_threshold
    rel = np.divide(mean - theory, theory, out=np.zeros_like(mean), where=np.isfinite(theory) & (theory != 0))
    jr = int(np.argmax(np.where(bad, np.abs(rel), -1.0)))
    gap = f"mean {mean[jr]:.6g} vs theory {theory[jr]:.6g} ({100 * rel[jr]:+.1f} %) at t = {steps[jr]}"
    if verdict == "disagrees":
        return f"{where}; {gap}"
    return (f"{where}; {gap}. But the per-run losses are heavy-tailed wherever the mean falls short "
            f"(there: Hill tail index {hill[jr]:.2f} < {TAIL_INDEX_LIMIT:g}, the top 1% of runs carry "
            f"{100 * share[jr]:.0f} % of the mean), so the sample mean underestimates the true mean and "
            f"its standard error is unreliable; more runs converge only slowly")


def validate(problem: Problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball",
             noise: NoiseModel | None = None, features="gaussian", every=1,
             z_threshold: float = 4.0, progress=None, sampler="auto") -> ValidationReport:
    """Compare ``theory.dynamics.loss_curve`` with ``simulate.run`` (CPU backend, which keeps the
    per-run losses the tail diagnostic needs) at steps ``0, every, .., steps``.

    ``noise``: the SE model of the theory; by default the exact one of the feature law (Gaussian
    ``(1, -1)``, Rademacher ``(1, 1)``) or, for a ``DataSet``, ``estimate_tau`` of its rows. The
    simulator draws i.i.d. samples, so ``problem.data_size`` must be None. Verdict and evidence as
    described in the module docstring; tolerances are ``z_threshold`` standard errors (default 4).
    ``sampler`` and ``progress`` (a bar over the runs): as in ``simulate.run``.
    """
    z_threshold = checks.positive("z_threshold", z_threshold)
    spec = make_spec(problem, alpha, beta, batch, steps, runs, seed, method, features, None, every,
                     sampler=sampler)
    if noise is None:
        if isinstance(features, DataSet):
            noise = estimate_tau(features.X, features.rtol).model
        else:
            noise = {"gaussian": GAUSSIAN, "rademacher": RADEMACHER}[features]
    curve = loss_curve(problem, spec.alpha, spec.beta, spec.batch, spec.steps, method, noise)
    rec = spec.recorded_steps
    theory = np.full(rec.size, np.inf)
    known = rec < curve.loss.size
    theory[known] = curve.loss[rec[known]]

    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise ValueError(f"progress must be None or a callable (or True / False), got {progress!r}")
    with bar(progress, spec.runs, "validate", "run") as update:
        losses, valid = per_run_losses(spec, update)
    traj = summarize(losses, valid, spec, "cpu")
    live = np.arange(rec.size)[None, :] < valid[:, None]
    hill, share = tail_statistics(losses - 0.5 * spec.label_noise, live)
    heavy = (hill < TAIL_INDEX_LIMIT) | (traj.finite_runs < spec.runs)
    z = _z_scores(traj.mean, traj.stderr, theory)
    bad = np.abs(z) > z_threshold
    if not bad.any():
        verdict = "agrees"
    elif np.any(bad & ~(heavy & (z < 0))):
        verdict = "disagrees"
    else:
        verdict = "inconclusive: heavy-tailed"
    evidence = _evidence(verdict, rec, theory, traj.mean, z, hill, share, heavy, z_threshold, spec.runs)
    return ValidationReport(rec, theory, traj.mean, traj.stderr, z, hill, share, heavy, verdict,
                            evidence, noise, z_threshold, traj)
