"""SimulationSpec: a validated Monte Carlo request in plain arrays, the contract between
``simulate.run`` (which builds it from a Problem) and the backends (``simulate.cpu``,
``simulate.cuda``), which turn it into ``Trajectories``.

The dynamics (docs/theory.md), run for ``runs`` independent replicas in the eigenbasis of H:
``x = sqrt(lambda) * z`` (z i.i.d. standard Gaussian or Rademacher components), label noise
``y - <w*, x> ~ N(0, label_noise)``, mini-batch gradient ``g = (1/b) sum_i x_i (x_i . e - eps_i)``,
heavy ball ``v <- beta v - alpha g(e); e <- e + v`` or Nesterov (gradient at ``e + beta v``),
``v_0 = 0``, every run starting from ``e_0 = initial_error``. The recorded loss is the exact
population loss ``1/2 sum_k lambda_k e_k^2 + label_noise / 2`` at steps ``0, every, 2 every, ..``
(and ``steps`` itself).

Finite data sets (CPU backend only): ``features == "data"``, ``rows`` holds the data's rows in the
eigenbasis (n x N; a row drawn uniformly with replacement is the sample) and ``residuals`` their
label noise ``y - <w*, x>``; ``label_noise`` is then ``mean(residuals^2)``, the loss floor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("gaussian", "rademacher")
SAMPLERS = ("auto", "per-sample", "projected")
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class SimulationSpec:
    eigenvalues: np.ndarray       # (N,) > 0
    initial_error: np.ndarray     # (N,) e_0 in the eigenbasis
    alpha: float
    beta: float
    nesterov: bool
    batch: int
    steps: int
    runs: int
    seed: int
    features: str                 # one of FEATURES
    label_noise: float            # sigma^2 >= 0
    every: int
    quantile_levels: tuple = DEFAULT_QUANTILES
    rows: np.ndarray | None = None        # (n, N) data rows in the eigenbasis, features == "data"
    residuals: np.ndarray | None = None   # (n,) y - <w*, x> per row, features == "data"
    sampler: str = "per-sample"   # "projected": Gaussian mini-batch gradients drawn exactly in law
                                  # from n + 2b normals (simulate.features.projected_gradient)

    @property
    def recorded_steps(self) -> np.ndarray:
        rec = np.arange(0, self.steps + 1, self.every)
        return rec if rec[-1] == self.steps else np.append(rec, self.steps)
