"""``sgdyn loss``: the expected loss curve from the theory.

Routes: the SE recursion and generating function (``theory.dynamics``), and ``exact-data``: the
exact finite-data dynamics on a data problem's rows (``theory.exact_data``). On a data problem an
SE curve is checked against the exact dynamics (the exact noise radius at this alpha and at SE's
alpha_crit): a one-line warning on stderr when they disagree."""
from __future__ import annotations

from sgdyn.cli import (add_problem_args, noise_from_args, noise_source, print_json,
                       problem_from_args)
from sgdyn.commands.critical_lr import se_trust, warn
from sgdyn.theory import checks
from sgdyn.theory.dynamics import ROUTES as SE_ROUTES, loss_curve
from sgdyn.theory.exact_data import ROUTE as EXACT, exact_loss_curve, noise_radius, require_data

ROUTES = SE_ROUTES + (EXACT,)


def register(sub):
    p = sub.add_parser("loss", help="expected loss curve L_0..L_T (SE theory, or exact on a data "
                                    "problem's rows)")
    add_problem_args(p)
    p.add_argument("--steps", type=float, required=True, help="number of steps T >= 0")
    p.add_argument("--route", choices=ROUTES, default="recursion",
                   help="SE: recursion (default) or generating-function; exact-data: the exact "
                        "finite-data dynamics on the problem's rows")
    p.set_defaults(func=run)


def run(args) -> int:
    problem = problem_from_args(args)
    batch = checks.integer("batch", args.batch, 1)
    steps = checks.integer("steps", args.steps, 0)
    if args.route == EXACT:
        if args.tau1 is not None or args.tau2 is not None:
            raise ValueError("--tau1/--tau2 set the SE noise model; route 'exact-data' uses the "
                             "data's own moments")
        require_data(problem)
        curve = exact_loss_curve(problem, args.alpha, args.beta, batch, steps, args.method)
        route_text = (f"route: exact finite-data dynamics on {problem.data.n} rows "
                      f"({'i.i.d. batches' if curve.sampling == 'iid' else 'batches without replacement'})")
        extra = {"noise_radius": curve.noise_radius, "sampling": curve.sampling}
        tc = None
    else:
        noise = noise_from_args(args)
        curve = loss_curve(problem, args.alpha, args.beta, batch, steps, method=args.method,
                           noise=noise, route=args.route)
        route_text = (f"route: SE {args.route}, tau = ({noise.tau1:.6g}, {noise.tau2:.6g}) from "
                      f"{noise_source(args)}")
        extra = {"tau1": noise.tau1, "tau2": noise.tau2}
        tc = se_trust_here(problem, args, batch, noise, curve, extra)
    if args.json:
        print_json({"loss": curve.loss.tolist(), "diverges": curve.diverges,
                    "rate": getattr(curve, "rate", None),
                    "limited_by": getattr(curve, "limited_by", None), "reason": curve.reason,
                    "stopped_early": curve.stopped_early, "route": args.route, **extra})
        return 0
    L = curve.loss
    print(f"problem {problem.name}: {problem.n_modes} modes, Tr H = {problem.trace:.6g}, "
          f"label noise {problem.label_noise:g}")
    print(f"{args.method}, alpha = {args.alpha:g}, beta = {args.beta:g}, batch = {batch}")
    for t in sorted({0, len(L) // 100, len(L) // 10, len(L) - 1}):
        print(f"  L_{t} = {L[t]:.6e}")
    print(curve.reason)
    if curve.stopped_early:
        print(f"stopped at step {len(L) - 1} of {curve.steps_requested} before float overflow")
    print(route_text + ("" if tc is None else f"; {tc.summary}"))
    return 0


def se_trust_here(problem, args, batch, noise, curve, extra):
    """On a data problem: the exact noise radius at this alpha (a warning when SE and the exact
    dynamics disagree on convergence) and the trust check at SE's alpha_crit."""
    if problem.data is None or problem.data_size not in (None, problem.data.n):
        return None
    R = noise_radius(problem, args.alpha, args.beta, batch, args.method)
    extra["exact_noise_radius"] = R
    exact_diverges = not R < 1.0
    if exact_diverges != curve.diverges:
        warn(f"SE's curve {'diverges' if curve.diverges else 'converges'} here but the exact "
             f"finite-data dynamics on these rows {'diverges' if exact_diverges else 'converges'} "
             f"(exact noise radius {R:.4g} at alpha = {args.alpha:g}); use --route exact-data or "
             "`sgdyn check-se`")
        extra["trusted"] = False
        return None
    from sgdyn.theory.stability import critical_learning_rate
    a_se = critical_learning_rate(problem, args.beta, batch, args.method, noise).alpha_crit
    tc = se_trust(problem, args, args.beta, batch, noise, a_se)
    extra.update(trust_radius=tc.radius, trust_overshoot=tc.overshoot, trusted=tc.passes)
    return tc
