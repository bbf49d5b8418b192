"""``sgdyn critical-batch``: the smallest convergent batch size at given (alpha, beta)."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, noise_from_args, print_json, problem_from_args
from sgdyn.theory.stability import critical_batch


def register(sub):
    p = sub.add_parser("critical-batch", help="smallest batch size for which the loss converges")
    add_problem_args(p, hyper=("alpha", "beta"))
    p.set_defaults(func=run)


def run(args) -> int:
    c = critical_batch(problem_from_args(args), args.alpha, args.beta, args.method,
                       noise_from_args(args))
    if args.json:
        print_json({"batch_crit": c.batch_crit, "batch_crit_real": c.batch_crit_real,
                    "diverges_for_every_batch": c.diverges_for_every_batch})
    else:
        print(c.reason)
    return 0
