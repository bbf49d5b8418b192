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
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
import sympy as sp

from sgdyn.theory import checks

alpha, beta, lam = sp.symbols("alpha beta lambda", real=True)
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
    def symbol(self) -> sp.Symbol:
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


def _immutable(name: str, value, shape=None) -> sp.ImmutableMatrix:
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
    preconditioner: sp.Expr = sp.Integer(1)
    values: tuple = ()                     # ((name, value), ...) bound extra parameters
    text: str = ""
    references: tuple = ()
    identity: str = ""                     # a known identity of the method (checked in the tests)
    state: tuple = field(default=(), compare=False)   # names of the state components

    def __post_init__(self):
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

    @property
    def dim(self) -> int:
        return self.F.shape[0]

    @property
    def has_momentum(self) -> bool:
        """True when beta is one of the method's hyperparameters."""
        return beta in (self.F.free_symbols | self.K.free_symbols | self.G.free_symbols
                        | self.x0.free_symbols)

    @property
    def transition(self) -> sp.Matrix:
        """Deterministic per-mode map ``M = F + lambda p(lambda) K G``."""
        return self.F + lam * self.preconditioner * self.K * self.G

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
        return replace(self, values=()) if self.values else self

    def bind(self, **values) -> "Method":
        """The same method with extra parameters fixed (``qhm.bind(nu=0.5)``)."""
        merged = dict(self.values)
        merged.update(self._checked_values(values))
        return replace(self, values=tuple(merged.items()))

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
    @functools.cached_property
    def _numeric(self):
        args = (alpha, beta) + self.extra_symbols
        def entries(M):
            return [_broadcasting(sp.lambdify(args, v, modules="numpy")) for v in M]
        return (entries(self.F), entries(self.K), entries(self.G), entries(self.x0),
                _broadcasting(sp.lambdify((lam,) + self.extra_symbols, self.preconditioner,
                                          modules="numpy")))

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
        from sgdyn.theory.method_text import parse_method
        return parse_method(method)
    return catalogue.lookup(method)


def __getattr__(name):
    # the catalogue parses its methods with this module's classes: import it on first use
    if name == "METHODS":
        from sgdyn.theory.catalogue import METHODS
        return METHODS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
