"""``sgdyn derive``: the symbolic generating functions of a method."""
from __future__ import annotations

COMMAND = "derive"
HELP = "print U(z), V(z), L(z) and the characteristic polynomial"


def register(sub):
    from sgdyn.cli import add_method_args
    p = sub.add_parser(COMMAND, help=HELP)
    add_method_args(p)
    p.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.cli import method_from_args
    from sgdyn.theory.symbolic import derive
    print(derive(method_from_args(args)).summary(latex=args.latex))
    return 0
