"""``sgdyn derive``: the symbolic generating functions of a method."""
from __future__ import annotations

COMMAND = "derive"
HELP = "print U(z), V(z), L(z) and the characteristic polynomial"


def register(sub):
    from sgdyn.theory.methods import METHODS
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--method", choices=sorted(METHODS), default="heavy-ball")
    p.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    p.set_defaults(func=run)


def run(args) -> int:
    from sgdyn.theory.symbolic import derive
    print(derive(args.method).summary(latex=args.latex))
    return 0
