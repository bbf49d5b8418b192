"""Numeric generating functions of the loss, from the lambdified symbolic transfer functions.

With ``S_t``-type sequences summed as ``F(z) = sum_t F_t z^t`` (THEORY.md section 1):
``U(z) = sum_k u(z; lambda_k)`` (noise feedback), ``V(z) = sum_k c_k v(z; lambda_k)`` (signal),
``W(z)`` (label-noise source), the loss ``L(z)`` (``theory.symbolic``). From them: the radius of
convergence of ``L(z)`` and so the asymptotic rate ``rho`` (``L_t ~ rho^t``):
``rho = max( max_k spectral radius of A_k , 1 / z* )`` with ``z*`` the smallest positive root of
``U(z) = 1`` (U has non-negative Taylor coefficients for valid noise, so by Pringsheim's theorem the
root nearest the origin is real and positive).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from theory.system import ModeSystem

_CHUNK = 1 << 22   # complex evaluations per block (memory ~ 100 MB at most)


class GeneratingFunctions:
    """Evaluate U, V, W (and the loss-channel analogues) at arrays of complex or real z."""

    def __init__(self, system: ModeSystem):
        self.system = system
        self.forms = system.derivation.numeric
        self._lam = system.problem.eigenvalues
        self._c = system.problem.initial

    def _sum(self, fn, z, weights=None):
        z = np.asarray(z)
        flat = z.ravel()
        out = np.empty(flat.shape, dtype=np.result_type(flat, float))
        a, b, _, g, t1, t2 = self.system.args
        step = max(1, _CHUNK // self._lam.size)
        for i in range(0, flat.size, step):
            vals = fn(flat[i:i + step, None], a, b, self._lam[None, :], g, t1, t2)
            out[i:i + step] = vals.sum(axis=1) if weights is None else vals @ weights
        return out.reshape(z.shape)

    def U(self, z):
        return self._sum(self.forms.u, z)

    def V(self, z):
        return self._sum(self.forms.v, z, self._c)

    def W(self, z):
        return self._sum(self.forms.w, z)

    def loss(self, z):
        """``L(z) = sum_t L_t z^t`` including the label-noise floor."""
        f = self.forms
        s2 = self.system.problem.label_noise
        U = self.U(z)
        D = self.V(z) + (s2 * self.W(z) if s2 else 0.0)
        floor = s2 / (2.0 * (1.0 - np.asarray(z))) if s2 else 0.0
        if f.gradient_at_iterate:
            return D / (2.0 * (1.0 - U)) + floor
        VL = self._sum(f.v_loss, z, self._c)
        UL = self._sum(f.u_loss, z)
        WL = self._sum(f.w_loss, z) if s2 else 0.0
        return VL + s2 * WL + UL * D / (1.0 - U) + floor


@dataclass(frozen=True)
class Singularities:
    """Where the loss generating function stops converging, and what that means."""

    mode_radius: float      # 1 / max_k spectral radius(A_k)   (inf if every A_k is nilpotent)
    worst_mode: int         # index of the mode with the largest spectral radius
    z_star: float           # smallest positive root of U(z) = 1 (inf if none before mode_radius)
    noise_feedback: float   # U(1) (inf if a mode is already unstable at z = 1)
    rate: float             # rho = 1 / min(mode_radius, z_star): L_t ~ rho^t
    limited_by: str         # "noise" or "mode stability"

    @property
    def diverges(self) -> bool:
        return self.rate > 1.0

    @property
    def reason(self) -> str:
        if self.limited_by == "mode stability":
            what = (f"mode {self.worst_mode} has second-moment spectral radius "
                    f"{1.0 / self.mode_radius:.6g}")
        elif np.isfinite(self.noise_feedback):
            what = f"noise feedback U(1) = {self.noise_feedback:.6g}, U(z*) = 1 at z* = {self.z_star:.10g}"
        else:
            what = f"noise feedback U(z*) = 1 at z* = {self.z_star:.10g} < 1"
        verdict = "diverges" if self.diverges else "converges"
        return f"{verdict}: rate {self.rate:.10g} per step, limited by {self.limited_by} ({what})"


def spectral_radii(system: ModeSystem) -> np.ndarray:
    """Spectral radius of each per-mode second-moment map A_k (tau2 self-term included)."""
    A = system.derivation.numeric.A(*system.args)
    return np.abs(np.linalg.eigvals(A)).max(axis=-1)


def singularities(system: ModeSystem) -> Singularities:
    radii = spectral_radii(system)
    worst = int(np.argmax(radii))
    mode_radius = np.inf if radii[worst] == 0 else 1.0 / radii[worst]
    gf = GeneratingFunctions(system)

    def excess(x):
        return float(gf.U(np.array(x))) - 1.0

    U1 = float(gf.U(np.array(1.0))) if mode_radius > 1.0 else np.inf
    # Bracket the first crossing of U = 1 below the first pole: U(0) = 0 and U increases.
    if np.isfinite(mode_radius):
        # stop 1e-12 short of the pole: closer, its denominator can round to exactly 0
        grid = mode_radius * (1.0 - np.logspace(-0.3, -12, 60))
    else:
        grid = np.logspace(-3, 6, 60)
    z_star, lo = np.inf, 0.0
    for x in grid:
        if excess(x) >= 0.0:
            z_star = optimize.brentq(excess, lo, x, xtol=1e-300, rtol=4 * np.finfo(float).eps,
                                     maxiter=500) if lo < x else x
            break
        lo = x
    if z_star < mode_radius:
        rate, limited_by = 1.0 / z_star, "noise"
    else:
        rate, limited_by = (0.0 if np.isinf(mode_radius) else 1.0 / mode_radius), "mode stability"
    return Singularities(mode_radius, worst, z_star, U1, rate, limited_by)
