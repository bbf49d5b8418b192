"""``sgdyn sweep``: evaluate quantities over a grid into a Zarr store; re-running the same command
after an interruption resumes it."""
from __future__ import annotations

import argparse
import os
import signal
import sys

from sgdyn.cli import add_problem_args, print_result, problem_noise, seed_arg

COMMAND = "sweep"
HELP = ("evaluate quantities over a hyperparameter grid into a Zarr store (resumable; serial, "
        "local cores or a Dask cluster)")
_FIXED = ("alpha", "beta", "batch", "steps", "runs")


def parse_axis(text: str):
    """``name=v1,v2,..``, ``name=start:stop:num`` (linspace) or ``name=log:start:stop:num``:
    ``(name, values)``; for alpha, beta and batch also schedule text forms separated by ``;``
    (``alpha=cosine(0.3);step(0.3,milestones=[50])``)."""
    import numpy as np
    from sgdyn.sweep.grid import SCHEDULED
    name, sep, values = text.partition("=")
    if not sep or not values:
        raise ValueError(f"--axis {text!r} must read name=v1,v2,.. or name=start:stop:num "
                         f"or name=log:start:stop:num")
    if name.strip() in SCHEDULED and ("(" in values or values.endswith((".npy", ".csv"))):
        return name.strip(), [v.strip() for v in values.split(";")]
    parts = values.split(":")
    log = parts[0] == "log"
    numbers = parts[1:] if log else parts
    if len(parts) > 1 and len(numbers) != 3:
        raise ValueError(f"--axis {text!r}: a range reads start:stop:num or log:start:stop:num")
    try:
        if len(parts) == 1:
            return name.strip(), np.array([float(v) for v in values.split(",")])
        start, stop, num = (float(x) for x in numbers)
    except ValueError:
        raise ValueError(f"--axis {text!r}: values must be numbers") from None
    if not num.is_integer() or num < 1:
        raise ValueError(f"--axis {text!r}: num must be an integer >= 1, got {num:g}")
    if log and not (start > 0 and stop > 0):
        raise ValueError(f"--axis {text!r}: a log range needs start, stop > 0")
    fn = np.geomspace if log else np.linspace
    return name.strip(), fn(start, stop, int(num))


def sweep_method(args) -> str:
    """The method as text the sweep store keeps (a shipped name or update equations)."""
    if args.method_file or args.param:
        raise ValueError("--method-file/--param: a sweep takes --method NAME or update equations "
                         "(parameters as equations' defaults)")
    return args.method or "heavy-ball"


def setting(text):
    """A fixed --alpha/--beta/--batch: a number, else a schedule text form (kept as text)."""
    try:
        return float(text)
    except ValueError:
        return text


def register(sub):
    from sgdyn.sweep.quantities import QUANTITIES
    p = sub.add_parser(COMMAND, help=HELP)
    add_problem_args(p, hyper=())
    p.add_argument("--axis", action="append", required=True, metavar="NAME=VALUES",
                   help="grid axis: name=v1,v2,.. | name=start:stop:num | name=log:start:stop:num "
                        "(names: alpha, beta, batch, steps, runs, tau1, tau2, label_noise, "
                        "data_size, nu, kappa, n, scale; or a {placeholder} of a fixed schedule); "
                        "alpha, beta, batch also take schedules separated by ';' "
                        "(alpha='cosine(0.3);step(0.3,milestones=[50])'); repeat for more axes")
    p.add_argument("--quantity", action="append", required=True, choices=sorted(QUANTITIES),
                   help="what to evaluate at each point; repeat for more")
    p.add_argument("--store", required=True, help="Zarr store directory (created, or resumed)")
    for name in _FIXED:
        scheduled = name in ("alpha", "beta", "batch")
        p.add_argument(f"--{name}", type=setting if scheduled else float, default=None,
                       help=f"fixed {name} (if not an axis)" + (
                           "; a number or a schedule, whose {...} placeholders are axes "
                           "(--alpha 'warmup(20)+cosine({peak})' --axis peak=0.1,0.3)"
                           if scheduled else ""))
    p.add_argument("--features", choices=("gaussian", "rademacher"), default="gaussian",
                   help="feature law of the Monte Carlo runs")
    p.add_argument("--seed", type=seed_arg, default=0, help="base seed; point i uses a seed from (seed, i)")
    p.add_argument("--chunk", type=float, default=256, help="points per task and store chunk")
    p.add_argument("--scheduler", default="local",
                   help="'local' (Dask LocalCluster on this machine, default), 'serial' (no Dask) "
                        "or a Dask scheduler address tcp://host:port")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: cores)")
    p.add_argument("--overwrite", action="store_true", help="start afresh if the store exists")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal and bars are not "
                        "turned off by --no-progress or SGDYN_PROGRESS=0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.sweep import SweepSpec, SweepInterrupted, sweep
    from sgdyn.sweep.store import SweepStore

    axes = dict(parse_axis(a) for a in args.axis)
    fixed = {name: getattr(args, name) for name in _FIXED}
    fixed.update(label_noise=args.label_noise, data_size=args.data_size)
    own = problem_noise(args)          # the problem file's tau, else Gaussian
    for name in ("tau1", "tau2"):
        value = getattr(args, name)
        if name in axes and value is not None:
            raise ValueError(f"--{name} is also an axis")
        if name not in axes:
            fixed[name] = getattr(own, name) if value is None else value
    clash = [k for k, v in fixed.items() if k in axes and v is not None]
    if clash:
        raise ValueError(f"--{clash[0]} is also an axis")
    spec = SweepSpec.build(args.problem, axes, args.quantity, method=sweep_method(args),
                           features=args.features, seed=args.seed, chunk=args.chunk,
                           **{k: v for k, v in fixed.items() if k not in axes})
    from sgdyn.theory.progress import is_enabled
    # default: bars on when stderr is a terminal, unless sgdyn --no-progress / SGDYN_PROGRESS=0
    progress = is_enabled() if args.progress is None else args.progress
    try:
        report = sweep(spec, args.store, scheduler=args.scheduler, workers=args.workers,
                       progress=progress, overwrite=args.overwrite)
    except KeyboardInterrupt as exc:
        done = int(SweepStore(args.store, spec, ()).done().sum()) \
            if os.path.isdir(args.store) else 0       # interrupted while creating it
        print(f"sgdyn: interrupted with {done} of {spec.size} points in {args.store}; run the same "
              f"command again to resume", file=sys.stderr)
        signum = exc.signum if isinstance(exc, SweepInterrupted) else signal.SIGINT
        return 128 + int(signum)
    if not print_result(args, {"store": report.path, "points": report.points,
                               "done_before": report.done_before, "computed": report.computed,
                               "session": report.session, "seconds": report.seconds,
                               "dims": list(spec.axis_names)}):
        print(f"sweep of {report.points} points into {report.path}: {report.done_before} already "
              f"done, {report.computed} computed now (session {report.session}) in "
              f"{report.seconds:.3g} s")
    return 0
