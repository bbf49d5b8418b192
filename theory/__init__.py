"""sgdyn.theory: the mathematics of mini-batch (momentum) SGD on linear models.

Conventions follow THEORY.md section 0: population loss ``L = 1/2 sum_k lambda_k E[e_k^2]``
(+ ``sigma^2/2`` with label noise), heavy ball ``v <- beta v - alpha g, w <- w + v``.
"""
from sgdyn.theory.problem import Problem
from sgdyn.theory.noise import NoiseModel, GAUSSIAN
from sgdyn.theory.methods import Method, get_method, METHODS

__all__ = ["Problem", "NoiseModel", "GAUSSIAN", "Method", "get_method", "METHODS"]
