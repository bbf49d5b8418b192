"""A sweep's grid: named axes over hyperparameters (and problem parameters), the fixed settings,
the per-point seeds, and the split of the grid into blocks (one task, one store chunk each).

Schedules: ``alpha``, ``beta`` and ``batch`` may be schedule text forms
(``sgdyn.theory.schedules``), fixed (``alpha="warmup(20)+cosine(0.3)"``) or as the values of their
axis (``{"alpha": ["cosine(0.3)", "step(0.3,milestones=[50])"]}``, stored as text coordinates). A
fixed schedule may hold placeholders ``{name}`` that name axes of their own: ``alpha=
"warmup(20)+cosine({peak},floor=0.01)"`` with the axis ``{"peak": [0.1, 0.2, 0.4]}`` sweeps the
peak (integers substituted without a decimal point, so they can fill milestones). Points with a schedule need ``steps`` and are validated
as a ``Run`` before any work.

Points are numbered in C order over the axes (the last axis fastest); point ``i`` gets the seed
``point_seed(seed, i)``, so a point's numbers never depend on how the grid is split or scheduled.
"""
from __future__ import annotations

import functools
import itertools
import json
import re
from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.methods import get_method
from sgdyn.theory.noise import NoiseModel, batch_factor
from sgdyn.theory.problem import Problem
from sgdyn.theory.run import Run
from sgdyn.theory.schedules import as_shape

# axis name -> validator of one value (theory.checks: ValueError naming the axis)
AXES = {
    "alpha": checks.positive,
    "beta": checks.momentum,
    "batch": lambda name, v: checks.integer(name, v, 1),
    "steps": lambda name, v: checks.integer(name, v, 0),
    "runs": lambda name, v: checks.integer(name, v, 1),
    "tau1": checks.nonnegative,
    "tau2": checks.finite_real,
    "label_noise": checks.nonnegative,
    "data_size": lambda name, v: checks.integer(name, v, 1),
    "nu": checks.positive,       # power-law problems (powerlaw:nu=..,kappa=..,n=..[,scale=..])
    "kappa": checks.positive,
    "n": lambda name, v: checks.integer(name, v, 1),
    "scale": checks.positive,
}
POWER_LAW = ("nu", "kappa", "n", "scale")
DEFAULTS = {"beta": 0.0, "batch": 1, "tau1": 1.0, "tau2": -1.0}
FEATURES = ("gaussian", "rademacher")
SCHEDULED = ("alpha", "beta", "batch")          # settings that take schedule text forms
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _is_schedule(value) -> bool:
    return isinstance(value, str)


def _checked(name: str, value, placeholders: bool = False):
    """One axis value or fixed setting, validated: a number by ``AXES``, or for ``SCHEDULED``
    settings a schedule text form (kept in its canonical text; with ``placeholders``, as given)."""
    if not _is_schedule(value):
        return AXES[name](name, value)
    if name not in SCHEDULED:
        raise ValueError(f"{name} must be a number, got {value!r} (schedules: {', '.join(SCHEDULED)})")
    if placeholders and _PLACEHOLDER.search(value):
        return value.strip()
    return as_shape(value, name).text


def _number_text(x) -> str:
    """A number as the shortest text that reads back exactly (integers without a point, so that
    they can fill milestones)."""
    x = float(x)
    return repr(int(x)) if x.is_integer() and abs(x) < 2 ** 53 else repr(x)


def fill(template: str, values: dict) -> str:
    """``template`` with each ``{name}`` replaced by the number ``values[name]``."""
    return _PLACEHOLDER.sub(lambda m: _number_text(values[m.group(1)]), template)


def point_seeds(seed: int, count: int) -> np.ndarray:
    """Seeds of grid points ``0 .. count-1``: the 32-bit words of
    ``numpy.random.SeedSequence(seed).generate_state(count)``. Word ``i`` is a hash of (entropy,
    i) alone, so a point's seed does not depend on the grid's size, split or schedule."""
    return np.random.SeedSequence(seed).generate_state(count).astype(np.int64)


def point_seed(seed: int, index: int) -> int:
    """The seed of grid point ``index`` (``point_seeds(seed, index + 1)[index]``)."""
    return int(point_seeds(seed, index + 1)[index])


@dataclass(frozen=True)
class Point:
    """One grid point, resolved: what a quantity is evaluated at."""

    index: int
    problem: Problem
    problem_key: tuple        # equal keys <=> the same problem (for grouping vectorised work)
    method: str
    noise: NoiseModel
    alpha: float | str | None   # a schedule's text form, or a number
    beta: float | str
    batch: int | str
    steps: int | None
    runs: int | None
    features: str
    seed: int


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: everything a store is checked against before a sweep resumes into it.

    ``axes``: ``((name, values), ..)`` with names from ``AXES`` (or placeholders of a fixed
    schedule, module docstring); ``fixed``: ``((name, value), ..)`` for settings that are not axes
    (defaults ``beta = 0, batch = 1, tau1 = 1, tau2 = -1``); ``chunk``: points per block (one task
    and one store chunk).
    """

    problem: str
    axes: tuple
    quantities: tuple
    method: str = "heavy-ball"
    fixed: tuple = ()
    features: str = "gaussian"
    seed: int = 0
    chunk: int = 256

    @classmethod
    def build(cls, problem: str, axes: dict, quantities, *, method: str = "heavy-ball",
              features: str = "gaussian", seed: int = 0, chunk: int = 256, **fixed) -> "SweepSpec":
        if not isinstance(problem, str):
            raise ValueError(f"problem must be a problem spec string or file path, got {problem!r}")
        if not axes:
            raise ValueError("axes must name at least one axis")
        placeholders = {m for v in fixed.values() if _is_schedule(v)
                        for m in _PLACEHOLDER.findall(v)}
        for name in sorted(placeholders - set(axes)):
            raise ValueError(f"placeholder {{{name}}} of a schedule needs an axis {name!r}")
        for name in sorted(placeholders & set(AXES)):
            raise ValueError(f"placeholder {{{name}}} of a schedule must not be named like the "
                             f"setting {name!r}; rename it")
        clean_axes = []
        for name, values in axes.items():
            if name not in AXES and name not in placeholders:
                raise ValueError(f"axis {name!r} is not one of {sorted(AXES)} nor a {{placeholder}} "
                                 "of a fixed schedule")
            vals = np.atleast_1d(np.asarray(values)).ravel()
            if vals.size == 0:
                raise ValueError(f"axis {name!r} has no values")
            if name in placeholders:
                checked = tuple(checks.finite_real(name, v.item()) for v in vals)
            else:
                checked = tuple(_checked(name, v.item()) for v in vals)
            if len(set(checked)) != len(checked):
                raise ValueError(f"axis {name!r} repeats a value")
            clean_axes.append((name, checked))
        clean_fixed = []
        for name, value in sorted(fixed.items()):
            if name not in AXES:
                raise ValueError(f"setting {name!r} is not one of {sorted(AXES)}")
            if name in axes:
                raise ValueError(f"{name!r} is both an axis and a fixed setting")
            if value is not None:
                clean_fixed.append((name, _checked(name, value, placeholders=True)))
        get_method(method)
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        names = tuple(quantities)
        if not names:
            raise ValueError("quantities must name at least one quantity")
        spec = cls(problem, tuple(clean_axes), names, method, tuple(clean_fixed), features,
                   checks.integer("seed", seed, 0), checks.integer("chunk", chunk, 1))
        powerlaw = [a for a in spec.axis_names if a in POWER_LAW]
        if powerlaw and not problem.startswith("powerlaw:"):
            raise ValueError(f"axis {powerlaw[0]!r} needs a powerlaw:... problem, got {problem!r}")
        return spec

    # -- shape --------------------------------------------------------------------------------
    @property
    def axis_names(self) -> tuple:
        return tuple(name for name, _ in self.axes)

    @property
    def shape(self) -> tuple:
        return tuple(len(values) for _, values in self.axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def chunk_shape(self) -> tuple:
        """Block shape with at most ``chunk`` points, filled from the last axis."""
        left = self.chunk
        out = []
        for n in reversed(self.shape):
            c = max(1, min(n, left))
            out.append(c)
            left //= c
        return tuple(reversed(out))

    def blocks(self) -> list[tuple]:
        """Every block as a tuple of slices, in C order."""
        ranges = [range(0, n, c) for n, c in zip(self.shape, self.chunk_shape)]
        return [tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, self.chunk_shape, self.shape))
                for start in itertools.product(*ranges)]

    def to_json(self) -> str:
        return json.dumps({"problem": self.problem, "axes": [[n, list(v)] for n, v in self.axes],
                           "quantities": list(self.quantities), "method": self.method,
                           "fixed": [list(kv) for kv in self.fixed], "features": self.features,
                           "seed": self.seed, "chunk": self.chunk}, sort_keys=True)

    # -- points -------------------------------------------------------------------------------
    def seeds(self) -> np.ndarray:
        return point_seeds(self.seed, self.size).reshape(self.shape)

    def points(self, block: tuple) -> list[Point]:
        """The points of one block, in C order."""
        fixed = dict(DEFAULTS, **dict(self.fixed))
        shape = self.shape
        index = np.ravel_multi_index(np.meshgrid(*[np.arange(s.start, s.stop) for s in block],
                                                 indexing="ij"), shape).ravel()
        seeds = point_seeds(self.seed, int(index.max()) + 1)[index]
        out = []
        for i, multi in enumerate(itertools.product(*[range(s.start, s.stop) for s in block])):
            values = dict(fixed)
            values.update({name: vals[j] for (name, vals), j in zip(self.axes, multi)})
            out.append(self._point(int(index[i]), int(seeds[i]), values))
        return out

    @property
    def has_schedule(self) -> bool:
        """Whether some point's alpha, beta or batch is a schedule."""
        settings = dict(self.fixed, **{name: values[0] for name, values in self.axes})
        return any(_is_schedule(settings.get(name)) for name in SCHEDULED)

    def _point(self, index: int, seed: int, v: dict) -> Point:
        key = (self.problem,) + tuple(v.get(k) for k in POWER_LAW + ("label_noise", "data_size"))
        problem = _problem(key)
        m = get_method(self.method)
        for name in SCHEDULED:
            if _is_schedule(v.get(name)) and _PLACEHOLDER.search(v[name]):
                v[name] = _checked(name, fill(v[name], v))
        beta = v["beta"]
        if any(_is_schedule(v.get(name)) for name in SCHEDULED):
            for need in ("alpha", "steps"):
                if v.get(need) is None:
                    raise ValueError(f"a schedule needs {need}: give it as an axis or fixed setting")
            Run.build(problem, m, alpha=v["alpha"], beta=beta, batch=v["batch"],
                      steps=v["steps"])                 # every step inside its interval
        elif not m.has_momentum and beta != 0.0:
            raise ValueError(f"beta must be 0 for method {m.name!r}, got {beta}")
        else:
            _batch_factor(v["batch"], problem.data_size)   # batch <= data_size
        return Point(index, problem, key, self.method, _noise(v["tau1"], v["tau2"]), v.get("alpha"),
                     beta, v["batch"], v.get("steps"), v.get("runs"), self.features, seed)

    def check(self, needs: set) -> None:
        """Raise ValueError, before any work, for a setting a quantity needs that is missing, or for
        a grid point that cannot be built (every distinct problem is built once)."""
        settings = set(self.axis_names) | {k for k, _ in self.fixed} | set(DEFAULTS)
        missing = sorted(set(needs) - settings)
        if missing:
            raise ValueError(f"the quantities need {', '.join(missing)}: give them as axes or fixed settings")
        for block in self.blocks():
            self.points(block)


_noise = functools.lru_cache(maxsize=256)(NoiseModel)
_batch_factor = functools.lru_cache(maxsize=4096)(batch_factor)


@functools.lru_cache(maxsize=64)
def _problem(key: tuple) -> Problem:
    spec, nu, kappa, n, scale, label_noise, data_size = key
    if any(x is not None for x in (nu, kappa, n, scale)):
        params = dict(item.split("=", 1) for item in spec[len("powerlaw:"):].split(",") if item)
        params.update({k: repr(x) for k, x in zip(POWER_LAW, (nu, kappa, n, scale)) if x is not None})
        spec = "powerlaw:" + ",".join(f"{k}={x}" for k, x in params.items())
    problem = Problem.parse(spec)
    changes = {k: x for k, x in (("label_noise", label_noise), ("data_size", data_size)) if x is not None}
    return problem.replace(**changes) if changes else problem
