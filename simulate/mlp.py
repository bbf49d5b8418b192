"""A finite fully-connected network (``sgdyn.theory.ntk.Architecture``) in numpy: its outputs,
its Jacobian with respect to every parameter, and its empirical neural tangent kernel.

The layer map and the two parametrisations are those of ``sgdyn.theory.ntk`` (module docstring):
``h^l = m_w W^l x^{l-1} + m_b b^l``, ``x^l = phi(h^l)``, ``f = h^{L+1}``. The parameters are kept
raw (``W^l ~ N(0, s_w^2)``, ``b^l ~ N(0, s_b^2)``) and flattened layer by layer as
``[W^1 (row-major), b^1, W^2, b^2, .., W^{L+1}, b^{L+1}]``.

Back-propagation gives ``delta^l = df/dh^l`` per input: ``delta^{L+1} = 1``,
``delta^l = (delta^{l+1} m_w W^{l+1}) * phi'(h^l)``; then ``df/dW^l_jk = m_w delta^l_j
x^{l-1}_k`` and ``df/db^l_j = m_b delta^l_j``. The empirical NTK ``Theta = J J^T`` is summed
layer by layer without forming ``J`` (n x P, e.g. 1797 x 295 000 for two hidden layers of 512 on
digits):

    Theta = sum_l m_w^2 (Delta^l Delta^l'^T) o (X^{l-1} X^{l-1}'^T) + m_b^2 Delta^l Delta^l'^T

(``o`` the entrywise product): ``O(n^2 width)`` BLAS work per layer and ``O(n width)`` memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from sgdyn.theory import budget, checks
from sgdyn.theory.ntk import Architecture, Kernels, check_inputs


def _phi(activation: str, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(phi(h), phi'(h))``."""
    if activation == "relu":
        return np.maximum(h, 0.0), (h > 0).astype(np.float64)
    if activation == "tanh":
        t = np.tanh(h)
        return t, 1.0 - t * t
    return special.erf(h), 2.0 / np.sqrt(np.pi) * np.exp(-h * h)


@dataclass(frozen=True)
class MLP:
    """One network: its architecture, input dimension and flat raw parameter vector."""

    architecture: Architecture
    input_dim: int
    params: np.ndarray

    def __post_init__(self):
        if not isinstance(self.architecture, Architecture):
            raise ValueError("architecture must be a sgdyn.theory.ntk.Architecture, got "
                             f"{type(self.architecture).__name__}")
        d = checks.integer("input_dim", self.input_dim, 1)
        p = checks.real_values("params", self.params)
        size = sum(o * i + o for i, o in self._layers(d))
        if p.shape != (size,) or not np.all(np.isfinite(p)):
            raise ValueError(f"params must be a finite vector of {size} numbers, got shape {p.shape}")
        object.__setattr__(self, "input_dim", d)
        p = p.copy()
        p.setflags(write=False)
        object.__setattr__(self, "params", p)

    def _layers(self, d: int | None = None) -> list[tuple[int, int]]:
        w = self.architecture.layer_widths(self.input_dim if d is None else d)
        return list(zip(w[:-1], w[1:]))

    @classmethod
    def init(cls, architecture: Architecture, input_dim: int, seed: int = 0) -> "MLP":
        """A network at initialisation: raw parameters drawn with ``numpy``'s PCG64 from
        ``seed``, ``W ~ N(0, s_w^2)``, ``b ~ N(0, s_b^2)`` (``theory.ntk`` module docstring)."""
        if not isinstance(architecture, Architecture):
            raise ValueError("architecture must be a sgdyn.theory.ntk.Architecture, got "
                             f"{type(architecture).__name__}")
        seed = checks.integer("seed", seed, 0)
        widths = architecture.layer_widths(input_dim)
        size = sum(o * i + o for i, o in zip(widths[:-1], widths[1:]))
        budget.memory("width", 8.0 * size * 3, f"a network of {size} parameters")
        rng = np.random.default_rng(seed)
        parts = []
        for i, o in zip(widths[:-1], widths[1:]):
            _, _, s_w, s_b = architecture.multipliers(i)
            parts += [s_w * rng.standard_normal(o * i), s_b * rng.standard_normal(o)]
        return cls(architecture, input_dim, np.concatenate(parts))

    @property
    def size(self) -> int:
        """Number of parameters P."""
        return self.params.size

    def layers(self, params=None) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
        """``[(W^l, b^l, m_w, m_b)]``: views into ``params`` (default the network's own)."""
        p = self.params if params is None else params
        out, at = [], 0
        for i, o in self._layers():
            m_w, m_b, _, _ = self.architecture.multipliers(i)
            out.append((p[at:at + o * i].reshape(o, i), p[at + o * i:at + o * i + o], m_w, m_b))
            at += o * i + o
        return out

    def _forward(self, X):
        """Post-activations ``x^0 .. x^L``, derivatives ``phi'(h^1) .. phi'(h^L)`` and ``f``."""
        acts, slopes = [X], []
        layers = self.layers()
        for W, b, m_w, m_b in layers[:-1]:
            x, dx = _phi(self.architecture.activation, m_w * acts[-1] @ W.T + m_b * b)
            acts.append(x)
            slopes.append(dx)
        W, b, m_w, m_b = layers[-1]
        return acts, slopes, (m_w * acts[-1] @ W.T + m_b * b)[:, 0]

    def _backward(self, slopes, n: int):
        """``delta^1 .. delta^{L+1}`` (each n x n_l) from the derivatives of the forward pass."""
        layers = self.layers()
        delta = [np.ones((n, 1))]
        for (W, _, m_w, _), dx in zip(layers[:0:-1], slopes[::-1]):
            delta.insert(0, (delta[0] @ (m_w * W)) * dx)
        return delta

    def _inputs(self, X) -> np.ndarray:
        X = check_inputs("X", X)
        if X.shape[1] != self.input_dim:
            raise ValueError(f"X must have {self.input_dim} columns (the network's inputs), got "
                             f"{X.shape[1]}")
        return X

    def forward(self, X) -> np.ndarray:
        """``f(x_i)`` for the rows of ``X`` (n x d)."""
        return self._forward(self._inputs(X))[2]

    def jacobian(self, X) -> np.ndarray:
        """``J_ip = df(x_i) / d params_p`` (n x P), columns in the order of ``params``."""
        X = self._inputs(X)
        budget.memory("X", 8.0 * X.shape[0] * self.size * 2,
                      f"a {X.shape[0]} x {self.size} Jacobian")
        acts, slopes, _ = self._forward(X)
        delta = self._backward(slopes, X.shape[0])
        blocks = []
        for (_, _, m_w, m_b), x, dl in zip(self.layers(), acts, delta):
            blocks += [(m_w * dl[:, :, None] * x[:, None, :]).reshape(X.shape[0], -1), m_b * dl]
        return np.concatenate(blocks, axis=1)

    def ntk(self, X, X2=None) -> Kernels:
        """``ntk``: the empirical ``Theta = J J'^T`` between the rows of ``X`` and ``X2`` (default
        ``X``), summed layer by layer (module docstring); ``nngp``: the finite-width estimate
        ``sigma_w^2 <x^L, x^L'> / width + sigma_b^2`` of ``Sigma^{L+1}`` from the last hidden
        layer."""
        X = self._inputs(X)
        X2 = X if X2 is None else self._inputs(X2)
        same = X2 is X
        budget.memory("X", 8.0 * (X.shape[0] + X2.shape[0]) * self.architecture.width *
                      (self.architecture.depth + 1) * 2 + 16.0 * X.shape[0] * X2.shape[0],
                      f"the {X.shape[0]} x {X2.shape[0]} empirical NTK")
        acts1, slopes1, _ = self._forward(X)
        acts2, slopes2, _ = (acts1, slopes1, None) if same else self._forward(X2)
        d1 = self._backward(slopes1, X.shape[0])
        d2 = d1 if same else self._backward(slopes2, X2.shape[0])
        theta = np.zeros((X.shape[0], X2.shape[0]))
        for (_, _, m_w, m_b), x1, x2, g1, g2 in zip(self.layers(), acts1, acts2, d1, d2):
            back = g1 @ g2.T
            theta += back * (m_w * m_w * (x1 @ x2.T) + m_b * m_b)
        arch = self.architecture
        last1, last2 = acts1[-1], acts2[-1]
        nngp = arch.weight_std ** 2 * (last1 @ last2.T) / last1.shape[1] + arch.bias_std ** 2
        return Kernels(nngp, theta, arch, "empirical")
