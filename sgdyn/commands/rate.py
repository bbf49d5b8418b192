"""``sgdyn rate``: the asymptotic rate rho of the expected loss."""
from __future__ import annotations

from sgdyn.cli import (add_problem_args, method_from_args, noise_from_args, print_result,
                       problem_from_args)

COMMAND = "rate"
HELP = "asymptotic rate rho of the expected loss (L_t ~ rho^t)"


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.stability import asymptotic_rate
    s = asymptotic_rate(problem_from_args(args), args.alpha, args.beta,
                        checks.integer("batch", args.batch, 1), method_from_args(args), noise_from_args(args))
    if not print_result(args, {"rate": s.rate, "diverges": s.diverges, "limited_by": s.limited_by,
                               "noise_feedback": s.noise_feedback, "reason": s.reason}):
        print(s.reason)
    return 0
