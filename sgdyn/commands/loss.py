"""``sgdyn loss``: the expected loss curve from the theory."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, noise_from_args, print_json, problem_from_args
from sgdyn.theory import checks
from sgdyn.theory.dynamics import ROUTES, loss_curve


def register(sub):
    p = sub.add_parser("loss", help="expected loss curve L_0..L_T (SE theory)")
    add_problem_args(p)
    p.add_argument("--steps", type=float, required=True, help="number of steps T >= 0")
    p.add_argument("--route", choices=ROUTES, default="recursion")
    p.set_defaults(func=run)


def run(args) -> int:
    problem = problem_from_args(args)
    curve = loss_curve(problem, args.alpha, args.beta, checks.integer("batch", args.batch, 1),
                       checks.integer("steps", args.steps, 0), method=args.method,
                       noise=noise_from_args(args), route=args.route)
    if args.json:
        print_json({"loss": curve.loss.tolist(), "diverges": curve.diverges, "rate": curve.rate,
                    "limited_by": curve.limited_by, "reason": curve.reason,
                    "stopped_early": curve.stopped_early})
        return 0
    L = curve.loss
    print(f"problem {problem.name}: {problem.n_modes} modes, Tr H = {problem.trace:.6g}, "
          f"label noise {problem.label_noise:g}")
    print(f"{args.method}, alpha = {args.alpha:g}, beta = {args.beta:g}, batch = {int(args.batch)}, "
          f"tau = ({args.tau1:g}, {args.tau2:g})")
    for t in sorted({0, len(L) // 100, len(L) // 10, len(L) - 1}):
        print(f"  L_{t} = {L[t]:.6e}")
    print(curve.reason)
    if curve.stopped_early:
        print(f"stopped at step {len(L) - 1} of {curve.steps_requested} before float overflow")
    return 0
