"""``sgdyn eos``: sharpness along training against 2/eta (and SAM's edge), with the loss."""
from __future__ import annotations

from sgdyn.cli import add_figure_run_args, check_figure_path, print_result

COMMAND = "eos"
HELP = "edge of stability of a two-layer tanh net: sharpness vs 2/eta"


def register(sub):
    from sgdyn.simulate.networks import OPTIMIZERS
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="gd")
    p.add_argument("--eta", type=float, required=True, help="step size eta > 0")
    p.add_argument("--beta", type=float, default=0.0, help="heavy-ball momentum in (-1, 1)")
    p.add_argument("--rho", type=float, default=0.0, help="SAM radius rho > 0 (sam only)")
    p.add_argument("--steps", type=float, default=6000, help="training steps (default 6000)")
    p.add_argument("--every", type=float, default=50, help="record every this many steps")
    p.add_argument("--n", type=float, default=64, help="training points (default 64)")
    p.add_argument("--d", type=float, default=4, help="input dimension >= 3 (default 4)")
    p.add_argument("--width", type=float, default=16, help="hidden units (default 16)")
    p.add_argument("--init-scale", type=float, default=1.0, help="initialisation scale")
    p.add_argument("--lanczos", type=float, default=20, help="Lanczos steps per sharpness")
    add_figure_run_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.edges_report import tanh_eos
    from sgdyn.theory import checks
    check_figure_path(args)
    ints = {k: checks.integer(k, getattr(args, k), lo) for k, lo in
            (("steps", 1), ("every", 1), ("n", 1), ("d", 3), ("width", 1), ("lanczos", 1), ("seed", 0))}
    tr = tanh_eos(args.eta, ints["steps"], args.optimizer, args.beta, args.rho, ints["n"], ints["d"],
                  ints["width"], args.init_scale, ints["every"], ints["lanczos"], ints["seed"])
    if args.out is not None:
        from sgdyn.plots_edges import plot_eos
        plot_eos(tr, args.out)
    hover = tr.hover_ratio()
    if print_result(args, {"steps": tr.steps.tolist(), "loss": tr.loss.tolist(),
                    "sharpness": tr.sharpness.tolist(), "grad_norm": tr.grad_norm.tolist(),
                    "edge": tr.deterministic_edge,
                    "sam_edge": None if tr.sam_edge is None else tr.sam_edge.tolist(),
                    "diverged": tr.diverged, "hover_ratio_range": [float(hover.min()), float(hover.max())]}):
        return 0
    target = "SAM edge" if tr.sam_edge is not None else f"edge {tr.deterministic_edge:.6g}"
    print(f"tanh net, {tr.optimizer}, eta = {tr.eta:g}: sharpness {tr.sharpness[0]:.4g} at step 0, "
          f"{tr.sharpness[-1]:.4g} at step {tr.steps[-1]}; predicted {target}")
    print(f"  second half: sharpness / {target} in [{hover.min():.4f}, {hover.max():.4f}]"
          + ("  (the run diverged)" if tr.diverged else ""))
    print(f"  loss {tr.loss[0]:.4g} -> {tr.loss[-1]:.4g}" + (f"; figure: {args.out}" if args.out else ""))
    return 0
