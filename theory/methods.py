"""First-order methods, each described ONCE as a linear recursion on a per-mode state.

A method acting on one eigenmode (eigenvalue ``lambda``) keeps a state vector ``x_t`` whose first
component is the error ``e_t``, and updates it by

    x_{t+1} = F x_t + K g_t,        g_t = lambda * (G x_t) + xi_t,

where ``G x_t`` is the point at which the mini-batch gradient is taken and ``xi_t`` its noise.
So the deterministic per-mode map is ``M(lambda) = F + lambda K G`` and the noise enters through
``K``. Everything symbolic (second-moment maps, transfer functions, characteristic polynomials,
stability edges) is derived from ``(F, K, G, x0)`` in ``theory.symbolic``; nothing is retyped.

Heavy ball (Polyak; PyTorch ``SGD(lr=alpha, momentum=beta)``), state ``(e_t, e_{t-1})``, ``v_0 = 0``:
    e_{t+1} = e_t + beta (e_t - e_{t-1}) - alpha g(e_t)
Nesterov: the gradient is taken at the look-ahead point ``e_t + beta (e_t - e_{t-1})``:
    e_{t+1} = e_t + beta (e_t - e_{t-1}) - alpha g(e_t + beta (e_t - e_{t-1}))
Plain SGD, state ``(e_t)``: ``e_{t+1} = e_t - alpha g(e_t)`` (heavy ball at beta = 0 too).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from sgdyn.theory import checks

alpha, beta, lam = sp.symbols("alpha beta lambda", real=True)


@dataclass(frozen=True)
class Method:
    name: str
    F: sp.Matrix          # d x d, gradient-free part of the update
    K: sp.Matrix          # d x 1, how the gradient enters the state
    G: sp.Matrix          # 1 x d, where the gradient is evaluated
    x0: sp.Matrix         # d x 1, initial state per unit initial error (v_0 = 0)
    has_momentum: bool
    description: str

    @property
    def dim(self) -> int:
        return self.F.shape[0]

    @property
    def transition(self) -> sp.Matrix:
        """Deterministic per-mode map ``M = F + lambda K G``."""
        return self.F + lam * self.K * self.G

    def check_params(self, alpha_value, beta_value) -> tuple[float, float]:
        """Validate ``(alpha, beta)``: ``alpha > 0``; ``|beta| < 1`` (or 0 for momentum-free)."""
        a = checks.positive("alpha", alpha_value)
        b = checks.momentum("beta", beta_value)
        if not self.has_momentum and b != 0.0:
            raise ValueError(f"beta must be 0 for method {self.name!r}, got {b}")
        return a, b


_shift_momentum = sp.Matrix([[1 + beta, -beta], [1, 0]])

HEAVY_BALL = Method(
    "heavy-ball", _shift_momentum, sp.Matrix([-alpha, 0]), sp.Matrix([[1, 0]]),
    sp.Matrix([1, 1]), True,
    "v_{t+1} = beta v_t - alpha g(w_t), w_{t+1} = w_t + v_{t+1}")
NESTEROV = Method(
    "nesterov", _shift_momentum, sp.Matrix([-alpha, 0]), sp.Matrix([[1 + beta, -beta]]),
    sp.Matrix([1, 1]), True,
    "v_{t+1} = beta v_t - alpha g(w_t + beta v_t), w_{t+1} = w_t + v_{t+1}")
SGD = Method(
    "sgd", sp.Matrix([[1]]), sp.Matrix([-alpha]), sp.Matrix([[1]]), sp.Matrix([1]), False,
    "w_{t+1} = w_t - alpha g(w_t)")

METHODS = {m.name: m for m in (HEAVY_BALL, NESTEROV, SGD)}


def get_method(method) -> Method:
    if isinstance(method, Method):
        return method
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}") from None
