"""Signal- and noise-dominated phases of power-law problems, and the switch between them.

Left: the (nu, zeta) plane at alpha = 0.2, batch 1 (i.i.d., Gaussian features, n = 300 modes):
the boundary zeta = 2 - 1/nu and the band of nu where U(1) >= 1. Middle: a signal-dominated problem
(kappa = 1, zeta = 2/3): the loss follows the signal asymptote L^GD_t / (1 - U(1)). Right: a
noise-dominated one (kappa = 3, zeta = 2): the loss leaves the signal asymptote at the predicted
transition and follows the noise asymptote ~ t^-(2 - 1/nu). Theory (black) against Monte Carlo
(mean, +-2 s.e., 5-95 % of runs).
"""
from _common import parse

from matplotlib.figure import Figure

from sgdyn import plots
from theory.problem import Problem

args = parse(__file__, __doc__)
n, T, runs = (40, 200, 60) if args.small else (300, 3000, 300)
nu, alpha = 1.5, 0.2
fig = Figure(figsize=(18, 5.2), layout="constrained")
axes = fig.subplots(1, 3)
plots.phase_plane(alpha, 0.0, 1, n, marks=[(nu, 1 / nu, "middle"), (nu, 3 / nu, "right")],
                  ax=axes[0])
for ax, kappa, seed in ((axes[1], 1.0, 1), (axes[2], 3.0, 2)):
    problem = Problem.power_law(nu, kappa, n)
    g = plots.renewal_guides(problem, alpha, 0.0, 1, T, nu)
    _, d = plots.loss_curves(problem, alpha, 0.0, 1, T, runs, seed, every=max(1, T // 300),
                             asymptotes=g.asymptotes(),
                             transition=g.transition, ax=ax)
    z = (d.mean[1:] - d.theory[d.steps[1:]]) / d.stderr[1:]
    print(f"kappa = {kappa:g} (zeta = {kappa / nu:.3g}): U(1) = {g.noise_feedback:.4f}, "
          f"transition t = {g.transition}, L_T theory {d.theory[-1]:.4g}, signal asymptote "
          f"{g.signal[-1]:.4g}, noise asymptote {g.noise[-1]:.4g}, Monte Carlo max |z| = {abs(z).max():.2f}")
plots.save(fig, args.out, dpi=110)
