"""First-order methods, each described ONCE as a linear recursion on a per-mode state.

A method acting on one eigenmode (eigenvalue ``lambda``) keeps a state vector ``x_t`` of dimension
``d <= MAX_STATE_DIM`` whose first component is the reported iterate's error ``e_t`` (the state is
reordered so, whatever order the description used), and updates it by

    x_{t+1} = F x_t + K p(lambda) g_t,        g_t = lambda * (G x_t) + xi_t,

where ``G x_t`` is the point at which the mini-batch gradient is taken, ``xi_t`` its noise and
``p(lambda)`` an optional scalar spectral preconditioner (default 1). ``F, K, G`` and the initial
state ``x0`` (per unit initial error) are sympy matrices in the hyperparameters: ``alpha``,
``beta`` (if the method has momentum) and any extra named parameters (``Parameter``), never in
``lambda``: a method sees the curvature only through its gradient (and ``p``). So the
deterministic per-mode map is ``M(lambda) = F + lambda p(lambda) K G`` and the noise enters
through ``p K``. Everything symbolic (second-moment maps, transfer functions, characteristic
polynomials, stability conditions and edges) is derived from this description in
``sgdyn.theory.symbolic``, and the numeric routes (recursion, Monte Carlo) evaluate the same
matrices per step (``numeric_matrices``); nothing is retyped.

Methods are written in the text form of ``sgdyn.theory.method_text`` (the shipped ones in
``sgdyn.theory.catalogue`` too) or given as matrices (``Method.from_matrices``). Invariants checked
here: shapes, ``d <= MAX_STATE_DIM``, the free symbols of each matrix, and that the optimum is a
fixed point of the gradient-free map (``F x0 = x0``: a run started at rest at ``w*`` stays there).

The numeric routes need none of the algebra: a shipped method or one written as text
(``get_method``) is a ``cached_method`` whose numeric form (dimension, parameters and the numpy
functions of its matrices) loads from the disk cache of ``sgdyn.theory.formcache``, so a small
Monte Carlo never imports sympy; its sympy matrices are built on first use (any symbolic question,
equality, hashing) and are the ones the cached form was made from.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, fields, replace

import numpy as np

from sgdyn.theory import checks

MAX_STATE_DIM = 4
# names with a meaning of their own in the derivation or the text form
RESERVED = frozenset({"alpha", "beta", "lambda", "lam", "g", "z", "b", "gamma", "tau1", "tau2",
                      "mu", "sigma", "t", "w", "E", "I", "pi", "S", "N", "O", "Q"})


@dataclass(frozen=True)
class Parameter:
    """A hyperparameter beyond alpha and beta: its name (a symbol in the method's matrices), its
    default value and its allowed interval (``closed`` says which ends belong to it: "[]", "[)",
    "(]", "()"). ``constant`` parameters (those in the preconditioner) cannot follow a schedule."""

    name: str
    default: float
    low: float = -math.inf
    high: float = math.inf
    closed: str = "[]"
    doc: str = ""
    constant: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.name):
            raise ValueError(f"parameter name must be an identifier, got {self.name!r}")
        if self.name in RESERVED:
            raise ValueError(f"parameter name {self.name!r} is reserved "
                             f"(reserved: {', '.join(sorted(RESERVED))})")
        if self.closed not in ("[]", "[)", "(]", "()"):
            raise ValueError(f"parameter {self.name}: closed must be one of [], [), (], (), "
                             f"got {self.closed!r}")
        low, high = float(self.low), float(self.high)
        if not low < high:
            raise ValueError(f"parameter {self.name}: its interval must have low < high, got "
                             f"[{low}, {high}]")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "default", self.check(self.default))

    @property
    def symbol(self):
        """The sympy symbol (real) standing for the parameter in the method's matrices."""
        import sympy as sp
        return sp.Symbol(self.name, real=True)

    @property
    def interval(self) -> str:
        return f"{self.closed[0]}{self.low:g}, {self.high:g}{self.closed[1]}"

    def _inside(self, v):
        lo_ok = v >= self.low if self.closed[0] == "[" else v > self.low
        hi_ok = v <= self.high if self.closed[1] == "]" else v < self.high
        return lo_ok & hi_ok

    def check(self, value, what: str | None = None) -> float:
        v = checks.finite_real(what or self.name, value)
        if not self._inside(v):
            raise ValueError(f"{what or self.name} must lie in {self.interval}, got {v}")
        return v

    def check_array(self, values: np.ndarray, what: str | None = None) -> None:
        """Every entry finite and inside the interval; the message names the first bad step."""
        bad = ~(np.isfinite(values) & self._inside(values))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{what or self.name} must lie in {self.interval} at every step, "
                             f"got {values[i]} at step {i}")


@functools.cache
def _symbols() -> tuple:
    """``alpha, beta, lambda`` as sympy symbols (real): the module attributes ``alpha``, ``beta``,
    ``lam``, made on first use so that importing this module does not import sympy."""
    import sympy as sp
    return sp.symbols("alpha beta lambda", real=True)


def _immutable(name: str, value, shape=None):
    import sympy as sp
    try:
        M = sp.ImmutableMatrix(sp.sympify(value))
    except (sp.SympifyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a matrix of numbers or sympy expressions ({exc})") from None
    if shape is not None and M.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {M.shape}")
    return M


@dataclass(frozen=True)
class Method:
    """One linear first-order method (module docstring). ``values`` binds extra parameters
    (``bind``); unbound ones take their defaults. ``text`` keeps the update equations the method
    was written in (``sgdyn.theory.method_text``), ``description`` one line for listings."""

    name: str
    F: sp.ImmutableMatrix
    K: sp.ImmutableMatrix
    G: sp.ImmutableMatrix
    x0: sp.ImmutableMatrix
    description: str = ""
    extra: tuple = ()                      # Parameter, ...
    preconditioner: sp.Expr = 1            # a sympy expression once built
    values: tuple = ()                     # ((name, value), ...) bound extra parameters
    text: str = ""
    references: tuple = ()
    identity: str = ""                     # a known identity of the method (checked in the tests)
    state: tuple = field(default=(), compare=False)   # names of the state components

    def __post_init__(self):
        import sympy as sp
        alpha, beta, lam = _symbols()
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"method name must be a non-empty string, got {self.name!r}")
        F = _immutable("F", self.F)
        d = F.shape[0]
        if F.shape != (d, d) or d < 1:
            raise ValueError(f"F must be a square matrix, got shape {F.shape}")
        if d > MAX_STATE_DIM:
            raise ValueError(f"the per-mode state has dimension {d}: at most {MAX_STATE_DIM} is "
                             "supported (the second-moment system grows like d(d+1)/2)")
        K = _immutable("K", self.K, (d, 1))
        G = _immutable("G", self.G, (1, d))
        x0 = _immutable("x0", self.x0, (d, 1))
        extra = tuple(self.extra)
        if not all(isinstance(p, Parameter) for p in extra):
            raise ValueError("extra must be a tuple of sgdyn.theory.methods.Parameter")
        names = [p.name for p in extra]
        if len(set(names)) != len(names):
            raise ValueError(f"extra parameters must have distinct names, got {names}")
        allowed = {alpha, beta} | {p.symbol for p in extra}
        for label, M in (("F", F), ("K", K), ("G", G), ("x0", x0)):
            if lam in M.free_symbols:
                raise ValueError(f"{label} must not depend on lambda: a method sees the curvature "
                                 "only through its gradient (a lambda-dependent step is a "
                                 "preconditioner)")
            unknown = M.free_symbols - allowed
            if unknown:
                raise ValueError(f"{label} has undeclared symbol(s) "
                                 f"{', '.join(sorted(map(str, unknown)))}: declare them as "
                                 "parameters (Parameter) of the method")
        pre = sp.sympify(self.preconditioner)
        unknown = pre.free_symbols - {lam} - {p.symbol for p in extra}
        if unknown:
            raise ValueError(f"the preconditioner may depend on lambda and extra parameters only, "
                             f"got {', '.join(sorted(map(str, unknown)))}")
        if all(v == 0 for v in K):
            raise ValueError("K is zero: the method never uses a gradient")
        if any(sp.simplify(v) != 0 for v in (F * x0 - x0)):
            raise ValueError("the optimum is not a fixed point of the method: F x0 != x0 (a run "
                             "started at rest at w* would move without a gradient)")
        in_pre = {s.name for s in pre.free_symbols} - {"lambda"}
        extra = tuple(replace(p, constant=True) if p.name in in_pre and not p.constant else p
                      for p in extra)
        for attr, v in (("F", F), ("K", K), ("G", G), ("x0", x0), ("preconditioner", pre),
                        ("extra", extra), ("references", tuple(self.references)),
                        ("state", tuple(self.state))):
            object.__setattr__(self, attr, v)
        object.__setattr__(self, "values", tuple(self._checked_values(dict(self.values)).items()))

    def _checked_values(self, values: dict) -> dict:
        known = {p.name: p for p in self.extra}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"method {self.name!r} has no parameter(s) {', '.join(sorted(unknown))}"
                             + (f" (its parameters: {', '.join(known)})" if known else
                                " (it has no extra parameters)"))
        return {n: known[n].check(v, f"{self.name} parameter {n}") for n, v in values.items()}

    # -- description -------------------------------------------------------------------------
    @classmethod
    def from_matrices(cls, name: str, F, K, G, x0, *, extra=(), preconditioner=1, output: int = 0,
                      description: str = "", references=()) -> "Method":
        """A method from its matrices (any nested sequences sympy accepts; symbols ``alpha``,
        ``beta`` and the ``extra`` parameters' names). ``output`` is the index of the reported
        iterate in the state; the state is reordered to put it first."""
        import sympy as sp
        F = _immutable("F", F)
        d = F.shape[0]
        if F.shape != (d, d):
            raise ValueError(f"F must be a square matrix, got shape {F.shape}")
        K, G, x0 = _immutable("K", K, (d, 1)), _immutable("G", G, (1, d)), _immutable("x0", x0, (d, 1))
        output = checks.integer("output", output, 0)
        if output >= d:
            raise ValueError(f"output must index a state component (0..{d - 1}), got {output}")
        order = [output] + [i for i in range(d) if i != output]
        P = sp.ImmutableMatrix(sp.eye(d)[order, :])
        return cls(name, P * F * P.T, P * K, G * P.T, P * x0, description, tuple(extra),
                   sp.sympify(preconditioner),
                   references=tuple(references))

    def __hash__(self):
        # equal methods have equal plain fields: hashing those alone keeps a cached_method's
        # sympy fields unbuilt when it keys a cache (the generated hash would read them all)
        return hash((self.name, self.description, self.extra, self.values, self.text))

    def __getattr__(self, name):
        # reached only for an attribute not set yet: a cached_method's sympy fields, built on
        # first use (normal lookup finds them afterwards)
        build = self.__dict__.get("_build")
        if build is None or name not in _SYMBOLIC:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self._materialize(build())
        return self.__dict__[name]

    def _materialize(self, built: "Method") -> None:
        """Take the sympy fields of ``built`` (the method this cached form was made from)."""
        mine = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _SYMBOLIC}
        theirs = {f.name: getattr(built, f.name) for f in fields(built) if f.name not in _SYMBOLIC}
        mine.pop("values"), theirs.pop("values")
        if mine != theirs:
            raise RuntimeError(f"the cached form of method {self.name!r} does not match its "
                               "description (a stale or foreign file in the form cache?)")
        for k in _SYMBOLIC:
            object.__setattr__(self, k, getattr(built, k))
        object.__setattr__(self, "_build", None)

    def _known(self, name: str, derive):
        """A structural fact: from the cached form when there is one, else ``derive()``."""
        form = self.__dict__.get("_form")
        return form[name] if form else derive()

    @property
    def dim(self) -> int:
        return self._known("dim", lambda: self.F.shape[0])

    @property
    def has_momentum(self) -> bool:
        """True when beta is one of the method's hyperparameters."""
        return self._known("has_momentum", lambda: _symbols()[1] in (
            self.F.free_symbols | self.K.free_symbols | self.G.free_symbols | self.x0.free_symbols))

    @property
    def preconditioned(self) -> bool:
        """True when the method has a spectral preconditioner (``p(lambda)`` is not 1)."""
        return self._known("preconditioned", lambda: self.preconditioner != 1)

    @property
    def sparsity(self) -> tuple[tuple, tuple]:
        """Which entries of ``F`` and of ``K G`` the method can make nonzero (symbolically), as
        nested tuples of bools: the pattern the generated recursion kernel is specialised to."""
        def derive():
            KG = self.K * self.G
            d = self.dim
            return (tuple(tuple(self.F[a, b] != 0 for b in range(d)) for a in range(d)),
                    tuple(tuple(KG[a, b] != 0 for b in range(d)) for a in range(d)))
        return self._known("sparsity", derive)

    @property
    def transition(self) -> sp.Matrix:
        """Deterministic per-mode map ``M = F + lambda p(lambda) K G``."""
        return self.F + _symbols()[2] * self.preconditioner * self.K * self.G

    @property
    def noise_input(self) -> sp.Matrix:
        """``p(lambda) K``: where the gradient noise enters the state."""
        return self.preconditioner * self.K

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every hyperparameter the method reads: alpha, beta (with momentum), the extras."""
        return ("alpha",) + (("beta",) if self.has_momentum else ()) + tuple(p.name for p in self.extra)

    @property
    def extra_values(self) -> dict:
        """Every extra parameter's value: bound by ``bind``, else its default."""
        out = {p.name: p.default for p in self.extra}
        out.update(dict(self.values))
        return out

    @property
    def extra_symbols(self) -> tuple:
        return tuple(p.symbol for p in self.extra)

    def parameter(self, name: str) -> Parameter:
        for p in self.extra:
            if p.name == name:
                return p
        raise ValueError(f"method {self.name!r} has no parameter {name!r}")

    @property
    def label(self) -> str:
        """The name with the parameters bound away from their defaults, e.g. ``qhm(nu=0.5)``."""
        changed = [f"{p.name}={self.extra_values[p.name]:g}" for p in self.extra
                   if self.extra_values[p.name] != p.default]
        return f"{self.name}({', '.join(changed)})" if changed else self.name

    @property
    def structure(self) -> "Method":
        """The method with no parameter bound: what the symbolic derivation depends on (the cache
        key of ``sgdyn.theory.symbolic.derive``)."""
        return self._with_values(()) if self.values else self

    def bind(self, **values) -> "Method":
        """The same method with extra parameters fixed (``qhm.bind(nu=0.5)``)."""
        merged = dict(self.values)
        merged.update(self._checked_values(values))
        return self._with_values(tuple(merged.items()))

    def _with_values(self, values: tuple) -> "Method":
        """A copy with other (checked) parameter values; what it has built or loaded (sympy
        fields, numeric functions, a cached form) does not depend on them and comes along."""
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__, values=values)
        return out

    def _with_text(self, text: str, state) -> "Method":
        return replace(self, text=text, state=tuple(state))

    def check_params(self, alpha_value, beta_value) -> tuple[float, float]:
        """Validate ``(alpha, beta)``: ``alpha > 0``; ``|beta| < 1`` (or 0 for momentum-free)."""
        a = checks.positive("alpha", alpha_value)
        b = checks.momentum("beta", beta_value)
        if not self.has_momentum and b != 0.0:
            raise ValueError(f"beta must be 0 for method {self.name!r} (it has no momentum), got {b}")
        return a, b

    # -- numeric evaluation ------------------------------------------------------------------
    def _numeric_sources(self) -> dict:
        """The entries of ``F, K, G, x0`` in ``(alpha, beta, extras)`` and the preconditioner in
        ``(lambda, extras)``, as ``sgdyn.theory.formcache.Source``."""
        from sgdyn.theory.formcache import Source
        alpha, beta, lam = _symbols()
        args = (alpha, beta) + self.extra_symbols
        out = {k: [Source(args, v) for v in getattr(self, k)] for k in ("F", "K", "G", "x0")}
        out["pre"] = Source((lam,) + self.extra_symbols, self.preconditioner)
        return out

    @functools.cached_property
    def _numeric(self):
        # a cached_method has them from its form; the same source text either way
        from sgdyn.theory.formcache import compiled
        return _numeric_functions(compiled(self._numeric_sources()))

    def _parameter_arrays(self, values: dict) -> tuple:
        missing = [n for n in ("alpha",) if n not in values]
        if missing:
            raise ValueError(f"method {self.name!r} needs a value for alpha")
        extras = self.extra_values
        extras.update({k: v for k, v in values.items() if k not in ("alpha", "beta")})
        return (np.asarray(values["alpha"], float), np.asarray(values.get("beta", 0.0), float)) + \
            tuple(np.asarray(extras[p.name], float) for p in self.extra)

    def numeric_matrices(self, values: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(F, K, G)`` as float arrays of shapes ``(c, d, d)``, ``(c, d)``, ``(c, d)`` for
        parameter values given as scalars or arrays of length ``c`` (per step): ``values`` maps
        "alpha", "beta" and extra names (unbound extras: ``extra_values``)."""
        args = self._parameter_arrays(values)
        c = np.broadcast(*args).size if args else 1
        F, K, G, _, _ = self._numeric
        d = self.dim
        def stack(fns, shape):
            return np.ascontiguousarray(np.stack([np.broadcast_to(f(*args), (c,)) for f in fns],
                                                 axis=-1).reshape((c,) + shape), dtype=np.float64)
        return stack(F, (d, d)), stack(K, (d,)), stack(G, (d,))

    def initial_state(self, values: dict) -> np.ndarray:
        """``x0`` (per unit initial error) at the step-0 parameter values."""
        args = tuple(np.asarray(a, float).ravel()[0] if np.ndim(a) else a
                     for a in self._parameter_arrays(values))
        return np.array([float(f(*args)) for f in self._numeric[3]])

    def preconditioner_values(self, eigenvalues, values: dict | None = None) -> np.ndarray:
        """``p(lambda_k)`` per mode (ones without a preconditioner)."""
        extras = self.extra_values
        extras.update({k: v for k, v in (values or {}).items() if k in extras})
        lam_ = np.asarray(eigenvalues, float)
        p = np.broadcast_to(self._numeric[4](lam_, *(extras[q.name] for q in self.extra)),
                            lam_.shape).astype(np.float64)
        if not np.all(np.isfinite(p) & (p > 0)):
            raise ValueError(f"the preconditioner of {self.name!r} must be finite and > 0 on the "
                             "spectrum")
        return p


_SYMBOLIC = ("F", "K", "G", "x0", "preconditioner")     # what a cached_method builds on first use
_STRUCTURAL = ("dim", "has_momentum", "preconditioned", "sparsity")   # what its form records


def _numeric_functions(fns: dict) -> tuple:
    """``(F entries, K entries, G entries, x0 entries, preconditioner)``, each broadcasting."""
    return tuple([_broadcasting(f) for f in fns[k]] for k in ("F", "K", "G", "x0")) + \
        (_broadcasting(fns["pre"]),)


def _form_spec(m: Method) -> dict:
    """What a cached_method keeps of ``m``: every field but the sympy ones, its structural facts
    (dimension, momentum, preconditioner, sparsity) and the sources of its numeric functions."""
    return {"fields": {f.name: getattr(m, f.name) if f.name != "extra" else
                       [{g.name: getattr(p, g.name) for g in fields(p)} for p in m.extra]
                       for f in fields(m) if f.name not in _SYMBOLIC},
            **{k: getattr(m, k) for k in _STRUCTURAL}, "numeric": m._numeric_sources()}


def cached_method(description: str, build, modules: tuple[str, ...]) -> Method:
    """The method ``build()`` returns, with its numeric form from the disk cache
    (``sgdyn.theory.formcache``, kind "method-form", keyed by ``description`` and the code of
    ``modules``, which must together determine what ``build`` returns): on a hit, a method whose
    sympy fields are built by ``build()`` on first use; on a miss (or with the cache off),
    ``build()``'s method itself, its form stored for the next process."""
    from sgdyn.theory import formcache
    build = functools.cache(build)          # copies (bind, structure) share one build
    built = []

    def spec():
        built.append(build())
        return _form_spec(built[0])
    form, key = formcache.load_or_build_described(
        "method-form", description, modules + (__name__,), spec)
    if built:
        m = built[0]
    else:
        kw = dict(form["fields"])
        kw["extra"] = tuple(Parameter(**p) for p in kw["extra"])
        m = object.__new__(Method)
        for k, v in kw.items():
            object.__setattr__(m, k, tuple(map(tuple, v)) if k == "values" else
                               tuple(v) if isinstance(v, list) else v)
        object.__setattr__(m, "_build", build)
    known = {k: form[k] for k in _STRUCTURAL}
    known["sparsity"] = tuple(tuple(tuple(row) for row in mask) for mask in known["sparsity"])
    object.__setattr__(m, "_form", {**known, "key": key})
    object.__setattr__(m, "_numeric", _numeric_functions(form["numeric"]))
    return m


def _broadcasting(f):
    """A lambdified function whose output broadcasts against its inputs even when constant."""
    def call(*vals):
        out = f(*vals)
        return np.asarray(out, dtype=np.float64) + np.zeros(np.broadcast(*vals).shape) if vals \
            else np.asarray(out, dtype=np.float64)
    return call


def get_method(method) -> Method:
    """A ``Method``, or a shipped method's name (``sgdyn.theory.catalogue``; ``ema-<name>`` puts an
    iterate average on any of them), or update equations in the text form
    (``sgdyn.theory.method_text``; recognised by a ``'`` or a ``;``/newline)."""
    if isinstance(method, Method):
        return method
    if not isinstance(method, str):
        raise ValueError(f"method must be a Method, a method name or update equations, got {method!r}")
    from sgdyn.theory import catalogue
    if "'" in method or ";" in method or "\n" in method:
        return _text_method(method)
    return catalogue.lookup(method)


@functools.lru_cache(maxsize=256)
def _text_method(text: str) -> Method:
    def build():
        from sgdyn.theory.method_text import parse_method
        return parse_method(text)
    return cached_method(f"text\n{text}", build, ("sgdyn.theory.method_text",))


def __getattr__(name):
    # the catalogue parses its methods with this module's classes: import it on first use
    if name == "METHODS":
        from sgdyn.theory.catalogue import METHODS
        return METHODS
    if name in ("alpha", "beta", "lam"):
        return _symbols()[("alpha", "beta", "lam").index(name)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
