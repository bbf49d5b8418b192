"""``sgdyn problem from-data X Y --out FILE``: a data problem from a data matrix and its targets
(``theory.problem.Problem.from_rows``), keeping the rows for the exact finite-data route and the
SE tau fitted to them; ``sgdyn problem from-kernel K Y --out FILE``: the function-space problem
of kernel regression on a Gram matrix (``Problem.from_kernel``); ``sgdyn problem from-network
--data X --target Y --depth L --width W --activation A --out FILE``: the kernel problem of a
fully-connected network's NTK, empirical (one network at initialisation, ``simulate.mlp``) or
analytic (infinite width, ``theory.ntk``); ``sgdyn problem show FILE``: what a problem file
holds."""
from __future__ import annotations

import os

from sgdyn.cli import print_json

COMMAND = "problem"
HELP = ("data problems: from-data (build a problem file from X, y), from-kernel (from a Gram "
        "matrix K, y), from-network (from a network's NTK on X, y), show (what a problem file "
        "holds)")


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
    k = kinds.add_parser("from-kernel", help="problem file of kernel regression on a Gram matrix K "
                         "(n x n, symmetric positive semi-definite) and targets y")
    k.add_argument("K", help="Gram matrix, .npy or .csv (n x n)")
    k.add_argument("y", help="targets, .npy or .csv (n numbers)")
    k.add_argument("--out", required=True, help="problem file to write (.npz or .json)")
    k.add_argument("--f0", default=None, help="the model's outputs at initialisation (.npy or .csv, "
                   "n numbers; default 0): the problem trains on y - f0")
    k.add_argument("--psd-tol", type=float, default=1e-8,
                   help="relative tolerance of the symmetry and definiteness checks (default 1e-8)")
    k.add_argument("--name", default=None, help="problem name (default: the stem of K)")
    k.add_argument("--json", action="store_true", help="print one JSON object")
    k.set_defaults(func=run_from_kernel)
    n = kinds.add_parser("from-network", help="problem file of a fully-connected network's NTK on a "
                         "data set (the linearised network trained by SGD)")
    n.add_argument("--data", required=True, help="inputs X, .npy or .csv (n rows, d features)")
    n.add_argument("--target", required=True, help="targets y, .npy or .csv (n numbers)")
    n.add_argument("--depth", type=int, required=True, help="hidden layers (1..32)")
    n.add_argument("--width", type=int, required=True, help="units per hidden layer (1..65536)")
    n.add_argument("--activation", required=True, help="relu, tanh or erf")
    n.add_argument("--parametrization", default="ntk",
                   help="ntk or standard (default ntk)")
    n.add_argument("--weight-std", type=float, default=1.0, help="sigma_w (default 1)")
    n.add_argument("--bias-std", type=float, default=0.1, help="sigma_b (default 0.1)")
    n.add_argument("--analytic", action="store_true",
                   help="the infinite-width NTK (f0 = 0) instead of one network's at initialisation")
    n.add_argument("--seed", type=int, default=0, help="seed of the network's initialisation")
    n.add_argument("--out", required=True, help="problem file to write (.npz or .json)")
    n.add_argument("--name", default=None, help="problem name (default: the architecture)")
    n.add_argument("--json", action="store_true", help="print one JSON object")
    n.set_defaults(func=run_from_network)
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


def _matrix_and_targets(args, m_path: str, m_name: str, y_path: str, y_name: str):
    """Check ``--out``, read the n-row matrix and the n targets; errors name the files."""
    from sgdyn.theory.checks import output_path
    from sgdyn.theory.data_problem import read_matrix
    output_path("--out", args.out, (".npz", ".json"))
    M = read_matrix(m_path, m_name, 2)
    y = read_matrix(y_path, y_name, 1)
    if y.shape[0] != M.shape[0]:
        raise ValueError(f"{y_name} file {y_path!r} has {y.shape[0]} targets but {m_name} file "
                         f"{m_path!r} has {M.shape[0]} rows")
    return M, y


def run_from_data(args) -> int:
    from sgdyn.theory.data_problem import read_matrix
    from sgdyn.theory.problem import Problem
    X, y = _matrix_and_targets(args, args.X, "X", args.y, "y")
    w0 = None if args.w0 is None else read_matrix(args.w0, "w0", 1)
    name = args.name or os.path.splitext(os.path.basename(args.X))[0]
    problem = Problem.from_rows(X, y, standardize_data=args.standardize, w0=w0, name=name)
    return _write(problem, args.out, args.json, {})


def _write(problem, out: str, as_json: bool, extra: dict) -> int:
    problem.save(out)
    if as_json:
        print_json(dict(out=out, **extra, **summary(problem)))
    else:
        print(f"wrote {out}")
        print("\n".join([f"{k}: {v}" for k, v in extra.items()] + _lines(problem)))
    return 0


def run_from_kernel(args) -> int:
    from sgdyn.theory.data_problem import read_matrix
    from sgdyn.theory.problem import Problem
    K, y = _matrix_and_targets(args, args.K, "K", args.y, "y")
    f0 = None if args.f0 is None else read_matrix(args.f0, "f0", 1)
    name = args.name or os.path.splitext(os.path.basename(args.K))[0]
    problem = Problem.from_kernel(K, y, f0=f0, psd_tol=args.psd_tol, name=name)
    return _write(problem, args.out, args.json, {"kernel": f"Gram matrix {args.K}"})


def run_from_network(args) -> int:
    from sgdyn.theory.ntk import Architecture, analytic_kernels
    from sgdyn.theory.problem import Problem
    arch = Architecture(args.depth, args.width, args.activation, args.parametrization,
                        args.weight_std, args.bias_std)
    X, y = _matrix_and_targets(args, args.data, "--data", args.target, "--target")
    label = (f"{args.activation}, depth {arch.depth}, width {arch.width}, "
             f"{arch.parametrization} parametrisation")
    if args.analytic:
        K, f0 = analytic_kernels(X, arch).ntk, None
        kernel = f"analytic infinite-width NTK ({label}); f0 = 0"
    else:
        from sgdyn.simulate.mlp import MLP
        net = MLP.init(arch, X.shape[1], args.seed)
        K, f0 = net.ntk(X).ntk, net.forward(X)
        kernel = (f"empirical NTK of one network at initialisation ({label}, seed {args.seed}, "
                  f"{net.size} parameters); f0 its outputs")
    name = args.name or (f"ntk:{args.activation},depth={arch.depth},width={arch.width}"
                         f"{',analytic' if args.analytic else f',seed={args.seed}'}")
    problem = Problem.from_kernel(K, y, f0=f0, name=name)
    return _write(problem, args.out, args.json, {"kernel": kernel})


def run_show(args) -> int:
    from sgdyn.theory.problem import Problem
    problem = Problem.from_file(args.file)
    if args.json:
        print_json(summary(problem))
    else:
        print("\n".join(_lines(problem)))
    return 0
