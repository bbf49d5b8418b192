"""``sgdyn problem from-data X Y --out FILE``: a data problem from a data matrix and its targets
(``theory.problem.Problem.from_rows``), keeping the rows for the exact finite-data route and the
SE tau fitted to them; ``sgdyn problem show FILE``: what a problem file holds."""
from __future__ import annotations

import os

from sgdyn.cli import print_json

COMMAND = "problem"
HELP = "data problems: from-data (build a problem file from X, y), show (what a problem file holds)"


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    kinds = p.add_subparsers(dest="action", required=True)
    f = kinds.add_parser("from-data", help="problem file from a data matrix X (n x d) and targets y")
    f.add_argument("X", help="data matrix, .npy or .csv (n rows, d features)")
    f.add_argument("y", help="targets, .npy or .csv (n numbers)")
    f.add_argument("--out", required=True, help="problem file to write (.npz or .json)")
    f.add_argument("--standardize", action="store_true",
                   help="centre and scale each column of X and y to unit variance first")
    f.add_argument("--w0", default=None, help="initial weights (.npy or .csv, d numbers; default 0)")
    f.add_argument("--name", default=None, help="problem name (default: the stem of X)")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(func=run_from_data)
    s = kinds.add_parser("show", help="summary of a problem file")
    s.add_argument("file", help="problem file (.npz or .json)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=run_show)


def summary(problem) -> dict:
    data = problem.data
    out = {"name": problem.name, "modes": problem.n_modes, "trace": problem.trace,
           "lambda_max": float(problem.eigenvalues.max()),
           "lambda_min": float(problem.eigenvalues.min()), "initial_loss": problem.initial_loss,
           "label_noise": problem.label_noise, "data_size": problem.data_size,
           "tau1": None if problem.noise is None else problem.noise.tau1,
           "tau2": None if problem.noise is None else problem.noise.tau2,
           "tau_residual": problem.tau_residual, "rows": None if data is None else data.n,
           "features": None if data is None else data.features,
           "standardized": None if data is None else data.standardized}
    return out


def _lines(problem) -> list[str]:
    s = summary(problem)
    data = problem.data
    first = f"{s['name']}: {s['modes']} modes"
    if data is not None:
        first += (f" from {data.n} rows of {data.features} features"
                  f"{' (standardised)' if data.standardized else ''}")
    lines = [first + f", Tr H = {s['trace']:.6g}, lambda in [{s['lambda_min']:.4g}, "
             f"{s['lambda_max']:.4g}], L_0 = {s['initial_loss']:.6g}, label noise sigma^2 = "
             f"{s['label_noise']:.6g}"]
    if problem.noise is not None:
        res = "" if problem.tau_residual is None else f", relative residual {problem.tau_residual:.3f}"
        lines.append(f"SE noise: tau1 = {problem.noise.tau1:.4f}, tau2 = {problem.noise.tau2:.4f}{res}"
                     " (the default noise model of every command reading this file)")
    else:
        lines.append("SE noise: none stored (commands default to the Gaussian tau = (1, -1))")
    lines.append("batches: " + ("i.i.d. by default (--data-size N: without replacement)"
                                if problem.data_size is None else
                                f"without replacement from {problem.data_size} points"))
    lines.append("rows kept: the exact finite-data route applies (--route exact-data, check-se)"
                 if data is not None else "rows: not kept (spectrum only; no exact finite-data route)")
    return lines


def run_from_data(args) -> int:
    from sgdyn.theory.checks import output_path
    from sgdyn.theory.data_problem import read_matrix
    from sgdyn.theory.problem import Problem
    output_path("--out", args.out, (".npz", ".json"))
    X = read_matrix(args.X, "X", 2)
    y = read_matrix(args.y, "y", 1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y file {args.y!r} has {y.shape[0]} targets but X file {args.X!r} has "
                         f"{X.shape[0]} rows")
    w0 = None if args.w0 is None else read_matrix(args.w0, "w0", 1)
    name = args.name or os.path.splitext(os.path.basename(args.X))[0]
    problem = Problem.from_rows(X, y, standardize_data=args.standardize, w0=w0, name=name)
    problem.save(args.out)
    if args.json:
        print_json(dict(out=args.out, **summary(problem)))
    else:
        print(f"wrote {args.out}")
        print("\n".join(_lines(problem)))
    return 0


def run_show(args) -> int:
    from sgdyn.theory.problem import Problem
    problem = Problem.from_file(args.file)
    if args.json:
        print_json(summary(problem))
    else:
        print("\n".join(_lines(problem)))
    return 0
