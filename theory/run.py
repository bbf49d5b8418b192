"""Run: one frozen description of a training run, read by every route (theory and Monte Carlo).

    Run = Problem     the spectrum and initial error (or a data set's rows)
        + Method      a linear per-mode recursion (F, K, G, x0) with named parameters
        + Schedule    per-step alpha_t, beta_t, b_t and extra parameters (constants are schedules)
        + Sampling    i.i.d. | without replacement within a batch | shuffled epochs; feature law
        + NoiseModel  the closure of the gradient noise a theory route uses (SE (tau1, tau2))
        + Record      which steps to keep

``Run.build(problem, method, alpha=..., beta=..., batch=..., steps=...)`` validates everything
once (every hyperparameter against its interval at every step, from the shapes' closed-form
bounds); routes (``sgdyn.theory.solve``, ``sgdyn.simulate.run``) then say which parts they support
and refuse the rest in one line, so none can silently run something other than what was described.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.methods import Method, Parameter, get_method
from sgdyn.theory.noise import GAUSSIAN, RADEMACHER, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.record import Record
from sgdyn.theory.sampling import Sampling
from sgdyn.theory.schedules import Schedule, as_shape

ALPHA = Parameter("alpha_", 1.0, 0.0, np.inf, "()")      # the interval of alpha (name for messages)
BETA = Parameter("beta_", 0.0, -1.0, 1.0, "()")
_DEFAULT_NOISE = {"gaussian": GAUSSIAN, "rademacher": RADEMACHER}


def _interval_check(what: str, shape, lo: float, hi: float, param: Parameter) -> None:
    rule = "be > 0" if param is ALPHA else f"lie in {param.interval}"
    for v in (lo, hi):
        if not (np.isfinite(v) and param._inside(v)):
            where = "" if shape.is_constant else f" at every step (the schedule {shape.text} reaches)"
            raise ValueError(f"{what} must {rule}{where}, got {v:g}")


@dataclass(frozen=True)
class Run:
    problem: Problem
    method: Method
    schedule: Schedule
    sampling: Sampling
    noise: NoiseModel
    record: Record

    @classmethod
    def build(cls, problem: Problem, method="heavy-ball", *, alpha, beta=0.0, batch=1, steps,
              params: dict | None = None, noise: NoiseModel | None = None,
              sampling: Sampling | None = None, record: Record | None = None) -> "Run":
        """``alpha``, ``beta``, ``batch`` and each entry of ``params`` (the method's extra
        parameters, default the method's bound values) may be numbers, shapes
        (``sgdyn.theory.schedules``), their text forms, arrays (one value per step) or callables.
        ``sampling`` defaults to i.i.d. Gaussian features, or without replacement from
        ``problem.data_size`` points when the problem has one; ``noise`` to the problem's own model
        (a data problem's fitted tau), else the feature law's exact SE model."""
        if not isinstance(problem, Problem):
            raise ValueError(f"problem must be a sgdyn.theory.Problem, got {type(problem).__name__}")
        m = get_method(method)
        steps = checks.integer("steps", steps, 0)
        params = dict(params or {})
        if not all(isinstance(k, str) for k in params):
            raise ValueError("params must map parameter names to values")
        unknown = set(params) - {p.name for p in m.extra}
        if unknown:
            raise ValueError(f"method {m.name!r} has no parameter(s) {', '.join(sorted(unknown))}"
                             + (f"; its parameters: {', '.join(p.name for p in m.extra)}"
                                if m.extra else "; it has no extra parameters"))
        shapes = [("alpha", as_shape(alpha, "alpha")), ("beta", as_shape(beta, "beta")),
                  ("batch", as_shape(batch, "batch"))]
        values = m.extra_values
        for p in m.extra:
            shape = as_shape(params.get(p.name, values[p.name]), p.name)
            if p.constant and not shape.is_constant:
                raise ValueError(f"parameter {p.name} of {m.name!r} enters the preconditioner and "
                                 "must be constant, got a schedule")
            shapes.append((p.name, shape))
        schedule = Schedule(tuple(shapes), steps)
        if sampling is None:
            sampling = Sampling() if problem.data_size is None else \
                Sampling.without_replacement(problem.data_size)
        if not isinstance(sampling, Sampling):
            raise ValueError(f"sampling must be a sgdyn.theory.Sampling, got {type(sampling).__name__}")
        if noise is None:
            noise = problem.noise if problem.noise is not None else _DEFAULT_NOISE[sampling.features]
        if not isinstance(noise, NoiseModel):
            raise ValueError(f"noise must be a sgdyn.theory.NoiseModel, got {type(noise).__name__}")
        record = Record.all() if record is None else record
        if not isinstance(record, Record):
            raise ValueError(f"record must be a sgdyn.theory.Record, got {type(record).__name__}")
        run = cls(problem, m, schedule, sampling, noise, record)
        run._validate()
        return run

    def _validate(self) -> None:
        b = self.schedule.bounds()
        sched = self.schedule
        _interval_check("alpha", sched["alpha"], *b["alpha"], ALPHA)
        if self.method.has_momentum:
            _interval_check("beta", sched["beta"], *b["beta"], BETA)
        elif b["beta"] != (0.0, 0.0):
            raise ValueError(f"beta must be 0 for method {self.method.name!r} (it has no momentum), "
                             f"got {b['beta'][1] if b['beta'][1] else b['beta'][0]:g}")
        self.sampling.check_batch(*b["batch"])
        rows = self.problem.data.n if self.problem.data is not None else None
        if rows is not None and self.sampling.kind != "iid" and self.sampling.data_size != rows:
            raise ValueError(f"sampling {self.sampling.kind!r} from {self.sampling.data_size} "
                             f"points, but the data has {rows} rows")
        for p in self.method.extra:
            _interval_check(f"{self.method.name} parameter {p.name}", sched[p.name], *b[p.name], p)
        self.record.steps_for(self.steps)

    # -- reading the description ------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self.schedule.steps

    @property
    def recorded_steps(self) -> np.ndarray:
        return self.record.steps_for(self.steps)

    @property
    def is_constant(self) -> bool:
        return self.schedule.is_constant

    def constant(self) -> dict:
        """``{"alpha", "beta", "batch", extras...} -> value`` for a constant schedule."""
        return self.schedule.constant_values()

    def hyperparameters(self, t0: int, t1: int) -> dict:
        """Per-step values of every parameter on steps ``t0 .. t1-1``."""
        return self.schedule.values(t0, t1)

    def batch_factors(self, batch: np.ndarray) -> np.ndarray:
        return self.sampling.batch_factor(batch)

    def bound_method(self, values: dict) -> Method:
        """The method with its extra parameters bound to ``values`` (one step's values)."""
        extra = {p.name: float(values[p.name]) for p in self.method.extra}
        return self.method.bind(**extra) if extra else self.method

    def replace(self, **changes) -> "Run":
        """A copy with parts replaced (``problem``, ``method``, ``sampling``, ``noise``,
        ``record``), validated again."""
        out = replace(self, **changes)
        out._validate()
        return out

    def with_record(self, record: Record) -> "Run":
        return self.replace(record=record)

    def describe(self) -> dict:
        """The run's inputs as plain data (for JSON output that explains itself)."""
        p = self.problem
        return {"problem": {"name": p.name, "modes": p.n_modes, "total_modes": p.total_modes,
                            "trace": p.trace, "label_noise": p.label_noise},
                "method": self.method.label, "update": self.method.description,
                "schedule": self.schedule.text, "steps": self.steps,
                "sampling": self.sampling.kind, "data_size": self.sampling.data_size,
                "features": self.sampling.features,
                "noise": {"tau1": self.noise.tau1, "tau2": self.noise.tau2},
                "record": self.record.text}
