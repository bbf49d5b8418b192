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

Robust evidence. A heavy tail also inflates the standard error when the runs sit far *above* the
theory (a few enormous runs make ``stderr`` as large as the mean, and no ``|z|`` exceeds the
threshold). Two one-sided tests need no finite variance of the loss, only that the theory is the
true mean of the excess loss ``X = L - sigma^2/2 >= 0`` (``theory_t - sigma^2/2 = mu_t``):

* **Markov**: ``P(X > c mu) <= 1/c``. The fraction ``p`` of runs above ``c mu`` (runs lost to the
  overflow guard count as above) is a binomial proportion, so
  ``z_M = (p - 1/c) / sqrt((1/c)(1 - 1/c)/n)`` (c = 2 and 10; the larger z);
* **log scale** (Jensen): ``E log X <= log E X``, so ``z_log = (mean log X - log mu) / stderr`` of
  the per-run logs (lost runs enter at the guard's log, a lower bound: conservative).

Either above ``z_threshold`` proves the runs sit above the theory whatever their tail. Being
tail-free they see gross excess (runs typically several times above the theory, as when they
diverge), not a modest shift of a heavy-tailed mean: that stays "inconclusive" at best. Then, if
the theory converges and the runs run away (the median at the last checkpoint above the initial
loss, or runs lost to the overflow guard), the verdict is "theory converges but the runs diverge",
else "disagrees". A heavy-tailed checkpoint whose mean sits above twice the theory without a
significant z is "inconclusive: heavy-tailed", never "agrees"; so is one whose loss has no finite
variance (Hill index below 2) and whose mean falls more than 20 % short of the theory: there the
standard error behind z means nothing. The median, the fraction of runs
above ``L_0`` and both robust z's are reported next to the z-scores.

Too few runs. ``z`` divides by a standard error estimated from the same ``n`` runs, so it is a
Student t with ``n - 1`` degrees of freedom, not a normal: ``P(|t| > 4)`` is 16 % at ``n = 2``,
1.6 % at 5, 0.3 % at 10 and 0.04 % at 30, against 0.006 % for a normal; and the Hill index rests on
the top ``ceil(sqrt(n))`` runs (6 at ``n = 30``). Below ``MIN_RUNS = 30`` runs the verdict is
"inconclusive: too few runs" whatever the z's say (with one run there is no standard error at
all).

A divergent theory. Where the theory itself diverges (``alpha`` above its critical learning rate:
``solve`` stops the curve and gives the reason), "agrees" is the wrong word for any finite
stretch of the comparison, and the heavy tail of runs on their way out makes every mean-based
statistic meaningless: the verdict is "theory diverges", with the theory's reason and what the
runs did (their median against ``L_0``). A light-tailed disagreement on the finite stretch
stays "disagrees".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.simulate.cpu import OVERFLOW_GUARD, per_run_losses
from sgdyn.simulate.run import legacy_run, spec_for
from sgdyn.simulate.statistics import summarize
from sgdyn.simulate.trajectories import Trajectories
from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.dynamics import solve
from sgdyn.theory.noise import GAUSSIAN, RADEMACHER, NoiseModel, estimate_tau
from sgdyn.theory.problem import Problem
from sgdyn.theory.progress import bar
from sgdyn.theory.run import Run

VERDICTS = ("agrees", "disagrees", "inconclusive: heavy-tailed",
            "theory converges but the runs diverge", "inconclusive: too few runs", "theory diverges")
MIN_RUNS = 30               # below it the standard error is itself too uncertain (module docstring)
TAIL_INDEX_LIMIT = 2.0      # below it the loss has no finite variance: the standard error fails
MARKOV_FACTORS = (2.0, 10.0)
FAR_ABOVE = 2.0             # a heavy-tailed mean above FAR_ABOVE x theory is never "agrees"
FAR_BELOW = 0.2             # nor one more than 20 % short where the loss has no finite variance


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
    median: np.ndarray = None         # median per-run loss (lost runs count as +inf)
    markov_z: np.ndarray = None       # Markov-bound z (> 0: more runs far above than allowed)
    log_z: np.ndarray = None          # log-scale (Jensen) z (> 0: log-mean above log theory)
    above_initial: np.ndarray = None  # fraction of runs above the initial loss L_0

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


def _max_abs(z) -> float:
    finite = np.abs(z[np.isfinite(z)])
    return float(finite.max()) if finite.size else float("nan")


def _z_scores(mean, stderr, theory):
    diff = mean - theory
    both_inf = np.isinf(mean) & np.isinf(theory)
    diff = np.where(both_inf, 0.0, diff)
    exact = np.abs(diff) <= 1e-9 * np.abs(np.where(np.isinf(theory), 0.0, theory))
    z = np.divide(diff, stderr, out=np.zeros_like(diff), where=(stderr > 0) & np.isfinite(stderr))
    return np.where((stderr == 0) & ~exact, np.copysign(np.inf, diff), z)


def robust_statistics(losses: np.ndarray, live: np.ndarray, theory: np.ndarray, floor: float,
                      initial: float, guard: float):
    """Per checkpoint (columns of ``losses``, runs x checkpoints, ``live`` entries meaningful, the
    rest lost to the overflow guard): ``(median, markov_z, log_z, above_initial)`` as in the
    module docstring. ``theory``: expected loss; ``floor``: sigma^2/2; ``initial``: L_0.
    Checkpoints where the theory's excess is not positive and finite get z = 0."""
    runs = losses.shape[0]
    x = np.where(live, losses, np.inf)
    median = np.median(x, axis=0)
    above_initial = np.mean(x > initial * (1 + 1e-12), axis=0)
    mu = theory - floor
    ok = np.isfinite(mu) & (mu > 0)
    mu_safe = np.where(ok, mu, 1.0)
    excess = x - floor
    markov = np.full(theory.size, -np.inf)
    for c in MARKOV_FACTORS:
        p = np.mean(excess > c * mu_safe[None, :], axis=0)
        markov = np.maximum(markov, (p - 1 / c) / np.sqrt((1 / c) * (1 - 1 / c) / runs))
    logs = np.log(np.clip(np.where(live, excess, guard), 1e-300, guard))
    mlog = logs.mean(axis=0)
    sd = logs.std(axis=0, ddof=1) / np.sqrt(runs) if runs > 1 else np.full(theory.size, np.inf)
    diff = mlog - np.log(mu_safe)
    tiny = np.abs(diff) <= 1e-9          # equal up to rounding (e.g. t = 0: every run at L_0)
    log_z = np.divide(diff, sd, out=np.zeros_like(diff), where=sd > 0)
    log_z = np.where(tiny, 0.0, np.where(sd == 0, np.copysign(np.inf, diff), log_z))
    return median, np.where(ok, markov, 0.0), np.where(ok, log_z, 0.0), above_initial


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


def validate(problem, *args, **kwargs) -> ValidationReport:
    """Compare the theory (``sgdyn.theory.solve``) with the Monte Carlo (``simulate``, CPU backend,
    which keeps the per-run losses the tail diagnostic needs) at the run's recorded steps.

    ``validate(run, runs, seed, *, data=None, z_threshold=4.0, progress=None, sampler="auto",
    route="recursion", synthetic=None)`` for a ``sgdyn.theory.Run`` (the theory uses
    ``run.noise``; ``synthetic``: a data set per run, as in ``simulate.run``; i.i.d. Gaussian rows
    with label noise are refused, their runs fit the labels' noise); or
    ``validate(problem, alpha, beta, batch, steps, runs, seed, method="heavy-ball", noise=None,
    features="gaussian", every=1, z_threshold=4.0, progress=None, sampler="auto")`` with i.i.d.
    batches, where ``noise`` defaults to the exact SE model of the feature law (Gaussian
    ``(1, -1)``, Rademacher ``(1, 1)``) or, for a ``DataSet``, ``estimate_tau`` of its rows.
    Verdict and evidence as described in the module docstring; tolerances are ``z_threshold``
    standard errors (default 4). ``sampler`` and ``progress`` (a bar over the runs): as in
    ``simulate.run``.
    """
    if isinstance(problem, Run):
        return _validate_run(problem, *args, **kwargs)
    return _validate_positional(problem, *args, **kwargs)


def _validate_positional(problem: Problem, alpha, beta, batch, steps, runs, seed,
                         method="heavy-ball", noise: NoiseModel | None = None, features="gaussian",
                         every=1, z_threshold: float = 4.0, progress=None, sampler="auto"):
    run, data = legacy_run(problem, alpha, beta, batch, steps, method, features, None, every)
    if noise is None:
        noise = estimate_tau(data.X, data.rtol).model if data is not None else \
            {"gaussian": GAUSSIAN, "rademacher": RADEMACHER}[features]
    return _validate_run(run.replace(noise=noise), runs, seed, data=data, z_threshold=z_threshold,
                         progress=progress, sampler=sampler)


def _validate_run(run: Run, runs, seed, *, data=None, z_threshold: float = 4.0, progress=None,
                  sampler="auto", route="recursion", synthetic=None) -> ValidationReport:
    z_threshold = checks.positive("z_threshold", z_threshold)
    if synthetic == "gaussian" and run.problem.label_noise > 0:
        raise ValueError("synthetic 'gaussian' with label noise: the runs fit the noise of their "
                         "N labels (the data set's optimum is not the population's), which the "
                         "data-size theory does not describe; use synthetic 'orthogonal' (residuals "
                         "orthogonal to the rows) or label_noise 0")
    spec = spec_for(run, runs, seed, data, sampler=sampler, synthetic=synthetic)
    curve = solve(run, route)
    rec = spec.recorded_steps
    theory = np.full(rec.size, np.inf)        # inf past the step where a divergent curve stopped
    theory[np.isin(rec, curve.steps)] = curve.loss[np.isin(curve.steps, rec)]
    noise = run.noise

    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise ValueError(f"progress must be None or a callable (or True / False), got {progress!r}")
    with bar(progress, spec.runs, "validate", "run") as update:
        losses, valid = per_run_losses(spec, update)
    traj = summarize(losses, valid, spec, "cpu")
    live = np.arange(rec.size)[None, :] < valid[:, None]
    hill, share = tail_statistics(losses - 0.5 * spec.label_noise, live)
    heavy = (hill < TAIL_INDEX_LIMIT) | (traj.finite_runs < spec.runs)
    z = _z_scores(traj.mean, traj.stderr, theory)
    floor = 0.5 * spec.label_noise
    L0 = run.problem.initial_loss
    median, mz, lz, above = robust_statistics(losses, live, theory, floor, L0,
                                              OVERFLOW_GUARD)
    robust_above = (mz > z_threshold) | (lz > z_threshold)
    bad = np.abs(z) > z_threshold
    far = heavy & (traj.mean > FAR_ABOVE * theory) & np.isfinite(theory)
    runaway = bool(median[-1] > L0 or traj.diverged_runs > 0)
    if robust_above.any():
        verdict = VERDICTS[3] if (not curve.diverges and runaway) else "disagrees"
    elif not bad.any():
        short = (hill < TAIL_INDEX_LIMIT) & (traj.mean < (1 - FAR_BELOW) * theory) & \
            np.isfinite(theory)
        verdict = "inconclusive: heavy-tailed" if (far | short).any() else "agrees"
    elif np.any(bad & ~(heavy & (z < 0))):
        verdict = "disagrees"
    else:
        verdict = "inconclusive: heavy-tailed"
    if curve.diverges and verdict != "disagrees":
        verdict = "theory diverges"
    elif spec.runs < MIN_RUNS:
        verdict = "inconclusive: too few runs"
    if verdict == "theory diverges":
        grew = "the runs run away too" if runaway else "the runs have not run away yet"
        evidence = (f"the theory diverges ({curve.reason}); {grew}: Monte Carlo median "
                    f"{median[-1]:.6g} at t = {rec[-1]} against L_0 = {L0:.6g}, "
                    f"{traj.diverged_runs} of {spec.runs} runs lost to the overflow guard; "
                    f"where the theory is finite, max |z| = {_max_abs(z):.3g}")
    elif verdict == "inconclusive: too few runs":
        evidence = (f"{spec.runs} run(s): below {MIN_RUNS} the standard error is too uncertain for "
                    f"any verdict (max |z| = {_max_abs(z):.3g} means "
                    "nothing); run more")
    elif robust_above.any() or (verdict.startswith("inconclusive") and far.any() and not bad.any()):
        evidence = _robust_evidence(verdict, rec, theory, traj.mean, z, hill, heavy, median, mz,
                                    lz, above, robust_above, far, L0,
                                    traj.diverged_runs, z_threshold, spec.runs)
    elif verdict.startswith("inconclusive") and not bad.any():
        j = int(np.argmax(np.where(np.isfinite(theory) & (theory > 0),
                                   1 - traj.mean / np.where(theory > 0, theory, 1), -np.inf)))
        evidence = (f"no |z| exceeds {z_threshold:g}, but at t = {rec[j]} the Monte Carlo mean "
                    f"{traj.mean[j]:.6g} is {100 * (1 - traj.mean[j] / theory[j]):.0f} % below the "
                    f"theory {theory[j]:.6g} where the per-run loss has no finite variance (Hill "
                    f"tail index {hill[j]:.2f} < {TAIL_INDEX_LIMIT:g}; median {median[j]:.6g}): the "
                    "standard error is meaningless there and the mean converges only slowly")
    else:
        evidence = _evidence(verdict, rec, theory, traj.mean, z, hill, share, heavy, z_threshold,
                             spec.runs)
    if synthetic is not None:
        evidence += f". {SYNTHETIC_NOTE[synthetic]}"
    return ValidationReport(rec, theory, traj.mean, traj.stderr, z, hill, share, heavy, verdict,
                            evidence, noise, z_threshold, traj, median, mz, lz, above)


SYNTHETIC_NOTE = {
    "orthogonal": "Each run drew its own data set of orthogonal rows, whose empirical spectrum is "
                  "the problem's: the data-size theory holds up to its fourth-moment closure "
                  "(O(1/N) per step) and the reuse of the same rows across steps",
    "gaussian": "Each run drew its own data set of i.i.d. Gaussian rows, whose empirical spectrum "
                "scatters about the problem's (Marchenko-Pastur): the data-size theory on the "
                "population spectrum is only an approximation for them (docs/trust_se.md)"}


def _robust_evidence(verdict, steps, theory, mean, z, hill, heavy, median, mz, lz, above,
                     robust_above, far, L0, lost, z_threshold, runs):
    j = int(np.argmax(np.where(robust_above | far, np.maximum(mz, lz), -np.inf)))
    last = steps.size - 1
    zmax = float(np.abs(z).max())
    if zmax > z_threshold:
        tail = f"the mean's z-scores agree (max |z| = {zmax:.3g})"
    else:
        tail = (f"the mean's z-scores (max |z| = {zmax:.3g}) cannot show it: heavy tail (Hill index "
                f"{hill[j]:.2f}{' < 2' if heavy[j] else ''}), the standard error is as large as "
                "the mean")
    stats = (f"at t = {steps[j]}: theory {theory[j]:.6g}, Monte Carlo mean {mean[j]:.6g}, median "
             f"{median[j]:.6g}; Markov z = {mz[j]:.3g}, log-scale z = {lz[j]:.3g} "
             f"(threshold {z_threshold:g})")
    if verdict == VERDICTS[3]:
        return (f"the theory converges (L = {theory[last]:.6g} at t = {steps[last]}, L_0 = {L0:.6g}) "
                f"but the runs diverge: median {median[last]:.6g} at t = {steps[last]}, "
                f"{100 * above[last]:.0f} % of {runs} runs above L_0, {lost} lost to the overflow "
                f"guard; {stats}; {tail}")
    if verdict == "disagrees":
        return f"the runs sit above the theory beyond what any law with its mean allows: {stats}; {tail}"
    return (f"the Monte Carlo mean sits above {FAR_ABOVE:g}x the theory at a heavy-tailed checkpoint "
            f"without a significant z ({stats}); the robust tests do not decide; more runs needed")
