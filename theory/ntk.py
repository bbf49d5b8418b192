"""Infinite-width kernels of fully-connected networks: the NNGP and the neural tangent kernel.

**Architecture** (``Architecture``): ``depth`` hidden layers of ``width`` units, activation
``phi`` (ReLU, tanh or erf), one linear output. Layer ``l = 1..L+1`` (``n_0 = d`` inputs,
``n_1 .. n_L = width``, ``n_{L+1} = 1``) computes

    h^l = m_w^l W^l x^{l-1} + m_b b^l,     x^0 = x,   x^l = phi(h^l),   f(x) = h^{L+1}

with ``W^l ~ N(0, s_w^2)``, ``b^l ~ N(0, s_b^2)`` entrywise. The two parametrisations have the
same law of ``f`` at initialisation and differ in what gradient descent moves:

* ``"ntk"`` (Jacot, Gabriel, Hongler, NeurIPS 2018): ``m_w = sigma_w / sqrt(n_{l-1})``,
  ``m_b = sigma_b``, ``s_w = s_b = 1``;
* ``"standard"``: ``m_w = m_b = 1``, ``s_w = sigma_w / sqrt(n_{l-1})``, ``s_b = sigma_b``.

**NNGP** (Neal 1996; Lee et al., ICLR 2018). As the widths grow the pre-activations become
Gaussian processes with covariance

    Sigma^1(x, x')     = sigma_w^2 <x, x'> / d + sigma_b^2
    Sigma^{l+1}(x, x') = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2
    Sigma'^{l+1}       = sigma_w^2 E[phi'(u) phi'(v)]

with ``(u, v) ~ N(0, [[Sigma^l(x,x), Sigma^l(x,x')], [., Sigma^l(x',x')]])``; the NNGP of the
network is ``Sigma^{L+1}``.

**NTK** ``Theta(x, x') = <grad_theta f(x), grad_theta f(x')>`` at initialisation. Layer ``l``'s
parameters contribute ``(weights) + (biases)`` times ``P_l = prod_{m=l+1}^{L+1} Sigma'^m`` (the
back-propagated ``sum_j delta_j(x) delta_j(x')``, *derived* layer by layer):

* NTK parametrisation: ``(Sigma^l - sigma_b^2) + sigma_b^2``, so ``Theta^1 = Sigma^1``,
  ``Theta^{l+1} = Sigma^{l+1} + Sigma'^{l+1} Theta^l`` (Jacot et al. 2018, theorem 1), a limit
  independent of the width;
* standard parametrisation: the raw weights carry ``n_{l-1} / sigma_w^2`` times the NTK one and
  the raw biases ``1 / sigma_b^2``, so ``Theta^1 = (d / sigma_w^2)(Sigma^1 - sigma_b^2) + 1``,
  ``Theta^{l+1} = (n_l / sigma_w^2)(Sigma^{l+1} - sigma_b^2) + 1 + Sigma'^{l+1} Theta^l``: the
  infinite-width value of every layer's term at the given widths (Sohl-Dickstein, Novak,
  Schoenholz, Lee 2020), growing like the width.

**Gaussian expectations.** ReLU: the arc-cosine kernels of degree 1 and 0 (Cho and Saul, NeurIPS
2009), ``E[relu(u) relu(v)] = sqrt(ab) (sin t + (pi - t) cos t) / (2 pi)``,
``E[1(u>0) 1(v>0)] = (pi - t) / (2 pi)``, ``cos t = c / sqrt(ab)``. erf: ``E[erf(u) erf(v)] =
(2/pi) arcsin(2c / sqrt((1 + 2a)(1 + 2b)))`` (Williams, NeurIPS 1997) and ``E[erf'(u) erf'(v)] =
(4/pi) / sqrt((1 + 2a)(1 + 2b) - 4c^2)``. tanh has no closed form: tensor Gauss-Hermite
quadrature over the 2 x 2 covariance (``gaussian_pair_expectation``), ``u = sqrt(a) z1``,
``v = (c / sqrt(a)) z1 + sqrt(b - c^2/a) z2``, exact for polynomials of degree ``2 q - 1`` in
each of ``z1, z2``; tested against the erf closed forms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from sgdyn.theory import budget, checks
from sgdyn.theory.display import Result

ACTIVATIONS = ("relu", "tanh", "erf")
PARAMETRIZATIONS = ("ntk", "standard")
MAX_DEPTH = 32
MAX_WIDTH = 1 << 16
QUADRATURE_NODES = 64          # per dimension at unit variance; more for wider Gaussians
MAX_QUADRATURE_NODES = 256
_QUADRATURE_BLOCK = 1 << 22    # integrand values per quadrature block (32 MB)


@dataclass(frozen=True)
class Architecture(Result):
    """A fully-connected network: ``depth`` hidden layers of ``width`` units (module docstring)."""

    depth: int
    width: int
    activation: str = "relu"
    parametrization: str = "ntk"
    weight_std: float = 1.0          # sigma_w
    bias_std: float = 0.1            # sigma_b

    def __post_init__(self):
        object.__setattr__(self, "depth", checks.integer("depth", self.depth, 1, MAX_DEPTH))
        object.__setattr__(self, "width", checks.integer("width", self.width, 1, MAX_WIDTH))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if self.parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}, "
                             f"got {self.parametrization!r}")
        object.__setattr__(self, "weight_std", checks.positive("weight_std", self.weight_std))
        object.__setattr__(self, "bias_std", checks.nonnegative("bias_std", self.bias_std))

    def layer_widths(self, input_dim: int) -> tuple[int, ...]:
        """``(n_0, .., n_{L+1}) = (d, width, .., width, 1)``."""
        d = checks.integer("input_dim", input_dim, 1)
        return (d,) + (self.width,) * self.depth + (1,)

    def multipliers(self, fan_in: int) -> tuple[float, float, float, float]:
        """``(m_w, m_b, s_w, s_b)`` of a layer with ``fan_in`` inputs (module docstring)."""
        scale = self.weight_std / np.sqrt(fan_in)
        if self.parametrization == "ntk":
            return scale, self.bias_std, 1.0, 1.0
        return 1.0, 1.0, scale, self.bias_std


@dataclass(frozen=True)
class Kernels(Result):
    """The NNGP ``Sigma^{L+1}`` and NTK ``Theta^{L+1}`` on pairs of inputs (module docstring)."""

    nngp: np.ndarray
    ntk: np.ndarray
    architecture: Architecture
    route: str                 # "analytic" (infinite width) or "empirical" (one network)


def _activation_terms(activation: str):
    if activation == "tanh":
        return np.tanh, lambda u: 1.0 - np.tanh(u) ** 2
    if activation == "erf":
        return special.erf, lambda u: 2.0 / np.sqrt(np.pi) * np.exp(-u * u)
    raise ValueError(f"activation must be one of tanh, erf for quadrature, got {activation!r}")


def quadrature_nodes(variance: float) -> int:
    """Gauss-Hermite nodes for tanh at pre-activation variances up to ``variance``: the nodes
    near 0 are ``~ pi / sqrt(2 q)`` apart in ``z``, ``sqrt(variance)`` times that in ``u``, and
    tanh's poles at ``+- i pi / 2`` set how fine that must be; ``64 ceil(variance)`` nodes (at most
    256) keep the measured relative error of ``E[tanh'(u)^2]`` near 2e-8 at variance 0.8, 1e-7 at
    2 (and 1e-3 at 5 with 64 nodes: the reason for the growth)."""
    return int(min(MAX_QUADRATURE_NODES, QUADRATURE_NODES * max(1, int(np.ceil(variance)))))


def gaussian_pair_expectation(f, g, a, b, c, nodes: int = QUADRATURE_NODES) -> np.ndarray:
    """``E[f(u) g(v)]`` for ``(u, v) ~ N(0, [[a, c], [c, b]])``, elementwise over arrays ``a, b,
    c`` (``a > 0``): tensor Gauss-Hermite quadrature with ``nodes`` points per dimension
    (module docstring). ``f``, ``g`` act elementwise on arrays."""
    nodes = checks.integer("nodes", nodes, 2, MAX_QUADRATURE_NODES)
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / np.sqrt(2.0 * np.pi)
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c)))
    out = np.empty(a.shape)
    flat_a, flat_b, flat_c, flat_out = a.ravel(), b.ravel(), c.ravel(), out.reshape(-1)
    chunk = max(1, _QUADRATURE_BLOCK // (nodes * nodes))
    for lo in range(0, flat_a.size, chunk):
        sl = slice(lo, lo + chunk)
        sa = np.sqrt(flat_a[sl])[:, None]
        slope = (flat_c[sl][:, None] / sa)
        rest = np.sqrt(np.maximum(flat_b[sl] - flat_c[sl] ** 2 / flat_a[sl], 0.0))[:, None, None]
        fu = f(sa * z[None, :])                                            # (m, q)
        gv = g(slope[:, :, None] * z[None, :, None] + rest * z[None, None, :])   # (m, q1, q2)
        flat_out[sl] = np.einsum("i,mi,mij,j->m", w, fu, gv, w)
    return out


def _relu_terms(a, b, c):
    norm = np.sqrt(a * b)
    cos_t = np.clip(np.divide(c, norm, out=np.zeros_like(c), where=norm > 0), -1.0, 1.0)
    t = np.arccos(cos_t)
    return (norm * (np.sqrt(1.0 - cos_t ** 2) + (np.pi - t) * cos_t) / (2.0 * np.pi),
            (np.pi - t) / (2.0 * np.pi))


def _erf_terms(a, b, c):
    prod = (1.0 + 2.0 * a) * (1.0 + 2.0 * b)
    return (2.0 / np.pi * np.arcsin(np.clip(2.0 * c / np.sqrt(prod), -1.0, 1.0)),
            4.0 / np.pi / np.sqrt(np.maximum(prod - 4.0 * c * c, 1e-300)))


def activation_expectations(activation: str, a, b, c, nodes: int | None = None):
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for ``(u, v) ~ N(0, [[a, c], [c, b]])``: closed
    forms for ReLU and erf, quadrature for tanh (module docstring) with ``nodes`` per dimension
    (default ``quadrature_nodes`` of the largest variance)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c)))
    if activation == "relu":
        return _relu_terms(a, b, c)
    if activation == "erf":
        return _erf_terms(a, b, c)
    if activation == "tanh":
        f, df = _activation_terms("tanh")
        if nodes is None:
            nodes = quadrature_nodes(max(float(a.max()), float(b.max())))
        return (gaussian_pair_expectation(f, f, a, b, c, nodes),
                gaussian_pair_expectation(df, df, a, b, c, nodes))
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")


def analytic_kernels(X, architecture: Architecture, X2=None, nodes: int | None = None) -> Kernels:
    """The infinite-width NNGP and NTK of ``architecture`` between the rows of ``X`` (n x d) and
    of ``X2`` (m x d, default ``X``): the recursions of the module docstring. ``O(n m depth)``
    closed-form evaluations (tanh: times ``nodes^2``, default ``quadrature_nodes``)."""
    if not isinstance(architecture, Architecture):
        raise ValueError(f"architecture must be a sgdyn.theory.ntk.Architecture, got "
                         f"{type(architecture).__name__}")
    X = check_inputs("X", X)
    X2 = X if X2 is None else check_inputs("X2", X2)
    if X2.shape[1] != X.shape[1]:
        raise ValueError(f"X2 must have the {X.shape[1]} columns of X, got {X2.shape[1]}")
    arch = architecture
    n, m, d = X.shape[0], X2.shape[0], X.shape[1]
    budget.memory("X", 8.0 * n * m * 8 + 8.0 * 3 * _QUADRATURE_BLOCK,
                  f"the {n} x {m} analytic kernels")
    sw2, sb2 = arch.weight_std ** 2, arch.bias_std ** 2
    widths = arch.layer_widths(d)
    standard = arch.parametrization == "standard"
    sigma = sw2 * (X @ X2.T) / d + sb2
    diag1 = sw2 * np.einsum("ij,ij->i", X, X) / d + sb2
    diag2 = sw2 * np.einsum("ij,ij->i", X2, X2) / d + sb2
    theta = (d / sw2) * (sigma - sb2) + 1.0 if standard else sigma
    for layer in range(1, arch.depth + 1):
        a, b = diag1[:, None], diag2[None, :]
        e_phi, e_dphi = activation_expectations(arch.activation, a, b, sigma, nodes)
        d1, _ = activation_expectations(arch.activation, diag1, diag1, diag1, nodes)
        d2, _ = activation_expectations(arch.activation, diag2, diag2, diag2, nodes)
        sigma = sw2 * e_phi + sb2
        diag1, diag2 = sw2 * d1 + sb2, sw2 * d2 + sb2
        top = sigma if not standard else (widths[layer] / sw2) * (sigma - sb2) + 1.0
        theta = top + sw2 * e_dphi * theta
    return Kernels(sigma, theta, arch, "analytic")


def check_inputs(name: str, X) -> np.ndarray:
    """``X`` as a finite, non-empty 2-D float array, or a ``ValueError`` naming ``name``."""
    X = checks.real_values(name, X)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array (samples x features), got shape "
                         f"{X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} must not contain NaN or inf")
    return X

