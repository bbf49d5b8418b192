"""Sampling like training: batches drawn afresh against shuffled epochs on standardised wine.

SGD and heavy ball (beta = 0.5), alpha = 0.05, on the 178 standardised rows of wine. Batches
without replacement within each step, drawn independently across steps, are what the exact
finite-data route (``solve(run, "exact-data")``) computes; the Monte Carlo of the same ``Run``
checks it. Shuffled epochs (each row once per epoch, ``Sampling.epochs``) correlate the batches
across steps and have no second-moment theory: only the Monte Carlo runs them. The table is the
excess loss (above sigma^2 / 2, since L = E (y - <w, x>)^2 / 2) of epochs divided by that of
independent batches at the last step; the figure shows heavy ball's excess loss curves.
"""
import numpy as np
from _common import parse

from matplotlib.figure import Figure
from sklearn import datasets

from sgdyn import simulate
from sgdyn.theory import Problem, Record, Run, Sampling, solve

args = parse(__file__, __doc__)
T, runs, batches = (120, 300, (8, 89)) if args.small else (600, 2000, (8, 32, 89))
X, y = datasets.load_wine(return_X_y=True)
wine = Problem.from_rows(X, y, standardize_data=True)
n, floor = wine.data.n, 0.5 * wine.label_noise
record = Record.every(max(1, T // 60))
fig = Figure(figsize=(7, 4.6), layout="constrained")
ax = fig.subplots()
print(f"| method | batch | epochs / independent batches at t = {T} | max abs z (MC vs exact) |")
print("|---|---|---|---|")
for method, beta in (("sgd", 0.0), ("heavy-ball", 0.5)):
    for j, batch in enumerate(batches):
        wor = Run.build(wine, method, alpha=0.05, beta=beta, batch=batch, steps=T,
                        sampling=Sampling.without_replacement(n), record=record)
        th = solve(wor, "exact-data")
        mc = simulate.run(wor, runs, 7)
        ep = simulate.run(wor.replace(sampling=Sampling.epochs(n)), runs, 7)
        z = np.abs((mc.mean[1:] - th.loss[1:]) / mc.stderr[1:]).max()
        ratio = (ep.mean[-1] - floor) / (th.loss[-1] - floor)
        print(f"| {method} | {batch} | {ratio:.2f} | {z:.1f} |")
        if method != "heavy-ball":
            continue
        c = f"C{j}"
        ax.plot(th.steps[1:], th.loss[1:] - floor, color=c, label=f"b = {batch}: exact route")
        ax.fill_between(mc.steps[1:], mc.mean[1:] - floor - 2 * mc.stderr[1:],
                        mc.mean[1:] - floor + 2 * mc.stderr[1:], color=c, alpha=0.3,
                        label=f"b = {batch}: Monte Carlo, independent batches, +-2 s.e.")
        ax.plot(ep.steps[1:], ep.mean[1:] - floor, color=c, ls="--",
                label=f"b = {batch}: Monte Carlo, shuffled epochs")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("step t")
ax.set_ylabel("excess loss L_t - sigma^2 / 2")
ax.set_title(f"wine (standardised, {n} rows), heavy ball alpha = 0.05, beta = 0.5")
ax.legend(fontsize=7)
fig.savefig(args.out, dpi=110)
print(f"wrote {args.out}")
