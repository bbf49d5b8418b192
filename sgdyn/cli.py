"""``sgdyn <command>``: one module per command under ``sgdyn/commands`` (each defines
``register(subparsers)`` and sets ``func``). Bad input prints one line and exits with code 2."""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys

from sgdyn.theory.methods import METHODS
from sgdyn.theory.noise import GAUSSIAN, NoiseModel
from sgdyn.theory.problem import Problem

COMMAND_MODULES = ("loss", "derive", "critical_lr", "critical_batch", "rate", "optimize", "simulate",
                   "validate", "momentum_gap", "adaptive_batch", "sweep", "sam_edge", "edge", "eos",
                   "lr_sweep", "phase_diagram", "plot", "phases", "problem", "check_se")


class UsageError(ValueError):
    pass


def add_problem_args(p: argparse.ArgumentParser, *, hyper: tuple[str, ...] = ("alpha", "beta", "batch")):
    """The flags every theory/simulation command shares (problem, noise, method, hyperparameters)."""
    p.add_argument("--problem", required=True,
                   help="file (.json/.npz with eigenvalues, initial[, label_noise, data_size]) "
                        "or powerlaw:nu=..,kappa=..,n=..")
    if "alpha" in hyper:
        p.add_argument("--alpha", type=float, required=True, help="learning rate (PyTorch lr)")
    if "beta" in hyper:
        p.add_argument("--beta", type=float, default=0.0, help="momentum in (-1, 1) (default 0)")
    if "batch" in hyper:
        p.add_argument("--batch", type=float, required=True, help="mini-batch size b >= 1")
    p.add_argument("--method", choices=sorted(METHODS), default="heavy-ball")
    add_noise_args(p)
    p.add_argument("--label-noise", type=float, default=None, help="label-noise variance sigma^2")
    p.add_argument("--data-size", type=float, default=None,
                   help="batches drawn without replacement from N data points")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_noise_args(p: argparse.ArgumentParser) -> None:
    """``--tau1/--tau2``: default the problem file's own (fitted) tau, else Gaussian (1, -1)."""
    p.add_argument("--tau1", type=float, default=None,
                   help="SE noise tau1 (default: the problem file's tau1, else 1: Gaussian)")
    p.add_argument("--tau2", type=float, default=None,
                   help="SE noise tau2 (default: the problem file's tau2, else -1: Gaussian)")


def _parsed_problem(args) -> Problem:
    """``Problem.parse(args.problem)``, read once per command (noise_from_args needs it too)."""
    cache = vars(args).setdefault("_parsed_problem", {})
    if args.problem not in cache:
        cache[args.problem] = Problem.parse(args.problem)
    return cache[args.problem]


def problem_from_args(args) -> Problem:
    problem = _parsed_problem(args)
    changes = {}
    if getattr(args, "label_noise", None) is not None:
        if problem.data is not None:
            raise ValueError("--label-noise: a data problem's label noise is the mean squared "
                             f"residual of its rows ({problem.label_noise:.6g}); it cannot be set")
        changes["label_noise"] = args.label_noise
    if getattr(args, "data_size", None) is not None:
        changes["data_size"] = args.data_size
    return problem.replace(**changes) if changes else problem


def problem_noise(args) -> NoiseModel:
    """The problem file's own noise model (a fitted tau), else the Gaussian ``(1, -1)``
    (power-law specs carry none: they are not parsed here, so a sweep may leave their
    parameters to its axes)."""
    if args.problem.startswith("powerlaw:"):
        return GAUSSIAN
    return _parsed_problem(args).noise or GAUSSIAN


def noise_from_args(args) -> NoiseModel:
    """``--tau1/--tau2`` where given; the rest from the problem file's own noise model (a fitted
    tau), else the Gaussian ``(1, -1)``."""
    own = problem_noise(args)
    return NoiseModel(own.tau1 if args.tau1 is None else args.tau1,
                      own.tau2 if args.tau2 is None else args.tau2)


def noise_source(args) -> str:
    """Where ``noise_from_args`` took its numbers from (for the one-line route statements)."""
    given = [f"--{name}" for name in ("tau1", "tau2") if getattr(args, name) is not None]
    if len(given) == 2:
        return "--tau1/--tau2"
    problem = None if args.problem.startswith("powerlaw:") else _parsed_problem(args)
    if problem is not None and problem.noise is not None:
        res = "" if problem.tau_residual is None else f", fit residual {problem.tau_residual:.3g}"
        base = f"the problem file's tau{res}"
    else:
        base = "the Gaussian default"
    return base + (f", {given[0]} from the flag" if given else "")


def add_figure_run_args(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--out FIGURE`` and ``--json``: the flags of the network-simulation commands."""
    p.add_argument("--seed", type=float, default=0)
    p.add_argument("--out", default=None, help="figure file (.png, .svg or .pdf)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def check_figure_path(args) -> None:
    """Refuse a bad ``--out`` before any simulation runs (matplotlib is imported only then)."""
    if args.out is not None:
        from sgdyn.plots_edges import check_path
        check_path(args.out)


def print_json(obj) -> None:
    """Strict JSON (non-finite floats become null, never NaN/Infinity tokens)."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    print(json.dumps(clean(obj), allow_nan=False))


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sgdyn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"sgdyn.commands.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except ValueError as exc:   # UsageError included: bad input is one line and exit code 2
        msg = " ".join(str(exc).split())
        print(f"sgdyn: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:     # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
