"""The spectrally expressible (SE) model of mini-batch gradient noise.

A single-sample gradient at error ``e`` is ``x x^T e - x eps``; its covariance about ``H e`` is
``Sigma(C) = E[x x^T C x x^T] - H C H + sigma^2 H``, ``C = E[e e^T]``. The SE closure
(Velikanov, Kuznedelev, Yarotsky, ICLR 2023, arXiv 2206.11124, section 2) keeps

    Sigma(C) ~= tau1 Tr(H C) H - tau2 H C H  (+ sigma^2 H),

and a batch of ``b`` samples divides it by ``b`` (i.i.d. draws) or multiplies it by
``gamma = (N - b) / ((N - 1) b)`` (``b`` of ``N`` data points drawn without replacement).

Exact cases (on the diagonal in the eigenbasis, which is all the loss needs): features with
independent components ``x_k = sqrt(lambda_k) z_k``, ``E z^2 = 1``, ``E z^4 = kurt`` give
``tau1 = 1, tau2 = 2 - kurt``: Gaussian (kurt 3) is ``(1, -1)``, Rademacher (kurt 1) is ``(1, 1)``.
The core paper uses one parameter tau at unit noise scale: its model is ``(tau1, tau2) = (1, tau)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.display import Result


@dataclass(frozen=True)
class NoiseModel:
    """SE noise parameters ``(tau1, tau2)``; validity (a covariance that stays positive
    semi-definite for every C, tested on single-mode C) needs ``tau1 >= 0`` and ``tau2 <= tau1``."""

    tau1: float = 1.0
    tau2: float = -1.0

    def __post_init__(self):
        tau1 = checks.nonnegative("tau1", self.tau1)
        tau2 = checks.finite_real("tau2", self.tau2)
        if tau2 > tau1:
            raise ValueError(
                f"tau2 must be <= tau1 (else the noise covariance is not positive semi-definite), "
                f"got tau1={tau1}, tau2={tau2}")
        object.__setattr__(self, "tau1", tau1)
        object.__setattr__(self, "tau2", tau2)

    @classmethod
    def from_paper_tau(cls, tau: float) -> "NoiseModel":
        """The core paper's one-parameter model: ``Sigma = Tr(HC) H - tau H C H``."""
        return cls(1.0, tau)

    @classmethod
    def from_kurtosis(cls, kurtosis: float) -> "NoiseModel":
        """Independent standardized feature components with ``E z^4 = kurtosis``: exact SE."""
        return cls(1.0, 2.0 - checks.positive("kurtosis", kurtosis))


GAUSSIAN = NoiseModel(1.0, -1.0)
RADEMACHER = NoiseModel(1.0, 1.0)


def batch_factor(batch: int, data_size: int | None = None) -> float:
    """Factor multiplying the single-sample noise covariance for a mini-batch.

    ``1/b`` for ``b`` i.i.d. samples; ``gamma = (N - b) / ((N - 1) b)`` for ``b`` of ``N`` points
    drawn without replacement (zero at ``b = N``: full-batch gradient descent).
    """
    b = checks.integer("batch", batch, 1)
    if data_size is None:
        return 1.0 / b
    n = checks.integer("data_size", data_size, 1)
    if b > n:
        raise ValueError(f"batch must be <= data_size ({n}) when sampling without replacement, got {b}")
    if n == 1:
        return 0.0
    return (n - b) / ((n - 1) * b)


@dataclass(frozen=True)
class TauFit(Result):
    """Least-squares fit of the SE parameters to a data matrix's fourth moments (``estimate_tau``)."""

    tau1: float
    tau2: float
    residual: float     # ||Q - Q_SE||_F / ||Q||_F: 0 when the data are exactly SE on the diagonal
    samples: int
    modes: int

    @property
    def model(self) -> NoiseModel:
        """The fitted ``NoiseModel``. The fit has ``tau2 <= tau1`` up to rounding (Jensen:
        ``E x_k^4 >= lambda_k^2``), so only a rounding excess is clipped."""
        return NoiseModel(max(self.tau1, 0.0), min(self.tau2, max(self.tau1, 0.0)))


def estimate_tau(X, rtol: float = 1e-10) -> TauFit:
    """Fit ``(tau1, tau2)`` of the SE model to the rows of ``X`` (n x d) as samples of ``x``.

    The loss recursion only needs the noise covariance's diagonal in the eigenbasis of
    ``H = X^T X / n`` (uncentered, as ``Problem.from_data``) at diagonal ``C = diag(c)``:
    ``Sigma_kk = sum_j Q_kj c_j - lambda_k^2 c_k`` with ``Q_kj = E[x_k^2 x_j^2]``. The SE model
    makes this ``tau1 lambda_k sum_j lambda_j c_j - tau2 lambda_k^2 c_k``, i.e.
    ``Q ~= tau1 lambda lambda^T + (1 - tau2) diag(lambda^2)``. The fit is ordinary least squares
    of that matrix identity over all ``(k, j)`` (absolute entries: large modes, which carry the
    loss, weigh most); the two normal equations are solved in closed form. Independent
    standardized components with kurtosis ``kappa`` give ``(1, 2 - kappa)`` exactly (Gaussian
    ``(1, -1)``, Rademacher ``(1, 1)``). Directions with ``lambda <= rtol lambda_max`` are dropped.
    Source: the SE closure of Velikanov, Kuznedelev, Yarotsky (ICLR 2023), section 2.
    """
    X = checks.real_values("X", X)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"X must be a 2-D array with at least 2 rows (samples x features), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must not contain NaN or inf")
    lam, U = np.linalg.eigh(X.T @ X / X.shape[0])
    keep = lam > rtol * lam.max() if lam.max() > 0 else np.zeros(lam.shape, bool)
    if np.count_nonzero(keep) < 2:
        raise ValueError("X must have at least 2 directions with positive variance to identify "
                         f"tau1 and tau2 separately, got {np.count_nonzero(keep)}")
    return fit_tau(X @ U[:, keep])


def fit_tau(Z) -> TauFit:
    """``estimate_tau`` on rows already in the eigenbasis of ``H`` (``Z^T Z / n`` diagonal, every
    column of positive variance, at least two columns): the fit without the eigendecomposition,
    for callers that hold such rows (``Problem.from_rows``, ``Problem.from_kernel``)."""
    n = Z.shape[0]
    lam = np.mean(Z ** 2, axis=0)
    Z2 = Z ** 2
    Q = Z2.T @ Z2 / n
    l2, l4 = lam ** 2, lam ** 4
    # target Q - diag(lam^2) = tau1 * lam lam^T + tau2 * (-diag(lam^2)); normal equations:
    aa, ab, bb = l2.sum() ** 2, -l4.sum(), l4.sum()
    at = lam @ Q @ lam - l4.sum()
    bt = l4.sum() - l2 @ np.diag(Q)
    det = aa * bb - ab * ab
    tau1 = (at * bb - ab * bt) / det
    tau2 = (aa * bt - ab * at) / det
    fitted = tau1 * np.outer(lam, lam) + (1.0 - tau2) * np.diag(l2)
    residual = float(np.linalg.norm(Q - fitted) / np.linalg.norm(Q))
    return TauFit(float(tau1), float(tau2), residual, n, lam.size)
