"""``sgdyn edge``: is a full-batch method stable on a quadratic of given sharpness?"""
from __future__ import annotations

from sgdyn.cli import add_output_args, print_result

COMMAND = "edge"
HELP = "stability threshold of GD / heavy ball / Nesterov at a sharpness"
_METHOD = {"gd": "sgd", "heavy-ball": "heavy-ball", "nesterov": "nesterov"}


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--method", choices=sorted(_METHOD), required=True)
    p.add_argument("--lr", type=float, required=True, help="learning rate alpha > 0")
    p.add_argument("--beta", type=float, default=0.0, help="momentum in (-1, 1) (gd: 0)")
    p.add_argument("--sharpness", type=float, required=True, help="top Hessian eigenvalue > 0")
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.edges import deterministic_edge
    lr = checks.positive("lr", args.lr)
    beta = checks.momentum("beta", args.beta)
    if args.method == "gd" and beta != 0:
        raise ValueError(f"beta must be 0 for method 'gd', got {beta}")
    edge = deterministic_edge(_METHOD[args.method])
    piece = edge.piece(beta)
    threshold = edge.critical_lr(args.sharpness, beta)
    stable = lr < threshold
    out = {"method": args.method, "lr": lr, "beta": beta, "sharpness": args.sharpness,
           "stable": stable, "threshold_lr": threshold,
           "threshold_sharpness": edge.alpha_lambda(beta) / lr,
           "edge_alpha_lambda": str(piece.edge), "crossing": piece.crossing}
    if print_result(args, out):
        return 0
    print(f"{args.method}: lr = {lr:g}, beta = {beta:g}, sharpness = {args.sharpness:g}: "
          f"{'stable' if stable else 'unstable'}")
    print(f"  threshold lr = {threshold:.10g}  (alpha * lambda < {piece.edge}; at the edge a root "
          f"crosses the unit circle: {piece.crossing})")
    return 0
