"""The text form of a method: update equations, parsed with sympy into ``(F, K, G, x0)``.

Grammar (statements separated by newlines or ``;``; ``#`` starts a comment)::

    name: my-method                      optional
    params: nu = 0.7 in [0, 1], c = 0.1  optional extra parameters: default [and interval]
    precondition: lambda**(-s)           optional scalar p(lambda) multiplying the gradient
    v' = beta*v - alpha*g(w)             one update per state variable, in order
    w' = w + v'
    output: w                            optional: the reported iterate (default w)
    init: v = 0                          optional: initial state per unit initial error

* A primed name ``x'`` is the new value of ``x``; updates run in the order written, so a
  right-hand side may use the new values of the variables updated above it.
* ``g(point)`` is the mini-batch gradient at ``point``, a linear combination of the current
  (unprimed) state; every ``g(...)`` of a step must be taken at the same point.
* Every right-hand side must be linear in the state and the gradient, with no constant term;
  coefficients are numbers and the parameters ``alpha``, ``beta`` and those declared in ``params``.
  ``lambda`` (the eigenvalue) may appear only in ``precondition``.
* The state is written in errors from the optimum: iterate-like variables start at the initial
  error (1 per unit), difference-like ones (velocities, buffers) at 0. By default the initial state
  is the one that the gradient-free map keeps fixed (at rest), scaled so that the output starts at
  1; ``init`` overrides it (``init: v = 0, wbar = w``; a variable it does not name starts at 0,
  except ``w`` and the output, which start at the initial error).

Example (heavy ball in PyTorch's form)::

    v' = beta*v - alpha*g(w); w' = w + v'
"""
from __future__ import annotations

import re
import tokenize

import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

from sgdyn.theory.methods import MAX_STATE_DIM, Method, Parameter, alpha, beta, lam

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN = re.compile(rf"\s*(?:({_NUMBER})|({_IDENT})('?)|(\*\*|[-+*/(),]))")
_KEYS = ("name", "params", "precondition", "output", "init", "references")


def _tokens(text: str, what: str) -> list[tuple[str, str]]:
    """Split an expression into (kind, token); anything but numbers, names, ``'`` after a name and
    ``+ - * / ** ( ) ,`` is refused (the text never reaches Python's eval unchecked)."""
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"{what}: unexpected character {text[pos:].strip()[:1]!r} in {text.strip()!r}")
        number, ident, prime, op = m.groups()
        out.append(("num", number) if number else ("name", ident + prime) if ident else ("op", op))
        pos = m.end()
    return out


def _parse(text: str, what: str, names: dict) -> sp.Expr:
    """A sympy expression from ``text``: every name must be a key of ``names`` (primed state names
    ``x'`` included), mapped to the sympy object it stands for."""
    parts = []
    for kind, tok in _tokens(text, what):
        if kind == "name":
            if tok not in names:
                raise ValueError(f"{what}: unknown name {tok!r} in {text.strip()!r}"
                                 f" (known: {', '.join(sorted(n for n in names if not n.startswith('_')))})")
            parts.append(f"_n{list(names).index(tok)}")
        else:
            parts.append(tok)
    local = {f"_n{i}": obj for i, obj in enumerate(names.values())}
    try:
        return parse_expr(" ".join(parts), local_dict=local, global_dict={"Integer": sp.Integer,
                          "Float": sp.Float, "Rational": sp.Rational, "Symbol": sp.Symbol},
                          transformations=standard_transformations, evaluate=True)
    except (SyntaxError, TypeError, ValueError, sp.SympifyError, tokenize.TokenError) as exc:
        raise ValueError(f"{what}: cannot parse {text.strip()!r} ({type(exc).__name__})") from None


def _parameters(text: str) -> list[Parameter]:
    out = []
    for item in re.split(r",(?![^\[\(]*[\]\)])", text):
        item = item.strip()
        if not item:
            continue
        m = re.fullmatch(rf"({_IDENT})\s*=\s*([-+]?{_NUMBER})(?:\s+in\s+([\[\(])\s*([-+]?{_NUMBER}|-inf)"
                         rf"\s*,\s*([-+]?{_NUMBER}|inf)\s*([\]\)]))?", item)
        if not m:
            raise ValueError(f"params: {item!r} must read 'name = default' or "
                             "'name = default in [low, high]'")
        name, default, lo_b, lo, hi, hi_b = m.groups()
        kw = {} if lo_b is None else dict(low=float(lo), high=float(hi), closed=lo_b + hi_b)
        out.append(Parameter(name, float(default), **kw))
    return out


def _coefficients(expr: sp.Expr, variables: list, what: str, show=str) -> list:
    """Coefficients of ``expr`` in ``variables``, refusing anything not linear or with a constant
    (``show`` writes an expression with the user's names)."""
    expr = sp.expand(expr)
    try:
        poly = sp.Poly(expr, *variables)
    except sp.PolynomialError:
        raise ValueError(f"{what} is not linear in the state and the gradient: {show(expr)}") from None
    if poly.total_degree() > 1:
        raise ValueError(f"{what} is not linear in the state and the gradient: {show(expr)}")
    if sp.simplify(poly.coeff_monomial(1)).is_zero is not True:
        raise ValueError(f"{what} has a constant term ({show(poly.coeff_monomial(1))}): the error "
                         "coordinates of a linear method have none")
    return [sp.factor(poly.coeff_monomial(v)) for v in variables]


def parse_method(text: str, name: str | None = None) -> Method:
    """A ``Method`` from update equations in the text form (module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("method text must be a non-empty string of update equations")
    fields: dict[str, str] = {}
    updates: list[tuple[str, str]] = []
    for raw in re.split(r"[;\n]", text):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, rest = line.partition(":")
        if sep and key.strip() in _KEYS:
            if key.strip() in fields:
                raise ValueError(f"method text: '{key.strip()}:' given twice")
            fields[key.strip()] = rest.strip()
            continue
        m = re.fullmatch(rf"({_IDENT})\s*'\s*=\s*(.+)", line)
        if not m:
            raise ValueError(f"method text: {line!r} is neither an update 'x\\' = ...' nor one of "
                             f"{', '.join(k + ':' for k in _KEYS)}")
        updates.append((m.group(1), m.group(2)))
    if not updates:
        raise ValueError("method text has no update equation (e.g. w' = w - alpha*g(w))")
    state = [v for v, _ in updates]
    if len(state) > MAX_STATE_DIM:
        raise ValueError(f"the method has {len(state)} state variables: at most {MAX_STATE_DIM} are "
                         "supported (the second-moment system grows like d(d+1)/2)")
    dup = sorted({v for v in state if state.count(v) > 1})
    if dup:
        raise ValueError(f"method text updates {', '.join(dup)} more than once")
    bad = [v for v in state if v in ("alpha", "beta", "g", "lambda", "lam")]
    if bad:
        raise ValueError(f"state variable name(s) {', '.join(bad)} are reserved")
    extra = _parameters(fields.get("params", ""))
    clash = {p.name for p in extra} & set(state)
    if clash:
        raise ValueError(f"{', '.join(sorted(clash))} is both a parameter and a state variable")
    output = fields.get("output", "w").strip()
    if output not in state:
        raise ValueError(f"output {output!r} is not a state variable ({', '.join(state)}); "
                         "name the reported iterate with 'output: x'")

    x = [sp.Symbol(f"_x{i}") for i in range(len(state))]
    gsym = sp.Symbol("_g")
    grad = sp.Function("g")
    base = {"alpha": alpha, "beta": beta, **{p.name: p.symbol for p in extra}}
    names = {**base, **dict(zip(state, x)), "g": grad}
    readable = {**{xi: sp.Symbol(v) for xi, v in zip(x, state)}, gsym: sp.Symbol("g")}

    def show(e) -> str:
        return str(sp.sympify(e).subs(readable))
    new: dict[str, sp.Expr] = {}
    point = None
    F_rows, K_rows = [], []
    for var, rhs in updates:
        expr = _parse(rhs, f"update of {var}", {**names, **{f"{v}'": e for v, e in new.items()}})
        calls = sorted(expr.atoms(grad), key=sp.default_sort_key)
        for c in calls:
            if len(c.args) != 1:
                raise ValueError(f"update of {var}: g takes one argument (the point), got {show(c)}")
            if gsym in c.args[0].free_symbols or c.args[0].atoms(grad):
                raise ValueError(f"update of {var}: the gradient point {show(c.args[0])} depends on "
                                 "this step's gradient")
            p = sp.expand(c.args[0])
            if point is None:
                point = p
            elif sp.simplify(p - point) != 0:
                raise ValueError(f"the gradient is taken at two points ({show(point)} and {show(p)}): a method "
                                 "of this form evaluates one gradient per step")
        expr = expr.subs({c: gsym for c in calls})
        coeffs = _coefficients(expr, x + [gsym], f"update of {var}", show)
        F_rows.append(coeffs[:-1])
        K_rows.append([coeffs[-1]])
        new[var] = expr
    if point is None:
        raise ValueError("the method never uses a gradient: write g(point) in an update")
    G = [_coefficients(point, x, "the gradient point", show)]
    F = sp.Matrix(F_rows)
    pre = sp.Integer(1)
    if "precondition" in fields:
        pre = _parse(fields["precondition"].replace("lambda", "lam"), "precondition",
                     {"lam": lam, **{p.name: p.symbol for p in extra}})
    if "init" in fields:
        x0 = _initial_state(fields["init"], state, output, names)
    else:
        x0 = _resting_state(F, state, output)
    k = state.index(output)
    desc = "; ".join(f"{v}' = {r.strip()}" for v, r in updates)
    return Method.from_matrices(name or fields.get("name", "custom"), F, sp.Matrix(K_rows),
                                sp.Matrix(G), x0, extra=tuple(extra), preconditioner=pre,
                                output=k, description=desc, references=tuple(
                                    r.strip() for r in fields.get("references", "").split("|")
                                    if r.strip()))._with_text(text, [state[k]] + state[:k] + state[k + 1:])


def _initial_state(text: str, state: list, output: str, names: dict) -> sp.Matrix:
    given = {}
    w = sp.Symbol("_w0")
    for item in filter(None, (s.strip() for s in text.split(","))):
        var, sep, rhs = item.partition("=")
        var = var.strip()
        if not sep or var not in state:
            raise ValueError(f"init: {item!r} must read 'x = expression' for a state variable x")
        e = _parse(rhs, f"init of {var}", {k: v for k, v in names.items() if k not in state
                                            and k != "g"} | {"w": w, output: w})
        given[var] = sp.expand(e)
    x0 = []
    for v in state:
        e = given.get(v, w if v in (output, "w") else sp.Integer(0))
        c = _coefficients(e, [w], f"init of {v}") if e != 0 else [sp.Integer(0)]
        x0.append(c[0])
    return sp.Matrix(x0)


def _resting_state(F: sp.Matrix, state: list, output: str) -> sp.Matrix:
    null = (F - sp.eye(F.shape[0])).nullspace(simplify=True)
    k = state.index(output)
    if not null:
        raise ValueError("the optimum is not a fixed point of the method: its gradient-free map "
                         "has no eigenvalue 1, so a run at rest at w* would move")
    if len(null) != 1 or sp.simplify(null[0][k]) == 0:
        raise ValueError("the initial state is not determined by the updates (the gradient-free map "
                         f"keeps {len(null)} directions fixed): give it with 'init: x = w, v = 0'")
    return (null[0] / null[0][k]).applyfunc(sp.simplify)


def load_method(path) -> Method:
    """A method from a file: ``.txt`` holds update equations in the text form (the file's base
    name is the default name); ``.json`` holds either ``{"text": "..."}`` or matrices
    ``{"name", "F", "K", "G", "x0", "params", "preconditioner", "output", "description"}``:
    ``F`` etc. nested lists of numbers or expressions in alpha, beta and the parameters,
    ``params`` ``{"nu": 0.7}`` or ``{"nu": {"default": 0.7, "interval": "[0, 1]"}}``,
    ``preconditioner`` an expression in lambda and the parameters, ``output`` the index of the
    reported iterate (default 0)."""
    import json
    import os
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"method file {path!r} does not exist")
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        with open(path) as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"method file {path!r} is not readable: {exc}") from None
    if path.endswith(".txt"):
        return parse_method(text, None if "name:" in text else name)
    if not path.endswith(".json"):
        raise ValueError(f"method file {path!r} must end in .txt (update equations) or .json")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"method file {path!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"method file {path!r} must hold a JSON object")
    if "text" in data:
        extra = set(data) - {"text", "name"}
        if extra:
            raise ValueError(f"method file {path!r}: with 'text', only 'name' may be given, got "
                             f"{', '.join(sorted(extra))}")
        if not isinstance(data["text"], str):
            raise ValueError(f"method file {path!r}: 'text' must be a string of update equations")
        return parse_method(data["text"], data.get("name", name))
    return _method_from_json(data, path, name)


def _method_from_json(data: dict, path: str, name: str) -> Method:
    allowed = {"name", "F", "K", "G", "x0", "params", "preconditioner", "output", "description"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"method file {path!r} has unknown key(s): {', '.join(sorted(unknown))}")
    missing = [k for k in ("F", "K", "G", "x0") if k not in data]
    if missing:
        raise ValueError(f"method file {path!r} is missing key(s): {', '.join(missing)}")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"method file {path!r}: 'params' must map names to defaults")
    extra = []
    for pname, spec in params.items():
        if isinstance(spec, dict):
            text = f"{pname} = {spec.get('default')}" + (f" in {spec['interval']}" if "interval" in spec else "")
        else:
            text = f"{pname} = {spec}"
        extra += _parameters(text)
    names = {"alpha": alpha, "beta": beta, **{p.name: p.symbol for p in extra}}

    def matrix(key):
        rows = data[key]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
            raise ValueError(f"method file {path!r}: {key} must be a list of rows")
        return sp.Matrix([[_parse(str(v), f"{key} entry", names) for v in r] for r in rows])
    pre = data.get("preconditioner", 1)
    pre = _parse(str(pre).replace("lambda", "lam"), "preconditioner",
                 {"lam": lam, **{p.name: p.symbol for p in extra}})
    output = data.get("output", 0)
    if isinstance(output, bool) or not isinstance(output, int):
        raise ValueError(f"method file {path!r}: 'output' must be the index of a state component")
    return Method.from_matrices(str(data.get("name", name)), matrix("F"), matrix("K"), matrix("G"),
                                matrix("x0"), extra=tuple(extra), preconditioner=pre,
                                output=output, description=str(data.get("description", "")))
