"""``sgdyn phase-diagram``: the convergence region in the (alpha, beta) plane as a figure."""
from __future__ import annotations

import numpy as np

from sgdyn import plots
from sgdyn.cli import add_problem_args, noise_from_args, print_json, problem_from_args
from sgdyn.theory import checks


def add_out_arg(p):
    p.add_argument("--out", required=True, help="figure file: .png, .svg or .pdf")


def register(sub):
    p = sub.add_parser("phase-diagram", help="convergence region in the (alpha, beta) plane: "
                       "mode edge, noise boundary U(1) = 1, rate or loss-at-T contours, optimum")
    add_problem_args(p, hyper=("batch",))
    p.add_argument("--objective", choices=plots.OBJECTIVES, default="rate",
                   help="contours of the asymptotic rate, or of the loss after --steps steps")
    p.add_argument("--steps", type=float, default=None, help="horizon T (objective horizon)")
    p.add_argument("--beta-range", type=float, nargs=2, default=(-0.95, 0.95), metavar=("LO", "HI"))
    p.add_argument("--n-beta", type=float, default=77, help="momentum grid points")
    p.add_argument("--n-alpha", type=float, default=120, help="learning-rate grid points")
    add_out_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    plots.check_out(args.out)
    lo, hi = (checks.momentum("beta-range", b) for b in args.beta_range)
    if not lo < hi:
        raise ValueError(f"beta-range must have LO < HI, got {lo} {hi}")
    betas = np.linspace(lo, hi, checks.integer("n-beta", args.n_beta, 2))
    fig, d = plots.convergence_region(
        problem_from_args(args), checks.integer("batch", args.batch, 1), args.method,
        noise_from_args(args), args.objective,
        None if args.steps is None else checks.integer("steps", args.steps, 1), betas,
        checks.integer("n-alpha", args.n_alpha, 2))
    plots.save(fig, args.out)
    summary = {"out": args.out, "objective": d.objective, "alpha": d.optimum[0],
               "beta": d.optimum[1], "value": d.optimum_value,
               "noise_boundary_points": int(d.noise_boundary.shape[0])}
    if args.json:
        print_json(summary)
    else:
        what = "rate" if d.objective == "rate" else f"L_{d.steps}"
        print(f"wrote {args.out}: optimum alpha = {d.optimum[0]:.6g}, beta = {d.optimum[1]:.6g}, "
              f"{what} = {d.optimum_value:.8g}")
    return 0
