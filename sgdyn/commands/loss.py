"""``sgdyn loss``: the expected loss curve from the theory."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, modes_text, noise_from_args, print_result, problem_from_args

COMMAND = "loss"
HELP = "expected loss curve L_0..L_T (SE theory)"


def register(sub):
    from sgdyn.theory.dynamics import ROUTES
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p)
    p.add_argument("--steps", type=float, required=True, help="number of steps T >= 0")
    p.add_argument("--route", choices=ROUTES, default="recursion")
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.dynamics import loss_curve
    problem = problem_from_args(args)
    curve = loss_curve(problem, args.alpha, args.beta, checks.integer("batch", args.batch, 1),
                       checks.integer("steps", args.steps, 0), method=args.method,
                       noise=noise_from_args(args), route=args.route)
    result = {"loss": curve.loss.tolist(), "diverges": curve.diverges, "rate": curve.rate,
              "limited_by": curve.limited_by, "reason": curve.reason,
              "stopped_early": curve.stopped_early}
    if print_result(args, result, {"step": range(curve.loss.size), "loss": curve.loss}):
        return 0
    L = curve.loss
    print(f"problem {problem.name}: {modes_text(problem)}, Tr H = {problem.trace:.6g}, "
          f"label noise {problem.label_noise:g}")
    print(f"{args.method}, alpha = {args.alpha:g}, beta = {args.beta:g}, batch = {int(args.batch)}, "
          f"tau = ({args.tau1:g}, {args.tau2:g})")
    for t in sorted({0, len(L) // 100, len(L) // 10, len(L) - 1}):
        print(f"  L_{t} = {L[t]:.6e}")
    print(curve.reason)
    if curve.stopped_early:
        print(f"stopped at step {len(L) - 1} of {curve.steps_requested} before float overflow")
    return 0
