"""``sgdyn critical-lr``: the largest convergent learning rate at given momentum and batch.

Routes: ``se`` (default; the SE noise model, ``theory.stability``), ``exact-data`` (the exact
finite-data dynamics on a data problem's rows, ``theory.exact_data``) and ``q4-closure`` (the
diagonal closure with the rows' fourth moments; ``q4`` is the same, the name ``sgdyn loss`` uses). On a data problem the SE answer is checked once
against the exact dynamics (the exact noise radius at SE's alpha_crit): a one-line warning on
stderr when it fails."""
from __future__ import annotations

import sys

from sgdyn.cli import (add_problem_args, method_from_args, noise_from_args, noise_source,
                       print_result, problem_from_args)

COMMAND = "critical-lr"
HELP = "critical learning rate alpha_crit(beta, batch)"
ROUTES = ("se", "exact-data", "q4-closure", "q4")   # q4: the name of the loss route


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p, hyper=("beta", "batch"))
    p.add_argument("--route", choices=ROUTES, default="se",
                   help="se (default): SE noise model; exact-data: exact finite-data dynamics on "
                        "the problem's rows; q4-closure (or q4): diagonal closure with their fourth moments")
    p.set_defaults(func=run)


def warn(message: str) -> None:
    print("sgdyn: warning: " + " ".join(message.split()), file=sys.stderr)


def se_trust(problem, method, beta, batch, noise, alpha_se):
    """The trust check of an SE answer on a data problem (None on a spectrum-only problem);
    warns on stderr when it fails."""
    if problem.data is None or problem.data_size not in (None, problem.data.n):
        return None
    from sgdyn.theory.exact_data import trust_check
    tc = trust_check(problem, beta, batch, method, noise=noise, alpha_se=alpha_se)
    if not tc.passes:
        warn(tc.message)
    return tc


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.stability import critical_learning_rate
    problem = problem_from_args(args)
    method = method_from_args(args)
    batch = checks.integer("batch", args.batch, 1)
    if args.route != "se":
        from sgdyn.theory.exact_data import (exact_critical_learning_rate,
                                             q4_critical_learning_rate, require_data)
        if args.tau1 is not None or args.tau2 is not None:
            raise ValueError(f"--tau1/--tau2 set the SE noise model; route {args.route!r} uses the "
                             "data's own moments")
        require_data(problem)
        fn = exact_critical_learning_rate if args.route == "exact-data" else q4_critical_learning_rate
        c = fn(problem, args.beta, batch, method)
        text = c.reason if args.route == "exact-data" else \
            c.reason.replace("exact finite-data route", "Q4 closure")
        if not print_result(args, {"alpha_crit": c.alpha_crit, "alpha_eff_crit": c.alpha_eff_crit,
                                   "limited_by": c.limited_by, "mode_edge": c.mode_edge,
                                   "route": args.route, "sampling": c.sampling,
                                   "rows": problem.data.n, "reason": text}):
            print(text)
        return 0
    noise = noise_from_args(args)
    c = critical_learning_rate(problem, args.beta, batch, method, noise)
    tc = se_trust(problem, method, args.beta, batch, noise, c.alpha_crit)
    out = {"alpha_crit": c.alpha_crit, "alpha_eff_crit": c.alpha_eff_crit,
           "limited_by": c.limited_by, "mode_edge": c.mode_edge, "mode_share": c.mode_share,
           "reason": c.reason, "route": "se", "tau1": noise.tau1, "tau2": noise.tau2}
    if tc is not None:
        out.update(trust_radius=tc.radius, trust_overshoot=tc.overshoot, trusted=tc.passes)
    if not print_result(args, out):
        print(c.reason)
        print(f"route: SE, tau = ({noise.tau1:.6g}, {noise.tau2:.6g}) from {noise_source(args)}"
              + ("" if tc is None else f"; {tc.summary}"))
    return 0
