"""Analyse a real data set: spectrum and SE noise fit -> prediction -> validation (digits).

Left: the spectrum of H = X^T X / n of scikit-learn's digits (pixels / 16) and the initial error's
spectral weights lambda_k c_k (w0 = 0). Right: the predicted loss curve (SE theory with the fitted
(tau1, tau2)) against Monte Carlo SGD that samples the data set's own rows (with replacement).
"""
import numpy as np
from _common import parse

from matplotlib.figure import Figure

from sgdyn import simulate
from sgdyn import plots
from sgdyn.validate import validate
from sgdyn.simulate.features import DataSet
from sgdyn.theory.noise import estimate_tau
from sgdyn.theory.stability import critical_learning_rate

from sklearn.datasets import load_digits

args = parse(__file__, __doc__)
T, runs = (100, 200) if args.small else (1000, 2000)
X, y = load_digits(return_X_y=True)
data = DataSet(X / 16.0, y)
problem = data.problem
fit = estimate_tau(data.X)
batch, beta = 8, 0.5
crit = critical_learning_rate(problem, beta, batch, noise=fit.model)
alpha = 0.5 * crit.alpha_crit

fig = Figure(figsize=(13, 5), layout="constrained")
left, right = fig.subplots(1, 2)
k = np.arange(1, problem.n_modes + 1)
left.loglog(k, problem.eigenvalues, "o", ms=3, color=plots.OKABE_ITO["blue"], label=r"$\lambda_k$")
left.loglog(k, problem.eigenvalues * problem.initial, "s", ms=3, color=plots.OKABE_ITO["vermillion"],
            label=r"$\lambda_k c_k$ (initial error, $w_0 = 0$)")
left.set_xlabel("mode k (eigenvalues of $H = X^T X / n$, decreasing)")
left.set_ylabel("spectral weight")
left.set_title(f"digits: {problem.n_modes} modes, Tr H = {problem.trace:.3g}, fitted "
               f"$\\tau_1 = {fit.tau1:.3f}, \\tau_2 = {fit.tau2:.3f}$", fontsize=9)
left.legend(fontsize=8)
_, d = plots.loss_curves(problem, alpha, beta, batch, T, runs, 0, noise=fit.model, features=data,
                         every=max(1, T // 100), ax=right)
report = validate(problem, alpha, beta, batch, T, runs, 0, features=data, every=max(1, T // 100))
plots.save(fig, args.out, dpi=110)
print(f"tau fit: tau1 = {fit.tau1:.4f}, tau2 = {fit.tau2:.4f}, residual {fit.residual:.4f}")
print(f"alpha_crit(beta = {beta}, b = {batch}) = {crit.alpha_crit:.5g} ({crit.limited_by}); "
      f"ran at alpha = {alpha:.5g}")
print(f"validate: {report.verdict}; {report.evidence}")
