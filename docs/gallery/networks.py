"""Neural networks on digits: the theory of the NTK's kernel problem against the linearised network and the real network.

scikit-learn's digits (pixels / 16), target +1 for even digits and -1 for odd ones, a random
subset of n rows; a one-hidden-layer ReLU network in the NTK parametrisation (sigma_w = 1,
sigma_b = 0.1). The kernel problem is ``Problem.from_kernel(Theta_0, y, f0)`` with ``Theta_0`` the
network's empirical NTK at initialisation and ``f0`` its outputs there.

(a) Loss curves at alpha = 0.4 alpha_crit(beta) for beta = 0, 0.5, -0.3 (batch 8, i.i.d.
batches): the exact finite-data route (lines), SE with the kernel's fitted tau (dashed), the
linearised network (markers, +-2 s.e.) and the real network (crosses) from the same
initialisation and batches. (b) The fraction of runs whose loss ends above its start (or
overflows), against alpha / alpha_crit (exact route): linearised and real networks. (c) The
analytic NTK's spectrum on all 1797 digits and the tail sums of the target's weights, with the
power laws fitted over the window. (d) The relative gap between the real and the linearised
network's mean loss at the last step (same initialisation and batches; root mean square over
three networks) against the width, at a fixed alpha = 1 (about a tenth of alpha_crit), for ReLU
and erf.
"""
import numpy as np
from _common import parse

from matplotlib.figure import Figure
from sklearn.datasets import load_digits

from sgdyn.simulate.mlp import MLP
from sgdyn.simulate.network_training import train
from sgdyn.theory import Problem, Record, Run, solve
from sgdyn.theory.exact_data import exact_critical_learning_rate
from sgdyn.theory.ntk import Architecture, analytic_kernels
from sgdyn.theory.spectrum_fit import fit_exponents
from sgdyn.theory.stability import critical_learning_rate

args = parse(__file__, __doc__)
if args.small:
    n, width, T, runs, widths, T_crit, runs_crit, spec_rows, window, ratios, runs_gap, nets = \
        40, 32, 40, 6, (16, 32), 60, 6, 200, (5, 40), (1.0, 1.5), 2, 1
else:
    n, width, T, runs, widths, T_crit, runs_crit, spec_rows, window, ratios, runs_gap, nets = \
        200, 512, 400, 48, (64, 256, 1024, 4096), 1000, 24, 1797, (5, 100), \
        (0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0), 4, 3
batch, fraction, alpha_gap = 8, 0.4, 1.0
X_all, labels = load_digits(return_X_y=True)
X_all = X_all / 16.0
y_all = np.where(labels % 2 == 0, 1.0, -1.0)
rows = np.random.default_rng(0).choice(len(y_all), n, replace=False)
X, y = X_all[rows], y_all[rows]
record = Record.log(25)
fig = Figure(figsize=(12, 9), layout="constrained")
(ax_a, ax_b), (ax_c, ax_d) = fig.subplots(2, 2)


def kernel_problem(net):
    return Problem.from_kernel(net.ntk(X).ntk, y, f0=net.forward(X), name=f"width {net.architecture.width}")


# (a) theory vs linearised vs real network
net = MLP.init(Architecture(1, width, "relu"), X.shape[1], seed=0)
problem = kernel_problem(net)
print(f"digits subset: n = {n} rows, width {width} ({net.size} parameters); kernel problem "
      f"Tr H = {problem.trace:.4g}, L_0 = {problem.initial_loss:.4g}, fitted tau = "
      f"({problem.noise.tau1:.3f}, {problem.noise.tau2:.3f}), residual {problem.tau_residual:.3f}")
print("| beta | alpha_crit exact | alpha_crit SE | alpha | L_T exact | L_T SE | L_T linearised | "
      "L_T network |")
print("|---|---|---|---|---|---|---|---|")
colours = {0.0: "C0", 0.5: "C1", -0.3: "C2"}
crit = {}
for beta, c in colours.items():
    a_ex = exact_critical_learning_rate(problem, beta, batch).alpha_crit
    a_se = critical_learning_rate(problem, beta, batch, noise=problem.noise).alpha_crit
    crit[beta] = a_ex
    alpha = fraction * a_ex
    run = Run.build(problem, "heavy-ball", alpha=alpha, beta=beta, batch=batch, steps=T,
                    record=record)
    ex, se = solve(run, "exact-data"), solve(run)
    tr = train(net, X, y, alpha=alpha, beta=beta, batch=batch, steps=T, runs=runs, seed=1,
               record=record)
    lin, real = tr.linearized, tr.network
    s = ex.steps
    ax_a.plot(s[1:], ex.loss[1:], color=c, label=f"beta = {beta:g}: exact route")
    ax_a.plot(s[1:], se.loss[1:], color=c, ls="--", lw=0.8)
    ax_a.errorbar(s[1:], lin.mean[1:], 2 * lin.stderr[1:], color=c, fmt="o", ms=3, lw=0.8,
                  label="linearised network" if beta == 0 else None)
    ax_a.plot(s[1:], real.mean[1:], "x", color=c, ms=5, label="network" if beta == 0 else None)
    z = np.abs((lin.mean[1:] - ex.loss[1:]) / lin.stderr[1:]).max()
    print(f"| {beta:g} | {a_ex:.4g} | {a_se:.4g} | {alpha:.4g} | {ex.loss[-1]:.4g} | "
          f"{se.loss[-1]:.4g} | {lin.mean[-1]:.4g} +- {lin.stderr[-1]:.2g} | "
          f"{real.mean[-1]:.4g} +- {real.stderr[-1]:.2g} |   (max |z| linearised vs exact: {z:.1f})")
ax_a.set(xscale="log", yscale="log", xlabel="step t", ylabel="loss over the data set",
         title=f"(a) batch {batch}, alpha = {fraction} alpha_crit(beta); dashed: SE")
ax_a.legend(fontsize=7)

# (b) predicted against observed critical learning rate (beta = 0)
small_net = MLP.init(Architecture(1, widths[1], "relu"), X.shape[1], seed=0)
small = kernel_problem(small_net)
a_c = exact_critical_learning_rate(small, 0.0, batch).alpha_crit
print(f"critical learning rate, width {widths[1]}, beta = 0, batch {batch}: exact route "
      f"{a_c:.4g}, SE {critical_learning_rate(small, 0.0, batch, noise=small.noise).alpha_crit:.4g}")
print("| alpha / alpha_crit | diverged: linearised | diverged: network |")
print("|---|---|---|")
frac = {"linearised": [], "network": []}
for r in ratios:
    tr = train(small_net, X, y, alpha=r * a_c, batch=batch, steps=T_crit, runs=runs_crit, seed=2,
               record=Record.at([0, T_crit]))
    frac["linearised"].append(tr.diverged_fraction("linearized"))
    frac["network"].append(tr.diverged_fraction("network"))
    print(f"| {r:g} | {frac['linearised'][-1]:.2f} | {frac['network'][-1]:.2f} |")
ax_b.plot(ratios, frac["linearised"], "o-", label="linearised network")
ax_b.plot(ratios, frac["network"], "x--", label="network")
ax_b.axvline(1.0, color="k", lw=0.8)
ax_b.set(xlabel="alpha / alpha_crit (exact route of the kernel problem)",
         ylabel="fraction of runs diverged", title=f"(b) width {widths[1]}, beta = 0, batch {batch}")
ax_b.legend(fontsize=8)

# (c) power-law exponents of the analytic NTK on the digits
spec_idx = np.random.default_rng(1).choice(len(y_all), spec_rows, replace=False)
analytic = Problem.from_kernel(analytic_kernels(X_all[spec_idx], Architecture(1, width, "relu")).ntk,
                               y_all[spec_idx])
fit = fit_exponents(analytic, *window)
k = np.arange(1, analytic.n_modes + 1)
tails = np.cumsum((analytic.eigenvalues * analytic.initial)[::-1])[::-1]
ax_c.loglog(k, analytic.eigenvalues, ".", ms=2, label="NTK eigenvalues lambda_k")
ax_c.loglog(k, tails, ".", ms=2, label="tail sums of lambda_k c_k")
kw = np.arange(window[0], window[1] + 1)
ax_c.loglog(kw, fit.eigenvalue_scale * kw ** -fit.nu, "k-", lw=1)
ax_c.loglog(kw, fit.tail_scale * kw ** -fit.kappa, "k-", lw=1, label="fitted power laws")
ax_c.set(xlabel="mode k", title=f"(c) analytic NTK, {spec_rows} digits: nu = {fit.nu:.2f} +- "
         f"{fit.nu_uncertainty:.2f}, kappa = {fit.kappa:.2f} +- {fit.kappa_uncertainty:.2f}")
ax_c.legend(fontsize=8)
print(f"exponents over modes {window[0]}..{window[1]} of the analytic NTK on {spec_rows} digits: "
      f"nu = {fit.nu:.3f} +- {fit.nu_uncertainty:.3f}, kappa = {fit.kappa:.3f} +- "
      f"{fit.kappa_uncertainty:.3f}; zeta = kappa/nu = {fit.zeta:.3f} +- {fit.zeta_uncertainty:.3f} "
      f"vs 2 - 1/nu = {fit.noise_exponent:.3f}: {fit.phase}")

# (d) the gap between the network and its linearisation against the width
print(f"| activation | width | relative gap at t = {T}, RMS over {nets} networks | per network |")
print("|---|---|---|---|")
for act, style in (("relu", "o-"), ("erf", "s-")):
    rms = []
    for w in widths:
        rel = []
        for s in range(nets):
            net_w = MLP.init(Architecture(1, w, act), X.shape[1], seed=s)
            tr = train(net_w, X, y, alpha=alpha_gap, batch=batch, steps=T, runs=runs_gap, seed=3,
                       record=Record.at([0, T]))
            rel.append(tr.gap.mean[-1] / tr.linearized.mean[-1])
        rms.append(float(np.sqrt(np.mean(np.square(rel)))))
        print(f"| {act} | {w} | {rms[-1]:.2g} | {', '.join(f'{g:+.2g}' for g in rel)} |")
    ax_d.loglog(widths, rms, style, label=act)
w_arr = np.array(widths, dtype=float)
ax_d.loglog(w_arr, rms[0] * (w_arr / w_arr[0]) ** -0.5, "k:", lw=1, label="1/sqrt(width)")
ax_d.loglog(w_arr, rms[0] * (w_arr / w_arr[0]) ** -1.0, "k--", lw=1, label="1/width")
ax_d.set(xlabel="width", ylabel=f"|L_network - L_linearised| / L_linearised at t = {T}",
         title=f"(d) beta = 0, alpha = {alpha_gap:g}, batch {batch}: RMS over {nets} networks")
ax_d.legend(fontsize=8)
fig.savefig(args.out, dpi=90)
print(f"wrote {args.out}")
