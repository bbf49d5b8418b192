"""What a data problem keeps of its rows: everything the exact finite-data route needs.

A least-squares problem on the rows ``x_i`` (i = 1..n) of a data matrix with targets ``y_i``
(the conventions of docs/theory.md, on the empirical law of the rows): ``H = X^T X / n``
(uncentered: the model has no bias) with eigenpairs ``(lambda_k, u_k)`` in decreasing order,
``w*`` the least-squares solution, ``e_0 = U^T (w_0 - w*)`` and the residuals
``r_i = y_i - <w*, x_i>``. In the eigenbasis the rows are ``z_i = U^T x_i`` and

* ``(1/n) sum_i z_i z_i^T = diag(lambda)``  (the rows are in the eigenbasis of H);
* ``sum_i z_i r_i = 0``                      (normal equations of the least-squares fit);
* the loss over the data set is ``L(w) = 1/2 mean_i (<w, x_i> - y_i)^2
  = 1/2 e^T diag(lambda) e + sigma^2 / 2`` with ``sigma^2 = mean_i r_i^2``.

``DataRows`` holds ``z_i`` (``rows``, n x N), ``r_i`` (``residuals``) and the signed ``e_0``
(``initial_error``: the exact route needs the mean of the error, not only ``e_0^2``, because the
label-noise cross term ``-2 r_i <x_i, E e>`` of the gradient covariance depends on it). A
``theory.problem.Problem`` carries one as ``problem.data`` (``Problem.from_rows``), and
``Problem.__post_init__`` checks that the spectrum, the initial moments and the label noise are
the ones of the rows. This module also reads data matrices from ``.npy`` / ``.csv`` files
(``read_matrix``) and standardises them (``standardize``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sgdyn.theory import checks

# relative tolerance of the consistency checks: far above the rounding of an eigendecomposition
# (~1e-15 relative), far below any real inconsistency (a wrong spectrum, rows of another basis)
CONSISTENCY_RTOL = 1e-8


def _finite_array(name: str, value, ndim: int) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    if arr.ndim != ndim or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class DataRows:
    """The rows of a data problem in the eigenbasis of ``H`` (module docstring).

    ``rows``: (n, N) with ``rows.T @ rows / n = diag(lambda)``; ``residuals``: (n,) with
    ``rows.T @ residuals = 0``; ``initial_error``: (N,) signed ``e_0``. ``standardized`` and
    ``features`` (the column count of the original matrix) are provenance only.
    """

    rows: np.ndarray
    residuals: np.ndarray
    initial_error: np.ndarray
    standardized: bool = False
    features: int | None = None

    def __post_init__(self):
        rows = _finite_array("rows", self.rows, 2)
        res = _finite_array("residuals", self.residuals, 1)
        e0 = _finite_array("initial_error", self.initial_error, 1)
        n, N = rows.shape
        if n < 2:
            raise ValueError(f"rows must hold at least 2 rows, got {n}")
        if res.shape != (n,):
            raise ValueError(f"residuals must have one entry per row ({n}), got shape {res.shape}")
        if e0.shape != (N,):
            raise ValueError(f"initial_error must have one entry per column of rows ({N}), "
                             f"got shape {e0.shape}")
        H = rows.T @ rows / n
        lam = np.diag(H)
        if np.any(lam <= 0):
            raise ValueError("rows must have positive variance in every column, got a zero column")
        off = H - np.diag(lam)
        if np.abs(off).max(initial=0.0) > CONSISTENCY_RTOL * lam.max():
            raise ValueError("rows must be in the eigenbasis of H = rows^T rows / n (off-diagonal "
                             f"entries up to {np.abs(off).max():.3g} vs lambda_max {lam.max():.3g})")
        scale = np.sqrt(lam * np.mean(res ** 2)) + 1e-300
        corr = np.abs(rows.T @ res / n) / scale
        if corr.max() > CONSISTENCY_RTOL * 10:
            raise ValueError("residuals must be orthogonal to the rows (least-squares residuals); "
                             f"normalised correlation up to {corr.max():.3g}")
        if self.features is not None and (isinstance(self.features, bool) or
                                          int(self.features) != self.features or self.features < N):
            raise ValueError(f"features must be an integer >= the number of modes {N}, "
                             f"got {self.features!r}")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "residuals", res)
        object.__setattr__(self, "initial_error", e0)
        object.__setattr__(self, "standardized", bool(self.standardized))
        if self.features is not None:
            object.__setattr__(self, "features", int(self.features))

    @property
    def n(self) -> int:
        """Number of rows (data points)."""
        return self.rows.shape[0]

    @property
    def modes(self) -> int:
        return self.rows.shape[1]

    @cached_property
    def eigenvalues(self) -> np.ndarray:
        """``lambda_k = mean_i z_ik^2`` (the diagonal of ``rows^T rows / n``)."""
        lam = np.mean(self.rows ** 2, axis=0)
        lam.setflags(write=False)
        return lam

    @property
    def label_noise(self) -> float:
        """``sigma^2 = mean_i r_i^2``: the loss floor is ``sigma^2 / 2``."""
        return float(np.mean(self.residuals ** 2))

    @cached_property
    def fourth_moments(self) -> np.ndarray:
        """``Q_kl = mean_i z_ik^2 z_il^2`` (N x N): the diagonal of the single-sample fourth
        moment ``E[x x^T C x x^T]`` at diagonal ``C`` is ``Q c`` (what ``estimate_tau`` fits)."""
        Z2 = self.rows ** 2
        Q = Z2.T @ Z2 / self.n
        Q.setflags(write=False)
        return Q

    def check_problem(self, eigenvalues, initial, label_noise, multiplicity) -> None:
        """Raise ``ValueError`` (naming the field) unless a problem's spectrum, initial moments
        and label noise are those of these rows (relative tolerance ``CONSISTENCY_RTOL``)."""
        if eigenvalues.shape != (self.modes,):
            raise ValueError(f"data.rows has {self.modes} columns but the problem has "
                             f"{eigenvalues.size} eigenvalues")
        if np.any(multiplicity != 1.0):
            raise ValueError("a problem with data rows must have unit multiplicity")
        if not np.allclose(self.eigenvalues, eigenvalues, rtol=CONSISTENCY_RTOL, atol=0):
            raise ValueError("eigenvalues must be the mean squared columns of data.rows "
                             "(the spectrum of H = X^T X / n)")
        e2 = self.initial_error ** 2
        if not np.allclose(e2, initial, rtol=CONSISTENCY_RTOL,
                           atol=CONSISTENCY_RTOL * max(float(e2.max()), 1e-300)):
            raise ValueError("initial must be the squared data.initial_error")
        s2 = self.label_noise
        if not abs(s2 - label_noise) <= CONSISTENCY_RTOL * max(s2, 1e-300):
            raise ValueError(f"label_noise of a problem with data rows is the mean squared "
                             f"residual {s2:.12g}, got {label_noise!r}; to change it, drop the "
                             "rows first: problem.replace(data=None, label_noise=...)")


def standardize(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``X`` centred and scaled to unit variance (constant columns become 0, so the
    problem drops them), ``y`` centred and scaled to unit variance (a constant ``y`` is only
    centred). Centring both is what a fitted bias would do; scaling ``y`` multiplies every loss
    by one constant and changes no threshold."""
    X = checks.real_values("X", X)
    y = checks.real_values("y", y)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    const = sd <= 1e-12 * np.maximum(np.abs(mu), 1.0)
    Xs = np.where(const, 0.0, (X - mu) / np.where(const, 1.0, sd))
    ys = y - y.mean()
    sy = ys.std()
    if sy > 1e-12 * max(abs(float(y.mean())), 1.0):
        ys = ys / sy
    return Xs, ys


def read_matrix(path: str | os.PathLike, name: str, ndim: int) -> np.ndarray:
    """Read ``path`` (``.npy`` or ``.csv``, numbers separated by commas, optionally one header
    line) as a finite float array of ``ndim`` dimensions (``ndim = 1``: an n x 1 table is
    flattened). Errors name ``name`` and the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{name} file {path!r} does not exist")
    if path.endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{name} file {path!r} is not a readable .npy array: {exc}") from None
    elif path.endswith(".csv"):
        arr = None
        for skip in (0, 1):
            try:
                arr = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
                break
            except ValueError as exc:
                err = exc
        if arr is None:
            raise ValueError(f"{name} file {path!r} is not a numeric CSV table: {err}")
    else:
        raise ValueError(f"{name} file {path!r} must end in .npy or .csv")
    try:
        arr = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} file {path!r} must hold numbers, got dtype {arr.dtype}") from None
    if ndim == 1 and arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != ndim or arr.size == 0:
        raise ValueError(f"{name} file {path!r} must hold a non-empty {ndim}-D array, "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} file {path!r} contains NaN or inf")
    return arr
