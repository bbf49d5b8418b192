"""``sgdyn derive``: the symbolic generating functions of a method."""
from __future__ import annotations

from sgdyn.theory.methods import METHODS
from sgdyn.theory.symbolic import derive


def register(sub):
    p = sub.add_parser("derive", help="print U(z), V(z), L(z) and the characteristic polynomial")
    p.add_argument("--method", choices=sorted(METHODS), default="heavy-ball")
    p.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    p.set_defaults(func=run)


def run(args) -> int:
    print(derive(args.method).summary(latex=args.latex))
    return 0
