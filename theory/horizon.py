"""The loss after a fixed number of steps, minimised over (alpha, beta): where negative momentum
wins (docs/negative_momentum.md; docs/theory.md, "Rates and negative momentum").

The asymptotic *rate* is the wrong yardstick for power-law problems: there the loss decays like a
power of t, and in the noise-dominated phase (``zeta > 2 - 1/nu``) its renewal form
``S = V + U * S`` gives ``S_t ~ V(1) U_t / (1 - U(1))^2``: the constant carries the signal's total
``V(1) = sum_t V_t`` and the factor ``1 / (1 - U(1))^2``, both of which depend on beta at fixed
effective learning rate. ``noise_decomposition`` reports these pieces; the optimiser works on the
exact loss at the horizon (numba recursion of ``theory.dynamics``, many parameter points at once).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.dynamics import mode_inputs, renewal_sequences
from sgdyn.theory.methods import get_method
from sgdyn.theory.recursion import OVERFLOW_GUARD, kernel_module, step_coefficients
from sgdyn.theory.run import Run
from sgdyn.theory.noise import GAUSSIAN, NoiseModel, batch_factor
from sgdyn.theory.problem import Problem
from sgdyn.theory.progress import bar, chunks
from sgdyn.theory.stability import _critical_alphas, _setup
from sgdyn.theory.system import ModeSystem
from sgdyn.theory.transfer import GeneratingFunctions


def final_losses(problem: Problem, alphas, betas, batch, steps, method="heavy-ball",
                 noise: NoiseModel = GAUSSIAN, progress=None) -> np.ndarray:
    """Exact ``L_T`` for each (alpha, beta) pair (same shape), inf where it blew past 1e200: the
    recursion of ``sgdyn.theory.recursion``, threads over the points of a chunk (about 20 chunks,
    memory O(chunk)); ``progress``: a bar over the points (``theory.progress``; None: after 2 s,
    if bars are on)."""
    alphas, betas = np.broadcast_arrays(np.asarray(alphas, float), np.asarray(betas, float))
    m = get_method(method)
    a, b = alphas.ravel(), betas.ravel()
    for av, bv in ((a.min(), b.min()), (a.max(), b.max())):
        m.check_params(av, bv)
    if not np.all(np.isfinite(a) & (a > 0)):
        raise ValueError("alphas must be finite and > 0")
    if m.x0.free_symbols:
        raise ValueError(f"final_losses needs an initial state that does not depend on the "
                         f"hyperparameters, got x0 = {list(m.x0)} for {m.name!r}")
    T = checks.integer("steps", steps, 0)
    run = Run.build(problem, m, alpha=float(a[0]), beta=float(b[0]), batch=batch, steps=T,
                    noise=noise)
    inputs = mode_inputs(run)
    kernel = kernel_module(m, inputs).final_losses
    gamma = float(run.batch_factors(np.array([run.constant()["batch"]]))[0])
    out = np.empty(a.size)
    with bar(progress, a.size, "L_T", "pt") as update:
        for start, stop in chunks(a.size, 20, 64):
            F, KG, kk, g = step_coefficients(*m.numeric_matrices({"alpha": a[start:stop],
                                                                   "beta": b[start:stop]}))
            P = stop - start
            kernel(inputs.lam, inputs.lp, inputs.pp, inputs.wl, inputs.src, inputs.X0, F[:, None],
                   KG[:, None], kk[:, None], np.ascontiguousarray(np.stack([g, g], axis=1)),
                   np.full((P, 1), gamma), inputs.tau1, inputs.tau2, inputs.floor, T,
                   OVERFLOW_GUARD, out[start:stop])
            update(P)
    if T == 0:
        out[:] = 0.5 * float(inputs.wl @ inputs.X0[0]) + inputs.floor
    return out.reshape(alphas.shape)


@dataclass(frozen=True)
class HorizonOptimum(Result):
    alpha: float
    beta: float
    loss: float               # L_T at the optimum
    alpha_beta0: float        # best alpha at beta = 0
    loss_beta0: float         # L_T at (alpha_beta0, 0)
    steps: int
    batch: int

    @property
    def gain(self) -> float:
        """Relative loss reduction against the best plain-SGD run: 1 - L_T / L_T(beta = 0)."""
        return 1.0 - self.loss / self.loss_beta0

    _properties = ("gain",)


def _sigmoid(s):
    return 0.5 * (1.0 + np.tanh(0.5 * s))


def optimal_hyperparameters_at_horizon(problem: Problem, batch, steps, method="heavy-ball",
                                       noise: NoiseModel = GAUSSIAN,
                                       grid: tuple[int, int] = (21, 15),
                                       progress=None) -> HorizonOptimum:
    """(alpha, beta) minimising the exact expected loss ``L_T`` after ``steps`` steps.

    Global stage: ``beta`` on ``grid[0]`` points of [-0.9, 0.9] and ``alpha = alpha_crit(beta) *
    sigmoid(s)``, s on ``grid[1]`` points of [-4, 5] (every grid point converges); local stage:
    Nelder-Mead on (atanh(beta), log alpha) from the best grid point. The same two stages at
    beta = 0 (Brent in log alpha) give the plain-SGD reference ``loss_beta0``. ``progress``: a
    bar over the loss evaluations (``theory.progress``).
    """
    from scipy import optimize
    m = _setup(problem, method, noise)
    if not m.has_momentum:
        raise ValueError(f"method must have a momentum parameter, got {m.name!r}")
    bsz = checks.integer("batch", batch, 1)
    T = checks.integer("steps", steps, 1)
    g = batch_factor(bsz, problem.data_size)
    lam_ = problem.eigenvalues
    betas = np.linspace(-0.9, 0.9, grid[0])
    if 0.0 not in betas:
        betas = np.sort(np.append(betas, 0.0))
    crit = _critical_alphas(m, lam_, betas, g, noise.tau1, noise.tau2, problem.multiplicity)[0]
    ss = np.linspace(-4.0, 5.0, grid[1])
    A = crit[:, None] * _sigmoid(ss)[None, :]
    B = np.broadcast_to(betas[:, None], A.shape)
    with bar(progress, A.size + 250, "optimize (horizon)", "pt") as update:
        L = final_losses(problem, A, B, bsz, T, m, noise, progress=update)

        def f(v):
            update(1)
            a, bt = float(np.exp(v[1])), float(np.tanh(v[0]))
            if not abs(bt) < 1.0:
                return np.inf
            return float(final_losses(problem, a, bt, bsz, T, m, noise, progress=False))
        i, j = np.unravel_index(np.argmin(L), L.shape)
        x0 = np.array([np.arctanh(betas[i]), np.log(A[i, j])])
        # a simplex of grid-cell size: scipy's default (5 % of each coordinate) is nil at beta = 0
        simplex = x0 + np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]])
        res = optimize.minimize(f, x0, method="Nelder-Mead",
                                options={"xatol": 1e-5, "fatol": 0.0, "maxiter": 200,
                                         "initial_simplex": simplex})
        i0 = int(np.nonzero(betas == 0.0)[0][0])
        j0 = int(np.argmin(L[i0]))
        lo, hi = np.log(A[i0, max(j0 - 1, 0)]), np.log(A[i0, min(j0 + 1, len(ss) - 1)])
        r0 = optimize.minimize_scalar(lambda v: f(np.array([0.0, v])), bounds=(lo, hi),
                                      method="bounded", options={"xatol": 1e-6})
    a0, l0 = (float(np.exp(r0.x)), float(r0.fun)) if r0.fun <= L[i0, j0] else \
        (float(A[i0, j0]), float(L[i0, j0]))
    a, bt, lb = (float(np.exp(res.x[1])), float(np.tanh(res.x[0])), float(res.fun)) \
        if res.fun <= L[i, j] else (float(A[i, j]), float(betas[i]), float(L[i, j]))
    return HorizonOptimum(a, bt, lb, a0, l0, T, bsz)


@dataclass(frozen=True)
class NoiseDecomposition(Result):
    """The pieces of the noise-phase asymptote ``L_T ~ V(1) U_T / (2 (1 - U(1))^2)``."""

    noise_feedback: float     # U(1)
    signal_total: float       # V(1) = sum_t V_t (V_t = 2 x noiseless-signal loss)
    noise_kernel: float       # U_T
    predicted_loss: float     # V(1) U_T / (2 (1 - U(1))^2)
    exact_loss: float         # L_T from the recursion


def noise_decomposition(problem: Problem, alpha, beta, batch, steps, method="heavy-ball",
                        noise: NoiseModel = GAUSSIAN) -> NoiseDecomposition:
    """Evaluate the noise-phase asymptote's factors at (alpha, beta) and compare with L_T.

    ``U_T = tau1 gamma sum_k lambda_k^2 g A_k^{T-1} kk`` by the same numba recursion (a unit kick
    ``kk`` per mode, no coupling: ``theory.dynamics.renewal_sequences``); ``U(1), V(1)`` from the
    generating functions at z = 1. Valid for methods whose gradient is taken at the iterate (heavy ball): ``L = V / (2 (1 - U))``.
    """
    s = ModeSystem.build(problem, alpha, beta, batch, method, noise)
    if not s.derivation.gradient_at_iterate:
        raise ValueError(f"method must take the gradient at the iterate, got {s.method.name!r}")
    T = checks.integer("steps", steps, 1)
    gf = GeneratingFunctions(s)
    U1 = float(gf.U(np.array(1.0)))
    V1 = float(gf.V(np.array(1.0)))
    UT = float(renewal_sequences(s, T)[1][-1])
    LT = float(final_losses(problem, alpha, beta, batch, T, method, noise, progress=False))
    return NoiseDecomposition(U1, V1, UT, V1 * UT / (2 * (1 - U1) ** 2), LT)
