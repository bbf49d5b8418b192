"""The explorer's compute layer: settings in, view data out, no widget library.

``Settings`` is what the controls hold (the problem as a ``powerlaw:`` spec or a file path,
method, alpha, beta, batch, data size, tau1/tau2, horizon); each view is one function of it that
returns a small frozen ``Result`` with exactly the numbers shown, every one of them from the
package's own functions:

* ``curve_view``: the loss curve ``sgdyn.theory.solve`` of ``run_of(settings)`` (the run that
  ``sgdyn loss`` builds from the same flags: ``command_line``), with the signal / noise
  asymptotes and transition time of ``theory.asymptotics.phases`` (``plots.phase_guides``);
* ``critical_view``: ``alpha_crit / (1 - beta)`` against the batch (``plots.critical_lr_data``)
  and ``theory.stability.critical_learning_rate`` at the current (beta, batch);
* ``region_view``: the (alpha, beta) plane of ``plots.region_data`` (noiseless edge, noise
  boundary ``U(1) = 1``, rates on a grid, ``theory.stability.optimal_rate``) at a coarse or fine
  grid;
* ``point_view``: the asymptotic rate at the current point (``theory.stability.asymptotic_rate``);
* ``conditions_view``: the method's Schur-Cohn conditions and ``U(1)`` per mode as LaTeX;
* ``monte_carlo_view``: ``sgdyn.validate.validate`` at the current point (band and verdict).

``STALE`` says which views a change of which setting invalidates (``stale``), so a user interface
recomputes only those: moving alpha touches the curve and the point, not the region.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.display import Result

DEFAULT_PROBLEM = "powerlaw:nu=1.5,kappa=3,n=1000"
COARSE_GRID = (24, 17)          # (n_alpha, n_beta): the region's first, quick answer
FINE_GRID = (80, 41)
CURVE_POINTS = 400              # log-spaced steps sent to the page (the final step always among them)
MC_RUNS = 40                    # the Monte Carlo button: a verdict needs validate.MIN_RUNS = 30
MC_CHECKPOINTS = 40


@dataclass(frozen=True)
class Settings(Result):
    """What the controls hold. ``problem``: ``powerlaw:nu=..,kappa=..,n=..`` or a ``.json`` /
    ``.npz`` problem file; ``data_size``: batches drawn without replacement from that many points
    (None: i.i.d.); ``tau1`` / ``tau2``: the SE noise (None: the problem file's own, else the
    Gaussian (1, -1)); ``steps``: the horizon T."""

    problem: str = DEFAULT_PROBLEM
    method: str = "heavy-ball"
    alpha: float = 0.2
    beta: float = 0.0
    batch: int = 1
    data_size: int | None = None
    tau1: float | None = None
    tau2: float | None = None
    steps: int = 1000

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json(cls, text: str) -> "Settings":
        """The settings ``to_json`` wrote (unknown keys refused, missing ones default)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"settings are not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("settings must be a JSON object")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"settings have unknown key(s) {', '.join(sorted(unknown))}")
        return cls(**data)


def power_law_spec(nu, kappa, n) -> str:
    """The ``powerlaw:`` spec of ``Problem.parse`` for the three controls."""
    def text(x):            # the shortest exact form: 3 rather than 3.0
        r = repr(float(x))
        return r[:-2] if r.endswith(".0") else r
    return f"powerlaw:nu={text(nu)},kappa={text(kappa)},n={int(n)}"


# -- what the settings describe ------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _parsed(spec: str, stamp):
    from sgdyn.theory.problem import Problem
    return Problem.parse(spec)


def problem_of(s: Settings):
    """``Problem.parse(s.problem)`` with ``data_size`` set (a file is read again when it
    changes on disk)."""
    if not isinstance(s.problem, str) or not s.problem.strip():
        raise ValueError("problem is empty: give a powerlaw:nu=..,kappa=..,n=.. spec or a "
                         ".json / .npz problem file")
    spec = s.problem.strip()
    stamp = None
    if not spec.startswith("powerlaw:") and os.path.isfile(spec):
        st = os.stat(spec)
        stamp = (st.st_mtime_ns, st.st_size)
    problem = _parsed(spec, stamp)
    if s.data_size is not None:
        problem = problem.replace(data_size=checks.integer("data_size", s.data_size, 2))
    return problem


def noise_of(s: Settings, problem):
    """``tau1`` / ``tau2`` where set; the rest from the problem's own model, else Gaussian (as
    ``sgdyn.cli.noise_from_args``)."""
    from sgdyn.theory.noise import GAUSSIAN, NoiseModel
    own = problem.noise or GAUSSIAN
    return NoiseModel(own.tau1 if s.tau1 is None else s.tau1, own.tau2 if s.tau2 is None else s.tau2)


def run_of(s: Settings):
    """The ``sgdyn.theory.Run`` of the settings: what ``sgdyn loss`` builds from
    ``command_line(s)`` (default sampling: i.i.d., or without replacement with a data size)."""
    from sgdyn.theory.run import Run
    problem = problem_of(s)
    return Run.build(problem, s.method, alpha=s.alpha, beta=s.beta, batch=s.batch,
                     steps=s.steps, noise=noise_of(s, problem))


# -- views ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CurveView(Result):
    """The expected loss at ``CURVE_POINTS`` log-spaced steps (the whole curve is computed)."""

    steps: np.ndarray           # shown steps (>= 1, for log axes), the last one the curve's end
    loss: np.ndarray            # L_t there
    final: float                # L at the curve's last step (T, or where a divergent curve stopped)
    final_step: int
    diverges: bool
    reason: str                 # the curve's own reason (rate, what limits it)
    asymptotes: tuple           # (name, values at ``steps``) for the signal and noise asymptotes
    transition: float | None    # where the asymptotes cross
    phase: str                  # the phase's reason, or why there are no asymptotes

    _dims = {"steps": ("t",), "loss": ("t",)}


def _shown_steps(last: int, n: int = CURVE_POINTS) -> np.ndarray:
    return np.unique(np.concatenate([np.geomspace(1, max(last, 1), n).round().astype(int), [last]]))


def curve_view(s: Settings) -> CurveView:
    from sgdyn.plots import phase_guides
    from sgdyn.theory.asymptotics import phases
    from sgdyn.theory.dynamics import solve
    run = run_of(s)
    curve = solve(run)
    last = int(curve.steps[-1])
    t = _shown_steps(last) if last >= 1 else np.array([0])
    loss = curve.loss[np.searchsorted(curve.steps, t)]
    asymptotes, transition = (), None
    try:
        ph = phases(run.problem, s.alpha, s.beta, s.batch, run.method, run.noise)
        phase = ph.reason
        if ph.phase != "diverges":
            guides, transition = phase_guides(ph)
            names = ("signal", "noise")
            asymptotes = tuple((names[i], np.asarray(f(t.astype(float)), float))
                               for i, (_, f) in enumerate(guides))
    except ValueError as exc:   # not a power law, label noise, another method: no asymptotes
        phase = f"no power-law asymptotes: {exc}"
    return CurveView(t, loss, float(curve.loss[-1]), last, curve.diverges, curve.reason,
                     asymptotes, transition, phase)


@dataclass(frozen=True)
class CriticalView(Result):
    """``alpha_crit / (1 - beta)`` against the batch at the current beta
    (``critical_learning_rate_curve``, all batches in one bisection), and at the current batch the
    ``critical_learning_rate`` result."""

    batches: np.ndarray
    alpha_eff_crit: np.ndarray  # (n_b,)
    mode_edge: float            # the noiseless edge in alpha_eff, which large batches reach
    current: Result             # theory.stability.CriticalLearningRate at (beta, batch)

    _dims = {"alpha_eff_crit": ("batch",)}


def critical_batches(batch: int, data_size: int | None, n: int = 12) -> np.ndarray:
    """Log-spaced batch sizes from 1 past the current one (below a data size), the current one
    included so the curve passes through the marked point."""
    top = max(1024, 4 * batch) if data_size is None else data_size - 1
    grid = np.geomspace(1, top, n).round().astype(int)
    return np.unique(np.concatenate([grid, [batch]]))


def critical_view(s: Settings) -> CriticalView:
    from sgdyn.theory.stability import critical_learning_rate, critical_learning_rate_curve
    problem = problem_of(s)
    noise = noise_of(s, problem)
    batch = checks.integer("batch", s.batch, 1)
    current = critical_learning_rate(problem, s.beta, batch, s.method, noise)
    batches = critical_batches(batch, problem.data_size)
    crit, _ = critical_learning_rate_curve(problem, current.beta, batches, s.method, noise)
    return CriticalView(batches, crit / (1.0 - current.beta),
                        current.mode_edge / (1.0 - current.beta), current)


@dataclass(frozen=True)
class RegionView(Result):
    """``plots.region_data`` (objective "rate") and its shading ``log10(1 - rho)``."""

    data: Result                # sgdyn.plots.RegionData
    shade: np.ndarray           # (n_beta, n_alpha) log10(1 - rho), nan outside the region
    grid: tuple                 # (n_alpha, n_beta)


def region_view(s: Settings, grid=FINE_GRID, with_optimum: bool = True) -> RegionView:
    """The fine grid with the optimum (``optimal_rate``), or (``with_optimum=False``, e.g. at
    ``COARSE_GRID``) the quick first answer without it."""
    from sgdyn.plots import region_data
    problem = problem_of(s)
    d = region_data(problem, s.batch, s.method, noise_of(s, problem), "rate",
                    n_alpha=grid[0], n_beta=grid[1], with_optimum=with_optimum)
    with np.errstate(divide="ignore", invalid="ignore"):
        shade = np.log10(1.0 - d.values)
    return RegionView(d, shade, tuple(grid))


@dataclass(frozen=True)
class PointView(Result):
    """The asymptotic rate at the current (alpha, beta, batch)."""

    rate: float
    diverges: bool
    reason: str


def point_view(s: Settings) -> PointView:
    from sgdyn.theory.stability import asymptotic_rate
    problem = problem_of(s)
    r = asymptotic_rate(problem, s.alpha, s.beta, s.batch, s.method, noise_of(s, problem))
    return PointView(float(r.rate), bool(r.diverges), r.reason)


@dataclass(frozen=True)
class ConditionsView(Result):
    method: str
    update: str                 # the method's update equations
    mode_stability: str         # LaTeX: the Schur-Cohn conditions, each > 0
    noise_feedback: str         # LaTeX: one mode's share u(1; lambda) of U(1)


@functools.lru_cache(maxsize=16)
def _conditions(method: str) -> ConditionsView:
    import sympy as sp
    from sgdyn.theory.methods import get_method
    from sgdyn.theory.stability import mode_stability_conditions, noise_feedback_per_mode
    m = get_method(method)
    return ConditionsView(m.label, m.description, mode_stability_conditions(m)._repr_latex_(),
                          "$u(1;\\lambda) = " + sp.latex(noise_feedback_per_mode(m)) + "$")


def conditions_view(s: Settings) -> ConditionsView:
    """The symbolic conditions of ``s.method`` (derived once per method)."""
    return _conditions(s.method)


def monte_carlo_view(s: Settings, runs: int = MC_RUNS, seed: int = 0):
    """``sgdyn.validate.validate`` of ``run_of(s)`` at ``MC_CHECKPOINTS`` log-spaced steps: the
    Monte Carlo mean with its standard error, and the verdict. Without tau1 / tau2 and without
    data rows the theory takes the exact SE model of the sampled Gaussian features (as
    ``sgdyn validate``)."""
    from sgdyn.theory.noise import GAUSSIAN
    from sgdyn.theory.record import Record
    from sgdyn.validate import validate
    if (s.tau1 is None) != (s.tau2 is None):
        raise ValueError("tau1 and tau2 go together for the Monte Carlo check (or neither: the "
                         "sampled features' own model), as in sgdyn validate")
    run = run_of(s).with_record(Record.log(MC_CHECKPOINTS))
    if s.tau1 is None and run.problem.data is None:
        run = run.replace(noise=GAUSSIAN)
    return validate(run, runs, seed)


# -- what a change invalidates -------------------------------------------------------------------
_PROBLEM = frozenset({"problem", "data_size", "tau1", "tau2", "method"})
STALE = {"curve": _PROBLEM | {"alpha", "beta", "batch", "steps"},
         "point": _PROBLEM | {"alpha", "beta", "batch"},
         "critical": _PROBLEM | {"beta", "batch"},
         "region": _PROBLEM | {"batch"},
         "conditions": frozenset({"method"})}
VIEWS = {"curve": curve_view, "point": point_view, "critical": critical_view,
         "region": region_view, "conditions": conditions_view}


def stale(old: Settings | None, new: Settings) -> set[str]:
    """The views that ``new`` invalidates against ``old`` (all of them without ``old``)."""
    if old is None:
        return set(STALE)
    changed = {f.name for f in dataclasses.fields(Settings)
               if getattr(old, f.name) != getattr(new, f.name)}
    return {view for view, keys in STALE.items() if keys & changed}


# -- export -----------------------------------------------------------------------------------
def command_line(s: Settings, command: str = "loss") -> str:
    """The ``sgdyn`` command that computes the same run (``loss``: the curve; ``validate``: the
    Monte Carlo check, with ``MC_RUNS`` runs)."""
    parts = ["sgdyn", command, "--problem", s.problem, "--method", s.method,
             "--alpha", repr(float(s.alpha)), "--beta", repr(float(s.beta)),
             "--batch", str(int(s.batch))]
    for flag, value in (("--data-size", s.data_size), ("--tau1", s.tau1), ("--tau2", s.tau2)):
        if value is not None:
            parts += [flag, repr(value)]
    parts += ["--steps", str(int(s.steps))]
    if command == "validate":
        parts += ["--runs", str(MC_RUNS), "--seed", "0", "--record", f"log:{MC_CHECKPOINTS}"]
    return " ".join(shlex.quote(p) for p in parts)
