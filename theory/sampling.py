"""Sampling: how a mini-batch is drawn, and the feature law of the population.

* ``"iid"``: ``b`` samples drawn independently (with replacement): the single-sample gradient
  covariance is divided by ``b``.
* ``"without-replacement"``: ``b`` distinct points of a data set of ``N`` (the core paper's
  experiments): the factor is ``gamma = (N - b) / ((N - 1) b)`` (the finite-population
  correction; zero at ``b = N``, full-batch gradient descent).
* ``"epochs"``: the data set reshuffled each epoch and cut into consecutive batches (how training
  is usually run). Batches of one epoch are dependent; no exact second-moment theory is known here,
  so theory routes refuse it and only the Monte Carlo runs it (``docs`` measure the gap to the
  independent-batch theory).

``features`` is the law of a sample's features in the eigenbasis, ``x = sqrt(lambda) z``:
``"gaussian"`` (SE exact with ``tau = (1, -1)``) or ``"rademacher"`` (``(1, 1)``); a data problem's
rows are sampled as they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks

KINDS = ("iid", "without-replacement", "epochs")
FEATURE_LAWS = ("gaussian", "rademacher")


@dataclass(frozen=True)
class Sampling:
    kind: str = "iid"
    data_size: int | None = None
    features: str = "gaussian"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"sampling must be one of {KINDS}, got {self.kind!r}")
        if self.features not in FEATURE_LAWS:
            raise ValueError(f"features must be one of {FEATURE_LAWS}, got {self.features!r}")
        if self.kind == "iid":
            if self.data_size is not None:
                raise ValueError("data_size belongs to sampling 'without-replacement' or 'epochs'; "
                                 "i.i.d. draws come from the population")
        else:
            if self.data_size is None:
                raise ValueError(f"sampling {self.kind!r} needs data_size (the number N of data points)")
            object.__setattr__(self, "data_size", checks.integer("data_size", self.data_size, 1))

    @classmethod
    def iid(cls, features: str = "gaussian") -> "Sampling":
        return cls("iid", None, features)

    @classmethod
    def without_replacement(cls, data_size: int, features: str = "gaussian") -> "Sampling":
        return cls("without-replacement", data_size, features)

    @classmethod
    def epochs(cls, data_size: int, features: str = "gaussian") -> "Sampling":
        return cls("epochs", data_size, features)

    @property
    def has_theory(self) -> bool:
        return self.kind != "epochs"

    def check_batch(self, low: float, high: float) -> None:
        """A batch schedule with values in [low, high] fits this sampling."""
        if low < 1:
            raise ValueError(f"batch must be an integer >= 1, got {low + 0.0:g}")   # never -0
        if self.data_size is not None and high > self.data_size:
            raise ValueError(f"batch must be <= data_size ({self.data_size}) when sampling "
                             f"{self.kind!r}, got {high:g}")

    def batch_factor(self, batch) -> np.ndarray:
        """The factor multiplying the single-sample noise covariance, per batch size (array)."""
        if self.kind == "epochs":
            raise ValueError("sampling 'epochs' has no second-moment theory (batches within an "
                             "epoch are dependent); use 'without-replacement' for the theory, or "
                             "the Monte Carlo for epochs")
        b = np.asarray(batch, dtype=np.float64)
        if self.kind == "iid":
            return 1.0 / b
        n = float(self.data_size)
        if n == 1:
            return np.zeros_like(b)
        return (n - b) / ((n - 1.0) * b)

    @property
    def text(self) -> str:
        return {"iid": "i.i.d. batches",
                "without-replacement": f"batches without replacement from {self.data_size} points",
                "epochs": f"shuffled epochs of {self.data_size} points"}[self.kind]
