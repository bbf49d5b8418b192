"""``sgdyn critical-lr``: the largest convergent learning rate at given momentum and batch."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, noise_from_args, print_result, problem_from_args

COMMAND = "critical-lr"
HELP = "critical learning rate alpha_crit(beta, batch)"


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p, hyper=("beta", "batch"))
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.stability import critical_learning_rate
    c = critical_learning_rate(problem_from_args(args), args.beta,
                               checks.integer("batch", args.batch, 1), args.method,
                               noise_from_args(args))
    if not print_result(args, {"alpha_crit": c.alpha_crit, "alpha_eff_crit": c.alpha_eff_crit,
                               "limited_by": c.limited_by, "mode_edge": c.mode_edge,
                               "mode_share": c.mode_share, "reason": c.reason}):
        print(c.reason)
    return 0
