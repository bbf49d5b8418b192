"""The shipped methods, each written once in the text form of ``sgdyn.theory.method_text``, with
its formula, parameters, references and a known identity (checked in ``tests/theory``).

Conventions: ``g(x)`` is the mini-batch gradient at ``x``; PyTorch's ``SGD(lr=alpha,
momentum=beta)`` is ``heavy-ball``, ``SGD(..., nesterov=True)`` is ``nesterov-pytorch``.
``ema-<name>`` (any shipped name) reports the exponential moving average of the iterates of
``<name>`` (``ema``).
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace

from sgdyn.theory.methods import Method, Parameter, cached_method


_SHIPPED: dict[str, tuple] = {}


def _shipped(name, text, references, identity) -> str:
    """Record a shipped method; it is parsed on first use (``lookup``), not at import."""
    _SHIPPED[name] = (text, tuple(references), identity)
    return name


@functools.lru_cache(maxsize=None)
def _parsed(name: str) -> Method:
    """The shipped method ``name``, parsed (sympy) only when something symbolic is asked of it
    (``cached_method``; its numeric form comes from the form cache)."""
    def build():
        from sgdyn.theory.method_text import parse_method
        text, references, identity = _SHIPPED[name]
        return replace(parse_method(text, name), references=references, identity=identity)
    return cached_method(f"catalogue\n{name}", build, (__name__, "sgdyn.theory.method_text"))


SGD = _shipped(
    "sgd", "w' = w - alpha*g(w)",
    ["Robbins & Monro (1951), A stochastic approximation method"],
    "heavy-ball at beta = 0")
HEAVY_BALL = _shipped(
    "heavy-ball", "w' = w + beta*(w - w_prev) - alpha*g(w); w_prev' = w",
    ["Polyak (1964), Some methods of speeding up the convergence of iteration methods",
     "PyTorch torch.optim.SGD(lr=alpha, momentum=beta): v' = beta v + g, w' = w - alpha v"],
    "sgd at beta = 0; PyTorch's form v' = beta*v - alpha*g(w); w' = w + v' gives the same iterates")
NESTEROV = _shipped(
    "nesterov", "w' = w + beta*(w - w_prev) - alpha*g(w + beta*(w - w_prev)); w_prev' = w",
    ["Nesterov (1983), A method for solving the convex programming problem with convergence rate "
     "O(1/k^2)", "Sutskever, Martens, Dahl, Hinton (ICML 2013), On the importance of initialization "
     "and momentum in deep learning"],
    "heavy-ball with the gradient at the look-ahead point; nesterov-pytorch's iterate is this "
    "method's look-ahead point")
NESTEROV_PYTORCH = _shipped(
    "nesterov-pytorch", "b' = beta*b + g(w); w' = w - alpha*(g(w) + beta*b')",
    ["PyTorch torch.optim.SGD(lr=alpha, momentum=beta, nesterov=True), dampening 0",
     "Bengio, Boulanger-Lewandowski, Pascanu (ICASSP 2013), Advances in optimizing recurrent "
     "networks"],
    "its iterate equals the look-ahead point w + beta*(w - w_prev) of nesterov (same alpha, beta)")
QHM = _shipped(
    "qhm", "params: nu = 0.7 in [0, 1]; b' = beta*b + (1 - beta)*g(w); "
           "w' = w - alpha*((1 - nu)*g(w) + nu*b')",
    ["Ma & Yarats (ICLR 2019), Quasi-hyperbolic momentum and Adam for deep learning"],
    "nu = 1 is heavy-ball with learning rate alpha*(1 - beta); nu = 0 is sgd")
PRECONDITIONED_SGD = _shipped(
    "preconditioned-sgd", "params: s = 0.5 in [0, 1]; precondition: lambda**(-s); "
                          "w' = w - alpha*g(w)",
    ["spectral preconditioner P(H) = H^-s, e.g. Amari, Ba, Grosse et al. (ICLR 2021), When does "
     "preconditioning help or hurt generalization?"],
    "s = 0 is sgd")
PRECONDITIONED_HEAVY_BALL = _shipped(
    "preconditioned-heavy-ball", "params: s = 0.5 in [0, 1]; precondition: lambda**(-s); "
                                 "w' = w + beta*(w - w_prev) - alpha*g(w); w_prev' = w",
    ["spectral preconditioner P(H) = H^-s on heavy ball"],
    "s = 0 is heavy-ball")

DECAY = Parameter("decay", 0.9, 0.0, 1.0, "[)",
                  "weight of the old average: wbar' = decay*wbar + (1 - decay)*w'")


def ema(base: Method) -> Method:
    """The exponential moving average of ``base``'s iterates, ``wbar' = decay*wbar + (1 -
    decay)*w'`` with ``wbar_0 = w_0``, as a method of its own whose reported iterate is ``wbar``
    (state ``(wbar, base state)``, one more dimension). ``decay = 0`` reports ``base``'s iterate."""
    import sympy as sp
    if any(p.name == DECAY.name for p in base.extra):
        raise ValueError(f"method {base.name!r} already has a parameter named {DECAY.name!r}")
    c = DECAY.symbol
    d = base.dim
    F = sp.zeros(d + 1, d + 1)
    F[0, 0] = c
    F[0, 1:] = (1 - c) * base.F[0, :]
    F[1:, 1:] = base.F
    K = sp.Matrix([(1 - c) * base.K[0]] + list(base.K))
    G = sp.Matrix([[0] + list(base.G)])
    x0 = sp.Matrix([base.x0[0]] + list(base.x0))
    text = f"{base.text}; wbar' = decay*wbar + (1 - decay)*w'; output: wbar"
    return Method(f"ema-{base.name}", F, K, G, x0,
               f"{base.description}; wbar' = decay*wbar + (1 - decay)*w'",
               base.extra + (DECAY,), base.preconditioner, base.values, text,
               ("Polyak & Juditsky (1992), Acceleration of stochastic approximation by averaging",),
               f"decay = 0 is {base.name}", ("wbar",) + base.state)


class _Catalogue(Mapping):
    """name -> Method, parsing each shipped method on first access."""

    def __getitem__(self, name):
        if name in _SHIPPED:
            return _parsed(name)
        if isinstance(name, str) and name.startswith("ema-") and name[4:] in _SHIPPED:
            return _ema_of(name[4:])
        raise KeyError(name)

    def __iter__(self):
        return iter(list(_SHIPPED) + ["ema-heavy-ball"])

    def __len__(self):
        return len(_SHIPPED) + 1


@functools.lru_cache(maxsize=None)
def _ema_of(name: str) -> Method:
    return cached_method(f"catalogue\nema-{name}", lambda: ema(_parsed(name)),
                         (__name__, "sgdyn.theory.method_text"))


METHODS = _Catalogue()


def lookup(name: str) -> Method:
    """A shipped method by name; ``ema-<name>`` for the iterate average of any shipped method."""
    try:
        return METHODS[name]
    except KeyError:
        pass
    raise ValueError(f"method must be one of {sorted(METHODS)} (or ema-<name> of one of them, or update "
                     f"equations such as \"w' = w - alpha*g(w)\"), got {name!r}")
