"""``sgdyn critical-batch``: the smallest convergent batch size at given (alpha, beta)."""
from __future__ import annotations

from sgdyn.cli import (add_problem_args, method_from_args, noise_from_args, print_result,
                       problem_from_args)

COMMAND = "critical-batch"
HELP = "smallest batch size for which the loss converges"


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p, hyper=("alpha", "beta"))
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory.stability import critical_batch
    c = critical_batch(problem_from_args(args), args.alpha, args.beta, method_from_args(args),
                       noise_from_args(args))
    if not print_result(args, {"batch_crit": c.batch_crit, "batch_crit_real": c.batch_crit_real,
                               "diverges_for_every_batch": c.diverges_for_every_batch,
                               "reason": c.reason}):
        print(c.reason)
    return 0
