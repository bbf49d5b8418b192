"""Schedules: theory and Monte Carlo of one run description.

Left: the schedules (warm-up for 10 % of the run, then a cosine decay of the learning rate to 1 %
of its peak; momentum rising linearly from 0.5 to 0.9; the batch doubling at mid-run). Right: the
expected loss of heavy ball and Nesterov under them (``sgdyn.theory.solve``, the SE recursion with
per-step maps, exact for Gaussian features) against Monte Carlo runs of the same ``Run``
(``sgdyn.simulate.run``: mean, +-2 standard errors), and the constant learning rate at the peak
for reference. Power-law problem nu = 1.5, kappa = 1 (n = 200 modes).
"""
import numpy as np
from _common import parse

from matplotlib.figure import Figure

from sgdyn import simulate
from sgdyn.theory import Problem, Record, Run, solve

args = parse(__file__, __doc__)
n, T, runs = (30, 200, 200) if args.small else (200, 2000, 2000)
problem = Problem.power_law(1.5, 1.0, n)
sched = dict(alpha=f"warmup({T // 10})+cosine(0.3,floor=0.003)", beta="linear(0.5,0.9)",
             batch=f"double(2,milestones=[{T // 2}])")
record = Record.every(max(1, T // 100))
fig = Figure(figsize=(12, 4.6), layout="constrained")
ax_s, ax_l = fig.subplots(1, 2)
r0 = Run.build(problem, "heavy-ball", steps=T, **sched)
vals = r0.hyperparameters(0, T)
t = np.arange(T)
ax_s.plot(t, vals["alpha"], label="alpha_t")
ax_s.plot(t, vals["beta"] / 10, label="beta_t / 10")
ax_s.plot(t, vals["batch"] / 100, label="b_t / 100")
ax_s.set_xlabel("step t")
ax_s.set_title("the schedules")
ax_s.legend()
for method, color in (("heavy-ball", "C0"), ("nesterov", "C1")):
    r = Run.build(problem, method, steps=T, record=record, **sched)
    th = solve(r)
    mc = simulate.run(r, runs, 1 if method == "heavy-ball" else 2)
    z = (mc.mean[1:] - th.loss[1:]) / mc.stderr[1:]
    ax_l.plot(th.steps, th.loss, color=color, label=f"{method}: theory")
    ax_l.fill_between(mc.steps, mc.mean - 2 * mc.stderr, mc.mean + 2 * mc.stderr, color=color,
                      alpha=0.3, label=f"{method}: Monte Carlo, +-2 s.e.")
    print(f"{method}: L_T theory {th.loss[-1]:.5g}, Monte Carlo {mc.mean[-1]:.5g} +- "
          f"{mc.stderr[-1]:.2g}, max |z| = {np.abs(z).max():.2f} over {z.size} checkpoints")
const = solve(Run.build(problem, "heavy-ball", alpha=0.3, beta=0.5, batch=2, steps=T, record=record))
ax_l.plot(const.steps, const.loss, "k--", label="heavy ball, constant alpha = 0.3, beta = 0.5, b = 2")
print(f"constant heavy ball: L_T {const.loss[-1]:.5g}")
ax_l.set_xscale("log")
ax_l.set_yscale("log")
ax_l.set_xlabel("step t")
ax_l.set_ylabel("expected loss")
ax_l.set_title(f"{problem.name}, Gaussian features")
ax_l.legend(fontsize=8)
fig.savefig(args.out, dpi=110)
print(f"wrote {args.out}")
