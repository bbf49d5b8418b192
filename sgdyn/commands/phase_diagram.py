"""``sgdyn phase-diagram``: the convergence region in the (alpha, beta) plane as a figure, one
panel per batch size; ``--json`` / ``--csv`` carry the grid behind it."""
from __future__ import annotations

from sgdyn.cli import (add_problem_args, method_from_args, noise_from_args, print_result,
                       problem_from_args)

COMMAND = "phase-diagram"
HELP = ("convergence region in the (alpha, beta) plane: mode edge, noise boundary U(1) = 1, rate "
        "or loss-at-T contours, optimum; one panel per batch size")


def add_out_arg(p):
    p.add_argument("--out", required=True, help="figure file: .png, .svg or .pdf")


def _batches(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"batch must be a batch size or comma-separated batch sizes, got {text!r}") \
            from None


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p, hyper=())
    p.add_argument("--batch", required=True,
                   help="mini-batch size b >= 1, or several (comma-separated: one panel each)")
    p.add_argument("--objective", choices=("rate", "horizon"), default="rate",
                   help="contours of the asymptotic rate, or of the loss after --steps steps")
    p.add_argument("--steps", type=float, default=None, help="horizon T (objective horizon)")
    p.add_argument("--beta-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="momentum range (default [-0.95, 0.95], widened to contain the optimum)")
    p.add_argument("--n-beta", type=float, default=77, help="momentum grid points")
    p.add_argument("--n-alpha", type=float, default=120, help="learning-rate grid points")
    add_out_arg(p)
    p.set_defaults(func=run)


def _panel(d) -> dict:
    return {"batch": d.batch, "objective": d.objective, "alpha": d.optimum[0],
            "beta": d.optimum[1], "value": d.optimum_value,
            "noise_boundary_points": int(d.noise_boundary.shape[0]),
            "grid": {"alphas": d.alphas, "betas": d.betas, "values": d.values,
                     "alpha_crit": d.alpha_crit, "mode_edge": d.mode_edge,
                     "boundary_values": d.boundary_values, "noise_boundary": d.noise_boundary}}


def run(args) -> int:
    import numpy as np

    from sgdyn import plots
    from sgdyn.theory import checks
    plots.check_out(args.out)
    batches = [checks.integer("batch", b, 1) for b in _batches(args.batch)]
    if not batches:
        raise ValueError(f"batch must name at least one batch size, got {args.batch!r}")
    betas = None
    if args.beta_range is not None:
        lo, hi = (checks.momentum("beta-range", b) for b in args.beta_range)
        if not lo < hi:
            raise ValueError(f"beta-range must have LO < HI, got {lo} {hi}")
        betas = np.linspace(lo, hi, checks.integer("n-beta", args.n_beta, 2))
    if args.objective != "horizon" and args.steps is not None:
        raise ValueError("steps applies to objective 'horizon' only")
    steps = None if args.steps is None else checks.integer("steps", args.steps, 1)
    fig, data = plots.convergence_regions(
        problem_from_args(args), batches, method_from_args(args), noise_from_args(args), args.objective,
        steps, betas, checks.integer("n-alpha", args.n_alpha, 2),
        n_beta=checks.integer("n-beta", args.n_beta, 2))
    plots.save(fig, args.out)
    panels = [_panel(d) for d in data]
    summary = {"out": args.out, **panels[0]}
    if len(panels) > 1:
        summary["panels"] = panels
    long = {"batch": [], "beta": [], "alpha": [], "value": []}
    for d in data:
        B, A = np.meshgrid(d.betas, d.alphas, indexing="ij")
        long["batch"] += [d.batch] * A.size
        long["beta"] += B.ravel().tolist()
        long["alpha"] += A.ravel().tolist()
        long["value"] += d.values.ravel().tolist()
    if not print_result(args, summary, long):
        for d in data:
            what = "rate" if d.objective == "rate" else f"L_{d.steps}"
            print(f"wrote {args.out}: batch {d.batch}: optimum alpha = {d.optimum[0]:.6g}, "
                  f"beta = {d.optimum[1]:.6g}, {what} = {d.optimum_value:.8g}" if len(data) > 1 else
                  f"wrote {args.out}: optimum alpha = {d.optimum[0]:.6g}, beta = {d.optimum[1]:.6g}, "
                  f"{what} = {d.optimum_value:.8g}")
    return 0
