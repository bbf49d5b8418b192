"""``sgdyn rate``: the asymptotic rate rho (L_t ~ rho^t) of the expected loss."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, noise_from_args, print_json, problem_from_args
from sgdyn.theory import checks
from sgdyn.theory.stability import asymptotic_rate


def register(sub):
    p = sub.add_parser("rate", help="asymptotic rate rho of the expected loss (L_t ~ rho^t)")
    add_problem_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    s = asymptotic_rate(problem_from_args(args), args.alpha, args.beta,
                        checks.integer("batch", args.batch, 1), args.method, noise_from_args(args))
    if args.json:
        print_json({"rate": s.rate, "diverges": s.diverges, "limited_by": s.limited_by,
                    "noise_feedback": s.noise_feedback, "reason": s.reason})
    else:
        print(s.reason)
    return 0
