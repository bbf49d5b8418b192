"""Record: which steps of a run to keep, so that memory follows what is asked (``O(N +
checkpoints)``), not the horizon.

``Record.all()`` keeps every step ``0..T``; ``Record.every(k)`` keeps ``0, k, 2k, ..`` and ``T``;
``Record.log(n)`` keeps ``0`` and about ``n`` log-spaced steps up to ``T`` (rounded, unique, ``T``
included); ``Record.at(steps)`` keeps exactly the steps listed (each in ``0..T``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import budget, checks


@dataclass(frozen=True)
class Record:
    kind: str = "all"
    every_k: int = 1
    count: int = 0
    listed: tuple = ()

    def __post_init__(self):
        if self.kind not in ("all", "every", "log", "at"):
            raise ValueError(f"record kind must be all, every, log or at, got {self.kind!r}")
        object.__setattr__(self, "every_k", checks.integer("every", self.every_k, 1))
        object.__setattr__(self, "count", checks.integer("log count", self.count, 0))
        if self.kind == "log" and self.count < 1:
            raise ValueError("Record.log(n) needs n >= 1 checkpoints")
        if self.kind == "at":
            steps = tuple(checks.integer("recorded step", s, 0) for s in self.listed)
            if not steps:
                raise ValueError("Record.at needs at least one step")
            object.__setattr__(self, "listed", tuple(sorted(set(steps))))

    @classmethod
    def all(cls) -> "Record":
        return cls("all")

    @classmethod
    def every(cls, k: int) -> "Record":
        return cls("every", every_k=k)

    @classmethod
    def log(cls, n: int) -> "Record":
        return cls("log", count=n)

    @classmethod
    def at(cls, steps) -> "Record":
        try:
            steps = tuple(np.atleast_1d(np.asarray(steps)).tolist())
        except (TypeError, ValueError):
            raise ValueError(f"recorded steps must be integers, got {steps!r}") from None
        return cls("at", listed=steps)

    def steps_for(self, horizon: int) -> np.ndarray:
        """The recorded steps (sorted int64 array) of a run of ``horizon`` steps."""
        T = int(horizon)
        budget.memory("steps", 32.0 * self.count_for(T),
                      f"recording {self.text} of {T} steps ({self.count_for(T)} points)")
        if self.kind == "all":
            return np.arange(T + 1, dtype=np.int64)
        if self.kind == "every":
            rec = np.arange(0, T + 1, self.every_k, dtype=np.int64)
            return rec if rec[-1] == T else np.append(rec, T)
        if self.kind == "log":
            if T == 0:
                return np.zeros(1, dtype=np.int64)
            pts = np.unique(np.rint(np.geomspace(1, T, self.count)).astype(np.int64))
            return np.concatenate([[0], pts])
        steps = np.asarray(self.listed, dtype=np.int64)
        if steps[-1] > T:
            raise ValueError(f"recorded step {int(steps[-1])} lies beyond the horizon ({T} steps)")
        return steps

    def count_for(self, horizon: int) -> int:
        """How many steps ``steps_for(horizon)`` records (at most), without building them."""
        T = int(horizon)
        return {"all": T + 1, "every": T // (self.every_k or 1) + 2,
                "log": (self.count or 0) + 1}.get(self.kind, len(self.listed or ()))

    @property
    def text(self) -> str:
        return {"all": "every step", "every": f"every {self.every_k} steps",
                "log": f"{self.count} log-spaced steps", "at": f"steps {list(self.listed)}"}[self.kind]
