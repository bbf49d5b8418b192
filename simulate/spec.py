"""SimulationSpec: a validated Monte Carlo request in plain arrays, the contract between
``simulate.run`` (which builds it from a ``sgdyn.theory.Run``) and the backends (``simulate.cpu``,
``simulate.cuda``), which turn it into ``Trajectories``.

The dynamics, run for ``runs`` independent replicas in the eigenbasis of H (``docs/theory.md``):
``x = sqrt(lambda) * z`` (z i.i.d. standard Gaussian or Rademacher components), label noise
``y - <w*, x> ~ N(0, label_noise)``, mini-batch gradient ``g = (1/b_t) sum_i x_i (x_i . p - eps_i)``
at the method's gradient point ``p = G_t x`` (per mode), and the method's own update
``x <- F_t x + K_t p_k g`` (``p_k`` the preconditioner), each run starting from
``x = x0 * e_0`` with ``e_0 = initial_error``. ``F, K, G`` and ``b`` are given per step (``stride``
1) or once for the whole run (``stride`` 0): the method is simulated as described, never
replaced by another. The recorded loss is the exact population loss
``1/2 sum_k lambda_k e_k^2 + label_noise / 2`` at ``recorded`` steps.

Finite data sets: ``features == "data"``, ``rows`` holds the data's rows in the eigenbasis (n x N)
and ``residuals`` their label noise ``y - <w*, x>``; ``label_noise`` is then ``mean(residuals^2)``,
the loss floor. ``sampling``: ``"iid"`` (rows with replacement), ``"without-replacement"`` (b
distinct rows per step) or ``"epochs"`` (a fresh permutation per epoch cut into consecutive
batches; an epoch's last incomplete batch is dropped). ``synthetic``: a spectrum problem sampled
from finite data sets drawn afresh per run, ``data_size`` rows each (``simulate.synthetic``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("gaussian", "rademacher")
SAMPLERS = ("auto", "per-sample", "projected")
SAMPLINGS = ("iid", "without-replacement", "epochs")
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class SimulationSpec:
    eigenvalues: np.ndarray       # (N,) > 0
    initial_error: np.ndarray     # (N,) e_0 in the eigenbasis
    F: np.ndarray                 # (T' , d, d) the method's gradient-free map per step
    K: np.ndarray                 # (T', d)     where the gradient enters
    G: np.ndarray                 # (T', d)     the gradient point
    x0: np.ndarray                # (d,)        initial state per unit error
    batch: np.ndarray             # (T',) int64 batch sizes
    stride: int                   # 1: per-step arrays (T' = steps), 0: constant (T' = 1)
    preconditioner: np.ndarray    # (N,) p(lambda_k) multiplying the gradient
    steps: int
    runs: int
    seed: int
    features: str                 # one of FEATURES, or "data"
    label_noise: float            # sigma^2 >= 0
    recorded: np.ndarray          # recorded steps (sorted, in 0..steps)
    method: str = "heavy-ball"    # the method's label (for reports)
    quantile_levels: tuple = DEFAULT_QUANTILES
    rows: np.ndarray | None = None        # (n, N) data rows in the eigenbasis, features == "data"
    residuals: np.ndarray | None = None   # (n,) y - <w*, x> per row, features == "data"
    sampler: str = "per-sample"   # "projected": Gaussian mini-batch gradients drawn exactly in law
                                  # from n + 2b normals (simulate.features.projected_gradient)
    sampling: str = "iid"         # one of SAMPLINGS (finite sampling needs rows)
    synthetic: str = ""           # "orthogonal" / "gaussian": each run draws its own data_size
    data_size: int = 0            # rows (simulate.synthetic) and samples them; "" : none

    @property
    def recorded_steps(self) -> np.ndarray:
        return self.recorded

    @property
    def dim(self) -> int:
        return self.x0.size

    @property
    def max_batch(self) -> int:
        return int(self.batch.max())
