"""``sgdyn validate``: theory vs Monte Carlo with a verdict (exit 0 only when they agree), for the
run the flags describe (any method, schedules, sampling)."""
from __future__ import annotations

from sgdyn.cli import print_result
from sgdyn.commands.simulate import add_simulation_args, common_args, features_text

COMMAND = "validate"
HELP = "theory vs Monte Carlo per checkpoint, with a verdict"


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_simulation_args(p)
    p.add_argument("--z-threshold", type=float, default=4.0,
                   help="agreement bound in standard errors (default 4)")
    p.add_argument("--route", choices=("recursion", "generating-function", "exact-data", "q4"),
                   default="recursion", help="the theory route (default: the SE recursion)")
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory.noise import GAUSSIAN, RADEMACHER
    from sgdyn.validate import validate
    if args.backend != "cpu":
        raise ValueError("--backend: validate runs on the CPU backend, whose per-run losses the "
                         "heavy-tail diagnostic needs")
    if (args.tau1 is None) != (args.tau2 is None):
        raise ValueError("--tau1 and --tau2 go together (or neither: the feature law's own model, "
                         "or a data problem's fitted tau)")
    kw = common_args(args)
    r = kw["run"]
    if args.tau1 is None and r.problem.data is None:
        # the Monte Carlo draws this feature law: the theory takes its exact SE model
        r = r.replace(noise={"gaussian": GAUSSIAN, "rademacher": RADEMACHER}[r.sampling.features])
    rep = validate(r, kw["runs"], kw["seed"], z_threshold=args.z_threshold, sampler=kw["sampler"],
                   route=args.route, synthetic=kw["synthetic"])
    code = 0 if rep.agrees else 1
    result = {"verdict": rep.verdict, "evidence": rep.evidence, "steps": rep.steps.tolist(),
              "theory": rep.theory.tolist(), "mean": rep.mean.tolist(),
              "stderr": rep.stderr.tolist(), "z": rep.z.tolist(),
              "tail_index": rep.tail_index.tolist(), "top_share": rep.top_share.tolist(),
              "heavy_tailed": rep.heavy_tailed.tolist(),
              "diverged_runs": rep.trajectories.diverged_runs,
              "median": rep.median.tolist(), "markov_z": rep.markov_z.tolist(),
              "log_z": rep.log_z.tolist(), "above_initial": rep.above_initial.tolist(),
              "tau1": rep.noise.tau1, "tau2": rep.noise.tau2, "route": args.route,
              "synthetic": kw["synthetic"]}
    table = {"step": rep.steps, **{k: getattr(rep, k) for k in (
        "theory", "mean", "stderr", "z", "tail_index", "top_share", "heavy_tailed", "median",
        "markov_z", "log_z")}}
    if print_result(args, result, table):
        return code
    feats = features_text(r, kw["synthetic"])
    print(f"theory: {args.route}, SE noise tau = ({rep.noise.tau1:g}, {rep.noise.tau2:g}); Monte "
          f"Carlo: {kw['runs']} runs of {feats}, {r.method.label}, seed {kw['seed']}")
    print(f"{'t':>7} {'theory':>13} {'MC mean':>13} {'stderr':>10} {'z':>9} {'tail':>6} "
          f"{'MC median':>13} {'log z':>8}")
    n = rep.steps.size
    shown = range(n) if n <= 20 else sorted({0, n // 10, n // 4, n // 2, 3 * n // 4, n - 1,
                                             int(abs(rep.z).argmax())})
    for j in shown:
        flag = "  heavy-tailed" if rep.heavy_tailed[j] else ""
        print(f"{rep.steps[j]:>7d} {rep.theory[j]:>13.6e} {rep.mean[j]:>13.6e} "
              f"{rep.stderr[j]:>10.2e} {rep.z[j]:>9.3g} {rep.tail_index[j]:>6.2f} "
              f"{rep.median[j]:>13.6e} {rep.log_z[j]:>8.3g}{flag}")
    print(f"verdict: {rep.verdict}")
    print(rep.evidence)
    return code
