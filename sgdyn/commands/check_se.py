"""``sgdyn check-se``: how far to trust SE on a data problem (``theory.se_check.check_se``): SE with
the fitted tau and the Q4 closure against the exact finite-data dynamics, thresholds and loss
curves side by side,
with a plain verdict string starting with ``safe`` or ``unsafe`` (both exit 0: the verdict is the
answer; bad input exits 2)."""
from __future__ import annotations

from sgdyn.cli import (add_method_args, add_noise_args, add_output_args, method_from_args,
                       noise_from_args, print_result, problem_from_args)

COMMAND = "check-se"
HELP = ("SE (fitted tau) against the exact finite-data dynamics on a data problem: thresholds, "
        "curves, verdict")


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--problem", required=True, help="data problem file (sgdyn problem from-data)")
    p.add_argument("--beta", type=float, default=0.0, help="momentum in (-1, 1) (default 0)")
    p.add_argument("--batch", type=float, required=True, help="mini-batch size b >= 1")
    add_method_args(p)
    add_noise_args(p)
    p.add_argument("--data-size", type=float, default=None,
                   help="batches without replacement (must be the number of rows)")
    p.add_argument("--steps", type=float, default=1000,
                   help="horizon of the loss-curve comparison (default 1000)")
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.exact_data import require_data
    from sgdyn.theory.se_check import check_se
    problem = require_data(problem_from_args(args))
    noise = noise_from_args(args) if (args.tau1, args.tau2) != (None, None) else None
    c = check_se(problem, args.beta, checks.integer("batch", args.batch, 1), method_from_args(args),
                 noise=noise, steps=checks.integer("steps", args.steps, 1))
    if print_result(args, {"verdict": c.verdict, "safe": c.safe, "alpha_crit_se": c.alpha_crit_se,
                    "alpha_crit_exact": c.alpha_crit_exact, "alpha_crit_q4": c.alpha_crit_q4,
                    "alpha_crit_gaussian": c.alpha_crit_gaussian,
                    "threshold_ratio": c.threshold_ratio, "radius_at_se": c.radius_at_se,
                    "tau1": c.tau1, "tau2": c.tau2, "tau_residual": c.tau_residual,
                    "fractions": list(c.fractions), "curve_deviation": list(c.deviation),
                    "curve_deviation_step": list(c.deviation_step),
                    "q4_curve_deviation": list(c.q4_deviation),
                    "q4_curve_deviation_step": list(c.q4_deviation_step), "steps": c.steps, "beta": c.beta,
                    "batch": c.batch, "method": c.method, "sampling": c.sampling}):
        return 0
    res = "" if c.tau_residual is None else f", fit residual {c.tau_residual:.3f}"
    how = "i.i.d." if c.sampling == "iid" else "without replacement"
    print(f"{problem.name}: {problem.data.n} rows, {problem.n_modes} modes; {c.method}, beta = "
          f"{c.beta:g}, batch = {c.batch} ({how}); SE tau = ({c.tau1:.4g}, {c.tau2:.4g}){res}")
    print(c.table)
    print(f"exact noise radius at SE's alpha_crit: {c.radius_at_se:.4g} "
          "(> 1: the dynamics diverge there)")
    print(f"verdict: {c.verdict}")
    return 0
