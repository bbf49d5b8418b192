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

from theory import checks


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
