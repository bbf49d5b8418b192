"""Training a network for real: mini-batch SGD / heavy ball on a ``simulate.mlp.MLP`` and, with
the same batches, on its linearisation at initialisation.

Loss over the data set ``L(theta) = 1/2 mean_i (f(x_i; theta) - y_i)^2`` (the convention of
``Problem.from_kernel``), mini-batch gradient ``g_t = (1/b) sum_{i in B_t} (f(x_i) - y_i)
grad_theta f(x_i)``, heavy ball ``v <- beta v - alpha g``, ``theta <- theta + v`` (``v_0 = 0``;
``beta = 0`` is SGD). Every run starts from the same network and draws its own batches
(i.i.d., without replacement within a batch, or shuffled epochs: ``draw_batch``, the sampling of
``simulate.cpu``).

* **Network**: back-propagation through the layers of ``simulate.mlp`` (numba, one thread per
  run); the loss over all ``n`` rows at every recorded step.
* **Linearised network** ``f_lin(x; theta) = f(x; theta_0) + J(x)(theta - theta_0)``: SGD on
  the Jacobian features, run in function space on the data (exactly the same iterates):
  ``u <- beta u - (alpha / b) sum_{i in B} Theta_0[:, i] (f_i - y_i)``, ``f <- f + u`` with
  ``Theta_0 = J J^T`` the empirical NTK at initialisation (``u = J v``); ``O(n b)`` a step. This is
  the kernel problem ``Problem.from_kernel(Theta_0, y, f0=f(theta_0))`` whose theory routes
  (exact finite data, SE) predict its mean loss.
* **Gap**: per run, network minus linearised loss on the same batches (paired: the batch noise
  common to both cancels in its standard error).

A run whose loss passes the overflow guard (or becomes NaN) is stopped, for each model on its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from sgdyn.simulate import rng
from sgdyn.simulate.cpu import _SAMPLING, EPOCHS, IID, OVERFLOW_GUARD, _next_row
from sgdyn.simulate.mlp import MLP
from sgdyn.simulate.statistics import summarize_losses
from sgdyn.simulate.trajectories import Trajectories
from sgdyn.theory import budget, checks
from sgdyn.theory.display import Result
from sgdyn.theory.ntk import ACTIVATIONS, check_inputs
from sgdyn.theory.record import Record
from sgdyn.theory.sampling import Sampling

_EVAL_ROWS = 128             # rows per block when the network's loss over the data is taken
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@njit(cache=True)
def draw_batch(s, sampling, perm, pos, out):
    """The rows of one batch of ``out.size`` from ``perm.size`` rows into ``out``, sampled as the
    CPU kernel of ``simulate.cpu`` samples them (i.i.d., without replacement within the batch, or
    shuffled epochs); returns the epoch position after it (``pos = perm.size`` starts with a
    shuffle)."""
    n, b = perm.size, out.size
    if sampling == EPOCHS and pos + b > n:
        rng.shuffle(s, perm)
        pos = 0
    for i in range(b):
        if sampling == IID:
            out[i] = rng.index(s, n)
        else:
            out[i], pos = _next_row(s, sampling, n, perm, pos, i)
    return pos


@njit(cache=True, inline="always")
def _phi(code, h):
    """``(phi(h), phi'(h))`` for activation ``ACTIVATIONS[code]``."""
    if code == 0:
        return (h, 1.0) if h > 0.0 else (0.0, 0.0)
    if code == 1:
        t = math.tanh(h)
        return t, 1.0 - t * t
    return math.erf(h), _TWO_OVER_SQRT_PI * math.exp(-h * h)


@njit(cache=True)
def _forward(p, X, rows, count, lay, mw, mb, code, acts, slopes, out):
    """Outputs ``out[:count]`` for rows ``X[rows[:count]]``, keeping each layer's input in ``acts``
    and ``phi'(h)`` in ``slopes``. ``lay[l] = (fan_in, fan_out, weight offset, bias offset)``."""
    nl = lay.shape[0]
    for i in range(count):
        for k in range(lay[0, 0]):
            acts[0, i, k] = X[rows[i], k]
    for l in range(nl):
        fi, fo, wo, bo = lay[l, 0], lay[l, 1], lay[l, 2], lay[l, 3]
        for i in range(count):
            for o in range(fo):
                acc = 0.0
                base = wo + o * fi
                for k in range(fi):
                    acc += p[base + k] * acts[l, i, k]
                h = mw[l] * acc + mb[l] * p[bo + o]
                if l == nl - 1:
                    out[i] = h
                else:
                    acts[l + 1, i, o], slopes[l, i, o] = _phi(code, h)


@njit(cache=True)
def _gradient(p, lay, mw, mb, count, acts, slopes, coef, dcur, dnext, g):
    """``g = sum_i coef_i grad f(x_i)`` by back-propagation from a ``_forward`` of ``count`` rows."""
    nl = lay.shape[0]
    g[:] = 0.0
    for i in range(count):
        dcur[i, 0] = coef[i]
    for l in range(nl - 1, -1, -1):
        fi, fo, wo, bo = lay[l, 0], lay[l, 1], lay[l, 2], lay[l, 3]
        for i in range(count):
            for o in range(fo):
                dv = dcur[i, o]
                g[bo + o] += mb[l] * dv
                c = mw[l] * dv
                base = wo + o * fi
                for k in range(fi):
                    g[base + k] += c * acts[l, i, k]
        if l > 0:
            for i in range(count):
                for k in range(fi):
                    dnext[i, k] = 0.0
                for o in range(fo):
                    dv = mw[l] * dcur[i, o]
                    base = wo + o * fi
                    for k in range(fi):
                        dnext[i, k] += dv * p[base + k]
                for k in range(fi):
                    dnext[i, k] *= slopes[l - 1, i, k]
            dcur, dnext = dnext, dcur


@njit(cache=True)
def _data_loss(p, X, y, lay, mw, mb, code, acts, slopes, out, rows):
    """``1/2 mean_i (f(x_i) - y_i)^2`` over every row, in blocks of ``rows.size``."""
    n, cap = X.shape[0], rows.size
    total = 0.0
    for start in range(0, n, cap):
        count = min(cap, n - start)
        for i in range(count):
            rows[i] = start + i
        _forward(p, X, rows, count, lay, mw, mb, code, acts, slopes, out)
        for i in range(count):
            r = out[i] - y[start + i]
            total += r * r
    return 0.5 * total / n


@njit(parallel=True, cache=True)
def _train_kernel(seed, X, y, params0, lay, mw, mb, code, theta0, f0, alpha, beta, batch,
                  sampling, recorded, guard, span, net_losses, lin_losses, net_valid, lin_valid):
    n, P, nl = X.shape[0], params0.size, lay.shape[0]
    n_runs, n_rec = net_losses.shape
    steps = recorded[n_rec - 1]
    cap = max(batch, _EVAL_ROWS)
    for r in prange(n_runs):
        s = np.empty(4, np.uint64)
        rng.seed_stream(seed, r, s)
        p = params0.copy()
        v = np.zeros(P)
        g = np.empty(P)
        acts = np.empty((nl, cap, span))
        slopes = np.empty((max(nl - 1, 1), cap, span))
        out = np.empty(cap)
        dcur = np.empty((cap, span))
        dnext = np.empty((cap, span))
        block = np.empty(cap, np.int64)
        fl = f0.copy()
        u = np.zeros(n)
        idx = np.empty(batch, np.int64)
        coef = np.empty(batch)
        perm = np.arange(n)
        pos = n
        net_on, lin_on = True, True
        net_valid[r], lin_valid[r] = n_rec, n_rec
        j = 0
        for t in range(steps + 1):
            if t > 0:
                pos = draw_batch(s, sampling, perm, pos, idx)
                if net_on:
                    _forward(p, X, idx, batch, lay, mw, mb, code, acts, slopes, out)
                    for i in range(batch):
                        coef[i] = (out[i] - y[idx[i]]) / batch
                    _gradient(p, lay, mw, mb, batch, acts, slopes, coef, dcur, dnext, g)
                    for q in range(P):
                        v[q] = beta * v[q] - alpha * g[q]
                        p[q] += v[q]
                if lin_on:
                    for q in range(n):
                        u[q] *= beta
                    for i in range(batch):
                        c = alpha * (fl[idx[i]] - y[idx[i]]) / batch
                        for q in range(n):
                            u[q] -= c * theta0[idx[i], q]
                    for q in range(n):
                        fl[q] += u[q]
            if t != recorded[j]:
                continue
            if net_on:
                loss = _data_loss(p, X, y, lay, mw, mb, code, acts, slopes, out, block)
                if loss < guard:
                    net_losses[r, j] = loss
                else:
                    net_on, net_valid[r] = False, j
            if lin_on:
                loss = 0.0
                for q in range(n):
                    loss += (fl[q] - y[q]) ** 2
                loss *= 0.5 / n
                if loss < guard:
                    lin_losses[r, j] = loss
                else:
                    lin_on, lin_valid[r] = False, j
            j += 1
            if not (net_on or lin_on):
                break


@dataclass(frozen=True)
class NetworkTraining(Result):
    """Loss statistics over runs of the network, its linearisation and their paired gap
    (module docstring), at the same recorded steps."""

    network: Trajectories
    linearized: Trajectories
    gap: Trajectories          # network - linearized, per run (runs where both are finite)
    ntk: np.ndarray            # Theta_0 = J J^T on the data (what the linearised model trains on)
    initial_outputs: np.ndarray  # f(x_i; theta_0)
    network_final: np.ndarray  # per run: the network's loss at the last step (inf if stopped)
    linearized_final: np.ndarray

    def diverged_fraction(self, model: str = "network") -> float:
        """Fraction of runs of ``model`` (``"network"`` or ``"linearized"``) whose loss ended above
        the initial loss or was stopped by the overflow guard."""
        if model not in ("network", "linearized"):
            raise ValueError(f"model must be 'network' or 'linearized', got {model!r}")
        final = getattr(self, f"{model}_final")
        return float(np.mean(~(final <= getattr(self, model).mean[0])))


def _layout(net: MLP):
    lay, mw, mb, at = [], [], [], 0
    for W, b, m_w, m_b in net.layers():
        o, i = W.shape
        lay.append((i, o, at, at + o * i))
        mw.append(m_w)
        mb.append(m_b)
        at += o * i + o
    return np.array(lay, np.int64), np.array(mw), np.array(mb)


def train(net: MLP, X, y, *, alpha, beta=0.0, batch=1, steps, runs, seed=0, sampling=None,
          record: Record | None = None, quantile_levels=(0.1, 0.5, 0.9)) -> NetworkTraining:
    """``runs`` independent runs of ``steps`` steps of heavy ball (``alpha``, ``beta``, batch
    ``batch``) from ``net`` on the rows of ``X`` with targets ``y``, for the network and its
    linearisation with the same batches (module docstring). ``sampling``: a
    ``sgdyn.theory.Sampling`` (default i.i.d.; a finite one must name ``n`` points); ``record``:
    the steps kept (default every step). The run with index ``r`` draws its batches from the stream
    ``(seed, r)`` (``simulate.rng``). Work: ``3 b P`` per step and ``n P`` per recorded step for the
    network (``P = net.size``), ``n b`` per step for the linearisation."""
    if not isinstance(net, MLP):
        raise ValueError(f"net must be a sgdyn.simulate.mlp.MLP, got {type(net).__name__}")
    X = check_inputs("X", X)
    y = checks.real_values("y", y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with one target per row of X ({X.shape[0]}), got shape "
                         f"{y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y must not contain NaN or inf")
    n = X.shape[0]
    alpha = checks.positive("alpha", alpha)
    beta = checks.momentum("beta", beta)
    batch = checks.integer("batch", batch, 1, n)
    steps = checks.integer("steps", steps, 0)
    runs = checks.integer("runs", runs, 2)
    seed = checks.integer("seed", seed, 0, 2 ** 64 - 1)
    sampling = Sampling.iid() if sampling is None else sampling
    if not isinstance(sampling, Sampling):
        raise ValueError(f"sampling must be a sgdyn.theory.Sampling, got {type(sampling).__name__}")
    if sampling.kind != "iid" and sampling.data_size != n:
        raise ValueError(f"sampling {sampling.kind!r} from {sampling.data_size} points, but X has "
                         f"{n} rows")
    record = Record.all() if record is None else record
    if not isinstance(record, Record):
        raise ValueError(f"record must be a sgdyn.theory.Record, got {type(record).__name__}")
    recorded = record.steps_for(steps).astype(np.int64)
    span = max(net.input_dim, net.architecture.width)      # the widest layer input
    budget.memory("runs", 8.0 * (4 * runs * recorded.size + n * n) + 8.0 * 3 * net.size,
                  f"{runs} runs of a network of {net.size} parameters on {n} rows")
    budget.work("steps x runs", float(runs) * (steps * (3.0 * batch * net.size + n * batch)
                                               + recorded.size * n * net.size),
                f"{runs} runs x {steps} steps of a network of {net.size} parameters")
    theta0 = net.ntk(X).ntk
    f0 = net.forward(X)
    lay, mw, mb = _layout(net)
    net_losses = np.zeros((runs, recorded.size))     # zeros: a stopped run's tail is ignored
    lin_losses = np.zeros((runs, recorded.size))
    net_valid = np.empty(runs, np.int64)
    lin_valid = np.empty(runs, np.int64)
    _train_kernel(np.uint64(seed), np.ascontiguousarray(X), np.ascontiguousarray(y),
                  np.ascontiguousarray(net.params), lay, mw, mb,
                  ACTIVATIONS.index(net.architecture.activation), theta0, f0, alpha, beta, batch,
                  _SAMPLING[sampling.kind], recorded, OVERFLOW_GUARD, span, net_losses,
                  lin_losses, net_valid, lin_valid)
    both = np.minimum(net_valid, lin_valid)
    stats = [summarize_losses(lo, va, recorded, quantile_levels, runs, seed, "cpu")
             for lo, va in ((net_losses, net_valid), (lin_losses, lin_valid),
                            (net_losses - lin_losses, both))]
    n_rec = recorded.size
    finals = [np.where(va == n_rec, lo[:, -1], np.inf)
              for lo, va in ((net_losses, net_valid), (lin_losses, lin_valid))]
    return NetworkTraining(*stats, theta0, f0, *finals)
