"""Problem: the spectrum of a linear-regression problem and its initial error, in the eigenbasis.

Conventions (docs/theory.md, "Conventions"): model ``f(x) = <w, x>``, targets ``y = <w*, x> + eps``,
``E eps^2 = sigma^2`` (``label_noise``); Hessian ``H = E[x x^T]`` with eigenvalues ``lambda_k > 0``;
``initial[k] = c_k = E[e_{k,0}^2]``, ``e = w - w*`` in the eigenbasis. The population loss is
``L = 1/2 sum_k lambda_k E[e_k^2] + sigma^2 / 2``.

``data_size`` (optional) says the batches are drawn without replacement from a finite data set of
that many points (the core paper's experiments); ``None`` means i.i.d. draws from the population.

``noise`` and ``tau_residual`` (optional): the problem's own SE noise model, e.g. ``(tau1, tau2)``
fitted to a data set's rows by ``theory.noise.estimate_tau``, and that fit's relative residual;
every command that reads a problem file uses them as its default noise model. ``data`` (optional,
``theory.data_problem.DataRows``): the rows themselves, in the eigenbasis, with their residuals
and the signed initial error: what the exact finite-data route (``theory.exact_data``) needs
(``Problem.from_rows``; ``Problem.from_kernel`` takes them from a Gram matrix, e.g. a network's
NTK, ``theory.ntk``).

``multiplicity`` (optional, default all ones) lets entry ``k`` stand for ``w_k`` modes that share
the eigenvalue ``lambda_k`` and the initial moment ``c_k``: every sum over modes carries the weight
``w_k`` (``L = 1/2 sum_k w_k lambda_k E[e_k^2]``, ``Tr H = sum_k w_k lambda_k``, the noise
coupling ``D_t``, ``U(z)``, ``V(z)``). Non-integer weights are allowed (a quadrature of a
continuous spectrum, ``power_law_continuum``); integer weights give exactly the problem with the
entries repeated (``expanded``).
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from sgdyn.theory import budget, checks
from sgdyn.theory.data_problem import DataRows, standardize
from sgdyn.theory.noise import NoiseModel, fit_tau

FILE_KEYS = ("eigenvalues", "initial", "label_noise", "data_size", "multiplicity", "name",
             "tau1", "tau2", "tau_residual", "rows", "residuals", "initial_error", "standardized",
             "features")
_ROW_KEYS = ("rows", "residuals", "initial_error")
from sgdyn.theory.display import Result


_ROUNDING = 1e-12      # a residual this small relative to y is the fit's rounding, not label noise


def _kept_decreasing(eigenvalues, rtol: float) -> np.ndarray:
    """Indices of the eigenvalues above ``rtol * max``, largest first."""
    keep = np.nonzero(eigenvalues > rtol * eigenvalues.max())[0]
    return keep[np.argsort(eigenvalues[keep])[::-1]]


def normalizing_scale(eigenvalues) -> float:
    """The power of two nearest ``max(eigenvalues)`` when that lies outside ``[2^-60, 2^60]``,
    else 1.0: the scale ``Problem.normalized`` divides by."""
    k = int(np.round(np.log2(np.max(eigenvalues))))
    return float(np.ldexp(1.0, k)) if abs(k) > 60 else 1.0


@dataclass(frozen=True)
class Problem(Result):
    _properties = ("n_modes", "trace")

    eigenvalues: np.ndarray
    initial: np.ndarray
    label_noise: float = 0.0
    data_size: int | None = None
    name: str = field(default="problem", compare=False)
    multiplicity: np.ndarray | None = None
    noise: NoiseModel | None = field(default=None, compare=False)
    tau_residual: float | None = field(default=None, compare=False)
    data: DataRows | None = field(default=None, compare=False)

    def __post_init__(self):
        lam = checks.real_array("eigenvalues", self.eigenvalues, positive_entries=True)
        init = checks.real_array("initial", self.initial)
        if init.shape != lam.shape:
            raise ValueError(
                f"initial must have the same length as eigenvalues ({lam.size}), got {init.size}")
        object.__setattr__(self, "eigenvalues", lam)
        object.__setattr__(self, "initial", init)
        if self.multiplicity is None:
            w = np.ones(lam.size)
            w.setflags(write=False)
        else:
            w = checks.real_array("multiplicity", self.multiplicity, positive_entries=True)
            if w.shape != lam.shape:
                raise ValueError(f"multiplicity must have the same length as eigenvalues "
                                 f"({lam.size}), got {w.size}")
        object.__setattr__(self, "multiplicity", w)
        object.__setattr__(self, "label_noise", checks.nonnegative("label_noise", self.label_noise))
        if self.data_size is not None:
            object.__setattr__(self, "data_size", checks.integer("data_size", self.data_size, 1))
        if self.noise is not None and not isinstance(self.noise, NoiseModel):
            raise ValueError(f"noise must be a theory.NoiseModel or None, got {type(self.noise).__name__}")
        if self.tau_residual is not None:
            object.__setattr__(self, "tau_residual",
                               checks.nonnegative("tau_residual", self.tau_residual))
        if self.data is not None:
            if not isinstance(self.data, DataRows):
                raise ValueError("data must be a theory.data_problem.DataRows or None, got "
                                 f"{type(self.data).__name__}")
            self.data.check_problem(lam, init, self.label_noise, w)

    # -- derived quantities -------------------------------------------------------------------
    @property
    def n_modes(self) -> int:
        """Number of entries (distinct modes); ``total_modes`` counts multiplicities."""
        return self.eigenvalues.size

    @property
    def total_modes(self) -> float:
        return float(self.multiplicity.sum())

    @property
    def has_multiplicity(self) -> bool:
        """True if some entry stands for a number of modes other than one."""
        return bool(np.any(self.multiplicity != 1.0))

    @property
    def trace(self) -> float:
        """``Tr H = sum_k w_k lambda_k``: sets the small-alpha noise limit
        ``alpha_eff < 2 b / (tau1 Tr H)``."""
        return float(self.multiplicity @ self.eigenvalues)

    @property
    def initial_loss(self) -> float:
        """``L_0 = 1/2 sum_k w_k lambda_k c_k + sigma^2/2``."""
        return 0.5 * float(self.multiplicity @ (self.eigenvalues * self.initial)) + 0.5 * self.label_noise

    def replace(self, **changes) -> "Problem":
        kw = dict(eigenvalues=self.eigenvalues, initial=self.initial, label_noise=self.label_noise,
                  data_size=self.data_size, name=self.name, multiplicity=self.multiplicity,
                  noise=self.noise, tau_residual=self.tau_residual, data=self.data)
        kw.update(changes)
        return Problem(**kw)

    def normalized(self) -> tuple["Problem", float]:
        """``(problem / s, s)``: eigenvalues ``lambda_k / s`` and initial moments ``c_k s`` for a
        power of two ``s`` near ``lambda_max``, when ``lambda_max`` lies outside ``[2^-60,
        2^60]`` (else ``(self, 1.0)``). The dynamics are invariant under ``lambda -> lambda / s,
        c -> c s, alpha -> alpha s`` (features scaled by ``s^-1/2``, weights by ``s^1/2``; the
        loss and the label noise unchanged), and a power of two keeps every product exact: the
        engine computes at the normalised scale, where ``alpha^2 lambda^2`` neither overflows nor
        underflows, and multiplies learning rates back. Data problems (rows kept) are returned
        as they are."""
        s = normalizing_scale(self.eigenvalues)
        if s == 1.0 or self.data is not None:
            return self, 1.0
        initial = self.initial * s
        if not np.all(np.isfinite(initial)):
            return self, 1.0
        return self.replace(eigenvalues=self.eigenvalues / s, initial=initial), s

    def expanded(self) -> "Problem":
        """The same problem with every entry repeated ``w_k`` times (integer multiplicities)."""
        w = self.multiplicity
        if not np.all(w == np.round(w)):
            raise ValueError("multiplicity must be integral to expand the problem, got "
                             f"non-integer entries (e.g. {w[w != np.round(w)][0]})")
        reps = w.astype(np.int64)
        return self.replace(eigenvalues=np.repeat(self.eigenvalues, reps),
                            initial=np.repeat(self.initial, reps), multiplicity=None)

    def require_unit_multiplicity(self, what: str) -> None:
        """Raise for consumers that draw or store every mode explicitly (Monte Carlo)."""
        if self.has_multiplicity:
            raise ValueError(f"{what} needs one entry per mode: problem has multiplicity "
                             f"(total {self.total_modes:g} modes in {self.n_modes} entries); "
                             "use problem.expanded() for integer multiplicities")

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, eigenvalues, initial, label_noise: float = 0.0,
                    data_size: int | None = None, name: str = "arrays") -> "Problem":
        return cls(eigenvalues, initial, label_noise, data_size, name)

    @classmethod
    def power_law(cls, nu: float, kappa: float, n: int, scale: float = 1.0,
                  label_noise: float = 0.0, data_size: int | None = None) -> "Problem":
        """``lambda_k = scale * k^-nu`` and ``lambda_k c_k = scale * k^-(kappa+1)``, k = 1..n.

        These are the exponents of the core paper (Velikanov et al. 2023, section 5): eigenvalues
        decay with exponent ``nu > 1`` and the target's spectral measure ``lambda_k c_k`` with
        ``kappa + 1`` (``kappa > 0``), so the noiseless (GD) loss decays like ``t^-zeta``,
        ``zeta = kappa / nu``, and the noise kernel like ``t^-(2 - 1/nu)``.
        """
        nu = checks.positive("nu", nu)
        kappa = checks.positive("kappa", kappa)
        n = checks.integer("n", n, 1)
        scale = checks.positive("scale", scale)
        budget.memory("n", 48.0 * n, f"a power-law spectrum of {n} modes (groups=... describes "
                      "large n in few entries)")
        k = np.arange(1, n + 1, dtype=np.float64)
        lam = scale * k ** -nu
        init = k ** (nu - kappa - 1.0)
        return cls(lam, init, label_noise, data_size, f"powerlaw:nu={nu:g},kappa={kappa:g},n={n}")

    @classmethod
    def power_law_continuum(cls, nu: float, kappa: float, n: int, groups: int = 1000,
                            exact: int = 100, scale: float = 1.0, label_noise: float = 0.0,
                            data_size: int | None = None) -> "Problem":
        """``power_law(nu, kappa, n, scale)`` with few entries: modes ``k <= exact`` one by one,
        the rest in about ``groups`` blocks of consecutive integers ``[a_j, b_j]`` spaced
        geometrically up to ``n``, each one entry at the midpoint ``kbar_j = (a_j + b_j) / 2``
        with multiplicity ``b_j - a_j + 1``.

        Every mode sum ``sum_k f(k)`` becomes the midpoint rule ``sum_j w_j f(kbar_j)``, accurate
        to ``O(((b_j - a_j) / kbar_j)^2)`` relative where f varies on the scale of k (block ratio
        ``(n / exact)^(1/groups)``; 1.6 % for the defaults at n = 1e8): so a spectrum of 1e8 modes,
        whose power-law regime reaches ``t ~ 1 / (alpha_eff lambda_n)``, costs 1000 entries.
        """
        nu = checks.positive("nu", nu)
        kappa = checks.positive("kappa", kappa)
        n = checks.integer("n", n, 1)
        groups = checks.integer("groups", groups, 1)
        exact = min(checks.integer("exact", exact, 0), n)
        scale = checks.positive("scale", scale)
        budget.memory("groups", 24.0 * groups + 64.0 * (min(groups, n) + exact),
                      f"a grouped spectrum of {groups} groups")
        edges = np.unique(np.round(np.geomspace(exact + 1, n + 1, groups + 1)).astype(np.int64))
        lo, hi = edges[:-1], edges[1:] - 1          # blocks [lo, hi] of consecutive integers
        k = np.concatenate([np.arange(1, exact + 1, dtype=np.float64), 0.5 * (lo + hi)])
        w = np.concatenate([np.ones(exact), (hi - lo + 1).astype(np.float64)])
        lam = scale * k ** -nu
        init = k ** (nu - kappa - 1.0)
        return cls(lam, init, label_noise, data_size,
                   f"powerlaw:nu={nu:g},kappa={kappa:g},n={n},groups={groups}", w)

    @classmethod
    def from_data(cls, X, y, w0=None, rtol: float = 1e-10, name: str = "data") -> "Problem":
        """The least-squares problem on the rows of ``X`` (n x d) with targets ``y``.

        ``H = X^T X / n`` (uncentered: the model has no bias), ``w*`` the least-squares solution,
        ``c_k = <w0 - w*, u_k>^2`` (``w0`` defaults to 0), ``sigma^2`` the mean squared residual of
        ``w*``, ``data_size = n`` (batches without replacement). Directions with
        ``lambda_k <= rtol * lambda_max`` are dropped: no row has a component there, so their
        error never moves and never enters the loss. Only the spectrum is kept: for the exact
        finite-data route and the fitted SE tau, use ``from_rows``.
        """
        X = checks.real_values("X", X)
        y = checks.real_values("y", y)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must be a non-empty 2-D array (samples x features), got shape {X.shape}")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must be 1-D with one target per row of X ({X.shape[0]}), got shape {y.shape}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("X and y must not contain NaN or inf")
        n, d = X.shape
        w0 = np.zeros(d) if w0 is None else np.asarray(w0, dtype=np.float64)
        if w0.shape != (d,) or not np.all(np.isfinite(w0)):
            raise ValueError(f"w0 must be a finite vector of length {d}, got shape {w0.shape}")
        H = X.T @ X / n
        lam, U = np.linalg.eigh(H)
        keep = lam > rtol * lam.max()
        if not np.any(keep):
            raise ValueError("X has no direction with positive variance")
        w_star, *_ = np.linalg.lstsq(X, y, rcond=None)
        sigma2 = float(np.mean((X @ w_star - y) ** 2))
        e0 = U[:, keep].T @ (w0 - w_star)
        order = np.argsort(lam[keep])[::-1]
        return cls(lam[keep][order], (e0 ** 2)[order], sigma2, n, name)

    @classmethod
    def from_rows(cls, X, y, *, standardize_data: bool = False, w0=None, rtol: float = 1e-10,
                  name: str = "data") -> "Problem":
        """A data problem: the least-squares problem on the rows of ``X`` (n x d) with targets
        ``y``, keeping the rows for the exact finite-data route (``theory.exact_data``) and the
        SE noise model fitted to them (``theory.noise.estimate_tau``) with its residual.

        ``standardize_data``: centre and scale the columns of ``X`` and ``y`` first
        (``theory.data_problem.standardize``). With ``U`` the eigenvectors of ``H = X^T X / n``
        whose eigenvalues exceed ``rtol * lambda_max`` (decreasing), the rows ``z_i = U^T x_i``,
        the least-squares solution in that basis ``w*_k = mean_i(z_ik y_i) / lambda_k`` (the
        minimum-norm ``w*``: dropped directions carry no data), residuals ``r_i = y_i - z_i . w*``,
        ``e_0 = U^T w0 - w*`` (``w0`` defaults to 0), ``c_k = e_{0,k}^2``, ``sigma^2 = mean r^2``.
        Batches default to i.i.d. draws (``data_size = None``); set ``data_size = n`` (or pass
        ``sampling="without-replacement"`` to the exact route) for batches without replacement.
        Unlike ``from_data`` (spectrum only, ``data_size = n``), the problem keeps ``data``,
        ``noise`` and ``tau_residual``.
        """
        X = checks.real_values("X", X)
        y = checks.real_values("y", y)
        if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
            raise ValueError(f"X must be a 2-D array with at least 2 rows (samples x features), "
                             f"got shape {X.shape}")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must be 1-D with one target per row of X ({X.shape[0]}), "
                             f"got shape {y.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X must not contain NaN or inf")
        if not np.all(np.isfinite(y)):
            raise ValueError("y must not contain NaN or inf")
        n, d = X.shape
        if w0 is None:
            w0 = np.zeros(d)
        w0 = checks.real_values("w0", w0)
        if w0.shape != (d,) or not np.all(np.isfinite(w0)):
            raise ValueError(f"w0 must be a finite vector of length {d}, got shape {w0.shape}")
        if not 0.0 < rtol < 1.0:
            raise ValueError(f"rtol must lie in (0, 1), got {rtol}")
        if standardize_data:
            X, y = standardize(X, y)
        lam, U = np.linalg.eigh(X.T @ X / n)
        if not lam.max() > 0:
            raise ValueError("X has no direction with positive variance")
        U = U[:, _kept_decreasing(lam, rtol)]
        return cls._from_eigenrows(X @ U, y, U.T @ w0, "X", standardize_data, d, name)

    @classmethod
    def from_kernel(cls, K, y, *, f0=None, rtol: float = 1e-10, psd_tol: float = 1e-8,
                    name: str = "kernel") -> "Problem":
        """The function-space problem of kernel regression trained by SGD on the Gram matrix
        ``K`` (n x n, ``K_ij = k(x_i, x_j)``) with targets ``y``: what a linearised network trains
        on, with ``K`` its NTK on the data (``theory.ntk``) and ``f0`` its outputs at
        initialisation (default 0).

        Any factorisation ``K = Phi Phi^T`` gives the same predictions along training (gradients
        ``Phi^T r`` keep ``w`` in the row space of ``Phi``, and ``f = Phi w`` moves by ``K r``),
        so the rows are taken from the eigendecomposition ``K = V diag(mu) V^T``:
        ``z_i = (sqrt(mu_k) V_ik)_k`` over the ``mu_k > rtol * mu_max`` (decreasing), and the
        problem is ``from_rows`` of those rows with targets ``y - f0`` and ``w0 = 0``: eigenvalues
        ``lambda_k = mu_k / n``, target projections ``w*_k = <v_k, y - f0> / sqrt(mu_k)``
        (``lambda_k c_k = <v_k, y - f0>^2 / n``), label noise the mean square of ``y - f0``
        outside the kept eigenvectors, the rows kept for the exact finite-data route and the
        row-sampling Monte Carlo, and the SE tau fitted to them (as the core paper's NTK
        experiments, Velikanov et al. 2023, section 6). ``K`` must be symmetric and positive
        semi-definite within ``psd_tol`` relative to its largest entry / eigenvalue (rounding
        of a computed kernel); the eigendecomposition costs ``O(n^3)``.
        """
        K = checks.real_values("K", K)
        if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 2:
            raise ValueError(f"K must be a square 2-D array with at least 2 rows, got shape {K.shape}")
        n = K.shape[0]
        y = checks.real_values("y", y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"y must be 1-D with one target per row of K ({n}), got shape {y.shape}")
        f0 = np.zeros(n) if f0 is None else checks.real_values("f0", f0)
        if f0.shape != (n,):
            raise ValueError(f"f0 must be 1-D with one output per row of K ({n}), got shape {f0.shape}")
        for arg, arr in (("K", K), ("y", y), ("f0", f0)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{arg} must not contain NaN or inf")
        if not 0.0 < rtol < 1.0:
            raise ValueError(f"rtol must lie in (0, 1), got {rtol}")
        if not 0.0 <= psd_tol < 1.0:
            raise ValueError(f"psd_tol must lie in [0, 1), got {psd_tol}")
        budget.memory("K", 8.0 * 6 * n * n, f"the eigendecomposition of a {n} x {n} kernel")
        asym = float(np.abs(K - K.T).max())
        if asym > psd_tol * float(np.abs(K).max()):
            raise ValueError(f"K must be symmetric: max |K - K^T| = {asym:.3g} exceeds psd_tol "
                             f"({psd_tol:g}) x max |K|")
        mu, V = np.linalg.eigh(0.5 * (K + K.T))
        if not mu.max() > 0:
            raise ValueError("K must have a positive eigenvalue, got none")
        if mu.min() < -psd_tol * mu.max():
            raise ValueError(f"K must be positive semi-definite: eigenvalue {mu.min():.3g} is below "
                             f"-psd_tol ({psd_tol:g}) x the largest {mu.max():.3g}")
        keep = _kept_decreasing(mu, rtol)
        Z = V[:, keep] * np.sqrt(mu[keep])
        return cls._from_eigenrows(Z, y - f0, np.zeros(keep.size), "K", False, n, name)

    @classmethod
    def _from_eigenrows(cls, Z, y, w0, source: str, standardized: bool, features: int,
                        name: str) -> "Problem":
        """The data problem of rows ``Z`` already in the eigenbasis of ``Z^T Z / n`` (columns by
        decreasing variance), targets ``y`` and initial weights ``w0`` in that basis."""
        if Z.shape[1] < 2:
            raise ValueError(f"{source} must have at least 2 directions with positive variance "
                             f"(to fit the SE tau1 and tau2), got {Z.shape[1]}")
        n = Z.shape[0]
        lam = np.mean(Z ** 2, axis=0)
        w_star = np.zeros(lam.size)
        res = y
        for _ in range(2):   # one refinement: rounding left in res would fail DataRows' check
            step = (Z.T @ res / n) / lam
            w_star = w_star + step
            res = res - Z @ step
        if np.linalg.norm(res) <= _ROUNDING * np.linalg.norm(y):
            res = np.zeros(n)    # y lies in the span of the rows (e.g. a full-rank kernel)
        e0 = w0 - w_star
        fit = fit_tau(Z)
        data = DataRows(Z, res, e0, standardized=standardized, features=features)
        return cls(lam, e0 ** 2, float(np.mean(res ** 2)), None, name, None, fit.model,
                   fit.residual, data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Problem":
        """Read ``.npz`` or ``.json`` with keys ``eigenvalues``, ``initial`` and optional
        ``label_noise``, ``data_size``, ``multiplicity``, ``name``, ``tau1`` and ``tau2`` (the
        problem's own SE noise model, together), ``tau_residual``, and the rows of a data
        problem (``rows``, ``residuals``, ``initial_error`` together; ``standardized``,
        ``features``). Every error names the file (and the key at fault)."""
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"problem file must be a path, got {type(path).__name__}")
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ValueError(f"problem file {path!r} does not exist")
        if os.path.isdir(path):
            raise ValueError(f"problem file {path!r} is a directory")
        if not (path.endswith(".json") or path.endswith(".npz")):
            raise ValueError(f"problem file {path!r} must end in .json or .npz")
        try:
            with open(path, "rb") as fh:   # our handle: np.load leaks its own on a corrupt zip
                if path.endswith(".json"):
                    data = json.loads(fh.read().decode("utf-8"))
                else:
                    with np.load(fh, allow_pickle=False) as npz:
                        data = {k: npz[k] for k in npz.files}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"problem file {path!r} is not valid JSON: {exc}") from None
        except OSError as exc:
            raise ValueError(f"problem file {path!r} cannot be read: {exc.strerror or exc}") from None
        except (ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"problem file {path!r} is not a readable .npz: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"problem file {path!r} must hold a JSON object")
        missing = [k for k in ("eigenvalues", "initial") if k not in data]
        if missing:
            raise ValueError(f"problem file {path!r} is missing key(s): {', '.join(missing)}")
        unknown = set(data) - set(FILE_KEYS)
        if unknown:
            raise ValueError(f"problem file {path!r} has unknown key(s): {', '.join(sorted(unknown))}")

        def scalar(key, kind):
            v = data.get(key)
            if isinstance(v, np.ndarray):
                if v.ndim != 0:
                    raise ValueError(f"problem file {path!r}: key {key!r} must be a scalar, "
                                     f"got shape {v.shape}")
                v = v.item()
            if v is not None and kind is str and not isinstance(v, str):
                raise ValueError(f"problem file {path!r}: key {key!r} must be a string, got {v!r}")
            if v is not None and kind is float and (isinstance(v, (bool, str)) or
                                                     not isinstance(v, (int, float))):
                raise ValueError(f"problem file {path!r}: key {key!r} must be a number, got {v!r}")
            return v

        def keyed(key, fn):
            try:
                return fn()
            except ValueError as exc:
                raise ValueError(f"problem file {path!r}: key {key!r}: {exc}") from None

        label_noise = scalar("label_noise", float)
        data_size = scalar("data_size", float)
        name = scalar("name", str)
        tau1, tau2 = scalar("tau1", float), scalar("tau2", float)
        if (tau1 is None) != (tau2 is None):
            raise ValueError(f"problem file {path!r}: keys 'tau1' and 'tau2' go together, got "
                             f"only {'tau1' if tau2 is None else 'tau2'}")
        noise = None if tau1 is None else keyed("tau1", lambda: NoiseModel(tau1, tau2))
        tau_residual = scalar("tau_residual", float)
        present = [k for k in _ROW_KEYS if k in data]
        rows = None
        if present:
            if len(present) < len(_ROW_KEYS):
                absent = [k for k in _ROW_KEYS if k not in data]
                raise ValueError(f"problem file {path!r}: keys {', '.join(_ROW_KEYS)} go together, "
                                 f"missing {', '.join(absent)}")
            standardized = scalar("standardized", float)
            features = scalar("features", float)
            rows = keyed("rows", lambda: DataRows(data["rows"], data["residuals"],
                                                  data["initial_error"], bool(standardized or 0),
                                                  features))
        try:
            return cls(data["eigenvalues"], data["initial"],
                       0.0 if label_noise is None else label_noise, data_size,
                       os.path.basename(path) if name is None else name, data.get("multiplicity"),
                       noise, tau_residual, rows)
        except ValueError as exc:
            msg = str(exc)
            key = next((k for k in FILE_KEYS if msg.startswith(k)), None)
            where = f"key {key!r}: " if key else ""
            raise ValueError(f"problem file {path!r}: {where}{msg}") from None

    @classmethod
    def parse(cls, spec: str) -> "Problem":
        """A file path, or ``powerlaw:nu=..,kappa=..,n=..[,scale=..][,groups=..]`` (with
        ``groups``: ``power_law_continuum``, e.g. n = 1e8 modes in about that many entries)."""
        if not isinstance(spec, (str, os.PathLike)):
            raise ValueError(f"problem must be a file path or a 'powerlaw:...' spec, got "
                             f"{type(spec).__name__}")
        spec = os.fspath(spec)
        if spec.startswith("powerlaw:"):
            params = {}
            for item in filter(None, spec[len("powerlaw:"):].split(",")):
                key, sep, val = item.partition("=")
                if not sep:
                    raise ValueError(f"problem spec item {item!r} must read key=value")
                try:
                    params[key.strip()] = float(val)
                except ValueError:
                    raise ValueError(f"problem spec value {val!r} for {key!r} is not a number") from None
            allowed = {"nu", "kappa", "n", "scale", "groups"}
            if set(params) - allowed or not {"nu", "kappa", "n"} <= set(params):
                raise ValueError("powerlaw spec needs nu, kappa, n (optional scale, groups), "
                                 f"got {sorted(params)}")
            if "groups" in params:
                return cls.power_law_continuum(params["nu"], params["kappa"], params["n"],
                                               params["groups"], scale=params.get("scale", 1.0))
            return cls.power_law(params["nu"], params["kappa"], params["n"], params.get("scale", 1.0))
        return cls.from_file(spec)

    def save(self, path: str | os.PathLike) -> None:
        """Write the problem as ``.json`` or ``.npz`` (the format ``from_file`` reads), with its
        name, noise model, fit residual and data rows when it has them."""
        path = os.fspath(path)
        if not (path.endswith(".json") or path.endswith(".npz")):
            raise ValueError(f"problem file {path!r} must end in .json or .npz")
        data = {"eigenvalues": self.eigenvalues, "initial": self.initial,
                "label_noise": self.label_noise, "name": self.name}
        if self.data_size is not None:
            data["data_size"] = self.data_size
        if self.has_multiplicity:
            data["multiplicity"] = self.multiplicity
        if self.noise is not None:
            data["tau1"], data["tau2"] = self.noise.tau1, self.noise.tau2
        if self.tau_residual is not None:
            data["tau_residual"] = self.tau_residual
        if self.data is not None:
            data.update(rows=self.data.rows, residuals=self.data.residuals,
                        initial_error=self.data.initial_error,
                        standardized=int(self.data.standardized))
            if self.data.features is not None:
                data["features"] = self.data.features
        if path.endswith(".json"):
            with open(path, "w") as fh:
                json.dump({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in data.items()}, fh)
        else:
            np.savez(path, **data)
