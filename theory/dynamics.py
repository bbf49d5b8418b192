"""Loss curves ``L_0 .. L_T`` of mini-batch SGD / momentum under the SE noise model, by two
independent routes (docs/theory.md):

* ``route="recursion"``: the per-mode second-moment recursion, O(N T), in numba. Per mode ``k``
  (``X = vech`` of the state second moments, e.g. ``(E e_t^2, E e_t e_{t-1}, E e_{t-1}^2)``):
  ``X_{k,t+1} = A_k X_{k,t} + gamma tau1 lambda_k kk D_t + gamma sigma^2 lambda_k kk``,
  ``D_t = sum_k lambda_k g . X_{k,t}``; exact for Gaussian features.
* ``route="generating-function"``: Cauchy's integral of ``L(z) = sum_t L_t z^t`` on a circle
  ``|z| = r`` just inside the radius of convergence, discretised by an FFT of length ``M >= 32 (T+1)``
  (aliasing ``~ exp(-32)``); ``L(z)`` comes from the lambdified symbolic transfer functions.

A divergent setting is a result: the curve grows, ``diverges`` is set with the reason, and the
recursion stops (returning the curve so far) before any value passes ``1e200``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from sgdyn.theory import checks
from sgdyn.theory.display import Result
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem
from sgdyn.theory.system import ModeArrays, ModeSystem
from sgdyn.theory.transfer import GeneratingFunctions, Singularities, singularities

OVERFLOW_GUARD = 1e200
ROUTES = ("recursion", "generating-function")


@dataclass(frozen=True)
class LossCurve(Result):
    loss: np.ndarray            # L_0 .. L_T, or up to the step where a divergent run was stopped
    steps_requested: int
    diverges: bool
    rate: float                 # asymptotic rate rho: L_t ~ rho^t (before the label-noise floor)
    limited_by: str             # "noise" or "mode stability"
    reason: str
    stopped_early: bool         # True if the recursion stopped before float overflow

    @property
    def final(self) -> float:
        return float(self.loss[-1])


_WIDTH = 3   # vech of a 2-dimensional per-mode state; smaller states are zero-padded


@njit(cache=True, fastmath=True)
def _second_moment_recursion(A, coupling, source, drive, loss, X0, floor, steps, guard, out):
    """Fill out[0..] with L_t; return the number of entries written (< steps+1 if stopped).

    Fixed width with the state read into a tuple: LLVM unrolls the 3x3 update and keeps it in
    registers (2.5x faster than a loop over a runtime width, benchmarks/theory_loss.py);
    fastmath only reassociates the sums over modes.
    """
    n = X0.shape[0]
    X = X0.copy()
    D = 0.0
    L = 0.0
    for k in range(n):
        for i in range(_WIDTH):
            D += drive[k, i] * X[k, i]
            L += loss[k, i] * X[k, i]
    for t in range(steps + 1):
        out[t] = L + floor
        if not abs(out[t]) < guard:   # the state sits within a modest factor of L: no overflow
            return t + 1
        if t == steps:
            break
        D_next = 0.0
        L_next = 0.0
        for k in range(n):
            x = (X[k, 0], X[k, 1], X[k, 2])
            for i in range(_WIDTH):
                acc = coupling[k, i] * D + source[k, i]
                for j in range(_WIDTH):
                    acc += A[k, i, j] * x[j]
                X[k, i] = acc
                D_next += drive[k, i] * acc
                L_next += loss[k, i] * acc
        D = D_next
        L = L_next
    return steps + 1


def _padded(a: np.ndarray, axes: int) -> np.ndarray:
    q = a.shape[-1]
    if q > _WIDTH:
        raise ValueError(f"the recursion kernel handles per-mode systems up to {_WIDTH} moments, got {q}")
    if q == _WIDTH:
        return a
    pad = [(0, 0)] * (a.ndim - axes) + [(0, _WIDTH - q)] * axes
    return np.ascontiguousarray(np.pad(a, pad))


def recursion_curve(arrays: ModeArrays, steps: int) -> np.ndarray:
    out = np.empty(steps + 1)
    n = _second_moment_recursion(_padded(arrays.A, 2), _padded(arrays.coupling, 1),
                                 _padded(arrays.source, 1), _padded(arrays.drive, 1),
                                 _padded(arrays.loss, 1), _padded(arrays.X0, 1), arrays.floor,
                                 steps, OVERFLOW_GUARD, out)
    return out[:n]


def renewal_sequences(system: ModeSystem, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The coefficients ``V_0..V_T`` and ``U_0..U_T`` of ``V(z)`` and ``U(z)`` (renewal form
    ``D = V + U * D``, ``D_t = sum_k lambda_k g . X_{k,t}``; ``= 2 L_t`` for heavy ball / SGD
    without label noise), by the recursion with the coupling switched off:
    ``V_t = sum_k w_k c_k lambda_k g A_k^t x0`` (the noiseless signal),
    ``U_t = tau1 gamma sum_k w_k lambda_k^2 g A_k^(t-1) kk`` (a unit noise kick per mode, U_0 = 0).
    """
    arr = system.arrays()
    nf = system.derivation.numeric
    zero = np.zeros_like(arr.X0)
    signal = ModeArrays(A=arr.A, coupling=zero, source=zero, drive=zero, loss=arr.drive,
                        X0=arr.X0, floor=0.0)
    w = system.problem.multiplicity
    kick = ModeArrays(A=arr.A, coupling=zero, source=zero, drive=zero,
                      loss=np.ascontiguousarray((system.gamma * system.noise.tau1 * w
                                                 * system.problem.eigenvalues ** 2)[:, None]
                                                * nf.g_row(*system.args)),
                      X0=np.ascontiguousarray(nf.kk(*system.args)), floor=0.0)
    U = np.concatenate([[0.0], recursion_curve(kick, steps - 1)]) if steps > 0 else np.zeros(1)
    return recursion_curve(signal, steps), U


def generating_function_curve(system: ModeSystem, steps: int, sing: Singularities) -> np.ndarray:
    """Coefficients of L(z) by the trapezoidal Cauchy integral on ``|z| = r``.

    ``r = R (1 - 1/(T+1))`` with ``R`` the radius of convergence (1 at most with label noise):
    the scaled coefficients ``L_t r^t`` then stay of one magnitude over ``t <= T``, and the aliased
    terms ``L_{t+M} r^M`` are ``~ exp(-M/(T+1))`` smaller.
    """
    R = 1.0 / sing.rate if sing.rate > 0 else 1e6
    if system.problem.label_noise > 0:
        R = min(R, 1.0)
    R = min(R, 1e6)
    r = R * (1.0 - 1.0 / (steps + 1))
    M = 1 << int(np.ceil(np.log2(32 * (steps + 1))))
    theta = 2.0 * np.pi * np.arange(M) / M
    values = GeneratingFunctions(system).loss(r * np.exp(1j * theta))
    coeffs = np.fft.fft(values)[: steps + 1].real / M
    # A divergent curve passes the guard well before float overflow; cut it there.
    log_scale = -np.arange(steps + 1) * np.log(r)
    keep = log_scale < np.log(OVERFLOW_GUARD) - np.log(np.abs(coeffs).max() + 1e-300) + 10.0
    n = steps + 1 if keep.all() else int(np.argmin(keep))
    with np.errstate(under="ignore"):
        return coeffs[:n] * np.exp(log_scale[:n])


def loss_curve(problem: Problem, alpha: float, beta: float, batch: int, steps: int,
               method: str = "heavy-ball", noise: NoiseModel = GAUSSIAN,
               route: str = "recursion") -> LossCurve:
    """Expected population loss ``L_t = 1/2 sum_k lambda_k E[e_{k,t}^2] + sigma^2/2``, t = 0..T.

    ``method`` is ``"heavy-ball"`` (PyTorch ``SGD(lr=alpha, momentum=beta)``; plain SGD at
    beta = 0), ``"nesterov"`` or ``"sgd"``; ``noise`` the SE model (default Gaussian features,
    ``tau1 = 1, tau2 = -1``); ``batch`` the mini-batch size (i.i.d. draws, or without replacement
    when ``problem.data_size`` is set). Source: Velikanov, Kuznedelev, Yarotsky (ICLR 2023).
    """
    system = ModeSystem.build(problem, alpha, beta, batch, method, noise)
    steps = checks.integer("steps", steps, 0)
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    sing = singularities(system)
    if route == "recursion":
        loss = recursion_curve(system.arrays(), steps)
    else:
        loss = generating_function_curve(system, steps, sing)
        over = np.nonzero(~(np.abs(loss) < OVERFLOW_GUARD))[0]
        if over.size:
            loss = loss[: over[0] + 1]
    stopped = loss.size < steps + 1
    return LossCurve(loss, steps, sing.diverges or stopped, sing.rate, sing.limited_by,
                     sing.reason, stopped)
