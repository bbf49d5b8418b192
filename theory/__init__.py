"""sgdyn.theory: the mathematics of mini-batch (momentum) SGD on linear models.

Conventions (``docs/theory.md``, "Conventions"): population loss
``L = 1/2 sum_k lambda_k E[e_k^2]`` (+ ``sigma^2/2`` with label noise), heavy ball
``v <- beta v - alpha g, w <- w + v``.

The names below are imported on first use (PEP 562), so ``import sgdyn.theory.problem`` does not
pay for sympy: a command that never derives anything symbolically never imports it.
"""
from __future__ import annotations

import importlib

_LAZY = {"Problem": "problem", "NoiseModel": "noise", "GAUSSIAN": "noise", "Method": "methods",
         "Parameter": "methods", "get_method": "methods", "METHODS": "catalogue", "Run": "run",
         "Record": "record", "Sampling": "sampling", "solve": "dynamics"}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
