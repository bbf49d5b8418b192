"""``sgdyn schedule optimize``: the learning-rate (and momentum) schedule of a budget of steps that
minimises the final expected loss of the SE theory (``sgdyn.theory.optimal_schedule``), against
the best constant, cosine and step-decay schedules of the same budget; ``--runs`` confirms the
four by Monte Carlo, ``--out`` draws them."""
from __future__ import annotations

from sgdyn.cli import (add_problem_args, method_from_args, noise_from_args, print_result,
                       problem_from_args, seed_arg)

COMMAND = "schedule"
HELP = "schedules: optimize (the learning-rate schedule minimising L_T, vs constant/cosine/step)"


def _pair(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        lo, hi = (float(v) for v in parts)
    except ValueError:
        raise ValueError(f"--beta-range must read LOW,HIGH (e.g. 0,0.95), got {text!r}") from None
    return lo, hi


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    actions = p.add_subparsers(dest="action", required=True)
    o = actions.add_parser(
        "optimize", help="the schedule minimising the loss after --steps steps",
        description="Minimise the expected loss L_T of the SE theory over the learning-rate "
                    "schedule alpha_0..alpha_{T-1} (piecewise linear in log alpha between --knots "
                    "knots; with --momentum also beta_t) by L-BFGS-B on the exact adjoint "
                    "gradient, every step inside the convergent region; compare with the best "
                    "constant, cosine (with floor) and step-decay schedules tuned on the same "
                    "theory (docs/schedules.md).")
    add_problem_args(o, hyper=("beta", "batch"))
    o.add_argument("--steps", type=float, required=True, help="the budget of steps T >= 2")
    o.add_argument("--knots", type=float, default=24,
                   help="knots of the piecewise-linear log schedule (default 24; T frees every "
                        "step)")
    o.add_argument("--momentum", action="store_true",
                   help="optimise a momentum schedule too (within --beta-range)")
    o.add_argument("--beta-range", default="0,0.95",
                   help="LOW,HIGH: the momenta allowed with --momentum (default 0,0.95)")
    o.add_argument("--runs", type=float, default=0,
                   help="Monte Carlo runs per schedule to confirm the theory (default 0: none)")
    o.add_argument("--seed", type=seed_arg, default=0, help="Monte Carlo seed (default 0)")
    o.add_argument("--out", default=None, help="figure file (.png/.svg/.pdf): schedules and curves")
    o.set_defaults(func=run_optimize)


def run_optimize(args) -> int:
    from sgdyn.figures import check_out
    from sgdyn.theory import checks
    from sgdyn.theory.optimal_schedule import optimal_schedule
    out = check_out(args.out) if args.out else None
    steps = checks.integer("steps", args.steps, 2)
    batch = checks.integer("batch", args.batch, 1)
    runs = checks.integer("runs", args.runs, 0)
    problem = problem_from_args(args)
    method = method_from_args(args)
    noise = noise_from_args(args)
    o = optimal_schedule(problem, steps, batch, args.beta, method, momentum=args.momentum,
                         beta_range=_pair(args.beta_range),
                         knots=checks.integer("knots", args.knots, 2), noise=noise)
    mc = _monte_carlo(problem, o, method, noise, runs, args.seed) if runs else {}
    if out:
        from sgdyn.plots_schedules import plot_optimal_schedule
        plot_optimal_schedule(problem, o, method, out, noise=noise,
                              monte_carlo=mc)
    result = o.to_dict()
    result["monte_carlo"] = {k: {"mean": float(v.mean[-1]), "stderr": float(v.stderr[-1]),
                                 "runs": v.runs, "seed": v.seed} for k, v in mc.items()}
    if out:
        result["figure"] = out
    if print_result(args, result, {"step": list(range(steps)), "alpha": o.alpha, "beta": o.beta}):
        return 0
    bound = "alpha_t/(1 - beta_t)" if args.momentum else "alpha_t"
    print(f"problem {problem.name}: {steps} steps, batch {batch}, {o.method}; objective "
          f"{o.objective}; {o.knots} knots; {bound} <= {o.alpha_cap:.6g}")
    print(f"L-BFGS-B: {o.iterations} iterations, {o.evaluations} gradient evaluations "
          f"({o.message}); gradient check against central differences: relative error {o.gradient_check:.1e}")
    gains = dict(o.gain_over)
    for b in o.comparison:
        line = f"  {b.name:9s} L_T = {b.loss:.6e}"
        if b.name != "optimal":
            line += f" (optimum {100 * gains[b.name]:.3g} % lower)"
        if b.name in mc:
            m = mc[b.name]
            line += (f"; Monte Carlo {m.mean[-1]:.6e} +- {m.stderr[-1]:.2e} "
                     f"(z = {(m.mean[-1] - b.loss) / m.stderr[-1]:.2f})")
        print(line + (f": {b.schedule}" if b.name != "optimal" else ""))
    j = [0, steps // 4, steps // 2, (3 * steps) // 4, steps - 1]
    print("optimal alpha_t at t = " + ", ".join(f"{t}: {o.alpha[t]:.4g}" for t in j))
    if args.momentum:
        print("optimal beta_t at t = " + ", ".join(f"{t}: {o.beta[t]:.4g}" for t in j))
    if out:
        print(f"figure: {out}")
    return 0


def _monte_carlo(problem, o, method, noise, runs, seed) -> dict:
    """Each schedule simulated with its own seed (``seed + i``): independent estimates."""
    from sgdyn import simulate
    from sgdyn.plots_schedules import comparison_runs
    from sgdyn.theory import Record
    return {name: simulate.run(r, runs, seed + i)
            for i, (name, r) in enumerate(comparison_runs(
                problem, o, method, noise=noise, record=Record.every(max(1, o.steps // 50))))}
