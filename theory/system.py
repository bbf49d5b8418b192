"""ModeSystem: one problem, method, batch and noise model, validated and turned into per-mode
numeric arrays (from the symbolic derivation) that every numeric route shares."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.methods import Method, get_method
from sgdyn.theory.noise import GAUSSIAN, NoiseModel, batch_factor
from sgdyn.theory.problem import Problem

if TYPE_CHECKING:           # the numeric routes load cached forms without importing sympy
    from sgdyn.theory.symbolic import Derivation


def extra_arguments(method: Method) -> tuple:
    """The values of ``method``'s extra parameters, in the order its numeric forms take them."""
    values = method.extra_values
    return tuple(values[p.name] for p in method.extra)


@dataclass(frozen=True)
class ModeSystem:
    problem: Problem
    method: Method
    alpha: float
    beta: float
    batch: int
    noise: NoiseModel
    gamma: float          # noise factor: 1/b (i.i.d.) or (N - b)/((N - 1) b) (without replacement)

    @classmethod
    def build(cls, problem: Problem, alpha, beta, batch, method="heavy-ball",
              noise: NoiseModel = GAUSSIAN) -> "ModeSystem":
        if not isinstance(problem, Problem):
            raise ValueError(f"problem must be a theory.Problem, got {type(problem).__name__}")
        if not isinstance(noise, NoiseModel):
            raise ValueError(f"noise must be a theory.NoiseModel, got {type(noise).__name__}")
        m = get_method(method)
        a, bt = m.check_params(alpha, beta)
        bsz = checks.integer("batch", batch, 1)
        if not m.preconditioned:    # a preconditioner p(lambda) need not respect the scaling
            problem, scale = problem.normalized()
            a = a * scale
        return cls(problem, m, a, bt, bsz, noise, batch_factor(bsz, problem.data_size))

    @property
    def derivation(self) -> Derivation:
        from sgdyn.theory.symbolic import derive
        return derive(self.method)

    @property
    def args(self) -> tuple:
        """Per-mode numeric arguments (alpha, beta, lambda_k, gamma, tau1, tau2, extra parameters
        of the method) of the lambdified forms."""
        return (self.alpha, self.beta, self.problem.eigenvalues, self.gamma,
                self.noise.tau1, self.noise.tau2) + extra_arguments(self.method)

    def arrays(self) -> "ModeArrays":
        """The per-mode maps on vech(P), built numerically from the method's matrices: ``M`` is
        formed first (``F + lambda p K G``, one rounding per entry) and ``A0`` is its congruence
        ``vech(P) -> vech(M P M^T)``; the expanded symbolic entries (``derivation.numeric.A``,
        the same map) lose digits for slow modes at beta -> 1 (2.5e-8 instead of 1e-10 relative
        after 5000 steps at beta = 0.99, measured against 30-digit arithmetic)."""
        from sgdyn.theory.kernel_source import vech_pairs
        p = self.problem
        lam, w = p.eigenvalues, p.multiplicity
        m = self.method
        values = {"alpha": self.alpha, "beta": self.beta, **m.extra_values}
        F, K, G = (x[0] for x in m.numeric_matrices(values))
        pre = m.preconditioner_values(lam, values)
        M = F[None] + (lam * pre)[:, None, None] * np.outer(K, G)[None]        # (N, d, d)
        Kp = pre[:, None] * K[None, :]                                          # (N, d)
        pairs = vech_pairs(m.dim)
        r = np.array([a for a, _ in pairs])
        c = np.array([b for _, b in pairs])
        # vech(M P M^T)_(a,b) = sum over (c <= d) P_cd (M_ac M_bd + [c != d] M_ad M_bc)
        A0 = M[:, r[:, None], r[None, :]] * M[:, c[:, None], c[None, :]] + \
            np.where((r != c)[None, None, :],
                     M[:, r[:, None], c[None, :]] * M[:, c[:, None], r[None, :]], 0.0)
        kk = Kp[:, r] * Kp[:, c]
        g = (G[r] * G[c] * np.where(r == c, 1.0, 2.0))[None, :]
        A = A0 - (self.gamma * self.noise.tau2 * lam ** 2)[:, None, None] * kk[:, :, None] * g[:, None, :]
        x0 = m.initial_state(values)
        e = np.zeros(len(pairs))
        e[0] = 1.0
        return ModeArrays(
            A=np.ascontiguousarray(A, dtype=np.float64),
            coupling=np.ascontiguousarray((self.gamma * self.noise.tau1 * lam)[:, None] * kk),
            source=np.ascontiguousarray((self.gamma * p.label_noise * lam)[:, None] * kk),
            # an entry standing for w_k equal modes enters the mode sums D_t and L_t w_k times
            drive=np.ascontiguousarray((w * lam)[:, None] * g),
            loss=np.ascontiguousarray(0.5 * (w * lam)[:, None] * e[None, :]),
            X0=np.ascontiguousarray(p.initial[:, None] * (x0[r] * x0[c])[None, :]),
            floor=0.5 * p.label_noise,
        )


@dataclass(frozen=True)
class ModeArrays:
    """``X_{k,t+1} = A_k X_{k,t} + coupling_k D_t + source_k``, ``D_t = sum_k drive_k . X_{k,t}``,
    ``L_t = sum_k loss_k . X_{k,t} + floor`` (X = vech of the per-mode state second moments of
    one mode of entry k; ``drive`` and ``loss`` carry the entry's multiplicity)."""

    A: np.ndarray          # (N, q, q)
    coupling: np.ndarray   # (N, q)
    source: np.ndarray     # (N, q)
    drive: np.ndarray      # (N, q)
    loss: np.ndarray       # (N, q)
    X0: np.ndarray         # (N, q)
    floor: float
