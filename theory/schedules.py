"""Schedules: per-step hyperparameters ``alpha_t, beta_t, b_t`` (and any other method parameter),
the same description for the theory and the Monte Carlo. A constant is a schedule.

Step ``t`` (``t = 0 .. T-1``) moves the state from ``x_t`` to ``x_{t+1}`` with the values at
``t``; ``T`` is the run's horizon. The shapes (``text`` is their text form, accepted by
``parse_shape`` and by the command line, e.g. ``--alpha "warmup(200)+cosine(0.3,floor=0.01)"``):

============================================  =================================================
``constant(v)`` or ``v``                      ``v``
``step(v, milestones=[m1, m2], factor=f)``    ``v f^j`` with ``j`` the milestones ``<= t``
``exponential(v, rate=r)``                    ``v r^t``
``inverse_time(v, scale=s, power=p)``         ``v / (1 + t/s)^p`` (power decay; ``p = 1``
                                              inverse time)
``linear(v, end)``                            ``v + (end - v) t / T``
``cosine(v, floor=f)``                        ``f + (v - f) (1 + cos(pi t / T)) / 2``
``warmup(n[, start=s]) + shape``              ``v_0 (s + (1 - s) (t + 1) / n)`` for ``t < n``, then
                                              ``shape`` over the remaining ``T - n`` steps (from
                                              its own step 0); ``v_0`` is ``shape``'s first value
``wsd(v, warmup=n, decay=m[, floor=f])``      warm-up-stable-decay: linear warm-up over ``n``
                                              steps to ``v``, then ``v``, then a linear decay to
                                              ``f`` over the last ``m`` steps
``double(b, milestones=[m1, ..])``            ``b 2^j`` (batch doubling at the milestones);
``double(b, every=k)``                        ``b 2^floor(t / k)``
``file.npy`` / ``file.csv``                   the values in the file (one per step, at least T)
============================================  =================================================

Linear and cosine shapes never reach their end value within ``t < T`` (at ``t = T - 1`` a cosine
to floor 0 is ``v (1 - cos(pi/T)) / 2 > 0``), so a decay to zero keeps ``alpha_t > 0``. Values
of a batch schedule are rounded to the nearest integer (a shape) or must be integers (an array).
Python: the shape classes below, ``warmup(200) + cosine(0.3, floor=0.01)``, numpy arrays, or a
callable ``f(t)`` (called once on the array of steps, or once per step if it does not take
arrays). ``Schedule`` gathers one shape per parameter.
"""
from __future__ import annotations

import ast
import math
import os
from dataclasses import dataclass, field

import numpy as np

from sgdyn.theory import checks


class Shape:
    """A per-step sequence ``v_t`` on ``t = 0 .. T-1``; subclasses are frozen dataclasses."""

    def values(self, t: np.ndarray, horizon: int) -> np.ndarray:
        raise NotImplementedError

    def bounds(self, horizon: int) -> tuple[float, float]:
        """(min, max) over ``t < horizon``; shapes that are monotone or piecewise monotone give
        them in closed form (endpoints and breakpoints), so a schedule is validated without
        evaluating every step."""
        t = self._critical_steps(horizon)
        v = self.values(t, horizon)
        return float(v.min()), float(v.max())

    def _critical_steps(self, horizon: int) -> np.ndarray:
        return np.unique(np.array([0, horizon - 1], dtype=np.int64))

    def pieces(self, horizon: int):
        """``[(start, stop, value), ..]`` when the shape is piecewise constant, else None."""
        return None

    @property
    def is_constant(self) -> bool:
        return False

    def __add__(self, other):
        return NotImplemented

    def _repr_args(self) -> str:
        return ""

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        raise NotImplementedError


def _positive(name, v):
    return checks.positive(name, v)


@dataclass(frozen=True)
class Constant(Shape):
    value: float

    def __post_init__(self):
        object.__setattr__(self, "value", checks.finite_real("value", self.value))

    def values(self, t, horizon):
        return np.full(np.shape(t), self.value)

    def bounds(self, horizon):
        return self.value, self.value

    def pieces(self, horizon):
        return [(0, horizon, self.value)]

    @property
    def is_constant(self) -> bool:
        return True

    @property
    def text(self) -> str:
        v = self.value
        return str(int(v)) if v.is_integer() and abs(v) < 2 ** 53 else repr(v)


@dataclass(frozen=True)
class Array(Shape):
    """Explicit values, one per step (at least as many as the horizon)."""

    data: np.ndarray = field(repr=False)
    source: str = "array"

    def __post_init__(self):
        try:
            arr = np.array(self.data, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"schedule {self.source} must hold real numbers ({exc})") from None
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"schedule {self.source} must be a non-empty 1-D array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            i = int(np.argmax(~np.isfinite(arr)))
            raise ValueError(f"schedule {self.source} has a non-finite value {arr[i]} at step {i}")
        arr.setflags(write=False)
        object.__setattr__(self, "data", arr)

    def check_length(self, horizon: int, what: str) -> None:
        if self.data.size < horizon:
            raise ValueError(f"{what}: the schedule {self.source} has {self.data.size} values, the "
                             f"run needs one per step ({horizon})")

    def values(self, t, horizon):
        return self.data[t]

    def bounds(self, horizon):
        part = self.data[:horizon]
        return float(part.min()), float(part.max())

    def pieces(self, horizon):
        v = self.data[:horizon]
        cuts = np.concatenate([[0], np.nonzero(np.diff(v))[0] + 1, [horizon]])
        if cuts.size - 1 > 64:            # many pieces: not worth chaining segments
            return None
        return [(int(a), int(b), float(v[a])) for a, b in zip(cuts[:-1], cuts[1:])]

    @property
    def text(self) -> str:
        return self.source


@dataclass(frozen=True)
class StepDecay(Shape):
    initial: float
    milestones: tuple
    factor: float

    def __post_init__(self):
        _positive("initial value", self.initial)
        ms = tuple(checks.integer("milestones", m, 1) for m in self.milestones)
        if list(ms) != sorted(set(ms)):
            raise ValueError(f"milestones must be increasing, got {list(ms)}")
        object.__setattr__(self, "milestones", ms)
        _positive("factor", self.factor)

    def values(self, t, horizon):
        j = np.searchsorted(np.asarray(self.milestones), np.asarray(t), side="right")
        return self.initial * self.factor ** j

    def _critical_steps(self, horizon):
        inside = [m for m in self.milestones if m < horizon]
        return np.unique(np.array([0, horizon - 1] + inside, dtype=np.int64))

    def pieces(self, horizon):
        cuts = [0] + [m for m in self.milestones if 0 < m < horizon] + [horizon]
        return [(a, b, float(self.values(np.array([a]), horizon)[0])) for a, b in zip(cuts[:-1], cuts[1:])]

    @property
    def text(self) -> str:
        return f"step({self.initial!r}, milestones={list(self.milestones)}, factor={self.factor!r})"


@dataclass(frozen=True)
class Exponential(Shape):
    initial: float
    rate: float

    def __post_init__(self):
        _positive("initial value", self.initial)
        _positive("rate", self.rate)

    def values(self, t, horizon):
        return self.initial * np.exp(np.asarray(t, float) * math.log(self.rate))

    @property
    def text(self) -> str:
        return f"exponential({self.initial!r}, rate={self.rate!r})"


@dataclass(frozen=True)
class InverseTime(Shape):
    initial: float
    scale: float
    power: float = 1.0

    def __post_init__(self):
        _positive("initial value", self.initial)
        _positive("scale", self.scale)
        checks.nonnegative("power", self.power)

    def values(self, t, horizon):
        return self.initial * (1.0 + np.asarray(t, float) / self.scale) ** -self.power

    @property
    def text(self) -> str:
        return f"inverse_time({self.initial!r}, scale={self.scale!r}, power={self.power!r})"


@dataclass(frozen=True)
class Linear(Shape):
    initial: float
    end: float

    def __post_init__(self):
        checks.finite_real("initial value", self.initial)
        checks.finite_real("end", self.end)

    def values(self, t, horizon):
        return self.initial + (self.end - self.initial) * np.asarray(t, float) / horizon

    @property
    def text(self) -> str:
        return f"linear({self.initial!r}, {self.end!r})"


@dataclass(frozen=True)
class Cosine(Shape):
    initial: float
    floor: float = 0.0

    def __post_init__(self):
        checks.finite_real("initial value", self.initial)
        checks.finite_real("floor", self.floor)

    def values(self, t, horizon):
        return self.floor + (self.initial - self.floor) * 0.5 * (
            1.0 + np.cos(np.pi * np.asarray(t, float) / horizon))

    @property
    def text(self) -> str:
        return f"cosine({self.initial!r}, floor={self.floor!r})"


@dataclass(frozen=True)
class Warmup(Shape):
    """``warmup(n, start=s) + base``: linear ramp to the base's first value, then the base."""

    steps: int
    start: float = 0.0
    base: Shape | None = None

    def __post_init__(self):
        object.__setattr__(self, "steps", checks.integer("warmup steps", self.steps, 1))
        s = checks.finite_real("start", self.start)
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"warmup start must lie in [0, 1] (a fraction of the first value), got {s}")
        if self.base is not None and not isinstance(self.base, Shape):
            raise ValueError("warmup must be followed by a shape: warmup(n) + cosine(...)")

    def __add__(self, other):
        if self.base is not None:
            raise ValueError("warmup(n) + shape: the warm-up already has a shape after it")
        return Warmup(self.steps, self.start, as_shape(other, "the shape after warmup"))

    def _need_base(self):
        if self.base is None:
            raise ValueError("warmup(n) needs a shape after it: warmup(n) + cosine(...)")
        return self.base

    def values(self, t, horizon):
        base = self._need_base()
        t = np.asarray(t)
        n = self.steps
        rest = max(horizon - n, 1)
        v0 = float(base.values(np.array([0]), rest)[0])
        ramp = v0 * (self.start + (1.0 - self.start) * (t + 1.0) / n)
        after = base.values(np.maximum(t - n, 0), rest)
        return np.where(t < n, ramp, after)

    def bounds(self, horizon):
        base = self._need_base()
        n = self.steps
        t = np.array([0, min(n, horizon) - 1], dtype=np.int64)
        ramp = self.values(t, horizon)
        lo, hi = float(ramp.min()), float(ramp.max())
        if horizon > n:
            blo, bhi = base.bounds(horizon - n)
            lo, hi = min(lo, blo), max(hi, bhi)
        return lo, hi

    def pieces(self, horizon):
        return None if self.steps > 1 else self._need_base().pieces(horizon)

    @property
    def text(self) -> str:
        head = f"warmup({self.steps}" + (f", start={self.start!r})" if self.start else ")")
        return head + (f"+{self.base.text}" if self.base is not None else "")


@dataclass(frozen=True)
class WSD(Shape):
    """Warm-up, stable, decay: the schedule of many language-model runs."""

    value: float
    warmup: int
    decay: int
    floor: float = 0.0

    def __post_init__(self):
        _positive("value", self.value)
        object.__setattr__(self, "warmup", checks.integer("warmup", self.warmup, 0))
        object.__setattr__(self, "decay", checks.integer("decay", self.decay, 0))
        checks.nonnegative("floor", self.floor)

    def values(self, t, horizon):
        t = np.asarray(t, float)
        v = np.full(t.shape, self.value)
        if self.warmup:
            v = np.where(t < self.warmup, self.value * (t + 1.0) / self.warmup, v)
        if self.decay:
            start = horizon - self.decay
            frac = (t - start) / self.decay          # reaches the floor at t = T, as linear
            v = np.where(t >= start, self.value + (self.floor - self.value) * frac, v)
        return v

    def _critical_steps(self, horizon):
        pts = [0, horizon - 1, self.warmup - 1, self.warmup, horizon - self.decay - 1, horizon - self.decay]
        return np.unique(np.clip(np.array(pts, dtype=np.int64), 0, horizon - 1))

    @property
    def text(self) -> str:
        return f"wsd({self.value!r}, warmup={self.warmup}, decay={self.decay}, floor={self.floor!r})"


@dataclass(frozen=True)
class Doubling(Shape):
    """Batch doubling: ``b 2^j``, ``j`` the milestones passed (or ``floor(t / every)``)."""

    initial: float
    milestones: tuple = ()
    every: int | None = None

    def __post_init__(self):
        _positive("initial value", self.initial)
        if (self.every is None) == (not self.milestones):
            raise ValueError("double(b, ...) takes either milestones=[...] or every=k")
        if self.every is not None:
            object.__setattr__(self, "every", checks.integer("every", self.every, 1))
        ms = tuple(checks.integer("milestones", m, 1) for m in self.milestones)
        if list(ms) != sorted(set(ms)):
            raise ValueError(f"milestones must be increasing, got {list(ms)}")
        object.__setattr__(self, "milestones", ms)

    def _exponent(self, t):
        t = np.asarray(t)
        if self.every is not None:
            return t // self.every
        return np.searchsorted(np.asarray(self.milestones), t, side="right")

    def values(self, t, horizon):
        return self.initial * 2.0 ** self._exponent(t)

    def pieces(self, horizon):
        cuts = list(range(self.every, horizon, self.every)) if self.every else \
            [m for m in self.milestones if 0 < m < horizon]
        if len(cuts) > 64:
            return None
        cuts = [0] + cuts + [horizon]
        return [(a, b, float(self.values(np.array([a]), horizon)[0])) for a, b in zip(cuts[:-1], cuts[1:])]

    @property
    def text(self) -> str:
        if self.every is not None:
            return f"double({self.initial!r}, every={self.every})"
        return f"double({self.initial!r}, milestones={list(self.milestones)})"


@dataclass(frozen=True)
class FromCallable(Shape):
    """A Python callable evaluated into an array once the horizon is known (``Schedule``)."""

    fn: object

    def evaluate(self, horizon: int, what: str) -> Array:
        t = np.arange(horizon)
        try:
            out = np.asarray(self.fn(t), dtype=np.float64)
            if out.shape != t.shape:
                raise TypeError
        except (TypeError, ValueError):
            try:
                out = np.array([float(self.fn(int(s))) for s in t])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{what}: the schedule function failed on the steps ({exc})") from None
        return Array(out, f"{getattr(self.fn, '__name__', 'function')}(t)")

    @property
    def text(self) -> str:
        return f"{getattr(self.fn, '__name__', 'function')}(t)"


# -- constructors with the text form's names ------------------------------------------------------
def constant(value):
    return Constant(value)


def step(initial, milestones, factor=0.1):
    return StepDecay(initial, tuple(milestones), factor)


def exponential(initial, rate):
    return Exponential(initial, rate)


def inverse_time(initial, scale, power=1.0):
    return InverseTime(initial, scale, power)


def linear(initial, end):
    return Linear(initial, end)


def cosine(initial, floor=0.0):
    return Cosine(initial, floor)


def warmup(steps, start=0.0):
    return Warmup(steps, start)


def wsd(value, warmup, decay, floor=0.0):
    return WSD(value, warmup, decay, floor)


def double(initial, milestones=(), every=None):
    return Doubling(initial, tuple(milestones), every)


SHAPES = {"constant": constant, "step": step, "exponential": exponential,
          "inverse_time": inverse_time, "power": inverse_time, "linear": linear, "cosine": cosine,
          "warmup": warmup, "wsd": wsd, "double": double}


def _literal(node, text):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and \
            not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand, text)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, text) for e in node.elts]
    raise ValueError(f"schedule {text!r}: arguments must be numbers or lists of numbers")


def _build(node, text):
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _build(node.left, text) + _build(node.right, text)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name not in SHAPES:
            raise ValueError(f"schedule {text!r}: unknown shape {name!r} (known: "
                             f"{', '.join(sorted(SHAPES))})")
        args = [_literal(a, text) for a in node.args]
        kwargs = {k.arg: _literal(k.value, text) for k in node.keywords}
        try:
            return SHAPES[name](*args, **kwargs)
        except TypeError as exc:
            raise ValueError(f"schedule {text!r}: {name}(...) {str(exc).split(') ', 1)[-1]}") from None
    try:
        return Constant(_literal(node, text))
    except ValueError:
        raise ValueError(f"schedule {text!r} must be a number, a shape such as cosine(0.3, "
                         "floor=0.01), warmup(n) + shape, or a .npy/.csv file") from None


def parse_shape(text: str) -> Shape:
    """A shape from its text form (module docstring) or a ``.npy`` / ``.csv`` file of values."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"schedule must be a non-empty text, got {text!r}")
    text = text.strip()
    if text.endswith((".npy", ".csv")):
        return load_array(text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError(f"schedule {text!r} is not a valid expression (e.g. "
                         "warmup(200)+cosine(0.3,floor=0.01))") from None
    shape = _build(tree.body, text)
    if isinstance(shape, Warmup):
        shape._need_base()
    return shape


def load_array(path: str) -> Array:
    if not os.path.isfile(path):
        raise ValueError(f"schedule file {path!r} does not exist")
    try:
        if path.endswith(".npy"):
            data = np.load(path, allow_pickle=False)
        else:
            data = np.loadtxt(path, delimiter=",", ndmin=1, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise ValueError(f"schedule file {path!r} is not readable: {exc}") from None
    if data.dtype.kind not in "fiu":
        raise ValueError(f"schedule file {path!r} must hold real numbers, got dtype {data.dtype}")
    return Array(np.ravel(data) if data.ndim == 2 and 1 in data.shape else data,
                 os.path.basename(path))


def as_shape(value, what: str = "schedule") -> Shape:
    """A shape from a number, a Shape, a text form, an array or a callable."""
    if isinstance(value, Shape):
        return value
    if isinstance(value, str):
        try:
            return parse_shape(value)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, a schedule or an array, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return Constant(checks.finite_real(what, value))
    if callable(value):
        return FromCallable(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return Array(value, what)
    raise ValueError(f"{what} must be a number, a schedule, an array or a callable, got "
                     f"{type(value).__name__}")


@dataclass(frozen=True)
class Schedule:
    """One shape per hyperparameter (``name -> Shape``) over a horizon of ``steps`` steps: what a
    run does at every step. ``values(t0, t1)`` evaluates steps ``t0 .. t1-1`` (any chunk, so a
    long horizon never holds O(T) arrays unless a shape is one)."""

    shapes: tuple            # ((name, Shape), ...)
    steps: int

    def __post_init__(self):
        out = []
        for name, shape in self.shapes:
            if isinstance(shape, FromCallable):
                shape = shape.evaluate(self.steps, name)
            if isinstance(shape, Array):
                shape.check_length(self.steps, name)
            if name == "batch":
                shape = _integral_batch(shape, self.steps)
            out.append((name, shape))
        object.__setattr__(self, "shapes", tuple(out))

    def __getitem__(self, name) -> Shape:
        for n, s in self.shapes:
            if n == name:
                return s
        raise KeyError(name)

    @property
    def names(self) -> tuple:
        return tuple(n for n, _ in self.shapes)

    @property
    def is_constant(self) -> bool:
        return all(s.is_constant for _, s in self.shapes)

    def constant_values(self) -> dict:
        """``name -> value`` of an all-constant schedule (ValueError otherwise)."""
        if not self.is_constant:
            raise ValueError("the schedule is not constant")
        return {n: s.value for n, s in self.shapes}

    def values(self, t0: int, t1: int) -> dict:
        t = np.arange(t0, t1)
        return {n: np.asarray(s.values(t, self.steps), dtype=np.float64) for n, s in self.shapes}

    def bounds(self) -> dict:
        if self.steps == 0:
            return {n: s.bounds(1) for n, s in self.shapes}
        return {n: s.bounds(self.steps) for n, s in self.shapes}

    def pieces(self):
        """Constant segments ``[(start, stop, {name: value}), ..]`` covering ``0 .. T``, or None if
        some shape is not piecewise constant."""
        cuts = {0, self.steps}
        for _, s in self.shapes:
            p = s.pieces(self.steps)
            if p is None:
                return None
            cuts |= {a for a, _, _ in p}
        cuts = sorted(cuts)
        out = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            out.append((a, b, {n: float(v[0]) for n, v in self.values(a, a + 1).items()}))
        return out

    @property
    def text(self) -> dict:
        return {n: s.text for n, s in self.shapes}


@dataclass(frozen=True)
class _RoundedBatch(Shape):
    """A batch shape rounded to integers (``np.rint``)."""

    base: Shape

    def values(self, t, horizon):
        return np.rint(self.base.values(t, horizon))

    def bounds(self, horizon):
        lo, hi = self.base.bounds(horizon)
        return float(np.rint(lo)), float(np.rint(hi))

    def pieces(self, horizon):
        return self.base.pieces(horizon)

    @property
    def is_constant(self) -> bool:
        return self.base.is_constant

    @property
    def value(self):
        return float(np.rint(self.base.value))

    @property
    def text(self) -> str:
        return self.base.text


def _integral_batch(shape: Shape, horizon: int) -> Shape:
    if isinstance(shape, Array):
        bad = shape.data[:horizon] != np.round(shape.data[:horizon])
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"batch must be an integer at every step, got {shape.data[i]} at step {i}")
        return shape
    if isinstance(shape, Constant):
        if not float(shape.value).is_integer():
            raise ValueError(f"batch must be an integer >= 1, got {shape.value}")
        return shape
    return _RoundedBatch(shape)
