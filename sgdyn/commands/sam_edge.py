"""``sgdyn sam-edge``: SAM's edge of stability at a given step size, radius and gradient norm."""
from __future__ import annotations

from sgdyn.cli import add_output_args, print_result

COMMAND = "sam-edge"
HELP = "SAM_edge(eta, rho, ||g||) (Long & Bartlett 2024)"


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--eta", type=float, required=True, help="step size eta > 0")
    p.add_argument("--rho", type=float, required=True, help="SAM radius rho > 0")
    p.add_argument("--grad-norm", type=float, required=True, help="gradient norm ||g|| > 0")
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory.edges import sam_edge
    edge = sam_edge(args.eta, args.rho, args.grad_norm)
    gd = 2.0 / args.eta
    if print_result(args, {"sam_edge": edge, "gd_edge": gd, "eta": args.eta, "rho": args.rho,
                           "grad_norm": args.grad_norm}):
        return 0
    print(f"SAM edge (eta = {args.eta:g}, rho = {args.rho:g}, ||g|| = {args.grad_norm:g}): {edge:.10g}")
    print(f"  (GD's edge 2/eta = {gd:.10g}; SAM's is always below it)")
    return 0
