"""Negative momentum at small batch: the rate optimum against the loss-at-horizon optimum.

Power law nu = 1.5, kappa = 3 (zeta = 2 > 2 - 1/nu: noise-dominated), the core paper's tau = 1,
batches of 1 drawn without replacement from N = 100 points. Left: contours of the asymptotic rate
rho; its optimum has beta* > 0. Right: contours of the loss after T steps relative to its optimum;
the optimum sits at beta* < 0 and beats the best plain-SGD run (white circle) by about 1 %.
See docs/negative_momentum.md.
"""
import numpy as np
from _common import parse

from matplotlib.figure import Figure

from sgdyn import plots
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem

args = parse(__file__, __doc__)
n, T, nb, na = (40, 200, 9, 12) if args.small else (100, 600, 41, 60)
problem = Problem.power_law(1.5, 3.0, n, data_size=n)
noise = NoiseModel(1.0, 1.0)
fig = Figure(figsize=(13, 5), layout="constrained")
left, right = fig.subplots(1, 2)
_, rate = plots.convergence_region(problem, 1, noise=noise, betas=np.linspace(-0.9, 0.95, nb),
                                   n_alpha=2 * na, ax=left)
_, hor = plots.convergence_region(problem, 1, noise=noise, objective="horizon", steps=T,
                                  betas=np.linspace(-0.8, 0.8, nb), n_alpha=na, ax=right)
left.set_title(f"asymptotic rate: optimum beta* = {rate.optimum[1]:+.3f}", fontsize=10)
right.set_title(f"loss after T = {T} steps: optimum beta* = {hor.optimum[1]:+.3f}", fontsize=10)
fig.suptitle(f"{problem.name}, batch 1 of N = {n} (no replacement), tau = 1", fontsize=11)
plots.save(fig, args.out, dpi=110)
print(f"rate optimum (alpha, beta) = ({rate.optimum[0]:.4g}, {rate.optimum[1]:+.4f}), rho = {rate.optimum_value:.8f}")
print(f"horizon optimum (alpha, beta) = ({hor.optimum[0]:.4g}, {hor.optimum[1]:+.4f}), L_T = {hor.optimum_value:.5g}")
