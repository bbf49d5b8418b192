"""sgdyn.theory: the mathematics of mini-batch (momentum) SGD on linear models.

Conventions (``docs/theory.md``): population loss ``L = 1/2 sum_k lambda_k E[e_k^2]``
(+ ``sigma^2/2`` with label noise), heavy ball ``v <- beta v - alpha g, w <- w + v``.
"""
from sgdyn.theory.problem import Problem
from sgdyn.theory.noise import NoiseModel, GAUSSIAN
from sgdyn.theory.methods import Method, Parameter, get_method

__all__ = ["Problem", "NoiseModel", "GAUSSIAN", "Method", "Parameter", "get_method", "METHODS"]


def __getattr__(name):
    # the shipped methods are parsed from their text form on first use, not at import
    if name == "METHODS":
        from sgdyn.theory.catalogue import METHODS
        return METHODS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
