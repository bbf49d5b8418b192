"""``sgdyn lr-sweep``: converged fraction and limiting gradient norm of GD on a deep linear
network against eta / eta_crit, over many initialisations."""
from __future__ import annotations

from sgdyn.cli import add_figure_run_args, check_figure_path, print_result

COMMAND = "lr-sweep"
HELP = "GD on deep linear nets: converged fraction vs eta/eta_crit"


def _grid(text: str):
    import numpy as np
    from sgdyn.theory import checks
    try:
        lo, hi, n = text.split(":")
        lo, hi, n = float(lo), float(hi), checks.integer("ratios count", float(n), 2)
    except ValueError as exc:
        raise ValueError(f"ratios must be LO:HI:N with 0 < LO < HI and N >= 2, got {text!r} "
                         f"({exc})") from None
    if not 0 < lo < hi:
        raise ValueError(f"ratios must be LO:HI:N with 0 < LO < HI, got {text!r}")
    return np.linspace(lo, hi, n)


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--model", choices=("scalar-net", "matrix-net"), default="scalar-net")
    p.add_argument("--depth", type=float, default=3, help="number of layers L (matrix: 2..20)")
    p.add_argument("--a", type=float, default=1.0, help="scalar net: mean x^2 > 0")
    p.add_argument("--p", type=float, default=2.0, help="scalar net: mean(xy)/mean(x^2) != 0")
    p.add_argument("--width", type=float, default=None,
                   help="matrix net: layer width h (1..50, default 3)")
    p.add_argument("--ratios", default="0.8:1.2:17", help="eta/eta_crit grid LO:HI:N")
    p.add_argument("--runs", type=float, default=200, help="initialisations (default 200)")
    p.add_argument("--steps", type=float, default=None,
                   help="GD steps per run (default 50000 scalar, 20000 matrix)")
    p.add_argument("--spread", type=float, default=None,
                   help="log-normal (scalar, default 0.2) / additive (matrix, default 0.1) init spread")
    add_figure_run_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    from sgdyn.edges_report import matrix_lr_sweep, scalar_lr_sweep
    from sgdyn.simulate.networks import whitened_regression
    from sgdyn.theory import checks
    check_figure_path(args)
    ratios = _grid(args.ratios)
    runs = checks.integer("runs", args.runs, 1)
    seed = checks.integer("seed", args.seed, 0)
    if args.model == "scalar-net":
        if args.width is not None:
            raise ValueError("--width: only the matrix net has a width (--model matrix-net)")
        sweep = scalar_lr_sweep(args.a, args.p, args.depth, ratios, runs,
                                50_000 if args.steps is None else args.steps,
                                0.2 if args.spread is None else args.spread, seed)
    else:
        h = checks.integer("width", 3 if args.width is None else args.width, 1, 50)
        phi = np.random.default_rng(seed).standard_normal((h, h)) / np.sqrt(h)
        _, _, phi_hat = whitened_regression(20 * h, phi, noise=0.01, seed=seed)
        sweep = matrix_lr_sweep(phi_hat, args.depth, ratios, runs,
                                20_000 if args.steps is None else args.steps,
                                0.1 if args.spread is None else args.spread, seed)
    if args.out is not None:
        from sgdyn.plots_edges import plot_lr_sweep
        plot_lr_sweep(sweep, args.out)
    if print_result(args, {"model": sweep.model, "depth": sweep.depth, "eta_crit": sweep.eta_crit,
                    "flattest_sharpness": sweep.flattest_sharpness, "ratios": sweep.ratios.tolist(),
                    "converged_fraction": sweep.converged_fraction.tolist(),
                    "diverged_fraction": sweep.diverged_fraction.tolist(),
                    "grad_norm_median": sweep.grad_norm_median.tolist(),
                    "transition_ratio": sweep.transition_ratio, "runs": sweep.runs, "steps": sweep.steps}):
        return 0
    print(f"GD on {sweep.model}, depth {sweep.depth}, {sweep.runs} initialisations, {sweep.steps} steps: "
          f"predicted eta_crit = {sweep.eta_crit:.6g}")
    print("  eta/eta_crit  converged  diverged  limiting ||g|| (median)")
    for r, c, d, g in zip(sweep.ratios, sweep.converged_fraction, sweep.diverged_fraction,
                          sweep.grad_norm_median):
        print(f"  {r:12.4f}  {c:9.3f}  {d:8.3f}  {g:.3e}")
    print(f"  converged fraction crosses 1/2 at eta/eta_crit = {sweep.transition_ratio:.4f}"
          + (f"; figure: {args.out}" if args.out else ""))
    return 0
