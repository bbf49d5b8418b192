"""``sgdyn momentum-gap``: SGD against normalized momentum at equal effective learning rate."""
from __future__ import annotations

from sgdyn.cli import noise_from_args, print_result, problem_from_args
from sgdyn.commands._shared import add_data_args, float_list

COMMAND = "momentum-gap"
HELP = ("exact gap between SGD (lr eta) and heavy ball in normalized form (lr eta (1 - beta)), "
        "its exponent in eta, stability edges")


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_data_args(p)
    p.add_argument("--eta", type=float, required=True, help="effective learning rate eta")
    p.add_argument("--beta", type=float, required=True, help="momentum in (-1, 1)")
    p.add_argument("--batch", type=float, required=True, help="mini-batch size b >= 1")
    p.add_argument("--horizon", type=float, default=1.0, help="K: compare over K/eta steps (default 1)")
    p.add_argument("--etas", type=float_list, default=None,
                   help="comma-separated eta grid for the exponent fit (default: 8 points, eta/100..eta)")
    p.add_argument("--a", type=float_list, default=[0.0, 0.25, 0.5],
                   help="exponents a in 1 - beta = scale * eta^a (default 0,0.25,0.5)")
    p.add_argument("--scale", type=float, default=0.5, help="scale in 1 - beta = scale * eta^a")
    p.add_argument("--out", default=None, help="figure file (.png/.svg/.pdf): gap vs eta, log-log")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    from sgdyn.plots_equivalence import check_out, plot_gap_scaling
    from sgdyn.theory import checks
    from sgdyn.theory.equivalence import gap_scaling, momentum_gap, stability_edges, stationary_loss
    out = check_out(args.out) if args.out else None
    problem = problem_from_args(args)
    noise = noise_from_args(args)
    batch = checks.integer("batch", args.batch, 1)
    gap = momentum_gap(problem, args.eta, args.beta, batch, args.horizon, noise)
    edges = stability_edges(problem, args.beta, batch, noise)
    etas = np.geomspace(args.eta / 100, args.eta, 8) if args.etas is None else np.array(args.etas)
    scalings = [gap_scaling(problem, etas, a, batch, args.horizon, args.scale, noise) for a in args.a]
    result = {
        "eta": gap.eta, "beta": gap.beta, "batch": batch, "horizon": gap.horizon, "steps": gap.steps,
        "max_relative_gap": gap.max_gap, "max_gap_step": gap.max_gap_step, "diverges": gap.diverges,
        "reason": gap.reason,
        "edges": {"sgd_deterministic": edges.sgd_deterministic,
                  "momentum_deterministic": edges.momentum_deterministic,
                  "ratio": edges.ratio, "predicted_ratio": (1 + args.beta) / (1 - args.beta),
                  "sgd_stochastic": edges.sgd_stochastic,
                  "momentum_stochastic": edges.momentum_stochastic},
        "scaling": [{"a": s.a, "scale": s.scale, "etas": s.etas.tolist(), "betas": s.betas.tolist(),
                     "gaps": s.gaps.tolist(), "exponent": s.exponent,
                     "exponent_stderr": s.exponent_stderr,
                     "local_exponents": s.local_exponents.tolist()} for s in scalings],
    }
    if problem.label_noise > 0:
        result["stationary_loss"] = {
            "sgd": stationary_loss(problem, args.eta, 0.0, batch, "sgd", noise),
            "momentum": stationary_loss(problem, args.eta, args.beta, batch, "heavy-ball", noise)}
    if out:
        plot_gap_scaling(scalings, out, f"{problem.name}, batch {batch}, K = {args.horizon:g}")
        result["figure"] = out
    if print_result(args, result):
        return 0
    print(f"problem {problem.name}: SGD lr {gap.eta:g} vs heavy ball lr {gap.eta * (1 - gap.beta):g}, "
          f"momentum {gap.beta:g}, batch {batch}, {gap.steps} steps (K = {gap.horizon:g})")
    print(f"  largest relative gap {gap.max_gap:.6g} at step {gap.max_gap_step}")
    e = result["edges"]
    print(f"  deterministic edges: SGD eta < {e['sgd_deterministic']:.6g}, momentum eta < "
          f"{e['momentum_deterministic']:.6g} (ratio {e['ratio']:.6g}, (1+beta)/(1-beta) = "
          f"{e['predicted_ratio']:.6g})")
    print(f"  batch-{batch} edges: SGD eta < {e['sgd_stochastic']:.6g}, momentum eta < "
          f"{e['momentum_stochastic']:.6g}")
    if "stationary_loss" in result:
        s = result["stationary_loss"]
        print(f"  stationary loss: SGD {s['sgd']:.6g}, momentum {s['momentum']:.6g}")
    for s in scalings:
        print(f"  1 - beta = {s.scale:g} eta^{s.a:g}: gap ~ eta^{s.exponent:.4f} "
              f"(+- {s.exponent_stderr:.4f}); slope at the smallest eta {s.local_exponents[0]:.4f}")
    if out:
        print(f"  figure: {out}")
    return 0
