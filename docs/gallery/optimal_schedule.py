"""Optimal learning-rate schedule: the schedule of T steps minimising the final expected loss.

Top: the learning rate found by L-BFGS-B on the exact adjoint gradient of the SE recursion
(``sgdyn.theory.optimal_schedule``: log alpha piecewise linear between 32 knots, every step
inside the convergent region), and the best constant, cosine (with floor) and step-decay
schedules of the same budget, each tuned on the same theory. Bottom: their expected loss curves
(theory) with Monte Carlo means +-2 standard errors (``sgdyn.simulate.run`` of the same runs).
Plain SGD, batch 1, power-law problem nu = 1.5, kappa = 1 (n = 200 modes), T = 1000.
"""
from _common import parse

from sgdyn import simulate
from sgdyn.plots_schedules import comparison_runs, plot_optimal_schedule
from sgdyn.theory import Problem, Record
from sgdyn.theory.optimal_schedule import optimal_schedule

args = parse(__file__, __doc__)
n, T, runs, knots = (20, 60, 100, 6) if args.small else (200, 1000, 2000, 32)
problem = Problem.power_law(1.5, 1.0, n)
o = optimal_schedule(problem, T, batch=1, method="sgd", knots=knots)
print(f"{o.iterations} L-BFGS-B iterations; gradient check: relative error {o.gradient_check:.1e}")
mc = {}
for i, (name, r) in enumerate(comparison_runs(problem, o, "sgd", record=Record.every(T // 50))):
    mc[name] = simulate.run(r, runs, 10 + i, progress=False)
    L = dict((b.name, b.loss) for b in o.comparison)[name]
    m = mc[name]
    print(f"{name:9s} L_T theory {L:.5g}, Monte Carlo {m.mean[-1]:.5g} +- {m.stderr[-1]:.2g} "
          f"(z = {(m.mean[-1] - L) / m.stderr[-1]:.2f})")
for name, gain in o.gain_over:
    print(f"optimum {100 * gain:.1f} % below the best {name}")
q = [0, T // 10, T // 4, T // 2, (3 * T) // 4, (9 * T) // 10, T - 1]
print("alpha_t / alpha_crit at t = " + ", ".join(f"{t}: {o.alpha[t] / o.alpha_cap:.3f}" for t in q))
plot_optimal_schedule(problem, o, "sgd", args.out, monte_carlo=mc)
print(f"wrote {args.out}")
