"""Full-batch GD, heavy ball and SAM on small models, many initialisations at once, with the
sharpness (top Hessian eigenvalue) tracked along the way: the simulation side of the edges of
stability (docs/edges.md; Cohen et al. ICLR 2021; Long & Bartlett 2024).

Models (parameters flattened into one vector per run; losses are the excess squared loss):

* ``"quadratic"``: ``L(w) = 1/2 sum_k lambda_k w_k^2`` (H diagonal).
* ``"scalar-net"``: ``f = (prod_i w_i) x`` of depth L on scalar data with ``a = mean x^2`` and
  ``p = mean(xy)/a``: ``L(w) = a/2 (prod_i w_i - p)^2`` (the data enter only through ``a, p``).
* ``"matrix-net"``: ``f = W_L .. W_1 x`` with square ``h x h`` layers on whitened data
  (``mean x x^T = I``, target map ``Phi = mean y x^T``): ``L(W) = 1/2 ||W_L..W_1 - Phi||_F^2``;
  parameters are the layers in order, each row-major.
* ``"tanh-net"``: ``f(x) = sum_j v_j tanh(W_j . x)`` on data ``(X, y)``:
  ``L = 1/(2n) sum_i (f(x_i) - y_i)^2``; parameters ``(W row-major (m x d), v (m))``.

Each model computes its gradient and, in forward mode (the directional derivative of the
gradient code, differentiated by hand), the exact Hessian-vector product ``H u``: no finite
differences. The sharpness is the top Ritz value of ``lanczos_steps`` Lanczos steps with full
reorthogonalisation, warm-started from the previous top Ritz vector (Lanczos, not power iteration,
because the Hessians of the networks have negative eigenvalues that can dominate in magnitude).

Optimisers (``eta > 0``): ``"gd"``: ``w <- w - eta g(w)``; ``"heavy-ball"``: ``v <- beta v - eta
g(w); w <- w + v`` (``v_0 = 0``); ``"sam"``: ``w <- w - eta g(w + rho g(w)/||g(w)||)`` (no ascent
when ``g = 0``). A run stops as *converged* when ``||g|| < tol`` and as *diverged* when the loss or
``||g||`` passes ``blowup`` (or stops being finite) -- never an overflow.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sgdyn.theory import budget, checks
from sgdyn.theory.display import Result

MODELS = ("quadratic", "scalar-net", "matrix-net", "tanh-net")
OPTIMIZERS = ("gd", "heavy-ball", "sam")
RUNNING, CONVERGED, DIVERGED = 0, 1, 2


# --------------------------------------------------------------------------- models


@numba.njit(cache=True)
def _quadratic(w, u, d1, d2, dims, g, hu):
    want_hu = hu.size > 0
    loss = 0.0
    for k in range(w.size):
        g[k] = d1[k] * w[k]
        loss += 0.5 * d1[k] * w[k] * w[k]
        if want_hu:
            hu[k] = d1[k] * u[k]
    return loss


@numba.njit(cache=True)
def _scalar_net(w, u, d1, d2, dims, g, hu):
    # Q_i = prod_{k != i} w_k and its derivative along u from dual-number prefix/suffix products
    want_hu = hu.size > 0
    a, p = d1[0], d1[1]
    L = w.size
    pre, dpre = np.ones(L + 1), np.zeros(L + 1)
    suf, dsuf = np.ones(L + 1), np.zeros(L + 1)
    for i in range(L):
        pre[i + 1] = pre[i] * w[i]
        dpre[i + 1] = dpre[i] * w[i] + pre[i] * u[i]
    for i in range(L - 1, -1, -1):
        suf[i] = suf[i + 1] * w[i]
        dsuf[i] = dsuf[i + 1] * w[i] + suf[i + 1] * u[i]
    res = pre[L] - p
    for i in range(L):
        Q = pre[i] * suf[i + 1]
        g[i] = a * res * Q
        if want_hu:
            hu[i] = a * (dpre[L] * Q + res * (dpre[i] * suf[i + 1] + pre[i] * dsuf[i + 1]))
    return 0.5 * a * res * res


@numba.njit(cache=True)
def _add_matmul(out, X, Y):
    # out += X @ Y, X and Y C-contiguous: callers pass contiguous transposes so that numba's
    # BLAS-backed @ is compiled for one layout only (each layout pair is a costly specialisation)
    out += X @ Y


@numba.njit(cache=True)
def _matrix_net(w, u, d1, d2, dims, g, hu):
    # P = W_L..W_1; B_i = W_{i-1}..W_1, A_i = W_L..W_{i+1}; grad_i = A_i^T R B_i^T, R = P - Phi,
    # and its forward-mode derivative along U (dA, dB, dR by the product rule):
    # H_i u = (dA_i^T R + A_i^T dB_L) B_i^T + (A_i^T R) dB_i^T  (dB_L = dP = dR)
    want_hu = hu.size > 0
    L, h = dims[0], dims[1]
    hh = h * h
    W = w.reshape((L, h, h))
    U = u.reshape((L, h, h))
    B = np.zeros((L + 1, h, h))
    dB = np.zeros((L + 1, h, h))
    A = np.zeros((L, h, h))
    dA = np.zeros((L, h, h))
    for k in range(h):
        B[0, k, k] = 1.0
        A[L - 1, k, k] = 1.0
    for i in range(L):
        _add_matmul(B[i + 1], W[i], B[i])
        if want_hu:
            _add_matmul(dB[i + 1], U[i], B[i])
            _add_matmul(dB[i + 1], W[i], dB[i])
    for i in range(L - 1, 0, -1):
        _add_matmul(A[i - 1], A[i], W[i])
        if want_hu:
            _add_matmul(dA[i - 1], dA[i], W[i])
            _add_matmul(dA[i - 1], A[i], U[i])
    R = B[L] - d1.reshape((h, h))
    ATR = np.empty((h, h))
    T = np.empty((h, h))
    At = np.empty((h, h))      # contiguous transposes (see _add_matmul)
    dAt = np.empty((h, h))
    Bt = np.empty((h, h))
    dBt = np.empty((h, h))
    for i in range(L):
        At[:] = A[i].T
        Bt[:] = B[i].T
        ATR[:] = 0.0
        _add_matmul(ATR, At, R)
        Gi = g[i * hh:(i + 1) * hh].reshape((h, h))
        Gi[:] = 0.0
        _add_matmul(Gi, ATR, Bt)
        if want_hu:
            dAt[:] = dA[i].T
            dBt[:] = dB[i].T
            T[:] = 0.0
            _add_matmul(T, dAt, R)
            _add_matmul(T, At, dB[L])
            Hi = hu[i * hh:(i + 1) * hh].reshape((h, h))
            Hi[:] = 0.0
            _add_matmul(Hi, T, Bt)
            _add_matmul(Hi, ATR, dBt)
    return 0.5 * np.sum(R * R)


@numba.njit(cache=True)
def _tanh_net(w, u, d1, d2, dims, g, hu):
    want_hu = hu.size > 0
    n, d, m = dims[0], dims[1], dims[2]
    md = m * d
    g[:] = 0.0
    if want_hu:
        hu[:] = 0.0
    h = np.empty(m)
    s = np.empty(m)
    zdot = np.empty(m)
    loss = 0.0
    for i in range(n):
        x = d1[i * d:(i + 1) * d]
        f = 0.0
        fdot = 0.0
        for j in range(m):
            z = 0.0
            zd = 0.0
            for k in range(d):
                z += w[j * d + k] * x[k]
                zd += u[j * d + k] * x[k]
            h[j] = np.tanh(z)
            s[j] = 1.0 - h[j] * h[j]
            zdot[j] = zd
            f += w[md + j] * h[j]
            fdot += u[md + j] * h[j] + w[md + j] * s[j] * zd
        r = f - d2[i]
        loss += 0.5 * r * r / n
        for j in range(m):
            v = w[md + j]
            g[md + j] += r * h[j] / n
            for k in range(d):
                g[j * d + k] += r * v * s[j] * x[k] / n
            if want_hu:
                hdot = s[j] * zdot[j]
                sdot = -2.0 * h[j] * hdot
                hu[md + j] += (fdot * h[j] + r * hdot) / n
                c = (fdot * v * s[j] + r * u[md + j] * s[j] + r * v * sdot) / n
                for k in range(d):
                    hu[j * d + k] += c * x[k]
    return loss


@numba.njit(cache=True)
def _model(code, w, u, d1, d2, dims, g, hu):
    # loss, gradient into g and, if hu is not empty, H u into hu. The HVP request is the size of
    # hu rather than a flag so that every caller (kernels, Python) shares one compiled signature:
    # a constant flag is typed as a literal and would compile each model once per value.
    if code == 0:
        return _quadratic(w, u, d1, d2, dims, g, hu)
    if code == 1:
        return _scalar_net(w, u, d1, d2, dims, g, hu)
    if code == 2:
        return _matrix_net(w, u, d1, d2, dims, g, hu)
    return _tanh_net(w, u, d1, d2, dims, g, hu)


# --------------------------------------------------------------------------- sharpness


@numba.njit(cache=True)
def _lanczos_top(code, w, d1, d2, dims, q0, k):
    """Top Ritz value of k Lanczos steps on the exact Hessian at w, from q0 (overwritten with the
    top Ritz vector, the warm start of the next call)."""
    n = w.size
    k = min(k, n)
    Q = np.zeros((k, n))
    alph = np.zeros(k)
    bet = np.zeros(k)
    g = np.empty(n)
    hu = np.empty(n)
    nrm = np.sqrt(np.sum(q0 * q0))
    Q[0] = q0 / nrm
    m = k
    for j in range(k):
        _model(code, w, Q[j], d1, d2, dims, g, hu)
        alph[j] = np.dot(Q[j], hu)
        r = hu.copy()
        for _ in range(2):     # full reorthogonalisation, twice is enough (Kahan-Parlett)
            for i in range(j + 1):
                r -= np.dot(Q[i], r) * Q[i]
        b = np.sqrt(np.sum(r * r))
        if j + 1 == k or b <= 1e-12 * (abs(alph[j]) + 1e-300):
            m = j + 1
            break
        bet[j] = b
        Q[j + 1] = r / b
    T = np.zeros((m, m))
    for j in range(m):
        T[j, j] = alph[j]
        if j + 1 < m:
            T[j, j + 1] = bet[j]
            T[j + 1, j] = bet[j]
    vals, vecs = np.linalg.eigh(T)
    top = vecs[:, m - 1]
    q0[:] = 0.0
    for j in range(m):
        q0 += top[j] * Q[j]
    return vals[m - 1]


# --------------------------------------------------------------------------- optimiser loop


@numba.njit(parallel=True, cache=True)
def _run_kernel(code, w0, d1, d2, dims, opt, eta, beta, rho, steps, tol, blowup, window,
                every, lanczos, q_init):
    R, n = w0.shape
    n_rec = steps // every + 1 if every > 0 else 0
    status = np.zeros(R, np.int64)
    stopped = np.full(R, steps, np.int64)
    grad_rms = np.zeros(R)
    w_out = w0.copy()
    rec_loss = np.zeros((R, n_rec))
    rec_grad = np.zeros((R, n_rec))
    rec_sharp = np.zeros((R, n_rec))
    for r in numba.prange(R):
        w = w_out[r]
        vel = np.zeros(n)
        g = np.empty(n)
        g2 = np.empty(n)
        no_hu = np.empty(0)
        wt = np.empty(n)
        q = q_init[r].copy()
        acc = 0.0
        cnt = 0
        for t in range(steps + 1):
            loss = _model(code, w, w, d1, d2, dims, g, no_hu)
            gn = np.sqrt(np.sum(g * g))
            if not (loss < blowup and gn < blowup):
                status[r] = DIVERGED
                stopped[r] = t
                break
            if every > 0 and t % every == 0:
                c = t // every
                rec_loss[r, c] = loss
                rec_grad[r, c] = gn
                if lanczos > 0:
                    rec_sharp[r, c] = _lanczos_top(code, w, d1, d2, dims, q, lanczos)
            if t >= steps - window:
                acc += gn * gn
                cnt += 1
            if gn < tol:
                status[r] = CONVERGED
                stopped[r] = t
                acc = gn * gn
                cnt = 1
                break
            if t == steps:
                break
            if opt == 2:                       # SAM: gradient at the normalised ascent point
                if gn > 0:
                    for i in range(n):
                        wt[i] = w[i] + rho * g[i] / gn
                    _model(code, wt, wt, d1, d2, dims, g2, no_hu)
                    g[:] = g2
            if opt == 1:
                for i in range(n):
                    vel[i] = beta * vel[i] - eta * g[i]
                    w[i] += vel[i]
            else:
                for i in range(n):
                    w[i] -= eta * g[i]
        grad_rms[r] = np.sqrt(acc / cnt) if cnt > 0 else 0.0
    return status, stopped, grad_rms, w_out, rec_loss, rec_grad, rec_sharp


@dataclass(frozen=True)
class NetworkRuns(Result):
    """Outcome of ``runs`` independent full-batch runs.

    ``status``: 0 still moving at the last step (neither converged nor diverged), 1 converged
    (``||g|| < tol``), 2 diverged (loss or ``||g||`` passed ``blowup``); ``stopped_at``: the step
    where a run stopped (``steps`` if it ran to the end). ``grad_norm``: the limiting gradient
    norm, root mean square of ``||g_t||`` over the last ``window`` steps (``||g||`` at the stop for
    converged runs, ``inf`` for diverged ones). Records every ``every`` steps at ``steps_recorded``:
    loss, ``||g||`` and sharpness (0 where not tracked; a record after a run's stop repeats
    nothing: it is 0, so use ``stopped_at``).
    """
    _dims = {"status": ("run",), "stopped_at": ("run",), "grad_norm": ("run",),
             "final": ("run", "parameter"), "steps_recorded": ("step",),
             "loss": ("run", "step"), "grad_trace": ("run", "step"),
             "sharpness": ("run", "step")}
    _coords = {"step": "steps_recorded"}

    model: str
    optimizer: str
    eta: float
    beta: float
    rho: float
    status: np.ndarray          # (R,)
    stopped_at: np.ndarray      # (R,)
    grad_norm: np.ndarray       # (R,)
    final: np.ndarray           # (R, n) parameters at the stop
    steps_recorded: np.ndarray  # (n_rec,)
    loss: np.ndarray            # (R, n_rec)
    grad_trace: np.ndarray      # (R, n_rec)
    sharpness: np.ndarray       # (R, n_rec)

    @property
    def converged(self) -> np.ndarray:
        return self.status == CONVERGED

    @property
    def diverged(self) -> np.ndarray:
        return self.status == DIVERGED

    @property
    def converged_fraction(self) -> float:
        return float(np.mean(self.converged))


@dataclass(frozen=True)
class Model:
    """A model in the form the kernels take (build with the constructors below)."""

    name: str
    code: int
    n_params: int
    d1: np.ndarray
    d2: np.ndarray
    dims: np.ndarray

    def __post_init__(self):
        # read-only C-contiguous copies of one dtype each: every model then reaches the kernels
        # with the same argument types, so they compile once (numba types writable and read-only
        # arrays differently), and the frozen model cannot be changed through its arrays
        for name, dtype in (("d1", np.float64), ("d2", np.float64), ("dims", np.int64)):
            arr = np.array(getattr(self, name), dtype=dtype, order="C")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def step_cost(self) -> float:
        """Operations of one step, roughly: the product of the layers (matrix net, ``2 L h^3``),
        one pass over the data (tanh net, ``4 n d m``), plus the bookkeeping of a step (about
        200, measured on the scalar net: ~0.2 us per run-step on one core)."""
        if self.code == 2:
            L, h = (float(v) for v in self.dims)
            return 200.0 + 2.0 * L * h ** 3
        if self.code == 3:
            n, d, m = (float(v) for v in self.dims)
            return 200.0 + 4.0 * n * d * m
        return 200.0 + self.n_params

    def loss_grad_hvp(self, w, u=None):
        """``(loss, grad, H u)`` at one parameter vector (``H u`` only if ``u`` is given)."""
        w = self._params(w)
        uu = w if u is None else self._params(u)
        g, hu = np.empty_like(w), np.empty(0 if u is None else w.size)
        loss = _model(self.code, w, uu, self.d1, self.d2, self.dims, g, hu)
        return (loss, g, hu) if u is not None else (loss, g)

    def sharpness(self, w, lanczos_steps=30, seed=0) -> float:
        """Top Hessian eigenvalue at ``w`` (Lanczos on exact HVPs, random start)."""
        w = self._params(w)
        q = np.random.default_rng(seed).standard_normal(self.n_params)
        return float(_lanczos_top(self.code, w, self.d1, self.d2, self.dims, q,
                                  checks.integer("lanczos_steps", lanczos_steps, 1)))

    def _params(self, w):
        w = np.array(w, dtype=np.float64)     # a fresh writable C array: the kernels' one signature
        if w.shape != (self.n_params,):
            raise ValueError(f"parameters must have shape ({self.n_params},), got {w.shape}")
        return w


_EMPTY = np.zeros(1)


def quadratic(eigenvalues) -> Model:
    lam = checks.real_array("eigenvalues", eigenvalues, positive_entries=True)
    return Model("quadratic", 0, lam.size, lam, _EMPTY, np.zeros(1, np.int64))


def scalar_net(a, p, depth) -> Model:
    """``L(w) = a/2 (prod_i w_i - p)^2``: the depth-L scalar network on data with ``a = mean x^2``,
    ``p = mean(xy)/a``."""
    a = checks.positive("a", a)
    p = checks.finite_real("p", p)
    L = checks.integer("depth", depth, 1)
    return Model("scalar-net", 1, L, np.array([a, p]), _EMPTY, np.array([L], np.int64))


def matrix_net(target, depth) -> Model:
    """``L(W) = 1/2 ||W_L..W_1 - Phi||_F^2``: depth-L linear network with square ``h x h`` layers
    on whitened data, ``Phi = mean y x^T`` (``h x h``, h <= 50, depth 2..20)."""
    Phi = np.asarray(target, dtype=np.float64)
    if Phi.ndim != 2 or Phi.shape[0] != Phi.shape[1] or not 1 <= Phi.shape[0] <= 50:
        raise ValueError(f"target must be a square h x h array with 1 <= h <= 50, got shape {Phi.shape}")
    if not np.all(np.isfinite(Phi)):
        raise ValueError("target contains NaN or inf")
    L = checks.integer("depth", depth, 2)
    if L > 20:
        raise ValueError(f"depth must be an integer in [2, 20], got {L}")
    h = Phi.shape[0]
    return Model("matrix-net", 2, L * h * h, Phi.ravel(), _EMPTY, np.array([L, h], np.int64))


def tanh_net(X, y, width) -> Model:
    """``f(x) = sum_j v_j tanh(W_j . x)``, ``L = mean (f - y)^2 / 2`` on data X (n x d), y (n,)."""
    X = checks.real_values("X", X)
    y = checks.real_values("y", y)
    if X.ndim != 2 or y.shape != (X.shape[0],) or X.shape[0] == 0:
        raise ValueError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite")
    m = checks.integer("width", width, 1)
    n, d = X.shape
    return Model("tanh-net", 3, m * d + m, X.ravel(), y, np.array([n, d, m], np.int64))


def check_budget(model: Model, runs: int, steps: int, optimizer="gd", every=0, lanczos=0) -> None:
    """Refuse (``theory.budget``) ``runs`` runs of ``steps`` steps that would take more than the
    work budget, or record traces larger than the memory budget."""
    grads = steps * (2 if optimizer == "sam" else 1)
    if every:   # each record: a Lanczos run of `lanczos` HVPs, about two gradients each
        grads += (steps // every + 1) * 2 * lanczos
    budget.work("steps", runs * grads * model.step_cost, f"{runs} run(s) of {steps} steps")
    if every:
        budget.memory("every", 3 * 8.0 * runs * (steps // every + 1), "the recorded traces")


def run(model: Model, initial, eta, steps, optimizer="gd", beta=0.0, rho=0.0, tol=1e-8,
        blowup=1e12, window=100, every=0, lanczos_steps=0, seed=0, progress=None) -> NetworkRuns:
    """Run ``optimizer`` on ``model`` from each row of ``initial`` (shape ``(runs, n_params)``, or
    ``(n_params,)`` for one run) for ``steps`` steps; numba, parallel over runs.

    ``every > 0`` records loss, ``||g||`` and (``lanczos_steps > 0``) the sharpness every ``every``
    steps; ``seed`` fixes the Lanczos start vectors. See ``NetworkRuns`` for the outcome.
    ``progress``: a bar over the runs (``theory.progress``; runs go through the kernel in chunks,
    which changes no number: each run has its own start and Lanczos vector).
    """
    from sgdyn.theory.progress import bar, chunks
    w0 = np.array(initial, dtype=np.float64, ndmin=2)
    if w0.ndim != 2 or w0.shape[1] != model.n_params or w0.shape[0] == 0:
        raise ValueError(f"initial must have shape (runs, {model.n_params}), got {np.shape(initial)}")
    if not np.all(np.isfinite(w0)):
        raise ValueError("initial contains NaN or inf")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    eta = checks.positive("eta", eta)
    beta = checks.momentum("beta", beta) if optimizer == "heavy-ball" else checks.finite_real("beta", beta)
    if optimizer != "heavy-ball" and beta != 0:
        raise ValueError(f"beta must be 0 unless optimizer is 'heavy-ball', got {beta}")
    if optimizer == "sam":
        rho = checks.positive("rho", rho)
    elif checks.nonnegative("rho", rho) != 0:
        raise ValueError(f"rho must be 0 unless optimizer is 'sam', got {rho}")
    steps = checks.integer("steps", steps, 1)
    tol = checks.nonnegative("tol", tol)
    blowup = checks.positive("blowup", blowup)
    window = checks.integer("window", window, 1)
    every = checks.integer("every", every, 0)
    lanczos = checks.integer("lanczos_steps", lanczos_steps, 0)
    check_budget(model, w0.shape[0], steps, optimizer, every, lanczos)
    q = np.random.default_rng(seed).standard_normal(w0.shape)
    parts = []
    with bar(progress, w0.shape[0], f"{model.name} {optimizer}", "run") as update:
        for a, b in chunks(w0.shape[0], 20, 64):
            parts.append(_run_kernel(model.code, np.ascontiguousarray(w0[a:b]), model.d1, model.d2,
                                     model.dims, OPTIMIZERS.index(optimizer), eta, beta, rho, steps,
                                     tol, blowup, min(window, steps + 1), every, lanczos,
                                     np.ascontiguousarray(q[a:b])))
            update(b - a)
    out = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    status, stopped, grad_rms, w_final, rec_loss, rec_grad, rec_sharp = out
    grad_rms = np.where(status == DIVERGED, np.inf, grad_rms)
    rec = np.arange(0, steps + 1, every) if every > 0 else np.zeros(0, np.int64)
    return NetworkRuns(model.name, optimizer, eta, beta, rho, status, stopped, grad_rms, w_final,
                       rec, rec_loss, rec_grad, rec_sharp)


# --------------------------------------------------------------------------- initialisations and data


def near_balanced_scalar_init(p, depth, runs, spread=0.2, seed=0) -> np.ndarray:
    """``w_i = |p|^{1/L} exp(spread z_i)`` (z standard normal), the first weight carrying sign(p):
    initialisations at the scale of the minimisers, so that divergence from a huge initial
    sharpness does not mix into the edge of stability. Shape ``(runs, depth)``."""
    p = checks.finite_real("p", p)
    L = checks.integer("depth", depth, 1)
    R = checks.integer("runs", runs, 1)
    w = abs(p) ** (1.0 / L) * np.exp(checks.nonnegative("spread", spread)
                                     * np.random.default_rng(seed).standard_normal((R, L)))
    w[:, 0] *= np.sign(p) if p != 0 else 1.0
    return w


def perturbed_init(center, runs, spread=0.1, seed=0) -> np.ndarray:
    """``center + spread * rms(center) * Z`` (Z standard normal), shape ``(runs, center.size)``:
    e.g. around a balanced minimiser (``theory.edges.balanced_factorisation``, layers stacked
    row-major), so that the runs start at the scale of the minimisers with some imbalance."""
    c = np.ravel(np.asarray(center, dtype=np.float64))
    if c.size == 0 or not np.all(np.isfinite(c)):
        raise ValueError("center must be a non-empty array of finite numbers")
    R = checks.integer("runs", runs, 1)
    scale = np.sqrt(np.mean(c * c))
    Z = np.random.default_rng(seed).standard_normal((R, c.size))
    return c + checks.nonnegative("spread", spread) * scale * Z


def whitened_regression(n, target, noise=0.0, seed=0):
    """Synthetic whitened data: ``X`` (n x h) with ``X^T X / n = I`` exactly, ``y = X Phi^T + noise``.
    Returns ``(X, Y, Phi_hat)`` with ``Phi_hat = Y^T X / n``; for whitened data the squared loss is
    ``||W - Phi_hat||_F^2 / 2 + const``, so ``matrix_net(Phi_hat, L)`` is that network's loss."""
    Phi = np.asarray(target, dtype=np.float64)
    h = Phi.shape[1]
    n = checks.integer("n", n, h)
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, h)))
    X = np.sqrt(n) * Q
    Y = X @ Phi.T + np.sqrt(checks.nonnegative("noise", noise)) * rng.standard_normal((n, Phi.shape[0]))
    return X, Y, Y.T @ X / n


def teacher_regression(n, d, seed=0):
    """Synthetic regression data for the tanh network: ``x ~ N(0, I_d)``,
    ``y = sin(2 x_1) + x_2 x_3`` (a target a small network fits slowly enough to sharpen)."""
    n = checks.integer("n", n, 1)
    d = checks.integer("d", d, 3)
    budget.memory("n", 16.0 * n * d, "the data")
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X, np.sin(2.0 * X[:, 0]) + X[:, 1] * X[:, 2]


def tanh_init(d, width, runs=1, scale=1.0, seed=0) -> np.ndarray:
    """``W ~ N(0, scale^2 / d)``, ``v ~ N(0, scale^2 / m)``; shape ``(runs, m d + m)``."""
    d = checks.integer("d", d, 1)
    m = checks.integer("width", width, 1)
    R = checks.integer("runs", runs, 1)
    s = checks.positive("scale", scale)
    budget.memory("width", 16.0 * R * m * (d + 1), "the initial parameters")
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((R, m * d)) * s / np.sqrt(d)
    v = rng.standard_normal((R, m)) * s / np.sqrt(m)
    return np.hstack([W, v])
