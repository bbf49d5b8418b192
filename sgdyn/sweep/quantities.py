"""Quantities: named functions evaluated at every grid point of a sweep.

A ``Quantity`` declares its output fields (each a float, int, bool or one of a few strings) and a
per-point function returning a frozen dataclass (or mapping) with those fields; it may add a
vectorised ``block`` function evaluating many points at once. Any function of a ``Point`` that
returns a small record of scalars can be swept: wrap it in a ``Quantity`` and ``register`` it.

Built in:

* ``singularities``: rate of the loss, divergence and what limits it
  (``theory.transfer.singularities``; blocks go through ``theory.grid.singularities_grid``);
* ``loss``: the exact expected loss after ``steps`` steps (``theory.dynamics.loss_curve``);
* ``montecarlo``: the simulated loss after ``steps`` steps over ``runs`` runs (``simulate.run``).

``loss`` and ``montecarlo`` take schedules for alpha, beta and batch (``schedules=True``); at a
schedule, ``rate`` and ``limited_by`` are those of the last step's hyperparameters.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sgdyn.sweep.grid import Point
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.grid import singularities_grid
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import singularities

KINDS = ("float", "int", "bool", "category")
LIMITS = ("noise", "mode stability")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str                    # one of KINDS
    categories: tuple = ()       # the allowed strings of a "category" field

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"field kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "category") != bool(self.categories):
            raise ValueError("categories must be given exactly for fields of kind 'category'")


@dataclass(frozen=True)
class Quantity:
    name: str
    fields: tuple                                  # of Field
    point: Callable                                # Point -> dataclass or mapping of the fields
    block: Callable | None = None                  # list[Point] -> {field: array}, optional
    needs: tuple = ()                              # settings it reads, e.g. ("alpha", "steps")
    schedules: bool = False                        # accepts schedule texts for alpha, beta, batch

    def evaluate(self, points: list) -> dict:
        """``{field name: 1-D array over points}``."""
        if self.block is not None:
            return self.block(points)
        rows = [_as_mapping(self.point(p)) for p in points]
        return {f.name: np.array([r[f.name] for r in rows]) for f in self.fields}


def _as_mapping(result) -> dict:
    if dataclasses.is_dataclass(result):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)} | \
            {name: getattr(result, name) for name in dir(type(result))
             if isinstance(getattr(type(result), name, None), property)}
    return dict(result)


QUANTITIES: dict[str, Quantity] = {}


def register(quantity: Quantity) -> Quantity:
    QUANTITIES[quantity.name] = quantity
    return quantity


def get_quantity(name) -> Quantity:
    if isinstance(name, Quantity):
        return name
    try:
        return QUANTITIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"quantity must be one of {sorted(QUANTITIES)}, got {name!r}") from None


# -- theory ------------------------------------------------------------------------------------
SINGULARITY_FIELDS = (Field("rate", "float"), Field("diverges", "bool"),
                      Field("limited_by", "category", LIMITS), Field("noise_feedback", "float"),
                      Field("z_star", "float"), Field("mode_radius", "float"))


def _singularities_point(p: Point):
    return singularities(ModeSystem.build(p.problem, p.alpha, p.beta, p.batch, p.method, p.noise))


def _singularities_block(points: list) -> dict:
    """Points sharing (problem, method, noise) go through one vectorised kernel call, on numba's
    threads only from the main thread (the serial scheduler): Dask runs tasks on worker threads,
    and numba's default threading layer must not be entered from two threads at once."""
    out = {f.name: np.empty(len(points), dtype=object if f.kind == "category" else float)
           for f in SINGULARITY_FIELDS}
    parallel = threading.current_thread() is threading.main_thread()
    groups: dict = {}
    for i, p in enumerate(points):
        groups.setdefault((p.problem_key, p.method, p.noise), []).append(i)
    for members in groups.values():
        p0 = points[members[0]]
        g = singularities_grid(p0.problem, [points[i].alpha for i in members],
                               [points[i].beta for i in members], [points[i].batch for i in members],
                               p0.method, p0.noise, parallel=parallel)
        for f in SINGULARITY_FIELDS:
            out[f.name][members] = getattr(g, f.name)
    out["diverges"] = out["diverges"].astype(bool)
    return out


@dataclass(frozen=True)
class LossAtHorizon:
    final: float          # L_T (inf when the curve was stopped before float overflow)
    diverges: bool
    rate: float
    limited_by: str
    stopped_early: bool


def _loss_point(p: Point) -> LossAtHorizon:
    c = loss_curve(p.problem, p.alpha, p.beta, p.batch, p.steps, p.method, p.noise)
    return LossAtHorizon(np.inf if c.stopped_early else c.final, c.diverges, c.rate, c.limited_by,
                         c.stopped_early)


# -- Monte Carlo -------------------------------------------------------------------------------
@dataclass(frozen=True)
class MonteCarloAtHorizon:
    """The simulated loss at the last recorded step.

    ``heavy_tailed``: some run was stopped by the overflow guard, or the mean lies above the 95 %
    quantile of the runs (it is carried by a few runs and misleads: the setting is near the
    divergence threshold, where the loss is heavy-tailed).
    """

    mean: float
    stderr: float
    median: float
    finite_runs: int
    diverged_runs: int
    heavy_tailed: bool


def monte_carlo_summary(traj) -> MonteCarloAtHorizon:
    levels = np.asarray(traj.quantile_levels)
    q95 = traj.quantiles[int(np.argmin(np.abs(levels - 0.95))), -1]
    med = traj.quantiles[int(np.argmin(np.abs(levels - 0.5))), -1]
    mean = float(traj.mean[-1])
    heavy = traj.diverged_runs > 0 or not mean <= q95
    return MonteCarloAtHorizon(mean, float(traj.stderr[-1]), float(med), int(traj.finite_runs[-1]),
                               int(traj.diverged_runs), bool(heavy))


def _simulator():
    from sgdyn import simulate
    run = getattr(simulate, "run", None)
    run = getattr(run, "run", run)        # simulate.run may name the module or its function
    if not callable(run):
        raise ValueError("the montecarlo quantity needs simulate.run, which this install lacks")
    return run


def monte_carlo(runner: Callable | None = None, name: str = "montecarlo") -> Quantity:
    """The ``montecarlo`` quantity with a given simulator (default ``simulate.run``), called as
    ``runner(problem, alpha, beta, batch, steps, runs, seed, method=, features=, every=steps)``
    and returning ``simulate.Trajectories``; the seed is the point's own (``grid.point_seed``)."""
    def point(p: Point) -> MonteCarloAtHorizon:
        run = runner if runner is not None else _simulator()
        traj = run(p.problem, p.alpha, p.beta, p.batch, p.steps, p.runs, p.seed,
                   method=p.method, features=p.features, every=max(p.steps, 1))
        return monte_carlo_summary(traj)
    return Quantity(name, MONTE_CARLO_FIELDS, point, needs=("alpha", "steps", "runs"),
                    schedules=True)


MONTE_CARLO_FIELDS = (Field("mean", "float"), Field("stderr", "float"), Field("median", "float"),
                      Field("finite_runs", "int"), Field("diverged_runs", "int"),
                      Field("heavy_tailed", "bool"))

register(Quantity("singularities", SINGULARITY_FIELDS, _singularities_point, _singularities_block,
                  needs=("alpha",)))
register(Quantity("loss", (Field("final", "float"), Field("diverges", "bool"), Field("rate", "float"),
                           Field("limited_by", "category", LIMITS), Field("stopped_early", "bool")),
                  _loss_point, needs=("alpha", "steps"), schedules=True))
register(monte_carlo())
