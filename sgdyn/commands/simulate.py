"""``sgdyn simulate``: Monte Carlo loss statistics (simulate.run)."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, modes_text, print_result, problem_from_args

COMMAND = "simulate"
HELP = "Monte Carlo loss statistics over independent runs"


def add_simulation_args(p):
    """Flags shared by ``simulate`` and ``validate`` (problem, hyperparameters, Monte Carlo)."""
    from sgdyn.simulate.run import BACKENDS
    from sgdyn.simulate.spec import FEATURES, SAMPLERS
    add_problem_args(p)
    p.set_defaults(tau1=None, tau2=None)      # None: the feature law's own SE parameters
    p.add_argument("--steps", type=float, required=True, help="number of steps T >= 0")
    p.add_argument("--runs", type=float, required=True, help="independent runs R >= 1")
    p.add_argument("--seed", type=float, default=0, help="random seed (default 0)")
    p.add_argument("--features", choices=FEATURES, default="gaussian", help="feature law")
    p.add_argument("--backend", choices=BACKENDS, default="cpu")
    p.add_argument("--sampler", choices=SAMPLERS, default="auto",
                   help="Gaussian mini-batch gradients: per-sample draws, or 'projected' (exact in "
                        "law from n + 2b normals per step; the cpu default for Gaussian features)")
    p.add_argument("--every", type=float, default=1, help="record every K steps (default 1)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (as sgdyn --no-progress; bars show only on a terminal)")


def common_args(args) -> dict:
    """Validated integers and the problem; the rest is checked by simulate.run / validate."""
    from sgdyn.theory import checks
    if args.data_size is not None:
        raise ValueError("--data-size does not apply: the simulator draws i.i.d. samples "
                         "(with replacement)")
    return dict(problem=problem_from_args(args).replace(data_size=None),
                alpha=args.alpha, beta=args.beta, batch=checks.integer("batch", args.batch, 1),
                steps=checks.integer("steps", args.steps, 0),
                runs=checks.integer("runs", args.runs, 1), seed=checks.integer("seed", args.seed, 0),
                method=args.method, features=args.features,
                every=checks.integer("every", args.every, 1), sampler=args.sampler)


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_simulation_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.tau1 is not None or args.tau2 is not None:
        raise ValueError("--tau1/--tau2 set the theory's noise model; they apply to "
                         "'sgdyn validate', not to the simulation (use --features)")
    from sgdyn.simulate.run import run as simulate_run
    kw = common_args(args)
    # progress: a bar after 2 s on a terminal; off with --quiet / --no-progress (sgdyn.cli.main)
    tr = simulate_run(**kw, label_noise=args.label_noise, backend=args.backend)
    result = {"steps": tr.steps.tolist(), "mean": tr.mean.tolist(),
              "stderr": tr.stderr.tolist(), "diverged_runs": tr.diverged_runs,
              "finite_runs": tr.finite_runs.tolist(),
              "quantile_levels": tr.quantile_levels.tolist(),
              "quantiles": tr.quantiles.tolist(), "runs": tr.runs, "seed": tr.seed,
              "backend": tr.backend}
    table = {"step": tr.steps, "mean": tr.mean, "stderr": tr.stderr,
             "finite_runs": tr.finite_runs,
             **{f"q{q:g}": tr.quantiles[i] for i, q in enumerate(tr.quantile_levels)}}
    if print_result(args, result, table):
        return 0
    problem = kw["problem"]
    print(f"problem {problem.name}: {modes_text(problem)}, {args.features} features, "
          f"{args.method}, alpha = {args.alpha:g}, beta = {args.beta:g}, batch = {kw['batch']}")
    print(f"{tr.runs} runs, seed {tr.seed}, backend {tr.backend}; "
          f"{tr.diverged_runs} runs stopped by the overflow guard")
    median = tr.quantiles[list(tr.quantile_levels).index(0.5)]   # CLI uses DEFAULT_QUANTILES
    n = tr.steps.size
    for j in sorted({0, n // 100, n // 10, n - 1}):
        print(f"  t = {tr.steps[j]:>6d}  mean loss {tr.mean[j]:.6e} +- {tr.stderr[j]:.2e}  "
              f"(median {median[j]:.3e}, {tr.finite_runs[j]} runs)")
    return 0
