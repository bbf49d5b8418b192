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
from sgdyn.theory.noise import NoiseModel
from sgdyn.theory.problem import Problem

COMMAND_MODULES = ("loss", "derive", "critical_lr", "critical_batch", "rate", "optimize", "simulate",
                   "validate", "momentum_gap", "adaptive_batch", "sweep", "sam_edge", "edge", "eos",
                   "lr_sweep", "phase_diagram", "plot", "phases")


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
    p.add_argument("--tau1", type=float, default=1.0, help="SE noise tau1 (default 1: Gaussian)")
    p.add_argument("--tau2", type=float, default=-1.0, help="SE noise tau2 (default -1: Gaussian)")
    p.add_argument("--label-noise", type=float, default=None, help="label-noise variance sigma^2")
    p.add_argument("--data-size", type=float, default=None,
                   help="batches drawn without replacement from N data points")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def problem_from_args(args) -> Problem:
    problem = Problem.parse(args.problem)
    changes = {}
    if args.label_noise is not None:
        changes["label_noise"] = args.label_noise
    if args.data_size is not None:
        changes["data_size"] = args.data_size
    return problem.replace(**changes) if changes else problem


def noise_from_args(args) -> NoiseModel:
    return NoiseModel(args.tau1, args.tau2)


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
