"""How far to trust SE on real data: thresholds and loss curves of SE (fitted tau) against the exact
finite-data dynamics on scikit-learn's bundled data sets.

Left: SE's critical learning rate (fitted tau; and the Gaussian default) and the Q4 closure's,
divided by the exact one, per data set, at batch 1 and 16 (heavy ball, beta = 0; i.i.d. batches);
the band is the 5 % margin of `sgdyn check-se`. Right: wine (standardised) at batch 1 and
0.75 x the exact threshold: the exact loss curve, Monte Carlo SGD on the rows (mean +- 2 standard
errors), SE's curve and the Q4 closure's. Prints the tables of docs/trust_se.md.
"""
import numpy as np
from _common import parse

from matplotlib.figure import Figure
from sklearn import datasets

from sgdyn import plots, simulate
from sgdyn.simulate.features import DataSet
from sgdyn.theory import exact_data as ed
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.problem import Problem
from sgdyn.theory.q4_closure import q4_loss_curve
from sgdyn.theory.se_check import check_se

args = parse(__file__, __doc__)


def problems():
    X, y = datasets.load_digits(return_X_y=True)
    yield Problem.from_rows(X, y, standardize_data=True, name="digits")
    yield Problem.from_rows(X / 16.0, y, name="digits / 16")
    for name, load in (("breast cancer", datasets.load_breast_cancer), ("wine", datasets.load_wine),
                       ("diabetes", datasets.load_diabetes)):
        X, y = load(return_X_y=True)
        yield Problem.from_rows(X, y, standardize_data=True, name=name)


settings = [(0.0, 1), (0.0, 16)] if args.small else [(0.0, 1), (0.0, 16), (0.9, 1), (0.9, 16)]
steps = 100 if args.small else 1000
rows = []
print("| data set | n x d | tau residual | beta | batch | exact alpha_crit | SE / exact | Q4 / exact "
      "| Gaussian / exact | SE curve at 0.5x | SE curve at 0.9x | Q4 curve at 0.5x | Q4 curve at 0.9x "
      "| verdict |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for p in problems():
    for beta, batch in settings:
        c = check_se(p, beta, batch, steps=steps)
        rows.append((p.name, beta, batch, c))
        d = [("diverges" if not np.isfinite(v) else f"{100 * v:+.0f} %")
             for v in c.deviation + c.q4_deviation]
        print(f"| {p.name} | {p.data.n} x {p.data.features} | {c.tau_residual:.3f} | {beta:g} | "
              f"{batch} | {c.alpha_crit_exact:.4g} | {c.threshold_ratio:.3f} | "
              f"{c.alpha_crit_q4 / c.alpha_crit_exact:.3f} | "
              f"{c.alpha_crit_gaussian / c.alpha_crit_exact:.3f} | {d[0]} | {d[1]} | {d[2]} | "
              f"{d[3]} | {c.verdict.split(':')[0]} |")

fig = Figure(figsize=(13, 5), layout="constrained")
left, right = fig.subplots(1, 2)
names = list(dict.fromkeys(r[0] for r in rows))
x = np.arange(len(names))
for j, (beta, batch) in enumerate(s for s in settings if s[0] == 0.0):
    sel = [r[3] for r in rows if r[1] == beta and r[2] == batch]
    off = (j - 0.5) * 0.3
    left.scatter(x + off, [c.threshold_ratio for c in sel], marker="o", s=40,
                 color=plots.OKABE_ITO["vermillion"], label="SE, fitted tau" if j == 0 else None,
                 facecolors="none" if batch > 1 else None)
    left.scatter(x + off, [c.alpha_crit_q4 / c.alpha_crit_exact for c in sel], marker="s", s=30,
                 color=plots.OKABE_ITO["blue"], label="Q4 closure" if j == 0 else None,
                 facecolors="none" if batch > 1 else None)
    left.scatter(x + off, [c.alpha_crit_gaussian / c.alpha_crit_exact for c in sel], marker="^",
                 s=30, color=plots.OKABE_ITO["green"], label="SE, Gaussian (1, -1)" if j == 0 else None,
                 facecolors="none" if batch > 1 else None)
left.axhspan(1 / 1.05, 1.05, color="0.85", zorder=0, label="exact +- 5 %")
left.set_yscale("log")
left.set_xticks(x, names)
left.set_ylabel(r"$\alpha_{crit}$ / exact $\alpha_{crit}$ (filled: batch 1, open: batch 16)")
left.set_title("critical learning rate against the exact finite-data threshold (beta = 0)",
               fontsize=9)
left.legend(fontsize=8)

X, y = datasets.load_wine(return_X_y=True)
wine = Problem.from_rows(X, y, standardize_data=True, name="wine")
data = DataSet(wine.data.rows, wine.data.residuals, wine.data.initial_error)
a = 0.75 * ed.exact_critical_learning_rate(wine, 0.0, 1).alpha_crit
T, runs = (300, 1000) if args.small else (1000, 4000)
tr = simulate.run(data.problem, a, 0.0, 1, T, runs, 0, features=data, every=max(1, T // 100))
exact = ed.exact_loss_curve(wine, a, 0.0, 1, T).loss
se = loss_curve(wine, a, 0.0, 1, T, noise=wine.noise).loss
q4 = q4_loss_curve(wine, a, 0.0, 1, T).loss
t = np.arange(1, T + 1)
exact, se, q4 = exact[1:], se[1:], q4[1:]
keep = tr.steps > 0
right.plot(t, exact, color=plots.OKABE_ITO["black"], lw=1.5, label="exact finite data")
right.plot(t, se, color=plots.OKABE_ITO["vermillion"], lw=1.5, ls="--",
           label=f"SE, fitted tau = ({wine.noise.tau1:.2f}, {wine.noise.tau2:.2f})")
right.plot(t, q4, color=plots.OKABE_ITO["blue"], lw=1.5, ls=":",
           label="Q4 closure (the data's fourth-moment matrix)")
right.fill_between(tr.steps[keep], (tr.mean - 2 * tr.stderr)[keep], (tr.mean + 2 * tr.stderr)[keep],
                   color=plots.OKABE_ITO["sky"], alpha=0.5, label=f"Monte Carlo on the rows ({runs} runs)")
right.set_xscale("log")
right.set_xlabel("step t")
right.set_ylabel("loss over the data set")
right.set_title(f"wine (standardised), batch 1, alpha = 0.75 x exact threshold = {a:.4f}", fontsize=9)
right.legend(fontsize=8)
plots.save(fig, args.out, dpi=110)
z = (tr.mean[keep] - exact[tr.steps[keep] - 1]) / tr.stderr[keep]
print(f"wine at 0.75x: Monte Carlo vs exact max |z| = {np.abs(z).max():.2f}; final loss exact "
      f"{exact[-1]:.4f}, SE {se[-1]:.4f}, Q4 closure {q4[-1]:.4f}, Monte Carlo {tr.mean[-1]:.4f} +- {tr.stderr[-1]:.4f}")
