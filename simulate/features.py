"""Feature laws of the simulator, in the eigenbasis of ``H = E[x x^T]``.

* ``"gaussian"``: ``x_k = sqrt(lambda_k) z_k``, ``z_k`` i.i.d. N(0, 1); label noise
  ``eps ~ N(0, sigma^2)``. SE with ``(tau1, tau2) = (1, -1)`` exactly.
* ``"rademacher"``: ``z_k = +-1``; kurtosis 1, so SE with ``(tau1, tau2) = (1, 1)`` exactly
  (``theory.noise``: ``tau2 = 2 - kurtosis``).
* a finite data set (``DataSet``): a row of ``X`` drawn uniformly with replacement, its target
  ``y``; the loss "over the data set" is the population loss of this empirical law. In the
  eigenbasis of ``H = X^T X / n`` with ``w*`` the least-squares solution the per-sample gradient is
  ``x (x . e - r)``, ``r = y - <w*, x>`` the residual, and ``L = 1/2 e^T H e + mean(r^2)/2``
  because ``X^T r = 0``.

``draw_sample`` is the one place a sample is drawn; the CPU kernel and ``replay`` (which records
the draws for the equivalence tests) both call it, so they see identical numbers. For Gaussian
features the CPU kernel by default skips the per-sample draws: ``projected_gradient`` draws the
mini-batch gradient itself, exactly in law, from ``n + 2b`` normals instead of ``b n``
(``sampler="projected"``; ``sampler="per-sample"`` keeps the literal draws).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from sgdyn.simulate import rng
from sgdyn.theory.display import Result
from sgdyn.theory.problem import Problem

GAUSSIAN, RADEMACHER, DATA = 0, 1, 2       # feature-law codes inside the kernels
KIND = {"gaussian": GAUSSIAN, "rademacher": RADEMACHER, "data": DATA}


@dataclass(frozen=True)
class DataSet(Result):
    """Rows ``X`` (n x d) with targets ``y`` (n,), sampled with replacement; optimisation starts
    at ``w0`` (default 0). Directions of ``H`` with ``lambda <= rtol * lambda_max`` carry no data
    and are dropped, as in ``theory.Problem.from_data``."""
    _dims = {"X": ("row", "feature"), "y": ("row",)}

    X: np.ndarray
    y: np.ndarray
    w0: np.ndarray | None = None
    rtol: float = 1e-10

    def __post_init__(self):
        X = np.array(self.X, dtype=np.float64)
        y = np.array(self.y, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must be a non-empty 2-D array (samples x features), got shape {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must be 1-D with one target per row of X ({X.shape[0]}), got shape {y.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X must not contain NaN or inf")
        if not np.all(np.isfinite(y)):
            raise ValueError("y must not contain NaN or inf")
        w0 = np.zeros(X.shape[1]) if self.w0 is None else np.array(self.w0, dtype=np.float64)
        if w0.shape != (X.shape[1],) or not np.all(np.isfinite(w0)):
            raise ValueError(f"w0 must be a finite vector of length {X.shape[1]}, got shape {w0.shape}")
        if not 0.0 < self.rtol < 1.0:
            raise ValueError(f"rtol must lie in (0, 1), got {self.rtol}")
        for name, arr in (("X", X), ("y", y), ("w0", w0)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @classmethod
    def gaussian(cls, problem: Problem, n: int, seed: int, features: str = "gaussian") -> "DataSet":
        """A synthetic data set of ``n`` rows drawn once from ``problem``'s population: features
        ``x = sqrt(lambda) z`` (``z`` standard Gaussian, or Rademacher), targets
        ``y = <w*, x> + eps`` with ``w* = 0``, ``eps ~ N(0, problem.label_noise)``, and the start
        ``w0 = sqrt(problem.initial)`` (so ``e_0 = w0`` in the population eigenbasis). Its own
        ``problem`` (the empirical spectrum of the rows) is what a finite-sample run trains on."""
        from sgdyn.theory import checks
        if not isinstance(problem, Problem):
            raise ValueError(f"problem must be a sgdyn.theory.Problem, got {type(problem).__name__}")
        problem.require_unit_multiplicity("a synthetic data set")
        n = checks.integer("n", n, 2)
        seed = checks.integer("seed", seed, 0)
        if features not in ("gaussian", "rademacher"):
            raise ValueError(f"features must be 'gaussian' or 'rademacher', got {features!r}")
        rng = np.random.default_rng(seed)
        N = problem.n_modes
        z = rng.standard_normal((n, N)) if features == "gaussian" else \
            rng.choice([-1.0, 1.0], size=(n, N))
        X = z * np.sqrt(problem.eigenvalues)[None, :]
        y = np.sqrt(problem.label_noise) * rng.standard_normal(n)
        return cls(X, y, np.sqrt(problem.initial))

    @cached_property
    def _basis(self):
        n = self.X.shape[0]
        lam, U = np.linalg.eigh(self.X.T @ self.X / n)
        keep = np.nonzero(lam > self.rtol * lam.max())[0]
        if keep.size == 0:
            raise ValueError("X has no direction with positive variance")
        keep = keep[np.argsort(lam[keep])[::-1]]          # descending, as Problem.from_data
        w_star, *_ = np.linalg.lstsq(self.X, self.y, rcond=None)
        rows = np.ascontiguousarray(self.X @ U[:, keep])
        residuals = self.y - self.X @ w_star
        return lam[keep], rows, residuals, U[:, keep].T @ (self.w0 - w_star)

    @property
    def rows(self) -> np.ndarray:
        """The rows of ``X`` in the kept eigenbasis of ``H`` (n x N)."""
        return self._basis[1]

    @property
    def residuals(self) -> np.ndarray:
        """``r_i = y_i - <w*, x_i>``: the per-row label noise."""
        return self._basis[2]

    @property
    def initial_error(self) -> np.ndarray:
        """``e_0 = U^T (w0 - w*)`` with its signs (the theory only needs ``e_0^2``)."""
        return self._basis[3]

    @property
    def problem(self) -> Problem:
        """The theory problem of this data set under i.i.d. sampling (``data_size = None``):
        eigenvalues of ``X^T X / n``, ``c_k = e_{0,k}^2``, ``sigma^2 = mean(r^2)``."""
        return Problem.from_arrays(self._basis[0], self.initial_error ** 2,
                                   float(np.mean(self.residuals ** 2)), None, "dataset")


def sampling_inputs(spec):
    """The arrays ``draw_sample`` needs for a ``SimulationSpec``:
    ``(kind, sqrt_lam, sigma, rows, residuals)`` (empty rows/residuals unless ``"data"``)."""
    sqrt_lam = np.sqrt(np.ascontiguousarray(spec.eigenvalues, dtype=np.float64))
    if spec.synthetic:          # rows drawn per run in the kernel; sigma scales their labels
        return DATA, sqrt_lam, float(np.sqrt(spec.label_noise)), np.empty((0, 0)), np.empty(0)
    if spec.features == "data":
        return DATA, sqrt_lam, 0.0, np.ascontiguousarray(spec.rows), np.ascontiguousarray(spec.residuals)
    return KIND[spec.features], sqrt_lam, float(np.sqrt(spec.label_noise)), np.empty((0, 0)), np.empty(0)


@njit(cache=True, inline="always")
def draw_sample(s, kind, sqrt_lam, sigma, rows, residuals, out):
    """Draw one sample's features into ``out`` (N,) and return its label noise ``eps`` (so the
    per-sample gradient is ``out * (out . e - eps)``). Draw order: features, then (Gaussian label
    noise only, when ``sigma > 0``) one normal pair of which the first is used."""
    if kind == DATA:
        i = rng.index(s, rows.shape[0])
        out[:] = rows[i]
        return residuals[i]
    if kind == GAUSSIAN:
        rng.fill_normal(s, out)
    else:
        rng.fill_rademacher(s, out)
    for k in range(out.size):
        out[k] *= sqrt_lam[k]
    if sigma > 0.0:
        return sigma * rng.normal_pair(s)[0]
    return 0.0


@njit(cache=True, inline="always")
def projected_gradient(s, sqrt_lam, sigma, point, batch, uhat, out):
    """The mini-batch gradient ``(1/b) sum_i x_i (x_i . p - eps_i)`` of Gaussian features drawn
    exactly in law from ``n + 2b`` normals instead of ``b n`` (``uhat``, ``out``: (n,) buffers).

    With ``x_i = sqrt(lambda) * z_i`` and ``u = sqrt(lambda) * p``, split each ``z_i`` along
    ``uhat = u / |u|``: ``z_i = s_i uhat + z_i'``, ``s_i ~ N(0, 1)`` independent of ``z_i'`` (normal
    in the complement of ``uhat``). Then ``x_i . p = |u| s_i`` and, with ``c_i = |u| s_i - eps_i``,
    ``sum_i c_i z_i' ~ sqrt(sum_i c_i^2) w'`` given the ``s_i, eps_i`` (``w'``: a standard normal
    projected on the complement), so
    ``g = sqrt(lambda) * (A uhat + C (w - (w . uhat) uhat))``, ``A = (1/b) sum_i c_i s_i``,
    ``C = (1/b) sqrt(sum_i c_i^2)``. Same law as drawing the ``b`` samples, so the SE theory is
    exact for it as before (tested against the moments and the per-sample kernel). Draw order:
    ``b`` normal pairs ``(s_i, eps_i / sigma)``, then ``n`` normals ``w`` (``fill_normal``)."""
    n = point.size
    norm = 0.0
    for k in range(n):
        uhat[k] = sqrt_lam[k] * point[k]
        norm += uhat[k] * uhat[k]
    norm = np.sqrt(norm)
    if norm > 0.0:
        for k in range(n):
            uhat[k] /= norm
    else:                       # p = 0: the split direction is arbitrary
        uhat[:] = 0.0
        uhat[0] = 1.0
    a = 0.0
    c2 = 0.0
    for i in range(batch):
        z, y = rng.normal_pair(s)
        c = norm * z - sigma * y
        a += c * z
        c2 += c * c
    a /= batch
    c = np.sqrt(c2) / batch
    rng.fill_normal(s, out)
    wu = 0.0
    for k in range(n):
        wu += out[k] * uhat[k]
    for k in range(n):
        out[k] = sqrt_lam[k] * (a * uhat[k] + c * (out[k] - wu * uhat[k]))


@njit(cache=True)
def replay_projected(seed, run, batch, n):
    """The draws of ``projected_gradient`` over the steps of run ``run`` (``batch[t]`` samples at
    step t): the pairs (steps, max batch, 2) and the normals ``w`` (steps, n); they do not depend
    on the point."""
    s = np.empty(4, np.uint64)
    rng.seed_stream(seed, run, s)
    steps = batch.size
    pairs = np.zeros((steps, batch.max() if steps else 0, 2))
    w = np.empty((steps, n))
    for t in range(steps):
        for i in range(batch[t]):
            pairs[t, i, 0], pairs[t, i, 1] = rng.normal_pair(s)
        rng.fill_normal(s, w[t])
    return pairs, w


@njit(cache=True)
def replay(seed, run, batch, kind, sqrt_lam, sigma, rows, residuals):
    """Every sample run ``run`` draws (i.i.d.; ``batch[t]`` samples at step t): features
    (steps, max batch, N) and label noise (steps, max batch), zero-padded. Reference
    implementations replay these to check the kernels exactly."""
    s = np.empty(4, np.uint64)
    rng.seed_stream(seed, run, s)
    steps = batch.size
    b = batch.max() if steps else 0
    feats = np.zeros((steps, b, sqrt_lam.size))
    eps = np.zeros((steps, b))
    for t in range(steps):
        for i in range(batch[t]):
            eps[t, i] = draw_sample(s, kind, sqrt_lam, sigma, rows, residuals, feats[t, i])
    return feats, eps

