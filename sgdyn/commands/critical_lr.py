"""``sgdyn critical-lr``: the largest convergent learning rate at given momentum and batch."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, noise_from_args, print_json, problem_from_args
from sgdyn.theory import checks
from sgdyn.theory.stability import critical_learning_rate


def register(sub):
    p = sub.add_parser("critical-lr", help="critical learning rate alpha_crit(beta, batch)")
    add_problem_args(p, hyper=("beta", "batch"))
    p.set_defaults(func=run)


def run(args) -> int:
    c = critical_learning_rate(problem_from_args(args), args.beta,
                               checks.integer("batch", args.batch, 1), args.method,
                               noise_from_args(args))
    if args.json:
        print_json({"alpha_crit": c.alpha_crit, "alpha_eff_crit": c.alpha_eff_crit,
                    "limited_by": c.limited_by, "mode_edge": c.mode_edge,
                    "mode_share": c.mode_share})
    else:
        print(c.reason)
    return 0
