"""``sgdyn <command>``: one module per command under ``sgdyn/commands`` (each defines ``COMMAND``,
``HELP`` and ``register(subparsers)``, which sets ``func``). Bad input prints one line and exits
with code 2.

Start-up stays short: a command module imports only the standard library and this module at its
top (its numerical work imports numpy, numba, sympy or matplotlib inside ``run``), and only the
requested command's parser is built (the others are listed with their one-line help), so
``sgdyn --help`` imports no numerical package at all (``tests/sgdyn/test_startup.py``).
"""
from __future__ import annotations

import argparse
import atexit
import csv
import importlib
import io
import json
import math
import os
import sys

COMMAND_MODULES = ("loss", "derive", "critical_lr", "critical_batch", "rate", "optimize", "simulate",
                   "validate", "momentum_gap", "adaptive_batch", "sweep", "sam_edge", "edge", "eos",
                   "lr_sweep", "phase_diagram", "plot", "phases", "problem", "check_se", "methods",
                   "schedule", "explore")

DESCRIPTION = ("sgdyn: the expected loss dynamics of mini-batch SGD / momentum on linear models "
               "(exact SE theory, stability, optima) and Monte Carlo runs to check them. "
               "'sgdyn COMMAND --help' for a command's flags.")
# what the running command was called with (set by ``main``): echoed by print_json / print_csv
_RUN: dict = {}


class UsageError(ValueError):
    pass


_SCHEDULE_HELP = ("; a number or a schedule (e.g. \"warmup(200)+cosine(0.3,floor=0.01)\", "
                  "\"step(0.3,milestones=[1000],factor=0.1)\", a .npy/.csv file of per-step values; "
                  "see docs/schedules.md)")


def add_problem_args(p: argparse.ArgumentParser, *, hyper: tuple[str, ...] = ("alpha", "beta", "batch"),
                     schedules: bool = False):
    """The flags every theory/simulation command shares (problem, noise, method, hyperparameters).
    ``schedules``: the hyperparameters may be schedules (text forms, parsed by ``run_from_args``)."""
    kind = str if schedules else float
    more = _SCHEDULE_HELP if schedules else ""
    p.add_argument("--problem", required=True,
                   help="file (.json/.npz with eigenvalues, initial[, label_noise, data_size]) "
                        "or powerlaw:nu=..,kappa=..,n=..")
    if "alpha" in hyper:
        p.add_argument("--alpha", type=kind, required=True, help="learning rate (PyTorch lr)" + more)
    if "beta" in hyper:
        p.add_argument("--beta", type=kind, default=kind(0.0) if not schedules else "0",
                       help="momentum in (-1, 1) (default 0)" + more)
    if "batch" in hyper:
        p.add_argument("--batch", type=kind, required=True, help="mini-batch size b >= 1" + more)
    add_method_args(p)
    add_noise_args(p)
    p.add_argument("--label-noise", type=float, default=None, help="label-noise variance sigma^2")
    p.add_argument("--data-size", type=float, default=None,
                   help="batches drawn without replacement from N data points")
    add_output_args(p)


def add_output_args(p: argparse.ArgumentParser) -> None:
    """``--json`` and ``--csv`` (one of them): machine-readable output that echoes the inputs."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true",
                   help="print one JSON object (with the inputs and the package version)")
    g.add_argument("--csv", action="store_true",
                   help="print a CSV table ('#' lines first: the inputs, the package version and "
                        "the scalar results)")


def add_method_args(p: argparse.ArgumentParser) -> None:
    """``--method``, ``--method-file``, ``--param``: any method the engine can describe."""
    p.add_argument("--method", default=None,
                   help="a shipped method (list: sgdyn methods; default heavy-ball), ema-<name>, or "
                        "update equations in quotes, e.g. \"v' = beta*v - alpha*g(w); w' = w + v'\"")
    p.add_argument("--method-file", default=None,
                   help="a method in a file: .txt (update equations) or .json (a 'text' entry, or "
                        "matrices F, K, G, x0 with params)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a method parameter beyond alpha and beta (repeatable), e.g. --param nu=0.7")


def _params(args, schedules: bool) -> dict:
    out = {}
    for item in getattr(args, "param", None) or []:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"--param {item!r} must read NAME=VALUE (e.g. nu=0.7)")
        if name in out:
            raise ValueError(f"--param {name} is given twice")
        if schedules:
            out[name] = value
        else:
            try:
                out[name] = float(value)
            except ValueError:
                raise ValueError(f"--param {name}: this command takes a number, got {value!r}") from None
    return out


def _named(label: str, f, value):
    """``f(value)``, with ``label`` (the flag, the file) leading any error it raises."""
    try:
        return f(value)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None


def method_from_args(args, schedules: bool = False):
    """The method of ``--method`` / ``--method-file`` with ``--param`` values bound (numbers; with
    ``schedules`` the method comes back unbound and the parameters as a second value, text forms
    for ``run_from_args``)."""
    from sgdyn.theory.methods import get_method
    if getattr(args, "method_file", None):
        from sgdyn.theory.method_text import load_method
        if args.method is not None:
            raise ValueError("--method and --method-file: give one of them")
        m = _named(f"--method-file {args.method_file}", load_method, args.method_file)
    else:
        m = _named("--method", get_method, args.method or "heavy-ball")
    params = _params(args, schedules)
    unknown = set(params) - {p.name for p in m.extra}
    if unknown:
        known = ", ".join(p.name for p in m.extra) or "none"
        raise ValueError(f"--param {sorted(unknown)[0]}: method {m.name!r} has no such parameter "
                         f"(its parameters: {known})")
    _RUN["method"] = m
    if schedules:
        return m, params
    return m.bind(**params) if params else m


def sampling_from_args(args, problem):
    """``--sampling`` (default: without replacement when the problem has a data size, else
    i.i.d.) with ``--features`` and the data set's size (``--data-size``, or a data problem's
    rows)."""
    from sgdyn.theory.sampling import Sampling
    kind = getattr(args, "sampling", None)
    features = getattr(args, "features", None) or "gaussian"
    n = problem.data_size if problem.data_size is not None else \
        (problem.data.n if problem.data is not None else None)
    if kind is None:
        kind = "iid" if problem.data_size is None else "without-replacement"
    if kind == "iid":
        if problem.data_size is not None and getattr(args, "sampling", None) == "iid":
            raise ValueError("--sampling iid and --data-size: i.i.d. draws come from the "
                             "population; drop one of them")
        return Sampling("iid", None, features)
    if n is None:
        raise ValueError(f"--sampling {kind} needs the data set's size: --data-size N (or a data "
                         "problem with its rows)")
    return Sampling(kind, n, features)


def record_from_args(args, steps: int):
    """``--record`` (all | every:K | log:N | at:t1,t2,..) or ``--every K``; the full curve of a
    very long run is refused (it would not fit in memory: ask for checkpoints)."""
    from sgdyn.theory.record import Record
    text = getattr(args, "record", None)
    every = getattr(args, "every", None)
    if text is not None and every not in (None, 1, 1.0):
        raise ValueError("--record and --every: give one of them")
    if text is None:
        rec = Record.every(every) if every not in (None,) else Record.all()
    else:
        kind, sep, value = text.partition(":")
        try:
            if kind == "all" and not sep:
                rec = Record.all()
            elif kind == "every" and sep:
                rec = Record.every(float(value))
            elif kind == "log" and sep:
                rec = Record.log(float(value))
            elif kind == "at" and sep:
                rec = Record.at([float(v) for v in value.split(",") if v.strip()])
            else:
                raise ValueError
        except ValueError as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise ValueError(f"--record {text!r} must read all, every:K, log:N or at:t1,t2,..{detail}") from None
    n = rec.steps_for(steps).size if rec.kind != "all" else steps + 1
    if n > RECORD_LIMIT:
        raise ValueError(f"--record: {n} recorded steps exceed the limit of {RECORD_LIMIT}; ask for "
                         "checkpoints, e.g. --record log:200 or --record every:1000")
    return rec


RECORD_LIMIT = 10 ** 7


def run_from_args(args, steps: int):
    """The ``sgdyn.theory.Run`` the flags describe: problem, method (with ``--param``), the
    hyperparameters as schedules, the sampling, the noise model and the recorded steps."""
    from sgdyn.theory.run import Run
    from sgdyn.theory.schedules import parse_shape
    problem = problem_from_args(args)
    method, params = method_from_args(args, schedules=True)
    sampling = sampling_from_args(args, problem)
    shapes = {}
    for name in ("alpha", "beta", "batch"):
        try:
            shapes[name] = parse_shape(str(getattr(args, name)))
        except ValueError as exc:
            raise ValueError(f"--{name}: {exc}") from None
    for name, text in params.items():
        try:
            params[name] = parse_shape(text)
        except ValueError as exc:
            raise ValueError(f"--param {name}: {exc}") from None
    run = Run.build(problem, method, steps=steps, params=params, sampling=sampling,
                    noise=noise_from_args(args), record=record_from_args(args, steps), **shapes)
    _RUN["run"] = run
    return run


def add_noise_args(p: argparse.ArgumentParser) -> None:
    """``--tau1/--tau2``: default the problem file's own (fitted) tau, else Gaussian (1, -1)."""
    p.add_argument("--tau1", type=float, default=None,
                   help="SE noise tau1 (default: the problem file's tau1, else 1: Gaussian)")
    p.add_argument("--tau2", type=float, default=None,
                   help="SE noise tau2 (default: the problem file's tau2, else -1: Gaussian)")


def _parsed_problem(args):
    """``Problem.parse(args.problem)``, read once per command (noise_from_args needs it too)."""
    from sgdyn.theory.problem import Problem
    cache = vars(args).setdefault("_parsed_problem", {})
    if args.problem not in cache:
        cache[args.problem] = Problem.parse(args.problem)
    return cache[args.problem]


def problem_from_args(args):
    problem = _parsed_problem(args)
    changes = {}
    if getattr(args, "label_noise", None) is not None:
        if problem.data is not None:
            raise ValueError("--label-noise: a data problem's label noise is the mean squared "
                             f"residual of its rows ({problem.label_noise:.6g}); it cannot be set")
        changes["label_noise"] = args.label_noise
    if getattr(args, "data_size", None) is not None:
        changes["data_size"] = args.data_size
    problem = problem.replace(**changes) if changes else problem
    _RUN["problem"] = problem
    return problem


def problem_noise(args):
    """The problem file's own noise model (a fitted tau), else the Gaussian ``(1, -1)``
    (power-law specs carry none: they are not parsed here, so a sweep may leave their
    parameters to its axes)."""
    from sgdyn.theory.noise import GAUSSIAN
    if args.problem.startswith("powerlaw:"):
        return GAUSSIAN
    return _parsed_problem(args).noise or GAUSSIAN


def noise_from_args(args):
    """``--tau1/--tau2`` where given; the rest from the problem file's own noise model (a fitted
    tau), else the Gaussian ``(1, -1)``."""
    from sgdyn.theory.noise import NoiseModel
    own = problem_noise(args)
    noise = NoiseModel(own.tau1 if args.tau1 is None else args.tau1,
                       own.tau2 if args.tau2 is None else args.tau2)
    _RUN["noise"] = noise
    return noise


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


def modes_text(problem) -> str:
    """"1000 modes", or for a grouped spectrum (entries standing for several equal modes)
    "1e+08 modes in 1000 groups": a group is not a mode."""
    if problem.has_multiplicity:
        return f"{problem.total_modes:.6g} modes in {problem.n_modes} groups"
    return f"{problem.n_modes} modes"


def seed_arg(text: str) -> int:
    """A ``--seed``: an exact integer in [0, 2^64 - 1] (as a float, 9007199254740993 would be
    ...992: a different run)."""
    t = text.strip()
    if not (t.isdigit() and int(t) < 2 ** 64):
        raise argparse.ArgumentTypeError(f"a seed is an integer in [0, 2^64 - 1], got {text!r}")
    return int(t)


def add_figure_run_args(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--out FIGURE``, ``--json`` / ``--csv``: the flags of the network-simulation
    commands."""
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--out", default=None, help="figure file (.png, .svg or .pdf)")
    add_output_args(p)


def check_figure_path(args) -> None:
    """Refuse a bad ``--out`` before any simulation runs (matplotlib is imported only then)."""
    if args.out is not None:
        from sgdyn.figures import check_out
        check_out(args.out)


# -- machine-readable output ----------------------------------------------------------------------
def _clean(v, finite_only: bool = True):
    """Plain Python: numpy scalars and arrays to Python numbers and lists; for JSON
    (``finite_only``) non-finite floats become None."""
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
        v = v.tolist()
    if finite_only and isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x, finite_only) for k, x in v.items()}
    if isinstance(v, (list, tuple, range)):
        return [_clean(x, finite_only) for x in v]
    return v


def run_inputs() -> dict:
    """What the running command was given: its name, every flag, the problem it resolved to
    (name, modes, Tr H, label noise, data size) and the package version."""
    from sgdyn import __version__
    args = _RUN.get("args")
    out = {}
    if args is not None:
        flags = {k: v for k, v in vars(args).items()
                 if k not in ("func", "json", "csv", "command", "no_progress", "_parsed_problem")
                 and not callable(v)}
        out["command"] = _RUN.get("command")
        out["flags"] = flags
    problem = _RUN.get("problem")
    if problem is not None:
        out["problem"] = {"name": problem.name, "n_modes": problem.n_modes,
                          "total_modes": problem.total_modes, "trace": problem.trace,
                          "label_noise": problem.label_noise, "data_size": problem.data_size}
    noise = _RUN.get("noise")
    if noise is not None:
        out["noise"] = {"model": "SE", "tau1": noise.tau1, "tau2": noise.tau2}
    run = _RUN.get("run")
    if run is not None:
        out["run"] = run.describe()
    elif _RUN.get("method") is not None:
        m = _RUN["method"]
        out["method"] = {"name": m.label, "update": m.description}
    out["sgdyn_version"] = __version__
    return out


def print_json(obj) -> None:
    """Strict JSON (non-finite floats become null, never NaN/Infinity tokens). A dict gains an
    ``inputs`` entry (``run_inputs``) so that the file explains itself."""
    if isinstance(obj, dict) and "inputs" not in obj:
        obj = {**obj, "inputs": run_inputs()}
    print(json.dumps(_clean(obj), allow_nan=False))


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    return str(v)


def _flatten(obj, prefix=""):
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, name + ".")
        else:
            yield name, v


def csv_text(obj: dict, table: dict | None = None) -> str:
    """CSV of a result. ``table``: the columns (name -> equal-length sequences); by default the
    1-D lists of ``obj`` that share the longest length (a list of such lists, e.g. quantiles,
    gives one column per row, ``name[i]``). Everything else (scalars, other lists, the inputs)
    goes into ``# name: JSON`` lines above the header; with no column at all the scalars form a
    one-row table. Floats are written exactly (``repr``); ``inf`` as ``inf``, nan / None empty.
    """
    items = dict(_flatten(_clean(obj, finite_only=False)))
    if table is None:
        def is_column(v):
            return isinstance(v, list) and v and all(not isinstance(x, (list, dict)) for x in v)

        def is_block(v):
            return (isinstance(v, list) and v and all(is_column(r) for r in v)
                    and len({len(r) for r in v}) == 1)
        lengths = [len(v) for v in items.values() if is_column(v)] + \
            [len(v[0]) for v in items.values() if is_block(v)]
        table = {}
        if lengths:
            n = max(lengths)
            for k, v in list(items.items()):
                if is_column(v) and len(v) == n:
                    table[k] = items.pop(k)
                elif is_block(v) and len(v[0]) == n:
                    for i, row in enumerate(items.pop(k)):
                        table[f"{k}[{i}]"] = row
        else:
            table = {k: [items.pop(k)] for k in list(items)
                     if not isinstance(items[k], (list, dict))}
    else:
        table = {k: _clean(list(v), finite_only=False) for k, v in table.items()}
        sizes = {len(v) for v in table.values()}
        if len(sizes) > 1:
            raise ValueError(f"csv table columns must have one length, got {sorted(sizes)}")
        for k in table:
            items.pop(k, None)
    buf = io.StringIO()
    for k, v in _flatten({"inputs": run_inputs(), **{k: v for k, v in items.items()
                                                     if k not in ("inputs",)}}):
        buf.write(f"# {k}: {json.dumps(_clean(v), allow_nan=False)}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(table))
    for row in zip(*table.values()):
        w.writerow([_cell(x) for x in row])
    return buf.getvalue()


def print_csv(obj: dict, table: dict | None = None) -> None:
    sys.stdout.write(csv_text(obj, table))


def print_result(args, obj: dict, table: dict | None = None) -> bool:
    """Print ``obj`` as JSON (``--json``) or CSV (``--csv``, columns ``table`` if given); False if
    neither was asked (then the command prints its text)."""
    if getattr(args, "json", False):
        print_json(obj)
        return True
    if getattr(args, "csv", False):
        print_csv(obj, table)
        return True
    return False


# -- the parser -----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _command_module(name: str):
    return importlib.import_module(f"sgdyn.commands.{name}")


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The parser. With ``argv`` given, only the command it names gets its full parser (the
    others stay one-line entries of ``sgdyn --help``); without it, every command's."""
    parser = _Parser(prog="sgdyn", description=DESCRIPTION)
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (also: environment SGDYN_PROGRESS=0)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for name in COMMAND_MODULES:
        mod = _command_module(name)
        if wanted is None or wanted == mod.COMMAND:
            mod.register(sub)
        else:
            sub.add_parser(mod.COMMAND, help=mod.HELP, add_help=False)
    return parser


def main(argv=None) -> int:
    """Run ``sgdyn ARGV``; returns the exit code. Without ``argv`` (the console script,
    ``python -m sgdyn``) the process ends here: after the exit handlers and a flush of the
    output it skips tearing down every imported module one by one (after sympy and numba that
    teardown alone takes about 0.3 s)."""
    if argv is None:
        code = _main(sys.argv[1:])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            code = code or 1
        atexit._run_exitfuncs()
        os._exit(code)
    return _main(list(argv))


def _as_flags(msg: str) -> str:
    """A message that starts with a Python argument name of a flag (``max_batch must ...``) starts
    with the flag instead (``--max-batch must ...``): the name the user typed."""
    args = _RUN.get("args")
    head = msg.split(" ", 1)[0].rstrip(":")
    if args is not None and "_" in head and head in vars(args):
        return "--" + head.replace("_", "-") + msg[len(head):]
    return msg


def _main(argv) -> int:
    _RUN.clear()
    try:
        args = build_parser(argv).parse_args(argv)
        _RUN.update(args=args, command=args.command)
        from sgdyn.theory import progress
        quiet = args.no_progress or getattr(args, "quiet", False) or not sys.stderr.isatty()
        with progress.enabled(False if quiet else None):
            return int(args.func(args) or 0)
    except ValueError as exc:   # UsageError included: bad input is one line and exit code 2
        msg = _as_flags(" ".join(str(exc).split()))
        print(f"sgdyn: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:     # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        _RUN.clear()
