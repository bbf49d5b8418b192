"""Predicted edges of stability (``theory.edges``) beside simulated runs (``simulate.networks``).

* ``scalar_lr_sweep`` / ``matrix_lr_sweep``: GD on a deep linear network from many
  initialisations, at step sizes ``eta = ratio * eta_crit`` with ``eta_crit`` the theory's critical
  step (closed form for scalar networks, numeric flattest minimum for matrix networks): converged
  fraction, diverged fraction and the limiting gradient norm against ``eta / eta_crit``
  (Craciun & Ghoshdastidar 2024; docs/edges.md).
* ``eos_trace``: one training run with its sharpness beside the edge it should hover at:
  ``edge(beta) / eta`` from the method's characteristic polynomial (``2/eta`` for GD,
  ``2 (1 + beta)/eta`` for heavy ball) and, for SAM, ``SAM_edge(eta, rho, ||g_t||)`` at the measured
  gradient norm (Cohen et al. 2021; Long & Bartlett 2024; docs/edges.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.simulate import networks
from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.edges import (balanced_factorisation, deterministic_edge, flattest_matrix_minimum, sam_edge,
                          scalar_network_edge)

# optimizer of simulate.networks -> method of theory.methods whose edge applies (SAM: GD's edge)
_THEORY_METHOD = {"gd": "sgd", "heavy-ball": "heavy-ball", "sam": "sgd"}


@dataclass(frozen=True)
class LrSweep(Result):
    """GD from ``runs`` initialisations at ``eta = ratio * eta_crit`` for each ratio."""
    _dims = {"grad_norm_quartiles": ("quartile", "ratio")}
    _properties = ("transition_ratio",)

    model: str
    depth: int
    eta_crit: float                 # 2 / sharpness of the flattest global minimum (theory)
    flattest_sharpness: float
    ratios: np.ndarray              # (E,) eta / eta_crit
    converged_fraction: np.ndarray  # (E,)
    diverged_fraction: np.ndarray   # (E,)
    grad_norm_median: np.ndarray    # (E,) limiting ||g||, median over runs that did not diverge
    grad_norm_quartiles: np.ndarray # (2, E) 25 % and 75 % quantiles of the same
    runs: int
    steps: int
    seed: int

    @property
    def transition_ratio(self) -> float:
        """``eta / eta_crit`` where the converged fraction first falls through 1/2 (linear
        interpolation between grid points; ``nan`` if it never does on the grid)."""
        f = self.converged_fraction
        below = np.nonzero(f < 0.5)[0]
        if below.size == 0 or below[0] == 0:
            return float("nan")
        i = below[0]
        r0, r1, f0, f1 = self.ratios[i - 1], self.ratios[i], f[i - 1], f[i]
        return float(r0 + (f0 - 0.5) / (f0 - f1) * (r1 - r0))


def _ratios(ratios) -> np.ndarray:
    r = checks.real_array("ratios", ratios, positive_entries=True)
    if np.any(np.diff(r) <= 0):
        raise ValueError("ratios must be strictly increasing")
    return r


def _sweep(model, initial, eta_crit, flattest, depth, ratios, steps, seed, progress) -> LrSweep:
    from sgdyn.theory.progress import bar
    ratios = _ratios(ratios)
    networks.check_budget(model, ratios.size * initial.shape[0], steps)
    conv, div, med, quart = [], [], [], []
    update = bar(progress, ratios.size * initial.shape[0], "lr sweep", "run")
    for ratio in ratios:    # one parallel kernel call per step size; runs are vectorised inside
        out = networks.run(model, initial, ratio * eta_crit, steps, progress=update)
        alive = out.grad_norm[~out.diverged]
        conv.append(out.converged_fraction)
        div.append(float(np.mean(out.diverged)))
        med.append(float(np.median(alive)) if alive.size else float("inf"))
        quart.append(np.quantile(alive, [0.25, 0.75]) if alive.size else [np.inf, np.inf])
    update.close()
    return LrSweep(model.name, depth, eta_crit, flattest, ratios, np.array(conv), np.array(div),
                   np.array(med), np.array(quart).T, initial.shape[0], steps, seed)


def scalar_lr_sweep(a, p, depth, ratios, runs=200, steps=50_000, spread=0.2, seed=0,
                    progress=None) -> LrSweep:
    """Sweep for the scalar network ``f = (prod w_i) x`` (``a = mean x^2``, ``p = mean(xy)/a``),
    ``eta_crit = 2/(a L |p|^{2-2/L})``, initialisations ``near_balanced_scalar_init``;
    ``progress``: a bar over the runs of all step sizes (``theory.progress``)."""
    edge = scalar_network_edge(a, p, depth)
    init = networks.near_balanced_scalar_init(edge.p, edge.depth, runs, spread, seed)
    return _sweep(networks.scalar_net(edge.a, edge.p, edge.depth), init, edge.critical_lr,
                  edge.sharpness, edge.depth, ratios, checks.integer("steps", steps, 1), seed,
                  progress)


def matrix_lr_sweep(target, depth, ratios, runs=100, steps=20_000, spread=0.1, seed=0,
                    progress=None) -> LrSweep:
    """Sweep for the square matrix network on whitened data (``L = ||W_L..W_1 - Phi||^2/2``), with
    ``eta_crit`` from the numeric flattest minimum (``theory.edges.flattest_matrix_minimum``);
    initialisations: the balanced factorisation plus ``spread`` times its rms entry times noise;
    ``progress`` as in ``scalar_lr_sweep``."""
    model = networks.matrix_net(target, depth)
    L, h = (int(v) for v in model.dims)
    steps = checks.integer("steps", steps, 1)
    runs = checks.integer("runs", runs, 1)
    # refused before the flattest-minimum search, which alone takes seconds
    networks.check_budget(model, _ratios(ratios).size * runs, steps)
    flat = flattest_matrix_minimum(target, L, h, restarts=2, seed=seed)
    init = networks.perturbed_init(np.stack(balanced_factorisation(target, L, h)), runs, spread, seed)
    return _sweep(model, init, flat.critical_lr, flat.sharpness, L, ratios, steps, seed, progress)


@dataclass(frozen=True)
class EdgeTrace(Result):
    """One run: sharpness, loss and ``||g||`` every ``every`` steps, with the predicted edges."""
    _dims = {"sam_edge": ("step",), "sharpness": ("step",), "grad_norm": ("step",)}

    model: str
    optimizer: str
    eta: float
    beta: float
    rho: float
    steps: np.ndarray        # (n,) recorded steps (up to the stop if the run diverged)
    loss: np.ndarray         # (n,)
    sharpness: np.ndarray    # (n,)
    grad_norm: np.ndarray    # (n,)
    deterministic_edge: float  # edge(beta)/eta of the method's char. polynomial: 2/eta for GD, SAM
    sam_edge: np.ndarray | None  # (n,) SAM_edge(eta, rho, ||g_t||) for SAM, else None
    diverged: bool

    def hover_ratio(self, start_fraction=0.5) -> np.ndarray:
        """Sharpness over the edge it should hover at (SAM: its own edge), from
        ``start_fraction`` of the run on."""
        edge = self.sam_edge if self.sam_edge is not None else self.deterministic_edge
        ratio = self.sharpness / edge
        return ratio[int(start_fraction * ratio.size):]


def eos_trace(model: networks.Model, initial, eta, steps, optimizer="gd", beta=0.0, rho=0.0,
              every=50, lanczos_steps=20, seed=0) -> EdgeTrace:
    """Train ``model`` from ``initial`` (one parameter vector) and record the sharpness (Lanczos on
    exact HVPs) every ``every`` steps beside the predicted edges."""
    every = checks.integer("every", every, 1)
    out = networks.run(model, np.asarray(initial, dtype=np.float64).reshape(1, -1), eta, steps,
                       optimizer=optimizer, beta=beta, rho=rho, tol=0.0, every=every,
                       lanczos_steps=checks.integer("lanczos_steps", lanczos_steps, 1), seed=seed)
    n = int(out.stopped_at[0]) // every + 1 if out.diverged[0] else out.steps_recorded.size
    g = out.grad_trace[0, :n]
    edge = deterministic_edge(_THEORY_METHOD[optimizer]).alpha_lambda(out.beta) / out.eta
    sam = sam_edge(out.eta, out.rho, np.maximum(g, np.finfo(float).tiny)) if optimizer == "sam" else None
    return EdgeTrace(model.name, optimizer, out.eta, out.beta, out.rho, out.steps_recorded[:n],
                     out.loss[0, :n], out.sharpness[0, :n], g, edge, sam, bool(out.diverged[0]))


def tanh_eos(eta, steps, optimizer="gd", beta=0.0, rho=0.0, n=64, d=4, width=16, init_scale=1.0,
             every=50, lanczos_steps=20, seed=0) -> EdgeTrace:
    """``eos_trace`` for the two-layer tanh network on ``teacher_regression(n, d, seed)`` data."""
    X, y = networks.teacher_regression(n, d, seed)
    model = networks.tanh_net(X, y, width)
    w0 = networks.tanh_init(d, width, 1, init_scale, seed)[0]
    return eos_trace(model, w0, eta, steps, optimizer, beta, rho, every, lanczos_steps, seed)
