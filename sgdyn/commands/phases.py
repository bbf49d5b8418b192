"""``sgdyn phases``: signal / noise exponents and constants of the loss on a power-law problem,
the phase that dominates at large t and the time the two asymptotes cross
(``theory.asymptotics.phases``)."""
from __future__ import annotations

from sgdyn.cli import (add_problem_args, method_from_args, noise_from_args, print_result,
                       problem_from_args)

COMMAND = "phases"
HELP = ("signal/noise exponents, constants, dominating phase and transition time of the loss on "
        "a power-law problem")


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p)
    p.add_argument("--max-deviation", type=float, default=1e-6,
                   help="largest log-deviation of the spectrum from a power law (default 1e-6)")
    p.set_defaults(func=run)


def summary(ph) -> dict:
    """The JSON object: loss constants only where the loss converges (they carry 1 / (1 - U(1)))."""
    converges = ph.phase != "diverges"
    return {"nu": ph.nu, "kappa": ph.kappa,
            "signal_exponent": ph.signal_exponent, "noise_exponent": ph.noise_exponent,
            "signal_loss_constant": ph.signal_loss_constant if converges else None,
            "noise_loss_constant": ph.noise_loss_constant if converges else None,
            "signal_constant": ph.signal_constant, "noise_constant": ph.noise_constant,
            "noise_feedback": ph.noise_feedback, "signal_total": ph.signal_total,
            "decay_rate": ph.decay_rate, "phase": ph.phase, "diverges": not converges,
            "transition_time": ph.transition_time, "cutoff_time": ph.cutoff_time,
            "rate": ph.rate, "fit_deviation": ph.fit_deviation, "reason": ph.reason}


def run(args) -> int:
    from sgdyn.theory import checks
    from sgdyn.theory.asymptotics import phases
    ph = phases(problem_from_args(args), args.alpha, args.beta,
                checks.integer("batch", args.batch, 1), method_from_args(args), noise_from_args(args),
                max_deviation=checks.positive("max_deviation", args.max_deviation))
    if print_result(args, summary(ph)):
        return 0
    print(f"power law: nu = {ph.nu:.6g}, kappa = {ph.kappa:.6g} (fit log-deviation {ph.fit_deviation:.2g})")
    if ph.phase == "diverges":
        print(ph.reason if ph.reason.startswith("diverges") else f"diverges: {ph.reason}")
        return 0
    print(f"signal asymptote: L_t ~ {ph.signal_loss_constant:.6g} t^-{ph.signal_exponent:.6g}")
    if ph.noise_loss_constant > 0:
        print(f"noise asymptote:  L_t ~ {ph.noise_loss_constant:.6g} t^-{ph.noise_exponent:.6g}")
    else:
        print(f"noise asymptote:  none (sum of the signal V(1) infinite: kappa / nu <= 1), "
              f"exponent {ph.noise_exponent:.6g}")
    print(f"phase at large t: {ph.phase}")
    tx = "none" if ph.transition_time is None else f"{ph.transition_time:.6g}"
    print(f"transition time:  {tx}  (power law valid until t ~ {ph.cutoff_time:.3g})")
    print(ph.reason)
    return 0
