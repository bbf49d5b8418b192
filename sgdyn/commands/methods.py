"""``sgdyn methods``: the shipped methods with their update equations, parameters, references and
known identities (``sgdyn.theory.catalogue``); ``--method`` shows one (a name, ``ema-<name>`` or
update equations, to check how a description is read)."""
from __future__ import annotations

from sgdyn.cli import add_method_args, add_output_args, method_from_args, print_result

COMMAND = "methods"
HELP = "list the shipped methods (update equations, parameters, references)"


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    add_method_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def describe(m) -> dict:
    return {"name": m.name, "update": m.description, "state": list(m.state), "dimension": m.dim,
            "parameters": ["alpha"] + (["beta"] if m.has_momentum else []) +
            [f"{p.name} = {p.default:g} in {p.interval}" for p in m.extra],
            "preconditioner": str(m.preconditioner), "identity": m.identity,
            "references": list(m.references)}


def run(args) -> int:
    from sgdyn.theory.catalogue import METHODS
    chosen = args.method is not None or args.method_file is not None or args.param
    methods = [method_from_args(args)] if chosen else [METHODS[n] for n in METHODS]
    rows = [describe(m) for m in methods]
    if print_result(args, {"methods": rows}, {k: [r[k] if not isinstance(r[k], list) else
                                                 "; ".join(r[k]) for r in rows]
                                             for k in ("name", "update", "parameters",
                                                       "preconditioner", "identity")}):
        return 0
    for r in rows:
        print(f"{r['name']}  ({r['dimension']}-dimensional state {', '.join(r['state'])})")
        print(f"  update: {r['update']}")
        print(f"  parameters: {', '.join(r['parameters'])}"
              + ("" if r["preconditioner"] == "1" else f"; gradient preconditioned by p = "
                                                      f"{r['preconditioner']}"))
        if r["identity"]:
            print(f"  identity: {r['identity']}")
        for ref in r["references"]:
            print(f"  reference: {ref}")
    return 0
