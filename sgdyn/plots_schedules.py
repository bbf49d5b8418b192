"""The optimal-schedule figure (``sgdyn schedule optimize --out``, ``docs/gallery``): the
learning-rate schedules on top, their expected loss curves below (theory, log scale, and Monte
Carlo means with +-2 standard errors where given)."""
from __future__ import annotations

import numpy as np

from sgdyn.figures import check_out, new_figure, save


def comparison_runs(problem, result, method, *, noise=None, sampling=None, record=None) -> list:
    """``[(name, Run), ..]``: the optimum (its per-step alpha and beta) and each tuned baseline
    (its text form at ``result.baseline_beta``) of ``result`` (``OptimalSchedule``) as runs."""
    from sgdyn.theory import Record, Run
    from sgdyn.theory.schedules import parse_shape
    record = Record.at([result.steps]) if record is None else record
    common = dict(batch=result.batch, steps=result.steps, noise=noise, sampling=sampling,
                  record=record)
    beta = result.beta if np.ptp(result.beta) > 0 else float(result.beta[0])
    runs = [("optimal", Run.build(problem, method, alpha=result.alpha, beta=beta, **common))]
    for b in result.comparison[1:]:
        runs.append((b.name, Run.build(problem, method, alpha=parse_shape(b.schedule),
                                       beta=result.baseline_beta, **common)))
    return runs


def plot_optimal_schedule(problem, result, method, path, *, noise=None, sampling=None,
                          monte_carlo: dict | None = None, title: str = ""):
    """Schedules (top) and loss curves (bottom, log-log) of the optimum and its baselines;
    ``monte_carlo`` maps a name to its ``Trajectories`` (drawn as +-2 s.e. bands)."""
    from sgdyn.theory import Record, solve
    check_out(path)
    fig, (ax_s, ax_l) = new_figure((6.4, 7.0), 2, 1)
    T = result.steps
    record = Record.every(max(1, T // 200))
    t = np.arange(T)
    for i, (name, r) in enumerate(comparison_runs(problem, result, method, noise=noise,
                                                  sampling=sampling, record=record)):
        color = f"C{i}"
        lw = 2.2 if name == "optimal" else 1.2
        alpha_t = r.hyperparameters(0, T)["alpha"]
        ax_s.plot(t, alpha_t, color=color, lw=lw, label=name)
        curve = solve(r)
        loss = dict((b.name, b.loss) for b in result.comparison)[name]
        ax_l.semilogy(curve.steps[1:], curve.loss[1:], color=color, lw=lw,
                    label=f"{name}: L_T = {loss:.4g}")
        mc = (monte_carlo or {}).get(name)
        if mc is not None:
            ax_l.fill_between(mc.steps[1:], (mc.mean - 2 * mc.stderr)[1:],
                              (mc.mean + 2 * mc.stderr)[1:], color=color, alpha=0.3)
    eff = "alpha_eff" if np.ptp(result.beta) > 0 else "alpha"
    ax_s.axhline(result.alpha_cap, color="k", ls=":", lw=1, label=f"bound on {eff}_t (alpha_crit)")
    ax_s.set_xlabel("step t")
    ax_s.set_ylabel("learning rate alpha_t")
    ax_s.set_title(title or f"{problem.name}: schedules of {T} steps, batch {result.batch}")
    ax_s.legend(fontsize=8)
    ax_l.set_xlabel("step t")
    ax_l.set_ylabel("expected loss")
    ax_l.legend(fontsize=8)
    ax_l.grid(True, which="both", alpha=0.3)
    save(fig, path)
