"""ModeSystem: one problem, method, batch and noise model, validated and turned into per-mode
numeric arrays (from the symbolic derivation) that every numeric route shares."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdyn.theory import checks
from sgdyn.theory.methods import Method, get_method
from sgdyn.theory.noise import GAUSSIAN, NoiseModel, batch_factor
from sgdyn.theory.problem import Problem
from sgdyn.theory.symbolic import Derivation, derive


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
        return cls(problem, m, a, bt, bsz, noise, batch_factor(bsz, problem.data_size))

    @property
    def derivation(self) -> Derivation:
        return derive(self.method)

    @property
    def args(self) -> tuple:
        """Per-mode numeric arguments (alpha, beta, lambda_k, gamma, tau1, tau2, extra parameters
        of the method) of the lambdified forms."""
        return (self.alpha, self.beta, self.problem.eigenvalues, self.gamma,
                self.noise.tau1, self.noise.tau2) + extra_arguments(self.method)

    def arrays(self) -> "ModeArrays":
        nf = self.derivation.numeric
        lam = self.problem.eigenvalues
        w = self.problem.multiplicity
        A = nf.A(*self.args)
        kk = nf.kk(*self.args)
        g = nf.g_row(*self.args)
        x0 = nf.x0(*self.args)
        return ModeArrays(
            A=np.ascontiguousarray(A, dtype=np.float64),
            coupling=np.ascontiguousarray((self.gamma * self.noise.tau1 * lam)[:, None] * kk),
            source=np.ascontiguousarray((self.gamma * self.problem.label_noise * lam)[:, None] * kk),
            # an entry standing for w_k equal modes enters the mode sums D_t and L_t w_k times
            drive=np.ascontiguousarray((w * lam)[:, None] * g),
            loss=np.ascontiguousarray(0.5 * (w * lam)[:, None] * nf.e_row()[None, :]),
            X0=np.ascontiguousarray(self.problem.initial[:, None] * x0),
            floor=0.5 * self.problem.label_noise,
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
