"""``sgdyn optimize``: the (alpha, beta) with the fastest asymptotic rate, negative beta included."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, noise_from_args, print_json, problem_from_args
from sgdyn.theory import checks
from sgdyn.theory.stability import optimal_rate


def register(sub):
    p = sub.add_parser("optimize", help="rate-optimal (alpha, beta) for a batch size")
    add_problem_args(p, hyper=("batch",))
    p.set_defaults(func=run)


def run(args) -> int:
    o = optimal_rate(problem_from_args(args), checks.integer("batch", args.batch, 1), args.method,
                     noise_from_args(args))
    if args.json:
        print_json({"alpha": o.alpha, "beta": o.beta, "rate": o.rate, "alpha_eff": o.alpha_eff,
                    "alpha_crit": o.alpha_crit, "limited_by": o.limited_by})
    else:
        print(f"alpha = {o.alpha:.10g}, beta = {o.beta:.10g} (alpha_eff = {o.alpha_eff:.10g}, "
              f"alpha_crit at this beta = {o.alpha_crit:.10g}): rate {o.rate:.12g} per step, "
              f"limited by {o.limited_by}")
    return 0
