"""``sgdyn loss``: the expected loss curve from the theory, for any method and schedule.

Routes (``sgdyn.theory.solve``): the SE recursion (default; any method, any schedule), the
generating function (constant or piecewise-constant hyperparameters), ``exact-data`` (the exact
finite-data dynamics on a data problem's rows) and ``q4`` (the diagonal closure with the rows'
fourth-moment matrix, ``theory.q4_closure``). On a data problem an SE curve is checked against
the exact dynamics (the exact noise radius at this alpha and at SE's alpha_crit): a one-line
warning on stderr when they disagree. ``--record`` keeps checkpoints instead of every step."""
from __future__ import annotations

from sgdyn.cli import add_problem_args, modes_text, noise_source, print_result, run_from_args

COMMAND = "loss"
HELP = "expected loss curve L_0..L_T (SE theory, or exact on a data problem's rows)"
ROUTES = ("recursion", "generating-function", "exact-data", "jump-ahead", "q4")


def add_run_args(p) -> None:
    """``--sampling`` and ``--record``: how batches are drawn and which steps are kept."""
    p.add_argument("--sampling", choices=("iid", "without-replacement", "epochs"), default=None,
                   help="batches: iid (default), without-replacement from --data-size N points "
                        "(the default when the problem has a data size), epochs (Monte Carlo only)")
    p.add_argument("--record", default=None,
                   help="recorded steps: all (default), every:K, log:N or at:t1,t2,..")


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p, schedules=True)
    p.add_argument("--steps", type=float, required=True, help="number of steps T >= 0")
    p.add_argument("--route", choices=ROUTES, default="recursion",
                   help="SE: recursion (default), generating-function or jump-ahead (any steps, "
                        "e.g. --record at:1000000000); exact-data: the exact finite-data dynamics "
                        "on the problem's rows; q4: the diagonal closure with their fourth moments")
    add_run_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.dynamics import solve
    steps = checks.integer("steps", args.steps, 0)
    if args.route in ("exact-data", "q4") and (args.tau1 is not None or args.tau2 is not None):
        raise ValueError(f"--tau1/--tau2 set the SE noise model; route {args.route!r} uses the "
                         "data's own moments")
    r = run_from_args(args, steps)
    curve = solve(r, args.route)
    extra = {}
    tc = None
    if args.route == "exact-data":
        route_text = (f"route: exact finite-data dynamics on {r.problem.data.n} rows "
                      f"({r.sampling.text})")
    elif args.route == "q4":
        route_text = (f"route: Q4 closure (diagonal second moments, the fourth-moment matrix of "
                      f"{r.problem.data.n} rows; {r.sampling.text})")
    else:
        route_text = (f"route: SE {args.route}, tau = ({r.noise.tau1:.6g}, {r.noise.tau2:.6g}) from "
                      f"{noise_source(args)}")
        tc = _se_trust_here(r, args, curve, extra)
    result = {"steps": curve.steps.tolist(), "loss": curve.loss.tolist(),
              "diverges": curve.diverges, "rate": curve.rate, "limited_by": curve.limited_by,
              "reason": curve.reason, "stopped_early": curve.stopped_early, "route": curve.route,
              "approximation": curve.approximation, "tau1": r.noise.tau1, "tau2": r.noise.tau2,
              **extra}
    if print_result(args, result, {"step": curve.steps, "loss": curve.loss}):
        return 0
    p = r.problem
    print(f"problem {p.name}: {modes_text(p)}, Tr H = {p.trace:.6g}, label noise {p.label_noise:g}")
    sched = ", ".join(f"{k} = {v}" for k, v in r.schedule.text.items())
    print(f"{r.method.label}, {sched}, {r.sampling.text}")
    L, t = curve.loss, curve.steps
    for j in sorted({0, len(L) // 100, len(L) // 10, len(L) - 1}):
        print(f"  L_{t[j]} = {L[j]:.6e}")
    print(curve.reason)
    if curve.stopped_early:
        print(f"stopped at step {t[-1]} of {curve.steps_requested} before float overflow")
    print(route_text + ("" if tc is None else f"; {tc.summary}"))
    print(f"approximation: {curve.approximation}")
    return 0


def _se_trust_here(r, args, curve, extra):
    """On a data problem with a constant schedule: the exact noise radius at this alpha (a warning
    when SE and the exact finite-data dynamics disagree on convergence) and the trust check at SE's
    alpha_crit."""
    p = r.problem
    if p.data is None or r.sampling.kind == "epochs" or not r.is_constant:
        return None
    from sgdyn.commands.critical_lr import se_trust, warn
    from sgdyn.theory.exact_data import noise_radius
    c = r.constant()
    R = noise_radius(p, c["alpha"], c["beta"], int(c["batch"]), r.bound_method(c),
                     sampling=r.sampling.kind)
    extra["exact_noise_radius"] = R
    exact_diverges = not R < 1.0
    if exact_diverges != curve.diverges:
        warn(f"SE's curve {'diverges' if curve.diverges else 'converges'} here but the exact "
             f"finite-data dynamics on these rows {'diverges' if exact_diverges else 'converges'} "
             f"(exact noise radius {R:.4g} at alpha = {c['alpha']:g}); use --route exact-data or "
             "`sgdyn check-se`")
        extra["trusted"] = False
        return None
    from sgdyn.theory.stability import critical_learning_rate
    a_se = critical_learning_rate(p, c["beta"], int(c["batch"]), r.bound_method(c), r.noise).alpha_crit
    tc = se_trust(p, r.bound_method(c), c["beta"], int(c["batch"]), r.noise, a_se)
    extra.update(trust_radius=tc.radius, trust_overshoot=tc.overshoot, trusted=tc.passes)
    return tc
