"""``sgdyn plot KIND``: critical learning rate against batch, the power-law phase plane, and loss
curves (theory against Monte Carlo) as figures."""
from __future__ import annotations

from sgdyn.cli import (add_method_args, add_output_args, add_problem_args, method_from_args,
                       noise_from_args, print_result, problem_from_args, run_from_args,
                       seed_arg)
from sgdyn.commands.phase_diagram import add_out_arg

COMMAND = "plot"
HELP = "figures: critical-lr, phase-plane, loss-curves"


def _floats(name: str, text: str):
    import numpy as np
    try:
        return np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise ValueError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    kinds = p.add_subparsers(dest="kind", required=True)

    c = kinds.add_parser("critical-lr", help="critical effective lr against batch size (log axes)")
    add_problem_args(c, hyper=())
    c.add_argument("--batches", default="1,2,4,8,16,32,64,128,256,512,1024",
                   help="comma-separated batch sizes")
    c.add_argument("--betas", default="0", help="comma-separated momenta, one curve each")
    add_out_arg(c)
    c.set_defaults(func=run_critical_lr)

    f = kinds.add_parser("phase-plane", help="power-law phases in the (nu, zeta) plane")
    f.add_argument("--alpha", type=float, required=True, help="learning rate (PyTorch lr)")
    f.add_argument("--beta", type=float, default=0.0, help="momentum in (-1, 1)")
    f.add_argument("--batch", type=float, required=True, help="mini-batch size (i.i.d.)")
    f.add_argument("--n", type=float, default=1000, help="number of modes")
    add_method_args(f)
    f.add_argument("--tau1", type=float, default=1.0)
    f.add_argument("--tau2", type=float, default=-1.0)
    add_output_args(f)
    add_out_arg(f)
    f.set_defaults(func=run_phase_plane)

    lc = kinds.add_parser("loss-curves", help="theory against Monte Carlo (mean and bands); "
                          "scheduled hyperparameters are drawn under the curve")
    add_problem_args(lc, schedules=True)
    lc.add_argument("--steps", type=float, required=True)
    lc.add_argument("--runs", type=float, default=200)
    lc.add_argument("--seed", type=seed_arg, default=0)
    lc.add_argument("--features", choices=("gaussian", "rademacher"), default="gaussian")
    lc.add_argument("--asymptotes", action="store_true",
                    help="power-law problems: draw the signal / noise asymptotes and the "
                         "transition time (theory.asymptotics.phases)")
    add_out_arg(lc)
    lc.set_defaults(func=run_loss_curves)


def _report(args, summary, text, table=None):
    if not print_result(args, dict(out=args.out, **summary), table):
        print(f"wrote {args.out}: {text}")
    return 0


def run_critical_lr(args) -> int:
    from sgdyn import plots
    plots.check_out(args.out)
    fig, d = plots.critical_lr_vs_batch(problem_from_args(args), _floats("batches", args.batches),
                                        _floats("betas", args.betas), method_from_args(args),
                                        noise_from_args(args))
    plots.save(fig, args.out)
    table = {"beta": [float(b) for b in d.betas for _ in d.batches],
             "batch": [int(n) for _ in d.betas for n in d.batches],
             "alpha_eff_crit": d.alpha_eff_crit.ravel(),
             "limited_by": [w for row in d.limited_by for w in row]}
    return _report(args, {"batches": d.batches.tolist(), "betas": d.betas.tolist(),
                          "alpha_eff_crit": d.alpha_eff_crit.tolist(),
                          "reference": d.reference.tolist()},
                   f"{d.betas.size} curves over {d.batches.size} batch sizes", table)


def run_phase_plane(args) -> int:
    from sgdyn import plots
    from sgdyn.theory import checks
    from sgdyn.theory.noise import NoiseModel
    plots.check_out(args.out)
    fig, d = plots.phase_plane(args.alpha, args.beta, checks.integer("batch", args.batch, 1),
                               checks.integer("n", args.n, 1), method=method_from_args(args),
                               noise=NoiseModel(args.tau1, args.tau2))
    plots.save(fig, args.out)
    div = d.nus[d.noise_feedback >= 1.0]
    text = (f"divergent for nu <= {div.max():.4g}" if div.size else "no divergent nu") + \
        " (U(1) >= 1); phase boundary zeta = 2 - 1/nu"
    return _report(args, {"nus": d.nus.tolist(), "noise_feedback": d.noise_feedback.tolist()}, text)


def run_loss_curves(args) -> int:
    from sgdyn import plots
    from sgdyn.theory import checks
    from sgdyn.theory.asymptotics import phases
    from sgdyn.theory.noise import GAUSSIAN, RADEMACHER
    plots.check_out(args.out)
    problem = problem_from_args(args)
    if args.tau1 is None and args.tau2 is None:
        # the Monte Carlo draws this feature law, so the theory takes its exact SE model (as
        # `sgdyn validate`), not a data problem's fitted tau
        noise = {"gaussian": GAUSSIAN, "rademacher": RADEMACHER}[args.features]
    else:
        noise = noise_from_args(args)
    steps = checks.integer("steps", args.steps, 1)
    run = run_from_args(args, steps)           # every flag checked, schedules included
    first = run.hyperparameters(0, 1)
    alpha, beta, batch = (getattr(args, name) if not run.schedule[name].is_constant else
                          first[name][0].item() for name in ("alpha", "beta", "batch"))
    asymptotes, transition, phase = (), None, None
    if args.asymptotes and not run.is_constant:
        raise ValueError("--asymptotes needs constant --alpha, --beta and --batch (the phases of "
                         "a power law are those of constant hyperparameters)")
    if args.asymptotes:
        ph = phases(problem, alpha, beta, batch, method_from_args(args), noise)
        asymptotes, transition = plots.phase_guides(ph)
        phase = ph.phase
    fig, d = plots.loss_curves(problem, alpha, beta, batch, steps,
                               checks.integer("runs", args.runs, 1),
                               checks.integer("seed", args.seed, 0), method_from_args(args), noise,
                               args.features, asymptotes=asymptotes, transition=transition)
    plots.save(fig, args.out)
    return _report(args, {"theory_final": float(d.theory[-1]), "mc_final": float(d.mean[-1]),
                          "mc_stderr_final": float(d.stderr[-1]), "phase": phase,
                          "transition": d.transition, "scheduled": list(d.scheduled)},
                   f"L_T theory {d.theory[-1]:.6g}, Monte Carlo {d.mean[-1]:.6g} "
                   f"+- {d.stderr[-1]:.2g} ({d.runs} runs)" +
                   ("" if phase is None else f"; {phase} phase, transition t = " +
                    ("none" if transition is None else f"{transition:.4g}")))
