"""``sgdyn simulate``: Monte Carlo loss statistics (simulate.run) of the run the flags describe:
any method (``--method``, ``--param``), schedules, sampling (``--sampling``), recorded steps."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, modes_text, print_result, run_from_args, seed_arg

COMMAND = "simulate"
HELP = "Monte Carlo loss statistics over independent runs"


def add_simulation_args(p):
    """Flags shared by ``simulate`` and ``validate`` (problem, hyperparameters, Monte Carlo)."""
    from sgdyn.commands.loss import add_run_args
    from sgdyn.simulate.run import BACKENDS
    from sgdyn.simulate.spec import FEATURES, SAMPLERS
    add_problem_args(p, schedules=True)
    p.add_argument("--steps", type=float, required=True, help="number of steps T >= 0")
    p.add_argument("--runs", type=float, required=True, help="independent runs R >= 1")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    p.add_argument("--features", choices=FEATURES, default="gaussian",
                   help="feature law (a data problem samples its own rows)")
    p.add_argument("--backend", choices=BACKENDS, default="cpu")
    p.add_argument("--sampler", choices=SAMPLERS, default="auto",
                   help="Gaussian mini-batch gradients: per-sample draws, or 'projected' (exact in "
                        "law from n + 2b normals per step; the default for Gaussian i.i.d. batches)")
    p.add_argument("--every", type=float, default=None, help="record every K steps (default 1)")
    p.add_argument("--synthetic", choices=("orthogonal", "gaussian"), default=None,
                   help="a spectrum problem with --data-size N: each run draws its own N rows, "
                        "orthogonal (default; their spectrum is the problem's) or i.i.d. Gaussian")
    add_run_args(p)
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (as sgdyn --no-progress; bars show only on a terminal)")


def common_args(args) -> dict:
    """The run description and the Monte Carlo's own numbers (validated)."""
    from sgdyn.theory import checks
    steps = checks.integer("steps", args.steps, 0)
    r = run_from_args(args, steps)
    synthetic = args.synthetic
    if synthetic is None and r.problem.data is None and r.sampling.kind != "iid":
        synthetic = "orthogonal"
    return dict(run=r, runs=checks.integer("runs", args.runs, 1),
                seed=checks.integer("seed", args.seed, 0), sampler=args.sampler,
                synthetic=synthetic)


def features_text(r, synthetic) -> str:
    """What the runs sample: a data problem's rows, a synthetic data set per run, or features."""
    from sgdyn.simulate.synthetic import TEXT
    if r.problem.data is not None:
        return "its rows"
    if synthetic is not None:
        return f"a fresh data set per run of {r.sampling.data_size} {TEXT[synthetic]}"
    return f"{r.sampling.features} features"


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
    r = kw["run"]
    # progress: a bar after 2 s on a terminal; off with --quiet / --no-progress (sgdyn.cli.main)
    tr = simulate_run(r, kw["runs"], kw["seed"], backend=args.backend, sampler=kw["sampler"],
                      synthetic=kw["synthetic"])
    result = {"steps": tr.steps.tolist(), "mean": tr.mean.tolist(),
              "stderr": tr.stderr.tolist(), "diverged_runs": tr.diverged_runs,
              "finite_runs": tr.finite_runs.tolist(),
              "quantile_levels": tr.quantile_levels.tolist(),
              "quantiles": tr.quantiles.tolist(), "runs": tr.runs, "seed": tr.seed,
              "backend": tr.backend, "synthetic": kw["synthetic"]}
    table = {"step": tr.steps, "mean": tr.mean, "stderr": tr.stderr,
             "finite_runs": tr.finite_runs,
             **{f"q{q:g}": tr.quantiles[i] for i, q in enumerate(tr.quantile_levels)}}
    if print_result(args, result, table):
        return 0
    p = r.problem
    feats = features_text(r, kw["synthetic"])
    sched = ", ".join(f"{k} = {v}" for k, v in r.schedule.text.items())
    print(f"problem {p.name}: {modes_text(p)}, {feats}, {r.method.label}, {sched}, "
          f"{r.sampling.text}")
    print(f"{tr.runs} runs, seed {tr.seed}, backend {tr.backend}; "
          f"{tr.diverged_runs} runs stopped by the overflow guard")
    median = tr.quantiles[list(tr.quantile_levels).index(0.5)]   # CLI uses DEFAULT_QUANTILES
    n = tr.steps.size
    for j in sorted({0, n // 100, n // 10, n - 1}):
        print(f"  t = {tr.steps[j]:>6d}  mean loss {tr.mean[j]:.6e} +- {tr.stderr[j]:.2e}  "
              f"(median {median[j]:.3e}, {tr.finite_runs[j]} runs)")
    return 0
