"""Signal- and noise-dominated phases of power-law problems, and the switch between them.

Left: the (nu, zeta) plane at alpha = 0.3, batch 1 (i.i.d., Gaussian features, n = 1000 modes):
the phase boundary zeta = 2 - 1/nu and the band of nu near 1 where U(1) >= 1
(``theory.asymptotics.phases``). Middle: a signal-dominated problem (kappa = 1, zeta = 2/3): the loss
follows the signal asymptote ~ t^-zeta. Right: a noise-dominated one (kappa = 3, zeta = 2): the loss
leaves the signal asymptote near the predicted transition time and follows the noise asymptote
~ t^-(2 - 1/nu). Theory (black) against Monte Carlo (mean, +-2 s.e., 5-95 % of runs); the
asymptotes and the transition time are those of ``theory.asymptotics.phases``.
"""
from _common import parse

from matplotlib.figure import Figure

from sgdyn import plots
from sgdyn.theory.asymptotics import phases
from sgdyn.theory.problem import Problem

args = parse(__file__, __doc__)
n, T, runs = (40, 200, 60) if args.small else (1000, 3000, 300)
nu, alpha = 1.5, 0.3
fig = Figure(figsize=(18, 5.2), layout="constrained")
axes = fig.subplots(1, 3)
_, plane = plots.phase_plane(alpha, 0.0, 1, n, marks=[(nu, 1 / nu, "middle"), (nu, 3 / nu, "right")],
                             ax=axes[0])
div = plane.nus[plane.phase[0] == plots.DIVERGENT]
print(f"phase plane: divergent for nu <= {div.max():.3g}" if div.size else "phase plane: no divergent nu")
for ax, kappa, seed in ((axes[1], 1.0, 1), (axes[2], 3.0, 2)):
    problem = Problem.power_law(nu, kappa, n)
    ph = phases(problem, alpha, 0.0, 1)
    guides, transition = plots.phase_guides(ph)
    _, d = plots.loss_curves(problem, alpha, 0.0, 1, T, runs, seed, every=max(1, T // 300),
                             asymptotes=guides, transition=transition, ax=ax)
    z = (d.mean[1:] - d.theory[d.steps[1:]]) / d.stderr[1:]
    print(f"kappa = {kappa:g} (zeta = {ph.signal_exponent:.3g}): {ph.phase} phase, "
          f"U(1) = {ph.noise_feedback:.4f}, transition t = "
          + ("none" if transition is None else f"{transition:.3g}")
          + f", L_T theory {d.theory[-1]:.4g}, asymptote {ph.loss_asymptote(T):.4g}, "
          f"Monte Carlo max |z| = {abs(z).max():.2f}")
plots.save(fig, args.out, dpi=110)
