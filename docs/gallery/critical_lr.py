"""The batch-dependent critical effective learning rate against 2 b / (tau1 Tr H).

Left: a power law (nu = 1.1, n = 1000, Gaussian features), momenta -0.5, 0, 0.5, 0.9. Right: the
digits data set (scikit-learn, pixels / 16) with its spectrum and fitted SE parameters
(tau1, tau2) (``theory.noise.estimate_tau``), batches without replacement from its 1797 rows. Small batches follow the reference line (the noise
feedback U(1) = 1 sets the limit); large batches saturate at the noiseless edge
2 (1 + beta) / ((1 - beta) lambda_max) (dotted).
"""
import numpy as np
from _common import parse

from matplotlib.figure import Figure

from sgdyn import plots
from sgdyn.theory.noise import estimate_tau
from sgdyn.theory.problem import Problem

args = parse(__file__, __doc__)
n, nb = (100, 5) if args.small else (1000, 17)
batches = np.unique(np.logspace(0, 4, nb).astype(int))
fig = Figure(figsize=(13, 5), layout="constrained")
left, right = fig.subplots(1, 2)
_, pl = plots.critical_lr_vs_batch(Problem.power_law(1.1, 2.0, n), batches,
                                   (-0.5, 0.0, 0.5, 0.9), ax=left)
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
X = X / 16.0
fit = estimate_tau(X)
digits = Problem.from_data(X, y, name="digits (sklearn)")
_, dg = plots.critical_lr_vs_batch(digits, batches[batches < digits.data_size], (0.0, 0.5, 0.9), noise=fit.model, ax=right)
plots.save(fig, args.out, dpi=110)
for name, d in (("power law", pl), ("digits", dg)):
    print(f"{name}: alpha_eff_crit / reference at b = 1: "
          + ", ".join(f"beta {b:g}: {r:.3f}" for b, r in zip(d.betas, d.alpha_eff_crit[:, 0] / d.reference[0])))
print(f"digits: tau1 = {fit.tau1:.3f}, tau2 = {fit.tau2:.3f} (fit residual {fit.residual:.3f})")
