"""Adaptive batches against the theory along each run's own realised schedule.

An adaptive run (``simulate.adaptive``) ends with its realised batch schedule
``b_r = (b_{r,0}, .., b_{r,T-1})``. Along any schedule fixed before the run, the loss is the
second-moment recursion with per-step batches (``theory.batching.loss_along_schedules``; exact for
Gaussian features). Per run ``r`` and step ``t`` this gives the paired difference
``D_{r,t} = L_{r,t} - L^theory_t(b_r)`` between the simulated loss and the theory along that run's
own schedule; its mean over runs, the *gap*, has the standard error ``std(D) / sqrt(runs)``.

* **Replay** (the check of the theory): fresh runs with independent noise along the same schedules,
  now fixed in advance. The theory is exact for them, so their gap is zero within its standard
  error (``replay_max_z``; a failure here is a bug).
* **Adaptive gap** (a measured quantity): the adaptive runs chose their schedule from the same
  noise that moved their error (a large request follows a batch whose gradient looked noisy), so
  the loss of the runs that took a schedule need not equal the theory along it. ``gap`` measures
  this selection effect with its standard error; it is not a failure of the theory.
* **Running-max bias**: the simulated mean schedule minus the mean-field schedule
  (``theory.batching.norm_test_prediction(test=...)``, the population request at the
  root-mean-square error per mode). A schedule that is a running maximum of noisy requests sits
  above the rule fed with their mean; ``batch_bias`` reports by how much, with its standard error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.simulate.adaptive import AdaptiveRun, mean_stderr
from sgdyn.theory.batching import loss_along_schedules, norm_test_prediction
from sgdyn.theory.display import Result
from sgdyn.theory.noise import GAUSSIAN, RADEMACHER
from sgdyn.theory.problem import Problem

METHODS = {"sgd": "sgd", "heavy-ball": "heavy-ball"}     # optimisers with a second-moment theory
_NOISE = {"gaussian": GAUSSIAN, "rademacher": RADEMACHER}


@dataclass(frozen=True)
class AdaptiveCheck(Result):
    """Adaptive runs against the theory along their own schedules (module docstring); arrays over
    steps ``t = 0..T``.

    ``loss_mean``, ``loss_stderr``: the adaptive runs' mean loss; ``theory_mean``: the mean over runs
    of the theory along each run's schedule; ``gap``, ``gap_stderr``: the mean paired difference
    (simulated minus theory along the own schedule) and its standard error; ``replay_gap``,
    ``replay_gap_stderr``: the same for fresh runs along the same schedules fixed in advance (seed
    ``replay_seed``); ``batch_mean``, ``batch_stderr``: the simulated mean schedule;
    ``mean_field_batch``: the mean-field schedule (shorter if that prediction diverged);
    ``batch_bias = batch_mean - mean_field_batch`` on the common steps; ``distinct_schedules``;
    ``approximation``: what produced the theory curves.
    """
    _dims = {name: ("step",) for name in (
        "loss_mean", "loss_stderr", "theory_mean", "gap", "gap_stderr", "replay_gap",
        "replay_gap_stderr", "batch_mean", "batch_stderr", "mean_field_batch", "batch_bias")}
    _properties = ("gap_max_z", "gap_max_z_step", "replay_max_z", "replay_max_z_step",
                   "relative_gap")

    loss_mean: np.ndarray
    loss_stderr: np.ndarray
    theory_mean: np.ndarray
    gap: np.ndarray
    gap_stderr: np.ndarray
    replay_gap: np.ndarray
    replay_gap_stderr: np.ndarray
    batch_mean: np.ndarray
    batch_stderr: np.ndarray
    mean_field_batch: np.ndarray
    batch_bias: np.ndarray
    distinct_schedules: int
    replay_seed: int
    test: str
    approximation: str

    @staticmethod
    def _worst(gap, se) -> tuple[float, int]:
        """Largest ``|gap / se|`` over steps ``t >= 1`` (step 0 is deterministic) and its step."""
        z = np.abs(gap[1:] / se[1:])
        t = int(np.argmax(z))
        return float(z[t]), t + 1

    @property
    def gap_max_z(self) -> float:
        return self._worst(self.gap, self.gap_stderr)[0]

    @property
    def gap_max_z_step(self) -> int:
        return self._worst(self.gap, self.gap_stderr)[1]

    @property
    def replay_max_z(self) -> float:
        return self._worst(self.replay_gap, self.replay_gap_stderr)[0]

    @property
    def replay_max_z_step(self) -> int:
        return self._worst(self.replay_gap, self.replay_gap_stderr)[1]

    @property
    def relative_gap(self) -> float:
        """``gap / theory_mean`` at the last step."""
        return float(self.gap[-1] / self.theory_mean[-1])


def replay_seed(seed: int) -> int:
    """The seed of the replay runs: a word of ``SeedSequence((seed, 1))``, independent of the
    adaptive runs' words from ``SeedSequence(seed)``."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def check_adaptive(problem: Problem, sim: AdaptiveRun, *, initial_batch: int | None = None,
                   seed: int | None = None, progress=None) -> AdaptiveCheck:
    """Compare the runs ``sim`` (``simulate_adaptive`` on ``problem``, SGD or heavy ball) with the
    theory along each run's realised schedule, replay those schedules with fresh noise (seed
    ``seed``, default ``replay_seed(sim.seed)``), and measure the running-max bias of the mean
    schedule against the mean-field schedule from ``initial_batch`` (default the runs' first batch).
    """
    if not isinstance(sim, AdaptiveRun):
        raise ValueError(f"sim must be a simulate.adaptive.AdaptiveRun, got {type(sim).__name__}")
    if sim.optimizer not in METHODS:
        raise ValueError(f"optimizer {sim.optimizer!r} has no second-moment theory; the check "
                         f"covers {tuple(METHODS)}")
    if not sim.adaptive:
        raise ValueError("sim must be an adaptive run (adaptive=True): a schedule fixed in advance "
                         "has no selection effect to measure")
    method = METHODS[sim.optimizer]
    seed = replay_seed(sim.seed) if seed is None else seed
    theory = loss_along_schedules(problem, sim.alpha, sim.schedule, beta=sim.beta, method=method,
                                  features=sim.features)
    replayed = sim.replay(problem, seed, progress=progress)
    gap, gap_se = mean_stderr(sim.loss - theory.loss, "gap")
    replay_gap, replay_se = mean_stderr(replayed.loss - theory.loss, "replay gap")
    b0 = int(sim.batch[0, 0]) if initial_batch is None else initial_batch
    field = norm_test_prediction(problem, sim.alpha, sim.steps, beta=sim.beta, method=method,
                                 batch=b0, max_batch=sim.max_batch,
                                 eta_test=sim.eta_test, noise=_NOISE[sim.features], test=sim.test,
                                 theta=sim.theta, nu=sim.nu).batch
    loss, loss_se = sim.mean_stderr("loss")
    batch, batch_se = sim.mean_stderr("batch")
    theory_mean, _ = mean_stderr(theory.loss, "theory")
    return AdaptiveCheck(loss, loss_se, theory_mean, gap, gap_se, replay_gap, replay_se, batch,
                         batch_se, field, batch[:field.size] - field, theory.distinct, seed,
                         sim.test, theory.approximation)
