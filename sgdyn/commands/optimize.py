"""``sgdyn optimize``: the best (alpha, beta) at a batch size, negative beta included, for the
objective the user means: the exponential rate, the loss at a horizon, or the constant of the
power-law asymptote (``sgdyn.theory.optimize``)."""
from __future__ import annotations

from sgdyn.cli import (add_problem_args, method_from_args, noise_from_args, print_result,
                       problem_from_args)

COMMAND = "optimize"
HELP = "optimal (alpha, beta) for a batch size: --objective rate | horizon | asymptotic"


def register(sub):
    from sgdyn.theory.optimize import OBJECTIVES
    p = sub.add_parser(
        COMMAND, help=HELP,
        description="Minimise one objective over the convergence region in (alpha, beta): "
                    "'rate' the exponential rate rho of L_t ~ rho^t (default; it prefers large "
                    "positive momentum), 'horizon' the expected loss after --steps steps, "
                    "'asymptotic' the constant of the dominating power-law asymptote "
                    "L_t ~ C t^-p (power-law problems). The last two are where the core "
                    "paper's negative momenta win (docs/negative_momentum.md).")
    add_problem_args(p, hyper=("batch",))
    p.add_argument("--objective", choices=OBJECTIVES, default="rate",
                   help="what to minimise (default: rate)")
    p.add_argument("--steps", type=float, default=None, help="horizon T (objective horizon)")
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.optimize import optimal_hyperparameters
    o = optimal_hyperparameters(problem_from_args(args), checks.integer("batch", args.batch, 1),
                                args.objective, args.steps, method_from_args(args),
                                noise_from_args(args))
    result = {"objective": o.objective, "quantity": o.quantity, "alpha": o.alpha, "beta": o.beta,
              "value": o.value, "alpha_eff": o.alpha_eff, "alpha_crit": o.alpha_crit,
              "alpha_beta0": o.alpha_beta0, "value_beta0": o.value_beta0, "gain": o.gain,
              "steps": o.steps, "detail": o.detail}
    if o.objective == "rate":
        result.update(rate=o.value, limited_by=o.detail.removeprefix("limited by "))
    if print_result(args, result):
        return 0
    sym = {"rate": "rho", "horizon": f"L_{o.steps}", "asymptotic": "C"}[o.objective]
    unit = " per step" if o.objective == "rate" else ""
    print(f"objective: {o.objective}, {o.quantity}")
    print(f"optimum: alpha = {o.alpha:.10g}, beta = {o.beta:.10g} (alpha_eff = {o.alpha_eff:.10g}; "
          f"alpha_crit at this beta = {o.alpha_crit:.10g}): {sym} = {o.value:.12g}{unit} ({o.detail})")
    print(f"best beta = 0: alpha = {o.alpha_beta0:.10g}: {sym} = {o.value_beta0:.12g}{unit} "
          f"(the optimum is {100 * o.gain:.3g} % lower)")
    if o.objective == "rate":
        print("the rate prefers positive momentum; where negative momentum can win, minimise the "
              "loss at a horizon (--objective horizon --steps T) or the power-law constant "
              "(--objective asymptotic)")
    return 0
